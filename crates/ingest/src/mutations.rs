//! The decoder against damaged input: real trail files truncated at every offset, every byte
//! flipped, invalid UTF-8 put into each record, gzip cut short or followed by garbage, and
//! random splices. Whatever the damage: no panic, every record the damage did not touch is
//! stored as it was, nothing altered is stored as if it were whole, and a loss is reported.
//! (`fuzz/` runs the same decoder under libFuzzer for longer.)

use std::io::Write;
use std::ops::Range;

use trawl_store::selectors::SelectorSet;

use crate::decode::{FileText, decode_text};
use crate::event::Rules;
use crate::framing::{Framer, Visitor};
use crate::json::Entries;

/// What framing found in a text: each event's span and text, and the problems.
#[derive(Default)]
struct Found {
    events: Vec<(Range<usize>, String)>,
    problems: Vec<String>,
}

impl Visitor for Found {
    fn event(&mut self, _index: usize, offset: usize, text: &str, _entries: &Entries<'_>) {
        self.events.push((offset..offset + text.len(), text.to_owned()));
    }
    fn problem(&mut self, _index: Option<usize>, offset: usize, reason: String) {
        self.problems.push(format!("byte {offset}: {reason}"));
    }
    fn digest(&mut self) {}
}

/// Decodes `raw` as ingest does (gunzip, UTF-8, framing, rows), and returns what framing found.
fn decode(raw: Vec<u8>) -> Found {
    let text = match FileText::of(raw, crate::source::MAX_TEXT_BYTES) {
        Ok(text) => text,
        Err(reason) => return Found { events: Vec::new(), problems: vec![reason] },
    };
    let selectors = SelectorSet::default();
    // Every event is built into a row too, so that damaged values reach the column builders.
    let (mut builder, _, problems) = decode_text("mutated", &text, &Rules::keep_all(&selectors));
    if builder.rows() > 0 {
        builder.finish();
    }
    let mut found = Found::default();
    let (text, invalid) = text.parts();
    Framer::run(text, invalid, crate::framing::Place::default(), &mut found);
    found.problems.extend(problems.iter().map(ToString::to_string));
    // An event carried in a string of an envelope (LookupEvents, CloudWatch Logs) is not the
    // text at its offset: its span is the envelope's, up to the next record.
    let starts: Vec<usize> = found.events.iter().map(|(s, _)| s.start).collect();
    for (i, (span, event)) in found.events.iter_mut().enumerate() {
        if text.get(span.clone()) != Some(event.as_str()) {
            span.end = starts[i + 1..].iter().copied().find(|&s| s > span.start).unwrap_or(text.len());
        }
    }
    found
}

