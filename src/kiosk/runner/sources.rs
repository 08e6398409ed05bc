//! One method of the [`Runner`] per event source: the badge reader, touch input (PIN pad,
//! admin PIN, admin screens, consent), the vision worker, the camera's status, the 100 ms
//! timer, and settings or roster changes. Each turns what arrived into the machine's [`Event`]
//! (or none) after the lookups and checks the pure machine must not do itself.

use std::time::{Duration, Instant};

use super::worker::{self, Done, build_gallery};
use super::{Report, Runner, UiInput, person};
use crate::base::badge::BadgeId;
use crate::base::error::Result;
use crate::camera::CameraStatus;
use crate::kiosk::events::{AdminCmd, AdminPin, Event};
use crate::store::roster::{AdminPinCheck, PinCheck};

impl Runner {
    /// A badge was tapped: who it names, and their templates for the capture.
    pub(super) fn on_badge(&mut self, badge: BadgeId) -> Result<Option<Event>> {
        self.act.tapped_at = Some(Instant::now());
        self.span = tracing::info_span!("checkin", id = %uuid::Uuid::new_v4());
        let p = match self.k.store.employee_by_badge(&badge)? {
            Some(e) => person(&self.k.store, &e.id, self.model, &self.k.config.policy)?,
            None => None,
        };
        if let Some(p) = &p {
            self.feed.templates = if p.face_enrolled {
                let model = self.model;
                self.k
                    .store
                    .templates(&p.id)?
                    .into_iter()
                    .filter(|t| t.model == model)
                    .map(|t| t.vector)
                    .collect()
            } else {
                Vec::new()
            };
        }
        self.feed.armed = p.is_some();
        let _g = self.span.enter();
        tracing::info!(known = p.is_some(), "badge read");
        Ok(Some(Event::Badge { person: p }))
    }

    /// Input from the touchscreen, the demo script or a test.
    pub(super) fn on_ui(&mut self, input: UiInput) -> Result<Option<Event>> {
        Ok(match input {
            UiInput::Pin(digits) => match self.machine.pin_for().map(|p| p.id.clone()) {
                Some(id) => {
                    let check = self.k.store.check_pin(&id, &digits)?;
                    if let PinCheck::LockedOut { .. } = check {
                        tracing::warn!("PIN entry locked out after repeated failures");
                    }
                    Some(Event::Pin {
                        ok: check == PinCheck::Ok,
                    })
                }
                None => None,
            },
            UiInput::Enrol(id) => {
                match person(&self.k.store, &id, self.model, &self.k.config.policy)? {
                    Some(p) => Some(Event::Admin(AdminCmd::Enrol(p))),
                    None => {
                        self.say(Report::Error(format!(
                            "enrolment: {id:?} is not on the roster"
                        )));
                        None
                    }
                }
            }
            UiInput::ExitAdmin => Some(Event::Admin(AdminCmd::Exit)),
            UiInput::Punch(p) => Some(Event::ChoosePunch(p)),
            UiInput::Consent(given, scope) => Some(Event::Consent { given, scope }),
            UiInput::AdminPin(digits) if self.machine.is_idle() => self.on_admin_pin(&digits)?,
            UiInput::AdminPin(_) => None,
            UiInput::SettingsChanged => {
                self.on_settings_changed()?;
                None
            }
        })
    }

    /// An admin PIN typed at the idle screen, checked against every admin.
    pub(super) fn on_admin_pin(&mut self, digits: &str) -> Result<Option<Event>> {
        Ok(Some(Event::AdminPin(
            match self.k.store.check_admin_pin(digits)? {
                AdminPinCheck::Ok(id) => {
                    match person(&self.k.store, &id, self.model, &self.k.config.policy)? {
                        Some(p) => AdminPin::Accepted(p),
                        None => return Ok(None),
                    }
                }
                AdminPinCheck::Wrong | AdminPinCheck::NoAdminPin => {
                    tracing::warn!("wrong admin PIN");
                    AdminPin::Wrong
                }
                AdminPinCheck::LockedOut { .. } => {
                    tracing::warn!("admin PIN entry locked out");
                    AdminPin::LockedOut
                }
            },
        )))
    }

    /// An admin changed settings (already checked and stored): they are in force at once.
    pub(super) fn on_settings_changed(&mut self) -> Result<()> {
        self.reload_config()?;
        if let Some((h, _)) = &self.health {
            h.set_device(self.k.config.device.clone());
        }
        if let Some(o) = &self.k.outbox {
            o.wake.notify_one();
        }
        tracing::info!("settings changed at the kiosk are in force");
        Ok(())
    }

    /// The outbox applied a new roster or policy from the backend.
    pub(super) fn on_roster_changed(&mut self) -> Result<()> {
        self.reload_config()?;
        let g = build_gallery(
            &self.k.store,
            self.model,
            self.act.dims,
            &self.k.config.policy,
        )?;
        worker::replace(&self.act.gallery, g);
        tracing::info!("roster and policy reloaded from the store");
        Ok(())
    }

    /// The vision worker finished a frame.
    pub(super) fn on_vision(&mut self, done: Done) -> Result<Option<Event>> {
        self.feed.busy = false;
        if done.request == crate::kiosk::events::VisionRequest::Track {
            self.on_track(done.obs);
            return Ok(None);
        }
        let mut obs = done.obs;
        self.feed.prev_face = obs.face.clone();
        if let Some((id, score)) = done.identified
            && let Some(p) = person(&self.k.store, &id, self.model, &self.k.config.policy)?
        {
            obs.identified = Some((p, score));
        }
        Ok(Some(Event::Face(obs)))
    }

    /// The camera was lost or came back.
    pub(super) fn on_camera(&mut self, s: CameraStatus) -> Event {
        self.say(Report::Camera(s.clone()));
        Event::Camera {
            live: s == CameraStatus::Live,
        }
    }

    /// Every 100 ms: health, the daily purge, the PIR input, due pin changes, timeouts.
    pub(super) fn on_tick(&mut self) -> Event {
        self.ticks += 1;
        if let Some((h, _)) = &self.health {
            h.tick();
        }
        if Instant::now() >= self.next_purge && self.machine.is_idle() {
            self.next_purge = Instant::now() + Duration::from_secs(86_400);
            if let Err(e) = self.k.store.purge(self.k.config.retention.policy(), false) {
                tracing::error!(error = %e, "retention purge failed");
            }
            if self.k.config.retention.pseudonymise_departed
                && let Err(e) = self.k.store.pseudonymise_departed()
            {
                tracing::error!(error = %e, "pseudonymisation failed");
            }
        }
        // The PIR input, twice a second: a rising edge while idle wakes the screen.
        if self.k.config.gpio.pir_pin.is_some() && self.ticks.is_multiple_of(5) {
            let now_motion = self.k.gpio.motion().unwrap_or(false);
            if now_motion && !self.motion && self.machine.is_idle() {
                tracing::debug!("motion: waking the screen");
                self.say(Report::Motion);
            }
            self.motion = now_motion;
        }
        let report = &self.report;
        self.act
            .due_pins(&mut self.k, &|r| super::send_report(report, r));
        // The update client's notice, once a second: it is about to reboot into an update.
        if self.ticks.is_multiple_of(10) && !self.k.config.update.notice_file.is_empty() {
            let on = std::path::Path::new(&self.k.config.update.notice_file).exists();
            if on != self.machine.updating() {
                tracing::info!(on, "update notice");
                return Event::Updating(on);
            }
        }
        Event::Tick
    }
}
