//! Webhooks end to end: a receiver on loopback that checks every signature as an integrator
//! would (its own HMAC, a stale-timestamp rule), goes down and comes back, and a hub that is
//! restarted meanwhile. Every batch arrives, none twice; what cannot be delivered is a dead
//! letter that can be sent again.

use crate::common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clockface::base::config::Config;
use clockface::hub::db::HubConfig;
use clockface::sync::Syncer;
use common::net::{TestHub, block, now_ms};
use hmac::{Hmac, Mac};

const SECRET: &str = "whsec-3f9a1c77d2e84b0f9e51";

#[derive(Default)]
struct Seen {
    /// Batch ids, in arrival order (a repeat would show twice).
    batches: Vec<String>,
    /// Every event received.
    events: Vec<serde_json::Value>,
    /// Deliveries refused for a bad or stale signature.
    bad: Vec<String>,
}

struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    /// The status it answers with (200 when all is well).
    status: Arc<AtomicU16>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Shared = (Arc<Mutex<Seen>>, Arc<AtomicU16>);

/// The integrator's check: HMAC-SHA256 over "t.body", and a timestamp within five minutes.
async fn take(State((seen, status)): State<Shared>, h: HeaderMap, body: Bytes) -> StatusCode {
    let sig = h
        .get("x-clockface-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut t = 0i64;
    let mut v1 = String::new();
    for part in sig.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse().unwrap_or(0),
            Some(("v1", v)) => v1 = v.to_owned(),
            _ => {}
        }
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&body);
    let good = hex::encode(mac.finalize().into_bytes()) == v1;
    let fresh = (now_ms() / 1000 - t).abs() <= 300;
    let mut s = seen.lock().unwrap();
    if !good || !fresh {
        s.bad.push(sig.to_owned());
        return StatusCode::UNAUTHORIZED;
    }
    let code = StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap();
    if code != StatusCode::OK {
        return code;
    }
    let j: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let batch = h["x-clockface-delivery"].to_str().unwrap().to_owned();
    assert_eq!(j["batch"], batch.as_str());
    s.batches.push(batch);
    s.events
        .extend(j["events"].as_array().unwrap().iter().cloned());
    StatusCode::OK
}