fn fixture(rel: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Small real files of every framing: a trail file (`{"Records":[...]}`), a JSON array, NDJSON,
/// a CloudWatch Logs envelope and the AWS library's file of malformed records.
const FILES: [&str; 5] = [
    "trailscraper-fixtures/111111111111_CloudTrail_eu-central-1_20171211T1505Z_A6kvhMoVeCsc7v8U.json",
    "stratus-red-team-detonation-logs/aws.defense-evasion.cloudtrail-stop.json",
    "plaso-testdata/aws_cloudtrail.jsonl",
    "otel-collector-contrib-testdata/cloudtrail_log_cw.json",
    "edge-cases-aws-cloudtrail-processing-library/SerializerTestFileBadJsonFormat.json",
];

/// Checks what was found in a damaged copy of a file whose events are `whole`, where `damaged`
/// is the range of original bytes the damage touched. When the damage lies inside one record,
/// or cuts the file short, every event it did not touch is found as it was. Always: when an
/// event is not found whole, a problem says so. (Damage to the framing itself, such as the
/// `Records` key, may lose the records it holds, but never silently.)
fn check(name: &str, what: &str, whole: &Found, found: &Found, damaged: &Range<usize>) {
    let touched = |span: &Range<usize>| span.start < damaged.end && damaged.start < span.end;
    let strong = damaged.end == usize::MAX
        || whole.events.iter().any(|(s, _)| s.start <= damaged.start && damaged.end <= s.end);
    for (span, text) in &whole.events {
        if strong && !touched(span) {
            assert!(
                found.events.iter().any(|(s, t)| s.start == span.start && t == text),
                "{name}, {what}: the intact event at {span:?} was lost; problems: {:?}",
                found.problems
            );
        }
    }
    // An event the damage altered but left valid JSON is found at the same place, changed:
    // nothing can tell it from one that came that way.
    // Events wholly past a cut are gone without a trace: a file may end at any record.
    let past_cut = |span: &Range<usize>| damaged.end == usize::MAX && span.start >= damaged.start;
    let lost = whole
        .events
        .iter()
        .any(|(span, _)| !past_cut(span) && !found.events.iter().any(|(s, _)| s.start == span.start));
    assert!(
        !lost || !found.problems.is_empty(),
        "{name}, {what}: an event was lost and nothing was reported"
    );
}

#[test]
fn truncated_at_every_offset() {
    for name in FILES {
        let raw = fixture(name);
        let whole = decode(raw.clone());
        assert!(!whole.events.is_empty(), "{name} has events");
        // An empty file is a file without events: the cuts start at one byte.
        for cut in 1..raw.len() {
            let found = decode(raw[..cut].to_vec());
            check(name, &format!("cut at {cut}"), &whole, &found, &(cut..usize::MAX));
            for (span, text) in &found.events {
                assert!(
                    whole.events.iter().any(|(s, t)| s.start == span.start && t == text),
                    "{name}, cut at {cut}: an event cut short was stored ({span:?})"
                );
            }
        }
    }
}

#[test]
fn every_byte_flipped() {
    for name in FILES {
        let raw = fixture(name);
        let whole = decode(raw.clone());
        for at in 0..raw.len() {
            let mut flipped = raw.clone();
            flipped[at] ^= 1 << (at % 8);
            let found = decode(flipped);
            check(name, &format!("bit {} of byte {at} flipped", at % 8), &whole, &found, &(at..at + 1));
        }
    }
}

#[test]
fn invalid_utf8_in_each_record() {
    for name in FILES {
        let raw = fixture(name);
        let whole = decode(raw.clone());
        for (span, _) in &whole.events {
            // A byte that is never UTF-8, in the middle of the record.
            let at = span.start + span.len() / 2;
            let mut bad = raw.clone();
            bad.insert(at, 0xff);
            let found = decode(bad);
            let shifted = Found {
                events: whole
                    .events
                    .iter()
                    .map(|(s, t)| {
                        let s = if s.start >= at { s.start + 1..s.end + 1 } else { s.clone() };
                        (s, t.clone())
                    })
                    .collect(),
                problems: Vec::new(),
            };
            check(name, &format!("0xff at {at}"), &shifted, &found, &(at..at + 1));
            // (A record broken already is reported for its first break.)
            let named = whole.problems.is_empty();
            assert!(
                !named || found.problems.iter().any(|p| p.contains(&format!("invalid UTF-8 at byte {at}"))),
                "{name}: 0xff at {at} not named: {:?}",
                found.problems
            );
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip to memory");
    encoder.finish().expect("gzip to memory")
}

#[test]
fn gzip_cut_short_or_followed_by_garbage() {
    for name in FILES {
        let raw = fixture(name);
        let whole = decode(raw.clone());
        let gz = gzip(&raw);
        for cut in 1..gz.len() {
            let found = decode(gz[..cut].to_vec());
            // What a cut stream gives is a prefix of the text; how long is the decoder's
            // business, so the intact events are those the prefix holds whole.
            let prefix = found.events.iter().map(|(s, _)| s.end).max().unwrap_or(0);
            check(name, &format!("gzip cut at {cut}"), &whole, &found, &(prefix..usize::MAX));
            assert!(!found.problems.is_empty(), "{name}: gzip cut at {cut} not reported");
        }
        for tail in [&b"garbage"[..], &[0u8; 512][..], &gz[..10]] {
            let mut more = gz.clone();
            more.extend_from_slice(tail);
            let found = decode(more);
            check(name, "gzip with trailing bytes", &whole, &found, &(0..0));
            // Zero padding loses nothing; anything else is reported.
            assert_eq!(
                found.problems.len() > whole.problems.len(),
                tail[0] != 0,
                "{name}: {:?}",
                found.problems
            );
        }
        // Two members (a concatenated file) are one text.
        let mut two = gz.clone();
        two.extend_from_slice(&gzip(b"\n"));
        let texts = |f: Found| f.events.into_iter().map(|(s, t)| (s.start, t)).collect::<Vec<_>>();
        assert!(texts(decode(two)) == texts(decode(raw.clone())), "{name}: two gzip members");
    }
}

#[test]
fn decompression_is_bounded() {
    let bomb = gzip(&vec![b' '; 4 << 20]);
    let error = FileText::of(bomb, 1 << 20).err().expect("past the limit");
    assert!(error.contains("more than 1 MiB"), "{error}");
}

#[test]
fn random_splices() {
    // xorshift: the same mutations on every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    for name in FILES {
        let raw = fixture(name);
        let whole = decode(raw.clone());
        for _ in 0..200 {
            // A span of the file copied over another place: records repeated, cut or merged.
            let (from, len, to) = (next(raw.len()), next(64), next(raw.len()));
            let piece = raw[from..(from + len).min(raw.len())].to_vec();
            let mut spliced = raw.clone();
            let end = (to + piece.len()).min(spliced.len());
            spliced.splice(to..end, piece.iter().copied());
            // A splice can make valid JSON of two records (a key cut short that opens an object
            // holding the next record): only what the damage did not reach is certain. Every event
            // found is an original one, or holds the damaged bytes.
            let found = decode(spliced);
            for (span, text) in &found.events {
                let original = whole.events.iter().any(|(s, t)| s.start == span.start && t == text);
                assert!(
                    original || (span.start < to + piece.len().max(1) && to < span.end),
                    "{name}, {len} bytes from {from} over {to}: an altered event at {span:?} outside the damage"
                );
            }
        }
    }
}

/// A large file is framed a segment at a time (`segment.rs`); whatever the segment size, the
/// rows, their record numbers and every problem (record, byte, line, reason) are the same as
/// when the file is framed whole. Every fixture file, gzip ones included.
#[test]
fn segments_frame_as_the_whole_file() {
    use arrow::array::AsArray;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().and_then(|n| n.to_str()).is_some_and(trawl_store::trail::is_json_file)
            {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() > 50, "{} fixture files", files.len());
    let selectors = SelectorSet::default();
    let rules = Rules::keep_all(&selectors);
    // (eventjson, sourcerecord) of every row, and every problem, as text.
    let rows = |batches: &[arrow::array::RecordBatch]| -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for b in batches {
            let json = b.column_by_name("eventjson").unwrap().as_string::<i32>();
            let record = b.column_by_name("sourcerecord").unwrap();
            let record = arrow::compute::cast(record, &arrow::datatypes::DataType::Int64).unwrap();
            let record = record.as_primitive::<arrow::datatypes::Int64Type>();
            out.extend((0..b.num_rows()).map(|i| (json.value(i).to_owned(), record.value(i))));
        }
        out
    };
    for path in &files {
        let name = path.display().to_string();
        let raw = std::fs::read(path).unwrap();
        let whole = FileText::of(raw.clone(), crate::source::MAX_TEXT_BYTES).unwrap();
        let (mut builder, _, problems) = decode_text(&name, &whole, &rules);
        let whole_rows = if builder.rows() > 0 { rows(&[builder.finish().0]) } else { Vec::new() };
        let whole_problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        for size in [1, 97, 1000, 5000, 1 << 20] {
            let source = crate::source::SourceFile {
                origin: crate::source::Origin::File(path.clone()),
                id: trawl_store::SourceId {
                    location: name.clone(),
                    size: raw.len() as u64,
                    fingerprint: String::new(),
                },
                day_prefix: None,
            };
            let mut batches = Vec::new();
            let mut problems = Vec::new();
            let mut parts = Vec::new();
            let reader: Box<dyn std::io::BufRead + Send> = Box::new(std::io::Cursor::new(raw.clone()));
            crate::decode::decode_stream(source, reader, &rules, crate::source::MAX_TEXT_BYTES, size, |d| {
                for f in &d.files {
                    problems.extend(f.problems.iter().map(ToString::to_string));
                    parts.push(f.part);
                }
                batches.extend(d.batch.map(|(b, _)| b));
                true
            });
            assert_eq!(parts.last(), Some(&Some(true)), "{name}, segments of {size}: no last part");
            assert_eq!(rows(&batches), whole_rows, "{name}, segments of {size}: other rows");
            assert_eq!(problems, whole_problems, "{name}, segments of {size}: other problems");
        }
    }
}
