//! The frame analysis as the kiosk runs it (`Vision::analyse`): detection, then every liveness
//! cue beside the embedding, serial and side by side; and the second anti-spoofing model alone.

use std::io::Write;
use std::time::Instant;

use super::measure::median_p95;
use crate::base::config::VisionConfig;
use crate::base::error::{Error, Result};
use crate::base::frame::Frame;
use crate::vision::Vision;

/// One setting's figures (ms).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PipelineRun {
    /// Liveness and embedding side by side.
    pub parallel: bool,
    /// Frames measured.
    pub frames: usize,
    /// Median and p95 of a whole frame on frames without the DTN.
    pub frame_ms: [f64; 2],
    /// Median and p95 of a whole frame on frames with the DTN.
    pub frame_dtn_ms: [f64; 2],
    /// Median of detection.
    pub detect_ms: f64,
    /// Median of the liveness cues without the DTN (three MiniFASNet crops, moiré).
    pub liveness_ms: f64,
    /// Median of the embedding.
    pub embed_ms: f64,
    /// Median of one MiniFASNet call on one crop.
    pub fasnet_call_ms: f64,
}

/// Runs every photo `frames` times through `analyse` with `parallel` off and on.
pub fn pipeline(
    cfg: &VisionConfig,
    images: &[Frame],
    frames: usize,
    out: &mut dyn Write,
) -> Result<Vec<PipelineRun>> {
    let err = |e: crate::vision::ModelError| Error::invalid("face models", e.to_string());
    let mut runs = Vec::new();
    for parallel in [false, true] {
        let mut c = cfg.clone();
        c.parallel = parallel;
        c.threads = 2;
        let mut v = Vision::load(&c).map_err(err)?;
        let (mut plain, mut with_dtn, mut det, mut live, mut emb, mut fas) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for round in 0..=frames {
            for img in images {
                // A tracked face: the previous frame's face, so the DTN runs every dtn_every.
                let faces = v.detect(img).map_err(err)?;
                let Some(face) = faces.first().cloned() else {
                    continue;
                };
                for k in 0..c.dtn_every.max(1) {
                    let prev = (k > 0 || round > 0).then_some(&face);
                    let t = Instant::now();
                    let a = v.analyse(img, prev, true, true).map_err(err)?;
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    if round == 0 || a.liveness.is_none() {
                        continue;
                    }
                    if a.liveness.as_ref().is_some_and(|l| l.dtn.is_some()) {
                        with_dtn.push(ms);
                    } else {
                        plain.push(ms);
                        live.push(a.times.liveness_ms);
                    }
                    det.push(a.times.detect_ms);
                    emb.push(a.times.embed_ms);
                }
                let crop = crate::vision::pad::crop(img, face.bbox);
                let t = Instant::now();
                v.fasnet
                    .infer(crate::vision::pad::Fasnet::preprocess(&crop))
                    .map_err(err)?;
                if round > 0 {
                    fas.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        let m = |v: &Vec<f64>| median_p95(v.clone());
        let run = PipelineRun {
            parallel,
            frames: plain.len() + with_dtn.len(),
            frame_ms: m(&plain).into(),
            frame_dtn_ms: m(&with_dtn).into(),
            detect_ms: m(&det).0,
            liveness_ms: m(&live).0,
            embed_ms: m(&emb).0,
            fasnet_call_ms: m(&fas).0,
        };
        let _ = writeln!(
            out,
            "analyse ({}, {} embedder, 2 threads): frame {:.1} ms (p95 {:.1}), with the DTN {:.1} ms (p95 {:.1}); detect {:.1}, liveness cues {:.1}, embed {:.1}; one MiniFASNet call {:.1} ms",
            if parallel {
                "liveness beside embedding"
            } else {
                "serial"
            },
            c.embedder.name(),
            run.frame_ms[0],
            run.frame_ms[1],
            run.frame_dtn_ms[0],
            run.frame_dtn_ms[1],
            run.detect_ms,
            run.liveness_ms,
            run.embed_ms,
            run.fasnet_call_ms
        );
        runs.push(run);
    }
    Ok(runs)
}
