//! Alert sinks: where findings are sent, and how delivery is retried.
//!
//! An alert is one finding sent to one sink. Alerts are queued in the audit log in the commit
//! that records their findings, and a delivery is recorded there after it: an alert not
//! delivered stays in that outbox and the next run tries it again. Over HTTP, delivery is at
//! least once with a stable id (the finding's: Standard Webhooks' `webhook-id`, PagerDuty's
//! `dedup_key`), so a receiver that keeps ids sees each finding once even when a run is killed
//! between an answer and its record.
//!
//! Kinds, written in a pack (`[[sink]]`) or on the command line (`--alert`):
//!
//! | kind | `--alert` | what it does |
//! |---|---|---|
//! | `stdout`, `stderr` | `stdout` | a JSON line per alert |
//! | `file` | `file:PATH` | appends a JSON line per alert |
//! | `webhook` | `webhook:URL` | POSTs `{type, timestamp, data}` signed as Standard Webhooks define (HMAC-SHA256, the `whsec_` secret from `$TRAWL_WEBHOOK_SECRET` or `secret_env`) |
//! | `slack` | `slack:URL` or `slack` (`$TRAWL_SLACK_WEBHOOK_URL`) | a Slack incoming-webhook message |
//! | `pagerduty` | `pagerduty` or `pagerduty:URL` | a PagerDuty Events v2 trigger, `dedup_key` = the finding id, routing key from `$TRAWL_PAGERDUTY_ROUTING_KEY` or `routing_key_env` |
//! | `command` | `command:PROGRAM ARG...` | runs the program (no shell) with the alerts as a JSON array on stdin; a non-zero exit is a failure |
//!
//! HTTP delivery retries network errors, 408, 429 and 5xx with exponential backoff and jitter,
//! honours `Retry-After` up to a cap per kind, and never follows a redirect. After a failure a
//! sink is tried no more in that run: its alerts wait in the outbox.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Severity;

/// Where alerts go.
#[derive(Clone)]
pub struct Sink {
    /// How deliveries are recorded: `<pack>/<name>` for a pack's sink, the kind (or `name`)
    /// for one given on the command line.
    pub name: String,
    /// What it is.
    pub kind: SinkKind,
    /// Alerts of audits below this severity are not sent here.
    pub min_severity: Severity,
}

/// A sink's kind and its settings.
#[derive(Clone)]
#[allow(missing_docs)]
pub enum SinkKind {
    Stdout,
    Stderr,
    File(PathBuf),
    Webhook { url: String, secret: Vec<u8> },
    Slack { url: String },
    PagerDuty { url: String, routing_key: String },
    Command(Vec<String>),
}

/// PagerDuty's Events API v2.
const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

impl fmt::Debug for Sink {
    // Secrets (a webhook's key, a Slack URL, a routing key) are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sink({} {})", self.name, self.kind.label())
    }
}

impl SinkKind {
    /// The kind's name.
    pub fn label(&self) -> &'static str {
        match self {
            SinkKind::Stdout => "stdout",
            SinkKind::Stderr => "stderr",
            SinkKind::File(_) => "file",
            SinkKind::Webhook { .. } => "webhook",
            SinkKind::Slack { .. } => "slack",
            SinkKind::PagerDuty { .. } => "pagerduty",
            SinkKind::Command(_) => "command",
        }
    }

    /// The longest `Retry-After` waited for: a receiver asking for longer is tried again by the
    /// next run. PagerDuty asks for minutes, Slack for seconds.
    fn retry_after_cap(&self) -> Duration {
        match self {
            SinkKind::PagerDuty { .. } => Duration::from_secs(180),
            SinkKind::Slack { .. } => Duration::from_secs(20),
            _ => Duration::from_secs(60),
        }
    }
}

/// A sink as a pack writes it (`[[sink]]`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SinkSpec {
    name: Option<String>,
    kind: String,
    url: Option<String>,
    url_env: Option<String>,
    secret_env: Option<String>,
    routing_key_env: Option<String>,
    path: Option<String>,
    #[serde(default)]
    command: Vec<String>,
    min_severity: Option<String>,
}

