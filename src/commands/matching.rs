//! `clockface vision match-report`: FMR and FNMR of each embedder, 1:1 and 1:N, on photos
//! whose identities are known — the figures the default embedder and thresholds rest on.
//!
//! Identities come from a genuine-pairs file (each line `IMAGE_A IMAGE_B`, paths relative to
//! the file): images joined by genuine pairs are one person, and every pair across two people
//! is an impostor pair. Faces are detected and aligned as the kiosk does it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::pad::MatchReport;
use crate::base::config::{Config, EmbedderKind};
use crate::base::error::{Error, Result};
use crate::vision::Vision;
use crate::vision::embed::cosine;
use crate::vision::eval::{Rate, max_gallery};

/// The real test photos fetched by `models/fetch.py`, with who is in each.
pub const KNOWN_PHOTOS: [(&str, &str); 11] = [
    ("obama.jpg", "obama"),
    ("obama2.jpg", "obama"),
    ("obama3.jpg", "obama"),
    ("impostor_1.jpg", "obama"),
    ("biden.jpg", "biden"),
    ("astronaut.png", "collins"),
    ("person_a_1.jpg", "macron"),
    ("person_a_2.jpg", "macron"),
    ("person_b_1.jpg", "ardern"),
    ("person_b_2.jpg", "ardern"),
    ("impostor_2.jpg", "sunak"),
];

/// Writes the genuine-pairs file of the known photos in `dir` (absolute paths).
pub fn write_known_pairs(dir: &Path, to: &Path) -> Result<usize> {
    let mut lines =
        vec!["# genuine pairs of the real test photos (same person, different photos)".to_string()];
    let present: Vec<&(&str, &str)> = KNOWN_PHOTOS
        .iter()
        .filter(|(f, _)| dir.join(f).exists())
        .collect();
    let mut n = 0;
    for (i, (fa, ia)) in present.iter().enumerate() {
        for (fb, ib) in &present[i + 1..] {
            if ia == ib {
                lines.push(format!(
                    "{} {}",
                    dir.join(fa).display(),
                    dir.join(fb).display()
                ));
                n += 1;
            }
        }
    }
    // A person with one photo still takes part as an impostor: list it against itself.
    for (f, id) in &present {
        if present.iter().filter(|(_, j)| j == id).count() == 1 {
            lines.push(format!(
                "{} {}",
                dir.join(f).display(),
                dir.join(f).display()
            ));
        }
    }
    std::fs::write(to, lines.join("\n") + "\n")
        .map_err(|e| Error::invalid(to.display().to_string(), e.to_string()))?;
    Ok(n)
}

/// Images, the identity of each, and the genuine pairs (indices into the images).
pub type PairSet = (Vec<PathBuf>, Vec<usize>, Vec<(usize, usize)>);

/// Genuine similarities, impostor similarities, and each image's (identity, embedding).
pub type Similarities = (Vec<f32>, Vec<f32>, Vec<(usize, Vec<f32>)>);

/// Images and identities (connected components of the genuine pairs), and the genuine pairs.
pub fn read_pairs(path: &Path) -> Result<PairSet> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(path.display().to_string(), format!("cannot read: {e}")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut images: Vec<PathBuf> = Vec::new();
    let index = |p: PathBuf, images: &mut Vec<PathBuf>| {
        images.iter().position(|q| *q == p).unwrap_or_else(|| {
            images.push(p);
            images.len() - 1
        })
    };
    let mut pairs = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() != 2 {
            return Err(Error::invalid(
                format!("{} line {}", path.display(), no + 1),
                "expected two image paths: IMAGE_A IMAGE_B",
            ));
        }
        let a = index(base.join(parts[0]), &mut images);
        let b = index(base.join(parts[1]), &mut images);
        pairs.push((a, b));
    }
    // Union-find over the genuine pairs.
    let mut parent: Vec<usize> = (0..images.len()).collect();
    fn root(p: &mut [usize], i: usize) -> usize {
        if p[i] != i {
            let r = root(p, p[i]);
            p[i] = r;
        }
        p[i]
    }
    for &(a, b) in &pairs {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        parent[ra] = rb;
    }
    let ids = (0..images.len()).map(|i| root(&mut parent, i)).collect();
    pairs.retain(|(a, b)| a != b);
    Ok((images, ids, pairs))
}

/// Genuine and impostor similarities of one embedder over the pairs file.
pub fn similarities(v: &mut Vision, path: &Path) -> Result<Similarities> {
    let (images, ids, pairs) = read_pairs(path)?;
    let mut emb = Vec::new();
    for p in &images {
        emb.push(super::vision::embed_file(v, p)?);
    }
    let genuine = pairs
        .iter()
        .map(|&(a, b)| cosine(&emb[a], &emb[b]))
        .collect();
    let mut impostor = Vec::new();
    for i in 0..images.len() {
        for j in i + 1..images.len() {
            if ids[i] != ids[j] {
                impostor.push(cosine(&emb[i], &emb[j]));
            }
        }
    }
    Ok((genuine, impostor, ids.into_iter().zip(emb).collect()))
}

