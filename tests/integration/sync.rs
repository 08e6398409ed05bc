//! Sync against the real hub over HTTP on loopback, with faults injected by a proxy: whatever
//! the network does, no record is lost and none is stored twice at the backend.

use crate::common;

use std::path::Path;
use std::time::Duration;

use clockface::base::config::Config;
use clockface::base::protocol::{
    ConsentScope, Roster, RosterConsent, RosterEmployee, RosterTemplate,
};
use clockface::hub::db::Chain;
use clockface::store::Store;
use clockface::store::sync::OutboxChain;
use clockface::sync::{RoundReport, SyncError, Syncer};
use common::net::{Fault, FaultProxy, TestCa, TestHub, block};

fn config(url: &str) -> Config {
    let mut c = Config::default();
    c.sync.url = url.into();
    c.sync.timeout_seconds = 2;
    c.sync.batch_size = 100;
    c
}

fn pair(store: &mut Store, cfg: &Config, hub: &TestHub) {
    block(clockface::sync::pair(
        store,
        cfg,
        &cfg.sync.url,
        &hub.pairing_code(),
    ))
    .expect("pairs");
}

fn round(store: &mut Store, cfg: &Config) -> Result<RoundReport, SyncError> {
    let s = Syncer::for_store(store, cfg).unwrap().expect("paired");
    block(s.round(store))
}

fn append(store: &mut Store, n: usize) {
    let recs: Vec<_> = (0..n)
        .map(|i| {
            if i % 5 == 4 {
                common::failed(&format!("E{}", i % 7), "face_mismatch")
            } else {
                common::checkin(&format!("E{}", i % 7))
            }
        })
        .collect();
    store.append_many(&recs).unwrap();
}

/// The backend holds exactly the kiosk's chain: every seq once, linked, no conflicts.
fn assert_hub_has_exactly(hub: &TestHub, store: &Store) {
    let head = store.stats().unwrap().head_seq;
    let db = hub.db();
    assert_eq!(
        db.count(Chain::Checkins).unwrap(),
        head,
        "check-ins at the hub"
    );
    let reports = db.chain_reports().unwrap();
    let r = reports.iter().find(|r| r.chain == "checkins").unwrap();
    assert_eq!((r.first_seq, r.last_seq, r.head_seq), (1, head, head));
    assert!(r.gaps.is_empty() && r.conflicts.is_empty(), "{r:?}");
    assert_eq!(store.queued(OutboxChain::Checkins).unwrap(), 0);
}

/// (check-ins the hub holds, check-ins the kiosk still has queued).
fn counts(hub: &TestHub, store: &Store) -> (u64, u64) {
    (
        hub.db().count(Chain::Checkins).unwrap(),
        store.queued(OutboxChain::Checkins).unwrap(),
    )
}

fn kiosk(dir: &Path) -> Store {
    common::open(dir).0
}

