//! Network helpers: the real hub on loopback, a fault-injecting HTTP proxy in front of it, and
//! a throwaway CA for the TLS tests.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clockface::hub::LocalHub;
use clockface::hub::db::{DbSpec, HubConfig, HubDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The hub serving on 127.0.0.1 in a thread of its own until dropped, with its own database
/// (SQLite, or PostgreSQL when the run asks for it: see `common::pg`).
pub struct TestHub {
    /// Base URL (http, or https://localhost).
    pub url: String,
    /// Bound address.
    pub addr: SocketAddr,
    /// Its database file (on SQLite).
    pub db: PathBuf,
    /// Its database, on either engine.
    pub spec: DbSpec,
    // Declared before the temp dir so the server stops before its files go.
    _hub: LocalHub,
    _dir: tempfile::TempDir,
}

impl TestHub {
    /// A plain-http hub (loopback is the one place the kiosk accepts http).
    pub fn start() -> TestHub {
        Self::start_with(None, super::pg::enabled())
    }

    /// A plain-http hub on SQLite whatever the run's engine (for tests that read its file).
    pub fn start_sqlite() -> TestHub {
        Self::start_with(None, false)
    }

    /// A hub serving TLS with this PEM certificate and key.
    pub fn start_tls(cert: &Path, key: &Path) -> TestHub {
        Self::start_with(Some((cert, key)), super::pg::enabled())
    }

    /// A plain-http hub under a hub config of the test's.
    pub fn start_configured(cfg: &HubConfig) -> TestHub {
        Self::start_full(None, super::pg::enabled(), cfg)
    }

    fn start_with(tls: Option<(&Path, &Path)>, postgres: bool) -> TestHub {
        Self::start_full(tls, postgres, &HubConfig::default())
    }

    fn start_full(tls: Option<(&Path, &Path)>, postgres: bool, cfg: &HubConfig) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hub.db");
        let spec = if postgres {
            super::pg::hub_spec(dir.path())
        } else {
            DbSpec::from(db.as_path())
        };
        let hub = LocalHub::start_spec(&spec, tls, cfg).unwrap();
        TestHub {
            url: hub.url.clone(),
            addr: hub.addr,
            db,
            spec,
            _hub: hub,
            _dir: dir,
        }
    }

    /// Stops the hub and starts it again on the same database (on a new port).
    pub fn restart(&mut self, cfg: &HubConfig) {
        let old = std::mem::replace(
            &mut self._hub,
            LocalHub::start_spec(&self.spec, None, cfg).unwrap(),
        );
        drop(old);
        self.url = self._hub.url.clone();
        self.addr = self._hub.addr;
    }

    /// A second connection to the hub's database, for setup and assertions.
    pub fn db(&self) -> HubDb {
        HubDb::open_spec(&self.spec, &Default::default()).unwrap()
    }

    /// A fresh one-time pairing code for site "HQ".
    pub fn pairing_code(&self) -> String {
        self.db()
            .create_pairing_code("HQ", 3_600_000, None, now_ms())
            .unwrap()
    }
}

/// Runs a future to completion on a runtime of its own (the sync calls are async).
pub fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What the proxy does with one request.
#[derive(Clone)]
pub enum Fault {
    /// Forward unchanged.
    Pass,
    /// Close the connection at once, without reading or answering (a backend that is down).
    Refuse,
    /// Read half of the request body, then reset the connection: the backend never sees it.
    ResetMidRequest,
    /// Forward; the backend commits; then reset instead of answering (response lost).
    LoseResponse,
    /// Forward, then sit on the answer for this long before sending it (client timeout).
    DelayResponse(Duration),
    /// Answer with this status and an optional Retry-After, without forwarding.
    Status(u16, Option<&'static str>),
    /// Answer 200 with a body that is not JSON, without forwarding.
    Malformed,
    /// Answer 200 announcing a body of this many bytes, without forwarding.
    Oversized(usize),
    /// Forward and rewrite the JSON answer.
    Rewrite(fn(serde_json::Value) -> serde_json::Value),
}

/// Scripted faults, each for the next request whose path starts with its prefix.
type Script = Arc<Mutex<VecDeque<(&'static str, Fault)>>>;

/// A fault-injecting HTTP/1.1 proxy on 127.0.0.1. A request takes the first scripted fault if
/// its path starts with that fault's prefix, and passes through otherwise; while `down` is
/// set, every connection is refused.
pub struct FaultProxy {
    /// Base URL.
    pub url: String,
    script: Script,
    down: Arc<AtomicBool>,
    /// Requests seen, as "METHOD PATH".
    pub seen: Arc<Mutex<Vec<String>>>,
    forwarded: Arc<AtomicUsize>,
    _thread: std::thread::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy in front of `upstream`.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let down = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (s, d, se, f) = (
            script.clone(),
            down.clone(),
            seen.clone(),
            forwarded.clone(),
        );
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(l.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((sock, _)) = l.accept().await else {
                        continue;
                    };
                    let (s, d, se, f) = (s.clone(), d.clone(), se.clone(), f.clone());
                    tokio::spawn(async move {
                        let _ = handle(sock, upstream, s, d, se, f).await;
                    });
                }
            });
        });
        let addr = addr_rx.recv().unwrap();
        FaultProxy {
            url: format!("http://127.0.0.1:{}", addr.port()),
            script,
            down,
            seen,
            forwarded,
            _thread: thread,
        }
    }

    /// Queues faults for the next requests, whatever their path, in order.
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.push_for("/", faults);
    }

    /// Queues faults for the next requests whose path starts with `prefix`, in order.
    pub fn push_for(&self, prefix: &'static str, faults: impl IntoIterator<Item = Fault>) {
        self.script
            .lock()
            .unwrap()
            .extend(faults.into_iter().map(|f| (prefix, f)));
    }

    /// Refuses every connection while true.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Requests forwarded to the hub so far.
    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }
}

