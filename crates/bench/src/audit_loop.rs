//! `trawl-bench audit-loop`: the audit daemon's wake-ups, many of them, for its memory.
//!
//! Each wake-up is what `trawl audit daemon` does when it wakes: `trawl_audit::run` of the packs
//! at the clock's time (the audits due run, each over its window, and are recorded). The clock
//! is moved on by `--step` between wake-ups instead of waiting, so 1,000 wake-ups of a 15-minute
//! schedule (ten days of a daemon) take minutes.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use trawl_store::FixedClock;

pub(crate) fn run(lake: &str, packs: &[PathBuf], runs: u32, step: &str, start: &str) -> Result<()> {
    let packs = packs
        .iter()
        .map(|p| trawl_audit::Pack::load(p).with_context(|| format!("pack {}", p.display())))
        .collect::<Result<Vec<_>>>()?;
    let step = trawl_audit::schedule::parse_duration(step).map_err(anyhow::Error::msg)?;
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339(start).context("--start")?.to_utc();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // A daemon started now: its first runs read the events from now on, not the years stored
    // (what `audit daemon --since` does), so every wake-up is one of a daemon at work.
    let options = trawl_audit::RunOptions { since: Some(start), ..trawl_audit::RunOptions::default() };
    let mut samples = Vec::new();
    let (mut audits, mut findings) = (0usize, 0usize);
    let mut window = Instant::now();
    let began = Instant::now();
    for i in 0..runs {
        let clock = FixedClock(start + step * i32::try_from(i)?);
        let report = runtime.block_on(trawl_audit::run(lake, &packs, &options, &clock))?;
        audits += report.runs.len();
        findings += report.findings();
        if (i + 1) % 100 == 0 || i == 0 {
            let rss = rss_mib()?;
            let per_run = window.elapsed().as_secs_f64() * 1000.0 / if i == 0 { 1.0 } else { 100.0 };
            eprintln!("{:>5} wake-ups: {rss:>7.1} MiB resident, {per_run:>7.1} ms per wake-up", i + 1);
            samples.push(serde_json::json!({"runs": i + 1, "rss_mib": rss, "ms_per_run": per_run}));
            window = Instant::now();
        }
    }
    let summary = serde_json::json!({
        "runs": runs,
        "audit_runs": audits,
        "findings": findings,
        "seconds": began.elapsed().as_secs_f64(),
        "samples": samples,
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// This process's resident memory now (`VmRSS`), in MiB.
fn rss_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kib / 1024.0)
}