#[test]
fn pairing_upload_and_resend_are_exactly_once() {
    let hub = TestHub::start();
    let dir = tempfile::tempdir().unwrap();
    let mut store = kiosk(dir.path());
    let cfg = config(&hub.url);
    append(&mut store, 1234);

    // Not paired yet: nothing to sync with.
    assert!(Syncer::for_store(&store, &cfg).unwrap().is_none());
    pair(&mut store, &cfg, &hub);
    let rep = round(&mut store, &cfg).unwrap();
    assert_eq!(rep.checkins, 1234);
    assert!(rep.audit >= 1, "the pairing itself is audited and uploaded");
    assert_hub_has_exactly(&hub, &store);
    let status = store.sync_status().unwrap();
    assert!(status.paired && status.last_error.is_empty());
    assert_eq!(status.backend_head_seq, Some(1234));

    // A second round has nothing to send.
    let rep = round(&mut store, &cfg).unwrap();
    assert_eq!((rep.checkins, rep.audit), (0, 0));

    // Re-sending everything (as after losing the acknowledgements) is harmless.
    common::raw_db(dir.path())
        .execute("UPDATE records SET synced_at_ms = NULL", [])
        .unwrap();
    assert_eq!(store.queued(OutboxChain::Checkins).unwrap(), 1234);
    let rep = round(&mut store, &cfg).unwrap();
    assert_eq!(rep.checkins, 1234, "acknowledged as duplicates");
    assert_hub_has_exactly(&hub, &store);

    // The audit chain arrived as well, in full.
    let audit_head = common::raw_db(dir.path())
        .query_row("SELECT max(seq) FROM audit", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64;
    assert_eq!(hub.db().count(Chain::Audit).unwrap(), audit_head);
}

#[test]
fn pairing_codes_are_single_use_and_wrong_codes_are_refused() {
    let hub = TestHub::start();
    let code = hub.pairing_code();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let mut sa = kiosk(a.path());
    let mut sb = kiosk(b.path());
    let cfg = config(&hub.url);
    block(clockface::sync::pair(&mut sa, &cfg, &hub.url, &code)).unwrap();
    let e = block(clockface::sync::pair(&mut sb, &cfg, &hub.url, &code)).unwrap_err();
    assert!(e.to_string().contains("already used"), "{e}");
    let e = block(clockface::sync::pair(
        &mut sb,
        &cfg,
        &hub.url,
        "2222-3333-4444",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("unknown pairing code"), "{e}");
    assert!(!sb.sync_status().unwrap().paired);
    // An expired code.
    let old = hub
        .db()
        .create_pairing_code("HQ", 1000, None, common::net::now_ms() - 10_000)
        .unwrap();
    let e = block(clockface::sync::pair(&mut sb, &cfg, &hub.url, &old)).unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    // A token that the hub does not know is "not paired", and nothing is marked synced.
    append(&mut sb, 5);
    std::fs::write(b.path().join("sync.token"), "00".repeat(32)).unwrap();
    sb.set_sync_url(&hub.url).unwrap();
    let e = round(&mut sb, &cfg).unwrap_err();
    assert!(matches!(e, SyncError::NotPaired(_)), "{e}");
    assert_eq!(sb.queued(OutboxChain::Checkins).unwrap(), 5);
}

/// Pairs a kiosk through a fault proxy and returns everything a fault test needs.
fn setup(n: usize) -> (TestHub, FaultProxy, tempfile::TempDir, Store, Config) {
    let hub = TestHub::start();
    let proxy = FaultProxy::start(hub.addr);
    let dir = tempfile::tempdir().unwrap();
    let mut store = kiosk(dir.path());
    let cfg = config(&proxy.url);
    pair(&mut store, &cfg, &hub);
    append(&mut store, n);
    (hub, proxy, dir, store, cfg)
}

#[test]
fn backend_down_for_a_long_time_loses_nothing() {
    let (hub, proxy, _dir, mut store, cfg) = setup(250);
    proxy.set_down(true);
    // Many failed rounds while check-ins keep coming.
    for i in 0..30 {
        let e = round(&mut store, &cfg).unwrap_err();
        assert!(matches!(e, SyncError::Unreachable(_)), "round {i}: {e}");
        store.record_sync_round(0, Some(&e.to_string())).unwrap();
        append(&mut store, 10);
    }
    let status = store.sync_status().unwrap();
    assert_eq!(status.queued_checkins, 550);
    assert!(
        status.last_error.contains("unreachable"),
        "{}",
        status.last_error
    );
    assert_eq!(hub.db().count(Chain::Checkins).unwrap(), 0);
    proxy.set_down(false);
    let rep = round(&mut store, &cfg).unwrap();
    assert_eq!(rep.checkins, 550);
    assert_hub_has_exactly(&hub, &store);
}

#[test]
fn server_errors_and_retry_after_leave_the_queue_intact() {
    let (hub, proxy, _dir, mut store, cfg) = setup(300);
    proxy.push([Fault::Status(503, Some("7"))]);
    let e = round(&mut store, &cfg).unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)), "{e}");
    assert!(e.to_string().contains("503"), "{e}");
    // A Retry-After beyond the configured cap is capped.
    proxy.push([Fault::Status(429, Some("999999"))]);
    let e = round(&mut store, &cfg).unwrap_err();
    assert_eq!(
        e.retry_after(),
        Some(Duration::from_secs(cfg.sync.backoff_max_seconds as u64))
    );
    // A 500 in the middle of the upload: the first batch is in, the rest waits.
    proxy.push_for("/v1/checkins", [Fault::Pass, Fault::Status(500, None)]);
    let e = round(&mut store, &cfg).unwrap_err();
    assert!(e.to_string().contains("500"), "{e}");
    assert_eq!(counts(&hub, &store), (100, 200));
    round(&mut store, &cfg).unwrap();
    assert_hub_has_exactly(&hub, &store);
}

