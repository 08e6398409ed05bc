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
//!
//! [`run`] keeps its state in a `Runner`, with one method per event source (badge, touch
//! input, vision results, camera status, timers, settings and roster changes), the way
//! mini-redis keeps its loop state in `Listener` and `Handler`. `worker` is the vision
//! thread; `actuator` carries out the machine's effects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::events::{Effect, Event, NoticeDue, Now, Person, Thresholds, VisionRequest};
use super::machine::Machine;
use crate::base::badge::BadgeId;
use crate::base::clock::Clock;
use crate::base::config::{Config, PolicyConfig, VisionConfig};
use crate::base::error::{Error, Result};
use crate::base::notify::Notifier;
use crate::base::zone::SiteZone;
use crate::camera::Camera;
use crate::hw::badge::BadgeReader;
use crate::hw::gpio::{Gpio, Pin};
use crate::store::Store;
use crate::vision::{FaceAvailability, Vision};

mod actuator;
mod hr;
mod preroll;
mod report;
mod sources;
mod worker;

use actuator::Actuator;
pub use hr::HrLinks;
pub use report::{Report, UiInput};
use worker::{Job, SharedGallery, build_gallery};

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
    /// The HR-terminal protocols, when the config turns them on.
    pub hr: HrLinks,
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
            hr: HrLinks::default(),
        };
        (kiosk, SimDevices { feed, gpio, badge })
    }

    /// Starts the HR-terminal protocols the config turns on (ZK, ADMS) beside this kiosk:
    /// `clockface run` does it in [`open`], the demo and tests with this.
    pub fn with_hr(mut self) -> Result<Kiosk> {
        let opts = crate::store::StoreOptions::from_config(&self.config);
        self.hr = HrLinks::start(
            &self.config,
            &opts,
            self.store.identity().device_id,
            self.clock.clone(),
        )?;
        Ok(self)
    }
}

/// Looks a person up for the machine, with where they stand under `policy`'s consent notice.
pub fn person(
    store: &Store,
    id: &str,
    model: &str,
    policy: &PolicyConfig,
) -> Result<Option<Person>> {
    let Some(e) = store.employee(id)? else {
        return Ok(None);
    };
    let c = store.consent_status(id, policy)?;
    Ok(Some(Person {
        face_enrolled: c.given && store.template_count(id, model)? > 0,
        has_pin: store.has_pin(id)?,
        id: e.id,
        name: e.display_name,
        is_admin: e.is_admin,
        active: e.active,
        notice: c.notice_due.then_some(NoticeDue {
            within_grace: c.within_grace,
            scope: c.scope,
        }),
        guardian_required: c.guardian_required,
    }))
}

fn now(clock: &dyn Clock, zone: &SiteZone) -> Now {
    use chrono::Timelike;
    let local = zone.local(clock.wall_ms());
    Now {
        mono_ms: clock.monotonic_ns() / 1_000_000,
        minute_of_day: local.hour() * 60 + local.minute(),
    }
}

/// The face thresholds the machine decides with.
fn thresholds(v: &VisionConfig) -> Thresholds {
    Thresholds {
        verify: v.match_threshold(),
        identify: v.identify_threshold(),
        liveness: v.pad_threshold,
        dtn: v.liveness_threshold,
        liveness_frames: v.liveness_frames as usize,
    }
}

/// The vision worker's end of the loop: where jobs go and what is in flight.
struct VisionFeed {
    /// Jobs to the worker thread; None in badge + PIN mode.
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    /// A frame is being analysed: the next waits for its result.
    busy: bool,
    /// What the machine asks for, and since when: frames from before are never analysed.
    since: (VisionRequest, Instant),
    /// The claimed person's templates (1:1).
    templates: Vec<Vec<f32>>,
    /// The face found in the last analysed frame.
    prev_face: Option<crate::vision::detect::Face>,
    /// The last second of the face in front of the idle kiosk.
    preroll: preroll::PreRoll,
    /// A badge was just read: hand the pre-roll to the capture it starts.
    armed: bool,
    /// The frame the last pre-roll job analysed (the same frame is not analysed twice).
    last_track_frame: Option<Arc<crate::base::frame::Frame>>,
}

/// Everything the loop keeps between events.
struct Runner {
    /// The devices, store and config in force.
    k: Kiosk,
    /// The config file as given; what admins changed is merged over it.
    file_config: Config,
    machine: Machine,
    /// The embedder's name: templates are looked up and stored under it.
    model: &'static str,
    feed: VisionFeed,
    act: Actuator,
    /// Where reports go, when someone listens.
    report: Option<mpsc::UnboundedSender<Report>>,
    health: Option<HealthTask>,
    /// The PIR input at the last look.
    motion: bool,
    ticks: u64,
    /// The next retention purge.
    next_purge: Instant,
    /// The current check-in's span (names no person).
    span: tracing::Span,
    /// The site's time zone, for the schedule's "in before, out after".
    zone: SiteZone,
}

