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

use std::collections::HashMap;

use serde::Serialize;

use crate::config::{DirectionPolicy, PolicyConfig};
use crate::store::record::{Direction, Method, NewRecord, Outcome};
use crate::vision::detect::Face;
use crate::vision::liveness::LivenessFrame;
use crate::vision::quality::{
    Challenge, ChallengeKind, Guidance, LivenessDecision, LivenessFusion,
};

/// The time as the machine needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds (timeouts, anti-passback).
    pub mono_ms: u64,
    /// Local minutes after midnight (direction schedule).
    pub minute_of_day: u32,
}

/// What the kiosk knows about a person when their badge is tapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// Employee id.
    pub id: String,
    /// Name for the verdict screen.
    pub name: String,
    /// May enter admin mode.
    pub is_admin: bool,
    /// On the roster and allowed to check in.
    pub active: bool,
    /// Consent given and templates enrolled for the current embedder.
    pub face_enrolled: bool,
    /// A PIN is set.
    pub has_pin: bool,
}

/// One analysed camera frame, as the runner reports it.
#[derive(Debug, Clone, Default)]
pub struct FaceObs {
    /// Gate result for the chosen face.
    pub guidance: Option<Guidance>,
    /// The chosen face.
    pub face: Option<Face>,
    /// Its liveness, when the gates passed.
    pub liveness: Option<LivenessFrame>,
    /// Similarity to the claimed person's templates (verification).
    pub similarity: Option<f32>,
    /// Who the face is, by 1:N search (face-only mode), with the similarity.
    pub identified: Option<(Person, f32)>,
    /// The embedding (only during enrolment).
    pub embedding: Option<Vec<f32>>,
}

/// Admin commands (from the admin screens or the demo script).
#[derive(Debug, Clone, PartialEq)]
pub enum AdminCmd {
    /// Start enrolling this person's face.
    Enrol(Person),
    /// Leave admin mode.
    Exit,
}

/// Inputs to the machine.
#[derive(Debug, Clone)]
pub enum Event {
    /// A badge was read; `person` is who it names on the roster (None: unknown).
    Badge {
        /// The normalised badge id (never logged).
        badge: String,
        /// Who it names.
        person: Option<Person>,
    },
    /// The PIN pad result for the person the machine is asking (checked by the runner).
    Pin {
        /// Whether the PIN matched.
        ok: bool,
    },
    /// A camera frame was analysed.
    Face(FaceObs),
    /// Time passed (the runner ticks at least every 100 ms).
    Tick,
    /// The camera stopped or came back.
    Camera {
        /// True when frames flow.
        live: bool,
    },
    /// An admin command.
    Admin(AdminCmd),
    /// The employee's answer on the consent screen.
    Consent {
        /// Accepted?
        given: bool,
    },
    /// An admin PIN typed at the idle screen matched nobody (the runner checked it; a match
    /// arrives as [`Event::Badge`] with the admin).
    AdminPinFailed {
        /// Admin PIN entry is locked out.
        locked: bool,
    },
}

/// What the screen shows; the UI renders it, the demo prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "screen", rename_all = "snake_case")]
pub enum Screen {
    /// Waiting: "tap your badge or look at the camera".
    Idle {
        /// Whether face check-in is available right now.
        face_available: bool,
    },
    /// Capturing the face, with guidance.
    Capture {
        /// Who is being verified.
        name: String,
        /// What to do.
        guidance: Guidance,
    },
    /// An active liveness challenge.
    Challenge {
        /// Who.
        name: String,
        /// The prompt ("turn your head slightly left").
        prompt: String,
    },
    /// The PIN pad.
    PinPad {
        /// Who.
        name: String,
        /// Why the PIN is asked for (no face enrolment, camera unavailable, face not recognised).
        reason: String,
        /// The same as a stable code the UI translates: `no_face_enrolment`,
        /// `face_unavailable`, `camera_unavailable`, `pin_wrong`, or the face failure's record
        /// reason (`face_mismatch`, `liveness_failed`, ...).
        code: String,
    },
    /// Accepted.
    Accepted {
        /// Who.
        name: String,
        /// In, out or auto.
        direction: Direction,
    },
    /// Refused, with the reason in plain words.
    Rejected {
        /// Who, if known.
        name: Option<String>,
        /// Why.
        reason: String,
        /// The same as a stable code the UI translates (the record's reason code, or
        /// `camera_unavailable_no_pin`, `store_failed`).
        code: String,
    },
    /// Anti-passback: seen recently, nothing new recorded.
    AlreadyCheckedIn {
        /// Who.
        name: String,
        /// Minutes since the last check-in.
        minutes_ago: u64,
    },
    /// Admin mode.
    Admin {
        /// The admin.
        name: String,
        /// The admin's employee id: the actor of changes made on the admin pages.
        id: String,
    },
    /// Consent screen before face enrolment.
    Consent {
        /// Who is asked.
        name: String,
        /// Version of the consent text shown.
        text_version: String,
    },
    /// Enrolment capture progress.
    Enrolling {
        /// Who.
        name: String,
        /// Good frames so far.
        captured: u32,
        /// Frames needed.
        needed: u32,
        /// What to do.
        guidance: Guidance,
    },
    /// Enrolment finished or refused.
    EnrolDone {
        /// Who.
        name: String,
        /// Whether templates were stored.
        enrolled: bool,
        /// What happened.
        message: String,
    },
}

