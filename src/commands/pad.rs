//! `clockface vision make-attacks` and `clockface vision pad-report`: presentation-attack
//! detection measured in ISO/IEC 30107-3 terms, on attacks a site captured or on labelled
//! synthetic ones.
//!
//! The report scores every image with every cue and prints, at each method's operating
//! threshold, APCER per attack type and BPCER with counts and 95 % upper bounds — the DTN
//! alone, MiniFASNet alone, the moiré cue alone and the fused decision side by side — plus how
//! the decision holds under ±5 % box jitter, the flat-object test on tilted attacks, and FNMR
//! and FMR when genuine pairs are given.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::base::config::Config;
use crate::base::error::{Error, Result};
use crate::base::frame::Frame;
use crate::vision::attack::{self, AttackKind};
use crate::vision::detect::Face;
use crate::vision::eval::Rate;
use crate::vision::liveness::LivenessFrame;
use crate::vision::{Vision, flat, fusion, pad, pad_frame};

/// Name of the label file that marks a directory's images as synthetic.
pub const SYNTHETIC_LABEL: &str = "SYNTHETIC";

/// Image files of a directory, sorted.
pub fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::invalid(dir.display().to_string(), format!("cannot read: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(Error::invalid(
            dir.display().to_string(),
            "no JPEG or PNG images in this directory",
        ));
    }
    Ok(v)
}

/// `make-attacks`: bona fide frames and synthetic attacks of each kind from real photos.
pub fn make_attacks(
    photos: &[PathBuf],
    out_dir: &Path,
    per_photo: usize,
    seed: u64,
    out: &mut dyn Write,
) -> Result<usize> {
    let mut written = 0;
    let io = |p: &Path, e: std::io::Error| Error::invalid(p.display().to_string(), e.to_string());
    let bona = out_dir.join("bona_fide");
    std::fs::create_dir_all(&bona).map_err(|e| io(&bona, e))?;
    for kind in AttackKind::ALL {
        let d = out_dir.join(kind.name());
        std::fs::create_dir_all(&d).map_err(|e| io(&d, e))?;
        let label = d.join(SYNTHETIC_LABEL);
        std::fs::write(
            &label,
            format!(
                "Synthetic {} attacks rendered by `clockface vision make-attacks` (seed {seed}) \
                 from real portraits. Not captured attacks: report them as synthetic.\n",
                kind.name()
            ),
        )
        .map_err(|e| io(&label, e))?;
    }
    for (i, path) in photos.iter().enumerate() {
        let src = Frame::open(path)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("photo");
        for k in 0..per_photo {
            let s = seed
                .wrapping_mul(1_000_003)
                .wrapping_add((i * 100 + k) as u64);
            let f = attack::bona_fide(&src, s);
            let p = bona.join(format!("{stem}-{k}.png"));
            f.to_image()
                .save(&p)
                .map_err(|e| Error::invalid(p.display().to_string(), e.to_string()))?;
            written += 1;
            for kind in AttackKind::ALL {
                let f = attack::generate(&src, kind, s);
                let p = out_dir.join(kind.name()).join(format!("{stem}-{k}.png"));
                f.to_image()
                    .save(&p)
                    .map_err(|e| Error::invalid(p.display().to_string(), e.to_string()))?;
                written += 1;
            }
        }
        let _ = writeln!(out, "  {}/{} {stem}", i + 1, photos.len());
    }
    Ok(written)
}

/// Every cue of one image's main face.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    /// The image.
    pub image: PathBuf,
    /// The cues and their fusion; None when no face was found.
    pub cues: Option<LivenessFrame>,
    /// The face found.
    #[serde(skip)]
    pub face: Option<Face>,
}

/// The largest face of a frame.
fn main_face(v: &mut Vision, f: &Frame) -> Result<Option<Face>> {
    let faces = v
        .detect(f)
        .map_err(|e| Error::invalid("face detection", e.to_string()))?;
    Ok(faces
        .into_iter()
        .max_by(|a, b| (a.bbox[2] * a.bbox[3]).total_cmp(&(b.bbox[2] * b.bbox[3]))))
}

