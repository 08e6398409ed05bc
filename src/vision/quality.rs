//! Quality gates, the fused liveness decision and the active challenge.
//!
//! Each frame's best face passes through gates — size, brightness, pose (from landmarks),
//! motion since the previous frame, sharpness — that map to the guidance a person can act on
//! ("too far", "too dark", "hold still", "look at the camera"). Only frames that pass feed the
//! liveness fusion, which decides over a short window: live when most good frames score live,
//! spoof when most score spoof, and *weak* otherwise — including when consecutive frames are
//! pixel-identical, which a camera looking at a person never produces (an injected or replayed
//! still). Weak evidence asks for an active challenge that the landmarks can check.

use std::collections::VecDeque;

use serde::Serialize;

use super::detect::Face;
use super::flat::{self, Landmarks};
use super::fusion;
use super::liveness::{LivenessFrame, SHARP_MIN_PIXELS};
use crate::base::config::VisionConfig;
use crate::base::frame::Frame;

/// What the person at the kiosk should do, or `Ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Guidance {
    /// The frame is good enough to use.
    Ok,
    /// No face found.
    NoFace,
    /// More than one face close to the camera.
    MultipleFaces,
    /// The face is too small: come closer.
    TooFar,
    /// The face is too dark.
    TooDark,
    /// The face is over-exposed.
    TooBright,
    /// Moving or blurred: hold still.
    HoldStill,
    /// Head turned or tilted: look at the camera.
    LookAtCamera,
}

impl Guidance {
    /// Short English prompt (the UI translates by the snake_case key).
    pub fn prompt(self) -> &'static str {
        match self {
            Guidance::Ok => "hold on",
            Guidance::NoFace => "look at the camera",
            Guidance::MultipleFaces => "one person at a time, please",
            Guidance::TooFar => "come a little closer",
            Guidance::TooDark => "too dark: face the light",
            Guidance::TooBright => "too bright: step out of direct light",
            Guidance::HoldStill => "hold still",
            Guidance::LookAtCamera => "look straight at the camera",
        }
    }
}

/// Thresholds of the per-frame gates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gates {
    /// Smallest acceptable face side, in frame pixels.
    pub min_face_px: f32,
    /// Mean grey level range of the face box.
    pub brightness: (f32, f32),
    /// Largest |yaw| (nose offset from the eye midpoint, in inter-eye distances).
    pub max_yaw: f32,
    /// Acceptable pitch ratio range (nose height between eyes and mouth).
    pub pitch: (f32, f32),
    /// Largest movement of the face centre between frames, in face widths.
    pub max_motion: f32,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            min_face_px: 80.0,
            brightness: (50.0, 215.0),
            max_yaw: 0.35,
            pitch: (0.2, 0.8),
            max_motion: 0.15,
        }
    }
}

impl Gates {
    /// The gates a `[vision]` config implies (its smallest face size over the defaults).
    pub fn for_config(cfg: &VisionConfig) -> Gates {
        Gates {
            min_face_px: cfg.min_face_px as f32,
            ..Gates::default()
        }
    }
}

/// Head yaw from landmarks: nose x offset from the eye midpoint over the eye distance.
/// Positive when the nose is toward the image's right.
pub fn yaw(face: &Face) -> f32 {
    let [re, le, nose, _, _] = face.landmarks;
    let eye_dist = (le[0] - re[0]).abs().max(1.0);
    (nose[0] - (re[0] + le[0]) / 2.0) / eye_dist
}

/// Head pitch ratio: where the nose sits between the eye line (0) and the mouth line (1).
pub fn pitch(face: &Face) -> f32 {
    let [re, le, nose, rm, lm] = face.landmarks;
    let eye_y = (re[1] + le[1]) / 2.0;
    let mouth_y = (rm[1] + lm[1]) / 2.0;
    (nose[1] - eye_y) / (mouth_y - eye_y).max(1.0)
}

