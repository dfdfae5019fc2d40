//! Date and time functions: ISO 8601, date parts, Trino's units in `date_add` and `date_diff`,
//! Joda (`format_datetime`, `parse_datetime`) and MySQL (`date_format`, `date_parse`) formats,
//! Unix times and time zones. Date parts are read in the timestamp's own zone (UTC unless
//! `at_timezone` gave it another).

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    Array, ArrayRef, AsArray, Date32Builder, Float64Builder, Int64Builder, PrimitiveArray, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{Arg, Fun, float, int, text, timestamp};

const TIME: &[(&str, Arg)] = &[("timestamp", Arg::Time)];

/// A date part of a timestamp in its zone.
macro_rules! part {
    ($name:literal, $aliases:expr, $f:expr) => {
        Fun::new($name, TIME, int, |a, _| parts(&a[0], $f)).aliases($aliases)
    };
}

pub(super) fn all() -> Vec<Fun> {
    vec![
        Fun::new("from_iso8601_timestamp", &[("string", Arg::Text)], timestamp, |a, _| {
            parse_times(&a[0], |v| match DateTime::parse_from_rfc3339(v) {
                Ok(t) => Ok(t.to_utc()),
                Err(_) => match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
                    Ok(d) => Ok(midnight(d)),
                    Err(e) => exec_err!("from_iso8601_timestamp: '{v}' is not ISO 8601: {e}"),
                },
            })
        }),
        Fun::new("from_iso8601_date", &[("string", Arg::Text)], date, |a, _| {
            dates_of_text(&a[0], |v| match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
                Ok(d) => Ok(d),
                Err(e) => exec_err!("from_iso8601_date: '{v}' is not an ISO 8601 date: {e}"),
            })
        }),
        Fun::new("to_iso8601", TIME, text, |a, _| {
            format_times(&a[0], |t| {
                Ok(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true).replace("+00:00", "Z"))
            })
        }),
        part!("year", &[], |t| i64::from(t.year())),
        part!("quarter", &[], |t| i64::from(t.month0() / 3 + 1)),
        part!("month", &[], |t| i64::from(t.month())),
        part!("week", &["week_of_year"], |t| i64::from(t.iso_week().week())),
        part!("year_of_week", &["yow"], |t| i64::from(t.iso_week().year())),
        part!("day", &["day_of_month"], |t| i64::from(t.day())),
        part!("day_of_week", &["dow"], |t| i64::from(t.weekday().number_from_monday())),
        part!("day_of_year", &["doy"], |t| i64::from(t.ordinal())),
        part!("hour", &[], |t| i64::from(t.hour())),
        part!("minute", &[], |t| i64::from(t.minute())),
        part!("second", &[], |t| i64::from(t.second())),
        part!("millisecond", &[], |t| i64::from(t.timestamp_subsec_millis())),
        Fun::new("date", &[("value", Arg::Any)], date, to_date),
        Fun::new("last_day_of_month", TIME, date, |a, _| {
            dates_of_times(&a[0], |t| {
                let first = NaiveDate::from_ymd_opt(t.year(), t.month(), 1)?;
                first.checked_add_months(chrono::Months::new(1))?.pred_opt()
            })
        }),
        Fun::new(
            "date_add",
            &[("unit", Arg::Text), ("value", Arg::Int), ("timestamp", Arg::Time)],
            |args| {
                Ok(match &args[2] {
                    DataType::Timestamp(_, Some(zone)) => {
                        DataType::Timestamp(TimeUnit::Microsecond, Some(zone.clone()))
                    }
                    _ => super::utc_micros(),
                })
            },
            date_add,
        ),
        Fun::new(
            "date_diff",
            &[("unit", Arg::Text), ("timestamp1", Arg::Time), ("timestamp2", Arg::Time)],
            int,
            date_diff,
        ),
        Fun::new("format_datetime", &[("timestamp", Arg::Time), ("format", Arg::Text)], text, |a, _| {
            with_format(&a[1], joda, |f| format_times(&a[0], |t| Ok(t.format(f).to_string())))
        }),
        Fun::new("date_format", &[("timestamp", Arg::Time), ("format", Arg::Text)], text, |a, _| {
            with_format(&a[1], mysql, |f| format_times(&a[0], |t| Ok(t.format(f).to_string())))
        }),
        Fun::new("parse_datetime", &[("string", Arg::Text), ("format", Arg::Text)], timestamp, |a, _| {
            with_format(&a[1], joda, |f| parse_times(&a[0], |v| parse_with(v, f, "parse_datetime")))
        }),
        Fun::new("date_parse", &[("string", Arg::Text), ("format", Arg::Text)], timestamp, |a, _| {
            with_format(&a[1], mysql, |f| parse_times(&a[0], |v| parse_with(v, f, "date_parse")))
        }),
        Fun::new("from_unixtime", &[("seconds", Arg::Float)], timestamp, |a, _| {
            let seconds = arrow::compute::cast(&a[0], &DataType::Float64)?;
            let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
            for v in seconds.as_primitive::<arrow::datatypes::Float64Type>() {
                b.append_option(v.filter(|v| v.is_finite()).map(|v| (v * 1e6).round() as i64));
            }
            Ok(Arc::new(b.finish()))
        }),
        Fun::new("to_unixtime", TIME, float, |a, _| {
            let (times, _) = zoned(&a[0])?;
            let mut b = Float64Builder::new();
            for v in times.iter() {
                b.append_option(v.map(|v| v as f64 / 1e6));
            }
            Ok(Arc::new(b.finish()))
        }),
    ]
}

