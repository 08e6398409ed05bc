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
    /// Bona fide frames and labelled synthetic attacks (print, screen, rephoto, lowres) made
    /// from real photos, plus a genuine-pairs file for the known test photos.
    MakeAttacks {
        /// Directory to write into (bona_fide/, print/, screen/, rephoto/, lowres/).
        #[arg(long)]
        out: PathBuf,
        /// Renderings of each kind per photo.
        #[arg(long, default_value_t = 2)]
        per_photo: usize,
        /// Random seed (the same seed gives the same images).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Photos to start from [default: the real test photos fetched by models/fetch.py].
        photos: Vec<PathBuf>,
    },
    /// Presentation-attack detection in ISO/IEC 30107-3 terms: APCER per attack type and
    /// BPCER with 95 % upper bounds, per cue and fused; box jitter; flat-object test.
    PadReport {
        /// Directory of bona fide images.
        #[arg(long)]
        bona_fide: PathBuf,
        /// TYPE=DIR, once per attack type.
        #[arg(long = "attack", value_parser = parse_attack, required = true)]
        attacks: Vec<(String, PathBuf)>,
        /// File of genuine pairs (`IMAGE_A IMAGE_B` a line) for FNMR and FMR.
        #[arg(long)]
        genuine_pairs: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Write the score histograms to this PNG.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// FMR and FNMR of every embedder, 1:1 and 1:N with the margin rule, and the largest
    /// roster face-only identification suits.
    MatchReport {
        /// Genuine pairs file [default: the known test photos].
        #[arg(long)]
        genuine_pairs: Option<PathBuf>,
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
            VisionCmd::MakeAttacks {
                out: dir,
                per_photo,
                seed,
                photos,
            } => {
                let photos =
                    if photos.is_empty() {
                        default_photos()?
                            .into_iter()
                            .chain(super::matching::KNOWN_PHOTOS.iter().map(|(f, _)| {
                                crate::base::config::dev_cache().join("photos").join(f)
                            }))
                            .filter(|p| p.exists())
                            .fold(Vec::new(), |mut v, p| {
                                if !v.contains(&p) {
                                    v.push(p);
                                }
                                v
                            })
                    } else {
                        photos
                    };
                let _ = writeln!(
                    out,
                    "rendering from {} photos into {}",
                    photos.len(),
                    dir.display()
                );
                let n = super::pad::make_attacks(&photos, &dir, per_photo, seed, out)?;
                let photo_dir = crate::base::config::dev_cache().join("photos");
                let pairs =
                    super::matching::write_known_pairs(&photo_dir, &dir.join("genuine-pairs.txt"))?;
                let _ = writeln!(
                    out,
                    "wrote {n} images (attacks labelled synthetic) and {pairs} genuine pairs to {}",
                    dir.display()
                );
                Ok(())
            }
            VisionCmd::PadReport {
                bona_fide,
                attacks,
                genuine_pairs,
                json,
                plot,
            } => {
                let args = super::pad::PadArgs {
                    bona_fide: &bona_fide,
                    attacks: &attacks,
                    genuine_pairs: genuine_pairs.as_deref(),
                    plot: plot.as_deref(),
                };
                let mut progress = std::io::stderr();
                let r = super::pad::pad_report(&cfg, &args, &mut progress)?;
                emit(out, json, &r, |out| super::pad::print_report(&r, out));
                Ok(())
            }
            VisionCmd::MatchReport {
                genuine_pairs,
                json,
            } => {
                let pairs = match genuine_pairs {
                    Some(p) => p,
                    None => {
                        let p = std::env::temp_dir()
                            .join(format!("clockface-pairs-{}.txt", std::process::id()));
                        super::matching::write_known_pairs(
                            &crate::base::config::dev_cache().join("photos"),
                            &p,
                        )?;
                        p
                    }
                };
                let mut text = Vec::new();
                let r = super::matching::match_report(&cfg, &pairs, &mut text)?;
                emit(out, json, &r, |out| {
                    let _ = out.write_all(&text);
                });
                Ok(())
            }
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

/// `TYPE=DIR` of `--attack`.
fn parse_attack(s: &str) -> std::result::Result<(String, PathBuf), String> {
    let (k, d) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected TYPE=DIR, for example print=attacks/print"))?;
    if k.is_empty() || d.is_empty() {
        return Err(format!("{s:?}: both TYPE and DIR are needed"));
    }
    Ok((k.to_string(), PathBuf::from(d)))
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
    /// Fused attack score (0–1, lower is more live), when a usable face was found.
    pub score: Option<f32>,
    /// True when the face passes the gates, is sharp enough and scores below the threshold.
    pub live: bool,
    /// Why: "live", the attack score against the threshold, or the gate that failed.
    pub reason: String,
    /// Edge pixels in the 256x256 crop (the sharpness gate needs 50).
    pub sharp_pixels: Option<usize>,
    /// Fused threshold used (`vision.pad_threshold`).
    pub threshold: f32,
    /// Every cue: the DTN's spoof score, MiniFASNet's attack score, the moiré peak ratio.
    pub cues: Option<crate::vision::liveness::LivenessFrame>,
}

/// Scores one image's face (one frame: the kiosk fuses several, see `quality`).
pub fn liveness_of(v: &mut Vision, frame: &Frame, path: &Path) -> Result<LivenessResult> {
    let faces = v
        .detect(frame)
        .map_err(|e| Error::invalid("face detection", e.to_string()))?;
    let (guidance, face) =
        quality::assess(frame, &faces, None, &quality::Gates::for_config(&v.config));
    let thr = v.config.pad_threshold;
    let mut r = LivenessResult {
        image: path.to_owned(),
        score: None,
        live: false,
        reason: "no face".into(),
        sharp_pixels: None,
        threshold: thr,
        cues: None,
    };
    let Some(face) = face else { return Ok(r) };
    let dtn_thr = v.config.liveness_threshold;
    let cues = crate::vision::pad_frame(
        &mut v.liveness,
        &mut v.fasnet,
        frame,
        face,
        true,
        dtn_thr,
        None,
    )
    .map_err(|e| Error::invalid("liveness", e.to_string()))?;
    let (score, sharp) = (cues.score, cues.sharp_pixels);
    (r.live, r.reason) = if guidance != Guidance::Ok {
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
        (false, format!("attack score {score:.3} >= {thr}"))
    } else {
        (true, "live".to_string())
    };
    r.score = Some(score);
    r.sharp_pixels = Some(sharp);
    r.cues = Some(cues);
    Ok(r)
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
        results.push(liveness_of(&mut v, &frame, path)?);
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
