//! Score-level fusion of the presentation-attack cues.
//!
//! Each cue is first put on one scale — an attack score from 0 (live) to 1 (attack) that is
//! 0.5 at the cue's own decision point — and the fused score is their weighted mean:
//!
//! - the DTN's spoof score `s` as `s / (s + t)`, `t` its threshold (`vision.liveness_threshold`);
//! - MiniFASNet's `1 − P(live)`, the median over jittered crops;
//! - the moiré peak ratio `m` dB as a logistic around [`MOIRE_DB`].
//!
//! The moiré cue carries most weight: it was the only one that never called a real portrait an
//! attack. MiniFASNet is confident on rephotographs but also on some soft real portraits; the
//! DTN flips with a 10-pixel box change on real captures. Neither carries a decision alone. Weights, the
//! moiré midpoint and the fused threshold (`vision.pad_threshold`) were chosen on one
//! rendering of the labelled synthetic attack sets (`make-attacks --seed 1`) against the real
//! portraits, and are reported on another (`--seed 2`); `clockface vision pad-report` prints
//! the figures.

/// Weight of MiniFASNet in the fused score.
pub const W_FASNET: f32 = 0.3;
/// Weight of the DTN.
pub const W_DTN: f32 = 0.25;
/// Weight of the moiré cue.
pub const W_MOIRE: f32 = 0.45;
/// Moiré peak ratio (dB) at which that cue says 0.5.
pub const MOIRE_DB: f32 = 20.0;
/// dB over which the moiré cue goes from 0.27 to 0.73.
pub const MOIRE_SCALE: f32 = 2.0;

/// The DTN's spoof score on the common scale.
pub fn dtn_attack(score: f32, threshold: f32) -> f32 {
    let s = score.max(0.0);
    s / (s + threshold.max(1e-3))
}

/// The moiré peak ratio on the common scale.
pub fn moire_attack(db: f32) -> f32 {
    1.0 / (1.0 + (-(db - MOIRE_DB) / MOIRE_SCALE).exp())
}

/// The cues of one frame or one attempt, raw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cues {
    /// MiniFASNet attack score (1 − P(live)).
    pub fasnet: f32,
    /// DTN spoof score, when it ran.
    pub dtn: Option<f32>,
    /// Moiré peak ratio, dB.
    pub moire_db: f32,
}

/// The fused attack score, 0–1. Without a DTN score its weight goes to the others.
pub fn fuse(c: Cues, dtn_threshold: f32) -> f32 {
    let mut sum = W_FASNET * c.fasnet.clamp(0.0, 1.0) + W_MOIRE * moire_attack(c.moire_db);
    let mut w = W_FASNET + W_MOIRE;
    if let Some(d) = c.dtn {
        sum += W_DTN * dtn_attack(d, dtn_threshold);
        w += W_DTN;
    }
    sum / w
}

/// Median of a list (None when empty).
pub fn median(v: impl IntoIterator<Item = f32>) -> Option<f32> {
    let mut v: Vec<f32> = v.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    Some(v[v.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cue_is_half_at_its_own_threshold() {
        assert!((dtn_attack(0.2, 0.2) - 0.5).abs() < 1e-6);
        assert!((moire_attack(MOIRE_DB) - 0.5).abs() < 1e-6);
        let mid = Cues {
            fasnet: 0.5,
            dtn: Some(0.2),
            moire_db: MOIRE_DB,
        };
        assert!((fuse(mid, 0.2) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn one_confident_attack_cue_moves_the_fused_score() {
        let live = Cues {
            fasnet: 0.02,
            dtn: Some(0.01),
            moire_db: 12.0,
        };
        let screen = Cues {
            moire_db: 40.0,
            ..live
        };
        assert!(fuse(live, 0.2) < 0.1);
        assert!(fuse(screen, 0.2) > fuse(live, 0.2) + 0.25);
        // Without the DTN the others carry the decision.
        assert!(fuse(Cues { dtn: None, ..live }, 0.2) < 0.1);
    }
}
