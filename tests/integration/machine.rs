//! The check-in state machine, driven with plain values and simulated time.

use clockface::base::config::{DirectionPolicy, PolicyConfig};
use clockface::base::protocol::ConsentScope;
use clockface::kiosk::events::*;
use clockface::kiosk::machine::Machine;
use clockface::store::record::{Method, Outcome, Punch};
use clockface::vision::detect::Face;
use clockface::vision::liveness::LivenessFrame;
use clockface::vision::quality::Guidance;

fn person(id: &str, face: bool, pin: bool) -> Person {
    Person {
        id: id.into(),
        name: format!("Name {id}"),
        is_admin: false,
        active: true,
        face_enrolled: face,
        has_pin: pin,
        notice: None,
        guardian_required: false,
    }
}

const THRESHOLDS: Thresholds = Thresholds {
    verify: 0.5,
    identify: 0.6,
    liveness: 0.2,
    dtn: 0.2,
    liveness_frames: 3,
};

fn machine(face_ready: bool) -> Machine {
    Machine::new(PolicyConfig::default(), THRESHOLDS, face_ready)
}

/// 08:30 local plus `secs`.
fn at(secs: u64) -> Now {
    Now {
        mono_ms: 1_000_000 + secs * 1000,
        minute_of_day: (8 * 60 + 30 + (secs / 60) as u32) % 1440,
    }
}

fn face(nose_x: f32, jitter: f32) -> Face {
    Face {
        bbox: [80.0 + jitter, 60.0, 120.0, 150.0],
        score: 0.95,
        landmarks: [
            [110.0 + jitter, 110.0],
            [170.0 + jitter, 110.0],
            [nose_x + jitter, 140.0],
            [115.0 + jitter, 170.0],
            [165.0 + jitter, 170.0],
        ],
    }
}

fn obs(score: f32, sim: f32, jitter: f32) -> Event {
    Event::Face(FaceObs {
        guidance: Some(Guidance::Ok),
        face: Some(face(140.0, jitter)),
        liveness: Some(LivenessFrame::with_attack(score, 400)),
        similarity: Some(sim),
        ..Default::default()
    })
}

fn badge(p: Option<Person>) -> Event {
    Event::Badge { person: p }
}

fn records(effects: &[Effect]) -> Vec<(Outcome, String, Method, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Record(r) => {
                Some((r.outcome, r.employee_id.clone(), r.method, r.reason.clone()))
            }
            _ => None,
        })
        .collect()
}

fn run(m: &mut Machine, events: Vec<(u64, Event)>) -> Vec<Effect> {
    events
        .into_iter()
        .flat_map(|(t, e)| m.step(e, at(t)))
        .collect()
}

#[test]
fn enrolled_badge_and_live_matching_face_is_accepted_record_first() {
    let mut m = machine(true);
    let out = run(
        &mut m,
        vec![
            (0, badge(Some(person("E1", true, true)))),
            (1, obs(0.05, 0.8, 0.0)),
            (1, obs(0.06, 0.79, 0.7)),
            (2, obs(0.04, 0.81, -0.5)),
        ],
    );
    assert_eq!(
        records(&out),
        vec![(
            Outcome::Accepted,
            "E1".into(),
            Method::BadgeFace,
            String::new()
        )]
    );
    let rec = out
        .iter()
        .position(|e| matches!(e, Effect::Record(_)))
        .unwrap();
    let door = out.iter().position(|e| *e == Effect::OpenDoor).unwrap();
    assert!(rec < door, "the record is durable before the door opens");
    assert!(out.contains(&Effect::Led(true)));
    let Some(Effect::Record(r)) = out.iter().find(|e| matches!(e, Effect::Record(_))) else {
        unreachable!()
    };
    assert_eq!(r.punch, Punch::In);
    assert!((r.match_score.unwrap() - 0.8).abs() < 1e-6 && r.liveness.unwrap() < 0.2);
    // The verdict clears after verdict_seconds.
    assert!(m.step(Event::Tick, at(3)).is_empty());
    assert!(matches!(
        m.step(Event::Tick, at(6)).as_slice(),
        [Effect::Show(Screen::Idle { .. })]
    ));
    assert!(m.is_idle());
}

#[test]
fn unknown_badge_is_refused_and_recorded_without_a_person() {
    let mut m = machine(true);
    let out = m.step(badge(None), at(0));
    assert_eq!(
        records(&out),
        vec![(
            Outcome::Rejected,
            String::new(),
            Method::BadgePin,
            "unknown_badge".into()
        )]
    );
    assert!(out.contains(&Effect::Led(false)) && !out.contains(&Effect::OpenDoor));
}

