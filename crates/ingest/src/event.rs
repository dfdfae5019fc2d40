//! One CloudTrail event to one row: the schema-driven columns, the derived ones (`eventtime`,
//! `eventdate`, inferred `eventcategory`), `eventjson` and its checksum, provenance and the
//! dedupe key.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{Date32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use trawl_store::schema::{self, epoch_day_of, event_schema};
use trawl_store::selectors::{SelectorEvent, SelectorField, SelectorSet};
use trawl_store::time::parse_timestamp;

use crate::columns::{Column, KeyIndex};
use crate::json::{Entries, Json, as_str, minify};

/// The identity of an event for deduplication: `(recipientAccountId, eventID)`, or the
/// checksum of the event when it has no `eventID`.
pub fn event_key(recipient_account: Option<&str>, event_id: Option<&str>, checksum: &str) -> u128 {
    match event_id {
        Some(id) if !id.is_empty() => {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(recipient_account.unwrap_or("").as_bytes());
            h.update(&[0]);
            h.update(id.as_bytes());
            h.digest128()
        }
        _ => {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(b"\0checksum\0");
            h.update(checksum.as_bytes());
            h.digest128()
        }
    }
}

/// What happened to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Appended,
    Selectors,
    Retention,
    Insight,
    /// Outside the time range asked for.
    Window,
}

/// Where an event is kept and what it is checked against.
pub(crate) struct Rules<'a> {
    pub(crate) selectors: &'a SelectorSet,
    /// Events before this instant are outside retention.
    pub(crate) retention_cutoff: DateTime<Utc>,
    /// Only events with `start <= eventTime < end` are kept.
    pub(crate) window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
}

impl<'a> Rules<'a> {
    /// Every event kept (whatever `selectors` say, for no selector at all).
    pub(crate) fn keep_all(selectors: &'a SelectorSet) -> Self {
        Self { selectors, retention_cutoff: DateTime::<Utc>::MIN_UTC, window: (None, None) }
    }
}

/// A column of the batch: built from the event's JSON, or derived (built separately).
#[allow(clippy::large_enum_variant)] // one per column, allocated once per builder
enum Slot {
    Json(Column),
    Derived,
}

/// Accumulates events into a record batch of the event schema.
pub(crate) struct BatchBuilder {
    schema: SchemaRef,
    slots: Vec<Slot>,
    by_key: KeyIndex,
    picked: Vec<usize>,
    time: TimestampMicrosecondBuilder,
    category: StringBuilder,
    json: StringBuilder,
    checksum: StringBuilder,
    source: StringBuilder,
    record: Int64Builder,
    date: Date32Builder,
    keys: Vec<u128>,
    rows: usize,
    json_bytes: usize,
}

const DERIVED: &[&str] = &[
    schema::EVENT_TIME,
    "eventcategory",
    schema::EVENT_JSON,
    schema::EVENT_JSON_CHECKSUM,
    schema::SOURCE_OBJECT,
    schema::SOURCE_RECORD,
    schema::EVENT_DATE,
];

