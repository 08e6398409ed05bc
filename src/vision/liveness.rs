//! Passive liveness with the Deep Tree Network anti-spoofing model, and its sharpness gate.
//!
//! Preprocessing as the model's source app does it: a square crop around the face, resized to
//! 256x256, RGB scaled to 0–1. The model returns eight leaf scores and a one-hot mask of the
//! leaf the sample fell into; the spoof score is Σ|score_i|·mask_i and a frame looks live when it
//! is below the threshold (0.2 by default). The source app also refuses blurry crops: at least
//! 50 grey pixels must have a Laplacian response above 50.
//!
//! The DTN is one of three cues: [`super::fusion`] weighs it with MiniFASNet ([`super::pad`])
//! and the moiré spectrum, and [`super::quality`] fuses the frames of an attempt with the
//! flat-object test, asking for an active challenge when the evidence stays weak.

use ort::session::Session;
use ort::value::Tensor;
use serde::Serialize;

use super::detect::Face;
use super::runtime::ModelError;
use crate::base::frame::{Frame, laplacian_abs};

/// Side of the model's square input.
pub const INPUT: u32 = 256;
/// Laplacian response a pixel needs to count as an edge in the sharpness gate.
pub const SHARP_LAPLACIAN: f32 = 50.0;
/// Edge pixels the crop needs to count as sharp.
pub const SHARP_MIN_PIXELS: usize = 50;

/// What one frame says about liveness: every cue, and their fusion.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LivenessFrame {
    /// Fused attack score of this frame, 0–1 (lower is more live; see [`super::fusion`]).
    pub score: f32,
    /// The DTN's spoof score Σ|score_i|·mask_i, on the frames it ran on.
    pub dtn: Option<f32>,
    /// MiniFASNet's attack score, 1 − P(live), median over jittered crops.
    pub fasnet: f32,
    /// Moiré peak ratio of the face's centre, dB.
    pub moire_db: f32,
    /// Grey pixels of the 256x256 crop with Laplacian response above 50.
    pub sharp_pixels: usize,
}

impl LivenessFrame {
    /// A frame whose every cue says `attack` (0–1) on the common scale of a DTN threshold of
    /// 0.2, so that their fusion is `attack` too: for tests and simulations of the machine.
    pub fn with_attack(attack: f32, sharp_pixels: usize) -> LivenessFrame {
        let a = attack.clamp(1e-4, 1.0 - 1e-4);
        let odds = a / (1.0 - a);
        LivenessFrame {
            score: a,
            dtn: Some(0.2 * odds),
            fasnet: a,
            moire_db: super::fusion::MOIRE_DB + super::fusion::MOIRE_SCALE * odds.ln(),
            sharp_pixels,
        }
    }

    /// The cues, for fusion.
    pub fn cues(&self) -> super::fusion::Cues {
        super::fusion::Cues {
            fasnet: self.fasnet,
            dtn: self.dtn,
            moire_db: self.moire_db,
        }
    }
}

/// The anti-spoofing model and its session.
pub struct Liveness {
    session: Session,
}

/// The square 256x256 crop the model sees: centred on the face box, side = the box's longer
/// side, border pixels replicated where it leaves the frame.
pub fn crop(frame: &Frame, face: &Face) -> Frame {
    let [x, y, w, h] = face.bbox;
    let side = w.max(h);
    let (cx, cy) = (x + w / 2.0, y + h / 2.0);
    let (x0, y0) = (cx - side / 2.0, cy - side / 2.0);
    let scale = side / INPUT as f32;
    let mut data = Vec::with_capacity((INPUT * INPUT * 3) as usize);
    for yy in 0..INPUT {
        let fy = y0 + (yy as f32 + 0.5) * scale - 0.5;
        for xx in 0..INPUT {
            let fx = x0 + (xx as f32 + 0.5) * scale - 0.5;
            let p = frame.sample(fx, fy);
            data.extend(p.iter().map(|v| (v + 0.5) as u8));
        }
    }
    Frame {
        width: INPUT,
        height: INPUT,
        data,
    }
}

/// Counts edge pixels for the sharpness gate.
pub fn sharp_pixels(crop: &Frame) -> usize {
    let grey = crop.grey();
    laplacian_abs(&grey, crop.width as usize, crop.height as usize)
        .iter()
        .filter(|&&v| v > SHARP_LAPLACIAN)
        .count()
}

impl Liveness {
    /// Wraps a loaded session.
    pub fn new(session: Session) -> Self {
        Liveness { session }
    }

    /// The NHWC RGB 0–1 input for a 256x256 crop.
    pub fn preprocess(crop: &Frame) -> Vec<f32> {
        crop.data.iter().map(|&v| v as f32 / 255.0).collect()
    }

    /// Runs the model on a prepared input and applies the score formula.
    pub fn infer(&mut self, input: Vec<f32>) -> Result<f32, ModelError> {
        let err = |e: ort::Error| ModelError::Inference {
            model: "liveness",
            reason: e.to_string(),
        };
        let tensor = Tensor::from_array(([1usize, INPUT as usize, INPUT as usize, 3], input))
            .map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs!["input" => tensor])
            .map_err(err)?;
        let (_, scores) = outputs["scores"].try_extract_tensor::<f32>().map_err(err)?;
        let (_, mask) = outputs["mask"].try_extract_tensor::<f32>().map_err(err)?;
        if scores.len() != 8 || mask.len() != 8 {
            return Err(ModelError::Inference {
                model: "liveness",
                reason: format!(
                    "expected 8 leaf scores and mask values, got {} and {}",
                    scores.len(),
                    mask.len()
                ),
            });
        }
        Ok(scores.iter().zip(mask).map(|(s, m)| s.abs() * m).sum())
    }

    /// The DTN's spoof score of one face and the crop's edge pixels.
    pub fn check(&mut self, frame: &Frame, face: &Face) -> Result<(f32, usize), ModelError> {
        let c = crop(frame, face);
        let sharp = sharp_pixels(&c);
        Ok((self.infer(Self::preprocess(&c))?, sharp))
    }
}
