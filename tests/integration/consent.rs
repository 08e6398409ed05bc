//! Consent that follows the person (issue 18): a minor's guardian consent, re-consent when the
//! notice changes, enrol once for every door of the site with its withdrawal everywhere, a
//! minimised HR import, and the data region a kiosk was provisioned for.

use crate::common;

use std::path::Path;

use clockface::base::config::{Config, PolicyConfig};
use clockface::base::protocol::ConsentScope;
use clockface::kiosk::events::{AdminCmd, Effect, Event, NoticeDue, Now, Person, Screen};
use clockface::kiosk::machine::Machine;
use clockface::store::Store;
use clockface::store::consent::{Age, GuardianMethod, NewGuardianConsent};
use clockface::store::roster::Employee;
use clockface::sync::Syncer;
use common::net::{TestHub, block, now_ms};

const THRESHOLDS: clockface::kiosk::events::Thresholds = clockface::kiosk::events::Thresholds {
    verify: 0.5,
    identify: 0.6,
    liveness: 0.2,
    dtn: 0.2,
    liveness_frames: 3,
};

fn at(secs: u64) -> Now {
    Now {
        mono_ms: secs * 1000,
        minute_of_day: 9 * 60,
    }
}

fn person(id: &str) -> Person {
    Person {
        id: id.into(),
        name: format!("Name {id}"),
        is_admin: false,
        active: true,
        face_enrolled: true,
        has_pin: true,
        notice: None,
        guardian_required: false,
    }
}

fn employee(store: &mut Store, id: &str, admin: bool) {
    store
        .upsert_employee(
            "cli",
            &Employee {
                id: id.into(),
                display_name: format!("Person {id}"),
                active: true,
                is_admin: admin,
            },
        )
        .unwrap();
}

fn unit(seed: usize, dims: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dims)
        .map(|i| (((i + 1) * (seed + 3)) % 17) as f32 - 8.0)
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn guardian() -> NewGuardianConsent {
    NewGuardianConsent {
        guardian: "Mei Chen".into(),
        relation: "mother".into(),
        method: GuardianMethod::Paper,
        reference: "HR-2026-117".into(),
        given_ms: common::T0 - 86_400_000,
    }
}

