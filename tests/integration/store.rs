//! Store behaviour seen from outside: migrations, export, device show, the demo.

use crate::common;

use std::sync::Arc;

use clockface::base::clock::SimClock;
use clockface::store::migrations::{self, MIGRATIONS};
use clockface::store::{DB_FILE, Store};
use common::*;

#[test]
fn pragmas_are_set_for_durability_and_privacy() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 1));
    let db = raw_db(dir.path());
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(
        migrations::current_version(&db).unwrap(),
        migrations::latest_version()
    );
    // synchronous, secure_delete and foreign_keys are per connection: check the store's own.
    let (store, _) = open(dir.path());
    let get = |p: &str| -> i64 { store_conn_pragma(&store, p) };
    assert_eq!(get("synchronous"), 2, "FULL");
    assert_eq!(get("secure_delete"), 1);
    assert_eq!(get("foreign_keys"), 1);
}

fn store_conn_pragma(store: &Store, pragma: &str) -> i64 {
    store.pragma(pragma).unwrap()
}

#[test]
fn migrates_from_every_earlier_schema_version() {
    for start in std::iter::once(0).chain(MIGRATIONS.iter().map(|m| m.version)) {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
            migrations::migrate_to(&mut conn, &dir.path().join(DB_FILE), start).unwrap();
            assert_eq!(migrations::current_version(&conn).unwrap(), start);
        }
        let (mut store, _) = open(dir.path());
        store.append(&checkin("E1")).unwrap();
        assert_eq!(
            store.stats().unwrap().schema_version,
            migrations::latest_version()
        );
        drop(store);
        let (code, _, err) = run(&["--data-dir", dir.path().to_str().unwrap(), "verify"]);
        assert_eq!(code, 0, "from version {start}: {err}");
    }
}

#[test]
fn export_csv_and_jsonl_respect_the_range() {
    let dir = tempfile::tempdir().unwrap();
    // 6 records at T0 + 1..6 minutes = 08:41 .. 08:46 UTC.
    drop(store_with(dir.path(), 6));
    let d = dir.path().to_str().unwrap();
    let (code, csv, err) = run(&[
        "--data-dir",
        d,
        "export",
        "--format",
        "csv",
        "--since",
        "2026-11-30T08:42:00Z",
        "--until",
        "2026-11-30T08:45:00Z",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("seq,uuid,device_id,employee_id,outcome"),
        "{csv}"
    );
    assert_eq!(lines.len(), 4, "header + 08:42, 08:43, 08:44:\n{csv}");
    assert!(lines[1].starts_with("2,") && lines[3].starts_with("4,"));
    assert!(
        lines[3].contains(",rejected,") && lines[3].contains("face_mismatch"),
        "{csv}"
    );

    let out = dir.path().join("out.jsonl");
    let (code, _, err) = run(&[
        "--data-dir",
        d,
        "export",
        "--format",
        "jsonl",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0]["employee_id"], "E0");
    // Local time (the system's zone here) with its offset, and the same instant in UTC.
    assert_eq!(rows[0]["time_utc"], "2026-11-30T08:41:00.000Z");
    let local = chrono::DateTime::parse_from_rfc3339(rows[0]["time"].as_str().unwrap()).unwrap();
    assert_eq!(local.timestamp_millis(), 1_796_028_060_000);
    assert_eq!(rows[0]["punch"], "in");
    assert_eq!(rows[0]["method"], "badge_face");
    assert_eq!(rows[5]["seq"], 6);

    let (code, csv, _) = run(&["--data-dir", d, "export", "--since", "2030-01-01"]);
    assert_eq!(code, 0);
    assert_eq!(csv.lines().count(), 1, "header only: {csv}");
}

#[test]
fn device_show_reports_identity_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 8);
    let id = store.identity().clone();
    drop(store);
    let (code, out, err) = run(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "device",
        "show",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["device_id"], id.device_id.to_string());
    assert_eq!(v["public_key"], hex::encode(id.public_key.as_bytes()));
    assert_eq!(v["store"]["checkins"], 6);
    assert_eq!(v["store"]["failed_attempts"], 2);
    assert_eq!(v["store"]["unsynced"], 8);
    assert_eq!(v["store"]["head_seq"], 8);
    let (code, text, _) = run(&["--data-dir", dir.path().to_str().unwrap(), "device", "show"]);
    assert_eq!(code, 0);
    assert!(
        text.contains(&id.device_id.to_string()) && text.contains("6 accepted, 2 failed"),
        "{text}"
    );
}

#[test]
fn records_carry_clock_state_and_boot_identity() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SimClock::new(T0));
    let mut store = Store::open(&options(dir.path()), clock.clone()).unwrap();
    store.append(&checkin("E1")).unwrap();
    clock.set_synchronised(false);
    clock.reboot([0xab; 16]);
    clock.set_wall_ms(T0 - 3_600_000); // RTC an hour behind after reboot
    store.append(&checkin("E1")).unwrap();
    let a = store.record(1).unwrap().unwrap();
    let b = store.record(2).unwrap().unwrap();
    assert!(a.clock_synced && !b.clock_synced);
    assert_ne!(a.boot_id, b.boot_id);
    assert_eq!(b.boot_id, [0xab; 16]);
    assert!(
        b.wall_ms < a.wall_ms,
        "wall time may go back; the chain order still holds"
    );
    assert_eq!(b.uuid.get_version_num(), 7);
}
