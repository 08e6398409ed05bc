//! `[vision]`: which models, where they are, and the thresholds the kiosk decides with. Plain
//! config; loading and running the models is the `vision` module's.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which embedding model to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderKind {
    /// MobileFaceNet, 192 dimensions, ~5 MB, fast.
    Mobilefacenet,
    /// SFace, 128 dimensions, ~39 MB, slower.
    Sface,
    /// SFace block-quantised to int8 by OpenCV Zoo, ~11 MB, run at fp32 speed.
    #[serde(rename = "sface_int8")]
    #[value(name = "sface_int8")]
    SfaceInt8,
}

impl EmbedderKind {
    /// Model file name in the models directory.
    pub fn file(self) -> &'static str {
        match self {
            EmbedderKind::Mobilefacenet => "mobilefacenet.onnx",
            EmbedderKind::Sface => "face_recognition_sface_2021dec.onnx",
            EmbedderKind::SfaceInt8 => "face_recognition_sface_2021dec_int8.onnx",
        }
    }

    /// Name stored with templates, so templates of different models are never compared.
    pub fn name(self) -> &'static str {
        match self {
            EmbedderKind::Mobilefacenet => "mobilefacenet",
            EmbedderKind::Sface => "sface",
            EmbedderKind::SfaceInt8 => "sface_int8",
        }
    }

    /// Embedding length.
    pub fn dims(self) -> usize {
        match self {
            EmbedderKind::Mobilefacenet => 192,
            EmbedderKind::Sface | EmbedderKind::SfaceInt8 => 128,
        }
    }

    /// Largest roster face-only identification suits: FPIR stays ≤ 1 % while
    /// 1 − (1 − FMR)^N ≤ 0.01. From 16,163 impostor pairs of 187 wild faces aligned as the
    /// kiosk aligns: SFace leaves no impostor at its identify threshold, so FMR ≤ 3/16,163 and
    /// N ≤ 53; MobileFaceNet falsely matches 1.2 × 10⁻³ at 0.5, so N ≤ 8.
    pub fn face_only_max_roster(self) -> u64 {
        match self {
            EmbedderKind::Mobilefacenet => 8,
            EmbedderKind::Sface | EmbedderKind::SfaceInt8 => 53,
        }
    }

    /// Default 1:1 cosine threshold. SFace: 0.5, above the worst of 16,163 impostor pairs of
    /// wild faces (0.47; FMR ≤ 3/16,163) and below every genuine pair seen (≥ 0.60 here, ≥ 0.66
    /// there) — OpenCV's published 0.363 lets far more strangers through. MobileFaceNet: 0.5,
    /// where it falsely matches 1.2 × 10⁻³ of those pairs (its worst impostor scores 0.652).
    pub fn default_threshold(self) -> f32 {
        match self {
            EmbedderKind::Mobilefacenet => 0.5,
            EmbedderKind::Sface | EmbedderKind::SfaceInt8 => 0.5,
        }
    }
}

/// The fused attack-score threshold chosen on the synthetic attack sets (see the README's
/// PAD table).
pub const DEFAULT_PAD_THRESHOLD: f32 = 0.35;

/// `[vision]` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VisionConfig {
    /// Directory with the ONNX models and `models.lock.json`. Default: `/usr/share/clockface/models`
    /// if present, else the developer cache of `models/fetch.py` (`~/.cache/clockface/models`).
    pub models_dir: Option<PathBuf>,
    /// Path of `libonnxruntime.so.1.32.0`. Default: `ORT_DYLIB_PATH`, then
    /// `/usr/lib/clockface/`, then the developer cache.
    pub onnxruntime: Option<PathBuf>,
    /// Embedding model: "sface_int8" (default), "sface" or "mobilefacenet" (fast, but with
    /// ~10x the false matches).
    pub embedder: EmbedderKind,
    /// Threads each model may use. 1–8. Default 2.
    pub threads: u32,
    /// Longest side of the detector input in pixels: a multiple of 32 from 128 to 640. Smaller
    /// is faster but misses small faces. Default 320.
    pub detect_size: u32,
    /// Minimum detection score, 0–1. Default 0.8.
    pub detect_threshold: f32,
    /// 1:1 cosine similarity needed to accept a badge holder's face, 0–1. Default: the
    /// embedder's (0.5 for both; see `EmbedderKind::default_threshold`).
    pub match_threshold: Option<f32>,
    /// 1:N similarity needed to identify someone by face alone, 0–1. Default: the 1:1
    /// threshold + 0.1, since a wrong 1:N match has no badge to back it.
    pub identify_threshold: Option<f32>,
    /// The DTN's spoof score at which that model alone says "spoof". Default 0.2 (the
    /// model's own cut-off); it puts the DTN on the fused scale (see `pad_threshold`).
    pub liveness_threshold: f32,
    /// Fused attack score (DTN, MiniFASNet, moiré; 0–1) at or above which an attempt is
    /// refused as a presentation attack. Default chosen on the labelled synthetic attack sets
    /// (`clockface vision pad-report`).
    pub pad_threshold: f32,
    /// The DTN (≈90 ms a call) runs on the first frame of a tracked face and then every
    /// `dtn_every`th frame; MiniFASNet and the moiré cue run on every frame. 1–10. Default 3.
    pub dtn_every: u32,
    /// Face-only identification: the best match must beat the second-best person by this
    /// much cosine similarity, 0–1. Default 0.08.
    pub identify_margin: f32,
    /// Run one frame's liveness and embedding side by side on two threads. Default true.
    pub parallel: bool,
    /// Analyse the face in front of the idle kiosk before the tap (the last second, in memory
    /// only), so the verdict follows the tap at once. Default true.
    pub preroll: bool,
    /// Good frames the liveness decision needs. 1–10. Default 3.
    pub liveness_frames: u32,
    /// Smallest face side, in camera pixels, accepted as "close enough". Default 80.
    pub min_face_px: u32,
}

