//! The CLI subcommands' behaviour, callable from `main.rs` and from tests.
//!
//! Each function takes already-parsed arguments and a writer for its normal output; progress and
//! logs go to stderr. Loading the config follows one rule: an explicit `--config` must exist; the
//! default `/etc/clockface/clockface.toml` is used when present; without either, `--data-dir`
//! alone is enough (defaults for the rest), which lets an operator verify a copied store.

pub mod appliance;
pub mod kiosk;
pub mod vision;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::base::clock::{SystemClock, parse_time};
use crate::base::config::{self, Config};
use crate::base::error::{Error, Result};
use crate::store::chain::{self, ChainSummary};
use crate::store::export::{ExportFormat, rfc3339_ms};
use crate::store::{Store, StoreOptions, StoreStats};

/// Where the config comes from, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config PATH` (or `CLOCKFACE_CONFIG`).
    pub config: Option<PathBuf>,
    /// `--data-dir DIR`, overriding `store.data_dir`.
    pub data_dir: Option<PathBuf>,
}

impl ConfigSource {
    /// Loads the config according to the rule in the module docs.
    pub fn load(&self) -> Result<Config> {
        let mut cfg = match &self.config {
            Some(p) => Config::load(p)?,
            None => {
                let default = Path::new(config::DEFAULT_CONFIG_PATH);
                if default.exists() || self.data_dir.is_none() {
                    Config::load(default)?
                } else {
                    Config::default()
                }
            }
        };
        if let Some(d) = &self.data_dir {
            cfg.store.data_dir = std::path::absolute(d).map_err(|e| Error::io(d, e))?;
        }
        Ok(cfg)
    }
}

impl ConfigSource {
    /// Like [`ConfigSource::load`], but built-in defaults when no config file exists at all
    /// (commands that need no data dir, such as `vision`).
    pub fn load_or_default(&self) -> Result<Config> {
        if self.config.is_none() && !Path::new(config::DEFAULT_CONFIG_PATH).exists() {
            return Ok(Config::default());
        }
        self.load()
    }
}

/// Writes `value` as pretty JSON with `--json`, otherwise the text `text` writes.
pub(crate) fn emit<T: Serialize>(
    out: &mut dyn Write,
    json: bool,
    value: &T,
    text: impl FnOnce(&mut dyn Write),
) {
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(value).expect("serialisable")
        );
    } else {
        text(out);
    }
}

/// Sets up `tracing` on stderr: `RUST_LOG` if set, else the given level.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("clockface={level},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// `clockface config check [PATH]`: prints "ok" or every problem; Err when invalid.
pub fn config_check(path: &Path, out: &mut dyn Write) -> Result<()> {
    let cfg = Config::load(path)?;
    let _ = writeln!(out, "{}: ok", path.display());
    let _ = writeln!(
        out,
        "  device {:?}, data dir {}, policy v{}",
        cfg.device.name,
        cfg.store.data_dir.display(),
        cfg.policy.version
    );
    Ok(())
}

fn open(cfg: &Config, read_only: bool) -> Result<Store> {
    let mut opts = StoreOptions::from_config(cfg);
    opts.read_only = read_only;
    Store::open(&opts, Arc::new(SystemClock::new()))
}

