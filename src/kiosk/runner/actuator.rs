//! Carrying out the machine's effects in order: the record first (durable before anything tells
//! the person), then the screen, LEDs, buzzer and door; consent, templates and audit entries.

use std::time::{Duration, Instant};

use super::worker::{SharedGallery, build_gallery, replace};
use super::{Kiosk, Report};
use crate::hw::gpio::{Pin, buzzer_pattern};
use crate::kiosk::events::{Effect, Screen};
use crate::store::audit::NewAudit;
use crate::store::record::Method;

/// What carrying out the machine's effects needs besides the kiosk itself, kept across steps.
pub struct Actuator {
    /// Pin changes still to come: when, which pin, on or off.
    pub pending: Vec<(Instant, Pin, bool)>,
    /// When the current badge was tapped, for the tap-to-verdict latency report.
    pub tapped_at: Option<Instant>,
    /// The gallery the vision worker identifies against; rebuilt after an enrolment.
    pub gallery: SharedGallery,
    /// The embedder's name, which new templates are stored under.
    pub model: &'static str,
    /// The embedder's vector length.
    pub dims: usize,
}

impl Actuator {
    /// Switches the pin changes that are due.
    pub fn due_pins(&mut self, k: &mut Kiosk, say: &dyn Fn(Report)) {
        let t = Instant::now();
        self.pending.retain(|&(at, pin, on)| {
            if at <= t {
                if let Err(e) = k.gpio.set(pin, on) {
                    tracing::error!(error = %e, "gpio");
                }
                say(Report::Pin(pin, on));
                false
            } else {
                true
            }
        });
    }

    /// Switches `pin` on now and off after `ms`.
    fn pulse(&mut self, k: &mut Kiosk, say: &dyn Fn(Report), pin: Pin, ms: u64) {
        if let Err(e) = k.gpio.set(pin, true) {
            tracing::error!(error = %e, "gpio");
        }
        say(Report::Pin(pin, true));
        self.pending
            .push((Instant::now() + Duration::from_millis(ms), pin, false));
    }

    /// After a consent decision or an enrolment: the 1:N gallery again from the store (whose
    /// face may be used changed), and the outbox woken, so the backend and through it the
    /// person's other doors follow soon.
    fn biometrics_changed(&self, k: &Kiosk, say: &dyn Fn(Report)) {
        match build_gallery(&k.store, self.model, self.dims, &k.config.policy) {
            Ok(g) => replace(&self.gallery, g),
            Err(e) => say(Report::Error(e.to_string())),
        }
        if let Some(o) = &k.outbox {
            o.wake.notify_one();
        }
    }

    /// Carries out one step's effects in order; a failed record stops the rest of them.
    pub fn execute(&mut self, k: &mut Kiosk, effects: Vec<Effect>, say: &dyn Fn(Report)) {
        let verdict = Duration::from_secs(k.config.policy.verdict_seconds as u64);
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
                            // Tap-to-verdict latency of face verdicts (PIN verdicts wait on a
                            // person).
                            if let Some(t) = self.tapped_at.take()
                                && matches!(r.method, Method::BadgeFace | Method::FaceOnly)
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
                    self.pulse(k, say, Pin::Relay, ms);
                }
                Effect::Led(ok) => self.pulse(
                    k,
                    say,
                    if ok { Pin::Green } else { Pin::Red },
                    verdict.as_millis() as u64,
                ),
                Effect::Buzz(ok) => {
                    let mut at = Instant::now();
                    for (i, &ms) in buzzer_pattern(ok).iter().enumerate() {
                        self.pending.push((at, Pin::Buzzer, i % 2 == 0));
                        at += Duration::from_millis(ms as u64);
                    }
                    self.pending.push((at, Pin::Buzzer, false));
                }
                Effect::RecordConsent {
                    employee,
                    given,
                    scope,
                    text_version,
                    witness,
                } => {
                    if let Err(e) = k.store.record_consent_scoped(
                        &employee,
                        given,
                        scope,
                        &text_version,
                        &witness,
                    ) {
                        say(Report::Error(e.to_string()));
                    }
                    self.biometrics_changed(k, say);
                }
                Effect::StoreTemplates {
                    employee,
                    admin,
                    embeddings,
                } => {
                    for e in &embeddings {
                        if let Err(err) = k.store.add_template(&admin, &employee, self.model, e) {
                            say(Report::Error(err.to_string()));
                            break;
                        }
                    }
                    self.biometrics_changed(k, say);
                }
                Effect::Audit { actor, action } => {
                    if let Err(e) = k.store.audit(&NewAudit::new(&actor, action, "")) {
                        say(Report::Error(e.to_string()));
                    }
                }
            }
        }
    }
}