impl SinkSpec {
    /// The sink, its secrets read from the environment; `pack` prefixes its name.
    pub(crate) fn build(self, pack: &str) -> std::result::Result<Sink, String> {
        let name = self.name.clone().unwrap_or_else(|| self.kind.clone());
        let what = format!("sink '{name}'");
        let env = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
        let url = match (&self.url, &self.url_env) {
            (Some(url), None) => Some(url.clone()),
            (None, Some(var)) => Some(env(var).ok_or(format!("{what}: ${var} is not set"))?),
            (Some(_), Some(_)) => return Err(format!("{what} has both url and url_env; keep one")),
            (None, None) => None,
        };
        let kind = kind(&self.kind, url, self.path, self.command, self.secret_env, self.routing_key_env)
            .map_err(|e| format!("{what}: {e}"))?;
        let min_severity = match self.min_severity {
            Some(s) => s.parse().map_err(|e| format!("{what}: min_severity: {e}"))?,
            None => Severity::Low,
        };
        Ok(Sink { name: format!("{pack}/{name}"), kind, min_severity })
    }
}

/// A kind from its settings; secrets come from the environment.
fn kind(
    kind: &str,
    url: Option<String>,
    path: Option<String>,
    command: Vec<String>,
    secret_env: Option<String>,
    routing_key_env: Option<String>,
) -> std::result::Result<SinkKind, String> {
    let env = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    let http = |url: Option<String>, needed: &str| -> std::result::Result<String, String> {
        let url = url.ok_or(format!("a {kind} sink needs {needed}"))?;
        let parsed = url::Url::parse(&url).map_err(|e| format!("url: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("url: '{}' is not http or https", parsed.scheme()));
        }
        Ok(url)
    };
    Ok(match kind {
        "stdout" => SinkKind::Stdout,
        "stderr" => SinkKind::Stderr,
        "file" => SinkKind::File(PathBuf::from(path.ok_or("a file sink needs a path")?)),
        "webhook" => {
            let var = secret_env.unwrap_or_else(|| "TRAWL_WEBHOOK_SECRET".into());
            let secret = env(&var).ok_or(format!(
                "a webhook sink signs what it sends: set ${var} to its secret (whsec_ and base64)"
            ))?;
            let key = secret.strip_prefix("whsec_").unwrap_or(&secret);
            let secret = base64::engine::general_purpose::STANDARD
                .decode(key)
                .map_err(|e| format!("${var} is not base64 after whsec_: {e}"))?;
            if secret.len() < 24 {
                return Err(format!(
                    "${var} is {} bytes; Standard Webhooks ask for 24 or more",
                    secret.len()
                ));
            }
            SinkKind::Webhook { url: http(url, "a url")?, secret }
        }
        "slack" => {
            let url = url.or_else(|| env("TRAWL_SLACK_WEBHOOK_URL"));
            SinkKind::Slack { url: http(url, "a url (or $TRAWL_SLACK_WEBHOOK_URL)")? }
        }
        "pagerduty" => {
            let var = routing_key_env.unwrap_or_else(|| "TRAWL_PAGERDUTY_ROUTING_KEY".into());
            let routing_key = env(&var).ok_or(format!("a pagerduty sink needs its routing key in ${var}"))?;
            SinkKind::PagerDuty {
                url: http(Some(url.unwrap_or_else(|| PAGERDUTY_URL.into())), "")?,
                routing_key,
            }
        }
        "command" => {
            if command.is_empty() {
                return Err("a command sink needs `command = [\"program\", \"arg\", ...]`".into());
            }
            SinkKind::Command(command)
        }
        other => {
            return Err(format!(
                "kind '{other}' is not one of stdout, stderr, file, webhook, slack, pagerduty, command"
            ));
        }
    })
}

impl std::str::FromStr for Sink {
    type Err = String;

    /// A sink as `--alert` gives it: `stdout`, `stderr`, `file:PATH`, `webhook:URL`,
    /// `slack[:URL]`, `pagerduty[:URL]`, `command:PROGRAM ARG...`.
    fn from_str(spec: &str) -> std::result::Result<Self, String> {
        // The first colon ends the kind: `webhook:https://...`.
        let (name, rest) = match spec.split_once(':') {
            Some((name, rest)) => (name, Some(rest.to_owned())),
            None => (spec, None),
        };
        let (url, path, command) = match name {
            "file" => (None, rest, Vec::new()),
            "command" => (
                None,
                None,
                rest.map(|r| r.split_whitespace().map(str::to_owned).collect()).unwrap_or_default(),
            ),
            _ => (rest, None, Vec::new()),
        };
        let kind = kind(name, url, path, command, None, None).map_err(|e| format!("--alert {spec}: {e}"))?;
        Ok(Sink { name: name.to_owned(), kind, min_severity: Severity::Low })
    }
}

/// What became of one alert.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The finding.
    pub finding_id: String,
    /// The sink's name.
    pub sink: String,
    /// Sent and acknowledged.
    pub delivered: bool,
    /// Tries made in this run (none: the sink had failed before in this run).
    pub attempts: u32,
    /// Why it was not delivered.
    pub error: Option<String>,
}