#[test]
fn a_different_face_fails_twice_then_the_pin_is_offered() {
    let mut m = machine(true);
    let mut out = run(
        &mut m,
        vec![
            (0, badge(Some(person("E1", true, true)))),
            (1, obs(0.05, 0.1, 0.0)),
            (1, obs(0.05, 0.12, 0.6)),
            (2, obs(0.05, 0.09, -0.4)),
        ],
    );
    out.extend(run(
        &mut m,
        vec![
            (3, obs(0.05, 0.1, 0.0)),
            (3, obs(0.05, 0.11, 0.6)),
            (4, obs(0.05, 0.1, -0.4)),
        ],
    ));
    assert_eq!(
        records(&out),
        vec![
            (
                Outcome::Rejected,
                "E1".into(),
                Method::BadgeFace,
                "face_mismatch".into()
            ),
            (
                Outcome::Rejected,
                "E1".into(),
                Method::BadgeFace,
                "face_mismatch".into()
            )
        ]
    );
    assert!(
        matches!(out.last(), Some(Effect::Show(Screen::PinPad { reason, .. })) if reason.contains("enter your PIN"))
    );
    assert!(!out.contains(&Effect::OpenDoor));
    assert_eq!(m.pin_for().unwrap().id, "E1");
    let out = m.step(Event::Pin { ok: true }, at(10));
    assert_eq!(
        records(&out),
        vec![(
            Outcome::Accepted,
            "E1".into(),
            Method::BadgePin,
            String::new()
        )]
    );
}

#[test]
fn a_spoof_is_refused_with_liveness_failed() {
    let p = person("E1", true, false);
    let policy = PolicyConfig {
        face_attempts: 1,
        ..PolicyConfig::default()
    };
    let mut m1 = Machine::new(policy, THRESHOLDS, true);
    let out = run(
        &mut m1,
        vec![
            (0, badge(Some(p))),
            (1, obs(0.9, 0.8, 0.0)),
            (1, obs(0.95, 0.8, 0.5)),
            (2, obs(0.7, 0.8, -0.5)),
        ],
    );
    assert_eq!(
        records(&out),
        vec![(
            Outcome::Rejected,
            "E1".into(),
            Method::BadgeFace,
            "liveness_failed".into()
        )]
    );
    assert!(!out.contains(&Effect::OpenDoor));
    assert!(out.contains(&Effect::Led(false)));
}

#[test]
fn weak_evidence_asks_for_a_turn_and_a_turn_is_accepted() {
    let mut m = machine(true);
    // Identical frames: live scores, but no natural motion.
    let out = run(
        &mut m,
        vec![
            (0, badge(Some(person("E1", true, true)))),
            (1, obs(0.05, 0.8, 0.0)),
            (1, obs(0.05, 0.8, 0.0)),
            (2, obs(0.05, 0.8, 0.0)),
        ],
    );
    let Some(Effect::Show(Screen::Challenge { prompt, .. })) = out.last() else {
        panic!("{out:?}")
    };
    assert_eq!(prompt, "turn your head slightly left");
    assert!(records(&out).is_empty());
    // Turning the wrong way does nothing; turning left (nose toward image right) passes.
    assert!(
        records(&m.step(
            Event::Face(FaceObs {
                guidance: Some(Guidance::Ok),
                face: Some(face(130.0, 0.0)),
                liveness: Some(LivenessFrame::with_attack(0.05, 400)),
                similarity: Some(0.8),
                ..Default::default()
            }),
            at(3)
        ))
        .is_empty()
    );
    let out = m.step(
        Event::Face(FaceObs {
            guidance: Some(Guidance::Ok),
            face: Some(face(150.0, 0.0)),
            liveness: Some(LivenessFrame::with_attack(0.05, 400)),
            similarity: Some(0.78),
            ..Default::default()
        }),
        at(4),
    );
    assert_eq!(
        records(&out),
        vec![(
            Outcome::Accepted,
            "E1".into(),
            Method::BadgeFace,
            String::new()
        )]
    );
}

