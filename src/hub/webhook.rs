//! Webhook delivery: batches of check-ins and alerts POSTed as JSON to the subscribers'
//! URLs, signed, retried with backoff, and kept as dead letters when the retries run out.
//!
//! Every delivery carries `X-Clockface-Delivery: <batch id>` (the same on every retry of the
//! batch, so a receiver can drop one it already has) and `X-Clockface-Signature:
//! t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the shared secret>`. A receiver
//! recomputes the HMAC and refuses timestamps more than [`TOLERANCE_S`] from its clock, so a
//! captured delivery cannot be replayed later; [`verify`] is that check.
//!
//! Each `serve` process runs one delivery thread with its own database connection; a batch
//! is leased to one replica at a time, and everything (cursor, batch, attempts, dead letters)
//! lives in the database, so deliveries survive a restart and move between replicas.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::db::webhooks::Batch;
use super::db::{DbSpec, HubConfig, HubDb};
use crate::base::clock::{Clock, SystemClock};

/// How far a signature's timestamp may be from the receiver's clock.
pub const TOLERANCE_S: i64 = 300;

/// The `X-Clockface-Signature` value for `body` at `t` (Unix seconds).
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a receiver checks: the header's HMAC matches `body` and its time is within
/// [`TOLERANCE_S`] of `now_s`.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now_s: i64) -> Result<(), String> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err("the signature header needs t=<seconds>,v1=<hex>".into());
    };
    if (now_s - t).abs() > TOLERANCE_S {
        return Err(format!(
            "the signature is {} s old: a replay, or a clock that is off",
            now_s - t
        ));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&v1)
        .map_err(|_| "the signature does not match the body".to_string())
}

/// The delivery thread of one hub process; stopped on drop.
pub struct Deliverer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Deliverer {
    /// Starts delivering for the database `spec` names.
    pub fn spawn(spec: &DbSpec, cfg: &HubConfig) -> crate::base::error::Result<Deliverer> {
        let mut db = HubDb::open_spec(spec, cfg)?;
        let wcfg = cfg.webhooks.clone();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::base::tls::client_config(None)?)
            .connect_timeout(Duration::from_secs(wcfg.timeout_seconds.into()))
            .timeout(Duration::from_secs(wcfg.timeout_seconds.into()))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("clockface-hub/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::base::error::Error::Network(format!("http client: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // Made now, while descriptors are free: a flood of kiosk connections later cannot
        // keep deliveries from starting.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::base::error::Error::io("webhook runtime", e))?;
        let thread = std::thread::Builder::new()
            .name("webhooks".into())
            .spawn(move || {
                let clock = SystemClock::new();
                while !flag.load(Ordering::Relaxed) {
                    let now = clock.wall_ms();
                    let lease = (wcfg.timeout_seconds as i64 + 30) * 1000;
                    match db.claim_batch(now, lease) {
                        Ok(Some(batch)) => {
                            let r = rt.block_on(send(&http, &batch, clock.wall_ms() / 1000));
                            let done = match r {
                                Ok(()) => db.batch_delivered(&batch),
                                Err(why) => {
                                    tracing::warn!(
                                        webhook = batch.webhook,
                                        batch = batch.id,
                                        attempt = batch.attempts + 1,
                                        error = %why,
                                        "webhook delivery failed"
                                    );
                                    let wait = backoff(batch.attempts, wcfg.backoff_max_seconds);
                                    let now = clock.wall_ms();
                                    db.batch_failed(
                                        &batch,
                                        &why,
                                        now,
                                        now + wait,
                                        wcfg.max_attempts.into(),
                                    )
                                }
                            };
                            if let Err(e) = done {
                                tracing::error!(error = %e, "cannot record a webhook delivery");
                                std::thread::sleep(Duration::from_secs(1));
                            }
                        }
                        Ok(None) => std::thread::sleep(Duration::from_millis(250)),
                        Err(e) => {
                            tracing::warn!(error = %e, "webhooks: cannot read the queue");
                            std::thread::sleep(Duration::from_secs(2));
                        }
                    }
                }
            })
            .map_err(|e| crate::base::error::Error::invalid("webhook thread", e.to_string()))?;
        Ok(Deliverer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Deliverer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Milliseconds before attempt `attempts + 2`: 1 s doubling, at most `max_s`.
fn backoff(attempts: i64, max_s: u32) -> i64 {
    let s = 1i64 << attempts.clamp(0, 20);
    s.min(max_s.max(1) as i64) * 1000
}

async fn send(http: &reqwest::Client, batch: &Batch, now_s: i64) -> Result<(), String> {
    let body = serde_json::to_vec(&serde_json::json!({
        "batch": batch.id,
        "webhook": batch.webhook,
        "events": batch.events,
    }))
    .expect("serialisable");
    let resp = http
        .post(&batch.url)
        .header("content-type", "application/json")
        .header("x-clockface-delivery", &batch.id)
        .header("x-clockface-signature", sign(&batch.secret, now_s, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(c) = src {
                s = format!("{s}: {c}");
                src = c.source();
            }
            s
        })?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_changed_body_or_an_old_time_does_not() {
        let h = sign(b"0123456789abcdef", 1_800_000_000, b"{\"a\":1}");
        assert!(h.starts_with("t=1800000000,v1="));
        verify(b"0123456789abcdef", &h, b"{\"a\":1}", 1_800_000_100).unwrap();
        let e = verify(b"0123456789abcdef", &h, b"{\"a\":2}", 1_800_000_100).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = verify(b"another secret..", &h, b"{\"a\":1}", 1_800_000_100).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = verify(b"0123456789abcdef", &h, b"{\"a\":1}", 1_800_000_400).unwrap_err();
        assert!(e.contains("old"), "{e}");
        assert!(verify(b"k", "v1=00", b"", 0).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(0, 300), 1000);
        assert_eq!(backoff(3, 300), 8000);
        assert_eq!(backoff(30, 300), 300_000);
    }
}