/// How HTTP deliveries are retried within a run.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Tries per alert in one run.
    pub attempts: u32,
    /// The first backoff; each next one doubles, jittered, up to `max`.
    pub base: Duration,
    #[allow(missing_docs)]
    pub max: Duration,
    /// How long a request may take.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 4,
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Sends `alerts` (JSON objects, as [`crate::run`] reads them from the outbox) to `sink`, in
/// order, and says what became of each. After a failure the rest are not tried.
pub(crate) async fn deliver(sink: &Sink, alerts: &[Value], retry: Retry) -> Vec<Delivery> {
    let outcome = |alert: &Value, attempts: u32, error: Option<String>| Delivery {
        finding_id: alert["finding_id"].as_str().unwrap_or_default().to_owned(),
        sink: sink.name.clone(),
        delivered: error.is_none(),
        attempts,
        error,
    };
    let local = |result: std::io::Result<()>, what: &str| result.map_err(|e| format!("{what}: {e}"));
    let batch_result = match &sink.kind {
        SinkKind::Stdout => Some(local(lines(&mut std::io::stdout().lock(), alerts), "stdout")),
        SinkKind::Stderr => Some(local(lines(&mut std::io::stderr().lock(), alerts), "stderr")),
        SinkKind::File(path) => Some(local(append(path, alerts), &path.display().to_string())),
        SinkKind::Command(argv) => Some(command(argv.clone(), alerts).await),
        _ => None,
    };
    if let Some(result) = batch_result {
        let error = result.err();
        return alerts.iter().map(|a| outcome(a, 1, error.clone())).collect();
    }
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(retry.timeout)
        .user_agent(concat!("trawl/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(e) => return alerts.iter().map(|a| outcome(a, 0, Some(format!("HTTP client: {e}")))).collect(),
    };
    let mut out = Vec::with_capacity(alerts.len());
    let mut failed: Option<String> = None;
    for alert in alerts {
        if let Some(e) = &failed {
            out.push(outcome(alert, 0, Some(format!("not tried: {e}"))));
            continue;
        }
        let (url, body) = request(sink, alert);
        let id = alert["finding_id"].as_str().unwrap_or_default().to_owned();
        let headers = || -> Vec<(&'static str, String)> {
            match &sink.kind {
                SinkKind::Webhook { secret, .. } => sign(secret, &id, chrono::Utc::now().timestamp(), &body),
                _ => Vec::new(),
            }
        };
        let (attempts, result) =
            post(&client, url, &headers, &body, retry, sink.kind.retry_after_cap()).await;
        if let Err(e) = &result {
            failed = Some(e.clone());
        }
        out.push(outcome(alert, attempts, result.err()));
    }
    out
}

/// The URL and body of an alert for an HTTP sink.
fn request<'a>(sink: &'a Sink, alert: &Value) -> (&'a str, Vec<u8>) {
    let body = match &sink.kind {
        SinkKind::Webhook { .. } => {
            json!({"type": "trawl.finding", "timestamp": chrono::Utc::now().to_rfc3339(), "data": alert})
        }
        SinkKind::Slack { .. } => json!({"text": slack_text(alert)}),
        SinkKind::PagerDuty { routing_key, .. } => pagerduty(routing_key, alert),
        _ => Value::Null,
    };
    let url = match &sink.kind {
        SinkKind::Webhook { url, .. } | SinkKind::Slack { url } | SinkKind::PagerDuty { url, .. } => url,
        _ => "",
    };
    (url, body.to_string().into_bytes())
}

