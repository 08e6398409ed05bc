//! `clockface vision bench`: the face pipeline stage by stage, and against the Python
//! reference in the same run.

use std::io::Write;
use std::time::Instant;

use crate::base::error::{Error, Result};

use super::measure::{median_p95, peak_rss_mib};

/// Per-stage figures of one thread setting.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VisionRun {
    /// Intra-op threads per model.
    pub threads: u32,
    /// Frames measured.
    pub frames: usize,
    /// Median ms: detection (pre-processing, model, decoding, NMS).
    pub detect_ms: f64,
    /// Median ms: alignment warp.
    pub align_ms: f64,
    /// Median ms: liveness (crop, sharpness, model).
    pub liveness_ms: f64,
    /// Median ms: embedding.
    pub embed_ms: f64,
    /// Median ms: 1:1 match against 5 templates.
    pub match_ms: f64,
    /// Median ms: detect + align + embed + 1:1 match.
    pub verify_path_ms: f64,
    /// Median and p95 ms of the full decision path (all stages).
    pub full_ms: f64,
    /// p95 of the full path.
    pub full_p95_ms: f64,
    /// Median ms of the raw `session.run` calls alone, summed over the three models.
    pub raw_model_ms: f64,
    /// (full − raw) / raw: what the pipeline adds around the models.
    pub overhead: f64,
}

