//! `clockface demo`: the embedded default — the real kiosk loop on simulated hardware.
//!
//! A temporary store, the real models (when `models/fetch.py` has fetched them; otherwise the
//! kiosk runs badge + PIN only and says why), a replay camera showing real test photos, a
//! simulated badge reader and PIN pad, and simulated GPIO. A scripted day plays out at real speed
//! between jumps of the clock: an admin enrols two people (a third declines consent), arrivals by
//! badge + face, a repeat tap (anti-passback), an impostor with someone else's badge, a phone
//! screen held up to the camera, badge + PIN for the person without consent, the camera unplugged
//! at lunch, departures. Every screen, record and pin change is printed as it happens; the demo
//! ends by verifying the signed chains.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::context::ConfigSource;
use crate::base::clock::{Clock, ScriptClock};
use crate::base::config::{Config, GpioKind};
use crate::base::error::{Error, Result};
use crate::camera::CameraStatus;
use crate::camera::replay::{self, Scene};
use crate::kiosk::events::Screen;
use crate::kiosk::runner::{self, Kiosk, Report, UiInput};
use crate::store::roster::Employee;
use crate::store::{Store, StoreOptions};
use crate::vision::Vision;

mod script;

use script::{DemoSummary, Screenshots, Script, load_photo, portrait};

/// `clockface demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the demo store in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Render the touchscreen headless and write one PNG per screen change here.
    #[arg(long, value_name = "DIR")]
    screens: Option<PathBuf>,
    /// Never open a window, even when a display exists.
    #[arg(long)]
    headless: bool,
    /// Also serve the ZK terminal protocol here (IP:PORT), as `[zk] listen` does for `run`:
    /// HR tools can pull the demo's punches, and `clockface bench hr` loads it.
    #[arg(long, value_name = "IP:PORT")]
    zk_listen: Option<String>,
}

impl DemoArgs {
    /// The scripted day, in a window when a display exists (unless `--headless`).
    pub fn run(self, _src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        crate::commands::context::init_logging("warn");
        crate::kiosk::tune_allocator();
        if !self.headless && crate::ui::app::display_available() {
            run_in_window(self.keep, self.screens, self.zk_listen).map(drop)
        } else {
            run_with_window(
                self.keep.as_deref(),
                self.screens.as_deref(),
                out,
                None,
                self.zk_listen,
            )
            .map(drop)
        }
    }
}

/// Runs the demo, in `keep` (kept afterwards) or a temporary directory.
pub fn run(
    keep: Option<&Path>,
    screens: Option<&Path>,
    out: &mut dyn Write,
) -> Result<DemoSummary> {
    run_with_window(keep, screens, out, None, None)
}

/// The demo in a window: the touchscreen on this (main) thread follows the scripted day, which
/// runs on another thread and prints to stdout. Returns when the day is over.
pub fn run_in_window(
    keep: Option<PathBuf>,
    screens: Option<PathBuf>,
    zk_listen: Option<String>,
) -> Result<DemoSummary> {
    let (tx, rx) = mpsc::unbounded_channel();
    let day = std::thread::Builder::new()
        .name("demo".into())
        .spawn(move || {
            let mut out = std::io::stdout();
            run_with_window(
                keep.as_deref(),
                screens.as_deref(),
                &mut out,
                Some(tx),
                zk_listen,
            )
        })
        .map_err(|e| Error::io("demo thread", e))?;
    // The window only mirrors the day: the script, not a finger, drives it.
    let (input, _ignored) = mpsc::unbounded_channel();
    let controller = crate::ui::controller::Controller::new("Demo site", Default::default());
    if let Err(e) = crate::ui::app::run(controller, rx, input, None, Box::new(|| (true, 0))) {
        tracing::error!(error = %e, "the demo window failed; the day goes on in the terminal");
    }
    day.join()
        .map_err(|_| Error::invalid("demo thread", "panicked"))?
}

