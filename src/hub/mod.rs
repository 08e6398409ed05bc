//! `clockface-hub`: the reference backend of sync protocol v1 (`docs/openapi.yaml`).
//!
//! It pairs kiosks, verifies and stores their signed chains, serves the roster and policy with
//! ETags, takes heartbeats, and exports timesheets. An enterprise may implement the OpenAPI
//! in its own backend instead; this one is what the kiosk's tests and demo sync against. It
//! owns its own SQLite file ([`db`]) and never touches a kiosk's store.

pub mod cli;
pub mod db;
pub mod import;
pub(crate) mod server;
pub mod sql;
pub(crate) mod tls;
pub mod webhook;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::base::clock::Clock;
use crate::base::protocol::{
    ApiError, BiometricUpdate, Health, Heartbeat, MAX_REQUEST_BYTES, PairRequest, UploadRequest,
    etag,
};
use db::pairing::Device;
use db::{ApiFailure, Chain, HubDb};

/// Shared state of the running hub.
pub struct Hub {
    /// Database connections, each used by one request at a time: one for SQLite (its writers
    /// take turns anyway), several for PostgreSQL so that requests of different kiosks run
    /// side by side.
    db: Vec<Mutex<HubDb>>,
    next: std::sync::atomic::AtomicUsize,
    clock: Arc<dyn Clock>,
}

/// Connections a hub on PostgreSQL keeps open.
const PG_CONNECTIONS: usize = 4;

impl Hub {
    /// Opens the hub database.
    pub fn open(db_path: &Path, clock: Arc<dyn Clock>) -> crate::base::error::Result<Arc<Hub>> {
        Self::open_with(db_path, clock, &db::HubConfig::default())
    }

    /// Opens the hub database under the hub config `cfg`.
    pub fn open_with(
        db_path: &Path,
        clock: Arc<dyn Clock>,
        cfg: &db::HubConfig,
    ) -> crate::base::error::Result<Arc<Hub>> {
        Self::open_spec(&db_path.into(), clock, cfg)
    }

    /// Opens the database `spec` names (SQLite or PostgreSQL) under `cfg`.
    pub fn open_spec(
        spec: &db::DbSpec,
        clock: Arc<dyn Clock>,
        cfg: &db::HubConfig,
    ) -> crate::base::error::Result<Arc<Hub>> {
        let first = HubDb::open_spec(spec, cfg)?;
        let n = match first.engine() {
            sql::Engine::Sqlite => 1,
            sql::Engine::Postgres => PG_CONNECTIONS,
        };
        let mut db = vec![Mutex::new(first)];
        for _ in 1..n {
            db.push(Mutex::new(HubDb::open_spec(spec, cfg)?));
        }
        Ok(Arc::new(Hub {
            db,
            next: std::sync::atomic::AtomicUsize::new(0),
            clock,
        }))
    }

