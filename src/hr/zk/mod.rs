//! The ZKTeco device side: HR tools that pull punches from door terminals over TCP 4370
//! (pyzk and the tools built on it, JavaScript ZK clients) read this kiosk as one.
//!
//! - [`wire`]: framing, checksum, comm key, packed time, user and attendance records;
//! - `session`: one client's commands, answered from the store.
//!
//! The server runs on its own thread and runtime with its own store connection, so a check-in
//! never waits on a ZK client. It binds the configured address only, serves at most
//! `max_connections` sessions at once (more are closed at accept), ends a session at its first
//! malformed frame or after `idle_seconds` of silence, slows repeated comm-key failures from
//! one address, refuses every write, and audits each session (peer, commands, records read).

mod session;
pub mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};

use crate::base::clock::Clock;
use crate::base::config::ZkConfig;
use crate::base::error::{Error, Result};
use crate::base::zone::SiteZone;
use crate::store::{Store, StoreOptions};

/// What a ZK client asked of the kiosk itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// "Disable device": pause check-ins for at most this long (the kiosk re-enables itself).
    Disable {
        /// How long the pause may last.
        seconds: u32,
    },
    /// "Enable device": check-ins go on.
    Enable,
}

/// The terminal identity the server reports.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `~SerialNumber`.
    pub serial: String,
    /// `~DeviceName`.
    pub name: String,
    /// The kiosk's MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
}

/// The serial number a kiosk reports when the config names none: "CF" and the first 12 hex
/// digits of its device id, stable for the life of the store.
pub fn default_serial(device_id: uuid::Uuid) -> String {
    format!("CF{}", &device_id.simple().to_string()[..12]).to_uppercase()
}

/// The first non-loopback interface's MAC address, or zeros.
pub fn mac_address() -> String {
    let mut names: Vec<_> = std::fs::read_dir("/sys/class/net")
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter(|n| n.to_str() != Some("lo"))
        .filter_map(|n| {
            std::fs::read_to_string(
                std::path::Path::new("/sys/class/net")
                    .join(n)
                    .join("address"),
            )
            .ok()
        })
        .map(|s| s.trim().to_string())
        .find(|s| s.len() == 17 && s != "00:00:00:00:00:00")
        .unwrap_or_else(|| "00:00:00:00:00:00".into())
}

/// What every session shares.
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub cfg: ZkConfig,
    pub zone: SiteZone,
    pub id: Identity,
    pub clock: Arc<dyn Clock>,
    pub control: Option<mpsc::UnboundedSender<Control>>,
    /// Comm-key failures by client address: count and when the last one was.
    pub failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Shared {
    /// Runs `f` on the store off the async workers.
    pub async fn with_store<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut s = me.store.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut s)
        })
        .await
        .map_err(|e| Error::invalid("zk store task", e.to_string()))?
    }
}

/// A running ZK server.
pub struct ZkServer {
    /// The address it is bound to (the configured one; the port is known when 0 was asked).
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ZkServer {
    /// Binds `cfg.listen` and serves the store at `opts` on a thread of its own. Binding
    /// errors (address in use, not an address of this machine) are returned here.
    pub fn spawn(
        opts: &StoreOptions,
        cfg: ZkConfig,
        zone: SiteZone,
        clock: Arc<dyn Clock>,
        control: Option<mpsc::UnboundedSender<Control>>,
    ) -> Result<ZkServer> {
        let addr: SocketAddr = cfg
            .listen
            .parse()
            .map_err(|_| Error::invalid("zk.listen", format!("{:?} is not IP:PORT", cfg.listen)))?;
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| Error::io(format!("zk: listening on {addr}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("zk listener", e))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::io("zk listener", e))?;
        let store = Store::open(opts, clock.clone())?;
        let serial = if cfg.serial.is_empty() {
            default_serial(store.identity().device_id)
        } else {
            cfg.serial.clone()
        };
        let shared = Arc::new(Shared {
            id: Identity {
                serial,
                name: cfg.device_name.clone(),
                mac: mac_address(),
            },
            store: Mutex::new(store),
            cfg,
            zone,
            clock,
            control,
            failures: Mutex::new(HashMap::new()),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("zk".into())
            .spawn(move || {
                super::background_priority();
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .max_blocking_threads(4)
                    .enable_all()
                    .build()
                    .expect("zk runtime");
                rt.block_on(serve(listener, shared, stop_rx));
            })
            .map_err(|e| Error::io("zk thread", e))?;
        tracing::info!(%bound, "ZK device side listening");
        Ok(ZkServer {
            addr: bound,
            stop: stop_tx,
            thread: Some(thread),
        })
    }

    /// Stops accepting, ends the sessions and waits for the thread.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "zk listener");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(shared.cfg.max_connections as usize));
    let mut refused: u64 = 0;
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        let (sock, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "zk accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        // Reap finished sessions so the set does not grow.
        while sessions.try_join_next().is_some() {}
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%peer, refused, cap = shared.cfg.max_connections, "zk connection cap reached; closing new connections");
            }
            drop(sock);
            continue;
        };
        let _ = sock.set_nodelay(true);
        let sh = shared.clone();
        let stop = stop.clone();
        sessions.spawn(async move {
            session::run(sock, peer, sh, stop).await;
            drop(permit);
        });
    }
    // Sessions see the stop, end their reads and write their audit entries before the thread
    // goes.
    while sessions.join_next().await.is_some() {}
}
