//! The second presentation-attack model: a MiniFASNet-style network from the npm package
//! `faceplugin-face-recognition-js@0.0.1` (`model/fr_liveness.onnx`).
//!
//! The crop follows the package's own `lib/fr_liveness.js`: the face box is scaled about its
//! centre by min(2.7, what fits in the image), shifted back inside, cut with whole-pixel
//! corners and resized to 128x128 bilinearly; the input is RGB 0–255, NCHW. The model returns
//! three logits; softmax class 0 is "live". It looks at the face with its surroundings (the
//! edge of a print or a screen's bezel), which the DTN's tight crop never sees.
//!
//! One crop is fragile, so [`Fasnet::check`] scores the box and jittered copies of it and keeps
//! the median: a few pixels of detector noise must not flip the verdict. The kiosk, which sees
//! many frames, scores one crop a frame and cycles through the jitters, so the attempt's median
//! covers them all at a third of the cost.

use ort::session::Session;
use ort::value::Tensor;

use super::detect::Face;
use super::runtime::ModelError;
use crate::base::frame::Frame;

/// Side of the model's square input.
pub const INPUT: u32 = 128;
/// How far the crop reaches beyond the face box, as in the package's JavaScript.
pub const SCALE: f32 = 2.7;

/// The crop rectangle `[x, y, w, h]` in whole pixels, as `alignLivenessImage` computes it.
pub fn crop_rect(width: u32, height: u32, bbox: [f32; 4], scale: f32) -> [i64; 4] {
    let (src_w, src_h) = (width as f32, height as f32);
    let [x, y, bw, bh] = bbox;
    let (bw, bh) = (bw.max(1.0), bh.max(1.0));
    let s = ((src_h - 1.0) / bh).min((src_w - 1.0) / bw).min(scale);
    let (nw, nh) = (bw * s, bh * s);
    let (cx, cy) = (x + bw / 2.0, y + bh / 2.0);
    let (mut l, mut t, mut r, mut b) = (cx - nw / 2.0, cy - nh / 2.0, cx + nw / 2.0, cy + nh / 2.0);
    if l < 0.0 {
        r -= l;
        l = 0.0;
    }
    if t < 0.0 {
        b -= t;
        t = 0.0;
    }
    if r > src_w - 1.0 {
        l -= r - src_w + 1.0;
        r = src_w - 1.0;
    }
    if b > src_h - 1.0 {
        t -= b - src_h + 1.0;
        b = src_h - 1.0;
    }
    // JavaScript's parseInt truncates toward zero.
    let (x0, y0) = ((l as i64).max(0), (t as i64).max(0));
    let w = ((r - l) as i64).min(width as i64 - 1).max(1);
    let h = ((b - t) as i64).min(height as i64 - 1).max(1);
    [x0, y0, w, h]
}

