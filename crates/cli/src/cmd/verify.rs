//! `trawl verify`: stores checked against their integrity chains; `trawl key generate`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use trawl_store::Lake;
use trawl_store::chain::{PublicKey, Signer};

use crate::args::{KeyCommand, VerifyArgs};

pub(super) async fn run(lake: &Lake, args: VerifyArgs) -> Result<ExitCode> {
    let key = args.public_key.as_deref().map(public_key).transpose()?;
    let mut reports = Vec::new();
    for name in &super::named_or_enabled(lake, args.stores.clone()).await? {
        let eds = lake.store(name).await?;
        let report =
            eds.verify(args.deep, key.as_ref()).await.with_context(|| format!("cannot verify {name}"))?;
        reports.push(report);
    }
    // Without --store, the lake's record tables too: the audit runs and the statements run.
    if args.stores.is_empty() {
        use trawl_store::records::{RecordLog, Records};
        for records in [Records::Audits, Records::Queries] {
            let log = RecordLog::open_records(lake, records).await?;
            if let Some(report) = log.verify(args.deep, key.as_ref()).await? {
                reports.push(report);
            }
        }
    }
    let problems: usize = reports.iter().map(|r| r.problems.len()).sum();
    crate::output::to_stdout(|out| {
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &reports)?;
            writeln!(out)?;
            return Ok(());
        }
        for r in &reports {
            for p in &r.problems {
                writeln!(out, "{}\t{}\t{}\t{}", r.store, p.kind.label(), p.subject, p.detail)?;
            }
            let version = r.version.map_or("no commits".to_owned(), |v| format!("version {v}"));
            let mut hashed = if args.deep { format!(", {} hashed", r.files_hashed) } else { String::new() };
            if r.unhashed > 0 {
                hashed.push_str(&format!(
                    " ({} written before SHA-256s were recorded: sizes checked)",
                    r.unhashed
                ));
            }
            let signed = match (&key, r.signed) {
                (Some(_), n) => format!(", {n} signatures checked"),
                (None, 0) => String::new(),
                (None, n) => format!(", {n} signed (--public-key checks them)"),
            };
            let verdict = match r.problems.len() {
                0 => "intact".to_owned(),
                n => format!("{n} finding{}", if n == 1 { "" } else { "s" }),
            };
            writeln!(
                out,
                "{}: {verdict}: {version}, {} chain records{signed}, {} live files{hashed}",
                r.store, r.records, r.live_files
            )?;
            if r.records == 0 && r.version.is_some() {
                writeln!(
                    out,
                    "{}: no integrity chain yet (a store older than it): its next commit records every version its Delta log holds",
                    r.store
                )?;
            }
        }
        Ok(())
    })?;
    Ok(if problems > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// A public key given as its hex, or as a file holding it.
pub(super) fn public_key(text: &str) -> Result<PublicKey> {
    if let Ok(key) = PublicKey::parse(text) {
        return Ok(key);
    }
    let held = std::fs::read_to_string(text)
        .with_context(|| format!("--public-key {text}: neither 64 hex digits nor a readable file"))?;
    PublicKey::parse(&held).with_context(|| format!("--public-key {text}"))
}

/// CloudTrail's public keys, from `--public-keys FILE`.
pub(super) fn cloudtrail_keys(path: &Path) -> Result<trawl_ingest::digest::PublicKeys> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    trawl_ingest::digest::PublicKeys::parse(&text)
        .map_err(|e| anyhow::anyhow!("--public-keys {}: {e}", path.display()))
}

/// The signer of `--deliver`, which must have one.
pub(super) fn delivery_signer() -> Result<std::sync::Arc<Signer>> {
    signer()?.ok_or_else(|| {
        anyhow::anyhow!(
            "--deliver signs its results: $TRAWL_SIGNING_KEY names the key (`trawl key generate FILE` makes one)"
        )
    })
}

