//! The interactive SQL shell (`trawl` on a terminal), and the same statements read from stdin
//! when it is not one.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use clap::ValueEnum;
use futures::StreamExt;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{CompletionType, Config, Editor, Helper};
use tokio::runtime::Runtime;
use trawl_query::{Lake, Piece, QueryStats};

use crate::bundled::EXAMPLES;
use crate::cmd::query::describe;
use crate::output::{self, Format, Sink, to_stdout};

/// Rows of a table shown on the terminal before the rest is counted with a note.
pub(crate) const MAX_ROWS: usize = 100;

/// The help's first lines; the commands' lines come from [`META_COMMANDS`].
const HELP: &str = "\
Statements end with ';' and may span lines. Tab completes keywords, functions, stores and
columns (nested ones with dots: userIdentity.sessionContext...). Ctrl-C cancels a running query
(or clears the line), Ctrl-D or \\q quits.
";

/// A meta-command of the shell. The table drives `\?`, completion and dispatch.
struct MetaCommand {
    name: &'static str,
    /// Other names it answers to.
    aliases: &'static [&'static str],
    /// The arguments, as the help shows them.
    args: &'static str,
    help: &'static str,
    /// Runs it with its arguments; false to quit.
    run: fn(&mut Session<'_>, &[&str]) -> Result<bool>,
}

const META_COMMANDS: &[MetaCommand] = &[
    MetaCommand {
        name: "d",
        aliases: &["dt"],
        args: "[STORE]",
        help: "list the event data stores; with STORE, its columns, nested fields included",
        run: |s, a| s.describe(a),
    },
    MetaCommand {
        name: "format",
        aliases: &[],
        args: "FORMAT",
        help: "table, csv, json, ndjson or markdown",
        run: |s, a| s.set_format(a),
    },
    MetaCommand {
        name: "lookup",
        aliases: &[],
        args: "KEY=VALUE...",
        help: "Event history lookup (EventName=..., Username=..., ...), the newest 50, as `trawl lookup`",
        run: |s, a| s.lookup(a),
    },
    MetaCommand {
        name: "x",
        aliases: &[],
        args: "[on|off|auto]",
        help: "expanded display, a line per column: auto (the default) when a table is wider than the terminal",
        run: |s, a| s.set_expanded(a),
    },
    MetaCommand {
        name: "pager",
        aliases: &[],
        args: "[on|off]",
        help: "tables longer than the terminal through $PAGER (else less): on (the default), off, or toggled",
        run: |s, a| s.set_pager(a),
    },
    MetaCommand {
        name: "timing",
        aliases: &[],
        args: "[on|off]",
        help: "statistics after each query: on (the default), off, or toggled",
        run: |s, a| s.toggle_timing(a),
    },
    MetaCommand {
        name: "o",
        aliases: &[],
        args: "[FILE]",
        help: "results to FILE (none: back to the terminal)",
        run: |s, a| s.set_output(a),
    },
    MetaCommand {
        name: "i",
        aliases: &[],
        args: "FILE",
        help: "run the statements of FILE",
        run: |s, a| s.include(a),
    },
    MetaCommand {
        name: "set",
        aliases: &[],
        args: "[NAME VALUE]",
        help: "set a $NAME placeholder (none: list them)",
        run: |s, a| s.set_param(a),
    },
    MetaCommand {
        name: "trail",
        aliases: &[],
        args: "NAME URL",
        help: "a table over raw trail logs (s3://bucket/prefix/ or a directory)",
        run: |s, a| s.trail(a),
    },
    MetaCommand {
        name: "examples",
        aliases: &[],
        args: "[N]",
        help: "list the bundled audit queries, or run number N",
        run: |s, a| s.examples(a),
    },
    MetaCommand {
        name: "s",
        aliases: &["saved"],
        args: "[NAME [KEY=VALUE...]]",
        help: "list the lake's saved queries; with NAME, show its SQL and run it ($KEY set to VALUE)",
        run: |s, a| s.saved(a),
    },
    MetaCommand {
        name: "history",
        aliases: &[],
        args: "[N]",
        help: "the last N (20) statements run over the lake, from its query log",
        run: |s, a| s.history(a),
    },
    MetaCommand { name: "q", aliases: &["quit"], args: "", help: "quit", run: |_, _| Ok(false) },
    MetaCommand { name: "?", aliases: &["h", "help"], args: "", help: "this help", run: |s, a| s.help(a) },
];

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "JOIN",
    "LEFT JOIN",
    "CROSS JOIN",
    "UNNEST",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "IS NULL",
    "IS NOT NULL",
    "DISTINCT",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "WITH",
    "UNION ALL",
    "EXPLAIN",
    "EXPLAIN ANALYZE",
    "ON",
    "ASC",
    "DESC",
    "NULLS FIRST",
    "NULLS LAST",
    "BETWEEN",
    "INTERVAL",
    "CAST",
    "TRUE",
    "FALSE",
    "OVER",
    "PARTITION BY",
];