/// `clockface vision bench`: per-stage medians at 1 and 2 threads, 1:N at 100,000 templates,
/// detector input sizes, peak RSS and the ratio to the Python reference.
pub fn vision(
    cfg: &crate::base::config::VisionConfig,
    photos: &[std::path::PathBuf],
    frames: usize,
    out: &mut dyn Write,
) -> Result<serde_json::Value> {
    use crate::base::frame::Frame;
    use crate::vision::liveness::Liveness;
    use crate::vision::{Vision, align, liveness, matcher};

    let err = |e: crate::vision::ModelError| Error::invalid("face models", e.to_string());
    let images: Vec<Frame> = photos
        .iter()
        .map(|p| Frame::open(p))
        .collect::<Result<_>>()?;
    let mut p = |s: String| writeln!(out, "{s}").map_err(|e| Error::io("stdout", e));
    let mut runs = Vec::new();
    for threads in [1u32, 2] {
        let mut c = cfg.clone();
        c.threads = threads;
        // Each model on `threads` threads, one after the other (`pipeline` measures both).
        c.parallel = false;
        let mut v = Vision::load(&c).map_err(err)?;
        let mut st: [Vec<f64>; 9] = Default::default();
        let templates: Vec<Vec<f32>> = images
            .iter()
            .filter_map(|f| {
                let faces = v.detect(f).ok()?;
                v.embed_face(f, faces.first()?).ok()
            })
            .collect();
        for round in 0..=frames {
            for img in &images {
                let t_all = Instant::now();
                let t = Instant::now();
                let (lb, input) = v.detector.preprocess(img);
                let t_raw = Instant::now();
                let raw = v.detector.infer(&lb, input).map_err(err)?;
                let raw_det = t_raw.elapsed().as_secs_f64() * 1e3;
                let faces = v.detector.decode(&lb, &raw).map_err(err)?;
                let detect = t.elapsed().as_secs_f64() * 1e3;
                let Some(face) = faces.first() else { continue };
                let t = Instant::now();
                let crop = liveness::crop(img, face);
                let _sharp = liveness::sharp_pixels(&crop);
                let input = Liveness::preprocess(&crop);
                let t_raw = Instant::now();
                v.liveness.infer(input).map_err(err)?;
                let raw_live = t_raw.elapsed().as_secs_f64() * 1e3;
                let live = t.elapsed().as_secs_f64() * 1e3;
                let t = Instant::now();
                let aligned = align::align_112(img, &face.landmarks);
                let align_ms = t.elapsed().as_secs_f64() * 1e3;
                let t = Instant::now();
                let (shape, data) = v.embedder.preprocess(&[&aligned]);
                let t_raw = Instant::now();
                let mut e = v.embedder.infer(shape, data).map_err(err)?.remove(0);
                let raw_emb = t_raw.elapsed().as_secs_f64() * 1e3;
                crate::vision::embed::l2_normalise(&mut e);
                let embed = t.elapsed().as_secs_f64() * 1e3;
                let t = Instant::now();
                let _ = std::hint::black_box(matcher::verify(&e, &templates));
                let m = t.elapsed().as_secs_f64() * 1e3;
                let full = t_all.elapsed().as_secs_f64() * 1e3;
                if round == 0 {
                    continue; // warm-up
                }
                for (k, x) in [
                    detect,
                    align_ms,
                    live,
                    embed,
                    m,
                    detect + align_ms + embed + m,
                    full,
                    raw_det + raw_live + raw_emb,
                    0.0,
                ]
                .into_iter()
                .enumerate()
                {
                    st[k].push(x);
                }
            }
        }
        let med = |k: usize| median_p95(st[k].clone()).0;
        let (full, full_p95) = median_p95(st[6].clone());
        let raw = med(7);
        let run = VisionRun {
            threads,
            frames: st[0].len(),
            detect_ms: med(0),
            align_ms: med(1),
            liveness_ms: med(2),
            embed_ms: med(3),
            match_ms: med(4),
            verify_path_ms: med(5),
            full_ms: full,
            full_p95_ms: full_p95,
            raw_model_ms: raw,
            overhead: (full - raw) / raw,
        };
        p(format!(
            "threads {}: detect {:.2} ms, align {:.2}, liveness {:.2}, embed {:.2}, match {:.4}; detect+align+embed+match {:.2} ms; full {:.2} ms (p95 {:.2}); raw models {:.2} ms, overhead {:.1}%",
            threads,
            run.detect_ms,
            run.align_ms,
            run.liveness_ms,
            run.embed_ms,
            run.match_ms,
            run.verify_path_ms,
            run.full_ms,
            run.full_p95_ms,
            run.raw_model_ms,
            run.overhead * 100.0
        ))?;
        runs.push(run);

        if threads == 1 {
            // Detector input size: speed and agreement with the full 640 input.
            let mut reference = Vec::new();
            for size in [640u32, 480, 320, 256] {
                v.detector.size = size;
                let mut times = Vec::new();
                let mut ious = Vec::new();
                let mut found = 0;
                for (i, img) in images.iter().enumerate() {
                    let mut faces = Vec::new();
                    for _ in 0..frames.clamp(1, 5) {
                        let t = Instant::now();
                        faces = v.detect(img).map_err(err)?;
                        times.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    found += faces.len();
                    if size == 640 {
                        reference.push(faces.first().cloned());
                    } else if let (Some(a), Some(Some(b))) = (faces.first(), reference.get(i)) {
                        ious.push(a.iou(b) as f64);
                    }
                }
                let iou = if ious.is_empty() {
                    1.0
                } else {
                    ious.iter().sum::<f64>() / ious.len() as f64
                };
                p(format!(
                    "  detector at {size}: median {:.2} ms, {found} faces in {} photos, mean IoU with 640 {:.3}",
                    median_p95(times).0,
                    images.len(),
                    iou
                ))?;
            }
            v.detector.size = cfg.detect_size;
        }
    }

    // 1:N over 100,000 templates.
    use rand::{Rng, SeedableRng};
    let dims = cfg.embedder.dims();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut gallery = matcher::Gallery::new(dims);
    let unit = |rng: &mut rand::rngs::StdRng| {
        let mut v: Vec<f32> = (0..dims).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        crate::vision::embed::l2_normalise(&mut v);
        v
    };
    for i in 0..100_000u32 {
        gallery.add(i, &unit(&mut rng));
    }
    let (mut fast, mut exact, mut same) = (Vec::new(), Vec::new(), 0);
    let probes = 50;
    for _ in 0..probes {
        let probe = unit(&mut rng);
        let t = Instant::now();
        let a = gallery.best(&probe);
        fast.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let b = gallery.best_exact(&probe);
        exact.push(t.elapsed().as_secs_f64() * 1e3);
        same += (a.map(|h| h.index) == b.map(|h| h.index)) as usize;
    }
    let (n_fast, _) = median_p95(fast);
    let (n_exact, _) = median_p95(exact);
    p(format!(
        "1:N over 100000 templates ({dims}-d): int8 scan + re-rank median {n_fast:.2} ms, exact f32 scan {n_exact:.2} ms, same top-1 {same}/{probes}"
    ))?;

    // The Python reference, same models and photos, measured now.
    let py = crate::base::config::dev_cache().join("venv/bin/python");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/reference.py");
    let mut ratios = Vec::new();
    if cfg.embedder != crate::base::config::EmbedderKind::Mobilefacenet {
        p(format!(
            "Python reference runs MobileFaceNet: for the Rust/Python ratio run with [vision] embedder = \"mobilefacenet\" (now {})",
            cfg.embedder.name()
        ))?;
    } else if py.exists() && script.exists() {
        for run in &runs {
            let output = std::process::Command::new(&py)
                .arg(&script)
                .args([
                    "bench",
                    "--threads",
                    &run.threads.to_string(),
                    "--frames",
                    &frames.to_string(),
                    "--size",
                    &cfg.detect_size.to_string(),
                ])
                .args(photos)
                .stderr(std::process::Stdio::null())
                .output()
                .map_err(|e| Error::io(&py, e))?;
            let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
            if let Some(py_ms) = v["median_ms"].as_f64() {
                let ratio = run.full_ms / py_ms;
                p(format!(
                    "threads {}: Python reference {py_ms:.2} ms/frame; Rust/Python = {ratio:.2}",
                    run.threads
                ))?;
                ratios.push(serde_json::json!({ "threads": run.threads, "python_ms": py_ms, "rust_ms": run.full_ms, "ratio": ratio }));
            }
        }
    } else {
        p("Python reference not found (run models/fetch.py): no Rust/Python ratio".into())?;
    }
    let pipeline = super::pipeline::pipeline(cfg, &images, frames, out)?;
    let rss = peak_rss_mib();
    writeln!(
        out,
        "peak RSS {rss:.1} MiB (all four models loaded, in turn per setting; 100k-template gallery)"
    )
    .map_err(|e| Error::io("stdout", e))?;
    Ok(serde_json::json!({
        "pipeline": pipeline,
        "runs": runs,
        "one_to_n_100k_ms": n_fast,
        "one_to_n_exact_ms": n_exact,
        "python": ratios,
        "peak_rss_mib": rss,
    }))
}
