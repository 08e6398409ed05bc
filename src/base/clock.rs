//! Time as the kiosk sees it: wall time, whether it is synchronised, boot id and monotonic time.
//!
//! Everything that reads the time takes a [`Clock`], so timeouts, retention and backoff are
//! tested with [`SimClock`] without sleeping. [`SystemClock`] reads the kernel: wall time,
//! `CLOCK_BOOTTIME`, the NTP-synchronised flag from `adjtimex(2)` and
//! `/proc/sys/kernel/random/boot_id`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::base::error::{Error, Result};

/// A source of time for records and timers.
pub trait Clock: Send + Sync {
    /// Wall-clock time, milliseconds since the Unix epoch (UTC).
    fn wall_ms(&self) -> i64;
    /// Time since boot in nanoseconds; never goes backwards within one boot.
    fn monotonic_ns(&self) -> u64;
    /// Whether the kernel considers the wall clock synchronised (NTP/PTP/RTC discipline).
    fn synchronised(&self) -> bool;
    /// Identifies the current boot, so monotonic times from different boots are not compared.
    fn boot_id(&self) -> [u8; 16];
}

/// The real clock of a Linux machine.
#[derive(Debug)]
pub struct SystemClock {
    boot_id: [u8; 16],
}

impl SystemClock {
    /// Reads the boot id once; it cannot change while the process runs.
    pub fn new() -> Self {
        SystemClock {
            boot_id: read_boot_id().unwrap_or([0; 16]),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn wall_ms(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        }
    }

    fn monotonic_ns(&self) -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid, writable timespec; CLOCK_BOOTTIME exists on every Linux >= 2.6.39.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        if rc != 0 {
            return 0;
        }
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    fn synchronised(&self) -> bool {
        kernel_clock_synchronised()
    }

    fn boot_id(&self) -> [u8; 16] {
        self.boot_id
    }
}

/// Asks the kernel whether the system clock is synchronised: `adjtimex` with no modes returns
/// `TIME_ERROR` (5) or sets `STA_UNSYNC` while it is not.
pub fn kernel_clock_synchronised() -> bool {
    // SAFETY: a zeroed timex with modes = 0 only reads the kernel's state.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    const TIME_ERROR: i32 = 5;
    state >= 0 && state != TIME_ERROR && (tx.status & libc::STA_UNSYNC) == 0
}

/// Reads `/proc/sys/kernel/random/boot_id` (a UUID in text form).
pub fn read_boot_id() -> Option<[u8; 16]> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    uuid::Uuid::parse_str(text.trim())
        .ok()
        .map(|u| *u.as_bytes())
}

/// A clock that only moves when told to, for tests and the scripted demo.
#[derive(Debug)]
pub struct SimClock {
    wall_ms: AtomicI64,
    mono_ns: AtomicU64,
    synced: AtomicBool,
    boot_id: Mutex<[u8; 16]>,
}

impl SimClock {
    /// Starts at `wall_ms` (Unix milliseconds), synchronised, one second after boot.
    pub fn new(wall_ms: i64) -> Self {
        SimClock {
            wall_ms: AtomicI64::new(wall_ms),
            mono_ns: AtomicU64::new(1_000_000_000),
            synced: AtomicBool::new(true),
            boot_id: Mutex::new([7; 16]),
        }
    }

    /// Moves both wall and monotonic time forward.
    pub fn advance(&self, by: Duration) {
        self.wall_ms
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        self.mono_ns
            .fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }

    /// Steps the wall clock alone, as an NTP correction or a wrong RTC would.
    pub fn set_wall_ms(&self, wall_ms: i64) {
        self.wall_ms.store(wall_ms, Ordering::SeqCst);
    }

    /// Marks the wall clock as synchronised or not.
    pub fn set_synchronised(&self, synced: bool) {
        self.synced.store(synced, Ordering::SeqCst);
    }

    /// Simulates a reboot: new boot id, monotonic time restarts.
    pub fn reboot(&self, boot_id: [u8; 16]) {
        *self.boot_id.lock().unwrap() = boot_id;
        self.mono_ns.store(1_000_000_000, Ordering::SeqCst);
    }
}

impl Clock for SimClock {
    fn wall_ms(&self) -> i64 {
        self.wall_ms.load(Ordering::SeqCst)
    }
    fn monotonic_ns(&self) -> u64 {
        self.mono_ns.load(Ordering::SeqCst)
    }
    fn synchronised(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }
    fn boot_id(&self) -> [u8; 16] {
        *self.boot_id.lock().unwrap()
    }
}

/// Parses `--since`/`--until`: `YYYY-MM-DD` (UTC midnight) or RFC 3339.
pub fn parse_time(flag: &str, s: &str) -> Result<i64> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            Error::invalid(
                flag,
                format!("{s:?} is not a date (YYYY-MM-DD, UTC) or an RFC 3339 time (2026-11-29T08:00:00+08:00)"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_reads_the_kernel() {
        let c = SystemClock::new();
        assert_ne!(c.boot_id(), [0; 16], "boot id read from /proc");
        let a = c.monotonic_ns();
        let b = c.monotonic_ns();
        assert!(a > 0 && b >= a);
        // 2020-01-01 as a sanity floor for the wall clock.
        assert!(c.wall_ms() > 1_577_836_800_000);
        // Whatever the answer, asking must not fail or panic.
        let _ = c.synchronised();
    }

    #[test]
    fn sim_clock_moves_only_when_told() {
        let c = SimClock::new(1_000);
        assert_eq!(c.wall_ms(), 1_000);
        c.advance(Duration::from_millis(250));
        assert_eq!(c.wall_ms(), 1_250);
        assert_eq!(c.monotonic_ns(), 1_250_000_000);
        c.set_synchronised(false);
        assert!(!c.synchronised());
        c.reboot([9; 16]);
        assert_eq!(c.boot_id(), [9; 16]);
        assert_eq!(c.monotonic_ns(), 1_000_000_000);
    }
}

/// A real-time clock that a script can move forward in jumps: between jumps it runs at real
/// speed (timeouts behave as on a kiosk), and a jump moves wall and monotonic time together
/// (so "four hours later" also ends anti-passback windows). Used by the scripted demo day.
#[derive(Debug)]
pub struct ScriptClock {
    start: std::time::Instant,
    base_wall_ms: i64,
    jumped_ms: AtomicI64,
    boot_id: [u8; 16],
}

impl ScriptClock {
    /// Starts at `wall_ms`.
    pub fn new(wall_ms: i64) -> Self {
        ScriptClock {
            start: std::time::Instant::now(),
            base_wall_ms: wall_ms,
            jumped_ms: AtomicI64::new(0),
            boot_id: read_boot_id().unwrap_or([0; 16]),
        }
    }

    /// Moves forward to `wall_ms` (never backwards).
    pub fn jump_to(&self, wall_ms: i64) {
        let delta = wall_ms - self.wall_ms();
        if delta > 0 {
            self.jumped_ms.fetch_add(delta, Ordering::SeqCst);
        }
    }
}

impl Clock for ScriptClock {
    fn wall_ms(&self) -> i64 {
        self.base_wall_ms
            + self.start.elapsed().as_millis() as i64
            + self.jumped_ms.load(Ordering::SeqCst)
    }
    fn monotonic_ns(&self) -> u64 {
        1_000_000_000
            + self.start.elapsed().as_nanos() as u64
            + self.jumped_ms.load(Ordering::SeqCst) as u64 * 1_000_000
    }
    fn synchronised(&self) -> bool {
        false // scripted time is not real time, and the records say so
    }
    fn boot_id(&self) -> [u8; 16] {
        self.boot_id
    }
}
