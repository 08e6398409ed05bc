//! Retention and deletion, proved on the bytes on disk, with a simulated clock.

use crate::common;

use std::time::Duration;

use clockface::base::config::RetentionPolicy;
use clockface::store::record::Outcome;
use clockface::store::roster::Employee;
use common::*;

const POLICY: RetentionPolicy = RetentionPolicy {
    checkin_days: 90,
    failed_attempt_days: 30,
};
const DAY: Duration = Duration::from_secs(86_400);

fn verify(dir: &std::path::Path) -> u64 {
    let mut cfg = clockface::base::config::Config::default();
    cfg.store.data_dir = dir.to_owned();
    clockface::commands::records::verify(&cfg, false, &mut Vec::new())
        .expect("verifies")
        .chains[0]
        .head_seq
}

#[test]
fn purge_removes_only_the_expired_prefix_and_the_chain_continues() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, clock) = open(dir.path());
    // Day 0: 3 check-ins and a failed attempt; day 10: 2 more check-ins.
    for e in ["E1", "E2", "E3"] {
        store.append(&checkin(e)).unwrap();
    }
    store.append(&failed("E4", "face_mismatch")).unwrap();
    clock.advance(10 * DAY);
    store.append(&checkin("E5")).unwrap();
    store.append(&checkin("E6")).unwrap();
    // The backend acknowledged records 1-5 on day 11; record 6 is still queued.
    clock.advance(DAY);
    assert_eq!(store.mark_synced(5, clock.wall_ms_now()).unwrap(), 5);

    // Day 60: nothing has been acknowledged for 90 days yet; failed attempt #4 is old, but
    // #1-#3 before it must stay, so nothing can go.
    clock.advance(49 * DAY);
    let r = store.purge(POLICY, false).unwrap();
    assert_eq!((r.checkins, r.failed_attempts), (0, 0));

    // Day 102: #1-#5 were acknowledged 91 days ago; #6 never was and stays.
    clock.advance(42 * DAY);
    let dry = store.purge(POLICY, true).unwrap();
    assert_eq!(
        (
            dry.checkins,
            dry.failed_attempts,
            dry.anchor_seq,
            dry.dry_run
        ),
        (4, 1, 5, true)
    );
    assert!(
        store.record(1).unwrap().is_some(),
        "a dry run changes nothing"
    );
    let r = store.purge(POLICY, false).unwrap();
    assert_eq!((r.checkins, r.failed_attempts, r.anchor_seq), (4, 1, 5));
    for seq in 1..=5 {
        assert!(store.record(seq).unwrap().is_none(), "record {seq} purged");
    }
    assert_eq!(store.record(6).unwrap().unwrap().employee_id, "E6");
    // The purge is audited, the chain verifies from its anchor, and appends continue it.
    let audit = store.audit_entries_for("").unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "retention_purge" && a.detail.contains("\"up_to_seq\":5")),
        "{audit:?}"
    );
    let a = store.append(&checkin("E7")).unwrap();
    assert_eq!(a.seq, 7);
    drop(store);
    assert_eq!(verify(dir.path()), 7);
    // No byte of a purged record remains in the database or its WAL.
    let raw = raw_files(dir.path());
    assert!(
        !contains(&raw, b"face_mismatch"),
        "the purged failed attempt is gone from the files"
    );
}

#[test]
fn purging_everything_keeps_the_chain_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, clock) = open(dir.path());
    for e in ["E1", "E2"] {
        store.append(&checkin(e)).unwrap();
    }
    store.mark_synced(2, clock.wall_ms_now()).unwrap();
    clock.advance(91 * DAY);
    assert_eq!(store.purge(POLICY, false).unwrap().checkins, 2);
    assert_eq!(store.stats().unwrap().head_seq, 0);
    let a = store.append(&checkin("E3")).unwrap();
    assert_eq!(a.seq, 3, "sequence numbers never restart");
    let r3 = store.record(3).unwrap().unwrap();
    assert_ne!(
        r3.prev_hash, [0; 32],
        "linked to the purged record #2 through the anchor"
    );
    drop(store);
    assert_eq!(verify(dir.path()), 3);
    // A forged anchor no longer links to the first remaining record: verify names it.
    raw_db(dir.path())
        .execute("UPDATE chain_anchor SET hash = zeroblob(32)", [])
        .unwrap();
    let mut cfg = clockface::base::config::Config::default();
    cfg.store.data_dir = dir.path().to_owned();
    match clockface::commands::records::verify(&cfg, false, &mut Vec::new()) {
        Err(clockface::base::error::Error::ChainBroken { seq: 3, reason, .. }) => {
            assert!(reason.contains("previous-hash"), "{reason}")
        }
        other => panic!("expected record 3 to be named, got {other:?}"),
    }
}