fn date(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Date32)
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// A timestamp column as microseconds and its zone (UTC when it has none).
fn zoned(a: &ArrayRef) -> Result<(PrimitiveArray<TimestampMicrosecondType>, Tz)> {
    let zone = match a.data_type() {
        DataType::Timestamp(_, Some(zone)) => zone.to_string(),
        _ => "UTC".to_owned(),
    };
    let tz = Tz::from_str(&zone)?;
    let target = DataType::Timestamp(TimeUnit::Microsecond, Some(zone.into()));
    let micros = arrow::compute::cast(a, &target)?;
    Ok((micros.as_primitive::<TimestampMicrosecondType>().clone(), tz))
}

/// Calls `each` with every row's time in its zone.
fn each_time(a: &ArrayRef, mut each: impl FnMut(Option<DateTime<Tz>>) -> Result<()>) -> Result<()> {
    let (times, tz) = zoned(a)?;
    for v in times.iter() {
        each(v.and_then(DateTime::<Utc>::from_timestamp_micros).map(|t| t.with_timezone(&tz)))?;
    }
    Ok(())
}

fn parts(a: &ArrayRef, f: fn(&DateTime<Tz>) -> i64) -> Result<ArrayRef> {
    let mut b = Int64Builder::with_capacity(a.len());
    each_time(a, |t| {
        b.append_option(t.as_ref().map(f));
        Ok(())
    })?;
    Ok(Arc::new(b.finish()))
}

fn format_times(a: &ArrayRef, mut f: impl FnMut(DateTime<Tz>) -> Result<String>) -> Result<ArrayRef> {
    let mut b = StringBuilder::new();
    each_time(a, |t| {
        b.append_option(t.map(&mut f).transpose()?);
        Ok(())
    })?;
    Ok(Arc::new(b.finish()))
}

fn parse_times(a: &ArrayRef, mut f: impl FnMut(&str) -> Result<DateTime<Utc>>) -> Result<ArrayRef> {
    let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    super::try_strings(a, |_, v| {
        b.append_option(v.map(|v| f(v.trim())).transpose()?.map(|t| t.timestamp_micros()));
        Ok(())
    })?;
    Ok(Arc::new(b.finish()))
}

fn dates_of_text(a: &ArrayRef, mut f: impl FnMut(&str) -> Result<NaiveDate>) -> Result<ArrayRef> {
    let times = parse_times(a, |v| f(v).map(midnight))?;
    Ok(arrow::compute::cast(&times, &DataType::Date32)?)
}

fn dates_of_times(a: &ArrayRef, f: impl Fn(DateTime<Tz>) -> Option<NaiveDate>) -> Result<ArrayRef> {
    let mut b = Date32Builder::new();
    each_time(a, |t| {
        b.append_option(t.and_then(&f).map(trawl_store::schema::epoch_day));
        Ok(())
    })?;
    Ok(Arc::new(b.finish()))
}

