//! `clockface bench ...`: benchmarks that print figures. Targets are checked by reading these
//! figures, never by timed assertions in tests.
//!
//! - `store`: durable appends per second (one fsync'd transaction each), bytes per record on
//!   disk, and the time and peak memory of `clockface verify` over a large store (run as a child
//!   process so its peak RSS is its own).
//! - `append`: appends records one at a time and prints `ack SEQ` after each is durable; the
//!   crash-durability test SIGKILLs it and checks every acknowledged record survived.
//! - `sync`: one sync round uploading a large queue to `clockface-hub` on loopback: time,
//!   records per second and the peak memory of both processes.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use crate::base::clock::SystemClock;
use crate::base::error::{Error, Result};
use crate::store::record::{Direction, Method, NewRecord, Outcome};
use crate::store::{Store, StoreOptions};

/// A plausible record for load generation: every 10th is a failed attempt.
pub fn sample_record(i: u64) -> NewRecord {
    let failed = i % 10 == 9;
    NewRecord {
        outcome: if failed {
            Outcome::Rejected
        } else {
            Outcome::Accepted
        },
        employee_id: format!("E{:05}", i % 5000),
        direction: if i.is_multiple_of(2) {
            Direction::In
        } else {
            Direction::Out
        },
        method: Method::BadgeFace,
        reason: if failed {
            "face_mismatch".into()
        } else {
            String::new()
        },
        liveness: Some(0.05 + (i % 7) as f32 * 0.01),
        match_score: Some(0.6 + (i % 30) as f32 * 0.01),
    }
}

fn options(dir: &Path) -> StoreOptions {
    StoreOptions {
        data_dir: dir.to_owned(),
        max_size_mb: 0,
        policy_version: 1,
        read_only: false,
    }
}

/// `clockface bench append`: durable appends with acknowledgements on stdout.
pub fn append(
    opts: &StoreOptions,
    count: u64,
    print_acks: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let mut store = Store::open(opts, Arc::new(SystemClock::new()))?;
    for i in 0..count {
        let a = store.append(&sample_record(i))?;
        if print_acks {
            writeln!(out, "ack {}", a.seq)
                .and_then(|_| out.flush())
                .map_err(|e| Error::io("stdout", e))?;
        }
    }
    Ok(())
}

/// `clockface bench store`: prints durable append rate, bytes per record and verify figures.
/// With `keep`, the stores are made in that directory and an existing large store of the right
/// size is reused, so repeated verify measurements skip the build.
pub fn store(durable: u64, records: u64, keep: Option<&Path>, out: &mut dyn Write) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("clockface-bench-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let root = keep.unwrap_or(tmp.path());
    let mut p =
        |s: &str| -> Result<()> { writeln!(out, "{s}").map_err(|e| Error::io("stdout", e)) };

    // 1. Durable appends: each a transaction with fsync before returning.
    let dir = root.join("durable");
    let _ = std::fs::remove_dir_all(&dir);
    let mut store = Store::open(&options(&dir), Arc::new(SystemClock::new()))?;
    let mut lat = Vec::with_capacity(durable as usize);
    let t0 = Instant::now();
    for i in 0..durable {
        let t = Instant::now();
        store.append(&sample_record(i))?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let secs = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
    p(&format!(
        "durable appends: {durable} in {secs:.2} s = {:.0} check-ins/s (latency median {:.2} ms, p99 {:.2} ms)",
        durable as f64 / secs,
        pct(0.5),
        pct(0.99)
    ))?;
    drop(store);

    // 2. A large store, built in batches (one transaction per 10,000 records).
    let dir = root.join("large");
    let mut store = Store::open(&options(&dir), Arc::new(SystemClock::new()))?;
    let t0 = Instant::now();
    let batch = 10_000u64;
    let mut i = store.stats()?.head_seq;
    let reused = i;
    if i > records {
        drop(store);
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        store = Store::open(&options(&dir), Arc::new(SystemClock::new()))?;
        i = 0;
    }
    while i < records {
        let n = batch.min(records - i);
        let news: Vec<NewRecord> = (i..i + n).map(sample_record).collect();
        store.append_many(&news)?;
        i += n;
        if i % 100_000 == 0 {
            eprintln!("  built {i}/{records} records");
        }
    }
    store.checkpoint()?;
    let db_bytes = std::fs::metadata(store.db_path())
        .map_err(|e| Error::io(store.db_path(), e))?
        .len();
    let rec_len = store.record(1)?.map(|r| r.to_bytes().len()).unwrap_or(0);
    let built = if reused > 0 && reused <= records {
        format!("reused {reused}, added {}", records - reused)
    } else {
        "built".to_string()
    };
    p(&format!(
        "large store ({built}): {records} records in {:.1} s; database {} bytes = {:.0} bytes/record on disk (signed record itself {rec_len} bytes)",
        t0.elapsed().as_secs_f64(),
        db_bytes,
        db_bytes as f64 / records.max(1) as f64
    ))?;
    drop(store);

    // 3. `clockface verify` over it, as a separate process.
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let (secs, maxrss_kb, ok) = run_measured(
        Command::new(exe)
            .arg("--data-dir")
            .arg(&dir)
            .arg("verify")
            .stdout(std::process::Stdio::null()),
    )?;
    p(&format!(
        "verify: {records} records in {secs:.2} s = {:.0} records/s, peak RSS {:.1} MiB, {} ({} threads)",
        records as f64 / secs,
        maxrss_kb as f64 / 1024.0,
        if ok { "passed" } else { "FAILED" },
        rayon::current_num_threads()
    ))?;
    Ok(())
}

/// Runs a child to completion; returns wall seconds, its peak RSS in KiB and success.
fn run_measured(cmd: &mut Command) -> Result<(f64, i64, bool)> {
    let t0 = Instant::now();
    let child = cmd.spawn().map_err(|e| Error::io("verify child", e))?;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    if pid < 0 {
        return Err(Error::io("wait4", std::io::Error::last_os_error()));
    }
    Ok((
        t0.elapsed().as_secs_f64(),
        usage.ru_maxrss,
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    ))
}

/// Median and 95th percentile of a sample, in the sample's unit.
pub fn median_p95(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[((v.len() - 1) as f64 * 0.95) as usize])
}