#[test]
fn timeouts_resets_and_lost_responses_never_duplicate() {
    let (hub, proxy, dir, mut store, cfg) = setup(400);
    // The first upload's answer is delayed past the client's timeout.
    proxy.push_for(
        "/v1/checkins",
        [Fault::DelayResponse(Duration::from_secs(4))],
    );
    let e = round(&mut store, &cfg).unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    // The hub committed that batch; the kiosk does not know yet.
    assert_eq!(counts(&hub, &store), (100, 400));

    // Connection reset halfway through sending the next batch: the hub never saw it.
    proxy.push_for("/v1/checkins", [Fault::ResetMidRequest]);
    let e = round(&mut store, &cfg).unwrap_err();
    assert!(matches!(e, SyncError::Unreachable(_)), "{e}");
    assert_eq!(hub.db().count(Chain::Checkins).unwrap(), 100);

    // The answer to the second batch is lost after the hub committed it.
    proxy.push_for("/v1/checkins", [Fault::Pass, Fault::LoseResponse]);
    let e = round(&mut store, &cfg).unwrap_err();
    assert!(matches!(e, SyncError::Unreachable(_)), "{e}");
    assert_eq!(counts(&hub, &store), (200, 300));

    // A restart in between: a new store connection resumes from the store alone.
    drop(store);
    let mut store = kiosk(dir.path());
    let rep = round(&mut store, &cfg).unwrap();
    assert_eq!(rep.checkins, 300);
    assert_hub_has_exactly(&hub, &store);
}

#[test]
fn duplicated_reordered_missing_and_foreign_acks_are_handled() {
    let (hub, proxy, _dir, mut store, cfg) = setup(100);
    // Every ack twice, in reverse order, plus one for a seq never sent.
    proxy.push_for(
        "/v1/checkins",
        [Fault::Rewrite(|mut v| {
            let acks = v["acks"].as_array().unwrap().clone();
            let mut out: Vec<_> = acks.iter().rev().cloned().collect();
            out.extend(acks.iter().cloned());
            let mut bogus = acks[0].clone();
            bogus["seq"] = serde_json::json!(999_999);
            out.push(bogus);
            v["acks"] = serde_json::Value::Array(out);
            v
        })],
    );
    let rep = round(&mut store, &cfg).unwrap();
    assert_eq!(rep.checkins, 100);
    assert_hub_has_exactly(&hub, &store);

    // Half of the acks go missing: only those acknowledged are marked; the rest go again.
    append(&mut store, 100);
    proxy.push_for(
        "/v1/checkins",
        [Fault::Rewrite(|mut v| {
            let acks = v["acks"].as_array().unwrap();
            v["acks"] = serde_json::Value::Array(acks.iter().step_by(2).cloned().collect());
            v
        })],
    );
    let rep = round(&mut store, &cfg).unwrap();
    // The 50 unacknowledged are sent again in the same round (as the outbox is drained).
    assert_eq!(rep.checkins, 100);
    assert_hub_has_exactly(&hub, &store);

    // Acks whose hash is not ours mark nothing, and the round says the backend broke protocol.
    append(&mut store, 10);
    proxy.push_for(
        "/v1/checkins",
        [Fault::Rewrite(|mut v| {
            for a in v["acks"].as_array_mut().unwrap() {
                a["hash"] = serde_json::json!("ab".repeat(32));
            }
            v
        })],
    );
    let e = round(&mut store, &cfg).unwrap_err();
    assert!(matches!(e, SyncError::Protocol(_)), "{e}");
    assert!(e.to_string().contains("acknowledged none"), "{e}");
    assert_eq!(store.queued(OutboxChain::Checkins).unwrap(), 10);
    round(&mut store, &cfg).unwrap();
    assert_hub_has_exactly(&hub, &store);
}

#[test]
fn malformed_and_oversized_answers_are_refused_without_loss() {
    let (hub, proxy, _dir, mut store, cfg) = setup(50);
    proxy.push([Fault::Malformed]);
    let e = round(&mut store, &cfg).unwrap_err();
    assert!(matches!(e, SyncError::Protocol(_)), "{e}");
    assert!(e.to_string().contains("not valid JSON"), "{e}");
    proxy.push([Fault::Oversized(64 * 1024 * 1024)]);
    let e = round(&mut store, &cfg).unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
    assert_eq!(store.queued(OutboxChain::Checkins).unwrap(), 50);
    round(&mut store, &cfg).unwrap();
    assert_hub_has_exactly(&hub, &store);
}