/// `date(x)`: the date of a timestamp (in its zone), or of text `YYYY-MM-DD`.
fn to_date(a: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    match a[0].data_type() {
        DataType::Timestamp(_, _) => dates_of_times(&a[0], |t| Some(t.date_naive())),
        DataType::Date32 | DataType::Date64 | DataType::Null => {
            Ok(arrow::compute::cast(&a[0], &DataType::Date32)?)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            dates_of_text(&a[0], |v| match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
                Ok(d) => Ok(d),
                Err(e) => exec_err!("date: '{v}' is not a date (YYYY-MM-DD): {e}"),
            })
        }
        other => exec_err!("date takes a timestamp, a date or varchar, not {}", super::trino_type(other)),
    }
}

/// Runs `f` with the chrono format of `format` (a constant per query, almost always), translated
/// by `translate`.
fn with_format(
    format: &ArrayRef,
    translate: fn(&str) -> Result<String>,
    f: impl FnOnce(&str) -> Result<ArrayRef>,
) -> Result<ArrayRef> {
    let formats = super::utf8(format)?;
    let mut given = formats.iter().flatten();
    let Some(text) = given.next() else {
        return Ok(arrow::array::new_null_array(&DataType::Utf8, format.len()));
    };
    if given.any(|other| other != text) {
        return exec_err!("the format must be the same for every row");
    }
    f(&translate(text)?)
}

fn parse_with(v: &str, format: &str, function: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_str(v, format) {
        return Ok(t.to_utc());
    }
    match NaiveDateTime::parse_from_str(v, format) {
        Ok(t) => Ok(t.and_utc()),
        Err(e) => match NaiveDate::parse_from_str(v, format) {
            Ok(d) => Ok(midnight(d)),
            Err(_) => exec_err!("{function}: '{v}' does not match the format: {e}"),
        },
    }
}

/// A Joda-Time pattern (`yyyy-MM-dd HH:mm:ss.SSS`) as a chrono format.
fn joda(pattern: &str) -> Result<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // 'literal', and '' for a quote.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            while j < chars.len() && chars[j] != '\'' {
                push_literal(&mut out, chars[j]);
                j += 1;
            }
            i = j + 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&d| d == c).count();
        i += run;
        if !c.is_ascii_alphabetic() {
            (0..run).for_each(|_| push_literal(&mut out, c));
            continue;
        }
        out.push_str(match (c, run) {
            ('y' | 'Y', 2) => "%y",
            ('y' | 'Y', _) => "%Y",
            ('x', _) => "%G",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('D', _) => "%j",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 3) => "%3f",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            ('a', _) => "%p",
            ('E', 4..) => "%A",
            ('E', _) => "%a",
            ('e', _) => "%u",
            ('w', _) => "%V",
            ('Z', 1) => "%z",
            ('Z', _) => "%:z",
            ('z', _) => "%Z",
            _ => return exec_err!("the Joda pattern letter {} ({} times) is not supported", c, run),
        });
    }
    Ok(out)
}

/// A MySQL format (`%Y-%m-%d %H:%i:%s`) as a chrono format.
fn mysql(format: &str) -> Result<String> {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            push_literal(&mut out, c);
            continue;
        }
        let Some(spec) = chars.next() else { return exec_err!("the format ends with a lone %") };
        out.push_str(match spec {
            'a' => "%a",
            'b' => "%b",
            'c' => "%-m",
            'd' => "%d",
            'e' => "%-d",
            'f' => "%6f",
            'H' => "%H",
            'h' | 'I' => "%I",
            'i' => "%M",
            'j' => "%j",
            'k' => "%-H",
            'l' => "%-I",
            'M' => "%B",
            'm' => "%m",
            'p' => "%p",
            'r' => "%I:%M:%S %p",
            'S' | 's' => "%S",
            'T' => "%H:%M:%S",
            'U' => "%U",
            'u' => "%W",
            'W' => "%A",
            'w' => "%w",
            'Y' => "%Y",
            'y' => "%y",
            '%' => "%%",
            other => return exec_err!("the MySQL format specifier %{other} is not supported"),
        });
    }
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