/// Picks the face to use (the largest) and checks the geometric and photometric gates.
/// Sharpness is checked later, on the liveness crop.
pub fn assess<'a>(
    frame: &Frame,
    faces: &'a [Face],
    prev: Option<&Face>,
    g: &Gates,
) -> (Guidance, Option<&'a Face>) {
    let Some(best) = faces
        .iter()
        .max_by(|a, b| (a.bbox[2] * a.bbox[3]).total_cmp(&(b.bbox[2] * b.bbox[3])))
    else {
        return (Guidance::NoFace, None);
    };
    let area = best.bbox[2] * best.bbox[3];
    // A second face at least half as large: someone else is at the kiosk too.
    if faces
        .iter()
        .filter(|f| f.bbox[2] * f.bbox[3] >= area * 0.5)
        .count()
        > 1
    {
        return (Guidance::MultipleFaces, Some(best));
    }
    if best.bbox[2].min(best.bbox[3]) < g.min_face_px {
        return (Guidance::TooFar, Some(best));
    }
    let [x, y, w, h] = best.bbox;
    let light = frame.mean_grey(x as i64, y as i64, w as u32, h as u32);
    if light < g.brightness.0 {
        return (Guidance::TooDark, Some(best));
    }
    if light > g.brightness.1 {
        return (Guidance::TooBright, Some(best));
    }
    let p = pitch(best);
    if yaw(best).abs() > g.max_yaw || p < g.pitch.0 || p > g.pitch.1 {
        return (Guidance::LookAtCamera, Some(best));
    }
    if let Some(prev) = prev {
        let (a, b) = (best.centre(), prev.centre());
        let moved = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt() / best.bbox[2].max(1.0);
        if moved > g.max_motion {
            return (Guidance::HoldStill, Some(best));
        }
    }
    (Guidance::Ok, Some(best))
}

/// The fused liveness decision over a window of good frames.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum LivenessDecision {
    /// Not enough good frames yet.
    Pending {
        /// Good frames so far.
        frames: usize,
    },
    /// The fused attack score is below the threshold and nothing contradicts it.
    Live {
        /// Fused attack score of the attempt.
        score: f32,
    },
    /// The fused score is at or above the threshold, or the face moved as a plane.
    Spoof {
        /// Fused attack score of the attempt.
        score: f32,
    },
    /// Evidence is inconclusive: ask for an active challenge.
    Weak {
        /// Fused attack score of the attempt.
        score: f32,
        /// Why the evidence is weak.
        reason: String,
    },
}

/// Below the threshold by less than this, the fused score is too close to call alone: the
/// person is asked to turn their head.
pub const WEAK_MARGIN: f32 = 0.05;

/// Accumulates per-frame liveness observations of one attempt and decides at score level:
/// the median of each cue over the frames, fused (see [`super::fusion`]), with the
/// flat-object test over the landmarks of the same frames.
#[derive(Debug, Clone)]
pub struct LivenessFusion {
    /// Fused attack-score threshold: the attempt looks live below it.
    pub threshold: f32,
    /// The DTN's own threshold, which puts its score on the common scale.
    pub dtn_threshold: f32,
    /// Good frames needed before deciding.
    pub min_frames: usize,
    window: VecDeque<(LivenessFrame, Landmarks)>,
}

impl LivenessFusion {
    /// A fusion with the given fused threshold, deciding once `min_frames` good frames arrived.
    pub fn new(threshold: f32, min_frames: usize) -> Self {
        LivenessFusion {
            threshold,
            dtn_threshold: 0.2,
            min_frames: min_frames.max(1),
            window: VecDeque::new(),
        }
    }

    /// The same fusion with the DTN's threshold set.
    pub fn with_dtn_threshold(mut self, t: f32) -> Self {
        self.dtn_threshold = t;
        self
    }

    /// Adds a good frame's observation (frames that failed the gates are not added).
    pub fn push(&mut self, obs: &LivenessFrame, face: &Face) {
        self.window.push_back((obs.clone(), face.landmarks));
        while self.window.len() > (self.min_frames * 3).max(8) {
            self.window.pop_front();
        }
    }

    /// Forgets everything (a new person).
    pub fn reset(&mut self) {
        self.window.clear();
    }

    /// Good frames held.
    pub fn frames(&self) -> usize {
        self.window.len()
    }

    /// The landmarks of the frames held, oldest first.
    pub fn landmarks(&self) -> Vec<Landmarks> {
        self.window.iter().map(|w| w.1).collect()
    }