#[test]
fn a_minor_needs_a_recorded_guardian_consent_before_face_enrolment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = common::open(dir.path());
    employee(&mut store, "A1", true);
    employee(&mut store, "M1", false);
    // Born 2014: 11 or 12 in 2026, under 14.
    store
        .set_age(
            "cli",
            "M1",
            Age {
                birth_year: Some(2014),
                is_minor: None,
            },
        )
        .unwrap();
    assert!(store.is_minor("M1").unwrap());

    // Without it, neither consent nor a template can be stored, whichever path asks.
    let err = store
        .record_consent("M1", true, "2026-01", "A1")
        .unwrap_err();
    assert!(err.to_string().contains("minor"), "{err}");
    assert!(store.consent("M1").unwrap().is_none());

    // Each missing field is named, and nothing is half-stored.
    for (field, g) in [
        (
            "guardian",
            NewGuardianConsent {
                guardian: " ".into(),
                ..guardian()
            },
        ),
        (
            "relation",
            NewGuardianConsent {
                relation: String::new(),
                ..guardian()
            },
        ),
        (
            "reference",
            NewGuardianConsent {
                reference: String::new(),
                ..guardian()
            },
        ),
    ] {
        let err = store.record_guardian_consent("A1", "M1", &g).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    let err = store
        .record_guardian_consent("M1", "M1", &guardian())
        .unwrap_err();
    assert!(err.to_string().contains("not an active admin"), "{err}");
    assert!(store.guardian_consents("M1").unwrap().is_empty());

    // With it, enrolment goes through and the subject export shows the record.
    store
        .record_guardian_consent("A1", "M1", &guardian())
        .unwrap();
    store.record_consent("M1", true, "2026-01", "A1").unwrap();
    store
        .add_template("A1", "M1", "sface", &unit(1, 8))
        .unwrap();
    let export = serde_json::to_value(store.export_person("cli", "M1").unwrap()).unwrap();
    assert_eq!(export["minor"], true);
    assert_eq!(export["age"]["birth_year"], 2014);
    let g = &export["guardian_consents"][0];
    assert_eq!(
        (
            &g["guardian"],
            &g["relation"],
            &g["method"],
            &g["reference"],
            &g["witness"]
        ),
        (
            &"Mei Chen".into(),
            &"mother".into(),
            &"paper".into(),
            &"HR-2026-117".into(),
            &"A1".into()
        )
    );
    assert!(g["given_at"].as_str().unwrap().starts_with("2026-11-29"));

    // The backend's flag wins over the year: an adult flag makes the year irrelevant.
    employee(&mut store, "M2", false);
    store
        .set_age(
            "cli",
            "M2",
            Age {
                birth_year: Some(2012),
                is_minor: Some(false),
            },
        )
        .unwrap();
    assert!(!store.is_minor("M2").unwrap());
    // Born 2012, in 2026: perhaps still 13, so a minor under 14.
    assert!(
        Age {
            birth_year: Some(2012),
            is_minor: None
        }
        .is_minor(14, 2026)
    );
    assert!(
        !Age {
            birth_year: Some(2011),
            is_minor: None
        }
        .is_minor(14, 2026)
    );
    let err = store
        .set_age(
            "cli",
            "M2",
            Age {
                birth_year: Some(2090),
                is_minor: None,
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("birth year"), "{err}");
}

#[test]
fn the_touchscreen_refuses_a_minors_enrolment_without_guardian_consent() {
    let mut m = Machine::new(PolicyConfig::default(), THRESHOLDS, true);
    let mut admin = person("A1");
    admin.is_admin = true;
    m.step(
        Event::Badge {
            person: Some(admin),
        },
        at(0),
    );
    let mut minor = person("M1");
    minor.face_enrolled = false;
    minor.guardian_required = true;
    let out = m.step(Event::Admin(AdminCmd::Enrol(minor)), at(1));
    assert!(
        !out.iter().any(|e| matches!(
            e,
            Effect::RecordConsent { .. } | Effect::StoreTemplates { .. }
        )),
        "nothing is asked or stored: {out:?}"
    );
    assert!(
        out.iter().any(|e| matches!(e, Effect::Show(Screen::EnrolDone { enrolled: false, code, .. }) if code == "guardian_required")),
        "{out:?}"
    );
    // Badge + PIN works for them as for anyone.
    let mut minor = person("M1");
    minor.face_enrolled = false;
    m.step(Event::Tick, at(10));
    let out = m.step(
        Event::Badge {
            person: Some(minor),
        },
        at(11),
    );
    assert!(
        matches!(out.last(), Some(Effect::Show(Screen::PinPad { code, .. })) if code == "no_face_enrolment"),
        "{out:?}"
    );
}

#[test]
fn the_cli_refuses_a_minors_enrolment_and_a_scope_the_site_does_not_allow() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = common::write_config(dir.path(), &data, "[policy]\nsite_scope_allowed = false\n");
    let c = cfg.to_str().unwrap();
    let ok = |args: &[&str]| {
        let (code, out, err) = common::run(&[&["--config", c], args].concat());
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    ok(&["roster", "add", "--id", "A1", "--name", "Admin", "--admin"]);
    let out = ok(&["roster", "add", "--id", "M1", "--name", "Kim", "--minor"]);
    assert!(out.contains("minor"), "{out}");
    let photo = clockface::base::config::dev_cache().join("photos/obama.jpg");
    let (code, _, err) = common::run(&[
        "--config",
        c,
        "enroll",
        "--employee",
        "M1",
        "--consent-witness",
        "A1",
        photo.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("minor") && err.contains("guardian"), "{err}");
    // A guardian consent with a field missing is refused by clap or the store, naming it.
    let (code, _, err) = common::run(&[
        "--config",
        c,
        "roster",
        "guardian-consent",
        "--id",
        "M1",
        "--guardian",
        "Mei Chen",
        "--relation",
        "",
        "--method",
        "paper",
        "--reference",
        "HR-1",
        "--witness",
        "A1",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("relation"), "{err}");
    ok(&[
        "roster",
        "guardian-consent",
        "--id",
        "M1",
        "--guardian",
        "Mei Chen",
        "--relation",
        "mother",
        "--method",
        "form",
        "--reference",
        "HR-1",
        "--given",
        "2026-11-01",
        "--witness",
        "A1",
    ]);
    // Scope "site" is not offered here.
    let (code, _, err) = common::run(&[
        "--config",
        c,
        "roster",
        "consent",
        "--id",
        "M1",
        "--witness",
        "A1",
        "--give",
        "--scope",
        "site",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("site_scope_allowed"), "{err}");
    let out = ok(&[
        "roster",
        "consent",
        "--id",
        "M1",
        "--witness",
        "A1",
        "--give",
    ]);
    assert!(out.contains("scope device"), "{out}");
    let export = ok(&["export-person", "M1"]);
    let v: serde_json::Value = serde_json::from_str(&export).unwrap();
    assert_eq!(v["guardian_consents"][0]["method"], "form");
    assert_eq!(v["consents"][0]["scope"], "device");
}

#[test]
fn a_new_notice_is_asked_once_at_the_door_and_declining_goes_to_the_pin() {
    let policy = PolicyConfig {
        consent_text_version: "2026-06".into(),
        consent_change_summary: "Now used at every door".into(),
        ..PolicyConfig::default()
    };
    let due = |within_grace| {
        let mut p = person("E1");
        p.notice = Some(NoticeDue {
            within_grace,
            scope: ConsentScope::Site,
        });
        p
    };
    // Asked before the face is used; accepting records the new version, same scope, and the
    // capture starts.
    let mut m = Machine::new(policy.clone(), THRESHOLDS, true);
    let out = m.step(
        Event::Badge {
            person: Some(due(true)),
        },
        at(0),
    );
    assert_eq!(
        out,
        vec![Effect::Show(Screen::Notice {
            name: "Name E1".into(),
            text_version: "2026-06".into(),
            summary: "Now used at every door".into(),
            within_grace: true,
        })]
    );
    let out = m.step(
        Event::Consent {
            given: true,
            scope: ConsentScope::Device,
        },
        at(1),
    );
    assert_eq!(
        out[0],
        Effect::RecordConsent {
            employee: "E1".into(),
            given: true,
            scope: ConsentScope::Site,
            text_version: "2026-06".into(),
            witness: "E1".into(),
        }
    );
    assert!(matches!(out[1], Effect::Show(Screen::Capture { .. })));

    // Declining wipes (the store does it with the decision) and the PIN goes on.
    let mut m = Machine::new(policy.clone(), THRESHOLDS, true);
    m.step(
        Event::Badge {
            person: Some(due(true)),
        },
        at(0),
    );
    let out = m.step(
        Event::Consent {
            given: false,
            scope: ConsentScope::Device,
        },
        at(1),
    );
    assert!(matches!(
        &out[0],
        Effect::RecordConsent { given: false, .. }
    ));
    assert!(
        matches!(&out[1], Effect::Show(Screen::PinPad { code, .. }) if code == "consent_declined"),
        "{out:?}"
    );

    // No answer: within the grace period the face goes on; past it, the PIN.
    for (within, expect_capture) in [(true, true), (false, false)] {
        let mut m = Machine::new(policy.clone(), THRESHOLDS, true);
        m.step(
            Event::Badge {
                person: Some(due(within)),
            },
            at(0),
        );
        assert!(m.step(Event::Tick, at(5)).is_empty());
        let out = m.step(Event::Tick, at(policy.pin_seconds as u64 + 1));
        if expect_capture {
            assert!(
                matches!(out.as_slice(), [Effect::Show(Screen::Capture { .. })]),
                "{out:?}"
            );
        } else {
            assert!(
                matches!(out.as_slice(), [Effect::Show(Screen::PinPad { code, .. })] if code == "consent_renewal_needed"),
                "{out:?}"
            );
        }
    }
}

#[test]
fn a_consent_version_bump_is_due_and_a_decline_wipes_the_templates_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, clock) = common::open(dir.path());
    employee(&mut store, "A1", true);
    employee(&mut store, "E1", false);
    store.record_consent("E1", true, "2026-01", "A1").unwrap();
    let v = unit(4, 128);
    store.add_template("A1", "E1", "sface", &v).unwrap();
    let sealed: Vec<u8> = common::raw_db(dir.path())
        .query_row("SELECT sealed FROM templates", [], |r| r.get(0))
        .unwrap();

    let policy = PolicyConfig {
        consent_text_version: "2026-06".into(),
        consent_grace_days: 7,
        ..PolicyConfig::default()
    };
    // The current notice: nothing due.
    let same = PolicyConfig::default();
    store.note_consent_version("2026-01").unwrap();
    let s = store.consent_status("E1", &same).unwrap();
    assert!(s.given && !s.notice_due && s.face_usable());
    // A new version: due, within grace from when this kiosk first saw it.
    let since = store.note_consent_version("2026-06").unwrap();
    let s = store.consent_status("E1", &policy).unwrap();
    assert!(s.notice_due && s.within_grace && s.face_usable());
    // The 1:N gallery is built from the same rule, in one query.
    assert!(store.face_usable_ids(&policy).unwrap().contains("E1"));
    clock.advance(std::time::Duration::from_secs(8 * 86_400));
    assert!(store.face_usable_ids(&policy).unwrap().is_empty());
    assert!(
        store.face_usable_ids(&same).unwrap().contains("E1"),
        "the old notice still holds it"
    );
    assert_eq!(store.note_consent_version("2026-06").unwrap(), since);
    let s = store.consent_status("E1", &policy).unwrap();
    assert!(
        s.notice_due && !s.within_grace && !s.face_usable(),
        "past the grace period"
    );

    // The decision at the door: the person is their own witness; templates go at once.
    store.record_consent("E1", false, "2026-06", "E1").unwrap();
    assert!(store.templates("E1").unwrap().is_empty());
    let raw = common::raw_files(dir.path());
    assert!(
        !common::contains(&raw, &sealed),
        "sealed template bytes remain in the file"
    );
    let audit = store.audit_entries_for("E1").unwrap();
    let last = audit
        .iter()
        .rev()
        .find(|e| e.action == "consent_declined")
        .unwrap();
    assert_eq!((last.actor.as_str(), last.subject.as_str()), ("E1", "E1"));
    assert!(last.detail.contains("2026-06"));
}

fn sync_config(url: &str) -> Config {
    let mut c = Config::default();
    c.sync.url = url.into();
    c.sync.timeout_seconds = 5;
    c
}

fn pair(store: &mut Store, cfg: &Config, hub: &TestHub, site: &str) {
    let code = hub
        .db()
        .create_pairing_code(site, 3_600_000, None, now_ms())
        .unwrap();
    block(clockface::sync::pair(store, cfg, &cfg.sync.url, &code)).expect("pairs");
}

/// A new kiosk store in `dir`, paired for `site` and through its first sync round.
fn synced_kiosk(hub: &TestHub, cfg: &Config, dir: &Path, site: &str) -> Store {
    let (mut k, _) = common::open(dir);
    pair(&mut k, cfg, hub, site);
    round(&mut k, cfg);
    k
}

fn round(store: &mut Store, cfg: &Config) -> clockface::sync::RoundReport {
    let s = Syncer::for_store(store, cfg).unwrap().expect("paired");
    block(s.round(store)).expect("round")
}

/// Runs `clockface-hub --db HUB ARGS...`.
fn hub_cli(hub: &TestHub, args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_clockface-hub"))
        .arg("--db")
        .arg(&hub.db)
        .args(args)
        .output()
        .unwrap()
}

/// `roster import` of a file `name` holding `text`; a refusal fails the test.
fn import(hub: &TestHub, dir: &Path, name: &str, text: &str) -> String {
    let out = try_import(hub, dir, name, text);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn try_import(hub: &TestHub, dir: &Path, name: &str, text: &str) -> std::process::Output {
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    hub_cli(hub, &["roster".as_ref(), "import".as_ref(), f.as_os_str()])
}

/// The hub's database file and WAL, raw. Read by another process: closing a descriptor of
/// the file in this process would drop the locks the in-process hub's SQLite holds on it.
fn hub_raw(hub: &TestHub) -> Vec<u8> {
    let wal = hub.db.with_extension("db-wal");
    let out = std::process::Command::new("cat")
        .arg(&hub.db)
        .args(wal.exists().then_some(&wal))
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn site_scope_enrolment_reaches_the_other_door_and_a_withdrawal_wipes_it_everywhere() {
    let hub = TestHub::start_sqlite();
    let tmp = tempfile::tempdir().unwrap();
    import(
        &hub,
        tmp.path(),
        "roster.csv",
        "id,display_name,is_admin,badges,sites\nA1,Admin,yes,AA01,S1\nE1,Alex,no,0A01,S1\nE2,Sam,no,0A02,S1\nE3,Jo,no,0A03,S2\n",
    );
    let (da, db_) = (tmp.path().join("a"), tmp.path().join("b"));
    let cfg = sync_config(&hub.url);
    let model = cfg.vision.embedder.name();
    let dims = cfg.vision.embedder.dims();
    let mut a = synced_kiosk(&hub, &cfg, &da, "S1");
    let mut b = synced_kiosk(&hub, &cfg, &db_, "S1");

    // At door A: E1 consents for every door of the site, E2 for this door only.
    let (t1, t2) = (unit(1, dims), unit(2, dims));
    a.record_consent_scoped("E1", true, ConsentScope::Site, "2026-01", "A1")
        .unwrap();
    a.add_template("A1", "E1", model, &t1).unwrap();
    a.add_template("A1", "E1", model, &t2).unwrap();
    a.record_consent_scoped("E2", true, ConsentScope::Device, "2026-01", "A1")
        .unwrap();
    a.add_template("A1", "E2", model, &unit(3, dims)).unwrap();
    let rep = round(&mut a, &cfg);
    assert_eq!(rep.biometrics, 2);
    // The hub holds E1's two templates, sealed: the embedding bytes are nowhere in its files.
    let raw = hub_raw(&hub);
    assert!(!common::contains(&raw, &le_bytes(&t1)[..64]));
    round(&mut b, &cfg);
    let got: Vec<Vec<f32>> = b
        .templates("E1")
        .unwrap()
        .into_iter()
        .map(|t| t.vector)
        .collect();
    assert_eq!(
        got,
        vec![t1.clone(), t2.clone()],
        "E1 is recognised at door B"
    );
    assert!(
        b.templates("E2").unwrap().is_empty(),
        "device scope stays at door A"
    );
    assert_eq!(b.consent("E1").unwrap().unwrap().scope, ConsentScope::Site);
    // A's own templates are not sent back to it as copies.
    round(&mut a, &cfg);
    assert_eq!(a.templates("E1").unwrap().len(), 2);
    let sealed_a: Vec<Vec<u8>> = {
        let c = common::raw_db(&da);
        let mut s = c
            .prepare("SELECT sealed FROM templates WHERE employee_id = 'E1'")
            .unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let sealed_b: Vec<Vec<u8>> = {
        let c = common::raw_db(&db_);
        let mut s = c
            .prepare("SELECT sealed FROM templates WHERE employee_id = 'E1'")
            .unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!((sealed_a.len(), sealed_b.len()), (2, 2));

    // E1 withdraws at door B: gone at B at once, at the hub and at A within one round each.
    b.record_consent("E1", false, "2026-01", "A1").unwrap();
    assert!(b.templates("E1").unwrap().is_empty());
    round(&mut b, &cfg);
    round(&mut a, &cfg);
    assert!(
        a.templates("E1").unwrap().is_empty(),
        "withdrawn everywhere"
    );
    assert!(!a.consent("E1").unwrap().unwrap().given);
    for (dir, sealed) in [(&da, &sealed_a), (&db_, &sealed_b)] {
        let raw = common::raw_files(dir);
        for s in sealed {
            assert!(
                !common::contains(&raw, s),
                "template bytes left in {}",
                dir.display()
            );
        }
    }
    let n: i64 = rusqlite::Connection::open(&hub.db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sealed_templates WHERE employee_id = 'E1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);

    // A deletion at the hub wipes too: E2 enrols for the site at B, then HR deletes E2.
    b.record_consent_scoped("E2", true, ConsentScope::Site, "2026-01", "A1")
        .unwrap();
    b.add_template("A1", "E2", model, &unit(5, dims)).unwrap();
    round(&mut b, &cfg);
    round(&mut a, &cfg);
    assert_eq!(a.templates("E2").unwrap().len(), 2, "A's own and B's");
    hub.db().delete_employee("E2").unwrap();
    round(&mut a, &cfg);
    round(&mut b, &cfg);
    assert!(a.employee("E2").unwrap().is_none() && b.employee("E2").unwrap().is_none());
}

#[test]
fn an_hr_export_is_minimised_to_the_allow_list_at_the_hub_and_the_kiosk() {
    let hub = TestHub::start_sqlite();
    let tmp = tempfile::tempdir().unwrap();
    let secrets = [
        "+86 138 0013 8000",
        "110101199003077777",
        "12 Elm Street, Springfield",
        "1990-03-07",
        "G12345678",
    ];
    let out = import(
        &hub,
        tmp.path(),
        "hr.csv",
        &format!(
            "id,display_name,phone,id_card_no,address,birthday,staff_ref,badges,birth_year\n\
             E1,Alex,{},{},\"{}\",{},{},0A01,1990\n",
            secrets[0], secrets[1], secrets[2], secrets[3], secrets[4]
        ),
    );
    assert!(
        out.contains("dropped 5 column(s)")
            && ["address", "birthday", "id_card_no", "phone", "staff_ref"]
                .iter()
                .all(|c| out.contains(c)),
        "{out}"
    );
    let out = import(
        &hub,
        tmp.path(),
        "hr.json",
        &format!(
            r#"[{{"id":"E2","display_name":"Sam","active":true,"mobile":"{}","national_id":"{}"}}]"#,
            secrets[0], secrets[1]
        ),
    );
    assert!(
        out.contains("mobile") && out.contains("national_id"),
        "{out}"
    );
    let dir = tmp.path().join("kiosk");
    let cfg = sync_config(&hub.url);
    let k = synced_kiosk(&hub, &cfg, &dir, "HQ");
    assert_eq!(k.employee("E1").unwrap().unwrap().display_name, "Alex");
    assert_eq!(k.age("E1").unwrap().birth_year, Some(1990));
    let (hub_files, kiosk_files) = (hub_raw(&hub), common::raw_files(&dir));
    for s in secrets {
        assert!(
            !common::contains(&hub_files, s.as_bytes()),
            "{s} at the hub"
        );
        assert!(
            !common::contains(&kiosk_files, s.as_bytes()),
            "{s} at the kiosk"
        );
    }
    // The kiosk's roster table holds the allowed columns and nothing else.
    let c = common::raw_db(&dir);
    let mut s = c
        .prepare("SELECT name FROM pragma_table_info('employees') ORDER BY cid")
        .unwrap();
    let cols: Vec<String> = s
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        cols,
        [
            "id",
            "display_name",
            "active",
            "is_admin",
            "pin_hash",
            "updated_ms",
            "birth_year",
            "is_minor"
        ]
    );
    // A birthday given as a date is not a birth year: refused, and nothing of it is kept.
    let o = try_import(
        &hub,
        tmp.path(),
        "bad.csv",
        "id,display_name,birth_year\nE3,Jo,1990-03-07\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("birth_year"));
    assert!(hub.db().roster_version().unwrap() == 2);
}

#[test]
fn a_kiosk_provisioned_for_another_region_is_refused_unless_the_hub_allows_it() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("hub.db");
    let start = |allow: bool| {
        clockface::hub::LocalHub::start_configured(
            &db,
            None,
            &clockface::hub::db::HubConfig {
                privacy: clockface::hub::db::HubPrivacy {
                    data_region: "eu-west".into(),
                    allow_cross_region: allow,
                },
                ..Default::default()
            },
        )
        .unwrap()
    };
    let hub = start(false);
    let code = clockface::hub::db::HubDb::open(&db)
        .unwrap()
        .create_pairing_code("HQ", 3_600_000, None, now_ms())
        .unwrap();
    let mut cfg = sync_config(&hub.url);
    cfg.privacy.data_region = "cn-north".into();
    let (mut k, _) = common::open(&tmp.path().join("k"));
    let err = block(clockface::sync::pair(&mut k, &cfg, &hub.url, &code)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("403") && msg.contains("cn-north") && msg.contains("eu-west"),
        "{msg}"
    );
    drop(hub);
    // The refusal did not use up the code; with cross-region allowed the same code pairs.
    let hub = start(true);
    let mut cfg = sync_config(&hub.url);
    cfg.privacy.data_region = "cn-north".into();
    block(clockface::sync::pair(&mut k, &cfg, &hub.url, &code)).expect("pairs");
    let devices = clockface::hub::db::HubDb::open(&db)
        .unwrap()
        .fleet(None, common::net::now_ms())
        .unwrap();
    assert_eq!(devices[0].data_region, "cn-north");
    // A region label of the wrong shape is a config problem, named.
    let mut bad = Config::default();
    bad.privacy.data_region = "EU West".into();
    assert!(
        bad.validate()
            .iter()
            .any(|p| p.to_string().contains("privacy.data_region"))
    );
}

#[test]
fn hub_templates_are_sealed_rotatable_and_gone_when_the_employee_is() {
    let hub = TestHub::start_sqlite();
    let tmp = tempfile::tempdir().unwrap();
    let model = Config::default().vision.embedder.name();
    let v = unit(9, 16);
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(le_bytes(&v))
    };
    import(
        &hub,
        tmp.path(),
        "t.json",
        &format!(
            r#"[{{"id":"E1","display_name":"Alex","active":true,"consent":{{"given":true,"text_version":"v1","scope":"site"}},"templates":[{{"model":"{model}","embedding":"{b64}"}}]}}]"#
        ),
    );
    assert!(!common::contains(&hub_raw(&hub), &le_bytes(&v)));
    let key = clockface::hub::db::biometrics::key_path(&hub.db);
    let before = std::fs::read(&key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = hub_cli(&hub, &["keys".as_ref(), "rotate".as_ref()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 template(s) re-sealed"));
    assert_ne!(std::fs::read(&key).unwrap(), before);
    // Still served, decrypted, to a kiosk (with the new key).
    let dir = tmp.path().join("k");
    let cfg = sync_config(&hub.url);
    let k = synced_kiosk(&hub, &cfg, &dir, "HQ");
    assert_eq!(k.templates("E1").unwrap()[0].vector, v);
    // A template too imported without a site consent is refused, by name.
    let o = try_import(
        &hub,
        tmp.path(),
        "bad.json",
        &format!(
            r#"[{{"id":"E9","display_name":"X","active":true,"templates":[{{"model":"sface","embedding":"{b64}"}}]}}]"#
        ),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("scope"));
    // An update that does not hold up is refused with its reason and changes nothing.
    let bad = clockface::base::protocol::BiometricUpdate {
        employee_id: "E1".into(),
        consent: Some(clockface::base::protocol::RosterConsent {
            given: true,
            text_version: "v1".into(),
            scope: ConsentScope::Device,
        }),
        templates: vec![clockface::base::protocol::RosterTemplate {
            model: model.into(),
            embedding: b64.clone(),
        }],
    };
    let ack = hub
        .db()
        .biometric_update(&uuid::Uuid::nil(), "HQ", &bad)
        .unwrap();
    assert!(ack.refused.contains("scope"), "{ack:?}");
    let n: i64 = rusqlite::Connection::open(&hub.db)
        .unwrap()
        .query_row("SELECT count(*) FROM sealed_templates", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "nothing changed");
    // Nor is a site consent taken where the site's policy offers "device" only.
    let mut db = hub.db();
    db.set_site_policy(
        &PolicyConfig {
            site_scope_allowed: false,
            ..PolicyConfig::default()
        },
        Some("HQ"),
    )
    .unwrap();
    let site = clockface::base::protocol::BiometricUpdate {
        consent: Some(clockface::base::protocol::RosterConsent {
            given: true,
            text_version: "v1".into(),
            scope: ConsentScope::Site,
        }),
        ..bad.clone()
    };
    let ack = db
        .biometric_update(&uuid::Uuid::nil(), "HQ", &site)
        .unwrap();
    assert!(ack.refused.contains("site_scope_allowed"), "{ack:?}");
    // Deleted: the sealed bytes are gone from the file too.
    let sealed: Vec<u8> = rusqlite::Connection::open(&hub.db)
        .unwrap()
        .query_row("SELECT sealed FROM sealed_templates", [], |r| r.get(0))
        .unwrap();
    assert!(common::contains(&hub_raw(&hub), &sealed));
    hub.db().delete_employee("E1").unwrap();
    assert!(!common::contains(&hub_raw(&hub), &sealed));
}

#[test]
fn the_age_threshold_is_set_per_site_by_the_backend() {
    let hub = TestHub::start_sqlite();
    let tmp = tempfile::tempdir().unwrap();
    import(
        &hub,
        tmp.path(),
        "r.csv",
        "id,display_name,birth_year\nT1,Trainee,2011\n",
    );
    let mut db = hub.db();
    db.set_policy(&PolicyConfig::default()).unwrap();
    db.set_site_policy(
        &PolicyConfig {
            minor_age: 16,
            ..PolicyConfig::default()
        },
        Some("S1"),
    )
    .unwrap();
    let err = db
        .set_site_policy(&PolicyConfig::default(), Some("bad\u{202e}site"))
        .unwrap_err();
    assert!(err.to_string().contains("--site"), "{err}");
    let cfg = sync_config(&hub.url);
    let a = synced_kiosk(&hub, &cfg, &tmp.path().join("a"), "S1");
    let b = synced_kiosk(&hub, &cfg, &tmp.path().join("b"), "S2");
    assert_eq!((a.minor_age().unwrap(), b.minor_age().unwrap()), (16, 14));
    // Born 2011, in 2026: 14 or 15. A minor where the threshold is 16, not where it is 14.
    assert!(a.is_minor("T1").unwrap());
    assert!(!b.is_minor("T1").unwrap());
}
