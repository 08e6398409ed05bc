//! Face capture, as the machine runs it: the capture window with guidance, similarity and
//! liveness fused over frames, active challenges when the liveness evidence is weak, retries
//! and the fall-back to the PIN pad; and check-in by face alone when the policy allows it.

use super::super::events::{Effect, FaceObs, Now, Person, Screen};
use super::{Capture, MAX_CHALLENGES, Machine, State};
use crate::store::record::{Method, NewRecord, Outcome};
use crate::vision::quality::{
    Challenge, ChallengeKind, Guidance, LivenessDecision, LivenessFusion,
};

/// Boxes of consecutive frames overlapping less than this are different faces.
pub const SAME_FACE_IOU: f32 = 0.3;

impl Machine {
    pub(super) fn start_capture(
        &mut self,
        now: Now,
        person: Person,
        method: Method,
        attempt: u32,
    ) -> Vec<Effect> {
        let screen = Screen::Capture {
            name: person.name.clone(),
            guidance: Guidance::NoFace,
        };
        self.state = State::Capture(Box::new(Capture {
            person,
            method,
            deadline: now.mono_ms + self.policy.capture_seconds as u64 * 1000,
            fusion: LivenessFusion::new(self.thr.liveness, self.thr.liveness_frames)
                .with_dtn_threshold(self.thr.dtn),
            sims: Vec::new(),
            prev: None,
            challenge: None,
            challenges_asked: 0,
            attempt,
        }));
        vec![Effect::Show(screen)]
    }

    /// A failed face attempt: recorded; then another window, the PIN pad, or a refusal.
    pub(super) fn face_failed(
        &mut self,
        now: Now,
        c: Capture,
        reason: &'static str,
        text: &str,
    ) -> Vec<Effect> {
        let median = |v: &[f32]| {
            let mut v = v.to_vec();
            v.sort_by(f32::total_cmp);
            v.get(v.len() / 2).copied()
        };
        let liveness = match c.fusion.decide() {
            LivenessDecision::Live { score }
            | LivenessDecision::Spoof { score }
            | LivenessDecision::Weak { score, .. } => Some(score),
            LivenessDecision::Pending { .. } => None,
        };
        let record = Effect::Record(NewRecord {
            outcome: Outcome::Rejected,
            employee_id: c.person.id.clone(),
            punch: self.punch(now),
            method: c.method,
            reason: reason.into(),
            liveness,
            match_score: median(&c.sims),
        });
        let next = c.attempt + 1;
        if next < self.policy.face_attempts {
            let mut out = vec![record];
            out.extend(self.start_capture(now, c.person, c.method, next));
            return out;
        }
        if c.person.has_pin && c.method == Method::BadgeFace {
            let mut out = vec![record];
            out.extend(self.ask_pin(now, c.person, &format!("{text}: enter your PIN"), reason));
            return out;
        }
        self.verdict(now);
        vec![
            record,
            Effect::Show(Screen::Rejected {
                name: Some(c.person.name.clone()),
                reason: text.into(),
                code: reason.into(),
            }),
            Effect::Led(false),
            Effect::Buzz(false),
        ]
    }

    pub(super) fn on_idle_face(&mut self, now: Now, obs: FaceObs) -> Vec<Effect> {
        match obs.identified.clone() {
            Some((p, _)) if p.active && p.face_enrolled && obs.guidance == Some(Guidance::Ok) => {
                let window = self.policy.anti_passback_minutes as u64 * 60_000;
                if self
                    .last_accepted
                    .get(&p.id)
                    .is_some_and(|&last| window > 0 && now.mono_ms.saturating_sub(last) < window)
                {
                    return vec![]; // face-only: someone lingering is not a new attempt
                }
                let mut out = self.begin_face(
                    now,
                    p,
                    Method::FaceOnly,
                    self.policy.face_attempts.saturating_sub(1),
                );
                if let State::Capture(c) = std::mem::replace(&mut self.state, State::Idle) {
                    out.extend(self.on_capture_face(now, *c, obs));
                }
                out
            }
            _ => {
                self.state = State::Idle;
                vec![]
            }
        }
    }

