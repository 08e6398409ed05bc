//! Helpers shared by the integration tests: temporary stores, config files and the binary.
#![allow(dead_code)]

pub mod hubbin;
pub mod net;
pub mod pg;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use clockface::base::clock::SimClock;
use clockface::store::record::{Method, NewRecord, Outcome, Punch};
use clockface::store::{Store, StoreOptions};

/// 2026-11-30T08:40:00Z.
pub const T0: i64 = 1_796_028_000_000;

pub fn options(dir: &Path) -> StoreOptions {
    StoreOptions {
        data_dir: dir.to_owned(),
        max_size_mb: 0,
        policy_version: 3,
        minor_age: 14,
        read_only: false,
    }
}

pub fn open(dir: &Path) -> (Store, Arc<SimClock>) {
    let clock = Arc::new(SimClock::new(T0));
    (
        Store::open(&options(dir), clock.clone()).expect("store opens"),
        clock,
    )
}

pub fn checkin(employee: &str) -> NewRecord {
    NewRecord {
        outcome: Outcome::Accepted,
        employee_id: employee.into(),
        punch: Punch::In,
        method: Method::BadgeFace,
        reason: String::new(),
        liveness: Some(0.04),
        match_score: Some(0.83),
    }
}

pub fn failed(employee: &str, reason: &str) -> NewRecord {
    NewRecord {
        outcome: Outcome::Rejected,
        employee_id: employee.into(),
        punch: Punch::In,
        method: Method::BadgeFace,
        reason: reason.into(),
        liveness: Some(0.6),
        match_score: None,
    }
}

/// A store in `dir` with `n` records, one minute apart, every 4th a failed attempt.
pub fn store_with(dir: &Path, n: u64) -> Store {
    let (mut store, clock) = open(dir);
    for i in 0..n {
        clock.advance(std::time::Duration::from_secs(60));
        let rec = if i % 4 == 3 {
            failed(&format!("E{i}"), "face_mismatch")
        } else {
            checkin(&format!("E{i}"))
        };
        store.append(&rec).expect("append");
    }
    store
}

/// Path of the compiled `clockface` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_clockface"))
}

/// Runs a command that must succeed; its output.
pub fn sh(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Runs the binary with args; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(bin())
        .args(args)
        .env_remove("CLOCKFACE_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes a config file whose data dir is `data_dir`, plus `extra` TOML appended.
pub fn write_config(dir: &Path, data_dir: &Path, extra: &str) -> PathBuf {
    let p = dir.join("clockface.toml");
    std::fs::write(
        &p,
        format!(
            "[store]\ndata_dir = {:?}\n{extra}",
            data_dir.display().to_string()
        ),
    )
    .unwrap();
    p
}

/// Opens the database directly, bypassing the store, to tamper with it.
pub fn raw_db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("clockface.db")).unwrap()
}

/// Wall time of a simulated clock (a named helper so tests read as prose).
pub trait WallNow {
    /// Unix milliseconds now.
    fn wall_ms_now(&self) -> i64;
}

impl WallNow for SimClock {
    fn wall_ms_now(&self) -> i64 {
        use clockface::base::clock::Clock;
        self.wall_ms()
    }
}

/// Whether `needle` occurs anywhere in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The database file and its WAL, raw, as someone holding the SD card would read them.
pub fn raw_files(dir: &Path) -> Vec<u8> {
    let mut all = std::fs::read(dir.join("clockface.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("clockface.db-wal")) {
        all.extend(wal);
    }
    all
}

/// A loopback port free right now (for a server that must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A small tmpfs mounted for a full-disk test; unmounted on drop.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mounts a tmpfs with `options` (such as `size=4m`) on `dir`; `None` (the test is skipped,
    /// and says so) where mounting needs a root this run does not have.
    pub fn mount(dir: &Path, options: &str) -> Option<SmallDisk> {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED the full-disk case: mounting a small tmpfs needs root");
        }
        mounted.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A real test photo fetched by models/fetch.py.
pub fn photo(name: &str) -> clockface::base::frame::Frame {
    let p = clockface::base::config::dev_cache()
        .join("photos")
        .join(name);
    clockface::base::frame::Frame::open(&p).unwrap_or_else(|e| panic!("{e} (run models/fetch.py)"))
}

/// One loaded pipeline shared by the vision tests (ONNX Runtime allows one environment per
/// process; sessions are reused).
pub fn vision() -> std::sync::MutexGuard<'static, clockface::vision::Vision> {
    use clockface::base::config::VisionConfig;
    use clockface::vision::Vision;
    static V: std::sync::OnceLock<std::sync::Mutex<Vision>> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        std::sync::Mutex::new(
            Vision::load(&VisionConfig::default()).expect("models load (run models/fetch.py)"),
        )
    })
    .lock()
    .unwrap_or_else(|e| e.into_inner())
}