impl BatchBuilder {
    /// A builder for a file of `text_bytes` bytes of JSON.
    pub(crate) fn new(text_bytes: usize) -> Self {
        // Events run from a few hundred bytes to a few kilobytes.
        let rows = (text_bytes / 2048).clamp(1, 8192);
        let schema = event_schema();
        let mut slots = Vec::new();
        let mut keys = Vec::new();
        for (i, field) in schema.fields().iter().enumerate() {
            if DERIVED.contains(&field.name().as_str()) {
                slots.push(Slot::Derived);
            } else {
                keys.push((field.name().as_str(), i));
                slots.push(Slot::Json(Column::new(field.data_type(), rows)));
            }
        }
        let by_key = KeyIndex::new(keys);
        Self {
            schema,
            slots,
            by_key,
            picked: Vec::new(),
            time: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            category: StringBuilder::with_capacity(rows, rows * 10),
            json: StringBuilder::with_capacity(rows, text_bytes.min(64 << 20)),
            checksum: StringBuilder::with_capacity(rows, rows * 64),
            source: StringBuilder::with_capacity(rows, rows * 64),
            record: Int64Builder::with_capacity(rows),
            date: Date32Builder::with_capacity(rows),
            keys: Vec::with_capacity(rows),
            rows: 0,
            json_bytes: 0,
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Checks `event` against `rules` and appends it when it is kept. `Err` is the reason a
    /// record is not a usable event.
    pub(crate) fn append(
        &mut self,
        event: &Entries<'_>,
        text: &str,
        source: &str,
        record: usize,
        rules: &Rules<'_>,
    ) -> Result<Outcome, String> {
        let time = event_time(event)?;
        let view = EventView::new(event);
        if view.str("eventType").as_deref() == Some("AwsCloudTrailInsight")
            || view.str("eventCategory").as_deref() == Some("Insight")
        {
            return Ok(Outcome::Insight);
        }
        if rules.window.0.is_some_and(|start| time < start) || rules.window.1.is_some_and(|end| time >= end) {
            return Ok(Outcome::Window);
        }
        if !rules.selectors.matches(&view) {
            return Ok(Outcome::Selectors);
        }
        if time < rules.retention_cutoff {
            return Ok(Outcome::Retention);
        }

        // The entry of each column (`usize::MAX` for none), in a buffer kept across events.
        self.picked.clear();
        self.picked.resize(self.slots.len(), usize::MAX);
        for (n, (key, _)) in event.0.iter().enumerate() {
            if let Some(i) = self.by_key.get(key) {
                self.picked[i] = n;
            }
        }
        for (slot, &n) in self.slots.iter_mut().zip(&self.picked) {
            if let Slot::Json(column) = slot {
                column.append(event.0.get(n).map(|(_, value)| *value));
            }
        }
        let json = minify(text);
        let mut digits = [0u8; 64];
        let checksum = hex(&Sha256::digest(json.as_bytes()), &mut digits);
        self.keys.push(event_key(
            view.str("recipientAccountId").as_deref(),
            view.str("eventID").as_deref(),
            checksum,
        ));
        self.time.append_value(time.timestamp_micros());
        self.date.append_value(epoch_day_of(time));
        self.category.append_value(view.category());
        self.json_bytes += json.len();
        self.json.append_value(&json);
        self.checksum.append_value(checksum);
        self.source.append_value(source);
        self.record.append_value(i64::try_from(record).unwrap_or(i64::MAX));
        self.rows += 1;
        Ok(Outcome::Appended)
    }

    /// The batch so far and the dedupe key of each row; the builder starts over.
    pub(crate) fn finish(&mut self) -> (RecordBatch, Vec<u128>) {
        let mut columns = Vec::with_capacity(self.slots.len());
        for (slot, field) in self.slots.iter_mut().zip(self.schema.fields()) {
            columns.push(match slot {
                Slot::Json(column) => column.finish(),
                Slot::Derived => match field.name().as_str() {
                    schema::EVENT_TIME => Arc::new(self.time.finish()) as _,
                    "eventcategory" => Arc::new(self.category.finish()) as _,
                    schema::EVENT_JSON => Arc::new(self.json.finish()) as _,
                    schema::EVENT_JSON_CHECKSUM => Arc::new(self.checksum.finish()) as _,
                    schema::SOURCE_OBJECT => Arc::new(self.source.finish()) as _,
                    schema::SOURCE_RECORD => Arc::new(self.record.finish()) as _,
                    _ => Arc::new(self.date.finish()) as _,
                },
            });
        }
        self.rows = 0;
        self.json_bytes = 0;
        let batch =
            RecordBatch::try_new(self.schema.clone(), columns).expect("builders follow the event schema");
        (batch, std::mem::take(&mut self.keys))
    }
}

fn event_time(event: &Entries<'_>) -> Result<DateTime<Utc>, String> {
    // Logstash/Elastic exports move eventTime to @timestamp.
    let raw = event.get("eventTime").or_else(|| event.get("@timestamp"));
    let Some(raw) = raw else {
        return Err("missing eventTime".into());
    };
    let text = as_str(raw).ok_or_else(|| format!("eventTime is not a string: {}", raw.get()))?;
    parse_timestamp(&text).ok_or_else(|| format!("invalid eventTime '{text}'"))
}

/// `bytes` in lower-case hex, written into `out` (twice as long).
fn hex<'o>(bytes: &[u8], out: &'o mut [u8]) -> &'o str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
    std::str::from_utf8(&out[..bytes.len() * 2]).expect("hex digits are ASCII")
}

/// Selector fields of one event.
struct EventView<'e, 'a> {
    event: &'e Entries<'a>,
}

impl<'e, 'a> EventView<'e, 'a> {
    fn new(event: &'e Entries<'a>) -> Self {
        Self { event }
    }

    fn str(&self, key: &str) -> Option<Cow<'a, str>> {
        self.event.str(key)
    }

    /// `eventCategory`, inferred for events older than eventVersion 1.07 that lack it.
    fn category(&self) -> Cow<'a, str> {
        self.str("eventCategory").unwrap_or_else(|| {
            if self.event.get("managementEvent").map(Json::get) == Some("false") {
                Cow::Borrowed("Data")
            } else {
                Cow::Borrowed("Management")
            }
        })
    }
}

impl SelectorEvent for EventView<'_, '_> {
    fn for_each_value(&self, field: SelectorField, f: &mut dyn FnMut(&str)) {
        let scalar = |key: &str, f: &mut dyn FnMut(&str)| {
            if let Some(v) = self.event.get(key).and_then(crate::json::to_lake_string) {
                f(&v);
            }
        };
        match field {
            SelectorField::EventCategory => f(&self.category()),
            SelectorField::EventSource => scalar("eventSource", f),
            SelectorField::EventName => scalar("eventName", f),
            SelectorField::EventType => scalar("eventType", f),
            SelectorField::ReadOnly => scalar("readOnly", f),
            SelectorField::SessionCredentialFromConsole => scalar("sessionCredentialFromConsole", f),
            SelectorField::ErrorCode => scalar("errorCode", f),
            SelectorField::VpcEndpointId => scalar("vpcEndpointId", f),
            SelectorField::UserIdentityArn => {
                if let Some(v) =
                    self.event.get("userIdentity").and_then(Entries::of).and_then(|u| u.str("arn"))
                {
                    f(&v);
                }
            }
            SelectorField::ResourcesType | SelectorField::ResourcesArn => {
                let key = if field == SelectorField::ResourcesType { "type" } else { "ARN" };
                let Some(raw) = self.event.get("resources") else { return };
                let Some(items) = raw.items() else { return };
                for item in items {
                    if let Some(v) = Entries::of(item).and_then(|r| r.str(key)) {
                        f(&v);
                    }
                }
            }
        }
    }
}