    /// Runs `f` on the database on a blocking thread.
    async fn with_db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut HubDb, i64) -> Result<T, ApiFailure> + Send + 'static,
    ) -> Result<T, ApiFailure> {
        let hub = self.clone();
        tokio::task::spawn_blocking(move || {
            let now = hub.clock.wall_ms();
            // A free connection if there is one, else wait for the next in turn.
            let mut db = hub
                .db
                .iter()
                .find_map(|m| m.try_lock().ok())
                .unwrap_or_else(|| {
                    let i = hub.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    hub.db[i % hub.db.len()]
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                });
            f(&mut db, now)
        })
        .await
        .map_err(|e| ApiFailure {
            status: 500,
            code: "internal",
            message: format!("request task failed: {e}"),
        })?
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        } else {
            tracing::debug!(status = self.status, code = self.code, message = %self.message, "request refused");
        }
        let mut r = json_response(
            status,
            &ApiError {
                error: self.code.into(),
                message: self.message,
            },
        );
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Kiosks back off this long before the next attempt.
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("15"));
        }
        r
    }
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).expect("protocol types serialise");
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// The router with every endpoint of protocol v1.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/pair", post(pair))
        .route("/v1/checkins", post(upload_checkins))
        .route("/v1/audit", post(upload_audit))
        .route("/v1/roster", get(roster))
        .route("/v1/policy", get(policy))
        .route("/v1/heartbeat", post(heartbeat))
        .route("/v1/biometrics", post(biometrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(hub)
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve<L>(
    listener: L,
    hub: Arc<Hub>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    // Each PostgreSQL connection (the requests' and the webhook thread's) holds a socket and
    // its driver's runtime: room for them stays free of kiosk connections.
    let reserved = match hub.db.first().map(|d| d.lock().map(|d| d.engine())) {
        Some(Ok(sql::Engine::Postgres)) => (hub.db.len() + 1) * 8,
        _ => 0,
    };
    server::serve(
        listener,
        router(hub),
        server::Limits::for_this_process(reserved),
        shutdown,
    )
    .await
}

/// A hub serving on 127.0.0.1 from a thread of its own, for the demo and tests (plain http:
/// loopback is the one place a kiosk accepts it; or TLS with a given certificate). Stops when
/// dropped.
pub struct LocalHub {
    /// Base URL (`https://localhost:PORT` with TLS, so the certificate's name matches).
    pub url: String,
    /// The bound address.
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _webhooks: webhook::Deliverer,
}

impl LocalHub {
    /// Opens (creating) the database at `db` and serves plain http on a free port.
    pub fn start(db: &Path) -> crate::base::error::Result<LocalHub> {
        Self::start_with(db, None)
    }

    /// Like [`LocalHub::start`], serving TLS with a PEM certificate chain and key when given.
    pub fn start_with(
        db: &Path,
        tls_files: Option<(&Path, &Path)>,
    ) -> crate::base::error::Result<LocalHub> {
        Self::start_configured(db, tls_files, &db::HubConfig::default())
    }

    /// Like [`LocalHub::start_with`], under a hub config.
    pub fn start_configured(
        db: &Path,
        tls_files: Option<(&Path, &Path)>,
        cfg: &db::HubConfig,
    ) -> crate::base::error::Result<LocalHub> {
        Self::start_spec(&db.into(), tls_files, cfg)
    }

    /// Like [`LocalHub::start_configured`], on any database (a PostgreSQL one for the tests
    /// that run replicas).
    pub fn start_spec(
        db: &db::DbSpec,
        tls_files: Option<(&Path, &Path)>,
        cfg: &db::HubConfig,
    ) -> crate::base::error::Result<LocalHub> {
        let hub = Hub::open_spec(db, Arc::new(crate::base::clock::SystemClock::new()), cfg)?;
        let tls_cfg = tls_files
            .map(|(c, k)| tls::server_config(c, k))
            .transpose()?;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| crate::base::error::Error::io("127.0.0.1:0", e))?;
        let addr = std_listener
            .local_addr()
            .map_err(|e| crate::base::error::Error::io("127.0.0.1:0", e))?;
        let url = match tls_cfg {
            Some(_) => format!("https://localhost:{}", addr.port()),
            None => format!("http://{addr}"),
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hub".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("hub runtime");
                rt.block_on(async move {
                    let l = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                    let stop = async {
                        let _ = stop_rx.await;
                    };
                    let _ = match tls_cfg {
                        Some(cfg) => match tls::TlsListener::new(l, cfg) {
                            Ok(l) => serve(l, hub, stop).await,
                            Err(e) => Err(e),
                        },
                        None => serve(l, hub, stop).await,
                    };
                });
            })
            .map_err(|e| crate::base::error::Error::io("hub thread", e))?;
        Ok(LocalHub {
            url,
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
            _webhooks: webhook::Deliverer::spawn(db, cfg)?,
        })
    }
}

impl Drop for LocalHub {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn not_found() -> ApiFailure {
    ApiFailure {
        status: 404,
        code: "not_found",
        message: "no such endpoint in protocol v1".into(),
    }
}

async fn method_not_allowed() -> ApiFailure {
    ApiFailure {
        status: 405,
        code: "method_not_allowed",
        message: "this endpoint does not take that method".into(),
    }
}

async fn health() -> Response {
    json_response(
        StatusCode::OK,
        &Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    )
}

/// Reads a JSON body of at most [`MAX_REQUEST_BYTES`], naming what was wrong with it.
async fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, ApiFailure> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_json_media_type(ct) {
        return Err(ApiFailure {
            status: 415,
            code: "unsupported_media_type",
            message: "the body must be application/json".into(),
        });
    }
    let read = tokio::time::timeout(
        server::BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_REQUEST_BYTES),
    );
    let bytes: Bytes = read
        .await
        .map_err(|_| ApiFailure {
            status: 408,
            code: "body_timeout",
            message: format!(
                "the request body did not arrive within {} s",
                server::BODY_READ_TIMEOUT.as_secs()
            ),
        })?
        .map_err(|_| ApiFailure {
            status: 413,
            code: "body_too_large",
            message: format!("request body larger than {MAX_REQUEST_BYTES} bytes"),
        })?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        ApiFailure::bad_request(format!("invalid JSON body at {}: {}", e.path(), e.inner()))
    })
}

/// `application/json`, in any case, with or without parameters (`; charset=utf-8`); not
/// `application/jsonx` or `application/json-patch+json`.
fn is_json_media_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// The token of an `Authorization: Bearer …` header; the scheme is case-insensitive
/// (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The device a request's bearer token names.
async fn authenticate(hub: &Arc<Hub>, headers: &HeaderMap) -> Result<Device, ApiFailure> {
    let unauthorized = |m: &str| ApiFailure {
        status: 401,
        code: "unauthorized",
        message: m.into(),
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_owned)
        .ok_or_else(|| unauthorized("missing bearer token"))?;
    hub.with_db(move |db, now| {
        let d = db.device_by_token(&token)?;
        if let Some(d) = &d {
            db.touch(d, now)?;
        }
        Ok(d)
    })
    .await?
    .ok_or_else(|| unauthorized("unknown or revoked token"))
}

