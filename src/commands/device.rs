//! The device and its backend: `device show` (identity, store figures, sync status), `pair`
//! and `sync` (one round now).

use std::io::Write;

use serde::Serialize;

use super::context::{ConfigSource, emit, open, small_runtime};
use crate::base::config::Config;
use crate::base::error::{Error, Result};
use crate::store::StoreStats;
use crate::store::export::rfc3339_ms;

/// `clockface device …`.
#[derive(Debug, clap::Subcommand)]
pub enum DeviceCmd {
    /// Device id, public key and store statistics.
    Show {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

impl DeviceCmd {
    /// Runs the device subcommand.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        match self {
            DeviceCmd::Show { json } => device_show(&src.load_logged()?, json, out).map(drop),
        }
    }
}

/// `clockface pair`.
#[derive(Debug, clap::Args)]
pub struct PairArgs {
    /// The pairing code.
    #[arg(long)]
    code: String,
    /// Backend URL [default: sync.url from the config].
    #[arg(long)]
    url: Option<String>,
}

impl PairArgs {
    /// Pairs this kiosk with the backend.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        pair(&src.load_logged()?, self.url.as_deref(), &self.code, out)
    }
}

/// `clockface sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

impl SyncArgs {
    /// One sync round now.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        sync_now(&src.load_logged()?, self.json, out).map(drop)
    }
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

/// Maps a sync failure to the CLI's error kinds: network trouble is "try again later".
fn sync_err(e: crate::sync::SyncError) -> Error {
    use crate::sync::SyncError as S;
    match e {
        S::Store(e) => e,
        S::Unreachable(m) => Error::Network(format!("backend unreachable: {m}")),
        S::Status { status, .. } if status >= 500 || status == 429 => Error::Network(e.to_string()),
        S::Protocol(_) | S::Tls(_) => Error::Backend(e.to_string()),
        other => Error::invalid("sync", other.to_string()),
    }
}
