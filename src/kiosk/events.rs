//! What goes into the check-in machine and what comes out: events, effects, screens, and the
//! plain values they carry. Types only; the decisions are in [`super::machine`].

use serde::Serialize;

use crate::base::protocol::ConsentScope;
use crate::store::record::{NewRecord, Punch};
use crate::vision::detect::Face;
use crate::vision::liveness::LivenessFrame;
use crate::vision::quality::Guidance;

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
    /// Their consent is for an older notice: they are asked again before their face is used.
    pub notice: Option<NoticeDue>,
    /// A minor here with no guardian consent recorded: face enrolment is refused.
    pub guardian_required: bool,
}

/// A newer consent notice one person has not answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NoticeDue {
    /// The grace period still lets their face be used while they have not answered.
    pub within_grace: bool,
    /// The scope of the consent they gave before (an acceptance keeps it).
    pub scope: ConsentScope,
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

/// The result of an admin PIN typed at the idle screen (no badge says whose it is).
#[derive(Debug, Clone, PartialEq)]
pub enum AdminPin {
    /// It is this active admin's PIN: enter admin mode.
    Accepted(Person),
    /// It matched no admin.
    Wrong,
    /// Admin PIN entry is locked out after repeated failures.
    LockedOut,
}

/// Inputs to the machine.
#[derive(Debug, Clone)]
pub enum Event {
    /// A badge was read; `person` is who it names on the roster (None: unknown). The badge id
    /// itself stays with the runner: no decision needs it.
    Badge {
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
    /// The employee's answer on the consent screen or the new-notice screen.
    Consent {
        /// Accepted?
        given: bool,
        /// Where the template may go (the new-notice screen keeps the earlier scope).
        scope: ConsentScope,
    },
    /// An admin PIN typed at the idle screen, as the runner checked it against every admin.
    AdminPin(AdminPin),
    /// A punch-type button tapped at the idle screen (policy `direction = "ask"`).
    ChoosePunch(Punch),
    /// A ZK client disabled check-ins for `Some(seconds)`, or enabled them again (`None`).
    Pause {
        /// How long the pause may last.
        seconds: Option<u32>,
    },
    /// The update client is about to reboot into an update (`true`), or gave up (`false`):
    /// no check-in is taken meanwhile.
    Updating(bool),
}

/// What the screen shows; the UI renders it, the demo prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "screen", rename_all = "snake_case")]
pub enum Screen {
    /// Waiting: "tap your badge or look at the camera".
    Idle {
        /// Whether face check-in is available right now.
        face_available: bool,
        /// The punch types the screen offers (empty unless the policy says "ask").
        punches: Vec<Punch>,
        /// The one picked, while the pick holds.
        chosen: Option<Punch>,
    },
    /// Check-ins paused by an HR system reading the kiosk; back by itself.
    Paused {
        /// At most this many seconds more.
        seconds: u32,
    },
    /// An update is being put in place: the kiosk reboots and is back in about a minute.
    Updating,
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
        /// In, out, break, overtime or auto.
        punch: Punch,
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
        /// Whether scope "site" (every door of the site) is offered beside "device".
        site_scope: bool,
    },
    /// A new consent notice, shown once at the next check-in of someone who consented to an
    /// older one: accept (their face goes on being used) or decline (templates wiped).
    Notice {
        /// Who is asked.
        name: String,
        /// Version of the new consent text.
        text_version: String,
        /// What changed, as the backend or the config says.
        summary: String,
        /// Whether their face may still be used for now without an answer.
        within_grace: bool,
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
        /// The same as a stable code the UI translates: `enrolled`, `declined`,
        /// `face_unavailable`, `guardian_required`, `timeout`.
        code: String,
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
        /// Where the template may go.
        scope: ConsentScope,
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
    /// Pre-roll (the runner's, never the machine's): the face in front of the idle kiosk,
    /// analysed before anyone taps; no matching.
    Track,
}

/// Thresholds the machine applies to what the runner measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// 1:1 similarity to accept.
    pub verify: f32,
    /// 1:N similarity to identify.
    pub identify: f32,
    /// Fused attack score at or above which an attempt is a presentation attack.
    pub liveness: f32,
    /// The DTN's own threshold, which puts its score on the fused scale.
    pub dtn: f32,
    /// Good frames the liveness decision needs.
    pub liveness_frames: usize,
}
