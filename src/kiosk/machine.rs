//! The check-in state machine: pure, no I/O, no clock of its own.
//!
//! [`Machine::step`] takes an [`Event`] and the time ([`Now`]) and returns [`Effect`]s for the
//! runner to carry out, in order: a record is always written (durably) before the feedback that
//! tells the person they are checked in. Everything a decision needs arrives in the event — the
//! runner looks the badge up, checks the PIN hash, and matches the face — so every path is tested
//! here with plain values and a simulated clock.
//!
//! Flow: idle → (badge, PIN or — if policy allows — a face alone) → capture window with guidance
//! and, when liveness evidence is weak, an active challenge → verdict → record → feedback → idle.
//! The types it speaks are in [`super::events`]; enrolment with consent is in `enrol`, a new
//! consent notice at the door in `notice`, the punch-type pick and a ZK client's pause in
//! `punch`.

use std::collections::HashMap;

use super::events::{
    AdminCmd, AdminPin, Effect, Event, Now, Person, Screen, Thresholds, VisionRequest,
};
use crate::base::config::{DirectionPolicy, PolicyConfig};
use crate::store::record::{Method, NewRecord, Outcome, Punch};
use crate::vision::detect::Face;
use crate::vision::quality::{Challenge, LivenessFusion};

mod capture;
mod enrol;
mod notice;
mod punch;

/// A face capture in progress for one person.
#[derive(Debug, Clone)]
struct Capture {
    person: Person,
    method: Method,
    deadline: u64,
    fusion: LivenessFusion,
    sims: Vec<f32>,
    prev: Option<Face>,
    challenge: Option<Challenge>,
    challenges_asked: u32,
    attempt: u32,
}

/// Where the machine is.
#[derive(Debug, Clone)]
enum State {
    Idle,
    Capture(Box<Capture>),
    Pin {
        person: Person,
        deadline: u64,
        attempts: u32,
    },
    Verdict {
        until: u64,
    },
    Admin {
        admin: Person,
        deadline: u64,
    },
    Consent {
        admin: Person,
        person: Person,
        deadline: u64,
    },
    /// Collecting templates: see [`enrol`].
    Enrol(Box<enrol::Enrolment>),
    /// A new consent notice waits for an answer: see [`notice`].
    Notice(Box<notice::Notice>),
}

/// The check-in state machine.
#[derive(Debug, Clone)]
pub struct Machine {
    policy: PolicyConfig,
    thr: Thresholds,
    state: State,
    /// Last accepted check-in per employee (monotonic ms), for anti-passback.
    last_accepted: HashMap<String, u64>,
    camera_live: bool,
    face_ready: bool,
    /// The punch type picked at the idle screen and until when (monotonic ms) it holds.
    chosen: Option<(Punch, u64)>,
    /// Check-ins paused by a ZK client until then (monotonic ms).
    paused_until: Option<u64>,
    /// The update client is about to reboot: nothing is taken until it is over.
    updating: bool,
}

const ADMIN_TIMEOUT_MS: u64 = 120_000;
const MAX_PIN_ATTEMPTS: u32 = 3;
const MAX_CHALLENGES: u32 = 2;

impl Machine {
    /// A machine in the idle state. `face_ready` is false when the models could not be loaded.
    pub fn new(policy: PolicyConfig, thr: Thresholds, face_ready: bool) -> Self {
        Machine {
            policy,
            thr,
            state: State::Idle,
            last_accepted: HashMap::new(),
            camera_live: true,
            face_ready,
            chosen: None,
            paused_until: None,
            updating: false,
        }
    }

    /// Replaces the policy (the backend sent a new one); the next step uses it.
    pub fn set_policy(&mut self, policy: PolicyConfig) {
        self.policy = policy;
    }

    /// Replaces the face thresholds (an admin changed them); the next decision uses them.
    pub fn set_thresholds(&mut self, thr: Thresholds) {
        self.thr = thr;
    }

    /// Seeds anti-passback after a restart: `employee` was accepted `ago_ms` before `now`.
    pub fn remember_checkin(&mut self, employee: &str, at_mono_ms: u64) {
        self.last_accepted.insert(employee.to_string(), at_mono_ms);
    }

    /// The update screen is up.
    pub fn updating(&self) -> bool {
        self.updating
    }