/// The signer `$TRAWL_SIGNING_KEY` names, if any.
pub(super) fn signer() -> Result<Option<std::sync::Arc<Signer>>> {
    let Some(path) = std::env::var_os("TRAWL_SIGNING_KEY").filter(|p| !p.is_empty()) else { return Ok(None) };
    let path = Path::new(&path);
    let bytes =
        std::fs::read(path).with_context(|| format!("TRAWL_SIGNING_KEY: cannot read {}", path.display()))?;
    let signer =
        Signer::from_pkcs8(&bytes).with_context(|| format!("TRAWL_SIGNING_KEY: {}", path.display()))?;
    Ok(Some(std::sync::Arc::new(signer)))
}

pub(super) fn key(command: KeyCommand) -> Result<ExitCode> {
    let KeyCommand::Generate { file } = command;
    if file.exists() {
        bail!("{} exists: a signing key is never overwritten", file.display());
    }
    let pem = Signer::generate()?;
    let public = Signer::from_pkcs8(pem.as_bytes())?.public_key();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&file)
        .and_then(|mut f| f.write_all(pem.as_bytes()))
        .with_context(|| format!("cannot write {}", file.display()))?;
    let mut public_file = file.clone().into_os_string();
    public_file.push(".pub");
    std::fs::write(&public_file, format!("{}\n", public.to_hex()))
        .with_context(|| format!("cannot write {}", Path::new(&public_file).display()))?;
    crate::output::to_stdout(|out| {
        writeln!(out, "{}", public.to_hex())?;
        Ok(())
    })?;
    note!(
        "signing key in {}, public key (above) in {}; fingerprint {}",
        file.display(),
        Path::new(&public_file).display(),
        public.fingerprint()
    );
    Ok(ExitCode::SUCCESS)
}

/// `trawl verify-results`: a delivery's files and signature, a line each, as `aws cloudtrail
/// validate-logs` prints its files.
pub(crate) async fn results(location: &str, key: &str) -> Result<ExitCode> {
    let key = public_key(key)?;
    let report = trawl_store::signed::verify_results(location, &key)
        .await
        .with_context(|| format!("cannot read the results at {location}"))?;
    crate::output::to_stdout(|out| {
        for (name, verdict) in &report.files {
            writeln!(out, "Results file\t{name}\t{verdict}")?;
        }
        writeln!(out, "Sign file\t{}\t{}", trawl_store::signed::SIGN_FILE, report.signature)?;
        let valid = report.files.iter().filter(|(_, v)| v == "valid").count();
        writeln!(
            out,
            "{valid}/{} result files valid, signature {}",
            report.files.len(),
            if report.signature == "valid" { "valid" } else { "INVALID" }
        )?;
        Ok(())
    })?;
    Ok(if report.valid() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `trawl validate-trail`: the lines and summary of `aws cloudtrail validate-logs`.
pub(crate) async fn trail(source: &str, keys: &Path, verbose: bool, json: bool) -> Result<ExitCode> {
    use trawl_ingest::digest::FileKind;
    let keys = cloudtrail_keys(keys)?;
    let report = trawl_ingest::digest::validate_trail(source, &keys)
        .await
        .with_context(|| format!("cannot validate the trail at {source}"))?;
    let invalid = report.verdicts.iter().any(|v| v.invalid());
    crate::output::to_stdout(|out| {
        if json {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
            return Ok(());
        }
        for v in report.verdicts.iter().filter(|v| verbose || v.result != "valid") {
            let kind = match v.kind {
                FileKind::Digest => "Digest file",
                FileKind::Log => "Log file",
            };
            writeln!(out, "{kind}\t{}\t{}", v.location, v.result)?;
        }
        if let (Some(first), Some(last)) = (&report.first, &report.last) {
            writeln!(out, "\nResults found for {first} to {last}:\n")?;
        }
        for (kind, name) in [(FileKind::Digest, "digest files"), (FileKind::Log, "log files")] {
            let (valid, bad, unchecked) = report.counts(kind);
            let all = valid + bad + unchecked;
            let mut line = format!("{valid}/{all} {name} valid");
            if bad > 0 {
                line.push_str(&format!(", {bad}/{all} {name} INVALID"));
            }
            if unchecked > 0 {
                line.push_str(&format!(", {unchecked}/{all} {name} not validated"));
            }
            writeln!(out, "{line}")?;
        }
        Ok(())
    })?;
    Ok(if invalid { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
