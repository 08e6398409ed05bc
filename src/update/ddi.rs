//! hawkBit's Direct Device Integration API, the controller side: the poll, `configData`,
//! `deploymentBase`, `cancelAction` and their feedback, as JSON over HTTP(S). The wire types
//! keep only the fields the kiosk acts on; unknown fields are ignored, as DDI servers add them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// What went wrong talking to the server, worded for the log (never a token).
pub type DdiResult<T> = std::result::Result<T, String>;

/// A link in a DDI answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Link {
    /// Absolute URL.
    pub href: String,
}

/// The poll's answer: when to ask again and what the server wants done.
#[derive(Debug, Clone, Deserialize)]
pub struct Poll {
    /// `config.polling.sleep`, "HH:MM:SS".
    #[serde(default)]
    pub config: Option<PollConfig>,
    /// `deploymentBase`, `cancelAction`, `configData`, `installedBase`.
    #[serde(rename = "_links", default)]
    pub links: BTreeMap<String, Link>,
}

/// `config` of the poll answer.
#[derive(Debug, Clone, Deserialize)]
pub struct PollConfig {
    /// The polling section.
    pub polling: Option<Polling>,
}

/// `config.polling`.
#[derive(Debug, Clone, Deserialize)]
pub struct Polling {
    /// "HH:MM:SS".
    pub sleep: Option<String>,
}

impl Poll {
    /// The sleep the server asks for, when it names a valid one.
    pub fn sleep(&self) -> Option<Duration> {
        let s = self.config.as_ref()?.polling.as_ref()?.sleep.as_deref()?;
        parse_sleep(s)
    }

    /// The action id at the end of a link's path (`.../deploymentBase/{id}?c=...`).
    pub fn action_id(&self, link: &str) -> Option<String> {
        let href = &self.links.get(link)?.href;
        let path = href.split(['?', '#']).next()?;
        path.rsplit('/').next().map(str::to_string)
    }
}

/// "HH:MM:SS" as a duration.
pub fn parse_sleep(s: &str) -> Option<Duration> {
    let mut parts = s.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() || m >= 60 || sec >= 60 {
        return None;
    }
    Some(Duration::from_secs(h * 3600 + m * 60 + sec))
}

/// `deploymentBase/{id}`: the action and its artifacts.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentBase {
    /// The action id.
    pub id: String,
    /// What to do.
    pub deployment: Deployment,
}

/// `deployment` of a deploymentBase.
#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    /// "skip", "attempt" or "forced".
    #[serde(default = "attempt")]
    pub download: String,
    /// "skip", "attempt" or "forced": forced reboots now, attempt waits for the window.
    #[serde(default = "attempt")]
    pub update: String,
    /// "available" or "unavailable" when the server runs maintenance windows of its own.
    #[serde(rename = "maintenanceWindow", default)]
    pub maintenance_window: Option<String>,
    /// Software modules.
    #[serde(default)]
    pub chunks: Vec<Chunk>,
}

fn attempt() -> String {
    "attempt".into()
}

/// One software module.
#[derive(Debug, Clone, Deserialize)]
pub struct Chunk {
    /// Module type ("os", "bApp", ...).
    #[serde(default)]
    pub part: String,
    /// Module version.
    #[serde(default)]
    pub version: String,
    /// Module name.
    #[serde(default)]
    pub name: String,
    /// Files.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
}

/// One file of a software module.
#[derive(Debug, Clone, Deserialize)]
pub struct Artifact {
    /// File name.
    pub filename: String,
    /// "sha1", "md5", "sha256" as lower-case hex.
    #[serde(default)]
    pub hashes: BTreeMap<String, String>,
    /// Size in bytes.
    pub size: u64,
    /// `download` (https) and `download-http`.
    #[serde(rename = "_links", default)]
    pub links: BTreeMap<String, Link>,
}

impl Artifact {
    /// Where to fetch it: https first.
    pub fn url(&self) -> Option<&str> {
        self.links
            .get("download")
            .or_else(|| self.links.get("download-http"))
            .map(|l| l.href.as_str())
    }
}

impl DeploymentBase {
    /// The RAUC bundle of the action: the artifact named `*.raucb`, else the only artifact.
    pub fn bundle(&self) -> DdiResult<(&Chunk, &Artifact)> {
        let all: Vec<(&Chunk, &Artifact)> = self
            .deployment
            .chunks
            .iter()
            .flat_map(|c| c.artifacts.iter().map(move |a| (c, a)))
            .collect();
        if let Some(found) = all.iter().find(|(_, a)| a.filename.ends_with(".raucb")) {
            return Ok(*found);
        }
        match all.as_slice() {
            [one] => Ok(*one),
            [] => Err("the action has no artifact".into()),
            _ => Err(format!(
                "the action has {} artifacts and none is a .raucb bundle",
                all.len()
            )),
        }
    }
}

/// `cancelAction/{id}`: which action to stop.
#[derive(Debug, Clone, Deserialize)]
pub struct CancelAction {
    /// The cancel action's own id.
    pub id: String,
    /// `cancelAction.stopId`: the action to stop.
    #[serde(rename = "cancelAction")]
    pub cancel: CancelBody,
}