    /// Whether face check-in can be offered now.
    pub fn face_available(&self) -> bool {
        self.face_ready && self.camera_live
    }

    /// What the vision pipeline should do for the current state.
    pub fn vision_request(&self) -> VisionRequest {
        match &self.state {
            State::Capture(c) => VisionRequest::Verify(c.person.id.clone()),
            State::Enrol(_) => VisionRequest::Enrol,
            State::Idle if self.policy.face_only && self.face_available() => {
                VisionRequest::Identify
            }
            _ => VisionRequest::Off,
        }
    }

    /// The person whose PIN the pad is asking for.
    pub fn pin_for(&self) -> Option<&Person> {
        match &self.state {
            State::Pin { person, .. } => Some(person),
            _ => None,
        }
    }

    /// True when idle (the runner uses it for PIR wake-up and the demo for pacing).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    fn punch(&self, now: Now) -> Punch {
        if let Some(p) = self.chosen_punch(now) {
            return p;
        }
        match self.policy.direction {
            DirectionPolicy::In => Punch::In,
            DirectionPolicy::Out => Punch::Out,
            DirectionPolicy::Auto => Punch::Auto,
            DirectionPolicy::Schedule | DirectionPolicy::Ask => {
                if now.minute_of_day >= self.policy.out_from_minute().unwrap_or(720) {
                    Punch::Out
                } else {
                    Punch::In
                }
            }
        }
    }

    fn verdict(&mut self, now: Now) {
        self.state = State::Verdict {
            until: now.mono_ms + self.policy.verdict_seconds as u64 * 1000,
        };
    }

    fn reject(
        &mut self,
        now: Now,
        person: Option<&Person>,
        method: Method,
        reason: &'static str,
        text: String,
        scores: (Option<f32>, Option<f32>),
    ) -> Vec<Effect> {
        self.verdict(now);
        vec![
            Effect::Record(NewRecord {
                outcome: Outcome::Rejected,
                employee_id: person.map(|p| p.id.clone()).unwrap_or_default(),
                punch: self.punch(now),
                method,
                reason: reason.into(),
                liveness: scores.0,
                match_score: scores.1,
            }),
            Effect::Show(Screen::Rejected {
                name: person.map(|p| p.name.clone()),
                reason: text,
                code: reason.into(),
            }),
            Effect::Led(false),
            Effect::Buzz(false),
        ]
    }

    fn accept(
        &mut self,
        now: Now,
        person: &Person,
        method: Method,
        liveness: Option<f32>,
        similarity: Option<f32>,
    ) -> Vec<Effect> {
        let punch = self.punch(now);
        self.chosen = None;
        self.last_accepted.insert(person.id.clone(), now.mono_ms);
        self.verdict(now);
        vec![
            Effect::Record(NewRecord {
                outcome: Outcome::Accepted,
                employee_id: person.id.clone(),
                punch,
                method,
                reason: String::new(),
                liveness,
                match_score: similarity,
            }),
            Effect::Show(Screen::Accepted {
                name: person.name.clone(),
                punch,
            }),
            Effect::OpenDoor,
            Effect::Led(true),
            Effect::Buzz(true),
        ]
    }

    fn ask_pin(&mut self, now: Now, person: Person, reason: &str, code: &str) -> Vec<Effect> {
        let screen = Screen::PinPad {
            name: person.name.clone(),
            reason: reason.into(),
            code: code.into(),
        };
        self.state = State::Pin {
            person,
            deadline: now.mono_ms + self.policy.pin_seconds as u64 * 1000,
            attempts: 0,
        };
        vec![Effect::Show(screen)]
    }

    /// Advances the machine.
    pub fn step(&mut self, event: Event, now: Now) -> Vec<Effect> {
        if let Event::Camera { live } = event {
            return self.on_camera(now, live);
        }
        match event {
            Event::Pause { seconds } => return self.on_pause(now, seconds),
            Event::Updating(on) => return self.on_updating(now, on),
            Event::ChoosePunch(p) if matches!(self.state, State::Idle) => {
                return self.on_choose(now, p);
            }
            Event::ChoosePunch(_) => return Vec::new(),
            _ => {}
        }
        if matches!(self.state, State::Idle) && (self.paused_until.is_some() || self.updating) {
            if self.paused(now) {
                // Paused: taps and faces are not check-ins; the screen says so.
                return match event {
                    Event::Tick => Vec::new(),
                    _ => vec![Effect::Show(self.pause_or_idle(now))],
                };
            }
            return vec![Effect::Show(self.idle_screen(now))];
        }
        let state = std::mem::replace(&mut self.state, State::Idle);
        match (state, event) {
            (State::Idle, Event::Badge { person: None, .. }) => self.reject(
                now,
                None,
                Method::BadgePin,
                "unknown_badge",
                "badge not recognised".into(),
                (None, None),
            ),
            (
                State::Idle,
                Event::Badge {
                    person: Some(p), ..
                },
            ) => self.on_badge(now, p),
            (State::Idle, Event::Face(obs)) if self.policy.face_only => self.on_idle_face(now, obs),
            (State::Capture(c), Event::Face(obs)) => self.on_capture_face(now, *c, obs),
            (State::Capture(c), Event::Tick) if now.mono_ms >= c.deadline => {
                let (reason, text) = if c.sims.is_empty() {
                    ("no_usable_face", "no clear face seen")
                } else {
                    ("face_timeout", "face not confirmed in time")
                };
                self.face_failed(now, *c, reason, text)
            }
            (
                State::Pin {
                    person, attempts, ..
                },
                Event::Pin { ok },
            ) => self.on_pin(now, person, attempts, ok),
            (
                State::Pin {
                    person, deadline, ..
                },
                Event::Tick,
            ) if now.mono_ms >= deadline => self.reject(
                now,
                Some(&person),
                Method::BadgePin,
                "pin_timeout",
                "no PIN entered".into(),
                (None, None),
            ),
            (State::Verdict { until }, Event::Tick) if now.mono_ms >= until => {
                vec![Effect::Show(self.pause_or_idle(now))]
            }
            (State::Admin { admin, .. }, Event::Admin(AdminCmd::Enrol(person))) => {
                self.start_consent(now, admin, person)
            }
            (State::Admin { admin, .. }, Event::Admin(AdminCmd::Exit)) => {
                vec![
                    Effect::Audit {
                        actor: admin.id,
                        action: "admin_exited",
                    },
                    Effect::Show(self.pause_or_idle(now)),
                ]
            }
            (State::Admin { deadline, .. } | State::Consent { deadline, .. }, Event::Tick)
                if now.mono_ms >= deadline =>
            {
                vec![Effect::Show(self.pause_or_idle(now))]
            }
            (State::Consent { admin, person, .. }, Event::Consent { given, scope }) => {
                self.on_consent(now, admin, person, given, scope)
            }
            (State::Notice(n), Event::Consent { given, .. }) => {
                self.on_notice_answer(now, *n, given)
            }
            (State::Notice(n), Event::Tick) if now.mono_ms >= n.deadline => {
                self.notice_lapsed(now, *n)
            }
            (State::Enrol(e), Event::Face(obs)) => self.on_enrol_face(now, e, obs),
            (State::Enrol(e), Event::Tick) if now.mono_ms >= e.deadline => {
                self.enrol_timed_out(now, e)
            }
            (State::Idle, Event::AdminPin(result)) => self.on_admin_pin(now, result),
            (state, _) => {
                // Anything else leaves the state as it was (a badge during a verdict, a stray
                // frame while idle, a tick before a deadline).
                self.state = state;
                vec![]
            }
        }
    }

    /// The camera stopped or came back: a capture in progress falls back to the PIN pad.
    fn on_camera(&mut self, now: Now, live: bool) -> Vec<Effect> {
        self.camera_live = live;
        // A camera lost mid-capture sends the person to the PIN pad.
        if !live && let State::Capture(c) = &self.state {
            let person = c.person.clone();
            if person.has_pin {
                return self.ask_pin(now, person, "camera unavailable", "camera_unavailable");
            }
            self.verdict(now);
            return vec![Effect::Show(Screen::Rejected {
                name: Some(person.name),
                reason: "camera unavailable and no PIN set: see your administrator".into(),
                code: "camera_unavailable_no_pin".into(),
            })];
        }
        if self.is_idle() {
            return vec![Effect::Show(self.pause_or_idle(now))];
        }
        vec![]
    }

    /// The PIN pad's result for `person`, after `attempts` earlier wrong PINs.
    fn on_pin(&mut self, now: Now, person: Person, attempts: u32, ok: bool) -> Vec<Effect> {
        if ok {
            return self.accept(now, &person, Method::BadgePin, None, None);
        }
        let attempts = attempts + 1;
        if attempts >= MAX_PIN_ATTEMPTS {
            return self.reject(
                now,
                Some(&person),
                Method::BadgePin,
                "pin_mismatch",
                "wrong PIN, too many attempts".into(),
                (None, None),
            );
        }
        let screen = Screen::PinPad {
            name: person.name.clone(),
            reason: format!("wrong PIN, {} attempt(s) left", MAX_PIN_ATTEMPTS - attempts),
            code: "pin_wrong".into(),
        };
        self.state = State::Pin {
            person: person.clone(),
            deadline: now.mono_ms + self.policy.pin_seconds as u64 * 1000,
            attempts,
        };
        vec![
            Effect::Record(NewRecord {
                outcome: Outcome::Rejected,
                employee_id: person.id.clone(),
                punch: self.punch(now),
                method: Method::BadgePin,
                reason: "pin_mismatch".into(),
                liveness: None,
                match_score: None,
            }),
            Effect::Show(screen),
            Effect::Buzz(false),
        ]
    }

    /// An admin PIN typed at the idle screen: admin mode for an active admin, a refusal else.
    fn on_admin_pin(&mut self, now: Now, result: AdminPin) -> Vec<Effect> {
        let (reason, code) = match result {
            AdminPin::Accepted(admin) if admin.is_admin && admin.active => {
                return self.enter_admin(now, admin);
            }
            AdminPin::LockedOut => ("admin PIN entry locked: try again later", "admin_locked"),
            AdminPin::Accepted(_) | AdminPin::Wrong => ("wrong admin PIN", "admin_pin_wrong"),
        };
        self.verdict(now);
        vec![
            Effect::Show(Screen::Rejected {
                name: None,
                reason: reason.into(),
                code: code.into(),
            }),
            Effect::Led(false),
            Effect::Buzz(false),
        ]
    }

    /// Admin mode for `admin` (by badge or admin PIN), audited, with its own timeout.
    fn enter_admin(&mut self, now: Now, admin: Person) -> Vec<Effect> {
        let screen = Screen::Admin {
            name: admin.name.clone(),
            id: admin.id.clone(),
        };
        let audit = Effect::Audit {
            actor: admin.id.clone(),
            action: "admin_entered",
        };
        self.state = State::Admin {
            admin,
            deadline: now.mono_ms + ADMIN_TIMEOUT_MS,
        };
        vec![audit, Effect::Show(screen)]
    }

    fn on_badge(&mut self, now: Now, p: Person) -> Vec<Effect> {
        if !p.active {
            return self.reject(
                now,
                Some(&p),
                Method::BadgePin,
                "inactive",
                "not allowed to check in here".into(),
                (None, None),
            );
        }
        if p.is_admin {
            return self.enter_admin(now, p);
        }
        let window = self.policy.anti_passback_minutes as u64 * 60_000;
        if let Some(&last) = self.last_accepted.get(&p.id)
            && window > 0
            && now.mono_ms.saturating_sub(last) < window
        {
            self.verdict(now);
            return vec![
                Effect::Record(NewRecord {
                    outcome: Outcome::Rejected,
                    employee_id: p.id.clone(),
                    punch: self.punch(now),
                    method: if p.face_enrolled {
                        Method::BadgeFace
                    } else {
                        Method::BadgePin
                    },
                    reason: "already_checked_in".into(),
                    liveness: None,
                    match_score: None,
                }),
                Effect::Show(Screen::AlreadyCheckedIn {
                    name: p.name.clone(),
                    minutes_ago: (now.mono_ms - last) / 60_000,
                }),
            ];
        }
        if p.face_enrolled && self.face_available() {
            return self.begin_face(now, p, Method::BadgeFace, 0);
        }
        let (why, code) = if !p.face_enrolled {
            ("no face enrolment", "no_face_enrolment")
        } else if !self.face_ready {
            ("face check-in unavailable", "face_unavailable")
        } else {
            ("camera unavailable", "camera_unavailable")
        };
        self.without_face(now, p, why, code)
    }
}