async fn pair(State(hub): State<Arc<Hub>>, req: Request) -> Result<Response, ApiFailure> {
    let (parts, body) = req.into_parts();
    let body: PairRequest = json_body(&parts.headers, body).await?;
    let resp = hub.with_db(move |db, now| db.pair(&body, now)).await?;
    tracing::info!(device = %resp.device_id, "device paired");
    Ok(json_response(StatusCode::OK, &resp))
}

async fn upload(hub: Arc<Hub>, req: Request, chain: Chain) -> Result<Response, ApiFailure> {
    let (parts, body) = req.into_parts();
    let device = authenticate(&hub, &parts.headers).await?;
    let body: UploadRequest = json_body(&parts.headers, body).await?;
    let n = body.entries.len();
    let resp = hub
        .with_db(move |db, now| db.ingest(&device, chain, &body.entries, now))
        .await?;
    tracing::debug!(
        chain = chain.as_str(),
        entries = n,
        head = resp.head.seq,
        "upload"
    );
    Ok(json_response(StatusCode::OK, &resp))
}

async fn upload_checkins(
    State(hub): State<Arc<Hub>>,
    req: Request,
) -> Result<Response, ApiFailure> {
    upload(hub, req, Chain::Checkins).await
}

async fn upload_audit(State(hub): State<Arc<Hub>>, req: Request) -> Result<Response, ApiFailure> {
    upload(hub, req, Chain::Audit).await
}

/// Answers 304 when the client's `If-None-Match` already names `tag`.
fn not_modified(headers: &HeaderMap, tag: &str) -> Option<Response> {
    let inm = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    inm.split(',')
        .any(|t| t.trim() == tag || t.trim() == "*")
        .then(|| {
            (
                StatusCode::NOT_MODIFIED,
                [(
                    header::ETAG,
                    HeaderValue::from_str(tag).expect("ascii etag"),
                )],
            )
                .into_response()
        })
}

fn with_etag(mut r: Response, tag: &str) -> Response {
    r.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(tag).expect("ascii etag"),
    );
    r
}

async fn roster(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Result<Response, ApiFailure> {
    let device = authenticate(&hub, &headers).await?;
    // Each device gets its own site's roster; its tag carries the device, so that a kiosk
    // re-paired to another site never keeps the old one as "not modified".
    let tag_for = |version: i64| {
        let d = device.id.simple().to_string();
        etag(&format!("roster-{}", &d[..12]), version)
    };
    let version = hub.with_db(|db, _| db.roster_version()).await?;
    let tag = tag_for(version);
    if let Some(r) = not_modified(&headers, &tag) {
        return Ok(r);
    }
    let id = device.id;
    let roster = hub.with_db(move |db, _| db.roster(&id)).await?;
    // The version may have moved between the two reads; the tag follows what is sent.
    let tag = tag_for(roster.version);
    Ok(with_etag(json_response(StatusCode::OK, &roster), &tag))
}

async fn policy(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Result<Response, ApiFailure> {
    let device = authenticate(&hub, &headers).await?;
    let doc = hub
        .with_db(move |db, _| db.policy_for(&device.site))
        .await?
        .ok_or(ApiFailure {
            status: 404,
            code: "no_policy",
            message: "the hub has no policy set; kiosks keep their configured one".into(),
        })?;
    let tag = etag("policy", doc.version);
    if let Some(r) = not_modified(&headers, &tag) {
        return Ok(r);
    }
    Ok(with_etag(json_response(StatusCode::OK, &doc), &tag))
}

async fn biometrics(State(hub): State<Arc<Hub>>, req: Request) -> Result<Response, ApiFailure> {
    let (parts, body) = req.into_parts();
    let device = authenticate(&hub, &parts.headers).await?;
    let u: BiometricUpdate = json_body(&parts.headers, body).await?;
    let ack = hub
        .with_db(move |db, _| db.biometric_update(&device.id, &device.site, &u))
        .await?;
    Ok(json_response(StatusCode::OK, &ack))
}

async fn heartbeat(State(hub): State<Arc<Hub>>, req: Request) -> Result<Response, ApiFailure> {
    let (parts, body) = req.into_parts();
    let device = authenticate(&hub, &parts.headers).await?;
    let hb: Heartbeat = json_body(&parts.headers, body).await?;
    let resp = hub
        .with_db(move |db, now| db.heartbeat(&device, &hb, now))
        .await?;
    Ok(json_response(StatusCode::OK, &resp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_and_bearer_scheme_are_read_as_rfc_9110_says() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "application/jsonx",
            "application/json-patch+json",
            "text/json",
            "",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}
