//! The kiosk end to end in simulation: real models, the replay camera showing real photos, a
//! simulated badge reader, PIN pad and GPIO, a real store.

use std::sync::Arc;
use std::time::Duration;

use clockface::base::clock::SystemClock;
use clockface::base::config::VisionConfig;
use clockface::base::config::{Config, GpioKind};
use clockface::base::frame::Frame;
use clockface::camera::CameraStatus;
use clockface::camera::replay::{self, ReplayFeed, Scene};
use clockface::hw::gpio::{Pin, SimGpio};
use clockface::kiosk::events::Screen;
use clockface::kiosk::runner::{self, Kiosk, Report, UiInput};
use clockface::store::record::{Outcome, Punch};
use clockface::store::roster::Employee;
use clockface::store::{Store, StoreOptions};
use clockface::vision::{FaceAvailability, Vision};
use tokio::sync::mpsc;

fn photo(name: &str) -> Arc<Frame> {
    Arc::new(
        Frame::open(
            &clockface::base::config::dev_cache()
                .join("photos")
                .join(name),
        )
        .expect("run models/fetch.py"),
    )
}

struct Harness {
    badge: std::sync::mpsc::Sender<String>,
    ui: mpsc::UnboundedSender<UiInput>,
    reports: mpsc::UnboundedReceiver<Report>,
    feed: ReplayFeed,
    gpio: SimGpio,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<clockface::base::error::Result<()>>>,
    config: Config,
    portraits: std::collections::HashMap<&'static str, Frame>,
    _dir: tempfile::TempDir,
}

/// A kiosk with E1 (Alex, obama photos, face enrolled unless `consent` is false, PIN 1234) and
/// E2 (Sam, biden.jpg, enrolled, PIN 5678), and admin A1.
fn start(consent: bool, vision_cfg: VisionConfig) -> Harness {
    start_with(consent, vision_cfg, |_, _| {})
}

/// Like [`start`], with `tweak` applied to the config and the store before the kiosk runs.
fn start_with(
    consent: bool,
    vision_cfg: VisionConfig,
    tweak: impl FnOnce(&mut Config, &mut Store),
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.store.data_dir = dir.path().join("data");
    config.gpio.kind = GpioKind::Sim;
    config.gpio.pir_pin = Some(24);
    config.policy.verdict_seconds = 1;
    config.policy.capture_seconds = 4;
    config.policy.pin_seconds = 5;
    config.vision = vision_cfg;
    let clock = Arc::new(SystemClock::new());
    let mut store = Store::open(&StoreOptions::from_config(&config), clock.clone()).unwrap();
    for (id, name, admin, badge, pin) in [
        ("A1", "Admin", true, "A1A1", "9999"),
        ("E1", "Alex", false, "04A1B2C3", "1234"),
        ("E2", "Sam", false, "04D4E5F6", "5678"),
    ] {
        store
            .upsert_employee(
                "A1",
                &Employee {
                    id: id.into(),
                    display_name: name.into(),
                    active: true,
                    is_admin: admin,
                },
            )
            .unwrap();
        store.add_badge("A1", badge, id).unwrap();
        store.set_pin("A1", id, pin).unwrap();
    }
    // Enrolment always uses the real models; the kiosk then runs with `vision_cfg`'s.
    let mut portraits = std::collections::HashMap::new();
    {
        let mut v = Vision::load(&VisionConfig::default()).expect("models (run models/fetch.py)");
        for name in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"] {
            let f = photo(name);
            let face = v.detect(&f).unwrap().remove(0);
            portraits.insert(name, replay::head_and_shoulders(&f, face.bbox));
        }
        let model = v.config.embedder.name();
        let v = &mut v;
        let mut enrol = |store: &mut Store, id: &str, photos: &[&str]| {
            store.record_consent(id, true, "2026-01", "A1").unwrap();
            for p in photos {
                let f = photo(p);
                let face = v.detect(&f).unwrap().remove(0);
                store
                    .add_template("A1", id, model, &v.embed_face(&f, &face).unwrap())
                    .unwrap();
            }
        };
        if consent {
            enrol(&mut store, "E1", &["obama2.jpg", "obama3.jpg"]);
        }
        enrol(&mut store, "E2", &["biden.jpg"]);
    }
    tweak(&mut config, &mut store);
    let (kiosk, devices) = Kiosk::simulated(
        config.clone(),
        store,
        Vision::load_or_explain(&config.vision),
        clock,
        15,
    );
    // The HR-terminal protocols the config turns on, as `clockface run` starts them.
    let kiosk = kiosk.with_hr().unwrap();
    let (ui, ui_rx) = mpsc::unbounded_channel();
    let (rep_tx, reports) = mpsc::unbounded_channel();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner::run(kiosk, ui_rx, Some(rep_tx), async {
        let _ = stop_rx.await;
    }));
    Harness {
        badge: devices.badge,
        ui,
        reports,
        feed: devices.feed,
        gpio: devices.gpio,
        stop: Some(stop),
        task: Some(task),
        config,
        portraits,
        _dir: dir,
    }
}