/// One shell: the lake, the settings its meta-commands change, and where results go.
pub(crate) struct Session<'r> {
    lake: Lake,
    /// The lake whose query log records each statement, when its settings ask for one.
    journal: Option<trawl_store::Lake>,
    runtime: &'r Runtime,
    /// This thread's runtime, which watches for Ctrl-C while a query runs.
    watcher: Runtime,
    format: Format,
    timing: bool,
    /// `\pager`: long tables on the terminal go through the pager.
    pager: bool,
    output: Option<(PathBuf, std::fs::File)>,
    interactive: bool,
    /// The files `\i` is running, outermost first: a file that includes itself is refused.
    including: Vec<PathBuf>,
    /// Statements and commands that failed.
    pub(crate) errors: usize,
    /// Statements a meta-command ran, for the editor's history.
    recall: Vec<String>,
    /// `\x`: `Auto`'s width is the terminal's, read when a table is shown.
    expanded: output::Expanded,
    /// Where the lake is: `\s` reads its saved queries.
    location: String,
}

/// How deep `\i` files may include one another.
const MAX_INCLUDE_DEPTH: usize = 16;

impl<'r> Session<'r> {
    pub(crate) fn new(
        location: &str,
        lake: Lake,
        journal: Option<trawl_store::Lake>,
        runtime: &'r Runtime,
        interactive: bool,
    ) -> Result<Self> {
        let watcher = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mut session = Self {
            lake,
            journal,
            runtime,
            watcher,
            format: Format::Table,
            timing: true,
            pager: true,
            output: None,
            interactive,
            including: Vec::new(),
            errors: 0,
            recall: Vec::new(),
            expanded: output::Expanded::Auto(0),
            location: location.to_owned(),
        };
        // With one store (or a store named demo), $EDS_ID names it, as in the bundled examples.
        let stores = session.lake.stores();
        let default = match stores {
            [one] => Some(one.name.clone()),
            _ => stores.iter().find(|s| s.name == "demo").map(|s| s.name.clone()),
        };
        if let Some(name) = default {
            session.lake.set_param("EDS_ID", &name);
        }
        Ok(session)
    }