#[test]
fn anti_passback_refuses_a_second_checkin_within_the_window() {
    let mut m = machine(true);
    let p = person("E1", false, true);
    let mut out = run(
        &mut m,
        vec![
            (0, badge(Some(p.clone()))),
            (1, Event::Pin { ok: true }),
            (10, Event::Tick),
        ],
    );
    out.extend(run(&mut m, vec![(120, badge(Some(p.clone())))]));
    assert_eq!(
        records(&out),
        vec![
            (
                Outcome::Accepted,
                "E1".into(),
                Method::BadgePin,
                String::new()
            ),
            (
                Outcome::Rejected,
                "E1".into(),
                Method::BadgePin,
                "already_checked_in".into()
            )
        ]
    );
    assert!(out.iter().any(|e| matches!(
        e,
        Effect::Show(Screen::AlreadyCheckedIn { minutes_ago: 1, .. })
    )));
    // After the window a new check-in starts normally.
    let out = run(&mut m, vec![(200, Event::Tick), (400, badge(Some(p)))]);
    assert!(matches!(
        out.last(),
        Some(Effect::Show(Screen::PinPad { .. }))
    ));
}

#[test]
fn no_consent_models_missing_or_camera_lost_lead_to_the_pin_pad() {
    let mut m = machine(true);
    let out = m.step(badge(Some(person("E1", false, true))), at(0));
    assert!(
        matches!(out.as_slice(), [Effect::Show(Screen::PinPad { reason, .. })] if reason == "no face enrolment")
    );

    let mut m = machine(false);
    let out = m.step(badge(Some(person("E1", true, true))), at(0));
    assert!(
        matches!(out.as_slice(), [Effect::Show(Screen::PinPad { reason, .. })] if reason == "face check-in unavailable")
    );

    let mut m = machine(true);
    m.step(badge(Some(person("E1", true, true))), at(0));
    let out = m.step(Event::Camera { live: false }, at(1));
    assert!(
        matches!(out.as_slice(), [Effect::Show(Screen::PinPad { reason, .. })] if reason == "camera unavailable")
    );
    let out = m.step(Event::Pin { ok: true }, at(2));
    assert_eq!(records(&out).len(), 1);
}

#[test]
fn direction_follows_the_schedule() {
    let mut m = machine(true);
    let p = person("E1", false, true);
    m.step(badge(Some(p.clone())), at(0));
    let morning = m.step(Event::Pin { ok: true }, at(1));
    let mut late = at(0);
    late.minute_of_day = 17 * 60;
    late.mono_ms += 3_600_000;
    m.step(Event::Tick, late);
    m.step(badge(Some(p)), late);
    let evening = m.step(Event::Pin { ok: true }, late);
    let dir = |v: &[Effect]| {
        v.iter().find_map(|e| {
            if let Effect::Record(r) = e {
                Some(r.punch)
            } else {
                None
            }
        })
    };
    assert_eq!(dir(&morning), Some(Punch::In));
    assert_eq!(dir(&evening), Some(Punch::Out));

    let policy = PolicyConfig {
        direction: DirectionPolicy::Auto,
        ..PolicyConfig::default()
    };
    let mut auto = Machine::new(policy, THRESHOLDS, true);
    auto.step(badge(Some(person("E2", false, true))), at(0));
    assert_eq!(
        dir(&auto.step(Event::Pin { ok: true }, at(1))),
        Some(Punch::Auto)
    );
}

#[test]
fn no_face_until_the_deadline_is_recorded_then_retried() {
    let mut m = machine(true);
    let mut out = m.step(badge(Some(person("E1", true, true))), at(0));
    out.extend(m.step(
        Event::Face(FaceObs {
            guidance: Some(Guidance::TooDark),
            ..Default::default()
        }),
        at(1),
    ));
    assert!(matches!(
        out.last(),
        Some(Effect::Show(Screen::Capture {
            guidance: Guidance::TooDark,
            ..
        }))
    ));
    let out = m.step(Event::Tick, at(9));
    assert_eq!(
        records(&out),
        vec![(
            Outcome::Rejected,
            "E1".into(),
            Method::BadgeFace,
            "no_usable_face".into()
        )]
    );
    assert!(
        matches!(out.last(), Some(Effect::Show(Screen::Capture { .. }))),
        "a second window: {out:?}"
    );
}

#[test]
fn wrong_pin_three_times_is_refused() {
    let mut m = machine(true);
    let mut out = m.step(badge(Some(person("E1", false, true))), at(0));
    for t in 1..=3 {
        out.extend(m.step(Event::Pin { ok: false }, at(t)));
    }
    let r = records(&out);
    assert_eq!(r.len(), 3);
    assert!(
        r.iter()
            .all(|x| x.0 == Outcome::Rejected && x.3 == "pin_mismatch")
    );
    assert!(matches!(
        out.iter().rev().find(|e| matches!(e, Effect::Show(_))),
        Some(Effect::Show(Screen::Rejected { .. }))
    ));
}

