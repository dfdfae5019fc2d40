//! Framing: finds the CloudTrail events in a file, whatever shape it has, and recovers the
//! good records around malformed ones.
//!
//! Shapes: `{"Records":[...]}` (trail files), bare arrays, NDJSON or concatenated values,
//! EventBridge envelopes (`detail`), CloudWatch Logs subscription envelopes (`logEvents[].message`),
//! LookupEvents records (`CloudTrailEvent` as a string), `{"aws":{"cloudtrail":{...}}}` wrappers,
//! and digest files (recognised, not events).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::json::{self, Entries, Json, Kind, StringState, as_str, kind};

/// Nested envelopes deeper than this are refused.
const MAX_DEPTH: usize = 4;

/// Where a text sits in its file: a segment's own bytes follow `prefix` bytes added to make it
/// a file by itself, start at `offset` of the file after `lines` line breaks, and hold records
/// from number `index` on. A whole file's place is all zeros.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Place {
    pub(crate) prefix: usize,
    pub(crate) offset: u64,
    pub(crate) lines: usize,
    pub(crate) index: usize,
}

/// Receives what framing finds, in file order.
pub(crate) trait Visitor {
    /// A CloudTrail event: record index, byte offset, its JSON text and its top-level entries.
    fn event(&mut self, index: usize, offset: usize, text: &str, entries: &Entries<'_>);
    /// A malformed or unusable record (`index`), or malformed framing between records (`None`).
    fn problem(&mut self, index: Option<usize>, offset: usize, reason: String);
    /// The file is a CloudTrail digest file.
    fn digest(&mut self);
}

/// What kind of JSON object a record is.
enum Class<'a> {
    Event,
    Records(Json<'a>),
    Lookup(Json<'a>),
    CloudWatch(Json<'a>),
    Detail(Json<'a>),
    Wrapped(Json<'a>),
    Digest,
    Control,
    Unknown,
}

fn classify<'a>(e: &Entries<'a>) -> Class<'a> {
    if let Some(r) = e.get("Records").filter(|r| kind(*r) == Kind::Array) {
        return Class::Records(r);
    }
    if let Some(r) = e.get("CloudTrailEvent").filter(|r| kind(*r) == Kind::String) {
        return Class::Lookup(r);
    }
    if e.get("messageType").is_some() {
        if let Some(r) = e.get("logEvents").filter(|r| kind(*r) == Kind::Array) {
            return Class::CloudWatch(r);
        }
        // Only a control message is left out silently: a data message without its events lost
        // them.
        if e.str("messageType").as_deref() == Some("CONTROL_MESSAGE") {
            return Class::Control;
        }
    }
    if e.get("detail-type").is_some()
        && let Some(r) = e.get("detail").filter(|r| kind(*r) == Kind::Object)
    {
        return Class::Detail(r);
    }
    if e.get("digestStartTime").is_some() || (e.get("logFiles").is_some() && e.get("digestEndTime").is_some())
    {
        return Class::Digest;
    }
    const EVENT_KEYS: &[&str] =
        &["eventTime", "eventVersion", "eventName", "eventSource", "eventID", "@timestamp"];
    if EVENT_KEYS.iter().any(|k| e.get(k).is_some()) {
        return Class::Event;
    }
    if let Some(inner) = e.get("aws").and_then(Entries::of).and_then(|a| a.get("cloudtrail"))
        && kind(inner) == Kind::Object
    {
        return Class::Wrapped(inner);
    }
    Class::Unknown
}

/// A JSON value, parsed once: an object's text and entries, or any other value.
enum Value<'t> {
    Object(&'t str, Entries<'t>),
    Other(Json<'t>),
}

impl<'t> Value<'t> {
    fn of(raw: Json<'t>) -> Self {
        match Entries::of(raw) {
            Some(entries) => Value::Object(raw.get(), entries),
            None => Value::Other(raw),
        }
    }
}

/// Walks one file's text.
pub(crate) struct Framer<'t, 'v, V: Visitor> {
    text: &'t str,
    /// Offsets of the bytes that were not UTF-8 (replaced by NUL in `text`), in order.
    invalid_utf8: &'t [usize],
    place: Place,
    visitor: &'v mut V,
    next_index: usize,
}

impl<'t, 'v, V: Visitor> Framer<'t, 'v, V> {
    /// Frames `text` (a whole file, or a segment of one), reporting to `visitor`. `invalid_utf8`
    /// are the offsets of bytes that were not UTF-8 and were replaced by NUL: a record holding
    /// one is reported as such. `place` says where `text` sits in its file (a segment's records
    /// follow the file's before it, and offsets named in reasons are the file's); returns the
    /// number of the record after the last.
    pub(crate) fn run(text: &'t str, invalid_utf8: &'t [usize], place: Place, visitor: &'v mut V) -> usize {
        let mut framer = Framer { text, invalid_utf8, place, visitor, next_index: place.index };
        framer.top_level();
        framer.next_index
    }

    /// The file offset of `at`, an offset of the text.
    fn in_file(&self, at: usize) -> usize {
        (self.place.offset as usize + at).saturating_sub(self.place.prefix)
    }

    /// Where and why JSON starting at `start` broke at `at`: serde_json's reason, unless a byte
    /// that was not UTF-8 is where it broke.
    fn reason(&self, start: usize, at: usize, e: &serde_json::Error) -> (usize, String) {
        let first = self.invalid_utf8.partition_point(|&i| i < start);
        match self.invalid_utf8.get(first) {
            Some(&bad) if bad <= at + 1 => (bad, "invalid UTF-8".to_owned()),
            _ => (at, strip_position(&e.to_string())),
        }
    }

    fn bytes(&self) -> &'t [u8] {
        self.text.as_bytes()
    }

    fn skip_ws(&self, pos: usize) -> usize {
        json::skip_ws(self.bytes(), pos)
    }

    fn offset_in_text(&self, s: &str) -> usize {
        s.as_ptr() as usize - self.text.as_ptr() as usize
    }

    /// Parses one JSON value at `start`; returns it and the offset just past it. An object is
    /// parsed into its entries in the same pass that finds its end.
    fn parse_at(&self, start: usize) -> Result<(Value<'t>, usize), (usize, String)> {
        let slice = &self.text[start..];
        let error =
            |e: serde_json::Error| self.reason(start, start + offset_of(slice, e.line(), e.column()), &e);
        if slice.starts_with('{') {
            let mut stream = serde_json::Deserializer::from_str(slice).into_iter::<Entries<'t>>();
            return match stream.next() {
                Some(Ok(entries)) => {
                    let end = stream.byte_offset();
                    Ok((Value::Object(&slice[..end], entries), start + end))
                }
                Some(Err(e)) => Err(error(e)),
                None => Err((self.text.len(), "EOF while parsing an object".to_owned())),
            };
        }
        let mut de = serde_json::Deserializer::from_str(slice);
        match <&RawValue>::deserialize(&mut de) {
            Ok(raw) => {
                let end = self.offset_in_text(raw.get()) + raw.get().len();
                Ok((Value::Other(raw.into()), end))
            }
            Err(e) => Err(error(e)),
        }
    }

    fn take_index(&mut self) -> usize {
        let i = self.next_index;
        self.next_index += 1;
        i
    }

    fn top_level(&mut self) {
        let mut pos = self.skip_ws(self.text.strip_prefix('\u{feff}').map_or(0, |_| 3));
        while pos < self.text.len() {
            pos = match self.bytes()[pos] {
                b'[' => self.array(pos, 0),
                b'{' => match self.records_array_at(pos) {
                    Some(array) => self.records_wrapper(array),
                    None => self.one_value(pos),
                },
                _ => {
                    let end = self.resync(pos + 1, true);
                    let index = self.take_index();
                    self.visitor.problem(Some(index), pos, "expected a JSON object or array".to_owned());
                    end
                }
            };
            pos = self.skip_ws(pos);
        }
    }

    /// A top-level value that is not a records wrapper (an event, an envelope, an NDJSON line).
    fn one_value(&mut self, pos: usize) -> usize {
        match self.parse_at(pos) {
            Ok((value, end)) => {
                self.element(value, pos, 0);
                end
            }
            Err((at, reason)) => {
                let resume = self.broken(pos, at, &reason, 0);
                self.resync(resume, true)
            }
        }
    }

    /// If the object at `pos` starts with `"Records": [`, the offset of the `[`.
    fn records_array_at(&self, pos: usize) -> Option<usize> {
        let p = self.skip_ws(pos + 1);
        let rest = self.text.get(p..)?;
        let rest = rest.strip_prefix("\"Records\"")?;
        let p = self.skip_ws(self.offset_in_text(rest));
        let p = self.skip_ws(p + usize::from(self.bytes().get(p) == Some(&b':')));
        (self.bytes().get(p) == Some(&b'[')).then_some(p)
    }

    /// `{"Records":[...]}`: the array, then the rest of the wrapper object.
    fn records_wrapper(&mut self, array: usize) -> usize {
        let end = self.array(array, 0);
        let p = self.skip_ws(end);
        match self.bytes().get(p) {
            Some(b'}') => p + 1,
            None => {
                self.visitor.problem(None, p, "file ends inside the Records object".to_owned());
                p
            }
            Some(_) => {
                // Other keys after Records: skip them, keeping the records already read.
                let mut depth = 1usize;
                let mut strings = StringState::default();
                for (q, &c) in self.bytes().iter().enumerate().skip(p) {
                    if strings.inside(c) {
                        continue;
                    }
                    match c {
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        return q + 1;
                    }
                }
                self.text.len()
            }
        }
    }

    /// A JSON array of records at `pos` (its `[`), tolerant of bad elements and separators. At
    /// the top level, a record may also start a line: an NDJSON line whose `{` was damaged into
    /// `[` would otherwise swallow every line after it.
    fn array(&mut self, pos: usize, depth: usize) -> usize {
        let len = self.text.len();
        let mut pos = pos + 1;
        loop {
            pos = self.skip_ws(pos);
            if pos >= len {
                self.visitor.problem(None, pos, "file ends inside an array of records".to_owned());
                return len;
            }
            if self.bytes()[pos] == b']' {
                return pos + 1;
            }
            let start = pos;
            match self.parse_at(start) {
                Ok((value, end)) => {
                    self.element(value, start, depth);
                    pos = self.skip_ws(end);
                    match self.bytes().get(pos) {
                        Some(b',') => pos += 1,
                        Some(b']') => return pos + 1,
                        Some(b'{' | b'[') => {
                            self.visitor.problem(None, pos, "missing ',' between records".to_owned())
                        }
                        Some(b'}') => {
                            self.visitor.problem(None, pos, "unexpected '}' between records".to_owned());
                            while matches!(self.bytes().get(pos), Some(b'}' | b' ' | b'\n' | b'\r' | b'\t')) {
                                pos += 1;
                            }
                            if self.bytes().get(pos) == Some(&b',') {
                                pos += 1;
                            }
                        }
                        None => {
                            self.visitor.problem(
                                None,
                                pos,
                                "file ends inside an array of records".to_owned(),
                            );
                            return len;
                        }
                        Some(_) => {
                            self.visitor.problem(None, pos, "expected ',' or ']' after a record".to_owned());
                            // A stray byte where the comma was: the record after it is whole.
                            pos = self.resync(pos + 1, depth == 0);
                        }
                    }
                }
                Err((at, reason)) => {
                    let resume = self.broken(start, at, &reason, depth);
                    pos = self.resync(resume, depth == 0);
                }
            }
        }
    }

    /// A record at `start` whose JSON breaks at `at`: reported, and the whole events that start
    /// before the break recovered (an envelope broken after its event keeps the event; a record
    /// whose string runs on into the next record keeps that one). Returns where to look for the
    /// next record: past the break and past every event recovered, so none is read twice.
    fn broken(&mut self, start: usize, at: usize, reason: &str, depth: usize) -> usize {
        let index = self.take_index();
        let mut recovered = 0;
        let mut p = start + 1;
        let mut resume = at.max(start + 1);
        // A recovered event may end past `at`: the scan stops there too.
        while let Some(i) = self.bytes().get(p..at).and_then(|rest| memchr::memchr(b'{', rest)) {
            p += i;
            match self.parse_at(p) {
                Ok((value, end)) => {
                    // Only whole events: a nested object with an eventTime key is not one.
                    let whole = |e: &Entries<'_>| {
                        ["eventTime", "eventName", "eventSource"].iter().all(|k| e.get(k).is_some())
                    };
                    let Value::Object(_, e) = &value else {
                        p = end;
                        continue;
                    };
                    if matches!(classify(e), Class::Event) && whole(e) {
                        self.element(value, p, depth);
                    } else if let Some(message) = log_event(e) {
                        // An item of a CloudWatch Logs envelope broken elsewhere.
                        let index = self.take_index();
                        self.embedded(index, p, Some(message), "logEvents[].message");
                    } else {
                        p = end;
                        continue;
                    }
                    recovered += 1;
                    resume = resume.max(end);
                    p = end;
                }
                Err(_) => p += 1,
            }
        }
        let note = match recovered {
            0 => String::new(),
            1 => "; the event inside it was recovered".to_owned(),
            n => format!("; the {n} events inside it were recovered"),
        };
        let at = self.in_file(at);
        self.visitor.problem(Some(index), start, format!("{reason} at byte {at}{note}"));
        resume
    }

    /// The next offset from `from` on where a record starts: a `{` that follows `,` or `[`
    /// (or a line break, for NDJSON), or nothing but whitespace from `from` (past a stray
    /// byte), and parses as an event or envelope. The end of the text when there is none.
    fn resync(&self, from: usize, lines: bool) -> usize {
        let b = self.bytes();
        let first = self.skip_ws(from);
        let mut p = from;
        while p < b.len() {
            match memchr::memchr(b'{', &b[p..]) {
                None => return b.len(),
                Some(i) => p += i,
            }
            let mut newline = false;
            let before = b[..p].iter().rev().find(|&&c| {
                newline |= c == b'\n';
                !matches!(c, b' ' | b'\t' | b'\r' | b'\n')
            });
            let boundary = p == first
                || match before {
                    Some(b',' | b'[') => true,
                    None => true,
                    _ => lines && newline,
                };
            if boundary && self.record_at(p) {
                return p;
            }
            p += 1;
        }
        b.len()
    }

    /// True when an object that is an event or an envelope starts at `p`.
    fn record_at(&self, p: usize) -> bool {
        self.bytes().get(p) == Some(&b'{')
            && matches!(self.parse_at(p), Ok((Value::Object(_, e), _)) if !matches!(classify(&e), Class::Unknown))
    }

    /// One record (array element, line or envelope content) at `offset`.
    fn element(&mut self, value: Value<'t>, offset: usize, depth: usize) {
        let (text, entries) = match value {
            Value::Object(text, entries) => (text, entries),
            Value::Other(raw) => {
                let index = self.take_index();
                let what = match kind(raw) {
                    Kind::Array => "an array",
                    Kind::String => "a string",
                    Kind::Number => "a number",
                    Kind::Bool => "a boolean",
                    Kind::Null => "null",
                    Kind::Object => "an object",
                };
                self.visitor.problem(Some(index), offset, format!("record is {what}, not a JSON object"));
                return;
            }
        };
        if depth > MAX_DEPTH {
            let index = self.take_index();
            self.visitor.problem(Some(index), offset, "envelopes nested too deeply".to_owned());
            return;
        }
        match classify(&entries) {
            Class::Event => {
                let index = self.take_index();
                self.visitor.event(index, offset, text, &entries);
            }
            Class::Records(array) => {
                let at = self.offset_in_text(array.get());
                self.array(at, depth + 1);
            }
            Class::Detail(inner) | Class::Wrapped(inner) => self.element(Value::of(inner), offset, depth + 1),
            Class::Lookup(s) => {
                let index = self.take_index();
                self.embedded(index, offset, as_str(s), "CloudTrailEvent");
            }
            Class::CloudWatch(events) => {
                let Some(items) = events.items() else { return };
                for item in items {
                    let index = self.take_index();
                    let at = self.offset_in_text(item.get());
                    let message = Entries::of(item).and_then(|e| e.str("message"));
                    self.embedded(index, at, message, "logEvents[].message");
                }
            }
            Class::Digest => self.visitor.digest(),
            Class::Control => {}
            Class::Unknown => {
                let index = self.take_index();
                self.visitor.problem(
                    Some(index),
                    offset,
                    "not a CloudTrail event: no eventTime, eventName, eventSource or eventID".to_owned(),
                );
            }
        }
    }

    /// An event carried as a JSON string inside an envelope.
    fn embedded(&mut self, index: usize, offset: usize, text: Option<Cow<'_, str>>, what: &str) {
        let Some(text) = text else {
            self.visitor.problem(Some(index), offset, format!("{what} is not a string"));
            return;
        };
        match serde_json::from_str::<Entries<'_>>(&text) {
            Ok(entries) if matches!(classify(&entries), Class::Event) => {
                self.visitor.event(index, offset, &text, &entries);
            }
            Ok(_) => self.visitor.problem(Some(index), offset, format!("{what} is not a CloudTrail event")),
            Err(e) => self.visitor.problem(Some(index), offset, format!("{what} is not a JSON object: {e}")),
        }
    }
}

