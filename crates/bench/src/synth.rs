//! The trail generator: a trail bucket layout of `{"Records":[...]}` `.json.gz` files whose
//! events look like a real organisation's.
//!
//! - API calls from the fixture templates (see `templates`), with a heavy head: KMS, STS, S3
//!   data events and EC2 describes take about 56% of events, the rest spread Zipf-like;
//! - principals Zipf-distributed over IAM users, assumed roles, AWS services and (rarely) root,
//!   each with its own access key, source IPs and user agent;
//! - a working-hours daily cycle (UTC), about 15% errors;
//! - files per account and region every five minutes, named as CloudTrail names them; about 3%
//!   of events delivered late, in a file an hour later (the next day's prefix near midnight);
//! - unique eventIDs, 0.1% of events delivered twice.
//!
//! Each (account, region, day) is generated from its own seed, so the output depends only on
//! the options, whatever the number of threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;

use crate::templates::Api;

/// What to generate.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) events: u64,
    pub(crate) days: u32,
    pub(crate) accounts: u32,
    pub(crate) regions: u32,
    pub(crate) seed: u64,
    pub(crate) start: NaiveDate,
    /// Minutes of events per file: CloudTrail delivers about every five.
    pub(crate) file_minutes: u32,
}

/// What was written.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) files: u64,
    /// Events written, re-deliveries included.
    pub(crate) records: u64,
    /// Distinct events (eventID, account).
    pub(crate) events: u64,
    pub(crate) gzip_bytes: u64,
    pub(crate) json_bytes: u64,
}

/// Where files go: a function of (key, gzip bytes).
pub(crate) type Sink<'a> = &'a (dyn Fn(&str, Vec<u8>) -> Result<()> + Sync);

const REGIONS: &[&str] = &[
    "us-east-1",
    "eu-west-1",
    "us-west-2",
    "ap-southeast-2",
    "eu-central-1",
    "us-east-2",
    "ap-northeast-1",
    "sa-east-1",
    "ca-central-1",
    "ap-south-1",
];
/// Share of events per UTC hour: a working day in Europe and the Americas.
const HOURS: [u32; 24] = [2, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 11, 10, 11, 11, 10, 9, 7, 5, 4, 3, 3, 2, 2];
const ERRORS: &[(&str, &str)] = &[
    ("AccessDenied", "User is not authorized to perform this operation"),
    ("Client.UnauthorizedOperation", "You are not authorized to perform this operation."),
    ("ThrottlingException", "Rate exceeded"),
    ("ResourceNotFoundException", "The specified resource does not exist."),
    ("NoSuchBucket", "The specified bucket does not exist"),
    ("ValidationException", "1 validation error detected"),
];
const AGENTS: &[&str] = &[
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.210 md/arch#x86_64 lang/python#3.12.2",
    "aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/sts#1.28.4",
    "Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.41.0 aws-sdk-go-v2/1.25.3",
    "console.amazonaws.com",
    "aws-internal/3 aws-sdk-java/1.12.679 Linux/5.10.213 OpenJDK_64-Bit_Server_VM/25.402-b08 java/1.8.0_402",
];
const SERVICES: &[&str] = &[
    "ec2.amazonaws.com",
    "lambda.amazonaws.com",
    "config.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "autoscaling.amazonaws.com",
];
/// The head of the API distribution: services and their share of events.
const HEAD: &[(&str, f64)] = &[
    ("kms.amazonaws.com", 0.17),
    ("s3.amazonaws.com", 0.15),
    ("sts.amazonaws.com", 0.12),
    ("ec2.amazonaws.com", 0.12),
];

/// SplitMix64: small, fast, and the same numbers on every machine.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    fn chars(&mut self, n: usize, alphabet: &[u8]) -> String {
        (0..n).map(|_| alphabet[self.below(alphabet.len() as u64) as usize] as char).collect()
    }
}

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A cumulative distribution to sample indices from.
#[derive(Debug, Clone)]
struct Weights(Vec<f64>);

impl Weights {
    fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let cdf = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect::<Vec<_>>();
        Self(cdf.into_iter().map(|c| c / total).collect())
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.0.partition_point(|&c| c < u).min(self.0.len() - 1)
    }
}

/// Someone (or something) making calls in an account.
#[derive(Debug, Clone)]
struct Principal {
    /// `userIdentity`, as JSON text.
    identity: String,
    ips: Vec<String>,
    agent: &'static str,
}