#[test]
fn admin_enrols_with_consent_and_declining_stores_nothing() {
    let mut m = machine(true);
    let mut admin = person("A1", false, true);
    admin.is_admin = true;
    let out = m.step(badge(Some(admin.clone())), at(0));
    assert!(out.contains(&Effect::Audit {
        actor: "A1".into(),
        action: "admin_entered"
    }));
    let out = m.step(
        Event::Admin(AdminCmd::Enrol(person("E7", false, true))),
        at(1),
    );
    assert!(
        matches!(out.last(), Some(Effect::Show(Screen::Consent { text_version, .. })) if text_version == "2026-01")
    );
    let out = m.step(
        Event::Consent {
            given: false,
            scope: ConsentScope::Device,
        },
        at(2),
    );
    assert_eq!(
        out[0],
        Effect::RecordConsent {
            employee: "E7".into(),
            given: false,
            scope: ConsentScope::Device,
            text_version: "2026-01".into(),
            witness: "A1".into()
        }
    );
    assert!(
        !out.iter()
            .any(|e| matches!(e, Effect::StoreTemplates { .. }))
    );

    // Accepting: three distinct good frames become three templates.
    m.step(Event::Tick, at(10));
    m.step(badge(Some(admin)), at(11));
    m.step(
        Event::Admin(AdminCmd::Enrol(person("E7", false, true))),
        at(12),
    );
    let mut out = m.step(
        Event::Consent {
            given: true,
            scope: ConsentScope::Device,
        },
        at(13),
    );
    for (k, j) in [0.0f32, 0.0, 0.8, 1.6].iter().enumerate() {
        let mut e = obs(0.05, 0.0, *j);
        if let Event::Face(f) = &mut e {
            f.similarity = None;
            f.embedding = Some(vec![1.0, 0.0, 0.0, k as f32 * 0.01]);
        }
        out.extend(m.step(e, at(14)));
    }
    let stored = out.iter().find_map(|e| {
        if let Effect::StoreTemplates {
            embeddings,
            employee,
            admin,
        } = e
        {
            Some((embeddings.len(), employee.clone(), admin.clone()))
        } else {
            None
        }
    });
    assert_eq!(
        stored,
        Some((3, "E7".into(), "A1".into())),
        "the repeated identical frame is skipped"
    );
}

#[test]
fn enrolment_restarts_when_a_different_face_appears() {
    let mut m = machine(true);
    let mut admin = person("A1", false, true);
    admin.is_admin = true;
    m.step(badge(Some(admin)), at(0));
    m.step(
        Event::Admin(AdminCmd::Enrol(person("E7", false, true))),
        at(1),
    );
    let mut out = m.step(
        Event::Consent {
            given: true,
            scope: ConsentScope::Device,
        },
        at(2),
    );
    let frames = [
        (0.0, [1.0, 0.0]),
        (0.8, [1.0, 0.05]),
        (1.6, [0.0, 1.0]),
        (2.4, [0.05, 1.0]),
        (3.2, [0.0, 1.0]),
    ];
    for (j, e) in frames {
        let mut ev = obs(0.05, 0.0, j);
        if let Event::Face(f) = &mut ev {
            f.embedding = Some(e.to_vec());
        }
        out.extend(m.step(ev, at(3)));
    }
    let stored = out.iter().find_map(|e| {
        if let Effect::StoreTemplates { embeddings, .. } = e {
            Some(embeddings.clone())
        } else {
            None
        }
    });
    let stored = stored.expect("three consistent frames after the restart");
    assert_eq!(stored.len(), 3);
    assert!(
        stored.iter().all(|e| e[1] > 0.9),
        "only the second person's frames: {stored:?}"
    );
}

#[test]
fn face_only_identifies_from_idle_when_policy_allows() {
    let policy = PolicyConfig {
        face_only: true,
        ..PolicyConfig::default()
    };
    let mut m = Machine::new(policy, THRESHOLDS, true);
    assert_eq!(m.vision_request(), VisionRequest::Identify);
    let p = person("E3", true, false);
    let mut out = Vec::new();
    for (t, j) in [(0, 0.0), (1, 0.5), (1, -0.5)] {
        out.extend(m.step(
            Event::Face(FaceObs {
                guidance: Some(Guidance::Ok),
                face: Some(face(140.0, j)),
                liveness: Some(LivenessFrame::with_attack(0.05, 300)),
                identified: Some((p.clone(), 0.75)),
                ..Default::default()
            }),
            at(t),
        ));
    }
    assert_eq!(
        records(&out),
        vec![(
            Outcome::Accepted,
            "E3".into(),
            Method::FaceOnly,
            String::new()
        )]
    );
    assert_eq!(
        machine(true).vision_request(),
        VisionRequest::Off,
        "off without the policy"
    );
}

