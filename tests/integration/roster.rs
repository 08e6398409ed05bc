//! Roster, consent and sealed templates: encryption at rest, consent gating, deletion.

use crate::common;

use clockface::store::roster::Employee;
use common::*;

fn employee(id: &str) -> Employee {
    Employee {
        id: id.into(),
        display_name: format!("Person {id}"),
        active: true,
        is_admin: false,
    }
}

fn template(seed: f32) -> Vec<f32> {
    (0..192)
        .map(|i| ((i as f32 + seed) * 0.731).sin())
        .collect()
}

#[test]
fn templates_are_sealed_at_rest_and_open_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    store.upsert_employee("A1", &employee("E1")).unwrap();
    store.record_consent("E1", true, "v1", "A1").unwrap();
    let t = template(1.0);
    store.add_template("A1", "E1", "mobilefacenet", &t).unwrap();
    let back = store.templates("E1").unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].vector, t);
    assert_eq!(back[0].model, "mobilefacenet");
    // No run of 8 plaintext template bytes appears anywhere in the files on disk.
    let plain: Vec<u8> = t.iter().flat_map(|x| x.to_le_bytes()).collect();
    let raw = raw_files(dir.path());
    for chunk in plain.chunks(8) {
        assert!(
            !contains(&raw, chunk),
            "plaintext template bytes found on disk"
        );
    }
}

#[test]
fn no_template_without_consent_and_declining_wipes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    store.upsert_employee("A1", &employee("E1")).unwrap();
    let e = store
        .add_template("A1", "E1", "m", &template(2.0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("has not given consent"), "{e}");
    store.record_consent("E1", false, "v1", "A1").unwrap();
    assert!(
        store.add_template("A1", "E1", "m", &template(2.0)).is_err(),
        "declined: still refused"
    );
    store.record_consent("E1", true, "v2", "A1").unwrap();
    store.add_template("A1", "E1", "m", &template(2.0)).unwrap();
    store.add_template("A1", "E1", "m", &template(3.0)).unwrap();
    assert_eq!(store.templates("E1").unwrap().len(), 2);
    // Withdrawal wipes every template at once.
    store.record_consent("E1", false, "v2", "A1").unwrap();
    assert!(store.templates("E1").unwrap().is_empty());
    let c = store.consent("E1").unwrap().unwrap();
    assert!(!c.given);
    assert_eq!((c.text_version.as_str(), c.witness.as_str()), ("v2", "A1"));
    // Each lifecycle event is in the signed audit log.
    let actions: Vec<String> = store
        .audit_entries_for("E1")
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions,
        [
            "employee_upserted",
            "consent_declined",
            "consent_given",
            "template_enrolled",
            "template_enrolled",
            "consent_declined"
        ]
    );
}

#[test]
fn deleting_an_employee_wipes_templates_badges_and_keeps_records() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    store.upsert_employee("A1", &employee("E1")).unwrap();
    store.add_badge("A1", "04:aa:bb", "E1").unwrap();
    store.record_consent("E1", true, "v1", "A1").unwrap();
    store.add_template("A1", "E1", "m", &template(4.0)).unwrap();
    store.append(&checkin("E1")).unwrap();
    assert_eq!(
        store
            .employee_by_badge(&clockface::base::badge::BadgeId::parse("04AABB").unwrap())
            .unwrap()
            .unwrap()
            .id,
        "E1"
    );
    assert!(store.delete_employee("A1", "E1").unwrap());
    assert!(store.employee("E1").unwrap().is_none());
    assert!(
        store
            .employee_by_badge(&clockface::base::badge::BadgeId::parse("04AABB").unwrap())
            .unwrap()
            .is_none()
    );
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.templates, stats.employees, stats.checkins),
        (0, 0, 1)
    );
    assert!(store.record(1).unwrap().is_some(), "signed history is kept");
}

#[test]
fn pins_are_hashed_with_argon2id() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    store.upsert_employee("A1", &employee("E1")).unwrap();
    assert!(!store.verify_pin("E1", "1234").unwrap(), "no PIN set yet");
    assert!(store.set_pin("A1", "E1", "12a4").is_err());
    store.set_pin("A1", "E1", "482913").unwrap();
    assert!(store.verify_pin("E1", "482913").unwrap());
    assert!(!store.verify_pin("E1", "482914").unwrap());
    drop(store);
    let hash: String = raw_db(dir.path())
        .query_row("SELECT pin_hash FROM employees", [], |r| r.get(0))
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("482913"));
}

#[test]
fn a_template_moved_to_another_employee_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    for id in ["E1", "E2"] {
        store.upsert_employee("A1", &employee(id)).unwrap();
        store.record_consent(id, true, "v1", "A1").unwrap();
    }
    store.add_template("A1", "E1", "m", &template(5.0)).unwrap();
    drop(store);
    // An attacker with write access reassigns E1's template to E2.
    raw_db(dir.path())
        .execute("UPDATE templates SET employee_id = 'E2'", [])
        .unwrap();
    let (store, _) = open(dir.path());
    let e = store.templates("E2").unwrap_err().to_string();
    assert!(e.contains("authentication failed"), "{e}");
}
