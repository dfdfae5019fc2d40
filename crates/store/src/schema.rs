//! The Arrow schema of a CloudTrail event data store: CloudTrail Lake's event table, column for
//! column, in lower case, plus trawl's provenance columns and the `eventdate` partition column.
//!
//! Readers rely on the names and types here; change them only additively.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// `eventtime`: when the request completed, as a microsecond UTC timestamp.
pub const EVENT_TIME: &str = "eventtime";
/// `eventdate`: the UTC date of `eventtime`, the Hive-style partition column.
pub const EVENT_DATE: &str = "eventdate";
/// `eventid`: CloudTrail's GUID for the event.
pub const EVENT_ID: &str = "eventid";
/// `recipientaccountid`: the account that received the event; with `eventid` the event's key.
pub const RECIPIENT_ACCOUNT_ID: &str = "recipientaccountid";
/// `eventjson`: the original event, as compact JSON.
pub const EVENT_JSON: &str = "eventjson";
/// `eventjsonchecksum`: hex SHA-256 of `eventjson`.
pub const EVENT_JSON_CHECKSUM: &str = "eventjsonchecksum";
/// `sourceobject`: the file or object the event was read from.
pub const SOURCE_OBJECT: &str = "sourceobject";
/// `sourcerecord`: the 0-based index of the event's record in `sourceobject`.
pub const SOURCE_RECORD: &str = "sourcerecord";

/// Columns that carry Delta min/max statistics (file pruning and `store show` figures).
pub const STATS_COLUMNS: &[&str] =
    &[EVENT_TIME, "eventsource", "eventname", "awsregion", "errorcode", RECIPIENT_ACCOUNT_ID];

/// Columns written with Parquet bloom filters, for point lookups.
pub const BLOOM_FILTER_COLUMNS: &[&str] = &[
    EVENT_ID,
    "eventname",
    "sourceipaddress",
    "useridentity.accesskeyid",
    "useridentity.arn",
    "useridentity.principalid",
    "requestid",
];

/// The `eventdate` value (days since 1970-01-01, Arrow's `Date32`) of a UTC day.
pub fn epoch_day(day: chrono::NaiveDate) -> i32 {
    i32::try_from(day.signed_duration_since(chrono::NaiveDate::default()).num_days()).unwrap_or(i32::MAX)
}

/// The UTC day of an `eventdate` value; `None` out of chrono's range.
pub fn date_of_epoch_day(day: i32) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::default().checked_add_signed(chrono::TimeDelta::days(day.into()))
}

/// The `eventdate` value of an instant: its UTC day.
pub fn epoch_day_of(t: chrono::DateTime<chrono::Utc>) -> i32 {
    epoch_day(t.date_naive())
}

/// The timestamp type of `eventtime` (Delta Lake's `timestamp`).
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// `map<string,string>` with the Parquet/Delta field names (`key_value`, `key`, `value`).
pub fn string_map_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
    ]);
    DataType::Map(Arc::new(Field::new("key_value", DataType::Struct(entries), false)), false)
}

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn strukt(name: &str, fields: Vec<Field>) -> Field {
    Field::new(name, DataType::Struct(fields.into()), true)
}

fn list_of(name: &str, item: DataType) -> Field {
    Field::new(name, DataType::List(Arc::new(Field::new("element", item, true))), true)
}