impl Runner {
    fn say(&self, r: Report) {
        send_report(&self.report, r);
    }

    fn now(&self) -> Now {
        now(&*self.k.clock, &self.zone)
    }

    /// Puts the config in force (file + admin changes + backend policy) into the kiosk and
    /// the machine.
    fn reload_config(&mut self) -> Result<()> {
        self.k.config = crate::store::settings::effective(&self.file_config, &self.k.store)?;
        self.k
            .store
            .set_policy_version(self.k.config.policy.version);
        self.k
            .store
            .note_consent_version(&self.k.config.policy.consent_text_version)?;
        self.machine.set_policy(self.k.config.policy.clone());
        self.machine
            .set_thresholds(thresholds(&self.k.config.vision));
        Ok(())
    }

    /// Steps the machine, carries out its effects, and keeps the vision worker fed.
    fn step(&mut self, event: Event) {
        let span = self.span.clone();
        let _g = span.enter();
        let effects = self.machine.step(event, self.now());
        let wrote_record = effects.iter().any(|e| matches!(e, Effect::Record(_)));
        let report = &self.report;
        self.act
            .execute(&mut self.k, effects, &|r| send_report(report, r));
        if wrote_record && let Some(o) = &self.k.outbox {
            o.wake.notify_one();
        }
        if wrote_record && let Some(a) = &self.k.hr.adms {
            a.wake.notify_one();
        }
        drop(_g);
        if std::mem::take(&mut self.feed.armed) {
            self.replay_preroll();
        }
        if let Some((h, _)) = &self.health {
            // "updating" is the screen at the door: only once no check-in is under way.
            let busy = !self.machine.is_idle();
            h.set_activity(busy, self.machine.updating() && !busy);
        }
        self.feed_vision();
    }

    /// Sends the newest frame to the worker while the machine wants one and none is in flight.
    fn feed_vision(&mut self) {
        let mut request = self.machine.vision_request();
        if request == VisionRequest::Off && self.preroll_wanted() {
            request = VisionRequest::Track;
        }
        let f = &mut self.feed;
        if request != f.since.0 {
            f.since = (request.clone(), Instant::now());
        }
        if request == VisionRequest::Off {
            f.prev_face = None;
            f.preroll.clear();
        } else if !f.busy
            && let (Some(tx), Some(frame)) = (&f.jobs, self.k.camera.latest_since(f.since.1))
        {
            if request == VisionRequest::Track {
                if f.last_track_frame
                    .as_ref()
                    .is_some_and(|l| Arc::ptr_eq(l, &frame))
                {
                    return;
                }
                f.last_track_frame = Some(frame.clone());
                f.preroll.last_probe = Some(Instant::now());
            }
            let job = Job {
                frame,
                request,
                templates: f.templates.clone(),
                prev: f.prev_face.clone(),
            };
            f.busy = tx.send(job).is_ok();
        }
    }

    /// Leaves the outputs off and the outbox stopped.
    fn stop(mut self) {
        if let Some((_, task)) = self.health.take() {
            task.abort();
        }
        for pin in [Pin::Relay, Pin::Green, Pin::Red, Pin::Buzzer] {
            let _ = self.k.gpio.set(pin, false);
        }
        if let Some(o) = &self.k.outbox {
            o.stop();
        }
        if let Some(a) = &self.k.hr.adms {
            a.stop();
        }
        if let Some(z) = self.k.hr.zk.take() {
            z.stop();
        }
    }
}

/// Sends a report to whoever listens (the UI, the demo, a test); nobody listening is fine.
fn send_report(to: &Option<mpsc::UnboundedSender<Report>>, r: Report) {
    if let Some(tx) = to {
        let _ = tx.send(r);
    }
}

