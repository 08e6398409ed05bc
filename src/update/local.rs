//! What the update client reads of the device it runs on and of the kiosk beside it: the
//! token file, RAUC's compatible string, the board's model, the running version, its own
//! memory, and the kiosk's health endpoint and notice file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ddi::Auth;
use crate::base::config::UpdateConfig;
use crate::base::error::{Error, Result};

/// The file whose presence makes the kiosk show "update under way" and take no check-in.
pub fn notice_path(cfg: &UpdateConfig) -> PathBuf {
    PathBuf::from(&cfg.notice_file)
}

pub(super) fn write_notice(path: &Path) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, "update\n")
}

/// The token from the configured file, refusing one that others may read.
pub(super) fn read_auth(cfg: &UpdateConfig) -> Result<Auth> {
    let (key, file, wrap): (&str, &str, fn(String) -> Auth) = if !cfg.token_file.is_empty() {
        ("update.token_file", &cfg.token_file, Auth::Target)
    } else if !cfg.gateway_token_file.is_empty() {
        (
            "update.gateway_token_file",
            &cfg.gateway_token_file,
            Auth::Gateway,
        )
    } else {
        return Ok(Auth::None);
    };
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file)
        .map_err(|e| Error::invalid(key, format!("cannot read {file}: {e}")))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::invalid(
            key,
            format!(
                "{file} has mode {:o}; a token file must be 0600 (chmod 600 {file})",
                meta.permissions().mode() & 0o777
            ),
        ));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::invalid(key, format!("cannot read {file}: {e}")))?;
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(Error::invalid(
            key,
            format!("{file} must hold one token on one line"),
        ));
    }
    Ok(wrap(token.to_string()))
}

/// `compatible=` of RAUC's system.conf.
pub(super) fn rauc_compatible(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid(
            "update.compatible",
            format!(
                "is empty and {} cannot be read ({e}); set it",
                path.display()
            ),
        )
    })?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("compatible="))
        .map(|s| s.trim().to_string())
        .ok_or_else(|| {
            Error::invalid(
                "update.compatible",
                format!("is empty and {} names no compatible", path.display()),
            )
        })
}

/// The board's model from the device tree ("Raspberry Pi 4 Model B Rev 1.5").
pub(super) fn hardware_model() -> String {
    std::fs::read_to_string("/proc/device-tree/model")
        .map(|s| s.trim_end_matches('\0').trim().to_string())
        .unwrap_or_else(|_| std::env::consts::ARCH.to_string())
}

/// The version of the running root file system: what the image and its bundle were built as
/// (`VERSION=` in `/etc/clockface-release`), else this binary's.
pub fn running_version() -> String {
    std::fs::read_to_string("/etc/clockface-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VERSION="))
                .map(|v| v.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string())
}

/// Peak resident memory of this process, MiB (VmHWM), for the update log and the note.
pub fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

/// `GET /health` of the kiosk, as JSON; None when it does not answer.
pub(super) async fn kiosk_health(listen: &str) -> Option<serde_json::Value> {
    if listen.is_empty() {
        return None;
    }
    let url = format!("http://{listen}/health");
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(crate::sync::client::tls_config(None).ok()?)
        .timeout(Duration::from_secs(3))
        .no_proxy()
        .build()
        .ok()?;
    let resp = client.get(&url).send().await.ok()?;
    let text = resp.text().await.ok()?;
    serde_json::from_str(&text).ok()
}

/// (busy, updating) of the kiosk; None when it does not answer (nothing can be under way).
pub(super) async fn kiosk_activity(listen: &str) -> Option<(bool, bool)> {
    let h = kiosk_health(listen).await?;
    Some((
        h["busy"].as_bool().unwrap_or(false),
        h["updating"].as_bool().unwrap_or(false),
    ))
}

/// The device id, name and site the kiosk reports, when it answers.
pub(super) async fn kiosk_attributes(listen: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(h) = kiosk_health(listen).await {
        for k in ["device_id", "device_name", "site"] {
            if let Some(v) = h[k].as_str().filter(|v| !v.is_empty()) {
                out.insert(k.to_string(), v.to_string());
            }
        }
    }
    out
}
