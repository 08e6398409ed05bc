//! The runner: connects the pure [`Machine`] to the camera, the vision worker, the badge reader,
//! the PIN pad and admin screens, the GPIO and the store, under tokio.
//!
//! Threads: the camera's capture thread (see `camera`), a badge-reader thread (readers block),
//! and a vision worker that owns the models — frames are analysed one at a time, always the
//! newest, so a slow frame never queues others. The async loop owns the machine and the store,
//! and carries out effects in order: a record is appended (fsync'd) before the screen, LED or
//! door say anything. SIGTERM/SIGINT end the loop between events, so no record is half-written;
//! systemd hears READY, WATCHDOG and STOPPING. Each check-in runs in a tracing span that names
//! no person.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::machine::{
    AdminCmd, Effect, Event, FaceObs, Machine, Now, Person, Screen, Thresholds, VisionRequest,
};
use super::notify::Notifier;
use crate::camera::{Camera, CameraStatus};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::hw::badge::BadgeReader;
use crate::hw::gpio::{Gpio, Pin, buzzer_pattern};
use crate::store::Store;
use crate::store::audit::NewAudit;
use crate::store::record::Outcome;
use crate::vision::image::Frame;
use crate::vision::matcher::{self, Gallery};
use crate::vision::{FaceAvailability, Vision};

/// Input from the touchscreen (or the demo script, or a test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiInput {
    /// Digits typed on the PIN pad.
    Pin(String),
    /// Admin: start enrolment of an employee.
    Enrol(String),
    /// Admin: leave admin mode.
    ExitAdmin,
    /// The consent answer.
    Consent(bool),
    /// A PIN typed for admin mode at the idle screen.
    AdminPin(String),
    /// An admin changed settings (already checked and stored): reload them.
    SettingsChanged,
}

/// What the kiosk did, for the demo's narration, tests and (later) the UI.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// Face check-in availability at start.
    Started(FaceAvailability),
    /// The screen changed.
    Screen(Screen),
    /// A record was appended (durably).
    Recorded {
        /// Its sequence number.
        seq: u64,
        /// Accepted or rejected.
        outcome: Outcome,
        /// Failure reason code.
        reason: String,
        /// Employee id.
        employee: String,
    },
    /// An output pin changed.
    Pin(Pin, bool),
    /// The camera's status changed.
    Camera(CameraStatus),
    /// Tap-to-verdict latency of a check-in, in milliseconds.
    Latency(f64),
    /// The PIR sensor saw someone approach while the kiosk was idle: wake the screen.
    Motion,
    /// Something failed; the kiosk carries on.
    Error(String),
}

/// Everything the kiosk runs with.
pub struct Kiosk {
    /// The configuration.
    pub config: Config,
    /// The open store.
    pub store: Store,
    /// The models, or None in badge + PIN mode.
    pub vision: Option<Vision>,
    /// Why face check-in is (un)available.
    pub availability: FaceAvailability,
    /// The running camera.
    pub camera: Camera,
    /// Outputs.
    pub gpio: Box<dyn Gpio>,
    /// Badge reader.
    pub badge: Box<dyn BadgeReader>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The sync outbox, when it was started.
    pub outbox: Option<crate::sync::OutboxHandle>,
}

/// The handles that drive a kiosk built on simulated devices: what the camera sees, the
/// outputs it set, and the badge taps.
pub struct SimDevices {
    /// The scene the replayed camera shows.
    pub feed: crate::camera::replay::ReplayFeed,
    /// The simulated outputs, shared with the kiosk.
    pub gpio: crate::hw::gpio::SimGpio,
    /// Sends a badge number as if it were tapped.
    pub badge: std::sync::mpsc::Sender<String>,
}

impl Kiosk {
    /// A kiosk on a replayed camera at `fps` (640x480), simulated GPIO and badge reader, with
    /// no outbox: the one way the demo and the tests put a kiosk together without hardware.
    pub fn simulated(
        config: Config,
        store: Store,
        (vision, availability): (Option<Vision>, FaceAvailability),
        clock: Arc<dyn Clock>,
        fps: u32,
    ) -> (Kiosk, SimDevices) {
        use crate::camera::replay;
        let feed = replay::ReplayFeed::new();
        let camera = Camera::spawn(replay::opener(feed.clone(), fps, 640, 480));
        let gpio = crate::hw::gpio::SimGpio::new(clock.clone());
        let (reader, badge) = crate::hw::badge::SimBadge::new();
        let kiosk = Kiosk {
            config,
            store,
            vision,
            availability,
            camera,
            gpio: Box::new(gpio.clone()),
            badge: Box::new(reader),
            clock,
            outbox: None,
        };
        (kiosk, SimDevices { feed, gpio, badge })
    }
}