/// Starts the badge reader's thread (readers block); badges arrive on the returned channel.
fn spawn_badge_reader(mut reader: Box<dyn BadgeReader>) -> mpsc::UnboundedReceiver<BadgeId> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("badge".into())
        .spawn(move || {
            loop {
                match reader.read() {
                    Ok(Some(b)) => {
                        if tx.send(b).is_err() {
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
    rx
}

/// Runs the kiosk until `shutdown` resolves. Reports go to `report` when given.
pub async fn run(
    mut k: Kiosk,
    mut ui: mpsc::UnboundedReceiver<UiInput>,
    report: Option<mpsc::UnboundedSender<Report>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let notifier = Notifier::from_env();
    // The file's config stays as given; what admins changed at the kiosk and the backend's
    // policy are laid over it.
    let file_config = k.config.clone();
    k.config = crate::store::settings::effective(&file_config, &k.store)?;
    k.store.set_policy_version(k.config.policy.version);
    k.store
        .note_consent_version(&k.config.policy.consent_text_version)?;
    let model = k.config.vision.embedder.name();
    let dims = k.config.vision.embedder.dims();
    let mut machine = Machine::new(
        k.config.policy.clone(),
        thresholds(&k.config.vision),
        k.vision.is_some(),
    );
    let mut roster_changed = k.outbox.as_ref().map(|o| o.roster_changed.clone());
    let mut zk_control = k.hr.control.take();
    let zone = SiteZone::from_config(&k.config.site.time_zone)?;
    // Anti-passback survives a restart: seed it from the store.
    let window_ms = k.config.policy.anti_passback_minutes as i64 * 60_000;
    let (wall, mono) = (k.clock.wall_ms(), k.clock.monotonic_ns() / 1_000_000);
    for (emp, at) in k.store.recent_checkins(wall - window_ms)? {
        machine.remember_checkin(&emp, mono.saturating_sub((wall - at).max(0) as u64));
    }
    send_report(&report, Report::Started(k.availability.clone()));

    let gallery: SharedGallery = Arc::new(std::sync::Mutex::new(build_gallery(
        &k.store,
        model,
        dims,
        &k.config.policy,
    )?));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let jobs = k.vision.take().map(|v| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let g = gallery.clone();
        std::thread::Builder::new()
            .name("vision".into())
            .spawn(move || worker::run(v, g, rx, done_tx))
            .expect("spawn vision thread");
        tx
    });
    let reader = std::mem::replace(&mut k.badge, Box::new(crate::hw::badge::SimBadge::new().0));
    let mut badge_rx = spawn_badge_reader(reader);
    let mut camera_status = k.camera.status.clone();
    let health = start_health(&k)?;
    let mut r = Runner {
        k,
        file_config,
        machine,
        model,
        feed: VisionFeed {
            jobs,
            busy: false,
            since: (VisionRequest::Off, Instant::now()),
            templates: Vec::new(),
            prev_face: None,
            preroll: Default::default(),
            armed: false,
            last_track_frame: None,
        },
        act: Actuator {
            pending: Vec::new(),
            tapped_at: None,
            gallery,
            model,
            dims,
        },
        report,
        health,
        motion: false,
        ticks: 0,
        // Retention purge at start and then daily.
        next_purge: Instant::now(),
        span: tracing::Span::none(),
        zone,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut watchdog =
        tokio::time::interval(notifier.watchdog_every.unwrap_or(Duration::from_secs(3600)));
    tokio::pin!(shutdown);
    notifier.ready();
    tracing::info!(face = ?r.k.availability, "kiosk ready");
    let start = r.now();
    r.say(Report::Screen(r.machine.idle_screen(start)));

    loop {
        let event = tokio::select! {
            _ = &mut shutdown => break,
            Some(b) = badge_rx.recv() => r.on_badge(b)?,
            Some(input) = ui.recv() => r.on_ui(input)?,
            Some(done) = done_rx.recv() => r.on_vision(done)?,
            Ok(()) = camera_status.changed() => {
                let s = camera_status.borrow_and_update().clone();
                Some(r.on_camera(s))
            }
            _ = tick.tick() => Some(r.on_tick()),
            _ = watchdog.tick() => { notifier.watchdog(); None }
            Some(c) = async {
                match &mut zk_control {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => Some(Event::Pause {
                seconds: match c {
                    crate::hr::zk::Control::Disable { seconds } => Some(seconds),
                    crate::hr::zk::Control::Enable => None,
                },
            }),
            Some(()) = async {
                match &mut roster_changed {
                    Some(rx) => rx.changed().await.ok(),
                    None => std::future::pending().await,
                }
            } => {
                r.on_roster_changed()?;
                None
            }
        };
        if let Some(event) = event {
            r.step(event);
        }
    }
    notifier.stopping();
    tracing::info!("kiosk stopping");
    r.stop();
    Ok(())
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
        crate::base::config::CameraKind::V4l => {
            Camera::spawn(crate::camera::v4l_opener(config.camera.clone()))
        }
        crate::base::config::CameraKind::Replay => {
            return Err(Error::invalid(
                "camera.kind",
                "\"replay\" is for `clockface demo` and tests; `clockface run` needs \"v4l\"",
            ));
        }
    };
    let gpio = crate::hw::gpio::open(&config.gpio, clock.clone())?;
    let (badge, _) = crate::hw::badge::open(&config.badge)?;
    let opts = crate::store::StoreOptions::from_config(&config);
    let probe = super::health::status_probe(camera.status.clone(), availability.clone());
    let outbox = Some(crate::sync::spawn_outbox(
        opts.clone(),
        config.clone(),
        clock.clone(),
        Some(probe),
    )?);
    let hr = HrLinks::start(&config, &opts, store.identity().device_id, clock.clone())?;
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
        hr,
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