/// FNMR and FMR at the configured threshold (used by `pad-report --genuine-pairs`).
pub fn pair_report(v: &mut Vision, cfg: &Config, path: &Path) -> Result<MatchReport> {
    let (genuine, impostor, _) = similarities(v, path)?;
    Ok(rates_at(cfg, &genuine, &impostor))
}

/// FNMR and FMR of measured similarities at the configured 1:1 threshold.
fn rates_at(cfg: &Config, genuine: &[f32], impostor: &[f32]) -> MatchReport {
    let t = cfg.vision.match_threshold();
    MatchReport {
        embedder: cfg.vision.embedder.name(),
        threshold: t,
        fnmr: Rate::new(genuine.iter().filter(|&&s| s < t).count(), genuine.len()),
        fmr: Rate::new(impostor.iter().filter(|&&s| s >= t).count(), impostor.len()),
        worst_impostor: impostor.iter().cloned().reduce(f32::max),
        worst_genuine: genuine.iter().cloned().reduce(f32::min),
    }
}

/// One embedder's figures.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedderReport {
    /// Embedder.
    pub embedder: &'static str,
    /// At its default 1:1 threshold.
    pub at_default: MatchReport,
    /// Genuine similarities: min, median, max.
    pub genuine: [f32; 3],
    /// Impostor similarities: min, median, max.
    pub impostor: [f32; 3],
    /// 1:N on a gallery of one photo per person, every other photo a probe: probes whose best
    /// match is the wrong person at the identify threshold (with the margin rule).
    pub false_identifications: Rate,
    /// Probes of enrolled people not identified at the identify threshold with the margin.
    pub missed_identifications: Rate,
    /// Largest gallery keeping FPIR ≤ 1 % if FMR at the identify threshold is its 95 % bound.
    pub max_gallery_fpir_1pct: u64,
}

fn spread(v: &[f32]) -> [f32; 3] {
    let mut v = v.to_vec();
    v.sort_by(f32::total_cmp);
    if v.is_empty() {
        return [0.0; 3];
    }
    [v[0], v[v.len() / 2], v[v.len() - 1]]
}

/// `match-report`: every embedder over the pairs file.
pub fn match_report(
    cfg: &Config,
    pairs: &Path,
    out: &mut dyn Write,
) -> Result<Vec<EmbedderReport>> {
    let mut reports = Vec::new();
    for kind in [
        EmbedderKind::Mobilefacenet,
        EmbedderKind::Sface,
        EmbedderKind::SfaceInt8,
    ] {
        let mut vc = cfg.vision.clone();
        vc.embedder = kind;
        vc.match_threshold = None;
        vc.identify_threshold = None;
        let mut c = cfg.clone();
        c.vision = vc.clone();
        let mut v =
            Vision::load(&vc).map_err(|e| Error::Installation(format!("face models: {e}")))?;
        let (genuine, impostor, emb) = similarities(&mut v, pairs)?;
        let at_default = rates_at(&c, &genuine, &impostor);
        // 1:N: the first photo of each person is the gallery, the rest are probes.
        let mut gallery: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
        let mut probes = Vec::new();
        for (id, e) in emb {
            match gallery.entry(id) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(e);
                }
                std::collections::btree_map::Entry::Occupied(_) => probes.push((id, e)),
            }
        }
        let t = vc.identify_threshold();
        let (mut wrong, mut missed) = (0, 0);
        for (id, e) in &probes {
            let mut scored: Vec<(usize, f32)> =
                gallery.iter().map(|(g, t)| (*g, cosine(e, t))).collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1));
            let second = scored.get(1).map_or(-1.0, |s| s.1);
            let hit = scored
                .first()
                .filter(|s| s.1 >= t && s.1 - second >= vc.identify_margin);
            match hit {
                Some((g, _)) if g != id => wrong += 1,
                Some(_) => {}
                None => missed += 1,
            }
        }
        let fmr_at_identify =
            Rate::new(impostor.iter().filter(|&&s| s >= t).count(), impostor.len());
        let r = EmbedderReport {
            embedder: kind.name(),
            at_default,
            genuine: spread(&genuine),
            impostor: spread(&impostor),
            false_identifications: Rate::new(wrong, probes.len()),
            missed_identifications: Rate::new(missed, probes.len()),
            max_gallery_fpir_1pct: max_gallery(fmr_at_identify.upper95, 0.01),
        };
        let _ = writeln!(
            out,
            "{:<14} genuine {:.3}/{:.3}/{:.3}  impostor {:.3}/{:.3}/{:.3} (min/median/max)\n               at {:.3}: FNMR {}, FMR {}; 1:N at {:.3} margin {:.2}: wrong {}, missed {}",
            r.embedder,
            r.genuine[0],
            r.genuine[1],
            r.genuine[2],
            r.impostor[0],
            r.impostor[1],
            r.impostor[2],
            r.at_default.threshold,
            r.at_default.fnmr.describe(),
            r.at_default.fmr.describe(),
            t,
            vc.identify_margin,
            r.false_identifications.describe(),
            r.missed_identifications.describe()
        );
        reports.push(r);
    }
    Ok(reports)
}