/// Standard Webhooks' headers: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
pub(crate) fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(format!("{id}.{timestamp}.").as_bytes());
    ctx.update(body);
    let signature = base64::engine::general_purpose::STANDARD.encode(ctx.sign().as_ref());
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", format!("v1,{signature}")),
    ]
}

/// POSTs `body` until a 2xx, a failure not worth retrying now, or the tries run out. Returns
/// the tries made.
async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &dyn Fn() -> Vec<(&'static str, String)>,
    body: &[u8],
    retry: Retry,
    retry_after_cap: Duration,
) -> (u32, std::result::Result<(), String>) {
    let mut error = String::new();
    for attempt in 1..=retry.attempts.max(1) {
        let mut request = client.post(url).header("content-type", "application/json").body(body.to_vec());
        for (name, value) in headers() {
            request = request.header(name, value);
        }
        let wait = match request.send().await {
            Ok(response) if response.status().is_success() => return (attempt, Ok(())),
            Ok(response) => {
                let status = response.status();
                let asked =
                    response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(retry_after);
                let location =
                    response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let text = response.text().await.unwrap_or_default();
                let text: String = text.chars().take(200).collect();
                error = format!(
                    "{url} answered {status}{}",
                    if text.trim().is_empty() { String::new() } else { format!(": {}", text.trim()) }
                );
                if status.is_redirection() {
                    // A redirect may point anywhere (SSRF): it is the receiver's to fix.
                    let to = location.unwrap_or_default();
                    return (attempt, Err(format!("{url} redirects to '{to}'; redirects are not followed")));
                }
                let retryable = status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408;
                if !retryable {
                    return (attempt, Err(error));
                }
                match asked {
                    Some(asked) if asked > retry_after_cap => {
                        return (
                            attempt,
                            Err(format!(
                                "{error}; it asks to wait {}s, more than {}s: left for the next run",
                                asked.as_secs(),
                                retry_after_cap.as_secs()
                            )),
                        );
                    }
                    Some(asked) => asked,
                    None => backoff(retry, attempt),
                }
            }
            Err(e) => {
                error = format!("{url}: {}", describe(&e));
                backoff(retry, attempt)
            }
        };
        if attempt < retry.attempts {
            tokio::time::sleep(wait).await;
        }
    }
    (retry.attempts, Err(format!("{error} (after {} tries)", retry.attempts)))
}

/// The wait before try `attempt + 1`: `base * 2^(attempt-1)`, between half and all of it at
/// random (so that many runs failing together do not retry together), at most `max`.
fn backoff(retry: Retry, attempt: u32) -> Duration {
    let full = retry.base.saturating_mul(1 << (attempt - 1).min(16)).min(retry.max);
    let mut bytes = [0u8; 2];
    let fraction = match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes) {
        Ok(()) => f64::from(u16::from_le_bytes(bytes)) / f64::from(u16::MAX),
        Err(_) => 1.0,
    };
    full.mul_f64(0.5 + fraction / 2.0)
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    Some((at.to_utc() - chrono::Utc::now()).to_std().unwrap_or_default())
}

/// A reqwest error and its causes, once each.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

fn lines(out: &mut dyn Write, alerts: &[Value]) -> std::io::Result<()> {
    for alert in alerts {
        writeln!(out, "{alert}")?;
    }
    out.flush()
}

/// Appends the alerts as JSON lines, synced: a line written is a line kept.
fn append(path: &std::path::Path, alerts: &[Value]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let mut text = Vec::new();
    lines(&mut text, alerts)?;
    file.write_all(&text)?;
    file.sync_data()
}