/// The policy in force: the backend's when it sent one, else the config's.
fn effective_policy(store: &Store, config: &Config) -> Result<crate::config::PolicyConfig> {
    Ok(match store.backend_policy()? {
        Some(doc) => doc.policy,
        None => config.policy.clone(),
    })
}

/// A request to the vision worker.
struct Job {
    frame: Arc<Frame>,
    request: VisionRequest,
    templates: Vec<Vec<f32>>,
    prev: Option<crate::vision::detect::Face>,
}

/// What the vision worker found: the observation, and for 1:N the employee id matched.
struct Done {
    obs: FaceObs,
    identified: Option<(String, f32)>,
}

fn vision_worker(
    mut v: Vision,
    gallery: Arc<std::sync::Mutex<(Gallery, Vec<String>)>>,
    jobs: std::sync::mpsc::Receiver<Job>,
    done: mpsc::UnboundedSender<Done>,
) {
    while let Ok(job) = jobs.recv() {
        let want_embedding = job.request != VisionRequest::Off;
        let analysis = match v.analyse(&job.frame, job.prev.as_ref(), true, want_embedding) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "frame analysis failed");
                let _ = done.send(Done {
                    obs: FaceObs::default(),
                    identified: None,
                });
                continue;
            }
        };
        let mut obs = FaceObs {
            guidance: Some(analysis.guidance),
            face: analysis.face.clone(),
            liveness: analysis.liveness.clone(),
            ..Default::default()
        };
        let mut identified = None;
        if let Some(e) = &analysis.embedding {
            match &job.request {
                VisionRequest::Verify(_) => obs.similarity = matcher::verify(e, &job.templates),
                VisionRequest::Identify => {
                    let g = gallery.lock().unwrap();
                    if let Some(hit) = g.0.best(e) {
                        identified = Some((g.1[g.0.owner(hit.index) as usize].clone(), hit.score));
                    }
                }
                VisionRequest::Enrol => obs.embedding = Some(e.clone()),
                VisionRequest::Off => {}
            }
        }
        if done.send(Done { obs, identified }).is_err() {
            return;
        }
    }
}

fn now(clock: &dyn Clock) -> Now {
    use chrono::Timelike;
    let local = chrono::DateTime::from_timestamp_millis(clock.wall_ms())
        .unwrap_or_default()
        .with_timezone(&chrono::Local);
    Now {
        mono_ms: clock.monotonic_ns() / 1_000_000,
        minute_of_day: local.hour() * 60 + local.minute(),
    }
}

/// Looks a person up for the machine.
pub fn person(store: &Store, id: &str, model: &str) -> Result<Option<Person>> {
    let Some(e) = store.employee(id)? else {
        return Ok(None);
    };
    let consent = store.consent(id)?.is_some_and(|c| c.given);
    Ok(Some(Person {
        face_enrolled: consent && store.template_count(id, model)? > 0,
        has_pin: store.has_pin(id)?,
        id: e.id,
        name: e.display_name,
        is_admin: e.is_admin,
        active: e.active,
    }))
}

fn build_gallery(store: &Store, model: &str, dims: usize) -> Result<(Gallery, Vec<String>)> {
    let mut g = Gallery::new(dims);
    let mut owners = Vec::new();
    for (id, templates) in store.all_templates(model)? {
        if store.consent(&id)?.is_some_and(|c| c.given) {
            for t in templates.iter().filter(|t| t.vector.len() == dims) {
                g.add(owners.len() as u32, &t.vector);
            }
            owners.push(id);
        }
    }
    Ok((g, owners))
}