/// The message of a CloudWatch Logs event (`{"id","timestamp","message"}`) whose message is a
/// CloudTrail event.
fn log_event<'a>(e: &Entries<'a>) -> Option<Cow<'a, str>> {
    e.get("timestamp")?;
    let message = e.str("message")?;
    let event = serde_json::from_str::<Entries<'_>>(&message).ok()?;
    matches!(classify(&event), Class::Event).then_some(message)
}

/// Byte offset of 1-based `line` and `column` in `s`.
fn offset_of(s: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in s.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset + column.saturating_sub(1).min(l.len());
        }
        offset += l.len();
    }
    s.len()
}

/// serde_json appends " at line L column C" relative to the slice; we report file offsets.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// 1-based line number of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug)]
    struct Collect {
        events: Vec<(usize, String)>,
        problems: Vec<(Option<usize>, usize, String)>,
        digests: usize,
    }

    impl Visitor for Collect {
        fn event(&mut self, index: usize, _offset: usize, _text: &str, entries: &Entries<'_>) {
            self.events.push((index, entries.str("eventID").map(|s| s.into_owned()).unwrap_or_default()));
        }
        fn problem(&mut self, index: Option<usize>, offset: usize, reason: String) {
            self.problems.push((index, offset, reason));
        }
        fn digest(&mut self) {
            self.digests += 1;
        }
    }

    fn frame(text: &str) -> Collect {
        let mut c = Collect::default();
        Framer::run(text, &[], Place::default(), &mut c);
        c
    }

    fn ids(c: &Collect) -> Vec<&str> {
        c.events.iter().map(|(_, id)| id.as_str()).collect()
    }

    const A: &str = r#"{"eventID":"a","eventTime":"2024-01-01T00:00:00Z"}"#;
    const B: &str = r#"{"eventID":"b","eventTime":"2024-01-01T00:00:01Z"}"#;

    #[test]
    fn shapes() {
        assert_eq!(ids(&frame(&format!("{{\"Records\":[{A},{B}]}}"))), ["a", "b"]);
        assert_eq!(ids(&frame(&format!("[{A}, {B}]"))), ["a", "b"]);
        assert_eq!(ids(&frame(&format!("{A}\n{B}\n"))), ["a", "b"]);
        assert_eq!(ids(&frame(A)), ["a"]);
        let lookup =
            format!("{{\"EventId\":\"a\",\"CloudTrailEvent\":{}}}", serde_json::to_string(A).unwrap());
        assert_eq!(ids(&frame(&lookup)), ["a"]);
        let bridge =
            format!("{{\"version\":\"0\",\"detail-type\":\"AWS API Call via CloudTrail\",\"detail\":{A}}}");
        assert_eq!(ids(&frame(&bridge)), ["a"]);
        let cw = format!(
            "{{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{{\"id\":\"1\",\"message\":{}}},{{\"id\":\"2\",\"message\":{}}}]}}",
            serde_json::to_string(A).unwrap(),
            serde_json::to_string(B).unwrap()
        );
        assert_eq!(ids(&frame(&cw)), ["a", "b"]);
        assert_eq!(ids(&frame(&format!("[{{\"aws\":{{\"cloudtrail\":{A}}}}}]"))), ["a"]);
        let d = frame(r#"{"awsAccountId":"1","digestStartTime":"x","digestEndTime":"y","logFiles":[]}"#);
        assert_eq!((d.events.len(), d.digests), (0, 1));
    }

    #[test]
    fn recovers_around_bad_records() {
        // Missing comma between two records: both kept, one framing problem.
        let c = frame(&format!("{{\"Records\":[{A}\n{B}]}}"));
        assert_eq!(ids(&c), ["a", "b"]);
        assert_eq!(c.problems.len(), 1);
        assert_eq!(c.problems[0].0, None);
        // Stray braces after a record.
        let c = frame(&format!("[{A}}}}},{B}]"));
        assert_eq!(ids(&c), ["a", "b"]);
        // Keys after the Records array are skipped, strings with brackets included.
        let c = frame(&format!("{{\"Records\":[{A}],\"x\":{{\"y\":\"}}]\"}}}}\n{B}"));
        assert_eq!(ids(&c), ["a", "b"]);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        // A record missing a closing brace swallows nothing after it.
        let broken = r#"{"eventID":"x","userIdentity":{"type":"IAMUser","eventTime":"2024-01-01T00:00:00Z"}"#;
        let c = frame(&format!("{{\"Records\":[{broken},\n{B}]}}"));
        assert_eq!(ids(&c), ["b"]);
        assert_eq!(c.problems.len(), 1);
        assert_eq!(c.problems[0].0, Some(0));
        assert_eq!(c.events[0].0, 1);
        // A bad NDJSON line.
        let c = frame(&format!("{A}\n{{\"eventID\": oops}}\n{B}\n"));
        assert_eq!(ids(&c), ["a", "b"]);
        assert_eq!(c.problems[0].0, Some(1));
        // Not an event.
        let c = frame(r#"[{"hello":"world"}, 3]"#);
        assert_eq!(c.problems.len(), 2);
    }
}
