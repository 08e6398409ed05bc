//! Face embeddings: MobileFaceNet (default, 192-d) or SFace (128-d), L2-normalised.
//!
//! Both take the aligned 112x112 RGB crop. MobileFaceNet (converted from TFLite, NHWC) wants
//! (x − 127.5) / 128 and accepts a batch; SFace (NCHW) wants raw 0–255 values.

use ort::session::Session;
use ort::value::Tensor;

use super::runtime::ModelError;
use crate::base::config::EmbedderKind;
use crate::base::frame::Frame;

/// An embedding model and its session.
pub struct Embedder {
    session: Session,
    /// Which model this is.
    pub kind: EmbedderKind,
}

/// Scales a vector to unit length (a zero vector stays zero).
pub fn l2_normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Embedder {
    /// Wraps a loaded session.
    pub fn new(session: Session, kind: EmbedderKind) -> Self {
        Embedder { session, kind }
    }

    /// The model input for aligned 112x112 crops.
    pub fn preprocess(&self, crops: &[&Frame]) -> (Vec<usize>, Vec<f32>) {
        let n = crops.len();
        match self.kind {
            EmbedderKind::Mobilefacenet => {
                let data = crops
                    .iter()
                    .flat_map(|c| c.data.iter().map(|&v| (v as f32 - 127.5) / 128.0))
                    .collect();
                (vec![n, 112, 112, 3], data)
            }
            EmbedderKind::Sface | EmbedderKind::SfaceInt8 => {
                let mut data = vec![0f32; n * 3 * 112 * 112];
                for (k, c) in crops.iter().enumerate() {
                    let base = k * 3 * 112 * 112;
                    for (i, p) in c.data.chunks_exact(3).enumerate() {
                        for ch in 0..3 {
                            data[base + ch * 112 * 112 + i] = p[ch] as f32;
                        }
                    }
                }
                (vec![n, 3, 112, 112], data)
            }
        }
    }

    /// Runs the model on a prepared input and returns the raw (unnormalised) vectors.
    pub fn infer(
        &mut self,
        shape: Vec<usize>,
        data: Vec<f32>,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let err = |e: ort::Error| ModelError::Inference {
            model: "embedder",
            reason: e.to_string(),
        };
        let dims = self.kind.dims();
        let input = match self.kind {
            EmbedderKind::Mobilefacenet => "input",
            EmbedderKind::Sface | EmbedderKind::SfaceInt8 => "data",
        };
        let n = shape[0];
        let tensor = Tensor::from_array((shape, data)).map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs![input => tensor])
            .map_err(err)?;
        let (_, out) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        if out.len() != n * dims {
            return Err(ModelError::Inference {
                model: "embedder",
                reason: format!("expected {n}x{dims} values, got {}", out.len()),
            });
        }
        Ok(out.chunks_exact(dims).map(|c| c.to_vec()).collect())
    }

    /// L2-normalised embeddings of aligned crops. SFace's graph has a fixed batch of one, so
    /// it is run once per crop.
    pub fn embed(&mut self, crops: &[&Frame]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut out = Vec::with_capacity(crops.len());
        let batches: Vec<&[&Frame]> = match self.kind {
            EmbedderKind::Mobilefacenet => vec![crops],
            EmbedderKind::Sface | EmbedderKind::SfaceInt8 => crops.chunks(1).collect(),
        };
        for batch in batches {
            if batch.is_empty() {
                continue;
            }
            let (shape, data) = self.preprocess(batch);
            for mut v in self.infer(shape, data)? {
                l2_normalise(&mut v);
                out.push(v);
            }
        }
        Ok(out)
    }
}