/// What the runner must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Append a signed record durably (before any feedback that follows).
    Record(NewRecord),
    /// Show a screen.
    Show(Screen),
    /// Pulse the door relay for the configured time.
    OpenDoor,
    /// Light the green (true) or red LED for the verdict time.
    Led(bool),
    /// Sound the accept (true) or refuse buzzer pattern.
    Buzz(bool),
    /// Record a consent decision (and wipe templates if declined).
    RecordConsent {
        /// Employee.
        employee: String,
        /// Given or declined.
        given: bool,
        /// Consent text version.
        text_version: String,
        /// Witnessing admin.
        witness: String,
    },
    /// Store these embeddings as the employee's templates (encrypted); no image is kept.
    StoreTemplates {
        /// Employee.
        employee: String,
        /// The witnessing admin.
        admin: String,
        /// One embedding per good frame.
        embeddings: Vec<Vec<f32>>,
    },
    /// Write an admin action to the signed audit log.
    Audit {
        /// Who.
        actor: String,
        /// What.
        action: &'static str,
    },
}

/// What the runner should ask the vision pipeline for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisionRequest {
    /// Nothing: save the CPU.
    Off,
    /// Verify frames against this person's templates.
    Verify(String),
    /// Identify faces 1:N (face-only policy, idle screen).
    Identify,
    /// Enrolment: gates, liveness and embedding.
    Enrol,
}

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
    Enrol {
        admin: Person,
        person: Person,
        deadline: u64,
        embeddings: Vec<Vec<f32>>,
        prev: Option<Face>,
    },
}