    pub(super) fn on_capture_face(
        &mut self,
        now: Now,
        mut c: Capture,
        obs: FaceObs,
    ) -> Vec<Effect> {
        let guidance = obs.guidance.unwrap_or(Guidance::NoFace);
        let similarity = obs.similarity.or(obs
            .identified
            .as_ref()
            .filter(|(p, _)| p.id == c.person.id)
            .map(|(_, s)| *s));
        let (Some(face), Some(live), Some(sim), Guidance::Ok) =
            (obs.face.clone(), obs.liveness.clone(), similarity, guidance)
        else {
            let screen = Screen::Capture {
                name: c.person.name.clone(),
                guidance,
            };
            self.state = State::Capture(Box::new(c));
            return vec![Effect::Show(screen)];
        };
        // Another face than the one the evidence so far is about: start the evidence afresh.
        if c.prev
            .as_ref()
            .is_some_and(|p| p.iou(&face) < SAME_FACE_IOU)
        {
            c.fusion.reset();
            c.sims.clear();
        }
        c.fusion.push(&live, &face);
        c.sims.push(sim);
        c.prev = Some(face.clone());
        let thr = if c.method == Method::FaceOnly {
            self.thr.identify
        } else {
            self.thr.verify
        };
        let mut sims = c.sims.clone();
        sims.sort_by(f32::total_cmp);
        let median_sim = sims[sims.len() / 2];
        let decision = c.fusion.decide();
        let live_score = match &decision {
            LivenessDecision::Live { score }
            | LivenessDecision::Spoof { score }
            | LivenessDecision::Weak { score, .. } => Some(*score),
            LivenessDecision::Pending { .. } => None,
        };
        // A challenge in progress: a matching face that turned as asked is accepted.
        if let Some(ch) = c.challenge {
            if ch.satisfied_by(&face) && sim >= thr {
                let person = c.person.clone();
                return self.accept(now, &person, c.method, live_score, Some(median_sim));
            }
            let screen = Screen::Challenge {
                name: c.person.name.clone(),
                prompt: ch.prompt().into(),
            };
            self.state = State::Capture(Box::new(c));
            return vec![Effect::Show(screen)];
        }
        match decision {
            LivenessDecision::Pending { .. } => {
                let screen = Screen::Capture {
                    name: c.person.name.clone(),
                    guidance: Guidance::Ok,
                };
                self.state = State::Capture(Box::new(c));
                vec![Effect::Show(screen)]
            }
            LivenessDecision::Spoof { .. } => self.face_failed(
                now,
                *Box::new(c),
                "liveness_failed",
                "face could not be confirmed as live",
            ),
            LivenessDecision::Live { score } => {
                if median_sim >= thr {
                    let person = c.person.clone();
                    self.accept(now, &person, c.method, Some(score), Some(median_sim))
                } else {
                    self.face_failed(now, c, "face_mismatch", "face does not match the badge")
                }
            }
            LivenessDecision::Weak { .. } => {
                if median_sim < thr {
                    return self.face_failed(
                        now,
                        c,
                        "face_mismatch",
                        "face does not match the badge",
                    );
                }
                if c.challenges_asked >= MAX_CHALLENGES {
                    return self.face_failed(
                        now,
                        c,
                        "liveness_failed",
                        "face could not be confirmed as live",
                    );
                }
                let kind = if c.challenges_asked.is_multiple_of(2) {
                    ChallengeKind::TurnLeft
                } else {
                    ChallengeKind::TurnRight
                };
                let ch = Challenge::new(kind, &face);
                c.challenges_asked += 1;
                c.challenge = Some(ch);
                c.deadline = c.deadline.max(now.mono_ms + 5000);
                let screen = Screen::Challenge {
                    name: c.person.name.clone(),
                    prompt: ch.prompt().into(),
                };
                self.state = State::Capture(Box::new(c));
                vec![Effect::Show(screen)]
            }
        }
    }
}