/// Runs the kiosk until `shutdown` resolves. Reports go to `report` when given.
pub async fn run(
    mut k: Kiosk,
    mut ui: mpsc::UnboundedReceiver<UiInput>,
    report: Option<mpsc::UnboundedSender<Report>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let notifier = Notifier::from_env();
    let say = |r: Report| {
        if let Some(tx) = &report {
            let _ = tx.send(r);
        }
    };
    // The file's config stays as given; what admins changed at the kiosk is merged over it.
    let file_config = k.config.clone();
    k.config = crate::settings::effective(&file_config, &k.store)?;
    let vcfg = k.config.vision.clone();
    let model = vcfg.embedder.name();
    let policy = effective_policy(&k.store, &k.config)?;
    k.store.set_policy_version(policy.version);
    let mut machine = Machine::new(policy, thresholds(&vcfg), k.vision.is_some());
    let mut roster_changed = k.outbox.as_ref().map(|o| o.roster_changed.clone());
    // Anti-passback survives a restart: seed it from the store.
    let window_ms = k.config.policy.anti_passback_minutes as i64 * 60_000;
    let (wall, mono) = (k.clock.wall_ms(), k.clock.monotonic_ns() / 1_000_000);
    for (emp, at) in k.store.recent_checkins(wall - window_ms)? {
        machine.remember_checkin(&emp, mono.saturating_sub((wall - at).max(0) as u64));
    }
    say(Report::Started(k.availability.clone()));

    // Vision worker.
    let gallery = Arc::new(std::sync::Mutex::new(build_gallery(
        &k.store,
        model,
        vcfg.embedder.dims(),
    )?));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let job_tx = k.vision.take().map(|v| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let g = gallery.clone();
        std::thread::Builder::new()
            .name("vision".into())
            .spawn(move || vision_worker(v, g, rx, done_tx))
            .expect("spawn vision thread");
        tx
    });
    let mut busy = false;
    // When the current vision request started: frames from before it are never analysed.
    let mut request_since = (VisionRequest::Off, Instant::now());
    let mut templates: Vec<Vec<f32>> = Vec::new();
    let mut prev_face = None;

    // Badge reader thread.
    let (badge_tx, mut badge_rx) = mpsc::unbounded_channel::<String>();
    let mut reader = std::mem::replace(&mut k.badge, Box::new(crate::hw::badge::SimBadge::new().0));
    std::thread::Builder::new()
        .name("badge".into())
        .spawn(move || {
            loop {
                match reader.read() {
                    Ok(Some(b)) => {
                        if badge_tx.send(b).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        tracing::error!(error = %e, "badge reader failed; retrying in 2 s");
                        std::thread::sleep(Duration::from_secs(2));
                    }
                }
            }
        })
        .expect("spawn badge thread");

    let mut camera_status = k.camera.status.clone();
    let mut act = Actuator {
        pending: Vec::new(),
        tapped_at: None,
        gallery: gallery.clone(),
        model,
        dims: vcfg.embedder.dims(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut watchdog =
        tokio::time::interval(notifier.watchdog_every.unwrap_or(Duration::from_secs(3600)));
    let mut motion = false;
    let mut ticks = 0u64;
    // Retention purge at start and then daily.
    let mut next_purge = Instant::now();
    let mut span = tracing::Span::none();
    let health = start_health(&k)?;
    tokio::pin!(shutdown);
    notifier.ready();
    tracing::info!(face = ?k.availability, "kiosk ready");
    say(Report::Screen(Screen::Idle {
        face_available: machine.face_available(),
    }));

    loop {
        let event = tokio::select! {
            _ = &mut shutdown => break,
            Some(b) = badge_rx.recv() => {
                act.tapped_at = Some(Instant::now());
                span = tracing::info_span!("checkin", id = %uuid::Uuid::new_v4());
                let p = match k.store.employee_by_badge(&b)? {
                    Some(e) => person(&k.store, &e.id, model)?,
                    None => None,
                };
                if let Some(p) = &p {
                    templates = if p.face_enrolled {
                        k.store.templates(&p.id)?.into_iter().filter(|t| t.model == model).map(|t| t.vector).collect()
                    } else {
                        Vec::new()
                    };
                }
                let _g = span.enter();
                tracing::info!(known = p.is_some(), "badge read");
                Event::Badge { badge: b, person: p }
            }
            Some(input) = ui.recv() => match input {
                UiInput::Pin(digits) => match machine.pin_for().map(|p| p.id.clone()) {
                    Some(id) => {
                        let check = k.store.check_pin(&id, &digits)?;
                        if let crate::store::roster::PinCheck::LockedOut { .. } = check {
                            tracing::warn!("PIN entry locked out after repeated failures");
                        }
                        Event::Pin { ok: check == crate::store::roster::PinCheck::Ok }
                    }
                    None => continue,
                },
                UiInput::Enrol(id) => match person(&k.store, &id, model)? {
                    Some(p) => Event::Admin(AdminCmd::Enrol(p)),
                    None => {
                        say(Report::Error(format!("enrolment: {id:?} is not on the roster")));
                        continue;
                    }
                },
                UiInput::ExitAdmin => Event::Admin(AdminCmd::Exit),
                UiInput::Consent(given) => Event::Consent { given },
                UiInput::AdminPin(digits) if machine.is_idle() => {
                    use crate::store::roster::AdminPinCheck;
                    match k.store.check_admin_pin(&digits)? {
                        AdminPinCheck::Ok(id) => match person(&k.store, &id, model)? {
                            Some(p) => Event::Badge { badge: String::new(), person: Some(p) },
                            None => continue,
                        },
                        AdminPinCheck::Wrong | AdminPinCheck::NoAdminPin => {
                            tracing::warn!("wrong admin PIN");
                            Event::AdminPinFailed { locked: false }
                        }
                        AdminPinCheck::LockedOut { .. } => {
                            tracing::warn!("admin PIN entry locked out");
                            Event::AdminPinFailed { locked: true }
                        }
                    }
                }
                UiInput::AdminPin(_) => continue,
                UiInput::SettingsChanged => {
                    k.config = crate::settings::effective(&file_config, &k.store)?;
                    let policy = effective_policy(&k.store, &k.config)?;
                    k.store.set_policy_version(policy.version);
                    machine.set_policy(policy);
                    machine.set_thresholds(thresholds(&k.config.vision));
                    if let Some((h, _)) = &health {
                        h.set_device(k.config.device.clone());
                    }
                    if let Some(o) = &k.outbox {
                        o.wake.notify_one();
                    }
                    tracing::info!("settings changed at the kiosk are in force");
                    continue;
                }
            },
            Some(done) = done_rx.recv() => {
                busy = false;
                let mut obs = done.obs;
                prev_face = obs.face.clone();
                if let Some((id, score)) = done.identified
                    && let Some(p) = person(&k.store, &id, model)? {
                        obs.identified = Some((p, score));
                    }
                Event::Face(obs)
            }
            Ok(()) = camera_status.changed() => {
                let s = camera_status.borrow_and_update().clone();
                say(Report::Camera(s.clone()));
                Event::Camera { live: s == CameraStatus::Live }
            }
            _ = tick.tick() => {
                ticks += 1;
                if let Some((h, _)) = &health {
                    h.tick();
                }
                if Instant::now() >= next_purge && machine.is_idle() {
                    next_purge = Instant::now() + Duration::from_secs(86_400);
                    if let Err(e) = k.store.purge(k.config.retention.policy(), false) {
                        tracing::error!(error = %e, "retention purge failed");
                    }
                    if k.config.retention.pseudonymise_departed
                        && let Err(e) = k.store.pseudonymise_departed()
                    {
                        tracing::error!(error = %e, "pseudonymisation failed");
                    }
                }
                // The PIR input, twice a second: a rising edge while idle wakes the screen.
                if k.config.gpio.pir_pin.is_some() && ticks.is_multiple_of(5) {
                    let now_motion = k.gpio.motion().unwrap_or(false);
                    if now_motion && !motion && machine.is_idle() {
                        tracing::debug!("motion: waking the screen");
                        say(Report::Motion);
                    }
                    motion = now_motion;
                }
                let t = Instant::now();
                act.pending.retain(|&(at, pin, on)| {
                    if at <= t {
                        if let Err(e) = k.gpio.set(pin, on) { tracing::error!(error = %e, "gpio"); }
                        say(Report::Pin(pin, on));
                        false
                    } else { true }
                });
                Event::Tick
            }
            _ = watchdog.tick() => { notifier.watchdog(); continue; }
            Some(()) = async {
                match &mut roster_changed {
                    Some(rx) => rx.changed().await.ok(),
                    None => std::future::pending().await,
                }
            } => {
                // The outbox applied a new roster or policy from the backend.
                let policy = effective_policy(&k.store, &k.config)?;
                k.store.set_policy_version(policy.version);
                machine.set_policy(policy);
                let g = build_gallery(&k.store, model, vcfg.embedder.dims())?;
                *gallery.lock().unwrap_or_else(|p| p.into_inner()) = g;
                tracing::info!("roster and policy reloaded from the store");
                continue;
            }
        };
        let _g = span.enter();
        let effects = machine.step(event, now(&*k.clock));
        let wrote_record = effects.iter().any(|e| matches!(e, Effect::Record(_)));
        execute(&mut k, effects, &mut act, &say);
        if wrote_record && let Some(o) = &k.outbox {
            o.wake.notify_one();
        }
        drop(_g);
        // Keep the vision worker fed with the newest frame while the machine wants it.
        let request = machine.vision_request();
        if request != request_since.0 {
            request_since = (request.clone(), Instant::now());
        }
        if request == VisionRequest::Off {
            prev_face = None;
        } else if !busy
            && let (Some(tx), Some(frame)) = (&job_tx, k.camera.latest_since(request_since.1))
        {
            let job = Job {
                frame,
                request,
                templates: templates.clone(),
                prev: prev_face.clone(),
            };
            busy = tx.send(job).is_ok();
        }
    }
    notifier.stopping();
    tracing::info!("kiosk stopping");
    if let Some((_, task)) = health {
        task.abort();
    }
    for pin in [Pin::Relay, Pin::Green, Pin::Red, Pin::Buzzer] {
        let _ = k.gpio.set(pin, false);
    }
    if let Some(o) = &k.outbox {
        o.stop();
    }
    Ok(())
}

/// What carrying out the machine's effects needs besides the kiosk itself, kept across steps.
struct Actuator<'a> {
    /// Pin changes still to come: when, which pin, on or off.
    pending: Vec<(Instant, Pin, bool)>,
    /// When the current badge was tapped, for the tap-to-verdict latency report.
    tapped_at: Option<Instant>,
    /// The gallery the vision worker identifies against; rebuilt after an enrolment.
    gallery: Arc<std::sync::Mutex<(Gallery, Vec<String>)>>,
    /// The embedder's name, which new templates are stored under.
    model: &'a str,
    /// The embedder's vector length.
    dims: usize,
}