fn score_face(v: &mut Vision, f: &Frame, face: &Face) -> Result<LivenessFrame> {
    let thr = v.config.liveness_threshold;
    pad_frame(&mut v.liveness, &mut v.fasnet, f, face, true, thr, None)
        .map_err(|e| Error::invalid("liveness", e.to_string()))
}

fn score_all(v: &mut Vision, images: &[PathBuf]) -> Result<Vec<Scored>> {
    let mut out = Vec::new();
    for p in images {
        let f = Frame::open(p)?;
        let face = main_face(v, &f)?;
        let cues = match &face {
            Some(face) => Some(score_face(v, &f, face)?),
            None => None,
        };
        out.push(Scored {
            image: p.clone(),
            cues,
            face,
        });
    }
    Ok(out)
}

/// A decision rule: a name, its threshold, and the attack score it reads (0–1 scale, given
/// the DTN's threshold). The report and its histograms read the same table.
pub(crate) struct Method {
    pub name: &'static str,
    pub threshold: f32,
    pub score: fn(&LivenessFrame, f32) -> f32,
}

/// The methods reported side by side: each cue alone, then the fused score.
pub(crate) fn methods(cfg: &Config) -> Vec<Method> {
    vec![
        Method {
            name: "dtn",
            threshold: 0.5,
            score: |c, t| c.dtn.map_or(1.0, |d| fusion::dtn_attack(d, t)),
        },
        Method {
            name: "fasnet",
            threshold: 0.5,
            score: |c, _| c.fasnet,
        },
        Method {
            name: "moire",
            threshold: 0.5,
            score: |c, _| fusion::moire_attack(c.moire_db),
        },
        Method {
            name: "fused",
            threshold: cfg.vision.pad_threshold,
            score: |c, _| c.score,
        },
    ]
}

/// One method's error rates.
#[derive(Debug, Clone, Serialize)]
pub struct MethodReport {
    /// dtn, fasnet, moire or fused.
    pub method: &'static str,
    /// Operating threshold on the 0–1 attack scale.
    pub threshold: f32,
    /// Bona fide presentations classified as attacks (no face counts as an error).
    pub bpcer: Rate,
    /// Attacks classified as bona fide, per attack type (no face counts as rejected).
    pub apcer: BTreeMap<String, Rate>,
}

/// Live crops out of the jittered crops of one bona fide image.
#[derive(Debug, Clone, Serialize)]
pub struct JitterReport {
    /// The image.
    pub image: PathBuf,
    /// Crops tried.
    pub crops: usize,
    /// Crops the DTN alone calls live.
    pub dtn_live: usize,
    /// Crops the fused score calls live.
    pub fused_live: usize,
}

/// The flat-object test on tilted views of each image.
#[derive(Debug, Clone, Serialize)]
pub struct FlatReport {
    /// Sets of tilted views tried, per presentation type.
    pub sets: BTreeMap<String, usize>,
    /// Of those, how many the test called planar.
    pub planar: BTreeMap<String, usize>,
    /// The deciding parallax of each set.
    pub parallax: BTreeMap<String, Vec<flat::Parallax>>,
}