fn sealed_blobs(dir: &std::path::Path, employee: &str) -> Vec<Vec<u8>> {
    let db = raw_db(dir);
    let mut stmt = db
        .prepare("SELECT sealed FROM templates WHERE employee_id = ?1")
        .unwrap();
    stmt.query_map([employee], |r| r.get(0))
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn enrolled(dir: &std::path::Path) -> (clockface::store::Store, Vec<f32>) {
    let (mut store, _) = open(dir);
    store
        .upsert_employee(
            "A1",
            &Employee {
                id: "E1".into(),
                display_name: "Alex".into(),
                active: true,
                is_admin: false,
            },
        )
        .unwrap();
    store.record_consent("E1", true, "v1", "A1").unwrap();
    let t: Vec<f32> = (0..192).map(|i| (i as f32 * 0.37).cos() / 10.0).collect();
    store.add_template("A1", "E1", "mobilefacenet", &t).unwrap();
    store.add_template("A1", "E1", "mobilefacenet", &t).unwrap();
    store.append(&checkin("E1")).unwrap();
    (store, t)
}

fn assert_no_template_bytes(dir: &std::path::Path, blobs: &[Vec<u8>], plain: &[f32]) {
    let raw = raw_files(dir);
    for b in blobs {
        // Any 16-byte run of the sealed blob (nonce or ciphertext) would betray it.
        for chunk in b.chunks(16).filter(|c| c.len() == 16) {
            assert!(
                !contains(&raw, chunk),
                "sealed template bytes remain on disk"
            );
        }
    }
    let plain: Vec<u8> = plain.iter().flat_map(|x| x.to_le_bytes()).collect();
    for chunk in plain.chunks(16) {
        assert!(!contains(&raw, chunk), "plaintext template bytes on disk");
    }
}

#[test]
fn deleting_an_employee_leaves_no_template_bytes_in_the_database_or_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, plain) = enrolled(dir.path());
    let blobs = sealed_blobs(dir.path(), "E1");
    assert_eq!(blobs.len(), 2);
    assert!(
        contains(&raw_files(dir.path()), &blobs[0][..16]),
        "the scan does find them before"
    );
    store.delete_employee("A1", "E1").unwrap();
    assert_no_template_bytes(dir.path(), &blobs, &plain);
    // The signed check-in record stays: the employer must keep attendance.
    assert_eq!(store.record(1).unwrap().unwrap().outcome, Outcome::Accepted);
}

#[test]
fn withdrawing_consent_leaves_no_template_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, plain) = enrolled(dir.path());
    let blobs = sealed_blobs(dir.path(), "E1");
    store.record_consent("E1", false, "v1", "A1").unwrap();
    assert_no_template_bytes(dir.path(), &blobs, &plain);
    assert!(store.templates("E1").unwrap().is_empty());
    assert!(
        store.employee("E1").unwrap().is_some(),
        "the employee stays, on badge + PIN"
    );
}