/// Trino's units of `date_add` and `date_diff`.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// A fixed length, in microseconds.
    Fixed(i64),
    /// Calendar months.
    Months(i64),
}

impl Unit {
    fn parse(text: &str, function: &str) -> Result<Unit> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "millisecond" => Unit::Fixed(1_000),
            "second" => Unit::Fixed(1_000_000),
            "minute" => Unit::Fixed(60_000_000),
            "hour" => Unit::Fixed(3_600_000_000),
            "day" => Unit::Fixed(86_400_000_000),
            "week" => Unit::Fixed(7 * 86_400_000_000),
            "month" => Unit::Months(1),
            "quarter" => Unit::Months(3),
            "year" => Unit::Months(12),
            other => return exec_err!("{function}: unknown unit '{other}'"),
        })
    }
}

/// Calls `each` with each row's unit (`a[0]`; `None` when NULL), parsed once per distinct text.
fn each_unit(
    a: &ArrayRef,
    function: &str,
    mut each: impl FnMut(usize, Option<Unit>) -> Result<()>,
) -> Result<()> {
    let units = super::utf8(a)?;
    let mut parsed: Option<(&str, Unit)> = None;
    for (row, text) in units.iter().enumerate() {
        let unit = match text {
            Some(text) => match parsed {
                Some((t, unit)) if t == text => Some(unit),
                _ => {
                    let unit = Unit::parse(text, function)?;
                    parsed = Some((text, unit));
                    Some(unit)
                }
            },
            None => None,
        };
        each(row, unit)?;
    }
    Ok(())
}

/// The times of a column in their zone, row by row.
fn times_of(a: &ArrayRef) -> Result<Vec<Option<DateTime<Tz>>>> {
    let mut times = Vec::with_capacity(a.len());
    each_time(a, |t| {
        times.push(t);
        Ok(())
    })?;
    Ok(times)
}

/// `date_add(unit, n, ts)`, Trino's units, in the timestamp's zone (a day is a calendar day).
fn date_add(a: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let n = super::ints(&a[1])?;
    let n = n.as_primitive::<arrow::datatypes::Int64Type>();
    let times = times_of(&a[2])?;
    // The values are UTC instants whatever the zone: the type only carries it.
    let mut b = TimestampMicrosecondBuilder::new().with_data_type(ret.clone());
    each_unit(&a[0], "date_add", |row, unit| {
        let value = n.is_valid(row).then(|| n.value(row));
        let (Some(t), Some(unit), Some(value)) = (times[row], unit, value) else {
            b.append_null();
            return Ok(());
        };
        b.append_option(add(unit, value, t).map(|t| t.timestamp_micros()));
        Ok(())
    })?;
    Ok(Arc::new(b.finish()))
}

/// `t` plus `n` units; `None` past the range of timestamps.
fn add(unit: Unit, n: i64, t: DateTime<Tz>) -> Option<DateTime<Tz>> {
    match unit {
        Unit::Fixed(micros) => t.checked_add_signed(chrono::TimeDelta::microseconds(n.checked_mul(micros)?)),
        Unit::Months(k) => {
            let m = n.checked_mul(k)?;
            let months = chrono::Months::new(u32::try_from(m.unsigned_abs()).ok()?);
            if m >= 0 { t.checked_add_months(months) } else { t.checked_sub_months(months) }
        }
    }
}

/// `date_diff(unit, ts1, ts2)`: whole units from `ts1` to `ts2`, as Trino counts them.
fn date_diff(a: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (firsts, lasts) = (times_of(&a[1])?, times_of(&a[2])?);
    let mut b = Int64Builder::new();
    each_unit(&a[0], "date_diff", |row, unit| {
        let (Some(x), Some(y), Some(unit)) = (firsts[row], lasts[row], unit) else {
            b.append_null();
            return Ok(());
        };
        b.append_value(match unit {
            Unit::Fixed(micros) => (y.timestamp_micros() - x.timestamp_micros()) / micros,
            Unit::Months(k) => {
                let mut m = i64::from(y.year() - x.year()) * 12 + i64::from(y.month()) - i64::from(x.month());
                // A month is counted once the day and time of day are reached, as Trino does.
                let (xr, yr) = ((x.day(), x.time()), (y.day(), y.time()));
                if m > 0 && yr < xr {
                    m -= 1;
                } else if m < 0 && yr > xr {
                    m += 1;
                }
                m / k
            }
        });
        Ok(())
    })?;
    Ok(Arc::new(b.finish()))
}