/// `cancelAction` of a cancel answer.
#[derive(Debug, Clone, Deserialize)]
pub struct CancelBody {
    /// The action to stop.
    #[serde(rename = "stopId")]
    pub stop_id: String,
}

/// Feedback `status.execution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    /// Under way.
    Proceeding,
    /// Done: with `Finished`.
    Closed,
    /// Downloaded, waiting.
    Downloaded,
    /// Canceled as asked.
    Canceled,
    /// The cancel could not be done.
    Rejected,
}

impl Execution {
    fn as_str(self) -> &'static str {
        match self {
            Execution::Proceeding => "proceeding",
            Execution::Closed => "closed",
            Execution::Downloaded => "downloaded",
            Execution::Canceled => "canceled",
            Execution::Rejected => "rejected",
        }
    }
}

/// Feedback `status.result.finished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Not finished yet.
    None,
    /// Succeeded.
    Success,
    /// Failed.
    Failure,
}

impl Finished {
    fn as_str(self) -> &'static str {
        match self {
            Finished::None => "none",
            Finished::Success => "success",
            Finished::Failure => "failure",
        }
    }
}

/// One feedback message.
#[derive(Debug, Clone)]
pub struct Feedback {
    /// `status.execution`.
    pub execution: Execution,
    /// `status.result.finished`.
    pub finished: Finished,
    /// `status.result.progress` (cnt, of).
    pub progress: Option<(u64, u64)>,
    /// `status.details`: human-readable lines.
    pub details: Vec<String>,
}

impl Feedback {
    /// Work under way, with an optional step count and a line saying what.
    pub fn proceeding(progress: Option<(u64, u64)>, detail: impl Into<String>) -> Feedback {
        Feedback {
            execution: Execution::Proceeding,
            finished: Finished::None,
            progress,
            details: vec![detail.into()],
        }
    }

    /// The action ended, well or not.
    pub fn closed(ok: bool, detail: impl Into<String>) -> Feedback {
        Feedback {
            execution: Execution::Closed,
            finished: if ok {
                Finished::Success
            } else {
                Finished::Failure
            },
            progress: None,
            details: vec![detail.into()],
        }
    }

    /// The JSON body DDI expects.
    pub fn body(&self, id: &str, now_utc: &str) -> Value {
        let mut result = json!({ "finished": self.finished.as_str() });
        if let Some((cnt, of)) = self.progress {
            result["progress"] = json!({ "cnt": cnt, "of": of });
        }
        json!({
            "id": id,
            "time": now_utc,
            "status": {
                "execution": self.execution.as_str(),
                "result": result,
                "details": self.details,
            }
        })
    }
}

/// How the kiosk proves who it is to the server.
#[derive(Clone)]
pub enum Auth {
    /// No token (a server in lax or setup mode).
    None,
    /// `Authorization: TargetToken …`.
    Target(String),
    /// `Authorization: GatewayToken …`.
    Gateway(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token.
        f.write_str(match self {
            Auth::None => "none",
            Auth::Target(_) => "target token",
            Auth::Gateway(_) => "gateway token",
        })
    }
}

/// The controller's HTTP client for one server, tenant and controller id.
#[derive(Clone)]
pub struct DdiClient {
    http: reqwest::Client,
    base: String,
    auth: Auth,
}

