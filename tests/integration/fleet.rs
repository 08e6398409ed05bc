//! The fleet view and its alerts, from what kiosks really send: heartbeats with their camera
//! and model status, signed check-ins refused for liveness, and signed audit entries.

use crate::common;

use std::sync::{Arc, Mutex};

use clockface::base::config::Config;
use clockface::base::protocol::KioskStatus;
use clockface::store::Store;
use clockface::store::audit::NewAudit;
use clockface::sync::{StatusProbe, Syncer};
use common::net::{TestHub, block, now_ms};

fn config(url: &str) -> Config {
    let mut c = Config::default();
    c.sync.url = url.into();
    c.sync.timeout_seconds = 5;
    c.sync.interval_seconds = 30;
    c
}

struct Kiosk {
    store: Store,
    cfg: Config,
    status: Arc<Mutex<KioskStatus>>,
    _dir: tempfile::TempDir,
}

impl Kiosk {
    fn paired(hub: &TestHub, site: &str) -> Kiosk {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, clock) = common::open(dir.path());
        clock.set_wall_ms(now_ms());
        let cfg = config(&hub.url);
        let code = hub
            .db()
            .create_pairing_code(site, 3_600_000, None, now_ms())
            .unwrap();
        block(clockface::sync::pair(&mut store, &cfg, &hub.url, &code)).unwrap();
        let status = Arc::new(Mutex::new(KioskStatus {
            camera: "live".into(),
            face_ok: true,
            problems: vec![],
        }));
        Kiosk {
            store,
            cfg,
            status,
            _dir: dir,
        }
    }

    fn round(&mut self) {
        let st = self.status.clone();
        let probe: StatusProbe = Arc::new(move || st.lock().unwrap().clone());
        let s = Syncer::for_store(&self.store, &self.cfg)
            .unwrap()
            .unwrap()
            .with_status(Some(probe));
        block(s.round(&mut self.store)).unwrap();
    }
}

fn kinds(hub: &TestHub) -> Vec<String> {
    let mut k: Vec<String> = hub
        .db()
        .alerts(now_ms())
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    k.sort();
    k
}

