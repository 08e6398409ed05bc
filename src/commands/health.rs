//! `clockface health`: asks the running kiosk's health endpoint; the boot check of an update
//! waits on it.

use std::io::Write;
use std::time::Duration;

use super::context::{ConfigSource, emit};
use crate::base::error::{Error, Result};

/// `clockface health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// Endpoint address [default: health.listen from the config, else 127.0.0.1:8780].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Keep asking for up to this many seconds until the kiosk is healthy.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    wait: u64,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

impl HealthArgs {
    /// Exits 0 only when the kiosk is serving.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        let listen = match self.listen {
            Some(l) => l,
            None => {
                let cfg = src.load_or_default()?;
                if cfg.health.listen.is_empty() {
                    "127.0.0.1:8780".into()
                } else {
                    cfg.health.listen
                }
            }
        };
        if health(&listen, Duration::from_secs(self.wait), self.json, out)? {
            Ok(())
        } else {
            Err(Error::Unhealthy(format!(
                "the kiosk at {listen} is not serving"
            )))
        }
    }
}

/// `clockface health`: asks the running kiosk's `GET /health` and prints it. With `wait`, keeps
/// asking until the kiosk answers healthy or the time is up (the boot check of an update).
/// `Ok(true)` when healthy.
pub fn health(listen: &str, wait: Duration, json: bool, out: &mut dyn Write) -> Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    let deadline = std::time::Instant::now() + wait;
    let last = rt.block_on(async {
        loop {
            let r = crate::kiosk::health::fetch(listen, Duration::from_secs(5)).await;
            let healthy = matches!(&r, Ok((200, h)) if h.ok);
            if healthy || std::time::Instant::now() >= deadline {
                return r;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let (code, h) = last?;
    emit(out, json, &h, |out| {
        let _ = writeln!(
            out,
            "{} (HTTP {code}), clockface {}, up {} s, slot {}",
            if h.ok {
                if h.face_ok {
                    "healthy"
                } else {
                    "serving (badge + PIN only)"
                }
            } else {
                "NOT serving"
            },
            h.version,
            h.uptime_s,
            if h.slot.is_empty() { "-" } else { &h.slot }
        );
        let _ = writeln!(
            out,
            "camera {}, head #{}, {} bytes, {} queued{}",
            h.camera,
            h.head_seq,
            h.db_bytes,
            h.queued_checkins,
            if h.paired { "" } else { ", not paired" }
        );
        for p in &h.problems {
            let _ = writeln!(out, "  - {p}");
        }
    });
    Ok(code == 200 && h.ok)
}