#[test]
fn purge_cli_reports_and_refuses_ambiguous_flags() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 3));
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = run(&["--data-dir", d, "purge", "--dry-run", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["checkins"], 0, "nothing acknowledged, nothing old enough");
    let (code, _, err) = run(&["--data-dir", d, "purge"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&["--data-dir", d, "purge", "--now", "--dry-run"]);
    assert_eq!(code, 2);
    let (code, out, _) = run(&["--data-dir", d, "purge", "--now"]);
    assert_eq!(code, 0);
    assert!(out.contains("purged 0 check-in(s)"), "{out}");
}

#[test]
fn export_person_holds_everything_about_them_and_nothing_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = enrolled(dir.path());
    store.add_badge("A1", "04:a1:b2:c3", "E1").unwrap();
    store.set_pin("A1", "E1", "482913").unwrap();
    store.append(&failed("E1", "face_mismatch")).unwrap();
    store.append(&checkin("E2")).unwrap();
    drop(store);
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = run(&["--data-dir", d, "export-person", "E1"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["employee"]["display_name"], "Alex");
    assert_eq!(v["badges"], serde_json::json!(["04A1B2C3"]));
    assert_eq!(v["pin_set"], true);
    assert_eq!(v["consents"][0]["given"], true);
    assert_eq!(v["templates"].as_array().unwrap().len(), 2);
    assert_eq!(v["templates"][0]["dims"], 192);
    let records = v["records"].as_array().unwrap();
    assert_eq!(
        records.len(),
        2,
        "their check-in and their failed attempt, not E2's"
    );
    assert!(records.iter().all(|r| r["employee_id"] == "E1"));
    let actions: Vec<&str> = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for want in [
        "employee_upserted",
        "consent_given",
        "template_enrolled",
        "badge_assigned",
        "pin_set",
    ] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    // Never the template bytes, the PIN or its hash.
    assert!(
        !out.contains("sealed") && !out.contains("argon2") && !out.contains("482913"),
        "{out}"
    );
    // The export itself is audited.
    let (store, _) = open(dir.path());
    assert!(
        store
            .audit_entries_for("E1")
            .unwrap()
            .iter()
            .any(|a| a.action == "subject_export")
    );
    drop(store);
    let (code, _, err) = run(&["--data-dir", d, "export-person", "E404"]);
    assert_eq!(code, 2);
    assert!(err.contains("nothing is held about \"E404\""), "{err}");
}

#[test]
fn pin_lockout_grows_and_survives_a_restart() {
    use clockface::store::roster::PinCheck;
    let dir = tempfile::tempdir().unwrap();
    let (mut store, clock) = open(dir.path());
    store
        .upsert_employee(
            "A1",
            &Employee {
                id: "A9".into(),
                display_name: "Admin".into(),
                active: true,
                is_admin: true,
            },
        )
        .unwrap();
    store.set_pin("A1", "A9", "739214").unwrap();
    for left in (1..=4).rev() {
        assert_eq!(
            store.check_pin("A9", "000000").unwrap(),
            PinCheck::Wrong {
                before_lockout: left
            }
        );
    }
    let t0 = clock.wall_ms_now();
    assert_eq!(
        store.check_pin("A9", "000000").unwrap(),
        PinCheck::LockedOut {
            until_ms: t0 + 30_000
        }
    );
    // While locked out even the right PIN is refused (it is not checked at all).
    assert!(matches!(
        store.check_pin("A9", "739214").unwrap(),
        PinCheck::LockedOut { .. }
    ));
    drop(store);

    // A restart does not reset it.
    let clock2 = std::sync::Arc::new(clockface::base::clock::SimClock::new(t0 + 10_000));
    let mut store = clockface::store::Store::open(&options(dir.path()), clock2.clone()).unwrap();
    assert!(matches!(
        store.check_pin("A9", "739214").unwrap(),
        PinCheck::LockedOut { .. }
    ));
    // After it expires, another failure locks for twice as long.
    clock2.advance(Duration::from_secs(25));
    let t1 = clock2.wall_ms_now();
    assert_eq!(
        store.check_pin("A9", "111111").unwrap(),
        PinCheck::LockedOut {
            until_ms: t1 + 60_000
        }
    );
    clock2.advance(Duration::from_secs(61));
    assert_eq!(store.check_pin("A9", "739214").unwrap(), PinCheck::Ok);
    assert_eq!(
        store.check_pin("A9", "000000").unwrap(),
        PinCheck::Wrong { before_lockout: 4 },
        "success clears the count"
    );
    let locks = store
        .audit_entries_for("A9")
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "pin_locked_out")
        .count();
    assert_eq!(locks, 2);
    // Hashes are argon2id.
    drop(store);
    let hash: String = raw_db(dir.path())
        .query_row("SELECT pin_hash FROM employees WHERE id = 'A9'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(hash.starts_with("$argon2id$"));
}

#[test]
fn departed_employees_checkins_are_pseudonymised_once_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    for id in ["LEAVER-7731", "STAYER-1"] {
        store
            .upsert_employee(
                "A1",
                &Employee {
                    id: id.into(),
                    display_name: "Someone".into(),
                    active: true,
                    is_admin: false,
                },
            )
            .unwrap();
    }
    for _ in 0..3 {
        store.append(&checkin("LEAVER-7731")).unwrap();
        store.append(&checkin("STAYER-1")).unwrap();
    }
    // The backend acknowledged the first four; the leaver's last record (#5) is still queued.
    store
        .mark_acknowledged(
            clockface::store::sync::OutboxChain::Checkins,
            &[1, 2, 3, 4],
            T0,
        )
        .unwrap();
    store.append(&checkin("STAYER-1")).unwrap();
    // Nobody has left yet: nothing changes.
    assert_eq!(store.pseudonymise_departed().unwrap(), 0);
    store.delete_employee("A1", "LEAVER-7731").unwrap();
    assert_eq!(store.pseudonymise_departed().unwrap(), 2, "#1 and #3");
    assert_eq!(store.pseudonymise_departed().unwrap(), 0, "idempotent");
    drop(store);

    let db = raw_db(dir.path());
    let rows: Vec<(i64, String, usize)> = db
        .prepare("SELECT seq, employee_id, length(bytes) FROM records ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let pseud = &rows[0].1;
    assert!(pseud.starts_with("p:") && pseud.len() == 18, "{pseud}");
    assert_eq!(&rows[2].1, pseud, "one person, one pseudonym");
    assert_eq!(rows[0].2, 0);
    assert_eq!(rows[4].1, "LEAVER-7731", "not yet acknowledged: kept whole");
    assert_eq!(rows[1].1, "STAYER-1");
    drop(db);
    // The chain still verifies through the pseudonymised records.
    assert_eq!(verify(dir.path()), 7);
    // The id is gone from the acknowledged records' bytes (only #5, unacknowledged, and the
    // audit log, which must say who was deleted, still name them).
    let raw = raw_db(dir.path());
    let whole: i64 = raw
        .query_row(
            "SELECT count(*) FROM records WHERE instr(bytes, CAST('LEAVER-7731' AS BLOB)) > 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(whole, 1);
    // Exports skip what is no longer there, and say so by count.
    let mut cfg = clockface::base::config::Config::default();
    cfg.store.data_dir = dir.path().to_owned();
    let mut csv = Vec::new();
    let s = clockface::store::Store::open(
        &options(dir.path()),
        std::sync::Arc::new(clockface::base::clock::SimClock::new(T0)),
    )
    .unwrap();
    let n = s
        .export(
            None,
            None,
            clockface::store::export::ExportFormat::Csv,
            &clockface::base::zone::SiteZone::default(),
            &mut csv,
            &|_| {},
        )
        .unwrap();
    assert_eq!(n, 5);
    // Altering a kept hash breaks the chain at the next record.
    drop(s);
    raw.execute(
        "UPDATE records SET redacted_hash = zeroblob(32) WHERE seq = 1",
        [],
    )
    .unwrap();
    let e = clockface::commands::records::verify(&cfg, false, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("record 2"), "{e}");
    // A record pseudonymised before the backend acknowledged it is refused by verify.
    raw.execute(
        "UPDATE records SET redacted_hash = zeroblob(32), synced_at_ms = NULL WHERE seq = 1",
        [],
    )
    .unwrap();
    let e = clockface::commands::records::verify(&cfg, false, &mut Vec::new()).unwrap_err();
    assert!(
        e.to_string().contains("before the backend acknowledged"),
        "{e}"
    );
}

#[test]
fn admin_pin_entry_matches_any_admin_and_locks_as_a_whole() {
    use clockface::store::roster::{AdminPinCheck, PinCheck};
    let dir = tempfile::tempdir().unwrap();
    let (mut store, clock) = open(dir.path());
    assert_eq!(
        store.check_admin_pin("1234").unwrap(),
        AdminPinCheck::NoAdminPin
    );
    for (id, admin, pin) in [
        ("A1", true, "739214"),
        ("A2", true, "551208"),
        ("E1", false, "111111"),
    ] {
        store
            .upsert_employee(
                "A1",
                &Employee {
                    id: id.into(),
                    display_name: "Someone".into(),
                    active: true,
                    is_admin: admin,
                },
            )
            .unwrap();
        store.set_pin("A1", id, pin).unwrap();
    }
    // An employee's PIN does not open admin mode.
    assert_eq!(
        store.check_admin_pin("111111").unwrap(),
        AdminPinCheck::Wrong
    );
    // A2's PIN opens it as A2, and does not count as a failure against A1.
    assert_eq!(
        store.check_admin_pin("551208").unwrap(),
        AdminPinCheck::Ok("A2".into())
    );
    assert_eq!(
        store.check_pin("A1", "000000").unwrap(),
        PinCheck::Wrong { before_lockout: 3 },
        "only the employee-PIN guess above counted against A1"
    );
    // Guessing locks admin entry as a whole; the right PIN is then refused too.
    let mut last = AdminPinCheck::Wrong;
    for _ in 0..5 {
        last = store.check_admin_pin("999999").unwrap();
    }
    let t0 = clock.wall_ms_now();
    assert!(
        matches!(last, AdminPinCheck::LockedOut { until_ms } if until_ms > t0),
        "{last:?}"
    );
    assert!(matches!(
        store.check_admin_pin("739214").unwrap(),
        AdminPinCheck::LockedOut { .. }
    ));
    // After the lockout the right PIN works.
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        store.check_admin_pin("739214").unwrap(),
        AdminPinCheck::Ok("A1".into())
    );
}