    /// The attempt's fused attack score: each cue's median over the frames, fused.
    pub fn score(&self) -> Option<f32> {
        let fasnet = fusion::median(self.window.iter().map(|w| w.0.fasnet))?;
        let moire_db = fusion::median(self.window.iter().map(|w| w.0.moire_db))?;
        let dtn = fusion::median(self.window.iter().filter_map(|w| w.0.dtn));
        Some(fusion::fuse(
            fusion::Cues {
                fasnet,
                dtn,
                moire_db,
            },
            self.dtn_threshold,
        ))
    }

    /// The decision on the frames so far. Fails closed: no DTN score yet is still pending, so
    /// an attempt whose models cannot run ends at its deadline, never in an accept.
    pub fn decide(&self) -> LivenessDecision {
        let n = self.window.len();
        let has_dtn = self.window.iter().any(|w| w.0.dtn.is_some());
        let Some(score) = self.score().filter(|_| n >= self.min_frames && has_dtn) else {
            return LivenessDecision::Pending { frames: n };
        };
        let sharp = self
            .window
            .iter()
            .filter(|w| w.0.sharp_pixels >= SHARP_MIN_PIXELS)
            .count();
        // Landmark movement between consecutive frames, in pixels.
        let still = self
            .window
            .iter()
            .zip(self.window.iter().skip(1))
            .all(|(a, b)| {
                a.1.iter()
                    .zip(&b.1)
                    .all(|(p, q)| (p[0] - q[0]).abs() < 1e-3 && (p[1] - q[1]).abs() < 1e-3)
            });
        if score >= self.threshold {
            return LivenessDecision::Spoof { score };
        }
        if flat::flatness(&self.landmarks()).0 == flat::Flatness::Planar {
            return LivenessDecision::Spoof { score };
        }
        if sharp * 3 < n * 2 {
            return LivenessDecision::Weak {
                score,
                reason: "face too blurred to judge".into(),
            };
        }
        if still {
            return LivenessDecision::Weak {
                score,
                reason: "frames are identical: no natural motion".into(),
            };
        }
        if score > self.threshold - WEAK_MARGIN {
            return LivenessDecision::Weak {
                score,
                reason: "attack score close to the threshold".into(),
            };
        }
        LivenessDecision::Live { score }
    }
}

/// An active liveness challenge the landmarks can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeKind {
    /// Turn the head slightly to the person's left (nose moves toward the image's right).
    TurnLeft,
    /// Turn the head slightly to the person's right.
    TurnRight,
}

/// A challenge in progress: the yaw when it was asked, and what must change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Challenge {
    /// What was asked.
    pub kind: ChallengeKind,
    /// Yaw when it was asked.
    pub baseline: f32,
    /// The landmarks when it was asked: a turn that a plane explains does not count.
    pub start: Landmarks,
}

/// Yaw change (in inter-eye distances) that counts as a deliberate turn.
pub const CHALLENGE_TURN: f32 = 0.12;

impl Challenge {
    /// Starts a challenge from the face as it is now.
    pub fn new(kind: ChallengeKind, face: &Face) -> Self {
        Challenge {
            kind,
            baseline: yaw(face),
            start: face.landmarks,
        }
    }

