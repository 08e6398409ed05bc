//! The kiosk's health endpoint: `GET /health` on `[health] listen` (loopback by default).
//!
//! For fleet monitoring, the appliance's boot check (`clockface health --wait`, which decides
//! whether an update is kept) and the QEMU boot test. It reports whether the kiosk loop is
//! turning, whether face check-in and the camera work, the store's head and size, the sync
//! queue and the booted A/B slot — never a name, badge, PIN or image. It owns a read-only view
//! of the store and must not write anything.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::base::error::{Error, Result};
use crate::camera::CameraStatus;
use crate::store::Store;
use crate::vision::FaceAvailability;

/// The loop counts as stuck when it has not ticked for this long (it ticks every 100 ms).
const STUCK_AFTER: Duration = Duration::from_secs(10);

/// What `GET /health` answers (HTTP 200 when `ok`, 503 otherwise).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Health {
    /// The kiosk loop is turning and the store answers: the appliance is serving check-ins
    /// (badge + PIN at least).
    pub ok: bool,
    /// Everything is as it should be, face check-in included.
    pub face_ok: bool,
    /// What is wrong, in plain words (empty when all is well).
    pub problems: Vec<String>,
    /// Clockface version.
    pub version: String,
    /// This kiosk's device id.
    pub device_id: String,
    /// Device name and site from the config (what provisioning set).
    pub device_name: String,
    /// Site.
    pub site: String,
    /// Seconds since the kiosk started.
    pub uptime_s: u64,
    /// Milliseconds since the kiosk loop last turned.
    pub loop_ms_ago: u64,
    /// "live", "starting" or "lost".
    pub camera: String,
    /// Sequence number of the newest record.
    pub head_seq: u64,
    /// Database plus WAL, bytes.
    pub db_bytes: u64,
    /// Free bytes on the data dir's file system.
    pub free_bytes: u64,
    /// Whether the kiosk is paired with a backend.
    pub paired: bool,
    /// Check-ins waiting for the backend.
    pub queued_checkins: u64,
    /// Last sync error ("" when the last round succeeded or none ran).
    pub sync_error: String,
    /// Booted A/B slot (`rauc.slot=` on the kernel command line), "" when not an A/B system.
    pub slot: String,
    /// A check-in or an admin session is under way: the update client waits for it before
    /// it reboots.
    #[serde(default)]
    pub busy: bool,
    /// The kiosk shows the "update under way" screen and takes no check-in.
    #[serde(default)]
    pub updating: bool,
}

/// The camera's and the face models' state in plain words: for `/health` and the heartbeats.
pub fn kiosk_status(
    face: &FaceAvailability,
    camera: &CameraStatus,
) -> crate::base::protocol::KioskStatus {
    let mut problems = Vec::new();
    let mut face_ok = true;
    if let FaceAvailability::Unavailable { reason } = face {
        face_ok = false;
        problems.push(format!("face check-in unavailable: {reason}"));
    }
    let camera = match camera {
        CameraStatus::Live => "live",
        CameraStatus::Starting => "starting",
        CameraStatus::Lost { reason } => {
            face_ok = false;
            problems.push(format!("camera lost: {reason}"));
            "lost"
        }
    };
    crate::base::protocol::KioskStatus {
        camera: camera.into(),
        face_ok,
        problems,
    }
}

/// What the heartbeats say of the camera and the face models (the same words as `/health`).
pub fn status_probe(
    camera: watch::Receiver<CameraStatus>,
    face: FaceAvailability,
) -> crate::sync::StatusProbe {
    Arc::new(move || kiosk_status(&face, &camera.borrow()))
}

/// What the kiosk loop shares with the endpoint.
pub struct Shared {
    started: Instant,
    /// Milliseconds after `started` at which the loop last turned.
    last_tick_ms: AtomicU64,
    face: FaceAvailability,
    camera: watch::Receiver<CameraStatus>,
    store: std::sync::Mutex<Store>,
    device_id: String,
    device: std::sync::Mutex<crate::base::config::DeviceConfig>,
    slot: String,
    busy: AtomicBool,
    updating: AtomicBool,
}

impl Shared {
    /// State for the endpoint; `store` is a second (read-only) handle on the kiosk's store.
    pub fn new(
        device: crate::base::config::DeviceConfig,
        face: FaceAvailability,
        camera: watch::Receiver<CameraStatus>,
        store: Store,
    ) -> Shared {
        let device_id = store.identity().device_id.to_string();
        Shared {
            started: Instant::now(),
            last_tick_ms: AtomicU64::new(0),
            face,
            camera,
            store: std::sync::Mutex::new(store),
            device_id,
            device: std::sync::Mutex::new(device),
            slot: booted_slot(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default()),
            busy: AtomicBool::new(false),
            updating: AtomicBool::new(false),
        }
    }

    /// The device name and site changed (an admin changed them).
    pub fn set_device(&self, device: crate::base::config::DeviceConfig) {
        *self.device.lock().unwrap_or_else(|p| p.into_inner()) = device;
    }

