//! Measuring helpers the benchmarks share: medians, peak memory, a measured child process.

use std::process::Command;
use std::time::Instant;

use crate::base::error::{Error, Result};

/// Runs a child to completion; returns wall seconds, its peak RSS in KiB and success.
pub(super) fn run_measured(cmd: &mut Command) -> Result<(f64, i64, bool)> {
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
