//! `clockface demo`: the embedded default run, needing no config, hardware or network.
//!
//! Builds a temporary store, enrols a small fictional roster (with one consent declined), plays
//! a scripted morning of badge + PIN check-ins — including an unknown badge and a wrong PIN —
//! prints every event and decision as it happens, then verifies the signed chains and shows the
//! export. Face verification joins this script once the vision pipeline lands.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SimClock};
use crate::config::Config;
use crate::error::Result;
use crate::store::export::{ExportFormat, rfc3339_ms};
use crate::store::record::{Direction, Method, NewRecord, Outcome};
use crate::store::roster::Employee;
use crate::store::{Store, StoreOptions};

/// One scripted interaction at the kiosk.
struct Step {
    after: Duration,
    badge: &'static str,
    pin: &'static str,
    direction: Direction,
}

const ADMIN: &str = "A0001";

/// Runs the demo in `dir` (a fresh temporary directory when `None`), writing to `out`.
pub fn run(dir: Option<&Path>, out: &mut dyn Write) -> Result<()> {
    let tmp;
    let data_dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("clockface-demo-")
                .tempdir()
                .map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
            tmp.path().join("data")
        }
    };
    // 2026-11-30 08:40 UTC: a Monday morning.
    let clock = Arc::new(SimClock::new(1_796_028_000_000));
    let opts = StoreOptions {
        data_dir: data_dir.clone(),
        ..StoreOptions::from_config(&Config::default())
    };
    let mut store = Store::open(&opts, clock.clone())?;
    let id = store.identity().clone();
    let _ = writeln!(
        out,
        "Clockface demo — temporary store {}",
        data_dir.display()
    );
    let _ = writeln!(
        out,
        "  device {}  public key {}",
        id.device_id,
        hex::encode(id.public_key.as_bytes())
    );

    let roster = [
        ("A0001", "Site Admin", true, "BADGE-0001", "9999"),
        ("E1001", "Mei Lin", false, "04:A1:B2:C3", "1234"),
        ("E1002", "Tom Okafor", false, "04:D4:E5:F6", "5678"),
    ];
    for (emp, name, admin, badge, pin) in roster {
        store.upsert_employee(
            ADMIN,
            &Employee {
                id: emp.into(),
                display_name: name.into(),
                active: true,
                is_admin: admin,
            },
        )?;
        store.add_badge(ADMIN, badge, emp)?;
        store.set_pin(ADMIN, emp, pin)?;
    }
    store.record_consent("E1001", true, "2026-01", ADMIN)?;
    store.record_consent("E1002", false, "2026-01", ADMIN)?;
    let _ = writeln!(
        out,
        "  roster: 3 people; E1001 consented to face enrolment, E1002 declined (badge + PIN only)"
    );

    let script = [
        Step {
            after: Duration::from_secs(17 * 60),
            badge: "04a1b2c3",
            pin: "1234",
            direction: Direction::In,
        },
        Step {
            after: Duration::from_secs(3 * 60),
            badge: "DEADBEEF",
            pin: "0000",
            direction: Direction::In,
        },
        Step {
            after: Duration::from_secs(2 * 60),
            badge: "04 D4 E5 F6",
            pin: "1111",
            direction: Direction::In,
        },
        Step {
            after: Duration::from_secs(20),
            badge: "04 D4 E5 F6",
            pin: "5678",
            direction: Direction::In,
        },
        Step {
            after: Duration::from_secs(4 * 3600),
            badge: "04A1B2C3",
            pin: "1234",
            direction: Direction::Out,
        },
    ];
    for step in script {
        clock.advance(step.after);
        let when = rfc3339_ms(clock.wall_ms());
        let employee = store.employee_by_badge(step.badge)?;
        let (new, verdict) = match employee {
            None => (
                rejected("", step.direction, "unknown_badge"),
                "rejected: badge is not on the roster".to_string(),
            ),
            Some(e) if store.verify_pin(&e.id, step.pin)? => (
                NewRecord {
                    outcome: Outcome::Accepted,
                    employee_id: e.id.clone(),
                    direction: step.direction,
                    method: Method::BadgePin,
                    reason: String::new(),
                    liveness: None,
                    match_score: None,
                },
                format!("checked {} {}", step.direction, e.display_name),
            ),
            Some(e) => (
                rejected(&e.id, step.direction, "pin_mismatch"),
                format!("rejected {}: wrong PIN", e.id),
            ),
        };
        let a = store.append(&new)?;
        let _ = writeln!(
            out,
            "{when}  badge tap + PIN  -> {verdict}  [record #{} durable]",
            a.seq
        );
    }

    let mut report = Vec::new();
    let cfg = Config {
        store: crate::config::StoreConfig {
            data_dir: data_dir.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    drop(store);
    crate::commands::verify(&cfg, false, &mut report)?;
    let _ = writeln!(out, "\n$ clockface verify");
    let _ = out.write_all(&report);
    let _ = writeln!(out, "\n$ clockface export --format csv");
    crate::commands::export(&cfg, None, None, ExportFormat::Csv, out)?;
    Ok(())
}

fn rejected(employee: &str, direction: Direction, reason: &str) -> NewRecord {
    NewRecord {
        outcome: Outcome::Rejected,
        employee_id: employee.into(),
        direction,
        method: Method::BadgePin,
        reason: reason.into(),
        liveness: None,
        match_score: None,
    }
}
