//! Enrolment with consent, as the machine runs it: an admin picks a person, the person accepts
//! or declines the consent text (declining leaves badge + PIN fully usable), then distinct, live
//! frames of one face are collected into templates. No image is kept: only embeddings leave
//! here, in [`Effect::StoreTemplates`].

use super::super::events::{Effect, FaceObs, Now, Person, Screen};
use super::{ADMIN_TIMEOUT_MS, Machine, State};
use crate::base::protocol::ConsentScope;
use crate::vision::detect::Face;
use crate::vision::quality::Guidance;

/// Templates being collected for one person, witnessed by one admin.
#[derive(Debug, Clone)]
pub(super) struct Enrolment {
    admin: Person,
    person: Person,
    /// When collection gives up (monotonic ms).
    pub(super) deadline: u64,
    embeddings: Vec<Vec<f32>>,
    /// The face of the last frame used, so that only distinct frames count.
    prev: Option<Face>,
}

impl Machine {
    /// The admin chose `person` to enrol: show the consent text first. A minor without a
    /// recorded guardian consent is refused here, before anything is asked or stored.
    pub(super) fn start_consent(&mut self, now: Now, admin: Person, person: Person) -> Vec<Effect> {
        if person.guardian_required {
            self.verdict(now);
            return vec![
                Effect::Audit {
                    actor: admin.id.clone(),
                    action: "enrolment_refused_guardian_required",
                },
                Effect::Show(Screen::EnrolDone {
                    name: person.name.clone(),
                    enrolled: false,
                    message: "a minor's face enrolment needs a guardian's consent on record first; badge + PIN stays available".into(),
                    code: "guardian_required".into(),
                }),
            ];
        }
        let screen = Screen::Consent {
            name: person.name.clone(),
            text_version: self.policy.consent_text_version.clone(),
            site_scope: self.policy.site_scope_allowed,
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

    /// The person's consent answer: recorded either way; given, collection starts. A scope
    /// the policy does not offer is narrowed to this kiosk.
    pub(super) fn on_consent(
        &mut self,
        now: Now,
        admin: Person,
        person: Person,
        given: bool,
        scope: ConsentScope,
    ) -> Vec<Effect> {
        let scope = if self.policy.site_scope_allowed {
            scope
        } else {
            ConsentScope::Device
        };
        let consent = Effect::RecordConsent {
            employee: person.id.clone(),
            given,
            scope,
            text_version: self.policy.consent_text_version.clone(),
            witness: admin.id.clone(),
        };
        if !given || !self.face_available() {
            let (message, code) = if given {
                (
                    "face check-in is unavailable right now; consent recorded",
                    "face_unavailable",
                )
            } else {
                ("consent declined: badge + PIN stays available", "declined")
            };
            self.verdict(now);
            return vec![
                consent,
                Effect::Show(Screen::EnrolDone {
                    name: person.name.clone(),
                    enrolled: false,
                    message: message.into(),
                    code: code.into(),
                }),
            ];
        }
        let screen = Screen::Enrolling {
            name: person.name.clone(),
            captured: 0,
            needed: self.policy.enrol_frames,
            guidance: Guidance::NoFace,
        };
        self.state = State::Enrol(Box::new(Enrolment {
            admin,
            person,
            deadline: now.mono_ms + self.policy.capture_seconds as u64 * 2000,
            embeddings: Vec::new(),
            prev: None,
        }));
        vec![consent, Effect::Show(screen)]
    }

    /// One analysed frame during collection.
    pub(super) fn on_enrol_face(
        &mut self,
        now: Now,
        e: Box<Enrolment>,
        obs: FaceObs,
    ) -> Vec<Effect> {
        let Enrolment {
            admin,
            person,
            deadline,
            mut embeddings,
            prev,
        } = *e;
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
            if embeddings
                .first()
                .is_some_and(|first| crate::vision::embed::cosine(first, &e) < self.thr.verify)
            {
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
                    message: format!("{needed} face templates stored (encrypted); no image kept"),
                    code: "enrolled".into(),
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
        self.state = State::Enrol(Box::new(Enrolment {
            admin,
            person,
            deadline,
            embeddings,
            prev,
        }));
        vec![Effect::Show(screen)]
    }

    /// Collection ran out of time: nothing is stored.
    pub(super) fn enrol_timed_out(&mut self, now: Now, e: Box<Enrolment>) -> Vec<Effect> {
        let person = e.person;
        self.verdict(now);
        vec![Effect::Show(Screen::EnrolDone {
            name: person.name,
            enrolled: false,
            message: "enrolment timed out: no templates stored".into(),
            code: "timeout".into(),
        })]
    }
}
