//! The demo's scripted day and its narration: who arrives when, what the camera shows, what the
//! kiosk reported, and the touchscreen rendered beside it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::base::clock::{Clock, ScriptClock};
use crate::base::error::{Error, Result};
use crate::base::frame::Frame;
use crate::camera::CameraStatus;
use crate::camera::replay::{self, ReplayFeed, Scene};
use crate::hw::gpio::Pin;
use crate::kiosk::events::Screen;
use crate::kiosk::runner::{Report, UiInput};
use crate::store::record::Outcome;
use crate::vision::{FaceAvailability, Vision};

/// Figures the demo measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DemoSummary {
    /// Accepted check-ins.
    pub accepted: u64,
    /// Failed attempts.
    pub rejected: u64,
    /// Door relay pulses.
    pub relay_pulses: usize,
    /// Tap-to-verdict latencies (ms) of badge check-ins.
    pub latencies_ms: Vec<f64>,
    /// Peak RSS of the process (MiB).
    pub peak_rss_mib: f64,
    /// Whether face check-in was available.
    pub face_available: bool,
}

/// The scripted day: the kiosk's reports in, badge taps, touches and scenes out, and the
/// narration on `out`.
pub(super) struct Script<'a> {
    pub(super) out: &'a mut dyn Write,
    pub(super) reports: mpsc::UnboundedReceiver<Report>,
    pub(super) clock: Arc<ScriptClock>,
    pub(super) day_start: i64,
    pub(super) badge: std::sync::mpsc::Sender<String>,
    pub(super) ui: mpsc::UnboundedSender<UiInput>,
    pub(super) feed: ReplayFeed,
    pub(super) summary: DemoSummary,
    pub(super) last_screen: Option<Screen>,
    pub(super) screens: Option<Screenshots>,
    /// A window showing the touchscreen, when the demo runs in one.
    pub(super) window: Option<mpsc::UnboundedSender<Report>>,
}

/// The touchscreen rendered headless beside the narration: one PNG per screen change.
pub(super) struct Screenshots {
    pub(super) ui: crate::ui::headless::Headless,
    pub(super) dir: PathBuf,
    pub(super) taken: usize,
}

impl Screenshots {
    pub(super) fn new(dir: &Path, site: &str) -> Result<Screenshots> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let state = crate::ui::controller::Controller::new(site, Default::default()).state;
        Ok(Screenshots {
            ui: crate::ui::headless::Headless::new(800, 480, state, None)?,
            dir: dir.to_owned(),
            taken: 0,
        })
    }

    pub(super) fn report(&mut self, r: &Report, wall_ms: i64) -> Result<()> {
        let changed = matches!(
            r,
            Report::Screen(_) | Report::Camera(_) | Report::Started(_)
        );
        {
            let mut c = self.ui.controller.borrow_mut();
            c.on_report(r);
            let t = chrono::DateTime::from_timestamp_millis(wall_ms)
                .unwrap_or_default()
                .with_timezone(&chrono::Local);
            c.set_clock(
                &t.format("%H:%M").to_string(),
                &t.format("%Y-%m-%d").to_string(),
            );
        }
        if let Report::Screen(_) = r {
            self.ui.refresh();
            self.taken += 1;
            let page = format!("{:?}", self.ui.controller.borrow().state.page).to_lowercase();
            let path = self.dir.join(format!("{:02}-{page}.png", self.taken));
            self.ui.save_png(&path)?;
        } else if changed {
            self.ui.refresh();
        }
        Ok(())
    }
}