#[test]
fn tls_is_verified_against_the_pinned_ca() {
    let dir = tempfile::tempdir().unwrap();
    let good = TestCa::new(dir.path(), "good");
    let other = TestCa::new(dir.path(), "other");
    let hub = TestHub::start_tls(&good.cert, &good.key);
    let kdir = tempfile::tempdir().unwrap();
    let mut store = kiosk(kdir.path());
    append(&mut store, 20);

    // Pinned to another CA: the handshake fails, nothing is sent.
    let mut cfg = config(&hub.url);
    cfg.sync.ca_file = other.ca.clone();
    let e = block(clockface::sync::pair(
        &mut store,
        &cfg,
        &hub.url,
        &hub.pairing_code(),
    ))
    .unwrap_err();
    assert!(matches!(e, SyncError::Tls(_)), "{e:?}");
    // Without a pin, the system roots do not know a private CA either.
    cfg.sync.ca_file = Default::default();
    let e = block(clockface::sync::pair(
        &mut store,
        &cfg,
        &hub.url,
        &hub.pairing_code(),
    ))
    .unwrap_err();
    assert!(matches!(e, SyncError::Tls(_)), "{e:?}");
    assert!(!store.sync_status().unwrap().paired);

    // Pinned to the right CA: pairing and upload work over TLS.
    cfg.sync.ca_file = good.ca.clone();
    pair(&mut store, &cfg, &hub);
    round(&mut store, &cfg).unwrap();
    assert_hub_has_exactly(&hub, &store);
    // A plain-http URL to a non-loopback host is refused before any connection.
    let e = clockface::sync::client_for(&cfg, Some("http://hub.example.com")).unwrap_err();
    assert!(e.to_string().contains("plain http"), "{e}");
}

#[test]
fn a_large_clock_skew_is_reported_and_records_keep_their_time() {
    let hub = TestHub::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut store, clock) = common::open(dir.path());
    // The kiosk believes it is 2001.
    clock.set_wall_ms(978_307_200_000);
    append(&mut store, 10);
    let cfg = config(&hub.url);
    pair(&mut store, &cfg, &hub);
    let rep = round(&mut store, &cfg).unwrap();
    assert!(
        rep.clock_skew_ms > 20 * 365 * 86_400_000,
        "{}",
        rep.clock_skew_ms
    );
    assert_eq!(
        store.sync_status().unwrap().clock_skew_ms,
        Some(rep.clock_skew_ms)
    );
    assert_hub_has_exactly(&hub, &store);
    let dev = store.identity().device_id;
    let skew = hub.db().clock_skew_ms(&dev).unwrap().unwrap();
    assert!(skew > 20 * 365 * 86_400_000);
    // The hub keeps each record's own (wrong) time rather than rewriting signed data.
    let mut csv = Vec::new();
    hub.db()
        .timesheet(978_000_000_000, 979_000_000_000, &mut csv)
        .unwrap();
    assert_eq!(String::from_utf8(csv).unwrap().lines().count(), 1 + 8);
}