impl Receiver {
    fn start(port: u16, seen: Arc<Mutex<Seen>>, status: Arc<AtomicU16>) -> Receiver {
        let std = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        std.set_nonblocking(true).unwrap();
        let addr = std.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state: Shared = (seen.clone(), status.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(std).unwrap();
                let app = axum::Router::new()
                    .route("/hook", axum::routing::post(take))
                    .with_state(state);
                axum::serve(l, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Receiver {
            addr,
            seen,
            status,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Goes down (connections refused) until started again on the same port.
    fn stop(mut self) -> (u16, Arc<Mutex<Seen>>, Arc<AtomicU16>) {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap();
        (self.addr.port(), self.seen.clone(), self.status.clone())
    }
}

fn hub_config() -> HubConfig {
    let mut c = HubConfig::default();
    c.webhooks.backoff_max_seconds = 1;
    c.webhooks.max_attempts = 4;
    c.webhooks.timeout_seconds = 2;
    c
}

fn kiosk_config(url: &str) -> Config {
    let mut c = Config::default();
    c.sync.url = url.into();
    c.sync.timeout_seconds = 5;
    c
}

fn add_webhook(hub: &TestHub, url: &str, events: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("secret");
    std::fs::write(&f, format!("{SECRET}\n")).unwrap();
    let (code, out, err) = common::hubbin::hub(
        &hub.spec,
        &[
            "webhook",
            "add",
            url,
            "--secret-file",
            f.to_str().unwrap(),
            "--events",
            events,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("delivered to"), "{out}");
}

fn status(hub: &TestHub) -> serde_json::Value {
    let (code, out, err) = common::hubbin::hub(&hub.spec, &["webhook", "status", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "waited in vain for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn checkins(seen: &Arc<Mutex<Seen>>) -> usize {
    let s = seen.lock().unwrap();
    s.events.iter().filter(|e| e["kind"] == "checkins").count()
}

#[test]
fn every_batch_arrives_once_through_an_outage_and_a_hub_restart() {
    let cfg = hub_config();
    let mut hub = TestHub::start_configured(&cfg);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rcv = Receiver::start(0, seen.clone(), Arc::new(AtomicU16::new(200)));
    add_webhook(&hub, &rcv.url(), "checkins,alerts");

    let dir = tempfile::tempdir().unwrap();
    let (mut store, clock) = common::open(dir.path());
    clock.set_wall_ms(now_ms());
    let mut kcfg = kiosk_config(&hub.url);
    let code = hub.pairing_code();
    block(clockface::sync::pair(&mut store, &kcfg, &hub.url, &code)).unwrap();
    let round = |store: &mut clockface::store::Store, kcfg: &Config| {
        let s = Syncer::for_store(store, kcfg).unwrap().unwrap();
        block(s.round(store)).unwrap();
    };
    let mut recs: Vec<_> = (0..30).map(|i| common::checkin(&format!("E{i}"))).collect();
    recs.extend((0..3).map(|_| common::failed("E9", "liveness_failed")));
    store.append_many(&recs).unwrap();
    round(&mut store, &kcfg);
    wait_for("30 check-ins and an alert", || {
        checkins(&seen) == 30
            && seen
                .lock()
                .unwrap()
                .events
                .iter()
                .any(|e| e["data"]["kind"] == "repeated_liveness_failures")
    });
    {
        let s = seen.lock().unwrap();
        let c = s.events.iter().find(|e| e["kind"] == "checkins").unwrap();
        assert!(c["data"]["employee_id"].as_str().unwrap().starts_with('E'));
        assert_eq!(c["data"]["site"], "HQ");
        assert!(c["data"]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(
            !c.to_string().contains("liveness_failed"),
            "failed check-ins stay out"
        );
    }

    // The receiver goes down; check-ins go on; the failures are visible and nothing is lost.
    let (port, seen, st) = rcv.stop();
    store
        .append_many(
            &(0..40)
                .map(|i| common::checkin(&format!("F{i}")))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    round(&mut store, &kcfg);
    wait_for("failed attempts", || {
        status(&hub)["webhooks"][0]["attempts"].as_i64().unwrap() >= 2
    });
    let s = status(&hub);
    let w = &s["webhooks"][0];
    assert_eq!(w["pending"], 40, "{s}");
    assert!(
        w["last_error"].as_str().unwrap().contains("onnect"),
        "the cause is named: {s}"
    );
    // The hub restarts during the outage; the receiver comes back afterwards.
    hub.restart(&cfg);
    kcfg.sync.url = hub.url.clone();
    store
        .append_many(
            &(0..5)
                .map(|i| common::checkin(&format!("G{i}")))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    round(&mut store, &kcfg);
    let rcv = Receiver::start(port, seen.clone(), st);
    wait_for("all 75 check-ins", || checkins(&seen) >= 75);
    std::thread::sleep(Duration::from_millis(1500));
    let s = seen.lock().unwrap();
    assert!(s.bad.is_empty(), "every signature verified: {:?}", s.bad);
    let batches: BTreeSet<&String> = s.batches.iter().collect();
    assert_eq!(
        batches.len(),
        s.batches.len(),
        "no batch twice: {:?}",
        s.batches
    );
    let ids: BTreeSet<i64> = s.events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), s.events.len(), "no event twice");
    let uuids: BTreeSet<&str> = s
        .events
        .iter()
        .filter(|e| e["kind"] == "checkins")
        .map(|e| e["data"]["record_uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids.len(), 75);
    drop(s);
    let s = status(&hub);
    assert_eq!(s["webhooks"][0]["pending"], 0, "{s}");
    assert_eq!(s["webhooks"][0]["attempts"], 0, "{s}");
    drop(rcv);
}

#[test]
fn a_batch_refused_too_often_is_a_dead_letter_and_can_be_sent_again() {
    let cfg = hub_config();
    let hub = TestHub::start_configured(&cfg);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let answer = Arc::new(AtomicU16::new(500));
    let rcv = Receiver::start(0, seen.clone(), answer.clone());
    add_webhook(&hub, &rcv.url(), "checkins");
    let dir = tempfile::tempdir().unwrap();
    let (mut store, clock) = common::open(dir.path());
    clock.set_wall_ms(now_ms());
    let kcfg = kiosk_config(&hub.url);
    block(clockface::sync::pair(
        &mut store,
        &kcfg,
        &hub.url,
        &hub.pairing_code(),
    ))
    .unwrap();
    store
        .append_many(
            &(0..12)
                .map(|i| common::checkin(&format!("E{i}")))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let s = Syncer::for_store(&store, &kcfg).unwrap().unwrap();
    block(s.round(&mut store)).unwrap();
    wait_for("a dead letter", || {
        !status(&hub)["webhooks"][0]["dead_letters"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    let st = status(&hub);
    let dead = &st["webhooks"][0]["dead_letters"][0];
    assert_eq!(dead["attempts"], 4, "{st}");
    assert!(dead["last_error"].as_str().unwrap().contains("500"), "{st}");
    let (code, out, _) = common::hubbin::hub(&hub.spec, &["webhook", "status"]);
    assert_eq!(code, 0);
    assert!(out.contains("dead letter"), "{out}");
    assert_eq!(checkins(&seen), 0);

    // The receiver is fixed; the dead letter goes out again, once.
    answer.store(200, Ordering::SeqCst);
    let id = dead["id"].as_i64().unwrap().to_string();
    let (code, out, err) = common::hubbin::hub(&hub.spec, &["webhook", "redeliver", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("goes out again"), "{out}");
    wait_for("the redelivered batch", || checkins(&seen) == 12);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(checkins(&seen), 12);
    assert!(
        status(&hub)["webhooks"][0]["dead_letters"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (code, _, err) = common::hubbin::hub(&hub.spec, &["webhook", "redeliver", &id]);
    assert_ne!(code, 0);
    assert!(err.contains("not in `webhook status`"), "{err}");
    // Bad subscriptions are named.
    let (code, _, err) = common::hubbin::hub(
        &hub.spec,
        &[
            "webhook",
            "add",
            "http://example.com/x",
            "--secret-file",
            "/nonexistent",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent"), "{err}");
    drop(rcv);
}