/// Similarity errors on genuine pairs and the impostor pairs they imply.
#[derive(Debug, Clone, Serialize)]
pub struct MatchReport {
    /// Embedder used.
    pub embedder: &'static str,
    /// 1:1 threshold.
    pub threshold: f32,
    /// Genuine pairs below the threshold.
    pub fnmr: Rate,
    /// Impostor pairs at or above it.
    pub fmr: Rate,
    /// Highest impostor similarity.
    pub worst_impostor: Option<f32>,
    /// Lowest genuine similarity.
    pub worst_genuine: Option<f32>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct PadReport {
    /// Attack types whose directory carries the SYNTHETIC label.
    pub synthetic: Vec<String>,
    /// Bona fide images and how many had no face.
    pub bona_fide: usize,
    /// Attack images per type.
    pub attacks: BTreeMap<String, usize>,
    /// Per method error rates.
    pub methods: Vec<MethodReport>,
    /// Box jitter on the bona fide images.
    pub jitter: Vec<JitterReport>,
    /// Flat-object test.
    pub flat: FlatReport,
    /// Matching errors, with `--genuine-pairs`.
    pub matching: Option<MatchReport>,
    /// Every score, for plots and thresholds.
    pub scores: BTreeMap<String, Vec<Scored>>,
}

fn jitter_report(
    v: &mut Vision,
    s: &Scored,
    crops: usize,
    seed: u64,
) -> Result<Option<JitterReport>> {
    let Some(face) = &s.face else { return Ok(None) };
    let f = Frame::open(&s.image)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let thr = v.config.liveness_threshold;
    let (mut dtn_live, mut fused_live) = (0, 0);
    for _ in 0..crops {
        let j = pad::jitter(
            face.bbox,
            rng.gen_range(-0.05..0.05),
            rng.gen_range(-0.05..0.05),
            rng.gen_range(-0.05..0.05),
        );
        let moved = Face {
            bbox: j,
            ..face.clone()
        };
        let c = score_face(v, &f, &moved)?;
        dtn_live += usize::from(c.dtn.is_some_and(|d| d < thr));
        fused_live += usize::from(c.score < v.config.pad_threshold);
    }
    Ok(Some(JitterReport {
        image: s.image.clone(),
        crops,
        dtn_live,
        fused_live,
    }))
}

/// Views of an image — tilted for an artefact, shifted for a person standing still — with the
/// landmarks found in each: planar or not, and the parallax that decided.
fn flat_test(
    v: &mut Vision,
    image: &Path,
    artefact: bool,
    seed: u64,
) -> Result<Option<(flat::Flatness, Option<flat::Parallax>)>> {
    let f = Frame::open(image)?;
    let views = if artefact {
        attack::tilted(&f, 4, seed)
    } else {
        attack::shifted(&f, 4, seed)
    };
    let mut marks = Vec::new();
    for view in views {
        if let Some(face) = main_face(v, &view)? {
            marks.push(face.landmarks);
        }
    }
    Ok((marks.len() >= 2).then(|| flat::flatness(&marks)))
}

/// Options of `pad-report`.
pub struct PadArgs<'a> {
    /// Bona fide directory.
    pub bona_fide: &'a Path,
    /// Attack type → directory.
    pub attacks: &'a [(String, PathBuf)],
    /// Genuine pairs file.
    pub genuine_pairs: Option<&'a Path>,
    /// Histogram PNG.
    pub plot: Option<&'a Path>,
}

