//! HTTP client for sync protocol v1: TLS policy, bounded reads, and errors that say what the
//! network or the backend did.
//!
//! TLS is rustls with the `ring` provider. Plain http is refused except on loopback. With a
//! configured CA file only that CA is trusted (CA pinning); without, the system's roots are.
//! Every response body is read with a size cap, so a broken or hostile backend cannot make the
//! kiosk allocate without bound.

use std::path::Path;
use std::time::Duration;

use reqwest::{StatusCode, Url, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::base::config::check_url;
use crate::base::protocol::{
    ApiError, BiometricAck, BiometricUpdate, Health, Heartbeat, HeartbeatResponse,
    MAX_RESPONSE_BYTES, PairRequest, PairResponse, PolicyDocument, Roster, UploadEntry,
    UploadRequest, UploadResponse,
};

/// What went wrong talking to the backend, classified for retry decisions and logs.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No answer: refused, reset, DNS, timeout. Retry with backoff.
    #[error("backend unreachable: {0}")]
    Unreachable(String),
    /// TLS failed (certificate not trusted, wrong host name, handshake). Retrying will not
    /// help until the configuration or the backend's certificate changes.
    #[error("TLS with the backend failed: {0}")]
    Tls(String),
    /// The backend answered with an error status.
    #[error("backend answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The backend's message (or the start of its body).
        message: String,
        /// What `Retry-After` asked for, if anything.
        retry_after: Option<Duration>,
    },
    /// The answer was not what the protocol says (malformed JSON, too large, wrong acks).
    #[error("backend broke the protocol: {0}")]
    Protocol(String),
    /// The kiosk is not paired (no token) or the backend no longer knows its token.
    #[error("not paired with the backend: {0}")]
    NotPaired(String),
    /// The local store failed; nothing was marked synced.
    #[error("local store: {0}")]
    Store(#[from] crate::base::error::Error),
}

impl SyncError {
    /// The delay the backend asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SyncError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

pub use crate::base::tls::client_config as tls_config;

/// A client for one backend.
#[derive(Clone)]
pub struct HubClient {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    max_retry_after: Duration,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("base", &self.base.as_str())
            .field("paired", &self.token.is_some())
            .finish()
    }
}

impl HubClient {
    /// A client for `url` with per-request `timeout`; `ca_file` pins the backend's CA.
    pub fn new(
        url: &str,
        ca_file: Option<&Path>,
        timeout: Duration,
        max_retry_after: Duration,
    ) -> crate::base::error::Result<HubClient> {
        let base =
            check_url(url).map_err(|why| crate::base::error::Error::invalid("sync.url", why))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(ca_file)?)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("clockface/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| crate::base::error::Error::invalid("sync client", e.to_string()))?;
        Ok(HubClient {
            http,
            base,
            token: None,
            max_retry_after,
        })
    }

    /// The same client, authenticating with `token`.
    pub fn with_token(mut self, token: String) -> HubClient {
        self.token = Some(token);
        self
    }

