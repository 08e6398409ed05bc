//! Pairing this kiosk with a backend: the proof of the device key, the token kept in the data
//! dir (mode 0600), and the history queued again for a backend that starts with nothing.

use std::path::Path;
use std::time::Duration;

use super::client::{HubClient, SyncError};
use crate::base::config::Config;
use crate::base::protocol::{PairRequest, PairResponse};
use crate::store::Store;
use crate::store::sync::{OutboxChain, TOKEN_FILE};

/// Reads the backend token from the data dir, if paired.
pub fn read_token(data_dir: &Path) -> crate::base::error::Result<Option<String>> {
    let p = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&p) {
        Ok(t) => Ok(Some(t.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::base::error::Error::KeyFile {
            path: p,
            reason: e.to_string(),
        }),
    }
}

fn write_token(data_dir: &Path, token: &str) -> crate::base::error::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let p = data_dir.join(TOKEN_FILE);
    let tmp = data_dir.join(format!("{TOKEN_FILE}.tmp"));
    let err = |e: std::io::Error| crate::base::error::Error::KeyFile {
        path: p.clone(),
        reason: e.to_string(),
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(token.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, &p).map_err(err)?;
    Ok(())
}

/// A client built from the config, for `url` (the config's when `None`).
pub fn client_for(config: &Config, url: Option<&str>) -> crate::base::error::Result<HubClient> {
    let s = &config.sync;
    let ca = (!s.ca_file.as_os_str().is_empty()).then_some(s.ca_file.as_path());
    HubClient::new(
        url.unwrap_or(&s.url),
        ca,
        Duration::from_secs(s.timeout_seconds as u64),
        Duration::from_secs(s.backoff_max_seconds as u64),
    )
}

/// Pairs this kiosk with the backend at `url` using a one-time `code`; stores the token
/// (0600) and the URL, and audits it.
pub async fn pair(
    store: &mut Store,
    config: &Config,
    url: &str,
    code: &str,
) -> Result<PairResponse, SyncError> {
    let client = client_for(config, Some(url))?;
    let id = store.identity().clone();
    let code = code.trim().to_owned();
    let proof = store.pairing_proof(&code)?;
    let resp = client
        .pair(&PairRequest {
            code,
            device_id: id.device_id,
            public_key: hex::encode(id.public_key.as_bytes()),
            name: config.device.name.clone(),
            proof: Some(proof),
            data_region: config.privacy.data_region.clone(),
        })
        .await?;
    write_token(store.data_dir(), &resp.token)?;
    store.set_sync_url(url)?;
    // A backend starts with nothing from this kiosk: whatever an earlier backend acknowledged
    // goes to this one too (what retention purged or pseudonymised cannot).
    store.forget_backend_heads()?;
    let back = store.resend_after(OutboxChain::Checkins, 0, "paired")?
        + store.resend_after(OutboxChain::Audit, 0, "paired")?;
    if back > 0 {
        tracing::info!(entries = back, "history queued again for the new backend");
    }
    let mut a = crate::store::audit::NewAudit::new("system", "device_paired", "sync");
    a.detail = serde_json::json!({ "site": resp.site }).to_string();
    store.audit(&a)?;
    let skew = resp.hub_time_ms - store.clock().wall_ms();
    store.record_clock_skew(skew)?;
    tracing::info!(device = %resp.device_id, "paired with the backend");
    Ok(resp)
}