fn user_identity() -> Field {
    let issuer = strukt(
        "sessionissuer",
        vec![utf8("type"), utf8("principalid"), utf8("arn"), utf8("accountid"), utf8("username")],
    );
    let attributes = strukt(
        "attributes",
        vec![Field::new("creationdate", timestamp_type(), true), utf8("mfaauthenticated")],
    );
    let web_id = strukt(
        "webidfederationdata",
        vec![utf8("federatedprovider"), Field::new("attributes", string_map_type(), true)],
    );
    let session_context = strukt(
        "sessioncontext",
        vec![
            attributes,
            issuer,
            web_id,
            utf8("sourceidentity"),
            utf8("ec2roledelivery"),
            utf8("ec2issuedinvpc"),
        ],
    );
    strukt(
        "useridentity",
        vec![
            utf8("type"),
            utf8("principalid"),
            utf8("arn"),
            utf8("accountid"),
            utf8("accesskeyid"),
            utf8("username"),
            session_context,
            strukt("onbehalfof", vec![utf8("userid"), utf8("identitystorearn")]),
            strukt(
                "inscopeof",
                vec![
                    utf8("sourcearn"),
                    utf8("sourceaccount"),
                    utf8("issuertype"),
                    utf8("credentialsissuedto"),
                ],
            ),
            utf8("invokedby"),
            utf8("identityprovider"),
        ],
    )
}

fn event_context() -> Field {
    let resource_tag =
        DataType::Struct(vec![utf8("arn"), Field::new("tags", string_map_type(), true)].into());
    strukt(
        "eventcontext",
        vec![
            Field::new("requestcontext", string_map_type(), true),
            strukt(
                "tagcontext",
                vec![
                    Field::new("principaltags", string_map_type(), true),
                    list_of("resourcetags", resource_tag),
                ],
            ),
        ],
    )
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let map = |name: &str| Field::new(name, string_map_type(), true);
    let resource =
        DataType::Struct(vec![utf8("accountid"), utf8("type"), utf8("arn"), utf8("arnprefix")].into());
    Arc::new(Schema::new(vec![
        utf8("eventversion"),
        user_identity(),
        Field::new(EVENT_TIME, timestamp_type(), false),
        utf8("eventsource"),
        utf8("eventname"),
        utf8("awsregion"),
        utf8("sourceipaddress"),
        utf8("useragent"),
        utf8("errorcode"),
        utf8("errormessage"),
        map("requestparameters"),
        map("responseelements"),
        map("additionaleventdata"),
        utf8("requestid"),
        utf8(EVENT_ID),
        Field::new("readonly", DataType::Boolean, true),
        list_of("resources", resource),
        utf8("eventtype"),
        utf8("apiversion"),
        Field::new("managementevent", DataType::Boolean, true),
        utf8(RECIPIENT_ACCOUNT_ID),
        utf8("sharedeventid"),
        utf8("annotation"),
        utf8("vpcendpointid"),
        utf8("vpcendpointaccountid"),
        map("serviceeventdetails"),
        map("addendum"),
        map("edgedevicedetails"),
        map("insightdetails"),
        utf8("eventcategory"),
        strukt("tlsdetails", vec![utf8("tlsversion"), utf8("ciphersuite"), utf8("clientprovidedhostheader")]),
        utf8("sessioncredentialfromconsole"),
        event_context(),
        Field::new(EVENT_JSON, DataType::Utf8, false),
        Field::new(EVENT_JSON_CHECKSUM, DataType::Utf8, false),
        Field::new(SOURCE_OBJECT, DataType::Utf8, false),
        Field::new(SOURCE_RECORD, DataType::Int64, false),
        Field::new(EVENT_DATE, DataType::Date32, false),
    ]))
});

static FILE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(
        SCHEMA.fields().iter().filter(|f| f.name() != EVENT_DATE).cloned().collect::<Vec<_>>(),
    ))
});

/// The schema of every CloudTrail event data store, `eventdate` (the partition column) last.
pub fn event_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The columns of a store's data files: the event schema without `eventdate`, which Delta keeps
/// in the file's partition values.
pub fn file_schema() -> SchemaRef {
    FILE_SCHEMA.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_and_unique() {
        let schema = event_schema();
        let mut seen = std::collections::HashSet::new();
        for field in schema.fields() {
            assert_eq!(field.name(), &field.name().to_lowercase());
            assert!(seen.insert(field.name().clone()), "duplicate column {}", field.name());
        }
        assert_eq!(schema.fields().last().map(|f| f.name().as_str()), Some(EVENT_DATE));
    }
}