/// Thresholds the machine applies to what the runner measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// 1:1 similarity to accept.
    pub verify: f32,
    /// 1:N similarity to identify.
    pub identify: f32,
    /// Spoof score below which a frame looks live.
    pub liveness: f32,
    /// Good frames the liveness decision needs.
    pub liveness_frames: usize,
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

    /// Whether face check-in can be offered now.
    pub fn face_available(&self) -> bool {
        self.face_ready && self.camera_live
    }

    /// What the vision pipeline should do for the current state.
    pub fn vision_request(&self) -> VisionRequest {
        match &self.state {
            State::Capture(c) => VisionRequest::Verify(c.person.id.clone()),
            State::Enrol { .. } => VisionRequest::Enrol,
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

    fn direction(&self, now: Now) -> Direction {
        match self.policy.direction {
            DirectionPolicy::In => Direction::In,
            DirectionPolicy::Out => Direction::Out,
            DirectionPolicy::Auto => Direction::Auto,
            DirectionPolicy::Schedule => {
                if now.minute_of_day >= self.policy.out_from_minute().unwrap_or(720) {
                    Direction::Out
                } else {
                    Direction::In
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
                direction: self.direction(now),
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
        let direction = self.direction(now);
        self.last_accepted.insert(person.id.clone(), now.mono_ms);
        self.verdict(now);
        vec![
            Effect::Record(NewRecord {
                outcome: Outcome::Accepted,
                employee_id: person.id.clone(),
                direction,
                method,
                reason: String::new(),
                liveness,
                match_score: similarity,
            }),
            Effect::Show(Screen::Accepted {
                name: person.name.clone(),
                direction,
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

    fn start_capture(
        &mut self,
        now: Now,
        person: Person,
        method: Method,
        attempt: u32,
    ) -> Vec<Effect> {
        let screen = Screen::Capture {
            name: person.name.clone(),
            guidance: Guidance::NoFace,
        };
        self.state = State::Capture(Box::new(Capture {
            person,
            method,
            deadline: now.mono_ms + self.policy.capture_seconds as u64 * 1000,
            fusion: LivenessFusion::new(self.thr.liveness, self.thr.liveness_frames),
            sims: Vec::new(),
            prev: None,
            challenge: None,
            challenges_asked: 0,
            attempt,
        }));
        vec![Effect::Show(screen)]
    }

    /// A failed face attempt: recorded; then another window, the PIN pad, or a refusal.
    fn face_failed(
        &mut self,
        now: Now,
        c: Capture,
        reason: &'static str,
        text: &str,
    ) -> Vec<Effect> {
        let median = |v: &[f32]| {
            let mut v = v.to_vec();
            v.sort_by(f32::total_cmp);
            v.get(v.len() / 2).copied()
        };
        let liveness = match c.fusion.decide() {
            LivenessDecision::Live { score }
            | LivenessDecision::Spoof { score }
            | LivenessDecision::Weak { score, .. } => Some(score),
            LivenessDecision::Pending { .. } => None,
        };
        let record = Effect::Record(NewRecord {
            outcome: Outcome::Rejected,
            employee_id: c.person.id.clone(),
            direction: self.direction(now),
            method: c.method,
            reason: reason.into(),
            liveness,
            match_score: median(&c.sims),
        });
        let next = c.attempt + 1;
        if next < self.policy.face_attempts {
            let mut out = vec![record];
            out.extend(self.start_capture(now, c.person, c.method, next));
            return out;
        }
        if c.person.has_pin && c.method == Method::BadgeFace {
            let mut out = vec![record];
            out.extend(self.ask_pin(now, c.person, &format!("{text}: enter your PIN"), reason));
            return out;
        }
        self.verdict(now);
        vec![
            record,
            Effect::Show(Screen::Rejected {
                name: Some(c.person.name.clone()),
                reason: text.into(),
                code: reason.into(),
            }),
            Effect::Led(false),
            Effect::Buzz(false),
        ]
    }

    /// Advances the machine.
    pub fn step(&mut self, event: Event, now: Now) -> Vec<Effect> {
        if let Event::Camera { live } = event {
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
                return vec![Effect::Show(Screen::Idle {
                    face_available: self.face_available(),
                })];
            }
            return vec![];
        }
        if let (State::Idle, Event::AdminPinFailed { locked }) = (&self.state, &event) {
            self.verdict(now);
            let (reason, code) = if *locked {
                ("admin PIN entry locked: try again later", "admin_locked")
            } else {
                ("wrong admin PIN", "admin_pin_wrong")
            };
            return vec![
                Effect::Show(Screen::Rejected {
                    name: None,
                    reason: reason.into(),
                    code: code.into(),
                }),
                Effect::Led(false),
                Effect::Buzz(false),
            ];
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
                    person,
                    attempts,
                    deadline,
                },
                Event::Pin { ok },
            ) => {
                let _ = deadline;
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
                        direction: self.direction(now),
                        method: Method::BadgePin,
                        reason: "pin_mismatch".into(),
                        liveness: None,
                        match_score: None,
                    }),
                    Effect::Show(screen),
                    Effect::Buzz(false),
                ]
            }
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
                vec![Effect::Show(Screen::Idle {
                    face_available: self.face_available(),
                })]
            }
            (State::Admin { admin, .. }, Event::Admin(AdminCmd::Enrol(person))) => {
                let screen = Screen::Consent {
                    name: person.name.clone(),
                    text_version: self.policy.consent_text_version.clone(),
                };
                let audit = Effect::Audit {
                    actor: admin.id.clone(),
                    action: "enrolment_started",
                };
                self.state = State::Consent {
                    admin,
                    person,
                    deadline: now.mono_ms + ADMIN_TIMEOUT_MS,
                };
                vec![audit, Effect::Show(screen)]
            }
            (State::Admin { admin, .. }, Event::Admin(AdminCmd::Exit)) => {
                vec![
                    Effect::Audit {
                        actor: admin.id,
                        action: "admin_exited",
                    },
                    Effect::Show(Screen::Idle {
                        face_available: self.face_available(),
                    }),
                ]
            }
            (State::Admin { deadline, .. } | State::Consent { deadline, .. }, Event::Tick)
                if now.mono_ms >= deadline =>
            {
                vec![Effect::Show(Screen::Idle {
                    face_available: self.face_available(),
                })]
            }
            (State::Consent { admin, person, .. }, Event::Consent { given }) => {
                let consent = Effect::RecordConsent {
                    employee: person.id.clone(),
                    given,
                    text_version: self.policy.consent_text_version.clone(),
                    witness: admin.id.clone(),
                };
                if !given || !self.face_available() {
                    let message = if given {
                        "face check-in is unavailable right now; consent recorded"
                    } else {
                        "consent declined: badge + PIN stays available"
                    };
                    self.verdict(now);
                    return vec![
                        consent,
                        Effect::Show(Screen::EnrolDone {
                            name: person.name.clone(),
                            enrolled: false,
                            message: message.into(),
                        }),
                    ];
                }
                let screen = Screen::Enrolling {
                    name: person.name.clone(),
                    captured: 0,
                    needed: self.policy.enrol_frames,
                    guidance: Guidance::NoFace,
                };
                self.state = State::Enrol {
                    admin,
                    person,
                    deadline: now.mono_ms + self.policy.capture_seconds as u64 * 2000,
                    embeddings: Vec::new(),
                    prev: None,
                };
                vec![consent, Effect::Show(screen)]
            }
            (
                State::Enrol {
                    admin,
                    person,
                    deadline,
                    mut embeddings,
                    prev,
                },
                Event::Face(obs),
            ) => {
                let guidance = obs.guidance.unwrap_or(Guidance::NoFace);
                let live = obs
                    .liveness
                    .as_ref()
                    .is_some_and(|l| l.score < self.thr.liveness);
                // Distinct frames only: the face must have moved a little since the last one used.
                let moved = match (&prev, &obs.face) {
                    (Some(a), Some(b)) => a
                        .landmarks
                        .iter()
                        .zip(&b.landmarks)
                        .any(|(p, q)| (p[0] - q[0]).abs() > 0.5 || (p[1] - q[1]).abs() > 0.5),
                    _ => true,
                };
                let mut prev = prev;
                if guidance == Guidance::Ok
                    && live
                    && moved
                    && let Some(e) = obs.embedding
                {
                    // Every template must be of the same person: a frame that does not match
                    // the first restarts the collection (someone else stepped in).
                    if embeddings.first().is_some_and(|first| {
                        crate::vision::embed::cosine(first, &e) < self.thr.verify
                    }) {
                        embeddings.clear();
                    }
                    embeddings.push(e);
                    prev = obs.face.clone();
                }
                let needed = self.policy.enrol_frames;
                if embeddings.len() as u32 >= needed {
                    self.verdict(now);
                    return vec![
                        Effect::StoreTemplates {
                            employee: person.id.clone(),
                            admin: admin.id.clone(),
                            embeddings,
                        },
                        Effect::Show(Screen::EnrolDone {
                            name: person.name.clone(),
                            enrolled: true,
                            message: format!(
                                "{needed} face templates stored (encrypted); no image kept"
                            ),
                        }),
                        Effect::Buzz(true),
                    ];
                }
                let screen = Screen::Enrolling {
                    name: person.name.clone(),
                    captured: embeddings.len() as u32,
                    needed,
                    guidance: if guidance == Guidance::Ok && !live {
                        Guidance::LookAtCamera
                    } else {
                        guidance
                    },
                };
                self.state = State::Enrol {
                    admin,
                    person,
                    deadline,
                    embeddings,
                    prev,
                };
                vec![Effect::Show(screen)]
            }
            (
                State::Enrol {
                    person, deadline, ..
                },
                Event::Tick,
            ) if now.mono_ms >= deadline => {
                self.verdict(now);
                vec![Effect::Show(Screen::EnrolDone {
                    name: person.name,
                    enrolled: false,
                    message: "enrolment timed out: no templates stored".into(),
                })]
            }
            (state, _) => {
                // Anything else leaves the state as it was (a badge during a verdict, a stray
                // frame while idle, a tick before a deadline).
                self.state = state;
                vec![]
            }
        }
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
            let screen = Screen::Admin {
                name: p.name.clone(),
                id: p.id.clone(),
            };
            let audit = Effect::Audit {
                actor: p.id.clone(),
                action: "admin_entered",
            };
            self.state = State::Admin {
                admin: p,
                deadline: now.mono_ms + ADMIN_TIMEOUT_MS,
            };
            return vec![audit, Effect::Show(screen)];
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
                    direction: self.direction(now),
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
            return self.start_capture(now, p, Method::BadgeFace, 0);
        }
        if p.has_pin {
            let (why, code) = if !p.face_enrolled {
                ("no face enrolment", "no_face_enrolment")
            } else if !self.face_ready {
                ("face check-in unavailable", "face_unavailable")
            } else {
                ("camera unavailable", "camera_unavailable")
            };
            return self.ask_pin(now, p, why, code);
        }
        self.reject(
            now,
            Some(&p),
            Method::BadgePin,
            "no_method",
            "no face enrolment and no PIN: see your administrator".into(),
            (None, None),
        )
    }

    fn on_idle_face(&mut self, now: Now, obs: FaceObs) -> Vec<Effect> {
        match obs.identified.clone() {
            Some((p, _)) if p.active && p.face_enrolled && obs.guidance == Some(Guidance::Ok) => {
                let window = self.policy.anti_passback_minutes as u64 * 60_000;
                if self
                    .last_accepted
                    .get(&p.id)
                    .is_some_and(|&last| window > 0 && now.mono_ms.saturating_sub(last) < window)
                {
                    return vec![]; // face-only: someone lingering is not a new attempt
                }
                let mut out = self.start_capture(
                    now,
                    p,
                    Method::FaceOnly,
                    self.policy.face_attempts.saturating_sub(1),
                );
                if let State::Capture(c) = std::mem::replace(&mut self.state, State::Idle) {
                    out.extend(self.on_capture_face(now, *c, obs));
                }
                out
            }
            _ => {
                self.state = State::Idle;
                vec![]
            }
        }
    }

    fn on_capture_face(&mut self, now: Now, mut c: Capture, obs: FaceObs) -> Vec<Effect> {
        let guidance = obs.guidance.unwrap_or(Guidance::NoFace);
        let similarity = obs.similarity.or(obs
            .identified
            .as_ref()
            .filter(|(p, _)| p.id == c.person.id)
            .map(|(_, s)| *s));
        let (Some(face), Some(live), Some(sim), Guidance::Ok) =
            (obs.face.clone(), obs.liveness.clone(), similarity, guidance)
        else {
            let screen = Screen::Capture {
                name: c.person.name.clone(),
                guidance,
            };
            self.state = State::Capture(Box::new(c));
            return vec![Effect::Show(screen)];
        };
        c.fusion.push(&live, &face);
        c.sims.push(sim);
        c.prev = Some(face.clone());
        let thr = if c.method == Method::FaceOnly {
            self.thr.identify
        } else {
            self.thr.verify
        };
        let mut sims = c.sims.clone();
        sims.sort_by(f32::total_cmp);
        let median_sim = sims[sims.len() / 2];
        let decision = c.fusion.decide();
        let live_score = match &decision {
            LivenessDecision::Live { score }
            | LivenessDecision::Spoof { score }
            | LivenessDecision::Weak { score, .. } => Some(*score),
            LivenessDecision::Pending { .. } => None,
        };
        // A challenge in progress: a matching face that turned as asked is accepted.
        if let Some(ch) = c.challenge {
            if ch.satisfied_by(&face) && sim >= thr {
                let person = c.person.clone();
                return self.accept(now, &person, c.method, live_score, Some(median_sim));
            }
            let screen = Screen::Challenge {
                name: c.person.name.clone(),
                prompt: ch.prompt().into(),
            };
            self.state = State::Capture(Box::new(c));
            return vec![Effect::Show(screen)];
        }
        match decision {
            LivenessDecision::Pending { .. } => {
                let screen = Screen::Capture {
                    name: c.person.name.clone(),
                    guidance: Guidance::Ok,
                };
                self.state = State::Capture(Box::new(c));
                vec![Effect::Show(screen)]
            }
            LivenessDecision::Spoof { .. } => self.face_failed(
                now,
                *Box::new(c),
                "liveness_failed",
                "face could not be confirmed as live",
            ),
            LivenessDecision::Live { score } => {
                if median_sim >= thr {
                    let person = c.person.clone();
                    self.accept(now, &person, c.method, Some(score), Some(median_sim))
                } else {
                    self.face_failed(now, c, "face_mismatch", "face does not match the badge")
                }
            }
            LivenessDecision::Weak { .. } => {
                if median_sim < thr {
                    return self.face_failed(
                        now,
                        c,
                        "face_mismatch",
                        "face does not match the badge",
                    );
                }
                if c.challenges_asked >= MAX_CHALLENGES {
                    return self.face_failed(
                        now,
                        c,
                        "liveness_failed",
                        "face could not be confirmed as live",
                    );
                }
                let kind = if c.challenges_asked.is_multiple_of(2) {
                    ChallengeKind::TurnLeft
                } else {
                    ChallengeKind::TurnRight
                };
                let ch = Challenge::new(kind, &face);
                c.challenges_asked += 1;
                c.challenge = Some(ch);
                c.deadline = c.deadline.max(now.mono_ms + 5000);
                let screen = Screen::Challenge {
                    name: c.person.name.clone(),
                    prompt: ch.prompt().into(),
                };
                self.state = State::Capture(Box::new(c));
                vec![Effect::Show(screen)]
            }
        }
    }
}