    /// The backend's base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        let base = u.path().trim_end_matches('/').to_owned();
        u.set_path(&format!("{base}{path}"));
        u
    }

    fn authed(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, SyncError> {
        let t = self
            .token
            .as_deref()
            .ok_or_else(|| SyncError::NotPaired("no token; run `clockface pair`".into()))?;
        Ok(rb.bearer_auth(t))
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> Result<Health, SyncError> {
        let resp = send(self.http.get(self.url("/v1/health"))).await?;
        self.json(resp).await
    }

    /// `POST /v1/pair`.
    pub async fn pair(&self, req: &PairRequest) -> Result<PairResponse, SyncError> {
        let resp = send(json_post(self.http.post(self.url("/v1/pair")), req)).await?;
        self.json(resp).await
    }

    /// `POST /v1/checkins` or `/v1/audit` with one batch.
    pub async fn upload(
        &self,
        path: &str,
        entries: Vec<UploadEntry>,
    ) -> Result<UploadResponse, SyncError> {
        let rb = self.authed(self.http.post(self.url(path)))?;
        let resp = send(json_post(rb, &UploadRequest { entries })).await?;
        self.json(resp).await
    }

    /// `POST /v1/heartbeat`.
    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatResponse, SyncError> {
        let rb = self.authed(self.http.post(self.url("/v1/heartbeat")))?;
        let resp = send(json_post(rb, hb)).await?;
        self.json(resp).await
    }

    /// `POST /v1/biometrics`: a consent decision or enrolment here, for the person's other doors.
    pub async fn biometrics(&self, u: &BiometricUpdate) -> Result<BiometricAck, SyncError> {
        let rb = self.authed(self.http.post(self.url("/v1/biometrics")))?;
        let resp = send(json_post(rb, u)).await?;
        self.json(resp).await
    }

    /// `GET /v1/roster`; `None` when the backend says it has not changed since `etag`.
    pub async fn roster(&self, etag: Option<&str>) -> Result<Option<(Roster, String)>, SyncError> {
        self.conditional_get("/v1/roster", etag).await
    }

    /// `GET /v1/policy`; `None` when unchanged or when the backend has no policy.
    pub async fn policy(
        &self,
        etag: Option<&str>,
    ) -> Result<Option<(PolicyDocument, String)>, SyncError> {
        match self.conditional_get("/v1/policy", etag).await {
            Err(SyncError::Status { status: 404, .. }) => Ok(None),
            other => other,
        }
    }

    async fn conditional_get<T: DeserializeOwned>(
        &self,
        path: &str,
        etag: Option<&str>,
    ) -> Result<Option<(T, String)>, SyncError> {
        let mut rb = self.authed(self.http.get(self.url(path)))?;
        if let Some(t) = etag {
            rb = rb.header(header::IF_NONE_MATCH, t);
        }
        let resp = send(rb).await?;
        if resp.status() == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        let tag = resp
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body: T = self.json(resp).await?;
        Ok(Some((body, tag)))
    }

    /// Reads a response: an error status becomes [`SyncError::Status`], a success body is
    /// parsed as `T` after reading at most [`MAX_RESPONSE_BYTES`].
    async fn json<T: DeserializeOwned>(&self, resp: reqwest::Response) -> Result<T, SyncError> {
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after)
            .map(|d| d.min(self.max_retry_after));
        let body = read_capped(resp).await?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ApiError>(&body)
                .map(|e| format!("{} ({})", e.message, e.error))
                .unwrap_or_else(|_| {
                    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
                });
            if status == StatusCode::UNAUTHORIZED {
                return Err(SyncError::NotPaired(message));
            }
            return Err(SyncError::Status {
                status: status.as_u16(),
                message,
                retry_after,
            });
        }
        let de = &mut serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            SyncError::Protocol(format!(
                "{} answer is not valid JSON for the protocol at {}: {}",
                status,
                e.path(),
                e.inner()
            ))
        })
    }
}

fn json_post<T: Serialize>(rb: reqwest::RequestBuilder, body: &T) -> reqwest::RequestBuilder {
    rb.header(header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body).expect("protocol types serialise"))
}

async fn send(rb: reqwest::RequestBuilder) -> Result<reqwest::Response, SyncError> {
    rb.send().await.map_err(classify)
}

/// Names a transport failure by its deepest cause (refused, reset, timeout, certificate).
fn classify(e: reqwest::Error) -> SyncError {
    let mut chain = String::new();
    let mut src: Option<&dyn std::error::Error> = Some(&e);
    let mut tls = false;
    while let Some(s) = src {
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        let text = s.to_string();
        if s.downcast_ref::<rustls::Error>().is_some() || text.contains("certificate") {
            tls = true;
        }
        chain.push_str(&text);
        src = s.source();
    }
    if e.is_timeout() {
        return SyncError::Unreachable(format!("timed out ({chain})"));
    }
    if tls {
        SyncError::Tls(chain)
    } else {
        SyncError::Unreachable(chain)
    }
}

async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, SyncError> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(SyncError::Protocol(format!(
            "answer of {} bytes is larger than the {MAX_RESPONSE_BYTES}-byte limit",
            resp.content_length().unwrap_or(0)
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(SyncError::Protocol(format!(
                "answer is larger than the {MAX_RESPONSE_BYTES}-byte limit"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(ms.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_https_except_on_loopback() {
        assert!(check_url("https://hub.example.com").is_ok());
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(check_url("http://[::1]:8080/base").is_ok());
        assert!(check_url("http://localhost:1").is_ok());
        let e = check_url("http://hub.example.com").unwrap_err();
        assert!(e.contains("plain http"), "{e}");
        assert!(check_url("ftp://x").unwrap_err().contains("scheme"));
        assert!(check_url("not a url").unwrap_err().contains("not a URL"));
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let past = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(parse_retry_after(past), Some(Duration::ZERO));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let d = parse_retry_after(&soon).unwrap();
        assert!(
            d > Duration::from_secs(80) && d <= Duration::from_secs(90),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn base_path_is_kept_when_joining() {
        let c = HubClient::new(
            "http://127.0.0.1:9/api/",
            None,
            Duration::from_secs(2),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            c.url("/v1/roster").as_str(),
            "http://127.0.0.1:9/api/v1/roster"
        );
    }
}
