//! Pre-roll: while someone stands in front of the idle kiosk, frames are analysed before they
//! tap, so the tap needs only a match of embeddings already computed.
//!
//! One face is tracked at a time: a frame continues the track when its face overlaps the last
//! one; a frame without a face, or with a face somewhere else, ends it. Only the last second of
//! the track is kept, in memory — box, landmarks, liveness cues and embedding — and all of it is
//! dropped when the face leaves, when it grows stale, or once a tap has used it. Nothing of it
//! is written anywhere. At a tap, the frames of the face that is in front of the camera then
//! are handed to the capture; a face that turns up after the tap starts a capture of its own.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::kiosk::events::FaceObs;
use crate::vision::detect::Face;
use crate::vision::quality::Guidance;

/// How much of the track is kept.
pub const KEEP: Duration = Duration::from_millis(1000);
/// The newest frame must be at most this old for the track to count as "in front now".
pub const FRESH: Duration = Duration::from_millis(500);
/// Between frames, the face's boxes must overlap at least this much to be the same face.
pub const SAME_FACE_IOU: f32 = 0.3;
/// With no face tracked and no PIR, look for one this often.
pub const PROBE: Duration = Duration::from_millis(200);

/// One analysed frame of the tracked face.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When its analysis finished.
    pub at: Instant,
    /// What the pipeline saw (with the embedding).
    pub obs: FaceObs,
}

/// The last second of the tracked face.
#[derive(Debug, Default)]
pub struct PreRoll {
    entries: VecDeque<Entry>,
    /// When the last probe job was sent.
    pub last_probe: Option<Instant>,
}

/// Whether `b` is the same face as `a` a frame later.
pub fn same_face(a: &Face, b: &Face) -> bool {
    a.iou(b) >= SAME_FACE_IOU
}

impl PreRoll {
    /// Adds an analysed idle frame: continues, starts or ends the track.
    pub fn push(&mut self, at: Instant, obs: FaceObs) {
        let Some(face) = &obs.face else {
            self.entries.clear();
            return;
        };
        if let Some(last) = self.entries.back().and_then(|e| e.obs.face.as_ref())
            && !same_face(last, face)
        {
            self.entries.clear();
        }
        self.entries.push_back(Entry { at, obs });
        while self
            .entries
            .front()
            .is_some_and(|e| at.duration_since(e.at) > KEEP)
        {
            self.entries.pop_front();
        }
    }

    /// True while a face is tracked and its last frame is fresh.
    pub fn tracking(&self, now: Instant) -> bool {
        self.entries
            .back()
            .is_some_and(|e| now.duration_since(e.at) <= FRESH)
    }

    /// Frames held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Hands over the usable frames of the fresh track (gates passed, cues and embedding
    /// present) and forgets everything; a stale track gives nothing.
    pub fn take(&mut self, now: Instant) -> Vec<FaceObs> {
        let fresh = self.tracking(now);
        self.entries
            .drain(..)
            .filter(|_| fresh)
            .filter(|e| {
                e.obs.guidance == Some(Guidance::Ok)
                    && e.obs.liveness.is_some()
                    && e.obs.embedding.is_some()
            })
            .map(|e| e.obs)
            .collect()
    }

    /// Forgets the track.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

impl super::Runner {
    /// Whether idle frames should be analysed now: face check-in works, the config allows
    /// pre-roll, and the PIR says someone is near, a face is tracked, or a probe is due.
    pub(super) fn preroll_wanted(&self) -> bool {
        let f = &self.feed;
        if f.jobs.is_none() || !self.k.config.vision.preroll || !self.machine.is_idle() {
            return false;
        }
        let now = Instant::now();
        self.motion
            || f.preroll.tracking(now)
            || f.preroll
                .last_probe
                .is_none_or(|t| now.duration_since(t) >= PROBE)
    }

    /// A pre-roll frame came back: into the buffer, and on to the next frame.
    pub(super) fn on_track(&mut self, obs: FaceObs) {
        self.feed.prev_face = obs.face.clone();
        if self.machine.is_idle() {
            self.feed.preroll.push(Instant::now(), obs);
        }
        self.feed_vision();
    }

    /// After a badge read: the tracked face's frames, matched against the badge holder's
    /// templates, go to the capture as if they had just been analysed.
    pub(super) fn replay_preroll(&mut self) {
        let crate::kiosk::events::VisionRequest::Verify(_) = self.machine.vision_request() else {
            self.feed.preroll.clear();
            return;
        };
        let frames = self.feed.preroll.take(Instant::now());
        if frames.is_empty() {
            return;
        }
        tracing::debug!(
            frames = frames.len(),
            "using the pre-roll of the tracked face"
        );
        for mut obs in frames {
            if let Some(e) = obs.embedding.take() {
                obs.similarity = crate::vision::matcher::verify(&e, &self.feed.templates);
            }
            self.feed.prev_face = obs.face.clone();
            self.step(crate::kiosk::events::Event::Face(obs));
            if !matches!(
                self.machine.vision_request(),
                crate::kiosk::events::VisionRequest::Verify(_)
            ) {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::liveness::LivenessFrame;

    fn obs(x: f32) -> FaceObs {
        FaceObs {
            guidance: Some(Guidance::Ok),
            face: Some(Face {
                bbox: [x, 100.0, 120.0, 150.0],
                score: 0.9,
                landmarks: [[0.0; 2]; 5],
            }),
            liveness: Some(LivenessFrame::default()),
            embedding: Some(vec![1.0, 0.0]),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_one_second_of_one_face_and_drops_it_when_the_face_leaves() {
        let t0 = Instant::now();
        let mut p = PreRoll::default();
        for i in 0..40u64 {
            p.push(
                t0 + Duration::from_millis(i * 33),
                obs(100.0 + i as f32 * 0.5),
            );
        }
        // 1 s at 30 fps.
        assert!((30..=31).contains(&p.len()), "{}", p.len());
        let now = t0 + Duration::from_millis(39 * 33 + 10);
        assert!(p.tracking(now));
        // Someone else somewhere else: a new track.
        p.push(now, obs(400.0));
        assert_eq!(p.len(), 1);
        // The face leaves.
        p.push(now, FaceObs::default());
        assert!(p.is_empty());
    }

    #[test]
    fn a_stale_track_gives_nothing_and_a_take_forgets() {
        let t0 = Instant::now();
        let mut p = PreRoll::default();
        for i in 0..5u64 {
            p.push(t0 + Duration::from_millis(i * 33), obs(100.0));
        }
        let fresh = t0 + Duration::from_millis(200);
        assert_eq!(p.take(fresh).len(), 5);
        assert!(p.is_empty());
        for i in 0..5u64 {
            p.push(t0 + Duration::from_millis(i * 33), obs(100.0));
        }
        assert!(p.take(t0 + Duration::from_secs(2)).is_empty());
        assert!(p.is_empty());
    }
}