#[test]
fn a_forked_chain_is_refused_reported_and_kept_out_of_the_outbox() {
    let hub = TestHub::start();
    let a = tempfile::tempdir().unwrap();
    let mut sa = kiosk(a.path());
    append(&mut sa, 10);
    let cfg = config(&hub.url);
    pair(&mut sa, &cfg, &hub);
    round(&mut sa, &cfg).unwrap();
    // A copy of the SD card (same keys, same chain so far) diverges from seq 11 on.
    let b = tempfile::tempdir().unwrap();
    drop(sa);
    for f in std::fs::read_dir(a.path()).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), b.path().join(f.file_name())).unwrap();
    }
    let mut sa = kiosk(a.path());
    let mut sb = kiosk(b.path());
    append(&mut sa, 5);
    sb.append_many(&[common::checkin("X1"), common::checkin("X2")])
        .unwrap();
    round(&mut sa, &cfg).unwrap();
    let rep = round(&mut sb, &cfg).unwrap();
    assert_eq!(rep.refused, 2);
    let st = sb.sync_status().unwrap();
    assert_eq!((st.queued_checkins, st.rejected), (0, 2));
    // The refused records are still in the copy's store, and still verify.
    assert_eq!(sb.stats().unwrap().head_seq, 12);
    let reports = hub.db().chain_reports().unwrap();
    let r = reports.iter().find(|r| r.chain == "checkins").unwrap();
    assert_eq!(r.head_seq, 15);
    assert!(
        r.conflicts
            .iter()
            .any(|c| c.contains("seq 11") && c.contains("fork")),
        "{:?}",
        r.conflicts
    );
    // Tampering is a security alert, once per refused entry however often it is sent.
    let alerts = hub.db().alerts(common::net::now_ms()).unwrap();
    let forks: Vec<_> = alerts
        .iter()
        .filter(|a| a.kind == "chain_conflict")
        .collect();
    assert_eq!(forks.len(), 2, "{alerts:?}");
    assert!(
        forks.iter().any(|a| a.detail.contains("seq 11")),
        "{forks:?}"
    );
}