impl DdiClient {
    /// A client of `server`/`tenant`/controller/v1/`controller_id`.
    pub fn new(
        server: &str,
        tenant: &str,
        controller_id: &str,
        auth: Auth,
        timeout: Duration,
    ) -> crate::base::error::Result<DdiClient> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::sync::client::tls_config(None)?)
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .user_agent(concat!("clockface/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::base::error::Error::Network(format!("http client: {e}")))?;
        Ok(DdiClient {
            http,
            base: format!(
                "{}/{tenant}/controller/v1/{controller_id}",
                server.trim_end_matches('/')
            ),
            auth,
        })
    }

    /// The controller's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The HTTP client, for artifact downloads (same TLS and token).
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let r = self
            .http
            .request(method, url)
            .header("Accept", "application/hal+json, application/json");
        match &self.auth {
            Auth::None => r,
            Auth::Target(t) => r.header("Authorization", format!("TargetToken {t}")),
            Auth::Gateway(t) => r.header("Authorization", format!("GatewayToken {t}")),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> DdiResult<T> {
        let resp = self
            .request(reqwest::Method::GET, url)
            .send()
            .await
            .map_err(|e| format!("GET {}: {}", path_of(url), describe(&e)))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| format!("GET {}: {}", path_of(url), describe(&e)))?;
        if !status.is_success() {
            return Err(format!(
                "GET {}: HTTP {}: {}",
                path_of(url),
                status.as_u16(),
                snippet(&text)
            ));
        }
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "GET {}: the answer is not DDI JSON ({e}): {}",
                path_of(url),
                snippet(&text)
            )
        })
    }

    async fn send_json(&self, method: reqwest::Method, url: &str, body: &Value) -> DdiResult<()> {
        let m = method.to_string();
        let resp = self
            .request(method, url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("{m} {}: {}", path_of(url), describe(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(format!(
                "{m} {}: HTTP {}: {}",
                path_of(url),
                status.as_u16(),
                snippet(&text)
            ));
        }
        Ok(())
    }

    /// `GET {base}`: the poll.
    pub async fn poll(&self) -> DdiResult<Poll> {
        self.get_json(&self.base.clone()).await
    }

    /// `PUT {base}/configData`: the device's attributes, merged into what the server has.
    pub async fn config_data(&self, attributes: &BTreeMap<String, String>) -> DdiResult<()> {
        let url = format!("{}/configData", self.base);
        let body = json!({ "mode": "merge", "data": attributes });
        self.send_json(reqwest::Method::PUT, &url, &body).await
    }

    /// `GET` the deploymentBase link of a poll.
    pub async fn deployment(&self, href: &str) -> DdiResult<DeploymentBase> {
        self.get_json(href).await
    }

    /// `GET` the cancelAction link of a poll.
    pub async fn cancel_action(&self, href: &str) -> DdiResult<CancelAction> {
        self.get_json(href).await
    }

    /// `POST {base}/deploymentBase/{id}/feedback`.
    pub async fn deployment_feedback(&self, id: &str, fb: &Feedback) -> DdiResult<()> {
        let url = format!("{}/deploymentBase/{id}/feedback", self.base);
        self.send_json(reqwest::Method::POST, &url, &fb.body(id, &now_utc()))
            .await
    }

    /// `POST {base}/cancelAction/{id}/feedback`.
    pub async fn cancel_feedback(&self, id: &str, fb: &Feedback) -> DdiResult<()> {
        let url = format!("{}/cancelAction/{id}/feedback", self.base);
        self.send_json(reqwest::Method::POST, &url, &fb.body(id, &now_utc()))
            .await
    }
}

/// DDI's feedback time format, UTC: "20261202T211500".
fn now_utc() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string()
}

/// The path of a URL, for messages (a query may carry a token in some setups).
pub fn path_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.path().to_string(),
        Err(_) => "(bad url)".into(),
    }
}

/// A request error in words: timeout, refused, or what reqwest says.
pub fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    };
    let mut src = e.source();
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s
}

/// The start of a body, for messages.
fn snippet(text: &str) -> String {
    let t: String = text.chars().take(160).collect();
    t.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hawkbit_poll_and_deployment_parse() {
        let poll: Poll = serde_json::from_str(
            r#"{"config":{"polling":{"sleep":"00:05:00"}},
                "_links":{"deploymentBase":{"href":"https://h/DEFAULT/controller/v1/k1/deploymentBase/42?c=-2129030598"},
                          "configData":{"href":"https://h/DEFAULT/controller/v1/k1/configData"}}}"#,
        )
        .unwrap();
        assert_eq!(poll.sleep(), Some(Duration::from_secs(300)));
        assert_eq!(poll.action_id("deploymentBase").as_deref(), Some("42"));
        let d: DeploymentBase = serde_json::from_str(
            r#"{"id":"42","deployment":{"download":"forced","update":"attempt","maintenanceWindow":"available",
                "chunks":[{"part":"os","version":"1.2.0","name":"clockface","artifacts":[
                  {"filename":"notes.txt","hashes":{"sha1":"aa"},"size":3,"_links":{"download-http":{"href":"http://h/a"}}},
                  {"filename":"clockface-1.2.0.raucb","hashes":{"sha1":"bb","md5":"cc","sha256":"dd"},"size":1000,
                   "_links":{"download":{"href":"https://h/b"},"download-http":{"href":"http://h/b"}}}]}]}}"#,
        )
        .unwrap();
        let (chunk, a) = d.bundle().unwrap();
        assert_eq!((chunk.version.as_str(), a.size), ("1.2.0", 1000));
        assert_eq!(a.url(), Some("https://h/b"), "https is preferred");
        assert_eq!(d.deployment.update, "attempt");
    }

    #[test]
    fn sleeps_parse_strictly() {
        assert_eq!(parse_sleep("01:00:10"), Some(Duration::from_secs(3610)));
        for bad in ["", "10", "00:61:00", "a:b:c", "00:00:00:00"] {
            assert_eq!(parse_sleep(bad), None, "{bad}");
        }
    }

    #[test]
    fn feedback_has_the_shape_ddi_expects() {
        let b = Feedback::proceeding(Some((3, 10)), "downloading").body("7", "20261202T000000");
        assert_eq!(b["status"]["execution"], "proceeding");
        assert_eq!(b["status"]["result"]["finished"], "none");
        assert_eq!(b["status"]["result"]["progress"]["of"], 10);
        let b = Feedback::closed(false, "signature").body("7", "t");
        assert_eq!(b["status"]["result"]["finished"], "failure");
        assert_eq!(b["status"]["details"][0], "signature");
        assert_eq!(
            format!("{:?}", Auth::Target("secret".into())),
            "target token"
        );
    }
}