impl Harness {
    /// The photo framed head-and-shoulders, as a person at the kiosk appears to its camera.
    fn person(&self, name: &str) -> Scene {
        Scene::Person(Arc::new(self.portraits[name].clone()))
    }

    /// Collects reports until one matches; panics after 30 s.
    async fn until(&mut self, what: &str, want: impl Fn(&Report) -> bool) -> Vec<Report> {
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(30), self.reports.recv()).await {
                Ok(Some(r)) => {
                    let hit = want(&r);
                    seen.push(r);
                    if hit {
                        return seen;
                    }
                }
                _ => panic!("timed out waiting for {what}; saw {seen:#?}"),
            }
        }
    }

    async fn verdict(&mut self) -> Vec<Report> {
        let mut seen = self
            .until("a verdict", |r| {
                matches!(
                    r,
                    Report::Screen(
                        Screen::Accepted { .. }
                            | Screen::Rejected { .. }
                            | Screen::AlreadyCheckedIn { .. }
                    )
                )
            })
            .await;
        seen.extend(
            self.until("idle", |r| matches!(r, Report::Screen(Screen::Idle { .. })))
                .await,
        );
        seen
    }

    /// Stops the kiosk and returns its store's records as (outcome, employee, reason).
    async fn finish(self) -> (Vec<(Outcome, String, String)>, SimGpio) {
        let (records, gpio, _dir) = self.finish_keep().await;
        (records, gpio)
    }

    /// Like `finish`, also handing back the data directory (deleted when dropped).
    async fn finish_keep(mut self) -> (Vec<(Outcome, String, String)>, SimGpio, tempfile::TempDir) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.take().unwrap().await.unwrap().unwrap();
        let store = Store::open(
            &StoreOptions {
                read_only: true,
                ..StoreOptions::from_config(&self.config)
            },
            Arc::new(SystemClock::new()),
        )
        .unwrap();
        let n = store.stats().unwrap().head_seq;
        let recs = (1..=n)
            .map(|s| store.record(s).unwrap().unwrap())
            .map(|r| (r.outcome, r.employee_id, r.reason))
            .collect();
        clockface::commands::records::verify(&self.config, false, &mut Vec::new())
            .expect("chain verifies");
        (recs, self.gpio, self._dir)
    }
}

