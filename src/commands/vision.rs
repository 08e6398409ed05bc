//! `clockface vision ...`: the face pipeline on image files, for integrators and tests.
//!
//! Every command prints one JSON document with `--json`, or a short table otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::context::{ConfigSource, emit};
use crate::base::config::Config;
use crate::base::error::{Error, Result};
use crate::base::frame::Frame;
use crate::vision::detect::Face;
use crate::vision::quality::{self, Guidance};
use crate::vision::{Vision, liveness};

/// `clockface vision …`.
#[derive(Debug, clap::Subcommand)]
pub enum VisionCmd {
    /// Faces in each image: box, score, 5 landmarks.
    Detect {
        /// JPEG or PNG files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Single-frame liveness of the main face in each image: score, live, reason.
    Liveness {
        /// JPEG or PNG files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Similarity of the main faces of two images, and whether they match.
    Compare {
        /// First image.
        image_a: PathBuf,
        /// Second image.
        image_b: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Per-stage medians at 1 and 2 threads, 1:N at 100,000 templates, peak RSS, Python ratio.
    Bench {
        /// Rounds over the photos.
        #[arg(long, default_value_t = 10)]
        frames: usize,
        /// Photos to run on [default: the real test photos fetched by models/fetch.py].
        images: Vec<PathBuf>,
        /// Print the figures as JSON at the end.
        #[arg(long)]
        json: bool,
    },
}

impl VisionCmd {
    /// Runs the vision subcommand; built-in defaults when there is no config file at all.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        let cfg = src.load_or_default()?;
        super::context::init_logging(&cfg.log.level);
        match self {
            VisionCmd::Detect { images, json } => detect(&cfg, &images, json, out).map(drop),
            VisionCmd::Liveness { images, json } => liveness(&cfg, &images, json, out).map(drop),
            VisionCmd::Compare {
                image_a,
                image_b,
                json,
            } => compare(&cfg, &image_a, &image_b, json, out).map(drop),
            VisionCmd::Bench {
                frames,
                images,
                json,
            } => {
                let images = if images.is_empty() {
                    default_photos()?
                } else {
                    images
                };
                let v = super::bench::vision::vision(&cfg.vision, &images, frames, out)?;
                if json {
                    let _ = writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(&v).expect("serialisable")
                    );
                }
                Ok(())
            }
        }
    }
}

fn load(cfg: &Config) -> Result<Vision> {
    Vision::load(&cfg.vision).map_err(|e| Error::Installation(format!("face models: {e}")))
}

/// Faces found in one image.
#[derive(Debug, Serialize)]
pub struct DetectResult {
    /// The image file.
    pub image: PathBuf,
    /// Its size.
    pub width: u32,
    /// Its size.
    pub height: u32,
    /// Faces, best first.
    pub faces: Vec<Face>,
}

/// `clockface vision detect IMAGE...`.
pub fn detect(
    cfg: &Config,
    images: &[PathBuf],
    json: bool,
    out: &mut dyn Write,
) -> Result<Vec<DetectResult>> {
    let mut v = load(cfg)?;
    let mut results = Vec::new();
    for path in images {
        let frame = Frame::open(path)?;
        let faces = v
            .detect(&frame)
            .map_err(|e| Error::invalid("face detection", e.to_string()))?;
        results.push(DetectResult {
            image: path.clone(),
            width: frame.width,
            height: frame.height,
            faces,
        });
    }
    emit(out, json, &results, |out| {
        for r in &results {
            let _ = writeln!(out, "{}: {} face(s)", r.image.display(), r.faces.len());
            for f in &r.faces {
                let [x, y, w, h] = f.bbox;
                let _ = writeln!(
                    out,
                    "  box {x:.0},{y:.0} {w:.0}x{h:.0}  score {:.3}",
                    f.score
                );
            }
        }
    });
    Ok(results)
}

/// Single-image liveness verdict.
#[derive(Debug, Serialize)]
pub struct LivenessResult {
    /// The image file.
    pub image: PathBuf,
    /// Spoof score (lower is more live), when a usable face was found.
    pub score: Option<f32>,
    /// True when the face passes the gates, is sharp enough and scores below the threshold.
    pub live: bool,
    /// Why: "live", the spoof score against the threshold, or the gate that failed.
    pub reason: String,
    /// Edge pixels in the 256x256 crop (the sharpness gate needs 50).
    pub sharp_pixels: Option<usize>,
    /// Threshold used.
    pub threshold: f32,
}

/// Scores one image's face (one frame: the kiosk fuses several, see `quality`).
pub fn liveness_of(
    v: &mut Vision,
    frame: &Frame,
) -> Result<(Option<f32>, bool, String, Option<usize>)> {
    let faces = v
        .detect(frame)
        .map_err(|e| Error::invalid("face detection", e.to_string()))?;
    let (guidance, face) =
        quality::assess(frame, &faces, None, &quality::Gates::for_config(&v.config));
    let Some(face) = face else {
        return Ok((None, false, "no face".into(), None));
    };
    let crop = liveness::crop(frame, face);
    let sharp = liveness::sharp_pixels(&crop);
    let score = v
        .liveness
        .infer(liveness::Liveness::preprocess(&crop))
        .map_err(|e| Error::invalid("liveness", e.to_string()))?;
    let thr = v.config.liveness_threshold;
    let (live, reason) = if guidance != Guidance::Ok {
        (false, format!("gate: {}", guidance.prompt()))
    } else if sharp < liveness::SHARP_MIN_PIXELS {
        (
            false,
            format!(
                "not sharp enough ({sharp} edge pixels, need {})",
                liveness::SHARP_MIN_PIXELS
            ),
        )
    } else if score >= thr {
        (false, format!("spoof score {score:.3} >= {thr}"))
    } else {
        (true, "live".to_string())
    };
    Ok((Some(score), live, reason, Some(sharp)))
}

/// `clockface vision liveness IMAGE...`.
pub fn liveness(
    cfg: &Config,
    images: &[PathBuf],
    json: bool,
    out: &mut dyn Write,
) -> Result<Vec<LivenessResult>> {
    let mut v = load(cfg)?;
    let mut results = Vec::new();
    for path in images {
        let frame = Frame::open(path)?;
        let (score, live, reason, sharp_pixels) = liveness_of(&mut v, &frame)?;
        results.push(LivenessResult {
            image: path.clone(),
            score,
            live,
            reason,
            sharp_pixels,
            threshold: v.config.liveness_threshold,
        });
    }
    emit(out, json, &results, |out| {
        for r in &results {
            let _ = writeln!(
                out,
                "{}: {} ({})",
                r.image.display(),
                if r.live { "live" } else { "not live" },
                r.reason
            );
        }
    });
    Ok(results)
}

/// Result of comparing two images.
#[derive(Debug, Serialize)]
pub struct CompareResult {
    /// Cosine similarity of the two faces' embeddings.
    pub similarity: f32,
    /// Whether it reaches the threshold.
    #[serde(rename = "match")]
    pub is_match: bool,
    /// The 1:1 threshold used.
    pub threshold: f32,
    /// Embedding model used.
    pub embedder: &'static str,
}

/// Embedding of the largest face in an image file.
pub fn embed_file(v: &mut Vision, path: &Path) -> Result<Vec<f32>> {
    let frame = Frame::open(path)?;
    let faces = v
        .detect(&frame)
        .map_err(|e| Error::invalid("face detection", e.to_string()))?;
    let face = faces
        .iter()
        .max_by(|a, b| (a.bbox[2] * a.bbox[3]).total_cmp(&(b.bbox[2] * b.bbox[3])))
        .ok_or_else(|| Error::invalid(path.display().to_string(), "no face found"))?;
    v.embed_face(&frame, face)
        .map_err(|e| Error::invalid("embedding", e.to_string()))
}

/// `clockface vision compare A B`.
pub fn compare(
    cfg: &Config,
    a: &Path,
    b: &Path,
    json: bool,
    out: &mut dyn Write,
) -> Result<CompareResult> {
    let mut v = load(cfg)?;
    let ea = embed_file(&mut v, a)?;
    let eb = embed_file(&mut v, b)?;
    let similarity = crate::vision::embed::cosine(&ea, &eb);
    let threshold = cfg.vision.match_threshold();
    let r = CompareResult {
        similarity,
        is_match: similarity >= threshold,
        threshold,
        embedder: cfg.vision.embedder.name(),
    };
    emit(out, json, &r, |out| {
        let _ = writeln!(
            out,
            "similarity {:.4} ({} at threshold {}, {})",
            r.similarity,
            if r.is_match { "match" } else { "no match" },
            r.threshold,
            r.embedder
        );
    });
    Ok(r)
}

/// The portrait photos fetched by `models/fetch.py` (for benchmarks and the demo).
pub fn default_photos() -> Result<Vec<PathBuf>> {
    let dir = crate::base::config::dev_cache().join("photos");
    let photos: Vec<PathBuf> = [
        "obama.jpg",
        "obama2.jpg",
        "obama3.jpg",
        "biden.jpg",
        "astronaut.png",
    ]
    .iter()
    .map(|f| dir.join(f))
    .filter(|p| p.exists())
    .collect();
    if photos.is_empty() {
        return Err(Error::invalid(
            dir.display().to_string(),
            "no test photos here: run models/fetch.py",
        ));
    }
    Ok(photos)
}