fn punch_of(v: &[Effect]) -> Option<Punch> {
    v.iter().find_map(|e| match e {
        Effect::Record(r) => Some(r.punch),
        _ => None,
    })
}

fn screen_of(v: &[Effect]) -> Option<&Screen> {
    v.iter().find_map(|e| match e {
        Effect::Show(s) => Some(s),
        _ => None,
    })
}

#[test]
fn a_punch_picked_on_the_idle_screen_goes_into_the_record_and_lapses_back_to_the_schedule() {
    let policy = PolicyConfig {
        direction: DirectionPolicy::Ask,
        break_punches: true,
        ..PolicyConfig::default()
    };
    let mut m = Machine::new(policy, THRESHOLDS, true);
    // Break types offered, overtime not (the policy does not allow it).
    assert_eq!(
        m.punch_choices(),
        vec![Punch::In, Punch::Out, Punch::BreakOut, Punch::BreakIn]
    );
    let shown = m.step(Event::ChoosePunch(Punch::BreakOut), at(0));
    assert!(matches!(
        screen_of(&shown),
        Some(Screen::Idle {
            chosen: Some(Punch::BreakOut),
            ..
        })
    ));
    // A type the policy does not offer is ignored.
    let shown = m.step(Event::ChoosePunch(Punch::OvertimeIn), at(1));
    assert!(matches!(
        screen_of(&shown),
        Some(Screen::Idle {
            chosen: Some(Punch::BreakOut),
            ..
        })
    ));
    let p = person("E1", false, true);
    m.step(badge(Some(p.clone())), at(2));
    let out = m.step(Event::Pin { ok: true }, at(3));
    assert_eq!(punch_of(&out), Some(Punch::BreakOut));
    assert!(matches!(
        screen_of(&out),
        Some(Screen::Accepted {
            punch: Punch::BreakOut,
            ..
        })
    ));
    // The pick was used up: the next person gets the schedule's (08:30 is "in").
    m.step(Event::Tick, at(30));
    let q = person("E2", false, true);
    m.step(badge(Some(q.clone())), at(31));
    assert_eq!(
        punch_of(&m.step(Event::Pin { ok: true }, at(32))),
        Some(Punch::In)
    );
    // A pick nobody follows with a badge lapses.
    m.step(Event::Tick, at(60));
    m.step(Event::ChoosePunch(Punch::Out), at(61));
    m.step(badge(Some(person("E3", false, true))), at(61 + 16));
    assert_eq!(
        punch_of(&m.step(Event::Pin { ok: true }, at(61 + 17))),
        Some(Punch::In)
    );
}

#[test]
fn a_zk_pause_refuses_taps_without_records_and_ends_by_itself_or_on_enable() {
    let mut m = machine(true);
    let shown = m.step(Event::Pause { seconds: Some(60) }, at(0));
    assert!(matches!(
        screen_of(&shown),
        Some(Screen::Paused { seconds: 60 })
    ));
    let tap = m.step(badge(Some(person("E1", false, true))), at(10));
    assert!(records(&tap).is_empty(), "a paused kiosk records nothing");
    assert!(matches!(
        screen_of(&tap),
        Some(Screen::Paused { seconds: 50 })
    ));
    assert!(m.is_idle());
    // Past its time the pause ends at the next tick, and taps work again.
    let back = m.step(Event::Tick, at(61));
    assert!(matches!(screen_of(&back), Some(Screen::Idle { .. })));
    m.step(badge(Some(person("E1", false, true))), at(62));
    assert_eq!(records(&m.step(Event::Pin { ok: true }, at(63))).len(), 1);
    // "Enable" ends a pause at once.
    m.step(Event::Tick, at(100));
    m.step(Event::Pause { seconds: Some(300) }, at(101));
    let back = m.step(Event::Pause { seconds: None }, at(102));
    assert!(matches!(screen_of(&back), Some(Screen::Idle { .. })));
    let out = m.step(badge(Some(person("E2", false, true))), at(103));
    assert!(matches!(screen_of(&out), Some(Screen::PinPad { .. })));
    // A check-in under way when the pause arrives finishes first.
    let mut m = machine(true);
    m.step(badge(Some(person("E3", false, true))), at(0));
    assert!(m.step(Event::Pause { seconds: Some(60) }, at(1)).is_empty());
    assert_eq!(records(&m.step(Event::Pin { ok: true }, at(2))).len(), 1);
    let after = m.step(Event::Tick, at(10));
    assert!(matches!(screen_of(&after), Some(Screen::Paused { .. })));
}