/// Peak resident set size of this process so far, in MiB (`VmHWM`).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

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
    if py.exists() && script.exists() {
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
    let rss = peak_rss_mib();
    p(format!(
        "peak RSS {rss:.1} MiB (both thread settings' models loaded in turn, 100k-template gallery)"
    ))?;
    Ok(serde_json::json!({
        "runs": runs,
        "one_to_n_100k_ms": n_fast,
        "one_to_n_exact_ms": n_exact,
        "python": ratios,
        "peak_rss_mib": rss,
    }))
}

/// Figures of one `bench sync` run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncFigures {
    /// Check-ins uploaded.
    pub records: u64,
    /// Entries per upload.
    pub batch_size: u32,
    /// Wall time of the sync round (heartbeat, downloads and every upload), seconds.
    pub seconds: f64,
    /// Check-ins per second.
    pub records_per_second: f64,
    /// Peak RSS of the kiosk side (this process), MiB.
    pub kiosk_peak_rss_mib: f64,
    /// Peak RSS of the `clockface-hub` process, MiB.
    pub hub_peak_rss_mib: f64,
}

/// `clockface bench sync`: queues `records` check-ins, starts `clockface-hub` (the binary
/// next to this one) on loopback, pairs, and times one sync round that uploads them all.
pub fn sync(records: u64, batch_size: u32, json: bool, out: &mut dyn Write) -> Result<SyncFigures> {
    use std::io::BufRead;
    let dir = tempfile::tempdir().map_err(|e| Error::io("temporary dir", e))?;
    let kiosk_dir = dir.path().join("kiosk");
    let mut store = Store::open(&options(&kiosk_dir), Arc::new(SystemClock::new()))?;
    let pb = crate::commands::progress_bar(records, "queueing check-ins");
    let mut i = 0;
    while i < records {
        let n = (records - i).min(10_000);
        let batch: Vec<NewRecord> = (i..i + n).map(sample_record).collect();
        store.append_many(&batch)?;
        i += n;
        if let Some(pb) = &pb {
            pb.set_position(i);
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }

    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let hub_exe = exe.with_file_name("clockface-hub");
    let hub_db = dir.path().join("hub.db");
    let code = Command::new(&hub_exe)
        .arg("--db")
        .arg(&hub_db)
        .args(["pairing-code", "--site", "bench"])
        .output()
        .map_err(|e| Error::io(&hub_exe, e))?;
    let code = String::from_utf8_lossy(&code.stdout).trim().to_owned();
    let mut hub = Command::new(&hub_exe)
        .arg("--db")
        .arg(&hub_db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::io(&hub_exe, e))?;
    let mut line = String::new();
    std::io::BufReader::new(hub.stdout.take().expect("piped"))
        .read_line(&mut line)
        .map_err(|e| Error::io("hub output", e))?;
    let url = line.trim().trim_start_matches("listening on ").to_owned();

    let mut cfg = crate::base::config::Config::default();
    cfg.sync.url = url.clone();
    cfg.sync.batch_size = batch_size;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("runtime", e))?;
    let result = (|| -> Result<f64> {
        rt.block_on(crate::sync::pair(&mut store, &cfg, &url, &code))
            .map_err(|e| Error::invalid("bench pairing", e.to_string()))?;
        let syncer = crate::sync::Syncer::for_store(&store, &cfg)?.expect("just paired");
        let t0 = Instant::now();
        let rep = rt
            .block_on(syncer.round(&mut store))
            .map_err(|e| Error::invalid("bench sync", e.to_string()))?;
        let secs = t0.elapsed().as_secs_f64();
        if rep.checkins != records {
            return Err(Error::invalid(
                "bench sync",
                format!("uploaded {} of {records}", rep.checkins),
            ));
        }
        Ok(secs)
    })();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(hub.id() as i32, libc::SIGTERM) };
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(hub.id() as i32, &mut status, 0, &mut usage) };
    let secs = result?;
    let f = SyncFigures {
        records,
        batch_size,
        seconds: secs,
        records_per_second: records as f64 / secs,
        kiosk_peak_rss_mib: peak_rss_mib(),
        hub_peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
    };
    crate::commands::emit(out, json, &f, |out| {
        let _ = writeln!(
            out,
            "sync: {} check-ins in {:.2} s = {:.0} records/s (batches of {}); peak RSS kiosk {:.1} MiB, hub {:.1} MiB",
            f.records,
            f.seconds,
            f.records_per_second,
            f.batch_size,
            f.kiosk_peak_rss_mib,
            f.hub_peak_rss_mib
        );
    });
    Ok(f)
}