    /// What the kiosk is doing, set by the loop after each step: a check-in or admin session
    /// (`busy`), the update screen (`updating`).
    pub fn set_activity(&self, busy: bool, updating: bool) {
        self.busy.store(busy, Ordering::Relaxed);
        self.updating.store(updating, Ordering::Relaxed);
    }

    /// Called by the kiosk loop each time it turns.
    pub fn tick(&self) {
        self.last_tick_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// The current health.
    pub fn report(&self) -> Health {
        let mut problems = Vec::new();
        let uptime = self.started.elapsed();
        let loop_ms_ago =
            (uptime.as_millis() as u64).saturating_sub(self.last_tick_ms.load(Ordering::Relaxed));
        let mut ok = true;
        if loop_ms_ago > STUCK_AFTER.as_millis() as u64 {
            ok = false;
            problems.push(format!(
                "the kiosk loop has not turned for {loop_ms_ago} ms"
            ));
        }
        let status = kiosk_status(&self.face, &self.camera.borrow());
        let face_ok = status.face_ok;
        problems.extend(status.problems);
        let camera = status.camera;
        // One lock, released before the store's: a guard held across the struct literal would
        // be taken twice.
        let device = self
            .device
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut h = Health {
            ok,
            face_ok: false,
            problems: Vec::new(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_id: self.device_id.clone(),
            device_name: device.name,
            site: device.site,
            uptime_s: uptime.as_secs(),
            loop_ms_ago,
            camera,
            head_seq: 0,
            db_bytes: 0,
            free_bytes: 0,
            paired: false,
            queued_checkins: 0,
            sync_error: String::new(),
            slot: self.slot.clone(),
            busy: self.busy.load(Ordering::Relaxed),
            updating: self.updating.load(Ordering::Relaxed),
        };
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        h.free_bytes = crate::sync::free_bytes(store.data_dir());
        match store.head_and_size() {
            Ok((head, bytes)) => {
                h.head_seq = head;
                h.db_bytes = bytes;
            }
            Err(e) => {
                h.ok = false;
                problems.push(format!("store: {e}"));
            }
        }
        match store.sync_status() {
            Ok(s) => {
                h.paired = s.paired;
                h.queued_checkins = s.queued_checkins;
                h.sync_error = s.last_error;
            }
            Err(e) => {
                h.ok = false;
                problems.push(format!("sync state: {e}"));
            }
        }
        h.face_ok = h.ok && face_ok;
        h.problems = problems;
        h
    }
}

/// The slot named by `rauc.slot=` in a kernel command line.
pub fn booted_slot(cmdline: &str) -> String {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("rauc.slot="))
        .next_back()
        .unwrap_or_default()
        .to_string()
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let s = shared.clone();
    let h = match tokio::task::spawn_blocking(move || s.report()).await {
        Ok(h) => h,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let code = if h.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_vec(&h).expect("serialisable");
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Binds `[health] listen`; the error names the setting and the address.
pub fn bind(listen: &str) -> Result<std::net::TcpListener> {
    let addr: SocketAddr = listen.parse().map_err(|_| {
        Error::invalid(
            "health.listen",
            format!("{listen:?} is not an address; allowed: IP:PORT such as \"127.0.0.1:8780\""),
        )
    })?;
    let l = std::net::TcpListener::bind(addr)
        .map_err(|e| Error::io(format!("health.listen {addr}"), e))?;
    l.set_nonblocking(true)
        .map_err(|e| Error::io(format!("health.listen {addr}"), e))?;
    Ok(l)
}

/// Serves `GET /health` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener.local_addr().ok();
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(|e| Error::io("health listener", e))?;
    let app = Router::new()
        .route("/health", get(health))
        .with_state(shared);
    tracing::info!(addr = ?addr, "health endpoint listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::io("health endpoint", e))
}

/// `GET http://ADDR/health` once; `Err` when nothing answers.
pub async fn fetch(listen: &str, timeout: Duration) -> Result<(u16, Health)> {
    let url = format!("http://{listen}/health");
    // Plain http on the kiosk's own address; reqwest still wants its TLS backend set up.
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(crate::sync::client::tls_config(None)?)
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| Error::invalid("health client", e.to_string()))?;
    let resp = http
        .get(&url)
        .send()
        .await
        .map_err(|e| Error::Unhealthy(format!("nothing answers at {url}: {e}")))?;
    let code = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|e| Error::Unhealthy(format!("nothing answers at {url}: {e}")))?;
    let h = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid(url.clone(), format!("not a health report: {e}")))?;
    Ok((code, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booted_slot_is_read_from_the_kernel_command_line() {
        assert_eq!(
            booted_slot("console=ttyAMA0 root=PARTUUID=c10cface-03 rauc.slot=B quiet"),
            "B"
        );
        assert_eq!(booted_slot("console=ttyAMA0 root=/dev/vda1"), "");
    }
}