/// The 128x128 input crop of a face box (OpenCV's bilinear resize of the rectangle).
pub fn crop(frame: &Frame, bbox: [f32; 4]) -> Frame {
    let [x, y, w, h] = crop_rect(frame.width, frame.height, bbox, SCALE);
    let (sx, sy) = (w as f32 / INPUT as f32, h as f32 / INPUT as f32);
    let mut data = Vec::with_capacity((INPUT * INPUT * 3) as usize);
    for yy in 0..INPUT {
        let fy = y as f32 + ((yy as f32 + 0.5) * sy - 0.5).clamp(0.0, h as f32 - 1.0);
        for xx in 0..INPUT {
            let fx = x as f32 + ((xx as f32 + 0.5) * sx - 0.5).clamp(0.0, w as f32 - 1.0);
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

/// The box moved and scaled by fractions of its size: `(dx, dy, ds)`.
pub fn jitter(bbox: [f32; 4], dx: f32, dy: f32, ds: f32) -> [f32; 4] {
    let [x, y, w, h] = bbox;
    let (nw, nh) = (w * (1.0 + ds), h * (1.0 + ds));
    let (cx, cy) = (x + w / 2.0 + dx * w, y + h / 2.0 + dy * h);
    [cx - nw / 2.0, cy - nh / 2.0, nw, nh]
}

/// The jitters scored on each frame: the box itself and four shifted or scaled copies (±4 %).
pub const FRAME_JITTERS: [(f32, f32, f32); 3] =
    [(0.0, 0.0, 0.0), (0.04, -0.03, 0.04), (-0.04, 0.03, -0.04)];

/// Softmax of the three logits; class 0 is live.
pub fn live_probability(logits: &[f32]) -> f32 {
    let m = logits.iter().cloned().fold(f32::MIN, f32::max);
    let e: Vec<f32> = logits.iter().map(|v| (v - m).exp()).collect();
    e[0] / e.iter().sum::<f32>()
}

/// The model and its session.
pub struct Fasnet {
    session: Session,
}

impl Fasnet {
    /// Wraps a loaded session.
    pub fn new(session: Session) -> Self {
        Fasnet { session }
    }

    /// The NCHW RGB 0–255 input for a 128x128 crop.
    pub fn preprocess(crop: &Frame) -> Vec<f32> {
        let n = (INPUT * INPUT) as usize;
        let mut data = vec![0f32; 3 * n];
        for (i, p) in crop.data.chunks_exact(3).enumerate() {
            for ch in 0..3 {
                data[ch * n + i] = p[ch] as f32;
            }
        }
        data
    }

    /// Probability that one crop is live.
    pub fn infer(&mut self, input: Vec<f32>) -> Result<f32, ModelError> {
        let err = |e: ort::Error| ModelError::Inference {
            model: "fasnet",
            reason: e.to_string(),
        };
        let n = INPUT as usize;
        let tensor = Tensor::from_array(([1usize, 3, n, n], input)).map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs!["input" => tensor])
            .map_err(err)?;
        let (_, logits) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        if logits.len() != 3 || logits.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::Inference {
                model: "fasnet",
                reason: format!("expected 3 finite logits, got {:?}", logits),
            });
        }
        Ok(live_probability(logits))
    }

    /// Attack score (1 − live probability) of a face: the median over the box and its jitters.
    pub fn check(&mut self, frame: &Frame, face: &Face) -> Result<f32, ModelError> {
        self.check_crops(frame, face, &FRAME_JITTERS)
    }

    /// Attack score over the given jitters of the box (the median).
    pub fn check_crops(
        &mut self,
        frame: &Frame,
        face: &Face,
        jitters: &[(f32, f32, f32)],
    ) -> Result<f32, ModelError> {
        let mut scores = Vec::with_capacity(jitters.len());
        for &(dx, dy, ds) in jitters {
            let c = crop(frame, jitter(face.bbox, dx, dy, ds));
            scores.push(1.0 - self.infer(Self::preprocess(&c))?);
        }
        scores.sort_by(f32::total_cmp);
        Ok(scores[scores.len() / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_rect_follows_the_packages_javascript() {
        // Fits: 2.7 x the box about its centre.
        assert_eq!(
            crop_rect(640, 480, [300.0, 200.0, 60.0, 80.0], SCALE),
            [249, 132, 162, 216]
        );
        // Too big for the image: the scale shrinks to what fits ((480-1)/200), then it is
        // shifted inside.
        let [x, y, w, h] = crop_rect(640, 480, [500.0, 100.0, 150.0, 200.0], SCALE);
        assert_eq!((w, h), (359, 479));
        assert!(x >= 0 && x + w <= 639 && y == 0);
    }

    #[test]
    fn softmax_class_zero_is_live() {
        assert!((live_probability(&[0.0, 0.0, 0.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert!(live_probability(&[5.0, -1.0, 0.0]) > 0.99);
        assert!(live_probability(&[-5.0, 3.0, 0.0]) < 0.01);
    }

    #[test]
    fn jitter_keeps_the_centre_without_shift() {
        let b = jitter([10.0, 20.0, 100.0, 120.0], 0.0, 0.0, 0.1);
        assert!((b[0] + b[2] / 2.0 - 60.0).abs() < 1e-4);
        assert!((b[2] - 110.0).abs() < 1e-4);
    }
}