impl Default for VisionConfig {
    fn default() -> Self {
        VisionConfig {
            models_dir: None,
            onnxruntime: None,
            embedder: EmbedderKind::SfaceInt8,
            threads: 2,
            detect_size: 320,
            detect_threshold: 0.8,
            match_threshold: None,
            identify_threshold: None,
            liveness_threshold: 0.2,
            pad_threshold: DEFAULT_PAD_THRESHOLD,
            dtn_every: 3,
            identify_margin: 0.08,
            parallel: true,
            preroll: true,
            liveness_frames: 3,
            min_face_px: 80,
        }
    }
}

impl VisionConfig {
    /// Models directory after defaults.
    pub fn models_dir(&self) -> PathBuf {
        self.models_dir.clone().unwrap_or_else(default_models_dir)
    }

    /// ONNX Runtime library path after defaults.
    pub fn onnxruntime(&self) -> PathBuf {
        self.onnxruntime.clone().unwrap_or_else(default_onnxruntime)
    }

    /// 1:1 threshold after defaults.
    pub fn match_threshold(&self) -> f32 {
        self.match_threshold
            .unwrap_or(self.embedder.default_threshold())
    }

    /// 1:N threshold after defaults.
    pub fn identify_threshold(&self) -> f32 {
        self.identify_threshold
            .unwrap_or(self.match_threshold() + 0.1)
    }

    /// Problems as (key, message) pairs, for the config checker.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !(1..=8).contains(&self.threads) {
            out.push((
                "vision.threads",
                format!("{} is out of range; allowed: 1 to 8", self.threads),
            ));
        }
        if !(128..=640).contains(&self.detect_size) || !self.detect_size.is_multiple_of(32) {
            out.push((
                "vision.detect_size",
                format!(
                    "{} is not allowed; allowed: a multiple of 32 from 128 to 640",
                    self.detect_size
                ),
            ));
        }
        for (key, v) in [
            ("vision.detect_threshold", Some(self.detect_threshold)),
            ("vision.match_threshold", self.match_threshold),
            ("vision.identify_threshold", self.identify_threshold),
            ("vision.liveness_threshold", Some(self.liveness_threshold)),
            ("vision.pad_threshold", Some(self.pad_threshold)),
            ("vision.identify_margin", Some(self.identify_margin)),
        ] {
            if let Some(v) = v
                && !(0.0..=1.0).contains(&v)
            {
                out.push((key, format!("{v} is out of range; allowed: 0 to 1")));
            }
        }
        if !(1..=10).contains(&self.dtn_every) {
            out.push((
                "vision.dtn_every",
                format!("{} is out of range; allowed: 1 to 10", self.dtn_every),
            ));
        }
        if !(1..=10).contains(&self.liveness_frames) {
            out.push((
                "vision.liveness_frames",
                format!("{} is out of range; allowed: 1 to 10", self.liveness_frames),
            ));
        }
        if !(20..=1000).contains(&self.min_face_px) {
            out.push((
                "vision.min_face_px",
                format!("{} is out of range; allowed: 20 to 1000", self.min_face_px),
            ));
        }
        out
    }
}

/// Where the developer cache of `models/fetch.py` lives (`$CLOCKFACE_CACHE`, else
/// `~/.cache/clockface`).
pub fn dev_cache() -> PathBuf {
    if let Some(c) = std::env::var_os("CLOCKFACE_CACHE") {
        return PathBuf::from(c);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/clockface")
}

/// Machine architecture name used in the cache layout (`x86_64`, `aarch64`).
pub fn arch() -> &'static str {
    std::env::consts::ARCH
}

/// Default search for the models directory: the appliance location, then the developer cache.
pub fn default_models_dir() -> PathBuf {
    let installed = PathBuf::from("/usr/share/clockface/models");
    if installed.join("models.lock.json").exists() {
        return installed;
    }
    dev_cache().join("models")
}

/// Default search for the ONNX Runtime library: `ORT_DYLIB_PATH`, the appliance location, then
/// the developer cache.
pub fn default_onnxruntime() -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return PathBuf::from(p);
    }
    let installed = PathBuf::from("/usr/lib/clockface/libonnxruntime.so.1.32.0");
    if installed.exists() {
        return installed;
    }
    dev_cache()
        .join("onnxruntime")
        .join(arch())
        .join("libonnxruntime.so.1.32.0")
}
