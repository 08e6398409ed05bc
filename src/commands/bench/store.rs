//! `bench store` and `bench append`: durable appends, bytes per record, and `verify` over a
//! large store.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use crate::base::clock::SystemClock;
use crate::base::error::{Error, Result};
use crate::store::record::{Method, NewRecord, Outcome, Punch};
use crate::store::{Store, StoreOptions};

use super::measure::run_measured;

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
        punch: if i.is_multiple_of(2) {
            Punch::In
        } else {
            Punch::Out
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

/// A store in `dir` with no size cap, for load generation.
pub(super) fn options(dir: &Path) -> StoreOptions {
    StoreOptions {
        data_dir: dir.to_owned(),
        max_size_mb: 0,
        policy_version: 1,
        minor_age: 14,
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