struct Req {
    head: String,
    body: Vec<u8>,
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<(Req, usize)>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let rest = buf[end..].to_vec();
    Ok(Some((Req { head, body: rest }, len)))
}

/// Rewrites a head to close the connection after this exchange.
fn with_close(head: &str) -> String {
    let mut out = String::new();
    for l in head.split("\r\n").filter(|l| !l.is_empty()) {
        if l.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("connection: close\r\n\r\n");
    out
}

async fn reset(sock: TcpStream) {
    let _ = sock.set_zero_linger();
    drop(sock);
}

fn respond(status: u16, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

async fn handle(
    mut sock: TcpStream,
    upstream: SocketAddr,
    script: Script,
    down: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    forwarded: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    if down.load(Ordering::SeqCst) {
        reset(sock).await;
        return Ok(());
    }
    let Some((mut req, want)) = read_request(&mut sock).await? else {
        return Ok(());
    };
    let line = req
        .head
        .lines()
        .next()
        .unwrap_or("")
        .rsplit_once(' ')
        .map_or("", |x| x.0)
        .to_owned();
    let path = line.split(' ').nth(1).unwrap_or("").to_owned();
    let fault = {
        let mut s = script.lock().unwrap();
        match s.front() {
            Some((prefix, _)) if path.starts_with(prefix) => s.pop_front().map(|x| x.1),
            _ => None,
        }
    };
    seen.lock().unwrap().push(line);
    if let Some(Fault::ResetMidRequest) = fault {
        while req.body.len() < want / 2 {
            let mut tmp = vec![0u8; 4096];
            let n = sock.read(&mut tmp).await?;
            if n == 0 {
                break;
            }
            req.body.extend_from_slice(&tmp[..n]);
        }
        reset(sock).await;
        return Ok(());
    }
    while req.body.len() < want {
        let mut tmp = vec![0u8; 65536];
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        req.body.extend_from_slice(&tmp[..n]);
    }
    match fault {
        Some(Fault::Refuse) => {
            reset(sock).await;
            return Ok(());
        }
        Some(Fault::Status(code, retry)) => {
            let extra = retry.map_or(String::new(), |r| format!("retry-after: {r}\r\n"));
            let body = format!("{{\"error\":\"unavailable\",\"message\":\"injected {code}\"}}");
            sock.write_all(&respond(code, &extra, body.as_bytes()))
                .await?;
            return Ok(());
        }
        Some(Fault::Malformed) => {
            sock.write_all(&respond(200, "", b"{\"acks\": [ {\"seq\": 1, \"stat"))
                .await?;
            return Ok(());
        }
        Some(Fault::Oversized(n)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {n}\r\nconnection: close\r\n\r\n["
            );
            sock.write_all(head.as_bytes()).await?;
            let chunk = vec![b' '; 65536];
            for _ in 0..(n / chunk.len()).min(64) {
                if sock.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            return Ok(());
        }
        _ => {}
    }
    // Forward.
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(with_close(&req.head).as_bytes()).await?;
    up.write_all(&req.body).await?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).await?;
    forwarded.fetch_add(1, Ordering::SeqCst);
    match fault {
        Some(Fault::LoseResponse) => {
            reset(sock).await;
            Ok(())
        }
        Some(Fault::DelayResponse(d)) => {
            tokio::time::sleep(d).await;
            let _ = sock.write_all(&resp).await;
            Ok(())
        }
        Some(Fault::Rewrite(f)) => {
            let end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let status: u16 = String::from_utf8_lossy(&resp[9..12]).parse().unwrap();
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&resp[end..]) else {
                sock.write_all(&resp).await?;
                return Ok(());
            };
            let body = serde_json::to_vec(&f(v)).unwrap();
            sock.write_all(&respond(status, "", &body)).await?;
            Ok(())
        }
        _ => {
            sock.write_all(&resp).await?;
            Ok(())
        }
    }
}

/// A throwaway CA and a localhost certificate it signed, as PEM files in `dir`.
pub struct TestCa {
    /// CA certificate (what a kiosk pins).
    pub ca: PathBuf,
    /// Server certificate for localhost and 127.0.0.1.
    pub cert: PathBuf,
    /// Server key.
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path, name: &str) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let out = TestCa {
            ca: dir.join(format!("{name}-ca.pem")),
            cert: dir.join(format!("{name}-cert.pem")),
            key: dir.join(format!("{name}-key.pem")),
        };
        std::fs::write(&out.ca, ca_cert.pem()).unwrap();
        std::fs::write(&out.cert, cert.pem()).unwrap();
        std::fs::write(&out.key, key.serialize_pem()).unwrap();
        out
    }
}
