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
pub mod attack;
pub mod detect;
pub mod embed;
pub mod eval;
pub mod flat;
pub mod fusion;
pub mod liveness;
pub(crate) mod matcher;
pub mod pad;
pub mod quality;
pub(crate) mod runtime;
pub mod spectrum;

use std::time::Instant;

use serde::Serialize;

use crate::base::config::VisionConfig;
use crate::base::frame::Frame;
use detect::{Detector, Face};
use embed::Embedder;
use liveness::{Liveness, LivenessFrame};
use pad::Fasnet;
use quality::{Gates, Guidance};
pub use runtime::ModelError;

/// YuNet with symbolic input size (made by `models/fetch.py`).
pub const DETECTOR_FILE: &str = "face_detection_yunet_2023mar_dynamic.onnx";
/// The converted anti-spoofing model.
pub const LIVENESS_FILE: &str = "face_antispoofing.onnx";
/// The second anti-spoofing model (MiniFASNet-style, from npm).
pub const FASNET_FILE: &str = "fr_liveness.onnx";

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
    /// Liveness: crops, sharpness, the DTN when due, MiniFASNet's crops, the moiré cue.
    pub liveness_ms: f64,
    /// Embedding.
    pub embed_ms: f64,
    /// Liveness and embedding together (less than their sum when they ran side by side).
    pub analysis_ms: f64,
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
    /// Anti-spoofing model (DTN).
    pub liveness: Liveness,
    /// Second anti-spoofing model (MiniFASNet).
    pub fasnet: Fasnet,
    /// The config it was loaded with.
    pub config: VisionConfig,
    /// Frames of the tracked face since the DTN last ran.
    since_dtn: u32,
    /// Frames analysed so far: picks the MiniFASNet crop of each.
    frames_analysed: usize,
}

/// Every liveness cue of one face in one frame: the DTN only when `with_dtn`; MiniFASNet on
/// every jittered crop (`which: None`, for single images) or only on jitter `which` (modulo
/// their number; the kiosk cycles through them frame by frame).
pub fn pad_frame(
    dtn: &mut Liveness,
    fasnet: &mut Fasnet,
    frame: &Frame,
    face: &Face,
    with_dtn: bool,
    dtn_threshold: f32,
    which: Option<usize>,
) -> Result<LivenessFrame, ModelError> {
    let crop = liveness::crop(frame, face);
    let sharp_pixels = liveness::sharp_pixels(&crop);
    let dtn = if with_dtn {
        Some(dtn.infer(Liveness::preprocess(&crop))?)
    } else {
        None
    };
    let mut out = LivenessFrame {
        score: 0.0,
        dtn,
        fasnet: match which {
            None => fasnet.check(frame, face)?,
            Some(k) => {
                let j = pad::FRAME_JITTERS[k % pad::FRAME_JITTERS.len()];
                fasnet.check_crops(frame, face, &[j])?
            }
        },
        moire_db: spectrum::moire_db(frame, face.bbox),
        sharp_pixels,
    };
    out.score = fusion::fuse(out.cues(), dtn_threshold);
    Ok(out)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl Vision {
    /// Loads ONNX Runtime and the four models, checking each file against the lock. With
    /// `parallel`, the liveness models and the embedder get one thread each, since they run
    /// side by side.
    pub fn load(cfg: &VisionConfig) -> Result<Vision, ModelError> {
        let dir = cfg.models_dir();
        let env = runtime::environment(&cfg.onnxruntime())?;
        let lock = runtime::read_lock(&dir)?;
        let threads = cfg.threads as usize;
        let side = if cfg.parallel { 1 } else { threads };
        let open = |file: &str, threads: usize| {
            runtime::session(env, &runtime::check_model(&dir, file, &lock)?, threads)
        };
        let det = open(DETECTOR_FILE, threads)?;
        let emb = open(cfg.embedder.file(), side)?;
        let live = open(LIVENESS_FILE, side)?;
        let fas = open(FASNET_FILE, side)?;
        tracing::info!(
            embedder = cfg.embedder.name(),
            threads,
            parallel = cfg.parallel,
            "vision models loaded"
        );
        Ok(Vision {
            detector: Detector::new(det, cfg.detect_size, cfg.detect_threshold),
            embedder: Embedder::new(emb, cfg.embedder),
            liveness: Liveness::new(live),
            fasnet: Fasnet::new(fas),
            config: cfg.clone(),
            since_dtn: 0,
            frames_analysed: 0,
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
        // The DTN runs on a new track's first frame, then every `dtn_every`th.
        let with_dtn =
            with_liveness && (prev.is_none() || self.since_dtn + 1 >= self.config.dtn_every);
        let dtn_thr = self.config.liveness_threshold;
        self.frames_analysed += 1;
        let crop = self.frames_analysed;
        let parallel = self.config.parallel && with_liveness && with_embedding;
        let Vision {
            liveness: dtn,
            fasnet,
            embedder,
            ..
        } = self;
        let t_all = Instant::now();
        let live_part = |dtn: &mut Liveness, fasnet: &mut Fasnet| {
            let t = Instant::now();
            let r = pad_frame(dtn, fasnet, frame, &face, with_dtn, dtn_thr, Some(crop));
            (r, ms(t))
        };
        let embed_part = |embedder: &mut Embedder| {
            let t = Instant::now();
            let crop = align::align_112(frame, &face.landmarks);
            let align_ms = ms(t);
            let t = Instant::now();
            let r = embedder.embed(&[&crop]).map(|mut v| v.remove(0));
            (r, align_ms, ms(t))
        };
        let (live, emb) = if parallel {
            std::thread::scope(|s| {
                let h = s.spawn(|| embed_part(embedder));
                let l = live_part(dtn, fasnet);
                (Some(l), Some(h.join().expect("embedding thread")))
            })
        } else {
            (
                with_liveness.then(|| live_part(dtn, fasnet)),
                with_embedding.then(|| embed_part(embedder)),
            )
        };
        out.times.analysis_ms = ms(t_all);
        if let Some((r, t)) = live {
            out.times.liveness_ms = t;
            let obs = r?;
            self.since_dtn = if with_dtn { 0 } else { self.since_dtn + 1 };
            if obs.sharp_pixels < liveness::SHARP_MIN_PIXELS {
                guidance = Guidance::HoldStill;
                out.guidance = guidance;
                return Ok(out);
            }
            out.liveness = Some(obs);
        }
        if let Some((r, align_ms, embed_ms)) = emb {
            out.times.align_ms = align_ms;
            out.times.embed_ms = embed_ms;
            out.embedding = Some(r?);
        }
        Ok(out)
    }
}