fn run_with_window(
    keep: Option<&Path>,
    screens: Option<&Path>,
    out: &mut dyn Write,
    window: Option<mpsc::UnboundedSender<Report>>,
    zk_listen: Option<String>,
) -> Result<DemoSummary> {
    let tmp = tempfile::Builder::new()
        .prefix("clockface-demo-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let data_dir = keep
        .map(Path::to_path_buf)
        .unwrap_or_else(|| tmp.path().join("data"));
    let mut config = Config::default();
    config.store.data_dir = std::path::absolute(&data_dir).map_err(|e| Error::io(&data_dir, e))?;
    config.gpio.kind = GpioKind::Sim;
    config.policy.pin_seconds = 6;
    config.policy.verdict_seconds = 2;
    config.policy.capture_seconds = 5;
    config.zk.listen = zk_listen.unwrap_or_default();

    // Today, 08:40 local time.
    let today = chrono::Local::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight");
    let day_start = today
        .and_local_timezone(chrono::Local)
        .earliest()
        .map(|t| t.timestamp_millis())
        .unwrap_or(0);
    let clock = Arc::new(ScriptClock::new(day_start + (8 * 60 + 40) * 60_000));

    // The reference backend on loopback; the kiosk pairs with it the way a provisioned kiosk
    // does on first boot (sync.url + sync.pairing_code) and its outbox syncs all day.
    let hub_db = tmp.path().join("hub.db");
    let hub = crate::hub::LocalHub::start(&hub_db)?;
    config.sync.url = hub.url.clone();
    config.sync.pairing_code = crate::hub::db::HubDb::open(&hub_db)?.create_pairing_code(
        "Demo site",
        3_600_000,
        None,
        crate::base::clock::SystemClock::new().wall_ms(),
    )?;
    config.sync.interval_seconds = 2;

    let mut store = Store::open(&StoreOptions::from_config(&config), clock.clone())?;
    let id = store.identity().clone();
    let _ = writeln!(out, "Clockface demo — store {}", data_dir.display());
    let _ = writeln!(
        out,
        "  backend: clockface-hub at {} (pairing code {})",
        hub.url, config.sync.pairing_code
    );
    let _ = writeln!(
        out,
        "  device {}  public key {}",
        id.device_id,
        hex::encode(id.public_key.as_bytes())
    );
    let roster = [
        ("A0001", "Site Admin", true, "ADMIN-0001", "739214"),
        ("E1001", "Alex Morgan", false, "04:A1:B2:C3", "482913"),
        ("E1002", "Sam Rivera", false, "04:D4:E5:F6", "615370"),
        ("E1003", "Jo Kim", false, "0A:0B:0C:0D", "920481"),
    ];
    for (emp, name, admin, badge, pin) in roster {
        store.upsert_employee(
            "A0001",
            &Employee {
                id: emp.into(),
                display_name: name.into(),
                active: true,
                is_admin: admin,
            },
        )?;
        store.add_badge("A0001", badge, emp)?;
        store.set_pin("A0001", emp, pin)?;
    }
    let _ = writeln!(
        out,
        "  roster: Site Admin, Alex Morgan, Sam Rivera, Jo Kim (fictional names; faces are the public test photos)"
    );

    let alex = load_photo("obama.jpg")?;
    let alex_enrol = load_photo("obama2.jpg")?;
    let alex_other = load_photo("obama3.jpg")?;
    let sam = load_photo("biden.jpg")?;

    let (mut vision, availability) = Vision::load_or_explain(&config.vision);
    // People stand close to a kiosk: frame each photo head-and-shoulders, as the camera would.
    let (alex, alex_enrol, alex_other, sam) = match vision.as_mut() {
        Some(v) => (
            portrait(v, &alex),
            portrait(v, &alex_enrol),
            portrait(v, &alex_other),
            portrait(v, &sam),
        ),
        None => (alex, alex_enrol, alex_other, sam),
    };
    let sam_on_phone = Arc::new(replay::phone_screen(&sam));
    let (kiosk, devices) = Kiosk::simulated(
        config.clone(),
        store,
        (vision, availability),
        clock.clone(),
        // A USB camera's rate: pre-roll analyses the newest frame as each analysis ends.
        30,
    );
    let mut kiosk = kiosk.with_hr()?;
    let probe =
        crate::kiosk::health::status_probe(kiosk.camera.status.clone(), kiosk.availability.clone());
    kiosk.outbox = Some(crate::sync::spawn_outbox(
        StoreOptions::from_config(&config),
        config.clone(),
        clock.clone(),
        Some(probe),
    )?);
    let (ui_tx, ui_rx) = mpsc::unbounded_channel();
    let (rep_tx, rep_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    let started = Instant::now();
    // The screens render on this thread, which also runs the script (block_on).
    let shots = match screens {
        Some(dir) => Some(Screenshots::new(dir, "Demo site")?),
        None => None,
    };
    let result: Result<DemoSummary> = rt.block_on(async {
        let kiosk_task = tokio::spawn(runner::run(kiosk, ui_rx, Some(rep_tx), async {
            let _ = stop_rx.await;
        }));
        let mut s = Script {
            out,
            reports: rep_rx,
            clock: clock.clone(),
            day_start,
            badge: devices.badge,
            ui: ui_tx,
            feed: devices.feed,
            summary: DemoSummary::default(),
            last_screen: None,
            screens: shots,
            window,
        };
        let script = async {
            s.until(30, "start-up", |r| matches!(r, Report::Started(_)))
                .await?;
            s.until(30, "the camera", |r| {
                matches!(r, Report::Camera(CameraStatus::Live))
            })
            .await?;
            let face = s.summary.face_available;

            s.at(
                8,
                40,
                "the site admin enrols two employees; a third declines",
            );
            for (emp, name, photo, consent) in [
                ("E1001", "Alex Morgan", alex_enrol.clone(), true),
                ("E1002", "Sam Rivera", sam.clone(), true),
                ("E1003", "Jo Kim", alex.clone(), false),
            ] {
                s.tap("ADMIN-0001", "the admin");
                s.until(10, "admin mode", |r| {
                    matches!(r, Report::Screen(Screen::Admin { .. }))
                })
                .await?;
                s.show(Scene::Person(photo), name);
                s.ui(UiInput::Enrol(emp.into()));
                s.until(10, "the consent screen", |r| {
                    matches!(r, Report::Screen(Screen::Consent { .. }))
                })
                .await?;
                s.line(&format!(
                    "{name} {} the consent text",
                    if consent { "accepts" } else { "declines" }
                ));
                s.ui(UiInput::Consent(
                    consent,
                    crate::base::protocol::ConsentScope::Device,
                ));
                s.until(40, "the end of enrolment", |r| {
                    matches!(r, Report::Screen(Screen::EnrolDone { .. }))
                })
                .await?;
                s.idle().await?;
                s.show(Scene::Empty, "nobody");
            }

            s.at(8, 57, "Alex arrives");
            s.show(Scene::Person(alex.clone()), "Alex");
            s.approach().await;
            s.tap("04A1B2C3", "Alex");
            if !face {
                s.pin_when_asked("482913", 1).await?;
            }
            s.done().await?;

            s.at(8, 58, "Alex taps again a minute later");
            s.tap("04:a1:b2:c3", "Alex");
            s.done().await?;

            s.at(9, 5, "an impostor: Alex holds Sam's badge");
            s.show(Scene::Person(alex_other.clone()), "Alex (with Sam's badge)");
            s.approach().await;
            s.tap("04D4E5F6", "the impostor");
            s.pin_when_asked("000000", 3).await?;
            s.done().await?;

            s.at(
                9,
                20,
                "a replayed-photo attack: Sam's photo on a phone screen, with Sam's badge",
            );
            s.show(
                Scene::Person(sam_on_phone.clone()),
                "a phone screen showing Sam",
            );
            s.approach().await;
            s.tap("04D4E5F6", "the attacker");
            s.until(40, "the PIN pad", |r| {
                matches!(r, Report::Screen(Screen::PinPad { .. }))
            })
            .await?;
            s.line("the attacker does not know the PIN and walks away");
            s.done().await?;

            s.at(9, 31, "Sam arrives");
            s.show(Scene::Person(sam.clone()), "Sam");
            s.approach().await;
            s.tap("04D4E5F6", "Sam");
            if !face {
                s.pin_when_asked("615370", 1).await?;
            }
            s.done().await?;

            s.at(9, 40, "Jo (no face consent) arrives: badge + PIN");
            s.show(Scene::Empty, "nobody");
            s.tap("0A0B0C0D", "Jo");
            s.pin_when_asked("920481", 1).await?;
            s.done().await?;

            s.at(12, 5, "the camera cable is pulled; Alex leaves for lunch");
            s.show(Scene::Unplugged, "nothing (unplugged)");
            s.until(20, "camera lost", |r| {
                matches!(r, Report::Camera(CameraStatus::Lost { .. }))
            })
            .await?;
            s.tap("04A1B2C3", "Alex");
            s.pin_when_asked("482913", 1).await?;
            s.done().await?;

            s.at(13, 0, "the camera is plugged back in");
            s.show(Scene::Empty, "nobody");
            s.until(20, "camera live", |r| {
                matches!(r, Report::Camera(CameraStatus::Live))
            })
            .await?;

            s.at(17, 30, "Sam leaves");
            s.show(Scene::Person(sam.clone()), "Sam");
            s.approach().await;
            s.tap("04D4E5F6", "Sam");
            if !face {
                s.pin_when_asked("615370", 1).await?;
            }
            s.done().await?;

            s.at(17, 45, "someone taps a badge that is not on the roster");
            s.show(Scene::Empty, "nobody");
            s.tap("DEADBEEF", "a visitor");
            s.done().await?;
            Ok::<(), Error>(())
        };
        let mut outcome = script.await;
        if outcome.is_ok() {
            outcome = s.synced(&hub_db).await;
        }
        let _ = stop_tx.send(());
        kiosk_task
            .await
            .map_err(|e| Error::invalid("kiosk task", e.to_string()))??;
        outcome?;
        let mut summary = std::mem::take(&mut s.summary);
        summary.peak_rss_mib = crate::commands::bench::measure::peak_rss_mib();
        Ok(summary)
    });
    let summary = result?;

    let (lat_med, lat_p95) =
        crate::commands::bench::measure::median_p95(summary.latencies_ms.clone());
    let _ = writeln!(
        out,
        "\nday over in {:.0} s: {} check-ins, {} failed attempts, door opened {} times",
        started.elapsed().as_secs_f64(),
        summary.accepted,
        summary.rejected,
        summary.relay_pulses
    );
    let _ = writeln!(
        out,
        "tap-to-verdict latency: median {lat_med:.0} ms, p95 {lat_p95:.0} ms over {} verdicts; peak RSS {:.0} MiB",
        summary.latencies_ms.len(),
        summary.peak_rss_mib
    );
    let _ = writeln!(out, "\n$ clockface verify");
    crate::commands::records::verify(&config, false, out)?;
    let _ = writeln!(out, "\n$ clockface-hub chains");
    crate::hub::cli::chains(&hub_db.as_path().into(), false, out)?;
    drop(hub);
    Ok(summary)
}