fn recorded(seen: &[Report]) -> Vec<(Outcome, String)> {
    seen.iter()
        .filter_map(|r| {
            if let Report::Recorded {
                outcome, reason, ..
            } = r
            {
                Some((*outcome, reason.clone()))
            } else {
                None
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolled_employee_checks_in_by_face_one_record_one_relay_pulse() {
    let mut h = start(true, VisionConfig::default());
    h.until("ready", |r| {
        matches!(r, Report::Started(FaceAvailability::Ready))
    })
    .await;
    h.until("camera", |r| {
        matches!(r, Report::Camera(CameraStatus::Live))
    })
    .await;
    h.feed.show(h.person("obama.jpg"));
    h.badge.send("04:a1:b2:c3".into()).unwrap();
    let seen = h.verdict().await;
    assert!(
        seen.iter()
            .any(|r| matches!(r, Report::Screen(Screen::Accepted { name, .. }) if name == "Alex")),
        "{seen:#?}"
    );
    // Let the relay and LED pulses finish.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let (records, gpio) = h.finish().await;
    assert_eq!(
        records,
        vec![(Outcome::Accepted, "E1".into(), String::new())]
    );
    assert_eq!(gpio.pulses(Pin::Relay), 1);
    assert_eq!(gpio.pulses(Pin::Green), 1);
    assert_eq!(gpio.pulses(Pin::Red), 0);
    let relay: Vec<_> = gpio
        .changes()
        .into_iter()
        .filter(|c| c.pin == Pin::Relay)
        .collect();
    assert!(relay[0].on && !relay[1].on, "on, then off: {relay:?}");
    assert!(
        relay[2..].iter().all(|c| !c.on),
        "only 'off' after that (shutdown): {relay:?}"
    );
    let open_ms = relay[1].at_ms - relay[0].at_ms;
    assert!(
        (1400..2500).contains(&open_ms),
        "relay open for {open_ms} ms (configured 1500)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_person_is_rejected_and_the_attempt_logged() {
    let mut h = start(true, VisionConfig::default());
    h.until("camera", |r| {
        matches!(r, Report::Camera(CameraStatus::Live))
    })
    .await;
    h.feed.show(h.person("biden.jpg"));
    h.badge.send("04A1B2C3".into()).unwrap(); // Alex's badge, Sam's face
    let seen = h
        .until("the PIN pad", |r| {
            matches!(r, Report::Screen(Screen::PinPad { .. }))
        })
        .await;
    assert_eq!(
        recorded(&seen),
        vec![
            (Outcome::Rejected, "face_mismatch".into()),
            (Outcome::Rejected, "face_mismatch".into())
        ]
    );
    let (records, gpio) = h.finish().await;
    assert!(
        records
            .iter()
            .all(|r| r.0 == Outcome::Rejected && r.1 == "E1")
    );
    assert_eq!(gpio.pulses(Pin::Relay), 0, "the door stays shut");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_replayed_photo_is_refused_or_challenged() {
    let mut h = start(true, VisionConfig::default());
    h.until("camera", |r| {
        matches!(r, Report::Camera(CameraStatus::Live))
    })
    .await;
    for (i, attack) in [
        replay::printed_photo(&h.portraits["obama.jpg"]),
        replay::phone_screen(&h.portraits["obama.jpg"]),
    ]
    .into_iter()
    .enumerate()
    {
        h.feed.show(Scene::Person(Arc::new(attack)));
        h.badge.send("04A1B2C3".into()).unwrap();
        let seen = h
            .until("the PIN pad", |r| {
                matches!(r, Report::Screen(Screen::PinPad { .. }))
            })
            .await;
        let challenged = seen
            .iter()
            .any(|r| matches!(r, Report::Screen(Screen::Challenge { .. })));
        let refused: Vec<_> = recorded(&seen)
            .into_iter()
            .map(|(_, reason)| reason)
            .collect();
        assert!(
            !refused.is_empty()
                && refused.iter().all(|r| r == "liveness_failed"
                    || r == "no_usable_face"
                    || r == "face_timeout"
                    || r == "face_mismatch"),
            "attack {i}: {refused:?} challenged={challenged}"
        );
        h.verdict().await; // PIN times out
    }
    let (records, gpio) = h.finish().await;
    assert!(
        records.iter().all(|r| r.0 == Outcome::Rejected),
        "{records:?}"
    );
    assert_eq!(gpio.pulses(Pin::Relay), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_passback_writes_no_second_attendance_record() {
    let mut h = start(true, VisionConfig::default());
    h.until("camera", |r| {
        matches!(r, Report::Camera(CameraStatus::Live))
    })
    .await;
    h.feed.show(h.person("obama.jpg"));
    h.badge.send("04A1B2C3".into()).unwrap();
    h.verdict().await;
    h.badge.send("04A1B2C3".into()).unwrap();
    let seen = h.verdict().await;
    assert!(
        seen.iter()
            .any(|r| matches!(r, Report::Screen(Screen::AlreadyCheckedIn { .. })))
    );
    let (records, gpio) = h.finish().await;
    assert_eq!(
        records,
        vec![
            (Outcome::Accepted, "E1".into(), String::new()),
            (Outcome::Rejected, "E1".into(), "already_checked_in".into())
        ]
    );
    assert_eq!(gpio.pulses(Pin::Relay), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_unplugged_mid_session_pin_works_and_the_camera_recovers() {
    let mut h = start(true, VisionConfig::default());
    h.until("camera", |r| {
        matches!(r, Report::Camera(CameraStatus::Live))
    })
    .await;
    h.feed.show(Scene::Empty);
    h.badge.send("04A1B2C3".into()).unwrap();
    h.until("capture", |r| {
        matches!(r, Report::Screen(Screen::Capture { .. }))
    })
    .await;
    h.feed.show(Scene::Unplugged);
    let seen = h.until("the PIN pad", |r| matches!(r, Report::Screen(Screen::PinPad { reason, .. }) if reason == "camera unavailable")).await;
    assert!(
        seen.iter()
            .any(|r| matches!(r, Report::Camera(CameraStatus::Lost { .. })))
    );
    h.ui.send(UiInput::Pin("1234".into())).unwrap();
    h.verdict().await;
    h.feed.show(h.person("biden.jpg"));
    h.until("camera back", |r| {
        matches!(r, Report::Camera(CameraStatus::Live))
    })
    .await;
    // Face check-in works again for the next person.
    h.badge.send("04D4E5F6".into()).unwrap();
    let seen = h.verdict().await;
    assert!(
        seen.iter()
            .any(|r| matches!(r, Report::Screen(Screen::Accepted { name, .. }) if name == "Sam")),
        "{seen:#?}"
    );
    let (records, _) = h.finish().await;
    assert_eq!(
        records,
        vec![
            (Outcome::Accepted, "E1".into(), String::new()),
            (Outcome::Accepted, "E2".into(), String::new())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_declined_leaves_no_template_and_pin_works() {
    let mut h = start(false, VisionConfig::default());
    h.until("camera", |r| {
        matches!(r, Report::Camera(CameraStatus::Live))
    })
    .await;
    // The admin offers enrolment; Alex declines.
    h.feed.show(h.person("obama.jpg"));
    h.badge.send("A1A1".into()).unwrap();
    h.until("admin", |r| {
        matches!(r, Report::Screen(Screen::Admin { .. }))
    })
    .await;
    h.ui.send(UiInput::Enrol("E1".into())).unwrap();
    h.until("consent", |r| {
        matches!(r, Report::Screen(Screen::Consent { .. }))
    })
    .await;
    h.ui.send(UiInput::Consent(
        false,
        clockface::base::protocol::ConsentScope::Device,
    ))
    .unwrap();
    h.until("declined", |r| {
        matches!(
            r,
            Report::Screen(Screen::EnrolDone {
                enrolled: false,
                ..
            })
        )
    })
    .await;
    h.until("idle", |r| matches!(r, Report::Screen(Screen::Idle { .. })))
        .await;
    h.badge.send("04A1B2C3".into()).unwrap();
    h.until("the PIN pad", |r| matches!(r, Report::Screen(Screen::PinPad { reason, .. }) if reason == "no face enrolment")).await;
    h.ui.send(UiInput::Pin("1234".into())).unwrap();
    let seen = h.verdict().await;
    assert!(
        seen.iter()
            .any(|r| matches!(r, Report::Screen(Screen::Accepted { .. })))
    );
    let config = h.config.clone();
    let (records, _, _dir) = h.finish_keep().await;
    assert_eq!(
        records,
        vec![(Outcome::Accepted, "E1".into(), String::new())]
    );
    let store = Store::open(
        &StoreOptions::from_config(&config),
        Arc::new(SystemClock::new()),
    )
    .unwrap();
    let model = VisionConfig::default().embedder.name();
    assert_eq!(store.template_count("E1", model).unwrap(), 0);
    assert!(!store.consent("E1").unwrap().unwrap().given);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_models_start_in_badge_and_pin_mode_and_say_why() {
    let empty = tempfile::tempdir().unwrap();
    let cfg = VisionConfig {
        models_dir: Some(empty.path().to_path_buf()),
        ..VisionConfig::default()
    };
    let mut h = start(true, cfg);
    let seen = h.until("start", |r| matches!(r, Report::Started(_))).await;
    let Some(Report::Started(FaceAvailability::Unavailable { reason })) = seen.last() else {
        panic!("{seen:?}")
    };
    assert!(reason.contains("models.lock.json"), "{reason}");
    h.until("idle", |r| {
        matches!(
            r,
            Report::Screen(Screen::Idle {
                face_available: false,
                ..
            })
        )
    })
    .await;
    h.badge.send("04D4E5F6".into()).unwrap();
    h.until("the PIN pad", |r| matches!(r, Report::Screen(Screen::PinPad { reason, .. }) if reason == "face check-in unavailable")).await;
    h.ui.send(UiInput::Pin("5678".into())).unwrap();
    h.verdict().await;
    let (records, _) = h.finish().await;
    assert_eq!(
        records,
        vec![(Outcome::Accepted, "E2".into(), String::new())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn motion_sensor_wakes_the_idle_screen() {
    let mut h = start(true, VisionConfig::default());
    h.until("idle", |r| matches!(r, Report::Screen(Screen::Idle { .. })))
        .await;
    h.gpio.set_motion(true);
    h.until("motion", |r| matches!(r, Report::Motion)).await;
    let (records, _) = h.finish().await;
    assert!(records.is_empty(), "motion alone records nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_mode_opens_with_the_admin_pin_and_refuses_a_wrong_one() {
    let mut h = start(false, VisionConfig::default());
    h.until("idle", |r| matches!(r, Report::Screen(Screen::Idle { .. })))
        .await;
    // An employee's PIN is not an admin PIN.
    h.ui.send(UiInput::AdminPin("1234".into())).unwrap();
    h.until(
        "refusal",
        |r| matches!(r, Report::Screen(Screen::Rejected { code, .. }) if code == "admin_pin_wrong"),
    )
    .await;
    h.until("idle", |r| matches!(r, Report::Screen(Screen::Idle { .. })))
        .await;
    h.ui.send(UiInput::AdminPin("9999".into())).unwrap();
    h.until(
        "admin mode",
        |r| matches!(r, Report::Screen(Screen::Admin { name, .. }) if name == "Admin"),
    )
    .await;
    let (records, _) = h.finish().await;
    assert!(records.is_empty(), "admin entry is not attendance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_changed_by_an_admin_apply_without_a_restart() {
    let mut h = start(false, VisionConfig::default());
    h.until("ready", |r| matches!(r, Report::Started(_))).await;
    // What the settings page does: check and store the change on its own connection, audited
    // with the admin as actor, then tell the core.
    let mut ui_store = Store::open(
        &StoreOptions::from_config(&h.config),
        Arc::new(SystemClock::new()),
    )
    .unwrap();
    clockface::store::settings::change(&mut ui_store, &h.config, "A1", "gpio.relay_ms", "400")
        .unwrap();
    clockface::store::settings::change(&mut ui_store, &h.config, "A1", "policy.direction", "out")
        .unwrap();
    // A value the validator refuses changes nothing.
    let err =
        clockface::store::settings::change(&mut ui_store, &h.config, "A1", "sync.url", "ftp://hub")
            .unwrap_err()
            .to_string();
    assert!(err.contains("sync.url"), "{err}");
    h.ui.send(UiInput::SettingsChanged).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.badge.send("04A1B2C3".into()).unwrap();
    h.until("the PIN pad", |r| {
        matches!(r, Report::Screen(Screen::PinPad { .. }))
    })
    .await;
    h.ui.send(UiInput::Pin("1234".into())).unwrap();
    let seen = h.verdict().await;
    assert!(
        seen.iter().any(|r| matches!(
            r,
            Report::Screen(Screen::Accepted { punch, .. }) if *punch == clockface::store::record::Punch::Out
        )),
        "the new in/out rule applies: {seen:#?}"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let config = h.config.clone();
    let (_, gpio, _dir) = h.finish_keep().await;
    let relay: Vec<_> = gpio
        .changes()
        .into_iter()
        .filter(|c| c.pin == Pin::Relay)
        .collect();
    let open_ms = relay[1].at_ms - relay[0].at_ms;
    assert!(
        (300..1000).contains(&open_ms),
        "relay open for {open_ms} ms (changed to 400 at the kiosk)"
    );
    let store = Store::open(
        &StoreOptions::from_config(&config),
        Arc::new(SystemClock::new()),
    )
    .unwrap();
    let changes: Vec<_> = store
        .recent_audit(50)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "setting_changed")
        .map(|a| (a.actor, a.subject, a.detail))
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes.iter().any(|(actor, key, detail)| actor == "A1"
        && key == "gpio.relay_ms"
        && detail.contains("\"from\":\"1500\"")
        && detail.contains("\"to\":\"400\"")));
    // And after a restart the change is still in force.
    let again = clockface::store::settings::effective(&config, &store).unwrap();
    assert_eq!(again.gpio.relay_ms, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_consent_notice_is_asked_at_the_next_checkin_and_a_decline_wipes_the_templates() {
    let mut sealed: Vec<Vec<u8>> = Vec::new();
    let mut h = start_with(true, VisionConfig::default(), |config, _| {
        config.policy.consent_text_version = "2026-06".into();
        config.policy.consent_change_summary = "Templates now kept 30 days after leaving".into();
        let c = rusqlite::Connection::open(config.store.data_dir.join("clockface.db")).unwrap();
        let mut st = c
            .prepare("SELECT sealed FROM templates WHERE employee_id = 'E1'")
            .unwrap();
        sealed = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    });
    assert_eq!(sealed.len(), 2);
    h.until("camera", |r| {
        matches!(r, Report::Camera(CameraStatus::Live))
    })
    .await;
    h.feed.show(h.person("obama.jpg"));
    h.badge.send("04A1B2C3".into()).unwrap();
    h.until("the new notice", |r| {
        matches!(r, Report::Screen(Screen::Notice { text_version, summary, within_grace: true, .. })
            if text_version == "2026-06" && summary.contains("30 days"))
    })
    .await;
    h.ui.send(UiInput::Consent(
        false,
        clockface::base::protocol::ConsentScope::Device,
    ))
    .unwrap();
    h.until(
        "the PIN pad",
        |r| matches!(r, Report::Screen(Screen::PinPad { code, .. }) if code == "consent_declined"),
    )
    .await;
    h.ui.send(UiInput::Pin("1234".into())).unwrap();
    let seen = h.verdict().await;
    assert!(
        seen.iter()
            .any(|r| matches!(r, Report::Screen(Screen::Accepted { .. })))
    );
    // Sam, whose consent is for the old text too, is asked as well: once, at his check-in.
    h.feed.show(h.person("biden.jpg"));
    h.badge.send("04D4E5F6".into()).unwrap();
    h.until("Sam's notice", |r| {
        matches!(r, Report::Screen(Screen::Notice { .. }))
    })
    .await;
    let (records, _, dir) = h.finish_keep().await;
    assert_eq!(
        records,
        vec![(Outcome::Accepted, "E1".into(), String::new())]
    );
    let data = dir.path().join("data");
    let mut raw = std::fs::read(data.join("clockface.db")).unwrap();
    if let Ok(wal) = std::fs::read(data.join("clockface.db-wal")) {
        raw.extend(wal);
    }
    for s in &sealed {
        assert!(
            !raw.windows(s.len()).any(|w| w == s.as_slice()),
            "a declined template is still in the files"
        );
    }
    let store = Store::open(
        &StoreOptions {
            read_only: true,
            data_dir: data,
            ..StoreOptions::from_config(&Config::default())
        },
        Arc::new(SystemClock::new()),
    )
    .unwrap();
    let c = store.consent("E1").unwrap().unwrap();
    assert_eq!(
        (c.given, c.text_version.as_str(), c.witness.as_str()),
        (false, "2026-06", "E1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minor_without_guardian_consent_is_refused_on_the_touchscreen() {
    let mut h = start_with(false, VisionConfig::default(), |_, store| {
        store
            .set_age(
                "A1",
                "E1",
                clockface::store::consent::Age {
                    birth_year: Some(2015),
                    is_minor: None,
                },
            )
            .unwrap();
    });
    h.until("camera", |r| {
        matches!(r, Report::Camera(CameraStatus::Live))
    })
    .await;
    h.badge.send("A1A1".into()).unwrap();
    h.until("admin", |r| {
        matches!(r, Report::Screen(Screen::Admin { .. }))
    })
    .await;
    h.ui.send(UiInput::Enrol("E1".into())).unwrap();
    let seen = h
        .until("the refusal", |r| {
            matches!(r, Report::Screen(Screen::EnrolDone { .. }))
        })
        .await;
    assert!(
        matches!(seen.last(), Some(Report::Screen(Screen::EnrolDone { enrolled: false, code, .. })) if code == "guardian_required"),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|r| matches!(r, Report::Screen(Screen::Consent { .. }))),
        "the consent text is not even shown"
    );
    let (_, _, _dir) = h.finish_keep().await;
}

/// A loopback address nothing listens on yet.
fn free_listen() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zk_client_pauses_the_running_kiosk_reads_its_punch_and_the_pause_ends() {
    let listen = free_listen();
    let mut h = start_with(false, VisionConfig::default(), |c, _| {
        c.zk.listen = listen.clone();
        c.zk.disable_seconds = 10;
        c.policy.direction = clockface::base::config::DirectionPolicy::Ask;
        c.policy.break_punches = true;
    });
    h.until("idle", |r| matches!(r, Report::Screen(Screen::Idle { .. })))
        .await;
    let addr: std::net::SocketAddr = listen.parse().unwrap();
    let pull = move |steps: &'static [&'static str]| {
        tokio::task::spawn_blocking(move || crate::hr::pyzk_at(addr, steps))
    };
    pull(&["disable"]).await.unwrap();
    h.until("paused", |r| {
        matches!(r, Report::Screen(Screen::Paused { .. }))
    })
    .await;
    // A tap while paused records nothing and says so.
    h.badge.send("04A1B2C3".into()).unwrap();
    h.until("paused again", |r| {
        matches!(r, Report::Screen(Screen::Paused { .. }))
    })
    .await;
    pull(&["enable"]).await.unwrap();
    h.until("idle", |r| matches!(r, Report::Screen(Screen::Idle { .. })))
        .await;
    // Break start picked on the screen, then badge + PIN.
    h.ui.send(UiInput::Punch(Punch::BreakOut)).unwrap();
    h.until("the pick", |r| {
        matches!(
            r,
            Report::Screen(Screen::Idle {
                chosen: Some(Punch::BreakOut),
                ..
            })
        )
    })
    .await;
    h.badge.send("04A1B2C3".into()).unwrap();
    h.until("the PIN pad", |r| {
        matches!(r, Report::Screen(Screen::PinPad { .. }))
    })
    .await;
    h.ui.send(UiInput::Pin("1234".into())).unwrap();
    h.verdict().await;
    let v = pull(&["attendance"]).await.unwrap();
    let att = v["attendance"].as_array().unwrap();
    assert_eq!(att.len(), 1, "{v}");
    assert_eq!(att[0][0], "E1");
    assert_eq!(att[0][2], 2, "break out is ZK state 2");
    // A disable nobody follows with enable ends by itself.
    pull(&["disable"]).await.unwrap();
    h.until("paused", |r| {
        matches!(r, Report::Screen(Screen::Paused { .. }))
    })
    .await;
    let t = std::time::Instant::now();
    h.until("idle again", |r| {
        matches!(r, Report::Screen(Screen::Idle { .. }))
    })
    .await;
    assert!(t.elapsed() < Duration::from_secs(15));
    let (records, _) = h.finish().await;
    assert_eq!(
        records,
        vec![(Outcome::Accepted, "E1".into(), String::new())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_update_notice_waits_for_a_check_in_then_holds_the_door_screen() {
    let listen = free_listen();
    let notice_dir = tempfile::tempdir().unwrap();
    let notice = notice_dir.path().join("notice");
    let mut h = start_with(false, VisionConfig::default(), |c, _| {
        c.health.listen = listen.clone();
        c.update.notice_file = notice.display().to_string();
    });
    h.until("idle", |r| matches!(r, Report::Screen(Screen::Idle { .. })))
        .await;
    let health = || async {
        clockface::kiosk::health::fetch(&listen, Duration::from_secs(5))
            .await
            .unwrap()
            .1
    };
    // A check-in under way when the update client asks to reboot: it finishes first.
    h.badge.send("04A1B2C3".into()).unwrap();
    h.until("the PIN pad", |r| {
        matches!(r, Report::Screen(Screen::PinPad { .. }))
    })
    .await;
    assert!(
        health().await.busy,
        "the health endpoint says a check-in is under way"
    );
    std::fs::write(&notice, "update\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = health().await;
    assert!(now.busy && !now.updating, "{now:?}");
    h.ui.send(UiInput::Pin("1234".into())).unwrap();
    // The verdict, then the update screen where the idle screen would be.
    h.until("the verdict", |r| {
        matches!(r, Report::Screen(Screen::Accepted { .. }))
    })
    .await;
    h.until("the update screen", |r| {
        matches!(r, Report::Screen(Screen::Updating))
    })
    .await;
    let now = health().await;
    assert!(!now.busy && now.updating, "{now:?}");
    // A tap while the update is under way records nothing; the screen stays.
    h.badge.send("04A1B2C3".into()).unwrap();
    h.until("the update screen again", |r| {
        matches!(r, Report::Screen(Screen::Updating))
    })
    .await;
    // The client gave up (or the reboot failed): the kiosk serves again.
    std::fs::remove_file(&notice).unwrap();
    h.until("idle", |r| matches!(r, Report::Screen(Screen::Idle { .. })))
        .await;
    let (records, _) = h.finish().await;
    assert_eq!(
        records,
        vec![(Outcome::Accepted, "E1".into(), String::new())]
    );
}

/// A kiosk where Alex has stood in front of the idle camera for 1.5 s and then left the frame.
async fn alex_stood_in_front_and_turned_away() -> Harness {
    let mut h = start(true, VisionConfig::default());
    h.until("camera", |r| {
        matches!(r, Report::Camera(CameraStatus::Live))
    })
    .await;
    h.feed.show(h.person("obama.jpg"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    h.feed.show(Scene::Empty);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_roll_gives_the_tap_the_face_already_in_front_of_the_camera() {
    // Alex turns away as the badge touches the reader: only the pre-roll saw the face.
    let mut h = alex_stood_in_front_and_turned_away().await;
    h.badge.send("04A1B2C3".into()).unwrap();
    let seen = h.verdict().await;
    assert!(
        seen.iter()
            .any(|r| matches!(r, Report::Screen(Screen::Accepted { name, .. }) if name == "Alex")),
        "{seen:#?}"
    );
    let (records, _) = h.finish().await;
    assert_eq!(records[0].0, Outcome::Accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_face_that_left_before_the_tap_is_not_used() {
    // A second after Alex left, someone taps Alex's badge with nobody in front.
    let mut h = alex_stood_in_front_and_turned_away().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    h.badge.send("04A1B2C3".into()).unwrap();
    let seen = h
        .until("the PIN pad", |r| {
            matches!(r, Report::Screen(Screen::PinPad { .. }))
        })
        .await;
    assert!(
        !seen
            .iter()
            .any(|r| matches!(r, Report::Screen(Screen::Accepted { .. }))),
        "{seen:#?}"
    );
}