/// `at_timezone(ts, zone)`: the same instant, read in `zone` (an IANA name or an offset).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct AtTimezone {
    signature: Signature,
}

impl AtTimezone {
    pub(super) fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for AtTimezone {
    fn name(&self) -> &str {
        "at_timezone"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        let [t, zone] = types else {
            return plan_err!("at_timezone takes 2 arguments (timestamp, zone), not {}", types.len());
        };
        let Some(t) = Arg::Time.coerce(t) else {
            return plan_err!(
                "at_timezone: argument 1 (timestamp) is {}; it must be timestamp",
                super::trino_type(t)
            );
        };
        let Some(zone) = Arg::Text.coerce(zone) else {
            return plan_err!(
                "at_timezone: argument 2 (zone) is {}; it must be varchar",
                super::trino_type(zone)
            );
        };
        Ok(vec![t, zone])
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        plan_err!("at_timezone: the return type comes from return_field_from_args")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let zone = match args.scalar_arguments.get(1) {
            Some(Some(v)) if !v.is_null() => v.to_string(),
            _ => {
                return plan_err!(
                    "at_timezone: the zone must be a constant, such as 'America/New_York' or '+02:00'"
                );
            }
        };
        if let Err(e) = Tz::from_str(&zone) {
            return plan_err!("at_timezone: unknown zone '{zone}': {e}");
        }
        let t = DataType::Timestamp(TimeUnit::Microsecond, Some(zone.into()));
        Ok(Arc::new(Field::new(self.name(), t, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        args.args[0].cast_to(args.return_field.data_type(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{context, error, value};

    #[tokio::test]
    async fn time_functions() {
        let ctx = context();
        let t = "TIMESTAMP '2024-03-09 23:04:05.678'";
        for (call, want) in [
            ("date($T)", "2024-03-09"),
            ("date('2024-02-29')", "2024-02-29"),
            ("last_day_of_month($T)", "2024-03-31"),
            ("quarter($T)", "1"),
            ("millisecond($T)", "678"),
            ("year_of_week($T)", "2024"),
            ("format_datetime($T, 'yyyy-MM-dd''T''HH:mm:ss.SSS EEE')", "2024-03-09T23:04:05.678 Sat"),
            ("date_format($T, '%Y-%m-%d %H:%i:%s %W %M %e')", "2024-03-09 23:04:05 Saturday March 9"),
            ("date_parse('2024/03/09 23:04', '%Y/%m/%d %H:%i')", "2024-03-09T23:04:00Z"),
            ("parse_datetime('09-03-2024 23:04:05', 'dd-MM-yyyy HH:mm:ss')", "2024-03-09T23:04:05Z"),
            ("to_unixtime(TIMESTAMP '1970-01-02 00:00:01.5')", "86401.5"),
            ("from_unixtime(86401.5)", "1970-01-02T00:00:01.500Z"),
            ("hour(at_timezone($T, 'Asia/Tokyo'))", "8"),
            ("day(at_timezone($T, 'Asia/Tokyo'))", "10"),
            ("to_iso8601(at_timezone($T, '+02:00'))", "2024-03-10T01:04:05.678+02:00"),
            ("date_diff('month', TIMESTAMP '2024-01-31 00:00:00', TIMESTAMP '2024-02-29 00:00:00')", "0"),
            ("date_add('month', 1, TIMESTAMP '2024-01-31 00:00:00')", "2024-02-29T00:00:00Z"),
            ("from_iso8601_date('2024-02-29')", "2024-02-29"),
        ] {
            let sql = format!("SELECT {}", call.replace("$T", t));
            assert_eq!(value(&ctx, &sql).await, want, "{sql}");
        }
        let e = error(&ctx, "SELECT at_timezone(now(), 'Mars/Olympus')").await;
        assert!(e.contains("unknown zone 'Mars/Olympus'"), "{e}");
        let e = error(&ctx, "SELECT format_datetime(now(), 'yyyy QQ')").await;
        assert!(e.contains("Joda pattern letter Q"), "{e}");
    }
}