/// Runs `argv` with the alerts as a JSON array on stdin.
async fn command(argv: Vec<String>, alerts: &[Value]) -> std::result::Result<(), String> {
    let input = Value::Array(alerts.to_vec()).to_string();
    let program = argv[0].clone();
    let ran = tokio::task::spawn_blocking(move || -> std::io::Result<std::process::Output> {
        let mut child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its input is its own business: its exit status says.
            let _ = stdin.write_all(input.as_bytes());
        }
        child.wait_with_output()
    })
    .await
    .map_err(|e| format!("{program}: {e}"))?;
    let output = ran.map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    Err(format!(
        "{program} exited with {}{}",
        output.status,
        if last.is_empty() { String::new() } else { format!(": {last}") }
    ))
}

/// The alert as a Slack message: severity and title, where, the row, and the rule's author.
fn slack_text(alert: &Value) -> String {
    let s = |k: &str| alert[k].as_str().unwrap_or_default();
    let mut row = alert["row"].to_string();
    if row.len() > 2000 {
        let mut end = 2000;
        while !row.is_char_boundary(end) {
            end -= 1;
        }
        row.truncate(end);
        row.push('…');
    }
    let mut text = format!(
        "*[{}] {}*\n`{}/{}` over `{}`{}\n```{row}```",
        s("severity").to_uppercase(),
        s("title"),
        s("pack"),
        s("audit"),
        s("store"),
        match (alert["eventid"].as_str(), alert["eventtime"].as_str()) {
            (Some(id), Some(t)) => format!(", event {id} at {t}"),
            _ => String::new(),
        }
    );
    if let Some(author) = alert["author"].as_str() {
        text.push_str(&format!("\nRule by {author}"));
        if let Some(link) = alert["link"].as_str() {
            text.push_str(&format!(" ({link})"));
        }
    }
    text
}

/// A PagerDuty Events v2 trigger: the finding id dedups, the severity maps onto PagerDuty's.
fn pagerduty(routing_key: &str, alert: &Value) -> Value {
    let s = |k: &str| alert[k].as_str().unwrap_or_default();
    let severity = match s("severity") {
        "critical" => "critical",
        "high" => "error",
        "medium" => "warning",
        _ => "info",
    };
    let summary: String =
        format!("[{}] {} ({}/{} over {})", s("severity"), s("title"), s("pack"), s("audit"), s("store"))
            .chars()
            .take(1024)
            .collect();
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": s("finding_id"),
        "payload": {
            "summary": summary,
            "source": format!("trawl/{}", s("store")),
            "severity": severity,
            "group": s("pack"),
            "class": s("audit"),
            "custom_details": alert,
        },
    });
    if let Some(t) = alert["eventtime"].as_str() {
        event["payload"]["timestamp"] = json!(t);
    }
    if let Some(link) = alert["link"].as_str().filter(|l| l.starts_with("http")) {
        event["links"] = json!([{"href": link, "text": "rule"}]);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks reference libraries.
        let secret =
            base64::engine::general_purpose::STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let headers = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(headers[2].1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(retry_after("soon"), None);
        let retry = Retry { base: Duration::from_secs(2), max: Duration::from_secs(5), ..Retry::default() };
        assert!((Duration::from_secs(1)..=Duration::from_secs(2)).contains(&backoff(retry, 1)));
        assert!((Duration::from_millis(2500)..=Duration::from_secs(5)).contains(&backoff(retry, 3)));
    }

    #[test]
    fn sinks_from_the_command_line() {
        assert_eq!("stderr".parse::<Sink>().unwrap().kind.label(), "stderr");
        let file: Sink = "file:/tmp/alerts.ndjson".parse().unwrap();
        assert!(matches!(file.kind, SinkKind::File(p) if p == std::path::Path::new("/tmp/alerts.ndjson")));
        let command: Sink = "command:notify --json".parse().unwrap();
        assert!(matches!(command.kind, SinkKind::Command(a) if a == ["notify", "--json"]));
        let e = "slack:ftp://x".parse::<Sink>().unwrap_err();
        assert!(e.contains("not http or https"), "{e}");
        let e = "teams".parse::<Sink>().unwrap_err();
        assert!(e.contains("not one of"), "{e}");
    }
}