fn principals(account: &str, seed: u64) -> (Vec<Principal>, Weights) {
    let mut rng = Rng::new(seed);
    let mut list = Vec::new();
    let ip = |rng: &mut Rng| {
        format!("{}.{}.{}.{}", 3 + rng.below(220), rng.below(256), rng.below(256), 1 + rng.below(254))
    };
    for i in 0..40 {
        let name = format!("user-{i:03}");
        let key = format!("AKIA{}", rng.chars(16, UPPER));
        list.push(Principal {
            identity: json!({
                "type": "IAMUser", "principalId": format!("AIDA{}", rng.chars(17, UPPER)),
                "arn": format!("arn:aws:iam::{account}:user/{name}"), "accountId": account,
                "accessKeyId": key, "userName": name,
            })
            .to_string(),
            ips: (0..1 + rng.below(3)).map(|_| ip(&mut rng)).collect(),
            agent: AGENTS[rng.below(AGENTS.len() as u64) as usize],
        });
    }
    for i in 0..25 {
        let role = format!("role-{i:02}");
        let session = format!("session-{}", rng.chars(8, ALNUM));
        let role_id = format!("AROA{}", rng.chars(17, UPPER));
        list.push(Principal {
            identity: json!({
                "type": "AssumedRole", "principalId": format!("{role_id}:{session}"),
                "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"), "accountId": account,
                "accessKeyId": format!("ASIA{}", rng.chars(16, UPPER)),
                "sessionContext": {
                    "sessionIssuer": { "type": "Role", "principalId": role_id,
                        "arn": format!("arn:aws:iam::{account}:role/{role}"), "accountId": account, "userName": role },
                    "attributes": { "creationDate": "2025-01-01T00:00:00Z", "mfaAuthenticated": if i % 5 == 0 { "true" } else { "false" } },
                },
            }).to_string(),
            ips: (0..1 + rng.below(2)).map(|_| ip(&mut rng)).collect(),
            agent: AGENTS[rng.below(AGENTS.len() as u64) as usize],
        });
    }
    for service in SERVICES {
        list.push(Principal {
            identity: json!({ "type": "AWSService", "invokedBy": service }).to_string(),
            ips: vec![(*service).to_owned()],
            agent: service,
        });
    }
    list.push(Principal {
        identity: json!({
            "type": "Root", "principalId": account, "arn": format!("arn:aws:iam::{account}:root"),
            "accountId": account, "accessKeyId": format!("ASIA{}", rng.chars(16, UPPER)),
        })
        .to_string(),
        ips: vec![ip(&mut rng)],
        agent: AGENTS[4],
    });
    // Zipf over users, roles and services in a shuffled order; root about one event in 2,000.
    let n = list.len() - 1;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut weights = vec![0.0; list.len()];
    for (rank, &i) in order.iter().enumerate() {
        weights[i] = 1.0 / (rank as f64 + 1.0).powf(1.1);
    }
    let zipf_total: f64 = weights.iter().sum();
    weights[n] = zipf_total / 2000.0;
    (list, Weights::new(weights))
}