/// Carries out one step's effects in order; a failed record stops the rest of them.
fn execute(k: &mut Kiosk, effects: Vec<Effect>, act: &mut Actuator, say: &dyn Fn(Report)) {
    let pending = &mut act.pending;
    let verdict = Duration::from_secs(k.config.policy.verdict_seconds as u64);
    let pulse = |k: &mut Kiosk, pending: &mut Vec<(Instant, Pin, bool)>, pin: Pin, ms: u64| {
        if let Err(e) = k.gpio.set(pin, true) {
            tracing::error!(error = %e, "gpio");
        }
        say(Report::Pin(pin, true));
        pending.push((Instant::now() + Duration::from_millis(ms), pin, false));
    };
    for effect in effects {
        match effect {
            Effect::Record(r) => {
                // Durable before anything tells the person; on failure no feedback follows.
                match k.store.append(&r) {
                    Ok(a) => {
                        tracing::info!(seq = a.seq, outcome = %r.outcome, reason = %r.reason, "recorded");
                        say(Report::Recorded {
                            seq: a.seq,
                            outcome: r.outcome,
                            reason: r.reason.clone(),
                            employee: r.employee_id.clone(),
                        });
                        // Tap-to-verdict latency of face verdicts (PIN verdicts wait on a person).
                        if let Some(t) = act.tapped_at.take()
                            && matches!(
                                r.method,
                                crate::store::record::Method::BadgeFace
                                    | crate::store::record::Method::FaceOnly
                            )
                        {
                            say(Report::Latency(t.elapsed().as_secs_f64() * 1e3));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not record a check-in");
                        say(Report::Error(e.to_string()));
                        say(Report::Screen(Screen::Rejected {
                            name: None,
                            reason: "cannot record right now: please tell your administrator"
                                .into(),
                            code: "store_failed".into(),
                        }));
                        return;
                    }
                }
            }
            Effect::Show(s) => say(Report::Screen(s)),
            Effect::OpenDoor => {
                let ms = k.config.gpio.relay_ms as u64;
                pulse(k, pending, Pin::Relay, ms);
            }
            Effect::Led(ok) => pulse(
                k,
                pending,
                if ok { Pin::Green } else { Pin::Red },
                verdict.as_millis() as u64,
            ),
            Effect::Buzz(ok) => {
                let mut at = Instant::now();
                for (i, &ms) in buzzer_pattern(ok).iter().enumerate() {
                    pending.push((at, Pin::Buzzer, i % 2 == 0));
                    at += Duration::from_millis(ms as u64);
                }
                pending.push((at, Pin::Buzzer, false));
            }
            Effect::RecordConsent {
                employee,
                given,
                text_version,
                witness,
            } => {
                if let Err(e) = k
                    .store
                    .record_consent(&employee, given, &text_version, &witness)
                {
                    say(Report::Error(e.to_string()));
                }
            }
            Effect::StoreTemplates {
                employee,
                admin,
                embeddings,
            } => {
                for e in &embeddings {
                    if let Err(err) = k.store.add_template(&admin, &employee, act.model, e) {
                        say(Report::Error(err.to_string()));
                        break;
                    }
                }
                match build_gallery(&k.store, act.model, act.dims) {
                    Ok(g) => *act.gallery.lock().unwrap_or_else(|p| p.into_inner()) = g,
                    Err(e) => say(Report::Error(e.to_string())),
                }
            }
            Effect::Audit { actor, action } => {
                if let Err(e) = k.store.audit(&NewAudit::new(&actor, action, "")) {
                    say(Report::Error(e.to_string()));
                }
            }
        }
    }
}

/// The face thresholds the machine decides with.
fn thresholds(v: &crate::vision::VisionConfig) -> Thresholds {
    Thresholds {
        verify: v.match_threshold(),
        identify: v.identify_threshold(),
        liveness: v.liveness_threshold,
        liveness_frames: v.liveness_frames as usize,
    }
}

/// The health endpoint's shared state and its server task.
type HealthTask = (
    Arc<super::health::Shared>,
    tokio::task::JoinHandle<Result<()>>,
);

/// The health endpoint, when `[health] listen` asks for one.
fn start_health(k: &Kiosk) -> Result<Option<HealthTask>> {
    if k.config.health.listen.is_empty() {
        return Ok(None);
    }
    let listener = super::health::bind(&k.config.health.listen)?;
    let mut opts = crate::store::StoreOptions::from_config(&k.config);
    opts.read_only = true;
    let shared = Arc::new(super::health::Shared::new(
        k.config.device.clone(),
        k.availability.clone(),
        k.camera.status.clone(),
        Store::open(&opts, k.clock.clone())?,
    ));
    shared.tick();
    let task = tokio::spawn(super::health::serve(
        listener,
        shared.clone(),
        std::future::pending(),
    ));
    Ok(Some((shared, task)))
}

/// Builds a kiosk from the config with its real (or configured simulated) backends.
pub fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Kiosk> {
    let store = Store::open(
        &crate::store::StoreOptions::from_config(&config),
        clock.clone(),
    )?;
    let (vision, availability) = Vision::load_or_explain(&config.vision);
    let camera = match config.camera.kind {
        crate::config::CameraKind::V4l => {
            Camera::spawn(crate::camera::v4l_opener(config.camera.clone()))
        }
        crate::config::CameraKind::Replay => {
            return Err(Error::invalid(
                "camera.kind",
                "\"replay\" is for `clockface demo` and tests; `clockface run` needs \"v4l\"",
            ));
        }
    };
    let gpio = crate::hw::gpio::open(&config.gpio, clock.clone())?;
    let (badge, _) = crate::hw::badge::open(&config.badge)?;
    let outbox = Some(crate::sync::spawn_outbox(
        crate::store::StoreOptions::from_config(&config),
        config.clone(),
        clock.clone(),
    )?);
    Ok(Kiosk {
        config,
        store,
        vision,
        availability,
        camera,
        gpio,
        badge,
        clock,
        outbox,
    })
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}
