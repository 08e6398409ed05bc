//! Chain and signature verification, and tamper detection on the stored records.

use crate::common;

use clockface::base::config::Config;
use clockface::base::error::Error;
use clockface::commands::records;
use clockface::store::record::Record;
use common::*;

fn cfg(dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.store.data_dir = dir.to_owned();
    c
}

fn verify_err(dir: &std::path::Path) -> (&'static str, u64, String) {
    match records::verify(&cfg(dir), false, &mut Vec::new()) {
        Err(Error::ChainBroken { chain, seq, reason }) => (chain, seq, reason),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

fn get_bytes(dir: &std::path::Path, table: &str, seq: i64) -> Vec<u8> {
    raw_db(dir)
        .query_row(
            &format!("SELECT bytes FROM {table} WHERE seq = ?1"),
            [seq],
            |r| r.get(0),
        )
        .unwrap()
}

fn set_bytes(dir: &std::path::Path, table: &str, seq: i64, bytes: &[u8]) {
    raw_db(dir)
        .execute(
            &format!("UPDATE {table} SET bytes = ?2 WHERE seq = ?1"),
            rusqlite::params![seq, bytes],
        )
        .unwrap();
}

#[test]
fn intact_chain_verifies_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 6);
    let mut prev = [0u8; 32];
    for seq in 1..=6 {
        let r = store.record(seq).unwrap().unwrap();
        assert_eq!(r.seq, seq);
        assert_eq!(r.prev_hash, prev, "record {seq} links to its predecessor");
        assert_eq!(r.device_id, store.identity().device_id);
        assert_eq!(r.policy_version, 3);
        assert_eq!(r.wall_ms, T0 + seq as i64 * 60_000);
        prev = clockface::store::entry::entry_hash(&r.to_bytes());
    }
    // A failed attempt carries its reason and no match score.
    let f = store.record(4).unwrap().unwrap();
    assert_eq!(f.reason, "face_mismatch");
    assert_eq!(f.match_score, None);
    drop(store);
    let report = records::verify(&cfg(dir.path()), false, &mut Vec::new()).unwrap();
    assert_eq!(report.chains[0].entries, 6);
    assert_eq!(report.chains[0].head_hash, hex::encode(prev));
}

#[test]
fn changing_any_byte_of_a_record_is_detected_and_named() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 5));
    let original = get_bytes(dir.path(), "records", 3);
    for i in 0..original.len() {
        let mut bad = original.clone();
        bad[i] ^= 0x01;
        set_bytes(dir.path(), "records", 3, &bad);
        let (chain, seq, reason) = verify_err(dir.path());
        assert_eq!((chain, seq), ("check-in", 3), "flip at byte {i}: {reason}");
    }
    set_bytes(dir.path(), "records", 3, &original);
    records::verify(&cfg(dir.path()), false, &mut Vec::new()).expect("restored chain verifies");
}

#[test]
fn changing_a_query_column_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 4));
    raw_db(dir.path())
        .execute("UPDATE records SET employee_id = 'E999' WHERE seq = 2", [])
        .unwrap();
    let (_, seq, reason) = verify_err(dir.path());
    assert_eq!(seq, 2);
    assert!(reason.contains("columns differ"), "{reason}");
    raw_db(dir.path())
        .execute(
            "UPDATE records SET employee_id = 'E1', wall_ms = wall_ms + 3600000 WHERE seq = 2",
            [],
        )
        .unwrap();
    let (_, seq, reason) = verify_err(dir.path());
    assert_eq!(seq, 2);
    assert!(reason.contains("time column"), "{reason}");
}

#[test]
fn deleting_a_record_is_detected_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 6));
    raw_db(dir.path())
        .execute("DELETE FROM records WHERE seq = 3", [])
        .unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, _, err) = run(&["--data-dir", d, "verify"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("check-in record 4"), "{err}");
    assert!(err.contains("3 is missing"), "{err}");
}

#[test]
fn swapping_two_records_is_detected_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 6));
    let db = raw_db(dir.path());
    // Swap the whole content of rows 2 and 5, keeping their positions.
    db.execute_batch(
        "CREATE TEMP TABLE t AS SELECT * FROM records WHERE seq IN (2, 5);
         DELETE FROM records WHERE seq IN (2, 5);
         INSERT INTO records SELECT 7 - seq, uuid, wall_ms, employee_id, outcome, bytes, synced_at_ms, sync_rejected, redacted_hash FROM t;",
    )
    .unwrap();
    drop(db);
    let r2 = Record::decode(&get_bytes(dir.path(), "records", 2)).unwrap();
    assert_eq!(r2.seq, 5, "row 2 now holds record 5");
    let d = dir.path().to_str().unwrap();
    let (code, _, err) = run(&["--data-dir", d, "verify"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("check-in record 2"), "{err}");
    assert!(err.contains("signed as number 5"), "{err}");
}

#[test]
fn a_record_signed_by_another_key_is_rejected() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    drop(store_with(a.path(), 3));
    drop(store_with(b.path(), 3));
    // Record 2 from another kiosk: right shape, wrong device and key.
    set_bytes(a.path(), "records", 2, &get_bytes(b.path(), "records", 2));
    let (_, seq, reason) = verify_err(a.path());
    assert_eq!(seq, 2);
    assert!(reason.contains("made by device"), "{reason}");
}

#[test]
fn audit_chain_tampering_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    for i in 0..4 {
        store
            .audit(&clockface::store::audit::NewAudit::new(
                "A1",
                "setting_changed",
                &format!("k{i}"),
            ))
            .unwrap();
    }
    drop(store);
    let mut b = get_bytes(dir.path(), "audit", 2);
    let n = b.len();
    b[n - 70] ^= 0x20; // inside the previous-hash field
    set_bytes(dir.path(), "audit", 2, &b);
    let (chain, seq, _) = verify_err(dir.path());
    assert_eq!((chain, seq), ("audit", 2));
}

#[test]
fn verify_works_without_the_private_key() {
    // An operator verifying a copied store needs only what the store records.
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 3));
    std::fs::remove_file(dir.path().join("device.key")).unwrap();
    std::fs::remove_file(dir.path().join("data.key")).unwrap();
    let report = records::verify(&cfg(dir.path()), false, &mut Vec::new()).unwrap();
    assert_eq!(report.chains[0].entries, 3);
}
