//! `clockface run` and `clockface enroll`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::context::{ConfigSource, emit};
use crate::base::clock::SystemClock;
use crate::base::config::Config;
use crate::base::error::{Error, Result};
use crate::base::frame::Frame;
use crate::base::protocol::ConsentScope;
use crate::store::{Store, StoreOptions};
use crate::vision::quality::{self, Guidance};
use crate::vision::{Vision, liveness};

/// `clockface run`: no arguments beyond the global `--config` and `--data-dir`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

impl RunArgs {
    /// Runs the kiosk until SIGTERM or SIGINT.
    pub fn run(self, src: &ConfigSource, _out: &mut dyn Write) -> Result<()> {
        run(src.load_logged()?)
    }
}

/// `clockface enroll`.
#[derive(Debug, clap::Args)]
pub struct EnrollArgs {
    /// Employee id (must be on the roster).
    #[arg(long)]
    employee: String,
    /// Id of the admin who witnessed the employee's consent.
    #[arg(long)]
    consent_witness: String,
    /// Where the templates may be used: "device" (this kiosk) or "site" (every kiosk of the
    /// site, through the backend), as the employee chose.
    #[arg(long, default_value = "device", value_parser = parse_scope)]
    scope: ConsentScope,
    /// Photos of the employee, one face each.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

impl EnrollArgs {
    /// Records consent and enrols the face.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        let cfg = src.load_logged()?;
        enroll(
            &cfg,
            &self.employee,
            (&self.consent_witness, self.scope),
            &self.images,
            self.json,
            out,
        )
        .map(drop)
    }
}

