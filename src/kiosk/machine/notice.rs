//! A new consent notice at the door: someone who consented to an older consent text is shown
//! the new one, with what changed, at their next face check-in. Accepting records the new
//! version (same scope) and the face check-in goes on; declining wipes their templates at once
//! and sends them to the PIN. No answer: within the grace period the face check-in goes on
//! under the old consent; past it, the face is not used.

use super::super::events::{Effect, Now, Person, Screen};
use super::{Machine, State};
use crate::store::record::Method;

/// A notice on screen, waiting for the person's answer.
#[derive(Debug, Clone)]
pub(super) struct Notice {
    person: Person,
    method: Method,
    attempt: u32,
    /// When the question lapses (monotonic ms).
    pub(super) deadline: u64,
}

impl Machine {
    /// Starts a face check-in for `person`: with the new notice first when one is due.
    pub(super) fn begin_face(
        &mut self,
        now: Now,
        person: Person,
        method: Method,
        attempt: u32,
    ) -> Vec<Effect> {
        let Some(due) = person.notice else {
            return self.start_capture(now, person, method, attempt);
        };
        let screen = Screen::Notice {
            name: person.name.clone(),
            text_version: self.policy.consent_text_version.clone(),
            summary: self.policy.consent_change_summary.clone(),
            within_grace: due.within_grace,
        };
        self.state = State::Notice(Box::new(Notice {
            person,
            method,
            attempt,
            deadline: now.mono_ms + self.policy.pin_seconds as u64 * 1000,
        }));
        vec![Effect::Show(screen)]
    }

    /// The answer to the new notice. The person is their own witness: nobody else is asked.
    pub(super) fn on_notice_answer(&mut self, now: Now, n: Notice, given: bool) -> Vec<Effect> {
        let Notice {
            mut person,
            method,
            attempt,
            ..
        } = n;
        let scope = person.notice.map(|d| d.scope).unwrap_or_default();
        let record = Effect::RecordConsent {
            employee: person.id.clone(),
            given,
            scope,
            text_version: self.policy.consent_text_version.clone(),
            witness: person.id.clone(),
        };
        person.notice = None;
        let mut out = vec![record];
        if given {
            out.extend(self.start_capture(now, person, method, attempt));
        } else {
            person.face_enrolled = false;
            out.extend(self.without_face(now, person, "consent declined", "consent_declined"));
        }
        out
    }

    /// No answer in time: the old consent carries the check-in only within the grace period.
    pub(super) fn notice_lapsed(&mut self, now: Now, n: Notice) -> Vec<Effect> {
        let within = n.person.notice.is_some_and(|d| d.within_grace);
        if within {
            return self.start_capture(now, n.person, n.method, n.attempt);
        }
        self.without_face(
            now,
            n.person,
            "the new consent notice was not accepted",
            "consent_renewal_needed",
        )
    }

    /// Badge + PIN when the face may not be used (not enrolled, unavailable, a declined or
    /// lapsed notice): the PIN pad, or a refusal without a PIN.
    pub(super) fn without_face(
        &mut self,
        now: Now,
        person: Person,
        why: &str,
        code: &str,
    ) -> Vec<Effect> {
        if person.has_pin {
            return self.ask_pin(now, person, why, code);
        }
        self.reject(
            now,
            Some(&person),
            Method::BadgePin,
            "no_method",
            "no face enrolment and no PIN: see your administrator".into(),
            (None, None),
        )
    }
}
