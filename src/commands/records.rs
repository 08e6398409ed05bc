//! The commands over the signed records themselves: `verify`, `export`, `purge` and
//! `export-person` (everything held about one person).

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::context::{ConfigSource, emit, open, progress_bar, write_output};
use crate::base::clock::parse_time;
use crate::base::config::Config;
use crate::base::error::{Error, Result};
use crate::store::chain::{self, ChainSummary};
use crate::store::export::ExportFormat;

/// `clockface verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

impl VerifyArgs {
    /// Recomputes every chain link and signature.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        verify(&src.load_logged()?, self.json, out).map(drop)
    }
}

/// `clockface export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Start, inclusive: YYYY-MM-DD (UTC) or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// End, exclusive: YYYY-MM-DD (UTC) or RFC 3339.
    #[arg(long)]
    until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    format: ExportFormat,
    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

impl ExportArgs {
    /// Writes the records in range to the file or `out`.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        let cfg = src.load_logged()?;
        let (since, until) = (self.since.as_deref(), self.until.as_deref());
        match &self.output {
            Some(path) => {
                let mut f = std::io::BufWriter::new(
                    std::fs::File::create(path).map_err(|e| Error::io(path, e))?,
                );
                export(&cfg, since, until, self.format, &mut f)?;
                f.flush().map_err(|e| Error::io(path, e))
            }
            None => export(&cfg, since, until, self.format, out).map(drop),
        }
    }
}

/// `clockface purge`.
#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// Only report what would be purged.
    #[arg(long, conflicts_with = "now", required_unless_present = "now")]
    dry_run: bool,
    /// Purge now.
    #[arg(long)]
    now: bool,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

impl PurgeArgs {
    /// Purges (or, with `--dry-run`, counts) what retention allows.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        // `--now` only exists so that a purge is never started by accident; clap enforces it.
        let _ = self.now;
        purge(&src.load_logged()?, self.dry_run, self.json, out).map(drop)
    }
}

/// `clockface export-person`.
#[derive(Debug, clap::Args)]
pub struct ExportPersonArgs {
    /// Employee id.
    employee_id: String,
    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

impl ExportPersonArgs {
    /// Writes the subject access export.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        let text = export_person(&src.load_logged()?, &self.employee_id)?;
        write_output(self.output.as_deref(), out, text.as_bytes())
    }
}

/// Outcome of `clockface verify`.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// Device whose chains were checked.
    pub device_id: String,
    /// Hex public key the signatures were checked against.
    pub public_key: String,
    /// SQLite's own structural check ("ok" when sound).
    pub integrity: String,
    /// One summary per chain.
    pub chains: Vec<ChainSummary>,
}

/// `clockface verify`: SQLite integrity, then every chain link and signature. Err names the
/// first bad record.
pub fn verify(cfg: &Config, json: bool, out: &mut dyn Write) -> Result<VerifyReport> {
    let store = open(cfg, true)?;
    let integrity: String = store
        .conn()
        .query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        return Err(Error::Database {
            path: store.db_path().to_owned(),
            reason: format!("SQLite integrity check failed: {integrity}"),
        });
    }
    let stats = store.stats()?;
    let pb = progress_bar(
        stats.checkins + stats.failed_attempts + stats.audit_entries,
        "verifying",
    );
    let id = store.identity().clone();
    let chains = chain::verify_all(store.conn(), &id.public_key, id.device_id, &|n| {
        if let Some(pb) = &pb {
            pb.set_position(n);
        }
    });
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    let chains = chains?;
    let report = VerifyReport {
        device_id: id.device_id.to_string(),
        public_key: hex::encode(id.public_key.as_bytes()),
        integrity,
        chains,
    };
    emit(out, json, &report, |out| {
        let _ = writeln!(out, "store {}: ok", store.db_path().display());
        let _ = writeln!(
            out,
            "  device {} key {}",
            report.device_id, report.public_key
        );
        for c in &report.chains {
            let _ = writeln!(
                out,
                "  {} chain: {} entries, head #{} {}",
                c.chain, c.entries, c.head_seq, c.head_hash
            );
        }
    });
    Ok(report)
}

/// `clockface export`: writes the records in range to `out`; returns how many.
pub fn export(
    cfg: &Config,
    since: Option<&str>,
    until: Option<&str>,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<u64> {
    let since_ms = since.map(|s| parse_time("--since", s)).transpose()?;
    let until_ms = until.map(|s| parse_time("--until", s)).transpose()?;
    if let (Some(a), Some(b)) = (since_ms, until_ms)
        && a >= b
    {
        return Err(Error::invalid("--until", "must be later than --since"));
    }
    let zone = crate::base::zone::SiteZone::from_config(&cfg.site.time_zone)?;
    let store = open(cfg, true)?;
    let pb = progress_bar(store.count_range(since_ms, until_ms)?, "exporting");
    let n = store.export(since_ms, until_ms, format, &zone, out, &|n| {
        if let Some(pb) = &pb {
            pb.set_position(n)
        }
    })?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    tracing::info!(records = n, "export written");
    Ok(n)
}

/// `clockface purge --dry-run|--now`.
pub fn purge(
    cfg: &Config,
    dry_run: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<crate::store::retention::PurgeReport> {
    let mut store = open(cfg, false)?;
    let r = store.purge(cfg.retention.policy(), dry_run)?;
    let pseudonymised = if cfg.retention.pseudonymise_departed && !dry_run {
        store.pseudonymise_departed()?
    } else {
        0
    };
    emit(out, json, &r, |out| {
        let verb = if dry_run { "would purge" } else { "purged" };
        let _ = writeln!(
            out,
            "{verb} {} check-in(s) acknowledged more than {} days ago and {} failed attempt(s) older than {} days; chain now starts after #{}",
            r.checkins,
            cfg.retention.checkin_days,
            r.failed_attempts,
            cfg.retention.failed_attempt_days,
            r.anchor_seq
        );
        if pseudonymised > 0 {
            let _ = writeln!(
                out,
                "pseudonymised {pseudonymised} acknowledged check-in(s) of people no longer on the roster"
            );
        }
    });
    Ok(r)
}

/// `clockface export-person EMPLOYEE_ID`: the subject access export as pretty JSON.
pub fn export_person(cfg: &Config, employee_id: &str) -> Result<String> {
    let mut store = open(cfg, false)?;
    let export = store.export_person("cli", employee_id)?;
    Ok(serde_json::to_string_pretty(&export).expect("serialisable") + "\n")
}