/// API weights: the head services' shares, Zipf within them and over everything else.
fn api_weights(apis: &[Api], seed: u64) -> Weights {
    let mut rng = Rng::new(seed ^ 0xA5A5);
    let mut weights = vec![0.0; apis.len()];
    let head_share: f64 = HEAD.iter().map(|(_, s)| s).sum();
    let mut groups: Vec<(Vec<usize>, f64)> = HEAD
        .iter()
        .map(|(service, share)| ((0..apis.len()).filter(|&i| apis[i].source == *service).collect(), *share))
        .collect();
    let tail: Vec<usize> =
        (0..apis.len()).filter(|&i| !HEAD.iter().any(|(s, _)| apis[i].source == *s)).collect();
    groups.push((tail, 1.0 - head_share));
    for (mut members, share) in groups {
        for i in (1..members.len()).rev() {
            members.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let zipf: Vec<f64> = (0..members.len()).map(|r| 1.0 / (r as f64 + 1.0).powf(1.2)).collect();
        let total: f64 = zipf.iter().sum();
        for (rank, &i) in members.iter().enumerate() {
            weights[i] = share * zipf[rank] / total;
        }
    }
    Weights::new(weights)
}

/// The accounts: twelve digits each, from the seed.
pub(crate) fn accounts(spec: &Spec) -> Vec<String> {
    let mut rng = Rng::new(spec.seed ^ 0xACC0);
    (0..spec.accounts).map(|_| format!("{:012}", 100_000_000_000 + rng.below(899_999_999_999))).collect()
}

/// Generates the whole set: one task per (account, region, day), run on `threads` threads.
pub(crate) fn generate(spec: &Spec, apis: &[Api], threads: usize, sink: Sink<'_>) -> Result<Summary> {
    let accounts = accounts(spec);
    let regions: Vec<&str> = (0..spec.regions as usize).map(|i| REGIONS[i % REGIONS.len()]).collect();
    let api_weights = api_weights(apis, spec.seed);
    let people: Vec<(Vec<Principal>, Weights)> =
        accounts.iter().enumerate().map(|(i, a)| principals(a, spec.seed ^ (i as u64 + 1) << 20)).collect();
    let streams = u64::from(spec.accounts) * u64::from(spec.regions) * u64::from(spec.days);
    let tasks: Vec<(usize, usize, u32)> = (0..accounts.len())
        .flat_map(|a| (0..regions.len()).flat_map(move |r| (0..spec.days).map(move |d| (a, r, d))))
        .collect();
    let next = AtomicU64::new(0);
    let totals =
        [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    let failed = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(&(a, r, d)) = tasks.get(i) else { break };
                    // Events split evenly over the streams; the first ones take the remainder.
                    let n = spec.events / streams + u64::from((i as u64) < spec.events % streams);
                    let day = spec.start + Duration::days(i64::from(d));
                    let stream = Stream {
                        account: &accounts[a],
                        region: regions[r],
                        day,
                        apis,
                        api_weights: &api_weights,
                        people: &people[a],
                        seed: spec.seed
                            ^ ((a as u64) << 48)
                            ^ ((r as u64) << 40)
                            ^ u64::from(d).wrapping_mul(0x1000_0001),
                        window: i64::from(spec.file_minutes) * 60,
                    };
                    match stream.write(n, sink) {
                        Ok(s) => {
                            for (total, v) in
                                totals.iter().zip([s.files, s.records, s.events, s.gzip_bytes, s.json_bytes])
                            {
                                total.fetch_add(v, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(e);
                            next.store(u64::MAX / 2, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(e);
    }
    let [files, records, events, gzip_bytes, json_bytes] = totals.map(AtomicU64::into_inner);
    Ok(Summary { files, records, events, gzip_bytes, json_bytes })
}

/// One account, region and day.
struct Stream<'a> {
    account: &'a str,
    region: &'a str,
    day: NaiveDate,
    apis: &'a [Api],
    api_weights: &'a Weights,
    people: &'a (Vec<Principal>, Weights),
    seed: u64,
    /// Seconds of events per file.
    window: i64,
}

impl Stream<'_> {
    fn write(&self, n: u64, sink: Sink<'_>) -> Result<Summary> {
        let mut rng = Rng::new(self.seed);
        let hours = Weights::new(HOURS.iter().map(|&h| f64::from(h)));
        let midnight = self.day.and_hms_opt(0, 0, 0).context("day")?.and_utc();
        // (delivery time, event time, event as JSON text)
        let mut events: Vec<(DateTime<Utc>, DateTime<Utc>, String)> =
            Vec::with_capacity(n as usize + n as usize / 500);
        for _ in 0..n {
            let offset = hours.sample(&mut rng) as i64 * 3600 + rng.below(3600) as i64;
            let time = midnight + Duration::seconds(offset) + Duration::milliseconds(rng.below(1000) as i64);
            let event = self.event(&mut rng, time);
            // Each window (five minutes by default) is delivered in one file a few minutes after
            // it ends; about 3% of events come an hour late, in a later window's file.
            let late = if rng.chance(0.03) { 3600 } else { 0 };
            let window = time.timestamp() - time.timestamp() % self.window + self.window + late;
            let delivered =
                DateTime::from_timestamp(window + 60 * ((window / self.window) % 5), 0).context("time")?;
            if rng.chance(0.001) {
                let again = delivered + Duration::minutes(5 + rng.below(55) as i64);
                events.push((again, time, event.clone()));
            }
            events.push((delivered, time, event));
        }
        events.sort_by_key(|e| (e.0, e.1));
        let mut summary = Summary { events: n, ..Default::default() };
        for file in events.chunk_by(|a, b| a.0 == b.0) {
            let delivered = file[0].0;
            let mut json = Vec::with_capacity(file.iter().map(|(_, _, e)| e.len() + 1).sum::<usize>() + 16);
            json.extend_from_slice(b"{\"Records\":[");
            for (i, (_, _, event)) in file.iter().enumerate() {
                if i > 0 {
                    json.push(b',');
                }
                json.extend_from_slice(event.as_bytes());
            }
            json.extend_from_slice(b"]}");
            let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 6), Compression::fast());
            std::io::Write::write_all(&mut gz, &json)?;
            let bytes = gz.finish()?;
            let key = format!(
                "AWSLogs/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}_{}.json.gz",
                delivered.format("%Y/%m/%d"),
                delivered.format("%Y%m%dT%H%MZ"),
                rng.chars(16, ALNUM),
                account = self.account,
                region = self.region,
            );
            summary.files += 1;
            summary.records += file.len() as u64;
            summary.json_bytes += json.len() as u64;
            summary.gzip_bytes += bytes.len() as u64;
            sink(&key, bytes)?;
        }
        Ok(summary)
    }

    /// One event as JSON text: the template's members with this event's own.
    fn event(&self, rng: &mut Rng, time: DateTime<Utc>) -> String {
        use std::fmt::Write;
        let api = &self.apis[self.api_weights.sample(rng)];
        let (people, weights) = self.people;
        let who = &people[weights.sample(rng)];
        let data =
            api.source == "s3.amazonaws.com" && api.name.contains("Object") || api.name == "UploadPart";
        let mut e = String::with_capacity(api.rest.len() + api.response.len() + who.identity.len() + 512);
        let _ = write!(
            e,
            r#"{{"eventVersion":"1.09","userIdentity":{},"eventTime":"{}","eventSource":"{}","eventName":"{}","awsRegion":"{}","sourceIPAddress":"{}","userAgent":"{}","#,
            who.identity,
            time.format("%Y-%m-%dT%H:%M:%SZ"),
            api.source,
            api.name,
            self.region,
            who.ips[rng.below(who.ips.len() as u64) as usize],
            who.agent,
        );
        if rng.chance(0.15) {
            let (code, message) = ERRORS[rng.below(ERRORS.len() as u64) as usize];
            let _ = write!(e, r#""errorCode":"{code}","errorMessage":"{message}","responseElements":null,"#);
        } else {
            let _ = write!(e, r#""responseElements":{},"#, api.response);
        }
        let _ = write!(
            e,
            r#""requestID":"{}","eventID":"{}","eventType":"AwsApiCall","managementEvent":{},"eventCategory":"{}","recipientAccountId":"{}""#,
            rng.uuid(),
            rng.uuid(),
            !data,
            if data { "Data" } else { "Management" },
            self.account,
        );
        if !api.rest.is_empty() {
            e.push(',');
            e.push_str(&api.rest);
        }
        e.push('}');
        e
    }
}

/// Files to a local directory.
pub(crate) fn local_sink(root: std::path::PathBuf) -> impl Fn(&str, Vec<u8>) -> Result<()> + Sync {
    move |key, bytes| {
        let path = root.join(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Files to `s3://bucket/prefix`, through the runtime `handle`.
pub(crate) fn s3_sink(
    url: &url::Url,
    handle: tokio::runtime::Handle,
) -> Result<impl Fn(&str, Vec<u8>) -> Result<()> + Sync> {
    use object_store::ObjectStoreExt;
    let (store, prefix) = trawl_store::s3::bucket_of(url)?;
    let store: Arc<dyn object_store::ObjectStore> = store;
    let url = url.clone();
    Ok(move |key: &str, bytes: Vec<u8>| {
        let path =
            object_store::path::Path::from(format!("{}/{key}", prefix.as_ref()).trim_start_matches('/'));
        handle
            .block_on(store.put(&path, bytes.into()))
            .map(|_| ())
            .map_err(|e| trawl_store::s3::explain(e, &url))
            .with_context(|| format!("cannot write {path}"))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::io::Read;
    use std::sync::Mutex;

    use super::*;

    fn run(spec: &Spec, threads: usize) -> BTreeMap<String, Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let apis = crate::templates::load(&dir).unwrap();
        assert!(apis.len() >= 400, "{} API calls", apis.len());
        let files = Mutex::new(BTreeMap::new());
        let sink = |key: &str, bytes: Vec<u8>| {
            files.lock().unwrap().insert(key.to_owned(), bytes);
            Ok(())
        };
        let summary = generate(spec, &apis, threads, &sink).unwrap();
        let files = files.into_inner().unwrap();
        assert_eq!(summary.files, files.len() as u64);
        assert_eq!(summary.events, spec.events);
        files
    }

    #[test]
    fn realistic_and_deterministic() {
        let spec = Spec {
            events: 30_000,
            days: 4,
            accounts: 2,
            regions: 2,
            seed: 7,
            start: NaiveDate::from_ymd_opt(2025, 3, 30).unwrap(),
            file_minutes: 5,
        };
        let files = run(&spec, 2);
        assert_eq!(files, run(&spec, 1), "the same spec and seed, another thread count");

        let mut events = Vec::new();
        let mut late = 0;
        for (key, bytes) in &files {
            // AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16>.json.gz
            let parts: Vec<&str> = key.split('/').collect();
            assert_eq!((parts.len(), parts[0], parts[2]), (8, "AWSLogs", "CloudTrail"), "{key}");
            let name: Vec<&str> = parts[7].trim_end_matches(".json.gz").split('_').collect();
            assert_eq!((name[0], name[1], name[2]), (parts[1], "CloudTrail", parts[3]), "{key}");
            assert_eq!(&name[3][..8], format!("{}{}{}", parts[4], parts[5], parts[6]), "{key}");
            assert_eq!(name[4].len(), 16);
            let delivered = chrono::NaiveDateTime::parse_from_str(name[3], "%Y%m%dT%H%MZ").unwrap().and_utc();
            let mut text = String::new();
            flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            for e in doc["Records"].as_array().unwrap() {
                let time: DateTime<Utc> = e["eventTime"].as_str().unwrap().parse().unwrap();
                assert!(time < delivered, "{key}: an event after its delivery");
                late += usize::from(delivered - time > Duration::minutes(30));
                assert_eq!(e["recipientAccountId"].as_str(), Some(parts[1]));
                assert_eq!(e["awsRegion"].as_str(), Some(parts[3]));
                events.push(e.clone());
            }
        }
        let n = events.len() as f64;
        let ids: HashSet<&str> = events.iter().map(|e| e["eventID"].as_str().unwrap()).collect();
        assert_eq!(ids.len() as u64, spec.events, "unique eventIDs");
        assert!(events.len() as u64 > spec.events, "some events delivered twice");
        let share =
            |f: &dyn Fn(&serde_json::Value) -> bool| events.iter().filter(|e| f(e)).count() as f64 / n;
        let errors = share(&|e| e.get("errorCode").is_some());
        assert!((0.13..0.17).contains(&errors), "errors {errors}");
        assert!((0.02..0.04).contains(&(late as f64 / n)), "late {late}");
        let head = share(&|e| {
            ["kms.amazonaws.com", "sts.amazonaws.com", "s3.amazonaws.com", "ec2.amazonaws.com"]
                .contains(&e["eventSource"].as_str().unwrap())
        });
        assert!(head > 0.5, "head services {head}");
        let root = share(&|e| e["userIdentity"]["type"] == "Root");
        assert!(root > 0.0 && root < 0.005, "root {root}");
        let working =
            share(&|e| (9..17).contains(&e["eventTime"].as_str().unwrap()[11..13].parse::<u32>().unwrap()));
        assert!(working > 0.5, "working hours {working}");
        let apis: HashSet<(&str, &str)> = events
            .iter()
            .map(|e| (e["eventSource"].as_str().unwrap(), e["eventName"].as_str().unwrap()))
            .collect();
        assert!(apis.len() > 300, "{} distinct API calls", apis.len());
        // Zipf: the busiest principal makes far more calls than the median one.
        let mut by: HashMap<&str, usize> = HashMap::new();
        for e in &events {
            *by.entry(e["userIdentity"]["arn"].as_str().unwrap_or("service")).or_default() += 1;
        }
        let mut counts: Vec<usize> = by.into_values().collect();
        counts.sort_unstable();
        assert!(counts[counts.len() - 1] > 10 * counts[counts.len() / 2], "{counts:?}");
    }
}
