//! On-device vision: detect → quality gates → align → liveness → embed → match.
//!
//! Every face decision happens here, on the kiosk, with ONNX models run by ONNX Runtime through
//! `ort`. The module owns model loading (`runtime`), the models' pre- and post-processing
//! ([`detect`], [`align`], [`embed`], [`liveness`]), per-frame gates and the fused liveness
//! decision ([`quality`]), and template matching (`matcher`). It must not touch the store,
//! the camera or the UI: it takes frames and returns observations.
//!
//! If a model is missing, fails its checksum or fails to load, [`Vision::load`] says which file
//! and why, and the kiosk runs in badge + PIN mode ([`FaceAvailability::Unavailable`]).

pub mod align;
pub mod detect;
pub mod embed;
pub mod liveness;
pub(crate) mod matcher;
pub mod quality;
pub(crate) mod runtime;

use std::time::Instant;

use serde::Serialize;

use crate::base::config::VisionConfig;
use crate::base::frame::Frame;
use detect::{Detector, Face};
use embed::Embedder;
use liveness::{Liveness, LivenessFrame};
use quality::{Gates, Guidance};
pub use runtime::ModelError;

/// YuNet with symbolic input size (made by `models/fetch.py`).
pub const DETECTOR_FILE: &str = "face_detection_yunet_2023mar_dynamic.onnx";
/// The converted anti-spoofing model.
pub const LIVENESS_FILE: &str = "face_antispoofing.onnx";

/// Whether face check-in can be offered, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FaceAvailability {
    /// Models loaded; face check-in works.
    Ready,
    /// Face check-in is off; badge + PIN still works.
    Unavailable {
        /// Which file failed and why, for the admin screen and the log.
        reason: String,
    },
}

/// Milliseconds spent per stage on one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimes {
    /// Detection, including pre/post-processing.
    pub detect_ms: f64,
    /// Alignment warp.
    pub align_ms: f64,
    /// Liveness crop, sharpness and model.
    pub liveness_ms: f64,
    /// Embedding.
    pub embed_ms: f64,
}

/// Everything learnt from one frame.
#[derive(Debug, Clone, Serialize)]
pub struct FrameAnalysis {
    /// All faces found, best first.
    pub faces: Vec<Face>,
    /// Guidance from the gates for the chosen face.
    pub guidance: Guidance,
    /// The face the gates chose (largest).
    pub face: Option<Face>,
    /// Liveness of that face (when the gates passed and it was asked for).
    pub liveness: Option<LivenessFrame>,
    /// Its embedding (when the gates passed and it was asked for).
    #[serde(skip)]
    pub embedding: Option<Vec<f32>>,
    /// Time per stage.
    pub times: StageTimes,
}

/// The loaded models.
pub struct Vision {
    /// Face detector.
    pub detector: Detector,
    /// Embedding model.
    pub embedder: Embedder,
    /// Anti-spoofing model.
    pub liveness: Liveness,
    /// The config it was loaded with.
    pub config: VisionConfig,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl Vision {
    /// Loads ONNX Runtime and the three models, checking each file against the lock.
    pub fn load(cfg: &VisionConfig) -> Result<Vision, ModelError> {
        let dir = cfg.models_dir();
        let env = runtime::environment(&cfg.onnxruntime())?;
        let lock = runtime::read_lock(&dir)?;
        let threads = cfg.threads as usize;
        let det = runtime::session(
            env,
            &runtime::check_model(&dir, DETECTOR_FILE, &lock)?,
            threads,
        )?;
        let emb = runtime::session(
            env,
            &runtime::check_model(&dir, cfg.embedder.file(), &lock)?,
            threads,
        )?;
        let live = runtime::session(
            env,
            &runtime::check_model(&dir, LIVENESS_FILE, &lock)?,
            threads,
        )?;
        tracing::info!(
            embedder = cfg.embedder.name(),
            threads,
            "vision models loaded"
        );
        Ok(Vision {
            detector: Detector::new(det, cfg.detect_size, cfg.detect_threshold),
            embedder: Embedder::new(emb, cfg.embedder),
            liveness: Liveness::new(live),
            config: cfg.clone(),
        })
    }

    /// Loads the models or reports why face check-in is unavailable.
    pub fn load_or_explain(cfg: &VisionConfig) -> (Option<Vision>, FaceAvailability) {
        match Vision::load(cfg) {
            Ok(v) => (Some(v), FaceAvailability::Ready),
            Err(e) => {
                tracing::warn!(error = %e, "face check-in unavailable; badge + PIN only");
                (
                    None,
                    FaceAvailability::Unavailable {
                        reason: e.to_string(),
                    },
                )
            }
        }
    }

    /// Detects faces.
    pub fn detect(&mut self, frame: &Frame) -> Result<Vec<Face>, ModelError> {
        self.detector.detect(frame)
    }

    /// Embedding of one face.
    pub fn embed_face(&mut self, frame: &Frame, face: &Face) -> Result<Vec<f32>, ModelError> {
        let crop = align::align_112(frame, &face.landmarks);
        Ok(self.embedder.embed(&[&crop])?.remove(0))
    }

    /// One frame through the whole pipeline: detect, gates, then (if the gates pass) sharpness,
    /// liveness, alignment and embedding of the chosen face.
    pub fn analyse(
        &mut self,
        frame: &Frame,
        prev: Option<&Face>,
        with_liveness: bool,
        with_embedding: bool,
    ) -> Result<FrameAnalysis, ModelError> {
        let mut times = StageTimes::default();
        let t = Instant::now();
        let faces = self.detector.detect(frame)?;
        times.detect_ms = ms(t);
        let (mut guidance, chosen) =
            quality::assess(frame, &faces, prev, &Gates::for_config(&self.config));
        let face = chosen.cloned();
        let mut out = FrameAnalysis {
            faces: faces.clone(),
            guidance,
            face: face.clone(),
            liveness: None,
            embedding: None,
            times,
        };
        let Some(face) = face else { return Ok(out) };
        if guidance != Guidance::Ok {
            return Ok(out);
        }
        if with_liveness {
            let t = Instant::now();
            let crop = liveness::crop(frame, &face);
            let sharp = liveness::sharp_pixels(&crop);
            if sharp < liveness::SHARP_MIN_PIXELS {
                guidance = Guidance::HoldStill;
                out.guidance = guidance;
                out.times.liveness_ms = ms(t);
                return Ok(out);
            }
            let score = self.liveness.infer(Liveness::preprocess(&crop))?;
            out.liveness = Some(LivenessFrame {
                score,
                sharp_pixels: sharp,
            });
            out.times.liveness_ms = ms(t);
        }
        if with_embedding {
            let t = Instant::now();
            let crop = align::align_112(frame, &face.landmarks);
            out.times.align_ms = ms(t);
            let t = Instant::now();
            out.embedding = Some(self.embedder.embed(&[&crop])?.remove(0));
            out.times.embed_ms = ms(t);
        }
        Ok(out)
    }
}