impl Script<'_> {
    pub(super) fn line(&mut self, text: &str) {
        let t = chrono::DateTime::from_timestamp_millis(self.clock.wall_ms())
            .unwrap_or_default()
            .with_timezone(&chrono::Local)
            .format("%H:%M:%S");
        let _ = writeln!(self.out, "{t}  {text}");
    }

    pub(super) fn at(&mut self, hh: i64, mm: i64, what: &str) {
        self.clock.jump_to(self.day_start + (hh * 60 + mm) * 60_000);
        let _ = writeln!(self.out);
        self.line(&format!("── {what}"));
    }

    pub(super) fn narrate(&mut self, r: &Report) {
        if let Some(w) = &self.window {
            let _ = w.send(r.clone());
        }
        if let Some(s) = self.screens.as_mut()
            && !matches!(r, Report::Screen(sc) if self.last_screen.as_ref() == Some(sc))
            && let Err(e) = s.report(r, self.clock.wall_ms())
        {
            tracing::error!(error = %e, "screenshot");
        }
        match r {
            Report::Screen(s) => {
                if self.last_screen.as_ref() == Some(s) {
                    return;
                }
                self.last_screen = Some(s.clone());
                let text = match s {
                    Screen::Updating => "screen: update under way, back in about a minute".into(),
                    Screen::Paused { seconds } => {
                        format!("screen: paused by the HR system (at most {seconds} s)")
                    }
                    Screen::Idle { face_available, .. } => format!(
                        "screen: idle ({})",
                        if *face_available {
                            "badge, then look at the camera"
                        } else {
                            "badge + PIN"
                        }
                    ),
                    Screen::Capture { name, guidance } => {
                        format!("screen: {name}: {}", guidance.prompt())
                    }
                    Screen::Challenge { name, prompt } => format!("screen: {name}: {prompt}"),
                    Screen::PinPad { name, reason, .. } => {
                        format!("screen: PIN pad for {name} ({reason})")
                    }
                    Screen::Accepted { name, punch } => {
                        format!("screen: ✔ {name} checked {punch}")
                    }
                    Screen::Rejected { name, reason, .. } => format!(
                        "screen: ✘ {}{reason}",
                        name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default()
                    ),
                    Screen::AlreadyCheckedIn { name, minutes_ago } => {
                        let ago = if *minutes_ago == 0 {
                            "moments".to_string()
                        } else {
                            format!("{minutes_ago} min")
                        };
                        format!(
                            "screen: {name} already checked in {ago} ago (nothing recorded twice)"
                        )
                    }
                    Screen::Admin { name, .. } => format!("screen: admin mode ({name})"),
                    Screen::Consent {
                        name, text_version, ..
                    } => {
                        format!("screen: consent text v{text_version} for {name}")
                    }
                    Screen::Notice {
                        name, text_version, ..
                    } => {
                        format!("screen: new consent notice v{text_version} for {name}")
                    }
                    Screen::Enrolling {
                        name,
                        captured,
                        needed,
                        ..
                    } => format!("screen: enrolling {name}: {captured}/{needed} good frames"),
                    Screen::EnrolDone { name, message, .. } => format!("screen: {name}: {message}"),
                };
                self.line(&text);
            }
            Report::Recorded {
                seq,
                outcome,
                reason,
                employee,
            } => {
                match outcome {
                    Outcome::Accepted => self.summary.accepted += 1,
                    Outcome::Rejected => self.summary.rejected += 1,
                }
                let who = if employee.is_empty() {
                    "nobody identified".to_string()
                } else {
                    employee.clone()
                };
                let why = if reason.is_empty() {
                    String::new()
                } else {
                    format!(", reason {reason}")
                };
                self.line(&format!(
                    "record #{seq} {outcome} ({who}{why}) — signed, durable"
                ));
            }
            Report::Pin(pin, on) => {
                if *pin == Pin::Relay && *on {
                    self.summary.relay_pulses += 1;
                }
                if *pin != Pin::Buzzer {
                    self.line(&format!("gpio: {pin:?} {}", if *on { "on" } else { "off" }));
                }
            }
            Report::Camera(s) => {
                let text = match s {
                    CameraStatus::Live => "camera: live".to_string(),
                    CameraStatus::Starting => "camera: starting".to_string(),
                    CameraStatus::Lost { reason } => {
                        format!("camera: lost ({reason}); reconnecting with backoff")
                    }
                };
                self.line(&text);
            }
            Report::Latency(ms) => self.summary.latencies_ms.push(*ms),
            Report::Started(FaceAvailability::Ready) => {
                self.summary.face_available = true;
                self.line("face check-in ready (models loaded, checksums verified)");
            }
            Report::Started(FaceAvailability::Unavailable { reason }) => self.line(&format!(
                "face check-in UNAVAILABLE, badge + PIN only: {reason}"
            )),
            Report::Motion => self.line("motion sensor: someone approaches; screen wakes"),
            Report::Error(e) => self.line(&format!("error: {e}")),
        }
    }

    /// Prints reports until one matches, or fails after `secs`.
    pub(super) async fn until(
        &mut self,
        secs: u64,
        what: &str,
        want: impl Fn(&Report) -> bool,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(r)) => {
                    self.narrate(&r);
                    if want(&r) {
                        return Ok(());
                    }
                }
                Ok(None) => return Err(Error::invalid("demo", "the kiosk stopped")),
                Err(_) => {
                    return Err(Error::invalid(
                        "demo",
                        format!("timed out waiting for {what}"),
                    ));
                }
            }
        }
    }

    pub(super) async fn idle(&mut self) -> Result<()> {
        self.until(40, "the idle screen", |r| {
            matches!(r, Report::Screen(Screen::Idle { .. }))
        })
        .await
    }

    /// Waits for the verdict of the current check-in, then for the idle screen.
    pub(super) async fn done(&mut self) -> Result<()> {
        self.until(60, "a verdict", |r| {
            matches!(
                r,
                Report::Screen(
                    Screen::Accepted { .. }
                        | Screen::Rejected { .. }
                        | Screen::AlreadyCheckedIn { .. }
                )
            )
        })
        .await?;
        self.idle().await
    }

    /// Waits until the hub holds every record of the day (the outbox syncs in the background).
    pub(super) async fn synced(&mut self, hub_db: &Path) -> Result<()> {
        let want = self.summary.accepted + self.summary.rejected;
        self.line(&format!(
            "waiting for the outbox to deliver the day's {want} records to the backend"
        ));
        let t0 = Instant::now();
        loop {
            let have =
                crate::hub::db::HubDb::open(hub_db)?.count(crate::hub::db::Chain::Checkins)?;
            if have >= want {
                self.line(&format!(
                    "the backend holds all {have} records, each verified"
                ));
                return Ok(());
            }
            if t0.elapsed() > Duration::from_secs(60) {
                return Err(Error::Network(format!(
                    "the backend holds {have} of {want} records after 60 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub(super) fn tap(&mut self, badge: &str, who: &str) {
        self.line(&format!("{who} taps a badge"));
        let _ = self.badge.send(badge.into());
    }

    /// The last steps to the door and the hand going to the reader: about a second in front
    /// of the camera before the badge touches it (what pre-roll uses).
    pub(super) async fn approach(&mut self) {
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }

    pub(super) fn show(&mut self, scene: Scene, what: &str) {
        self.line(&format!("camera sees: {what}"));
        self.feed.show(scene);
    }

    pub(super) fn ui(&mut self, input: UiInput) {
        let _ = self.ui.send(input);
    }

    /// Answers the PIN pad whenever it appears, until the kiosk is idle again.
    pub(super) async fn pin_when_asked(&mut self, pin: &str, times: usize) -> Result<()> {
        for _ in 0..times {
            self.until(40, "the PIN pad", |r| {
                matches!(r, Report::Screen(Screen::PinPad { .. }))
            })
            .await?;
            self.line("PIN typed on the pad");
            self.ui(UiInput::Pin(pin.into()));
        }
        Ok(())
    }
}

fn photos_dir() -> PathBuf {
    crate::base::config::dev_cache().join("photos")
}

pub(super) fn load_photo(name: &str) -> Result<Arc<Frame>> {
    Frame::open(&photos_dir().join(name))
        .map(Arc::new)
        .map_err(|e| Error::invalid("demo photos", format!("{e} (run models/fetch.py)")))
}

/// The photo framed head-and-shoulders around its main face, as the kiosk camera would see the
/// person; unchanged when no face is found.
pub(super) fn portrait(v: &mut Vision, photo: &Arc<Frame>) -> Arc<Frame> {
    match v.detect(photo).ok().and_then(|f| f.into_iter().next()) {
        Some(face) => Arc::new(replay::head_and_shoulders(photo, face.bbox)),
        None => photo.clone(),
    }
}
