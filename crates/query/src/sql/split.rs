//! Statements out of a text: the shell's input, `-f FILE`, stdin and audit packs all split
//! here. A `;` ends a statement only outside string literals (`'...'`), quoted identifiers
//! (`"..."`, `` `...` ``) and comments (`-- ...` to the end of the line, `/* ... */`).
//! Comments are dropped (a space stands for each), so that nothing later reads a `$NAME` or a
//! `;` inside one. A line whose first character is `\` outside a statement is a meta-command of
//! the shell, up to the end of its line.

/// One piece of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A SQL statement, without its `;` and comments.
    Sql {
        /// The statement.
        text: String,
        /// The line (from 1) it starts on.
        line: usize,
    },
    /// A meta-command: the line after its backslash, without a trailing `;`.
    Meta {
        /// The command and its arguments.
        text: String,
        /// Its line (from 1).
        line: usize,
    },
}

impl Piece {
    /// The statement or command text.
    pub fn text(&self) -> &str {
        match self {
            Piece::Sql { text, .. } | Piece::Meta { text, .. } => text,
        }
    }

    /// The line it starts on, from 1.
    pub fn line(&self) -> usize {
        match self {
            Piece::Sql { line, .. } | Piece::Meta { line, .. } => *line,
        }
    }
}

/// The result of splitting a text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// The statements and meta-commands, in order. A last statement without its `;` is here.
    pub pieces: Vec<Piece>,
    /// True when the text ends inside a statement not yet ended by `;` (or inside a literal or
    /// a comment): the shell reads another line.
    pub open: bool,
}

/// Splits `text` into statements and meta-commands.
pub fn split(text: &str) -> Split {
    let mut split = Split::default();
    let mut current = String::new();
    let mut start_line = 1;
    let mut line = 1;
    let mut chars = text.chars().peekable();
    // Inside a literal or quoted identifier: its closing character.
    let mut quote: Option<char> = None;
    let mut in_block_comment = false;
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        if in_block_comment {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                in_block_comment = false;
            }
            continue;
        }
        if let Some(q) = quote {
            current.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        if current.trim().is_empty() {
            start_line = line;
        }
        match c {
            '\\' if current.trim().is_empty() => {
                let mut meta = String::new();
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                    meta.push(c);
                }
                let text = meta.trim().trim_end_matches(';').trim_end().to_owned();
                split.pieces.push(Piece::Meta { text, line: start_line });
                current.clear();
            }
            '\'' | '"' | '`' => {
                quote = Some(c);
                current.push(c);
            }
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
                current.push('\n');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                in_block_comment = true;
                current.push(' ');
            }
            ';' => {
                if !current.trim().is_empty() {
                    split.pieces.push(Piece::Sql { text: current.trim().to_owned(), line: start_line });
                }
                current.clear();
            }
            c => current.push(c),
        }
    }
    let rest = current.trim();
    split.open = quote.is_some() || in_block_comment || !rest.is_empty();
    if !rest.is_empty() {
        split.pieces.push(Piece::Sql { text: rest.to_owned(), line: start_line });
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        split(text).pieces.iter().map(|p| p.text().to_owned()).collect()
    }

    #[test]
    fn semicolons_in_literals_identifiers_and_comments_end_nothing() {
        assert_eq!(texts("SELECT 1 /* a; b */;"), ["SELECT 1"]);
        assert_eq!(texts("select ';' from t; -- a; b\nselect 2;"), ["select ';' from t", "select 2"]);
        assert_eq!(texts(r#"select "a;b" from t;select `c;d`"#), [r#"select "a;b" from t"#, "select `c;d`"]);
        assert_eq!(texts("select 'it''s; here' x;"), ["select 'it''s; here' x"]);
        assert_eq!(texts("select /* $X; */ 1 -- $Y;\n from t;"), ["select   1 \n from t"]);
    }

    #[test]
    fn meta_commands_and_lines() {
        let s = split("select 1;\n\\d demo\n\n  select\n 2;\n\\q;");
        assert_eq!(
            s.pieces,
            [
                Piece::Sql { text: "select 1".into(), line: 1 },
                Piece::Meta { text: "d demo".into(), line: 2 },
                Piece::Sql { text: "select\n 2".into(), line: 4 },
                Piece::Meta { text: "q".into(), line: 6 },
            ]
        );
        assert!(!s.open);
        // A backslash inside a statement is the statement's.
        assert_eq!(texts("select '\\d' from t;"), ["select '\\d' from t"]);
    }

    #[test]
    fn open_statements() {
        assert!(split("select 1").open);
        assert!(split("select 'a;").open);
        assert!(split("select 1 /* ;").open);
        assert!(!split("select 1; -- done").open);
        assert!(!split("select 1; /* done */").open);
        assert!(!split("").open);
        assert!(!split("\\d").open);
        assert_eq!(texts("select 1"), ["select 1"]);
    }
}