    /// The prompt shown to the person.
    pub fn prompt(&self) -> &'static str {
        match self.kind {
            ChallengeKind::TurnLeft => "turn your head slightly left",
            ChallengeKind::TurnRight => "turn your head slightly right",
        }
    }

    /// True once the face has turned far enough in the asked direction, and not as a flat
    /// object turns (a print tilted toward the camera moves its landmarks by a homography).
    pub fn satisfied_by(&self, face: &Face) -> bool {
        let d = yaw(face) - self.baseline;
        let turned = match self.kind {
            ChallengeKind::TurnLeft => d > CHALLENGE_TURN,
            ChallengeKind::TurnRight => d < -CHALLENGE_TURN,
        };
        turned && flat::flatness(&[self.start, face.landmarks]).0 != flat::Flatness::Planar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face_with_nose(nose_x: f32) -> Face {
        Face {
            bbox: [80.0, 60.0, 120.0, 150.0],
            score: 0.9,
            landmarks: [
                [110.0, 110.0],
                [170.0, 110.0],
                [nose_x, 140.0],
                [115.0, 170.0],
                [165.0, 170.0],
            ],
        }
    }

    fn obs(attack: f32) -> LivenessFrame {
        LivenessFrame::with_attack(attack, 500)
    }

    #[test]
    fn gates_give_guidance() {
        let frame = Frame::from_rgb(320, 240, vec![120; 320 * 240 * 3]).unwrap();
        let g = Gates::default();
        assert_eq!(assess(&frame, &[], None, &g).0, Guidance::NoFace);
        assert_eq!(
            assess(&frame, &[face_with_nose(140.0)], None, &g).0,
            Guidance::Ok
        );
        assert_eq!(
            assess(&frame, &[face_with_nose(175.0)], None, &g).0,
            Guidance::LookAtCamera
        );
        let mut small = face_with_nose(140.0);
        small.bbox[2] = 40.0;
        assert_eq!(assess(&frame, &[small], None, &g).0, Guidance::TooFar);
        let dark = Frame::from_rgb(320, 240, vec![10; 320 * 240 * 3]).unwrap();
        assert_eq!(
            assess(&dark, &[face_with_nose(140.0)], None, &g).0,
            Guidance::TooDark
        );
        let mut moved = face_with_nose(140.0);
        moved.bbox[0] += 60.0;
        assert_eq!(
            assess(&frame, &[moved], Some(&face_with_nose(140.0)), &g).0,
            Guidance::HoldStill
        );
    }

    #[test]
    fn fusion_decides_live_spoof_and_weak() {
        let mut f = LivenessFusion::new(0.2, 3);
        f.push(&obs(0.05), &face_with_nose(140.0));
        assert_eq!(f.decide(), LivenessDecision::Pending { frames: 1 });
        f.push(&obs(0.07), &face_with_nose(140.4));
        f.push(&obs(0.1), &face_with_nose(139.7));
        assert!(matches!(f.decide(), LivenessDecision::Live { .. }));

        let mut s = LivenessFusion::new(0.2, 3);
        for (k, v) in [0.5, 0.6, 0.1].iter().enumerate() {
            s.push(&obs(*v), &face_with_nose(140.0 + k as f32));
        }
        assert!(matches!(s.decide(), LivenessDecision::Spoof { .. }));

        // Identical frames (an injected still) are weak evidence even with live scores.
        let mut still = LivenessFusion::new(0.2, 3);
        for _ in 0..3 {
            still.push(&obs(0.05), &face_with_nose(140.0));
        }
        assert!(
            matches!(still.decide(), LivenessDecision::Weak { ref reason, .. } if reason.contains("identical"))
        );
    }

    #[test]
    fn landmarks_that_move_as_a_plane_are_a_spoof_whatever_the_scores() {
        let mut plane = flat::FACE_3D;
        for p in &mut plane {
            p[2] = 0.0;
        }
        let mut f = LivenessFusion::new(0.4, 3);
        for (k, yaw) in [0.0f32, 0.5, 0.9].iter().enumerate() {
            let landmarks =
                flat::project(&plane, *yaw, 0.05 * k as f32, 6.0, 600.0, [320.0, 240.0]);
            let face = Face {
                bbox: [250.0, 170.0, 140.0, 160.0],
                score: 0.9,
                landmarks,
            };
            f.push(&obs(0.05), &face);
        }
        assert!(
            matches!(f.decide(), LivenessDecision::Spoof { .. }),
            "{:?}",
            f.decide()
        );
    }

    #[test]
    fn challenge_checks_the_turn_direction() {
        let c = Challenge::new(ChallengeKind::TurnLeft, &face_with_nose(140.0));
        assert!(!c.satisfied_by(&face_with_nose(142.0)));
        assert!(!c.satisfied_by(&face_with_nose(125.0)));
        assert!(c.satisfied_by(&face_with_nose(150.0)));
        let r = Challenge::new(ChallengeKind::TurnRight, &face_with_nose(140.0));
        assert!(r.satisfied_by(&face_with_nose(125.0)));
    }
}