pub(crate) fn progress_bar(total: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    Some(pb)
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
    let store = open(cfg, true)?;
    let pb = progress_bar(store.count_range(since_ms, until_ms)?, "exporting");
    let n = store.export(since_ms, until_ms, format, out, &|n| {
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

/// What `clockface device show` reports.
#[derive(Debug, Serialize)]
pub struct DeviceInfo {
    /// Device id.
    pub device_id: String,
    /// Configured name.
    pub name: String,
    /// Configured site.
    pub site: String,
    /// Hex Ed25519 public key.
    pub public_key: String,
    /// Data dir.
    pub data_dir: String,
    /// Store figures.
    pub store: StoreStats,
    /// Sync with the backend.
    pub sync: crate::store::sync::SyncStatus,
}

/// `clockface device show`.
pub fn device_show(cfg: &Config, json: bool, out: &mut dyn Write) -> Result<DeviceInfo> {
    let store = open(cfg, true)?;
    let id = store.identity();
    let info = DeviceInfo {
        device_id: id.device_id.to_string(),
        name: cfg.device.name.clone(),
        site: cfg.device.site.clone(),
        public_key: hex::encode(id.public_key.as_bytes()),
        data_dir: store.data_dir().display().to_string(),
        store: store.stats()?,
        sync: store.sync_status()?,
    };
    emit(out, json, &info, |out| {
        let s = &info.store;
        let t = |ms: Option<i64>| ms.map_or("-".into(), rfc3339_ms);
        let _ = writeln!(out, "device id    {}", info.device_id);
        let _ = writeln!(
            out,
            "name         {} ({})",
            info.name,
            if info.site.is_empty() {
                "no site"
            } else {
                &info.site
            }
        );
        let _ = writeln!(out, "public key   {}", info.public_key);
        let _ = writeln!(out, "data dir     {}", info.data_dir);
        let _ = writeln!(
            out,
            "schema       v{}, {} bytes on disk",
            s.schema_version, s.db_bytes
        );
        let _ = writeln!(
            out,
            "check-ins    {} accepted, {} failed attempts, {} not yet synced",
            s.checkins, s.failed_attempts, s.unsynced
        );
        let _ = writeln!(
            out,
            "chain head   #{} ({} .. {})",
            s.head_seq,
            t(s.first_ms),
            t(s.last_ms)
        );
        let _ = writeln!(
            out,
            "roster       {} employees, {} face templates",
            s.employees, s.templates
        );
        let _ = writeln!(out, "audit log    {} entries", s.audit_entries);
        write_sync_status(out, &info.sync);
    });
    Ok(info)
}

fn write_sync_status(out: &mut dyn Write, y: &crate::store::sync::SyncStatus) {
    let t = |ms: Option<i64>| ms.map_or("never".into(), rfc3339_ms);
    if !y.paired {
        let _ = writeln!(
            out,
            "sync         not paired ({} check-ins queued)",
            y.queued_checkins
        );
        return;
    }
    let _ = writeln!(out, "sync         paired with {}", y.url);
    let _ = writeln!(
        out,
        "  queued     {} check-ins, {} audit entries; {} refused by the backend",
        y.queued_checkins, y.queued_audit, y.rejected
    );
    let _ = writeln!(out, "  last ok    {}", t(y.last_success_ms));
    if !y.last_error.is_empty() {
        let _ = writeln!(
            out,
            "  last error {} ({})",
            y.last_error,
            t(y.last_error_ms)
        );
    }
    if let Some(s) = y.clock_skew_ms {
        let warn = if s.abs() > crate::sync::SKEW_WARN_MS {
            "  <- check this kiosk's time source"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  clock skew {:+.1} s (backend − kiosk){warn}",
            s as f64 / 1000.0
        );
    }
    if let Some(h) = y.backend_head_seq {
        let _ = writeln!(out, "  backend    holds the chain up to #{h}");
    }
    if let Some(v) = y.roster_version {
        let _ = writeln!(out, "  roster     version {v}");
    }
    if let Some(v) = y.policy_version {
        let _ = writeln!(out, "  policy     backend version {v}");
    }
}

/// `clockface pair --code CODE [--url URL]`: registers this kiosk with the backend.
pub fn pair(cfg: &Config, url: Option<&str>, code: &str, out: &mut dyn Write) -> Result<()> {
    let url = url.unwrap_or(&cfg.sync.url);
    if url.is_empty() {
        return Err(Error::invalid(
            "--url",
            "no backend URL: give --url or set sync.url in the config",
        ));
    }
    let mut store = open(cfg, false)?;
    let rt = small_runtime()?;
    let resp = rt
        .block_on(crate::sync::pair(&mut store, cfg, url, code))
        .map_err(sync_err)?;
    let _ = writeln!(
        out,
        "paired with {url} as {} (site {})",
        resp.device_id, resp.site
    );
    Ok(())
}

/// `clockface sync`: one sync round now, reporting what moved.
pub fn sync_now(cfg: &Config, json: bool, out: &mut dyn Write) -> Result<crate::sync::RoundReport> {
    let mut store = open(cfg, false)?;
    let Some(syncer) = crate::sync::Syncer::for_store(&store, cfg)? else {
        return Err(Error::invalid(
            "sync",
            "this kiosk is not paired: run `clockface pair --code CODE --url URL` first",
        ));
    };
    let rt = small_runtime()?;
    let r = rt.block_on(syncer.round(&mut store));
    let now = store.clock().wall_ms();
    store.record_sync_round(now, r.as_ref().err().map(|e| e.to_string()).as_deref())?;
    let rep = r.map_err(sync_err)?;
    emit(out, json, &rep, |out| {
        let _ = writeln!(
            out,
            "synced {} check-ins and {} audit entries ({} refused); roster {}, policy {}",
            rep.checkins,
            rep.audit,
            rep.refused,
            if rep.roster_applied {
                "updated"
            } else {
                "unchanged"
            },
            if rep.policy_updated {
                "updated"
            } else {
                "unchanged"
            }
        );
    });
    Ok(rep)
}

fn small_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::invalid("runtime", e.to_string()))
}

/// Maps a sync failure to the CLI's error kinds: network trouble is "try again later".
fn sync_err(e: crate::sync::SyncError) -> Error {
    use crate::sync::SyncError as S;
    match e {
        S::Store(e) => e,
        S::Unreachable(m) => Error::Network(format!("backend unreachable: {m}")),
        S::Status { status, .. } if status >= 500 || status == 429 => Error::Network(e.to_string()),
        other => Error::invalid("sync", other.to_string()),
    }
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
