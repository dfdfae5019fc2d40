//! `trawl export`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use trawl_ingest::export;
use trawl_store::Lake;

use super::parse_time;
use crate::args::ExportArgs;

pub(super) async fn run(lake: &Lake, args: ExportArgs) -> Result<ExitCode> {
    let eds = lake.store(&args.store).await?;
    let start = args.start.as_deref().map(parse_time).transpose()?;
    let end = args.end.as_deref().map(parse_time).transpose()?;
    let report = if args.output.as_os_str() == "-" {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        export(&eds, start, end, &mut out).await?
    } else {
        // Written next to the target and renamed, so a failed export leaves no partial file.
        let tmp = args.output.with_extension("partial");
        let file = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let report = export(&eds, start, end, &mut out).await?;
        drop(out);
        std::fs::rename(&tmp, &args.output)
            .with_context(|| format!("cannot write {}", args.output.display()))?;
        report
    };
    note!("exported {} events ({} bytes) from {}", report.events, report.bytes, eds.config().name);
    Ok(ExitCode::SUCCESS)
}