#[test]
fn heartbeats_fill_the_fleet_view_and_problems_become_alerts_once() {
    let hub = TestHub::start();
    let mut a = Kiosk::paired(&hub, "Plant 7");
    let mut b = Kiosk::paired(&hub, "HQ");
    a.store.append_many(&[common::checkin("E1")]).unwrap();
    a.round();
    b.round();
    let fleet = hub.db().fleet(None, now_ms()).unwrap();
    assert_eq!(fleet.len(), 2);
    let va = fleet.iter().find(|d| d.site == "Plant 7").unwrap();
    assert_eq!(va.state, "online");
    assert_eq!(va.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        va.queue_depth,
        Some(1),
        "the queue before that round's upload"
    );
    assert!(va.clock_skew_ms.unwrap().abs() < 60_000, "{va:?}");
    assert!(va.free_disk_bytes.unwrap() > 0);
    assert_eq!(va.status.as_ref().unwrap().camera, "live");
    assert!(va.latest_alerts.is_empty(), "{va:?}");
    assert!(kinds(&hub).is_empty(), "{:?}", kinds(&hub));
    assert_eq!(hub.db().fleet(Some("HQ"), now_ms()).unwrap().len(), 1);

    // The camera goes and a model fails its check: one alert each, not one per heartbeat.
    *a.status.lock().unwrap() = KioskStatus {
        camera: "lost".into(),
        face_ok: false,
        problems: vec![
            "face check-in unavailable: models/fr_sface.onnx: sha256 does not match the manifest"
                .into(),
            "camera lost: /dev/video0: No such device".into(),
        ],
    };
    a.round();
    a.round();
    assert_eq!(kinds(&hub), ["camera_lost", "face_unavailable"]);
    let alerts = hub.db().alerts(now_ms()).unwrap();
    let cam = alerts.iter().find(|x| x.kind == "camera_lost").unwrap();
    assert_eq!(cam.device_name, "Clockface kiosk");
    assert_eq!(cam.site, "Plant 7");
    assert!(cam.detail.contains("/dev/video0"), "{cam:?}");
    let view = hub.db().fleet(Some("Plant 7"), now_ms()).unwrap();
    assert_eq!(view[0].latest_alerts.len(), 2);
    assert!(!view[0].status.as_ref().unwrap().face_ok);

    // Three liveness failures within minutes are one alert, however often they are sent.
    let recs: Vec<_> = (0..3)
        .map(|_| common::failed("E2", "liveness_failed"))
        .collect();
    a.store.append_many(&recs).unwrap();
    a.round();
    common::pg::raw_sql(
        &hub.spec,
        "DELETE FROM alerts WHERE kind = 'repeated_liveness_failures'",
    );
    // (Sent again, as after a lost answer: the failures are counted once.)
    a.store.append_many(&[common::checkin("E1")]).unwrap();
    a.round();
    assert!(!kinds(&hub).contains(&"repeated_liveness_failures".to_string()));
    a.store
        .append_many(&[common::failed("E3", "liveness_failed")])
        .unwrap();
    a.round();
    assert_eq!(
        kinds(&hub)
            .iter()
            .filter(|k| *k == "repeated_liveness_failures")
            .count(),
        1
    );

    // A PIN lockout audited at kiosk B reaches the hub as an alert, without the person.
    b.store
        .audit(&NewAudit::new("system", "pin_locked_out", "E7"))
        .unwrap();
    b.round();
    let lock = hub
        .db()
        .alerts(now_ms())
        .unwrap()
        .into_iter()
        .find(|x| x.kind == "pin_lockout")
        .expect("a lockout alert");
    assert_eq!(lock.site, "HQ");
    assert!(!lock.detail.contains("E7"), "{lock:?}");

    // Kiosk B stops sending heartbeats: offline after three intervals, an alert after an hour.
    let id = hub.db().fleet(Some("HQ"), now_ms()).unwrap()[0].id.clone();
    let seen = now_ms() - 2 * 3_600_000;
    common::pg::raw_sql(
        &hub.spec,
        &format!("UPDATE devices SET last_seen_ms = {seen} WHERE id = '{id}'"),
    );
    let hq = &hub.db().fleet(Some("HQ"), now_ms()).unwrap()[0];
    assert_eq!(hq.state, "offline");
    assert!(
        hq.latest_alerts.iter().any(|a| a.kind == "offline"),
        "{hq:?}"
    );

    // The CLI shows the same, in words and as JSON.
    let (code, out, err) = common::hubbin::hub(&hub.spec, &["alerts", "--json"]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["alerts"].as_array().unwrap().len(), 5, "{j}");
    let (code, out, err) = common::hubbin::hub(&hub.spec, &["devices", "--site", "Plant 7"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("online") && out.contains("camera lost, face off"),
        "{out}"
    );
    assert!(out.contains("alert") && !out.contains("HQ"), "{out}");
}

#[test]
fn a_gap_in_a_chain_is_an_alert() {
    let hub = TestHub::start();
    let mut a = Kiosk::paired(&hub, "HQ");
    let recs: Vec<_> = (0..5).map(|_| common::checkin("E1")).collect();
    a.store.append_many(&recs).unwrap();
    a.round();
    assert!(kinds(&hub).is_empty(), "{:?}", kinds(&hub));
    // The hub lost entry 3 (a restore from an incomplete backup, say).
    common::pg::raw_sql(
        &hub.spec,
        "DELETE FROM entries WHERE chain = 'checkins' AND seq = 3;
         UPDATE heads SET seq = 2 WHERE chain = 'checkins'",
    );
    let alerts = hub.db().alerts(now_ms()).unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind, "chain_gap");
    assert!(alerts[0].detail.contains("seq 2") && alerts[0].detail.contains("seq 5"));
}