/// The appliance with the configured backends, until SIGTERM or SIGINT.
pub fn run(cfg: Config) -> Result<()> {
    crate::kiosk::tune_allocator();
    let clock: Arc<dyn crate::base::clock::Clock> = Arc::new(SystemClock::new());
    let kiosk = crate::kiosk::runner::open(cfg.clone(), clock.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    let (ui_tx, ui_rx) = tokio::sync::mpsc::unbounded_channel();
    if !cfg.ui.enabled || !crate::ui::app::display_available() {
        if cfg.ui.enabled {
            tracing::warn!(
                "no display found (no DISPLAY, WAYLAND_DISPLAY or /dev/dri): running without the screens"
            );
        }
        let _keep_open = ui_tx;
        return rt.block_on(crate::kiosk::runner::run(
            kiosk,
            ui_rx,
            None,
            crate::kiosk::runner::signals(),
        ));
    }
    // The screens need the main thread; the kiosk core runs beside them.
    let (rep_tx, rep_rx) = tokio::sync::mpsc::unbounded_channel();
    let core = std::thread::Builder::new()
        .name("kiosk".into())
        .spawn(move || {
            let r = rt.block_on(crate::kiosk::runner::run(
                kiosk,
                ui_rx,
                Some(rep_tx),
                crate::kiosk::runner::signals(),
            ));
            let _ = slint::quit_event_loop();
            r
        })
        .map_err(|e| Error::io("kiosk thread", e))?;
    let opts = StoreOptions::from_config(&cfg);
    let admin = crate::ui::admin::StoreAdmin {
        store: Store::open(&opts, clock.clone())?,
        config: cfg.clone(),
        changed: Some(ui_tx.clone()),
    };
    let status_store = Store::open(&opts, clock)?;
    // Language and site as in force, with what admins changed at the kiosk.
    let eff = crate::store::settings::effective(&cfg, &admin.store)?;
    let language = crate::base::config::Language::parse(&eff.ui.language).unwrap_or_default();
    let site = if eff.device.site.is_empty() {
        eff.device.name.clone()
    } else {
        eff.device.site.clone()
    };
    let ui = crate::ui::app::run(
        crate::ui::controller::Controller::new(&site, language).with_zone(
            crate::base::zone::SiteZone::from_config(&eff.site.time_zone)?,
        ),
        rep_rx,
        ui_tx,
        Some(Box::new(admin)),
        Box::new(move || match status_store.sync_status() {
            Ok(s) => (s.last_error.is_empty(), s.queued_checkins),
            Err(_) => (false, 0),
        }),
    );
    if let Err(e) = &ui {
        tracing::error!(error = %e, "the screens stopped; the kiosk carries on until stopped");
    }
    core.join()
        .map_err(|_| Error::invalid("kiosk thread", "panicked"))?
}

/// What `clockface enroll` stored.
#[derive(Debug, Serialize)]
pub struct EnrollResult {
    /// Employee.
    pub employee: String,
    /// Embedder the templates belong to.
    pub model: &'static str,
    /// Templates stored (one per image).
    pub templates: usize,
    /// Consent text version recorded.
    pub consent_text_version: String,
}

/// `clockface enroll --employee ID --consent-witness ADMIN IMAGE...`: records the employee's
/// consent (witnessed by ADMIN), then stores one encrypted template per image. Every image must
/// show exactly one face that passes the quality gates and is sharp enough; otherwise nothing is
/// stored and the error names the image. No image is kept.
pub fn enroll(
    cfg: &Config,
    employee: &str,
    (witness, scope): (&str, ConsentScope),
    images: &[PathBuf],
    json: bool,
    out: &mut dyn Write,
) -> Result<EnrollResult> {
    if !(1..=5).contains(&images.len()) {
        return Err(Error::invalid(
            "IMAGE",
            format!("give 1 to 5 images, not {}", images.len()),
        ));
    }
    let mut store = Store::open(
        &StoreOptions::from_config(cfg),
        Arc::new(SystemClock::new()),
    )?;
    if store.employee(employee)?.is_none() {
        return Err(Error::invalid(
            "--employee",
            format!("{employee:?} is not on the roster (add it with `clockface roster add`)"),
        ));
    }
    if !store.employee(witness)?.is_some_and(|e| e.is_admin) {
        return Err(Error::invalid(
            "--consent-witness",
            format!("{witness:?} is not an admin on the roster"),
        ));
    }
    let policy = crate::store::settings::effective(cfg, &store)?.policy;
    check_scope(&policy, scope)?;
    // A minor without a guardian consent is refused before any image is read.
    store.require_guardian_if_minor(employee)?;
    let mut v =
        Vision::load(&cfg.vision).map_err(|e| Error::Installation(format!("face models: {e}")))?;
    let mut embeddings = Vec::new();
    for path in images {
        let frame = Frame::open(path)?;
        let name = path.display().to_string();
        let faces = v
            .detect(&frame)
            .map_err(|e| Error::invalid(&name, e.to_string()))?;
        if faces.len() != 1 {
            return Err(Error::invalid(
                &name,
                format!("shows {} faces; enrolment needs exactly one", faces.len()),
            ));
        }
        let (g, face) = quality::assess(
            &frame,
            &faces,
            None,
            &quality::Gates::for_config(&cfg.vision),
        );
        let face = face.expect("one face");
        if g != Guidance::Ok {
            return Err(Error::invalid(
                &name,
                format!("fails the quality gates: {}", g.prompt()),
            ));
        }
        let sharp = liveness::sharp_pixels(&liveness::crop(&frame, face));
        if sharp < liveness::SHARP_MIN_PIXELS {
            return Err(Error::invalid(
                &name,
                format!(
                    "is not sharp enough ({sharp} edge pixels, need {})",
                    liveness::SHARP_MIN_PIXELS
                ),
            ));
        }
        embeddings.push(
            v.embed_face(&frame, face)
                .map_err(|e| Error::invalid(&name, e.to_string()))?,
        );
    }
    let version = policy.consent_text_version.clone();
    store.record_consent_scoped(employee, true, scope, &version, witness)?;
    let model = cfg.vision.embedder.name();
    for e in &embeddings {
        store.add_template(witness, employee, model, e)?;
    }
    let r = EnrollResult {
        employee: employee.into(),
        model,
        templates: embeddings.len(),
        consent_text_version: version,
    };
    emit(out, json, &r, |out| {
        let _ = writeln!(
            out,
            "{}: consent v{} recorded, {} {} template(s) stored encrypted; no image kept",
            r.employee, r.consent_text_version, r.templates, r.model
        );
    });
    Ok(r)
}

/// Parses `--scope`.
pub fn parse_scope(s: &str) -> std::result::Result<ConsentScope, String> {
    ConsentScope::parse(s).ok_or_else(|| format!("{s:?}; allowed: device, site"))
}

/// Refuses a scope the site's policy does not offer.
pub fn check_scope(policy: &crate::base::config::PolicyConfig, scope: ConsentScope) -> Result<()> {
    if scope == ConsentScope::Site && !policy.site_scope_allowed {
        return Err(Error::invalid(
            "--scope",
            "\"site\" is not allowed here (policy.site_scope_allowed = false); use \"device\"",
        ));
    }
    Ok(())
}