/// `pad-report`: scores everything and computes the rates.
pub fn pad_report(cfg: &Config, args: &PadArgs, out: &mut dyn Write) -> Result<PadReport> {
    let mut v =
        Vision::load(&cfg.vision).map_err(|e| Error::Installation(format!("face models: {e}")))?;
    let mut scores = BTreeMap::new();
    let bona = images_in(args.bona_fide)?;
    let _ = writeln!(out, "scoring {} bona fide images", bona.len());
    scores.insert("bona_fide".to_string(), score_all(&mut v, &bona)?);
    let mut synthetic = Vec::new();
    let mut attacks = BTreeMap::new();
    for (kind, dir) in args.attacks {
        let imgs = images_in(dir)?;
        let _ = writeln!(out, "scoring {} {kind} attack images", imgs.len());
        if dir.join(SYNTHETIC_LABEL).exists() {
            synthetic.push(kind.clone());
        }
        attacks.insert(kind.clone(), imgs.len());
        scores.insert(kind.clone(), score_all(&mut v, &imgs)?);
    }
    let thr = cfg.vision.liveness_threshold;
    let mut reports = Vec::new();
    for m in methods(cfg) {
        let says_attack = |s: &Scored| {
            s.cues
                .as_ref()
                .is_none_or(|c| (m.score)(c, thr) >= m.threshold)
        };
        let b = &scores["bona_fide"];
        let bpcer = Rate::new(b.iter().filter(|s| says_attack(s)).count(), b.len());
        let apcer = args
            .attacks
            .iter()
            .map(|(k, _)| {
                let a = &scores[k];
                (
                    k.clone(),
                    Rate::new(a.iter().filter(|s| !says_attack(s)).count(), a.len()),
                )
            })
            .collect();
        reports.push(MethodReport {
            method: m.name,
            threshold: m.threshold,
            bpcer,
            apcer,
        });
    }
    // Jitter on the first rendering of each real photo (names ending in -0).
    let _ = writeln!(out, "box jitter: 20 crops of each bona fide photo");
    let mut jitter = Vec::new();
    let firsts: Vec<Scored> = scores["bona_fide"]
        .iter()
        .filter(|s| {
            s.image
                .file_stem()
                .and_then(|f| f.to_str())
                .is_none_or(|f| !f.contains('-') || f.ends_with("-0"))
        })
        .cloned()
        .collect();
    for (i, s) in firsts.iter().enumerate() {
        if let Some(j) = jitter_report(&mut v, s, 20, i as u64)? {
            jitter.push(j);
        }
    }
    let _ = writeln!(out, "flat-object test: 4 tilted views of each image");
    let mut flat_rep = FlatReport {
        sets: BTreeMap::new(),
        planar: BTreeMap::new(),
        parallax: BTreeMap::new(),
    };
    for (kind, list) in &scores {
        let picked: Vec<&Scored> = list.iter().filter(|s| s.face.is_some()).take(12).collect();
        for (i, s) in picked.iter().enumerate() {
            if let Some((verdict, p)) = flat_test(&mut v, &s.image, kind != "bona_fide", i as u64)?
            {
                *flat_rep.sets.entry(kind.clone()).or_default() += 1;
                *flat_rep.planar.entry(kind.clone()).or_default() +=
                    usize::from(verdict == flat::Flatness::Planar);
                if let Some(p) = p {
                    flat_rep.parallax.entry(kind.clone()).or_default().push(p);
                }
            }
        }
    }
    let matching = match args.genuine_pairs {
        Some(p) => Some(super::matching::pair_report(&mut v, cfg, p)?),
        None => None,
    };
    let report = PadReport {
        synthetic,
        bona_fide: bona.len(),
        attacks,
        methods: reports,
        jitter,
        flat: flat_rep,
        matching,
        scores,
    };
    if let Some(png) = args.plot {
        super::pad_plot::histograms(&report, cfg, png)?;
    }
    Ok(report)
}

/// The report as a table.
pub fn print_report(r: &PadReport, out: &mut dyn Write) {
    let kinds: Vec<&String> = r.attacks.keys().collect();
    let _ = writeln!(
        out,
        "\nPAD report: {} bona fide; attacks {}",
        r.bona_fide,
        kinds
            .iter()
            .map(|k| format!(
                "{k} {}{}",
                r.attacks[*k],
                if r.synthetic.contains(k) {
                    " (synthetic)"
                } else {
                    ""
                }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for m in &r.methods {
        let _ = writeln!(out, "\n{} (threshold {:.2})", m.method, m.threshold);
        let _ = writeln!(out, "  BPCER            {}", m.bpcer.describe());
        for (k, a) in &m.apcer {
            let label = if r.synthetic.contains(k) {
                " (synthetic)"
            } else {
                ""
            };
            let _ = writeln!(out, "  APCER {k:<10} {}{label}", a.describe());
        }
    }
    let crops: usize = r.jitter.iter().map(|j| j.crops).sum();
    let _ = writeln!(
        out,
        "\nbox jitter ±5 %: DTN alone live in {}/{crops} crops, fused in {}/{crops}; worst photo fused {}/20",
        r.jitter.iter().map(|j| j.dtn_live).sum::<usize>(),
        r.jitter.iter().map(|j| j.fused_live).sum::<usize>(),
        r.jitter.iter().map(|j| j.fused_live).min().unwrap_or(0)
    );
    for (k, n) in &r.flat.sets {
        let _ = writeln!(
            out,
            "flat-object test, {} {k}: planar in {}/{n}",
            if k == "bona_fide" {
                "shifted (still person)"
            } else {
                "tilted"
            },
            r.flat.planar.get(k).copied().unwrap_or(0)
        );
    }
    if let Some(m) = &r.matching {
        let _ = writeln!(
            out,
            "\nmatching ({}, threshold {:.3}): FNMR {}, FMR {}",
            m.embedder,
            m.threshold,
            m.fnmr.describe(),
            m.fmr.describe()
        );
    }
}
