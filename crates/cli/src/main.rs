//! `trawl`: CloudTrail event data stores on Delta Lake.
//!
//! Exit codes: 0 success; 1 error; 2 usage error; 3 ingest finished but skipped bad input
//! (malformed records or unreadable files, all reported on stderr). Statements read from stdin
//! by `trawl` without a command: 1 when any of them failed.

/// A line on stderr. A closed stderr (`trawl ... 2>&1 | head`) is no reason to panic: the line
/// is dropped.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A line on stdout for the shell's own output (help, lists); a closed stdout drops it.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod args;
mod cmd;

/// `sql-examples/` and the demo's fixture files, bundled by `build.rs`.
mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}
mod output;
mod progress;
mod repl;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            note!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command {
        None => cmd::shell::shell(&runtime, &cli.lake, false),
        Some(Command::Demo) => cmd::shell::shell(&runtime, &cli.lake, true),
        // A query opens the lake for SQL itself (and needs none for raw trail tables).
        Some(Command::Query(args)) => runtime.block_on(cmd::query::run(&cli.lake, args)),
        Some(Command::Lookup(args)) => runtime.block_on(cmd::lookup::run(&cli.lake, args)),
        Some(Command::Saved(cmd)) => runtime.block_on(cmd::saved::run(&cli.lake, cmd)),
        Some(Command::History(args)) => runtime.block_on(cmd::history::run(&cli.lake, args)),
        Some(Command::ValidateTrail { source, public_keys, verbose, json }) => {
            runtime.block_on(cmd::verify::trail(&source, &public_keys, verbose, json))
        }
        Some(Command::Gaps(args)) => runtime.block_on(cmd::gaps::run(&cli.lake, args)),
        Some(Command::VerifyResults { location, public_key }) => {
            runtime.block_on(cmd::verify::results(&location, &public_key))
        }
        Some(command) => runtime.block_on(cmd::run(&cli.lake, command)),
    };
    // A query abandoned by Ctrl-C may still be winding down: do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        // The reader of the output went away (`trawl query ... | head`): done, as ripgrep is.
        Err(e) if closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            note!("error: {}", describe(&e));
            ExitCode::from(1)
        }
    }
}

/// True when `e` is a write into a pipe whose reader has gone.
pub(crate) fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes, each said once. The contexts trawl adds come first; a cause whose
/// words the message already holds is left out (DataFusion's and Parquet's errors restate their
/// sources). A damaged data file is named by its own message alone.
pub(crate) fn describe(e: &anyhow::Error) -> String {
    let full = format!("{e:#}");
    let corrupt = trawl_store::blocks::Corrupt::find_in(&full);
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if corrupt.is_some_and(|c| text.contains(c)) {
            break;
        }
        // A layer whose message ends with its source's: its own words only.
        let own = match cause.source().map(|s| s.to_string()) {
            Some(source) if !source.is_empty() && text.ends_with(&source) => {
                text[..text.len() - source.len()].trim_end_matches([':', ' ']).to_owned()
            }
            _ => text,
        };
        if own.is_empty() || out.contains(&own) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&own);
    }
    match corrupt {
        Some(c) if out.is_empty() => c.to_owned(),
        Some(c) => format!("{out}: {c}"),
        None => out,
    }
}

/// Keeps freed memory in glibc's heap instead of handing it back to the kernel at once.
///
/// Left to adjust its thresholds itself, glibc's malloc maps blocks above its mmap threshold
/// (128 KiB, rising to 32 MiB at most) afresh at each allocation and trims the heaps of worker
/// threads whenever 128 KiB is free at their top, so the ingest's page-sized column buffers and
/// batch-sized builders fault their memory in again and again: 8.1 million page faults and
/// 34-37 s of system time for 10M events. Fixed thresholds (blocks up to 32 MiB from the heap,
/// trimming above 64 MiB free) took that to 0.3-0.9 million faults and 14 s, with peak RSS no
/// higher (805-834 against 849-925 MiB): the history of BENCHMARKS.md has the runs.
///
/// Each malloc arena may then keep up to 64 MiB free, and glibc makes up to eight arenas per
/// core, one per thread that finds the others busy: the peak RSS of a 10M ingest ranged from
/// 838 to 1,030 MiB with the same build. Two arenas per core took it to 636-699 MiB, with wall
/// and CPU time within the noise.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    let arenas = std::thread::available_parallelism().map_or(2, |n| n.get()).saturating_mul(2);
    let arenas = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
    // SAFETY: `mallopt` sets allocator parameters and touches no memory of ours; it runs before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