    /// The interactive loop, on a terminal.
    pub(crate) fn interact(&mut self) -> Result<()> {
        let config = Config::builder()
            .auto_add_history(true)
            .completion_type(CompletionType::List)
            .max_history_size(10_000)?
            .build();
        let mut editor: Editor<LakeHelper, FileHistory> = Editor::with_config(config)?;
        editor.set_helper(Some(LakeHelper::new(&self.lake)));
        let history = history_path();
        if let Some(path) = &history {
            // A missing history file is a first session.
            let _ = editor.load_history(path);
        }
        note!(
            "trawl {}: SQL over {} event data store(s). \\? for help, \\q to quit.",
            env!("CARGO_PKG_VERSION"),
            self.lake.stores().len()
        );
        if let Some(id) = self.lake.params().get("EDS_ID") {
            note!("$EDS_ID is {id}");
        }
        loop {
            match editor.readline("trawl> ") {
                Ok(line) => {
                    if let Some(path) = &history {
                        if let Some(dir) = path.parent() {
                            let _ = std::fs::create_dir_all(dir);
                        }
                        let _ = editor.save_history(path);
                    }
                    let more = self.input(&line);
                    // What meta-commands ran (an example's SQL) is recalled as typed SQL is.
                    if !self.recall.is_empty() {
                        for entry in self.recall.drain(..) {
                            let _ = editor.add_history_entry(entry);
                        }
                        if let Some(path) = &history {
                            let _ = editor.save_history(path);
                        }
                    }
                    if !more {
                        return Ok(());
                    }
                }
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(rustyline::error::ReadlineError::Eof) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The files `\i` is running, as `a.sql -> b.sql`.
    fn include_chain(&self) -> String {
        let names: Vec<String> = self.including.iter().map(|p| p.display().to_string()).collect();
        names.join(" -> ")
    }

    /// Runs the statements and meta-commands of `text`; false when one of them quits. Errors
    /// are printed and do not end the session.
    pub(crate) fn input(&mut self, text: &str) -> bool {
        for piece in trawl_query::split(text).pieces {
            let result = match &piece {
                Piece::Meta { text, .. } => match self.meta(text) {
                    Ok(false) => return false,
                    other => other.map(|_| ()),
                },
                Piece::Sql { text, .. } => self.run_sql(text),
            };
            if let Err(e) = result {
                // The reader of the output went away: the session ends, quietly.
                if crate::closed_pipe(&e) {
                    return false;
                }
                self.errors += 1;
                note!("error: {}", crate::describe(&e));
            }
        }
        true
    }

    /// One meta-command (without its backslash); false to quit.
    fn meta(&mut self, command: &str) -> Result<bool> {
        let mut words = command.split_whitespace();
        let name = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        let found = META_COMMANDS.iter().find(|m| m.name == name || m.aliases.contains(&name));
        let Some(meta) = found else {
            let names =
                META_COMMANDS.iter().flat_map(|m| std::iter::once(m.name).chain(m.aliases.iter().copied()));
            match trawl_query::closest(name, names) {
                Some(c) => bail!("unknown command \\{name}; did you mean \\{c}? \\? lists the commands"),
                None => bail!("unknown command \\{name}; \\? lists the commands"),
            }
        };
        (meta.run)(self, &args)
    }

    fn help(&mut self, _: &[&str]) -> Result<bool> {
        let mut out = String::from(HELP);
        out.push('\n');
        for m in META_COMMANDS {
            let call = format!("\\{} {}", m.name, m.args);
            out.push_str(&format!("  {call:<18} {}\n", m.help));
        }
        self.emit(&out)?;
        Ok(true)
    }

    /// The keys most seen in a map column, over a sample of the store's events: a line for
    /// `\d STORE`, or nothing when none are seen (or the sample cannot be read).
    fn map_keys(&self, store: &str, column: &str) -> String {
        let sql = format!(
            "SELECT k, count(*) AS n FROM (SELECT unnest(map_keys({column})) AS k FROM \
             (SELECT {column} FROM \"{store}\" LIMIT {KEY_SAMPLE}) s) t GROUP BY k ORDER BY n DESC, k LIMIT 12"
        );
        let Ok((batches, _)) = self.runtime.block_on(self.lake.collect(&sql)) else { return String::new() };
        let mut keys = Vec::new();
        for batch in &batches {
            let options = FormatOptions::default();
            let (Ok(k), Ok(n)) = (
                ArrayFormatter::try_new(batch.column(0).as_ref(), &options),
                ArrayFormatter::try_new(batch.column(1).as_ref(), &options),
            ) else {
                continue;
            };
            for row in 0..batch.num_rows() {
                keys.push(format!("{} ({})", k.value(row), n.value(row)));
            }
        }
        if keys.is_empty() {
            return String::new();
        }
        format!("  keys seen (of {KEY_SAMPLE} events at most): {}\n", keys.join(", "))
    }

    fn describe(&mut self, args: &[&str]) -> Result<bool> {
        let mut out = String::new();
        match args {
            [] => {
                out.push_str("name\tid\n");
                for s in self.lake.stores() {
                    out.push_str(&format!("{}\t{}\n", s.name, s.id));
                }
                for (name, location) in self.lake.trails() {
                    out.push_str(&format!("{name}\ttrail logs at {location}\n"));
                }
            }
            [store] => {
                let schema = self
                    .runtime
                    .block_on(self.lake.context().table_provider(*store))
                    .map_err(|_| anyhow!("{}", self.lake.unknown_store(store)))?
                    .schema();
                for field in schema.fields() {
                    describe_field(&mut out, field.name(), field.data_type(), 0);
                    if matches!(field.data_type(), DataType::Map(..)) {
                        out.push_str(&self.map_keys(store, field.name()));
                    }
                }
            }
            _ => return usage("d"),
        }
        self.emit(&out)?;
        Ok(true)
    }

    fn set_format(&mut self, args: &[&str]) -> Result<bool> {
        let [f] = args else { return usage("format") };
        let format = Format::from_str(f, true)
            .map_err(|_| anyhow!("unknown format {f}: use table, csv, json, ndjson or markdown"))?;
        if format == Format::Parquet {
            bail!("parquet output needs `trawl query --format parquet -o FILE`");
        }
        self.format = format;
        note!("format is {}", f.to_ascii_lowercase());
        Ok(true)
    }

    /// `\lookup KEY=VALUE...` over `$EDS_ID`'s store (or the only one).
    fn lookup(&mut self, args: &[&str]) -> Result<bool> {
        if args.is_empty() {
            return usage("lookup");
        }
        let store = match (self.lake.params().get("EDS_ID"), self.lake.stores()) {
            (Some(store), _) => store.clone(),
            (None, [one]) => one.name.clone(),
            _ => bail!("\\lookup reads the store $EDS_ID names: \\set EDS_ID STORE"),
        };
        let args = crate::args::LookupArgs {
            attrs: args.iter().map(|a| (*a).to_owned()).collect(),
            start: None,
            end: None,
            store: Some(store.clone()),
            max_results: 50,
            format: crate::args::LookupFormat::Table,
        };
        let sql = self.runtime.block_on(crate::cmd::lookup::statement(&self.lake, &store, &args, false))?;
        self.run_sql(&sql)?;
        Ok(true)
    }

    /// `\x` toggles on and off; `\x on|off|auto` sets.
    fn set_expanded(&mut self, args: &[&str]) -> Result<bool> {
        use output::Expanded;
        self.expanded = match (args, self.expanded) {
            ([], Expanded::On) => Expanded::Off,
            ([], _) => Expanded::On,
            (["on"], _) => Expanded::On,
            (["off"], _) => Expanded::Off,
            (["auto"], _) => Expanded::Auto(0),
            _ => return usage("x"),
        };
        let state = match self.expanded {
            Expanded::Off => "off",
            Expanded::On => "on",
            Expanded::Auto(_) => "auto",
        };
        note!("expanded display is {state}");
        Ok(true)
    }

    fn set_pager(&mut self, args: &[&str]) -> Result<bool> {
        self.pager = switch("pager", self.pager, args)?;
        Ok(true)
    }

    fn toggle_timing(&mut self, args: &[&str]) -> Result<bool> {
        self.timing = switch("timing", self.timing, args)?;
        Ok(true)
    }

    fn set_output(&mut self, args: &[&str]) -> Result<bool> {
        self.output = match args {
            [] => None,
            [file] => {
                let f = std::fs::File::create(file).with_context(|| format!("cannot create {file}"))?;
                Some((PathBuf::from(file), f))
            }
            _ => return usage("o"),
        };
        Ok(true)
    }

    fn include(&mut self, args: &[&str]) -> Result<bool> {
        let [file] = args else { return usage("i") };
        let path = std::fs::canonicalize(file).with_context(|| format!("cannot read {file}"))?;
        if self.including.contains(&path) {
            bail!("\\i {file}: the file includes itself (through {})", self.include_chain());
        }
        if self.including.len() >= MAX_INCLUDE_DEPTH {
            bail!("\\i {file}: more than {MAX_INCLUDE_DEPTH} files deep ({})", self.include_chain());
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {file}"))?;
        self.including.push(path);
        let go_on = self.input(&text);
        self.including.pop();
        Ok(go_on)
    }

    fn set_param(&mut self, args: &[&str]) -> Result<bool> {
        match args {
            [] => {
                let mut params: Vec<_> = self.lake.params().iter().collect();
                params.sort();
                let out: String = params.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
                self.emit(&out)?;
            }
            [name, value @ ..] if !value.is_empty() => {
                self.lake.set_param(name.trim_start_matches('$'), &value.join(" "));
            }
            _ => return usage("set"),
        }
        Ok(true)
    }

    fn trail(&mut self, args: &[&str]) -> Result<bool> {
        let [name, location] = args else { return usage("trail") };
        self.lake.register_trail(name, location, std::sync::Arc::new(trawl_ingest::decode_file))?;
        note!("{name}: the raw trail logs at {location}");
        Ok(true)
    }

    fn examples(&mut self, args: &[&str]) -> Result<bool> {
        match args {
            [] => {
                let mut out = String::new();
                for (i, (name, sql)) in EXAMPLES.iter().enumerate() {
                    out.push_str(&format!("{:>3}  {:<38} {}\n", i + 1, name, question(sql)));
                }
                out.push_str("run one with \\examples N\n");
                self.emit(&out)?;
            }
            [which] => {
                let found = match which.parse::<usize>() {
                    Ok(n) => EXAMPLES.get(n.wrapping_sub(1)),
                    Err(_) => EXAMPLES.iter().find(|(name, _)| name.starts_with(which)),
                };
                let (name, sql) =
                    found.ok_or_else(|| anyhow!("no example {which}; \\examples lists them"))?;
                let body: Vec<&str> = sql
                    .lines()
                    .skip_while(|l| l.trim_start().starts_with("--") || l.trim().is_empty())
                    .collect();
                self.show_and_run(&format!("{name}: {}", question(sql)), &body.join("\n"))?;
            }
            _ => return usage("examples"),
        }
        Ok(true)
    }

    fn saved(&mut self, args: &[&str]) -> Result<bool> {
        let lake = trawl_store::Lake::open(&self.location)
            .with_context(|| format!("cannot open the lake at {}", self.location))?;
        let Some((name, values)) = args.split_first() else {
            let queries = self.runtime.block_on(lake.saved_queries())?;
            let mut text = Vec::new();
            crate::cmd::saved::list(&mut text, &queries, false)?;
            self.emit(&String::from_utf8_lossy(&text))?;
            return Ok(true);
        };
        let query = self.runtime.block_on(crate::cmd::saved::find(&lake, name))?;
        for value in values {
            let Some((key, value)) = value.split_once('=') else { return usage("s") };
            self.lake.set_param(key.trim_start_matches('$'), value);
        }
        let description =
            if query.description.is_empty() { String::new() } else { format!(": {}", query.description) };
        self.show_and_run(&format!("{}{description}", query.name), &query.sql)?;
        Ok(true)
    }

    /// Shows a statement a meta-command runs under a `-- header` line, puts it in the editor's
    /// history (the up arrow recalls it, to edit and run again), and runs it.
    fn show_and_run(&mut self, header: &str, sql: &str) -> Result<()> {
        // Ended by ';' as the shell needs to run it.
        let body = format!("{};", sql.trim_end().trim_end_matches(';'));
        self.emit(&format!("-- {header}\n{body}\n"))?;
        self.recall.push(body);
        self.run_sql(sql)
    }

    fn history(&mut self, args: &[&str]) -> Result<bool> {
        let limit = match args {
            [] => 20,
            [n] => match n.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => return usage("history"),
            },
            _ => return usage("history"),
        };
        if self.journal.is_none() {
            note!(
                "the lake keeps no query log now (`trawl lake set --query-log on` keeps one): earlier records only"
            );
        }
        let result = self.run_statement(&crate::cmd::history::history_sql(limit));
        // Reading the log is not itself recorded in it.
        drop(self.lake.take_query_records());
        result?;
        Ok(true)
    }

    /// Plans and runs one statement: a spinner while it runs, Ctrl-C cancels it. The query runs
    /// on the worker runtime; this thread's own runtime watches for Ctrl-C, so a query that
    /// keeps every worker busy can still be cancelled. Its batches are written as they come, to
    /// the `\o` file or the terminal (where a table shows its first rows and counts the rest).
    fn run_sql(&mut self, sql: &str) -> Result<()> {
        let result = self.run_statement(sql);
        if let Some(store) = &self.journal {
            // Recorded whatever came of it: a statement that failed is evidence too.
            self.runtime.block_on(crate::cmd::record(store, &self.lake))?;
        }
        result
    }

    fn run_statement(&mut self, sql: &str) -> Result<()> {
        let running = self.runtime.block_on(self.lake.start(sql))?;
        // Two batches in flight: the query waits for the terminal, not the other way round.
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let task = self.runtime.spawn({
            let running = running.clone();
            async move {
                let mut batches = match running.stream() {
                    Ok(batches) => batches,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                while let Some(batch) = batches.next().await {
                    let failed = batch.is_err();
                    if tx.send(batch).await.is_err() || failed {
                        return;
                    }
                }
            }
        });
        let to_file = self.output.as_ref().map(|(path, _)| path.clone());
        let on_terminal = self.interactive && to_file.is_none();
        let max_rows = on_terminal.then_some(MAX_ROWS);
        // A table for the terminal is held whole (it is, to size its columns) and paged.
        let held = (on_terminal && self.pager && self.format == Format::Table).then(output::Held::default);
        let stdout = output::Stdout::new();
        let closed = stdout.closed();
        let out: Box<dyn Write + Send + '_> = match (&mut self.output, &held) {
            (Some((_, file)), _) => Box::new(file),
            (None, Some(held)) => Box::new(held.clone()),
            (None, None) => Box::new(stdout),
        };
        // Auto expands a table wider than the terminal; a file gets the table as it is.
        let expanded = match self.expanded {
            output::Expanded::Auto(_) if to_file.is_some() || !self.interactive => output::Expanded::Off,
            output::Expanded::Auto(_) => output::Expanded::Auto(output::terminal_width()),
            mode => mode,
        };
        let mut sink = Sink::new(self.format, running.schema(), out, max_rows)?
            .with_expanded(expanded)
            .with_width(on_terminal.then(output::terminal_width));
        let finished = self.watcher.block_on(async {
            let spinner = Spinner::new();
            let ctrl_c = tokio::signal::ctrl_c();
            tokio::pin!(ctrl_c);
            let mut tick = tokio::time::interval(Duration::from_millis(120));
            let result = loop {
                tokio::select! {
                    next = rx.recv() => match next {
                        // The spinner steps aside while rows reach the terminal.
                        Some(Ok(batch)) => {
                            if let Err(e) = spinner.bar.suspend(|| sink.write(&batch)) {
                                break Err(e);
                            }
                        }
                        Some(Err(e)) => break Err(e.into()),
                        None => break Ok(true),
                    },
                    _ = tick.tick() => spinner.update(&running.stats()),
                    _ = &mut ctrl_c => break Ok(false),
                }
            };
            spinner.finish();
            result
        });
        // Its batches dropped before it returns: the statement's record is complete.
        task.abort();
        let _ = self.runtime.block_on(task);
        let written = match finished {
            Ok(true) => sink.finish().and_then(|cut| {
                if let Some(held) = &held {
                    output::page(&held.take())?;
                }
                Ok(cut)
            }),
            Ok(false) => {
                note!("query cancelled");
                return Ok(());
            }
            Err(e) => Err(e),
        };
        let cut = match to_file {
            Some(path) => written.with_context(|| format!("cannot write {}", path.display()))?,
            None => output::ended(written, &closed)?,
        };
        if cut > 0 {
            note!("({MAX_ROWS} rows shown, {cut} more; \\o FILE writes them all)");
        }
        if self.timing {
            note!("{}", describe(&running.stats()));
        }
        Ok(())
    }

    /// Text output of a meta-command, to the `\o` file or stdout.
    fn emit(&mut self, text: &str) -> Result<()> {
        match &mut self.output {
            Some((_, file)) => file.write_all(text.as_bytes())?,
            None => to_stdout(|out| Ok(out.write_all(text.as_bytes())?))?,
        }
        Ok(())
    }
}

/// A switch of the shell (`\timing`, `\pager`): no argument toggles it, `on` or `off` sets it;
/// the new state is said.
fn switch(name: &str, now: bool, args: &[&str]) -> Result<bool> {
    let on = match args {
        [] => !now,
        ["on"] => true,
        ["off"] => false,
        _ => {
            usage(name)?;
            now
        }
    };
    note!("{name} is {}", if on { "on" } else { "off" });
    Ok(on)
}

/// The error for a meta-command called with the wrong arguments.
fn usage(name: &str) -> Result<bool> {
    let args = META_COMMANDS.iter().find(|m| m.name == name).map_or("", |m| m.args);
    bail!("usage: \\{name} {args}")
}

/// The `-- Question:` header of an example.
pub(crate) fn question(sql: &str) -> &str {
    sql.lines().next().and_then(|l| l.strip_prefix("-- Question:")).map_or("", str::trim)
}

/// A column as Lake's schema reference writes types, nested fields indented under it.
fn describe_field(out: &mut String, name: &str, t: &DataType, depth: usize) {
    out.push_str(&format!(
        "{:indent$}{name:<width$} {}\n",
        "",
        lake_type(t),
        indent = depth * 2,
        width = 40 - depth * 2
    ));
    match t {
        DataType::Struct(fields) => {
            for f in fields {
                describe_field(out, f.name(), f.data_type(), depth + 1);
            }
        }
        // The fields of each element (`resources`: type, arn, ...), as UNNEST gives them.
        DataType::List(item) | DataType::LargeList(item)
            if matches!(item.data_type(), DataType::Struct(_)) =>
        {
            if let DataType::Struct(fields) = item.data_type() {
                for f in fields {
                    describe_field(out, &format!("[].{}", f.name()), f.data_type(), depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// Map keys listed per map column by `\d STORE`, from a sample of this many events.
const KEY_SAMPLE: usize = 10_000;

/// A type as Lake's schema reference writes it; a struct is a `row` whose fields follow.
fn lake_type(t: &DataType) -> String {
    match t {
        DataType::Struct(_) => "row".into(),
        t => trawl_query::trino_type(t),
    }
}

fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TRAWL_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share/trawl/history"))
}

/// A spinner on stderr (when it is a terminal) for queries that take more than a moment.
struct Spinner {
    bar: indicatif::ProgressBar,
    started: std::time::Instant,
}

impl Spinner {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        Self { bar, started: std::time::Instant::now() }
    }

    fn update(&self, stats: &QueryStats) {
        if self.started.elapsed() < Duration::from_millis(300) {
            return;
        }
        self.bar.set_message(format!(
            "{:.1} MiB scanned, {} events (Ctrl-C cancels)",
            stats.bytes_scanned as f64 / (1 << 20) as f64,
            stats.events_scanned
        ));
        self.bar.tick();
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Completion, hints and multi-line input for the editor.
struct LakeHelper {
    /// Lower-case words to complete: functions, stores, columns and nested column paths.
    words: Vec<String>,
}

impl LakeHelper {
    fn new(lake: &Lake) -> Self {
        let mut words: Vec<String> = Vec::new();
        let state = lake.context().state();
        words.extend(state.scalar_functions().keys().cloned());
        words.extend(state.aggregate_functions().keys().cloned());
        words.extend(state.window_functions().keys().cloned());
        words.extend(state.higher_order_functions().keys().cloned());
        for store in lake.stores() {
            words.push(store.name.clone());
            words.push(store.id.clone());
        }
        words.extend(lake.columns().iter().cloned());
        words.sort();
        words.dedup();
        Self { words }
    }

    /// The start of the word before `pos`, and the candidates completing it.
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '$' | '\\' | '-')))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return (start, Vec::new());
        }
        let lower = word.to_lowercase();
        let upper = word.chars().all(|c| !c.is_lowercase());
        let mut found: Vec<String> =
            META_COMMANDS.iter().map(|m| format!("\\{}", m.name)).filter(|m| m.starts_with(word)).collect();
        found.extend(
            KEYWORDS
                .iter()
                .filter(|k| k.to_lowercase().starts_with(&lower))
                .map(|k| if upper { k.to_string() } else { k.to_lowercase() }),
        );
        found.extend(self.words.iter().filter(|w| w.starts_with(&lower)).cloned());
        (start, found)
    }
}

impl Completer for LakeHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, found) = self.candidates(line, pos);
        Ok((start, found.into_iter().map(|w| Pair { display: w.clone(), replacement: w }).collect()))
    }
}

impl Hinter for LakeHelper {
    type Hint = String;

    /// The rest of the first completion of the word being typed, once it is 3 characters long.
    fn hint(&self, line: &str, pos: usize, _ctx: &rustyline::Context<'_>) -> Option<String> {
        if pos < line.len() {
            return None;
        }
        let (start, found) = self.candidates(line, pos);
        let typed = pos - start;
        if typed < 3 {
            return None;
        }
        found.into_iter().find(|w| w.len() > typed).map(|w| w[typed..].to_owned())
    }
}

impl Highlighter for LakeHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

impl Validator for LakeHelper {
    /// A statement is complete at its `;`; meta-commands at the end of their line.
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let done = !trawl_query::split(ctx.input()).open;
        Ok(if done { ValidationResult::Valid(None) } else { ValidationResult::Incomplete })
    }
}

impl Helper for LakeHelper {}

/// Runs the statements of stdin (not a terminal) as the shell would.
pub(crate) fn run_stdin(session: &mut Session<'_>) -> Result<()> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("cannot read stdin")?;
    session.input(&text);
    Ok(())
}

/// Whether stdin and stdout are both a terminal.
pub(crate) fn on_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}