fn unit_vector(seed: u32, dims: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dims)
        .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 - 500.0)
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn b64(v: &[f32]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .encode(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
}

#[test]
fn roster_download_applies_changes_and_deletion_wipes_templates() {
    let hub = TestHub::start();
    let dir = tempfile::tempdir().unwrap();
    let mut store = kiosk(dir.path());
    let cfg = config(&hub.url);
    let model = cfg.vision.embedder.name();
    let dims = cfg.vision.embedder.dims();
    let (t1, t2) = (unit_vector(1, dims), unit_vector(2, dims));
    let emp = |id: &str, name: &str, badge: &str, t: &[f32], given: bool| RosterEmployee {
        id: id.into(),
        display_name: name.into(),
        active: true,
        is_admin: false,
        badges: vec![badge.into()],
        consent: Some(RosterConsent {
            given,
            text_version: "2026-01".into(),
            scope: ConsentScope::Site,
        }),
        // A withdrawal carries no templates: the hub keeps them only under a site consent.
        templates: if given {
            vec![
                RosterTemplate {
                    model: model.into(),
                    embedding: b64(t),
                },
                RosterTemplate {
                    model: "some-other-model".into(),
                    embedding: b64(&t[..16]),
                },
            ]
        } else {
            vec![]
        },
        birth_year: None,
        is_minor: None,
        sites: vec![],
    };
    hub.db()
        .import_roster(
            &[
                emp("E100", "Ada Lovelace", "04A1B2C3", &t1, true),
                emp("E200", "Grace Hopper", "04D4E5F6", &t2, true),
            ],
            false,
        )
        .unwrap();
    pair(&mut store, &cfg, &hub);
    let rep = round(&mut store, &cfg).unwrap();
    assert!(rep.roster_applied);
    assert_eq!(
        store
            .employee_by_badge(&clockface::base::badge::BadgeId::parse("04a1b2c3").unwrap())
            .unwrap()
            .unwrap()
            .display_name,
        "Ada Lovelace"
    );
    let got = store.templates("E100").unwrap();
    assert_eq!(got.len(), 1, "only this kiosk's model is kept");
    assert_eq!(got[0].vector, t1);
    assert!(store.consent("E200").unwrap().unwrap().given);
    // Unchanged roster: 304, nothing applied.
    let rep = round(&mut store, &cfg).unwrap();
    assert!(!rep.roster_applied);

    // Deleted at the backend: gone from the kiosk, templates wiped from the file and WAL.
    let sealed: Vec<Vec<u8>> = {
        let db = common::raw_db(dir.path());
        let mut st = db
            .prepare("SELECT sealed FROM templates WHERE employee_id = 'E200'")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(sealed.len(), 1);
    assert!(hub.db().delete_employee("E200").unwrap());
    // And E100 withdraws consent.
    hub.db()
        .import_roster(
            &[emp("E100", "Ada Lovelace", "04A1B2C3", &t1, false)],
            false,
        )
        .unwrap();
    let rep = round(&mut store, &cfg).unwrap();
    assert!(rep.roster_applied);
    assert!(store.employee("E200").unwrap().is_none());
    assert!(store.templates("E100").unwrap().is_empty());
    assert!(!store.consent("E100").unwrap().unwrap().given);
    let raw = common::raw_files(dir.path());
    let plain: Vec<u8> = t2.iter().flat_map(|x| x.to_le_bytes()).collect();
    for needle in sealed.iter().chain([&plain]) {
        for w in needle.chunks(16).filter(|w| w.len() == 16) {
            assert!(
                !common::contains(&raw, w),
                "template bytes survive deletion"
            );
        }
    }
    // The lifecycle events are in the signed audit log, and went to the backend.
    let actions: Vec<String> = store
        .audit_entries_for("E200")
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert!(
        actions.contains(&"employee_deleted".to_string()),
        "{actions:?}"
    );
    assert_eq!(store.queued(OutboxChain::Audit).unwrap(), 0);
}

#[test]
fn an_invalid_roster_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = kiosk(dir.path());
    let good = RosterEmployee {
        id: "E1".into(),
        display_name: "Good".into(),
        active: true,
        is_admin: false,
        badges: vec!["0A0B".into()],
        consent: None,
        templates: vec![],
        birth_year: None,
        is_minor: None,
        sites: vec![],
    };
    let mut bad = good.clone();
    bad.id = "E2".into();
    bad.templates = vec![RosterTemplate {
        model: "mobilefacenet".into(),
        embedding: "not base64!".into(),
    }];
    let roster = Roster {
        version: 1,
        employees: vec![good, bad],
        deletions: vec![],
    };
    let e = store
        .apply_roster(&roster, "\"r1\"", "mobilefacenet")
        .unwrap_err();
    assert!(e.to_string().contains("roster employee 2"), "{e}");
    assert!(store.employee("E1").unwrap().is_none());
    assert_eq!(store.roster_etag().unwrap(), None);
}

#[test]
fn policy_from_the_backend_is_validated_and_stored() {
    let hub = TestHub::start();
    let dir = tempfile::tempdir().unwrap();
    let mut store = kiosk(dir.path());
    let cfg = config(&hub.url);
    pair(&mut store, &cfg, &hub);
    let rep = round(&mut store, &cfg).unwrap();
    assert!(!rep.policy_updated, "no policy set at the hub yet");
    let mut p = cfg.policy.clone();
    p.anti_passback_minutes = 42;
    p.face_attempts = 99;
    let e = hub.db().set_policy(&p).unwrap_err();
    assert!(e.to_string().contains("policy.face_attempts"), "{e}");
    p.face_attempts = 3;
    let v = hub.db().set_policy(&p).unwrap();
    let rep = round(&mut store, &cfg).unwrap();
    assert!(rep.policy_updated);
    let doc = store.backend_policy().unwrap().unwrap();
    assert_eq!(doc.version, v);
    assert_eq!(doc.policy.anti_passback_minutes, 42);
    assert_eq!(doc.policy.version as i64, v);
    assert!(!round(&mut store, &cfg).unwrap().policy_updated);
}

#[test]
fn the_outbox_thread_pairs_from_provisioning_and_drains_after_an_outage() {
    let hub = TestHub::start();
    let proxy = FaultProxy::start(hub.addr);
    let dir = tempfile::tempdir().unwrap();
    let mut store = kiosk(dir.path());
    append(&mut store, 120);
    let mut cfg = config(&proxy.url);
    cfg.sync.pairing_code = hub.pairing_code();
    cfg.sync.interval_seconds = 1;
    cfg.sync.backoff_max_seconds = 5;
    proxy.set_down(true);
    let outbox = clockface::sync::spawn_outbox(
        common::options(dir.path()),
        cfg.clone(),
        store.clock().clone(),
        None,
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let st = store.sync_status().unwrap();
    assert!(
        !st.paired && st.last_error.contains("unreachable"),
        "{st:?}"
    );
    proxy.set_down(false);
    // Waits for the outbox to catch up (a wait for an outcome, not a speed check).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store.queued(OutboxChain::Checkins).unwrap() > 0 && std::time::Instant::now() < deadline {
        outbox.wake.notify_one();
        std::thread::sleep(Duration::from_millis(200));
    }
    append(&mut store, 7);
    outbox.wake.notify_one();
    while store.queued(OutboxChain::Checkins).unwrap() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    outbox.stop();
    assert!(store.sync_status().unwrap().paired);
    assert_hub_has_exactly(&hub, &store);
}
