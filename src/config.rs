//! Kiosk configuration: a TOML file, `/etc/clockface/clockface.toml` by default.
//!
//! Owns parsing, defaults and validation. Unknown keys are rejected (`deny_unknown_fields`) so a
//! misspelt setting never silently falls back to a default. [`check_str`] reports every problem
//! in a file at once — syntax, unknown keys, wrong types and out-of-range values — each with its
//! key path, line and what is allowed. It must not touch the store or any hardware.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Merges `over` into `base` key by key (tables recursively, values replaced), pushing each
/// leaf key set, dotted under `prefix`, onto `keys`. Used to lay provisioning and settings
/// changed at the kiosk over a config.
pub fn merge_tables(
    base: &mut toml::Table,
    over: &toml::Table,
    prefix: &str,
    keys: &mut Vec<String>,
) {
    for (k, v) in over {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o, &path, keys),
            (_, toml::Value::Table(o)) => {
                let mut t = toml::Table::new();
                merge_tables(&mut t, o, &path, keys);
                base.insert(k.clone(), toml::Value::Table(t));
            }
            _ => {
                base.insert(k.clone(), v.clone());
                keys.push(path);
            }
        }
    }
}

/// Where the appliance looks for its config when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/clockface/clockface.toml";

/// The whole configuration. Every section and field has a default, so a file only needs the
/// settings a site changes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Identity of this kiosk as people and the backend see it.
    pub device: DeviceConfig,
    /// Where and how check-ins, the roster and keys are kept.
    pub store: StoreConfig,
    /// Check-in policy shared with the backend.
    pub policy: PolicyConfig,
    /// Face pipeline: models, thresholds, speed/accuracy trade-offs.
    pub vision: crate::vision::VisionConfig,
    /// Camera.
    pub camera: CameraConfig,
    /// Door relay, LEDs, buzzer, motion sensor.
    pub gpio: GpioConfig,
    /// Badge reader.
    pub badge: BadgeConfig,
    /// How long records are kept.
    pub retention: RetentionConfig,
    /// Sync with the enterprise backend.
    pub sync: SyncConfig,
    /// The touchscreen.
    pub ui: UiConfig,
    /// Diagnostics.
    pub log: LogConfig,
    /// The health endpoint for monitoring and the update check.
    pub health: HealthConfig,
}

/// `[health]`: `GET /health` for fleet monitoring and the boot check that keeps or rolls back
/// an update.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Address the endpoint listens on, such as "127.0.0.1:8780". It reports no personal data.
    /// Empty: no endpoint. Default "" (the appliance image sets "127.0.0.1:8780").
    pub listen: String,
}

/// `[ui]`: the touchscreen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Show the screens (`clockface run` falls back to running without them when no display
    /// is found). Default true.
    pub enabled: bool,
    /// Language at start: "en" or "zh_CN"; admins switch it on the screen. Default "en".
    pub language: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            enabled: true,
            language: "en".into(),
        }
    }
}

/// `[sync]`: the enterprise backend and how the outbox talks to it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Base URL of the backend (protocol v1 lives under `/v1`). Must be https, except on
    /// loopback. Empty: sync is off and check-ins stay queued. Default "".
    pub url: String,
    /// One-time pairing code from the backend admin, used once at start if the kiosk is not
    /// paired yet (first-boot provisioning writes it). Default "".
    pub pairing_code: String,
    /// PEM file of the CA that signs the backend's certificate. When set, only this CA is
    /// trusted (CA pinning); otherwise the system's roots. Default "".
    pub ca_file: PathBuf,
    /// Check-ins (and audit entries) per upload, 1–1000. Default 500.
    pub batch_size: u32,
    /// Seconds between sync rounds while all is well, 1–3600. Default 15.
    pub interval_seconds: u32,
    /// Upper bound of the retry backoff (and of any Retry-After the backend asks for), in
    /// seconds, 5–86400. Default 300.
    pub backoff_max_seconds: u32,
    /// Seconds one request may take before it counts as failed, 2–300. Default 30.
    pub timeout_seconds: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            url: String::new(),
            pairing_code: String::new(),
            ca_file: PathBuf::new(),
            batch_size: 500,
            interval_seconds: 15,
            backoff_max_seconds: 300,
            timeout_seconds: 30,
        }
    }
}

/// `[retention]`: how long personal data is kept on the kiosk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days an accepted check-in stays on the kiosk after the backend acknowledged it (unsynced
    /// check-ins are never purged). 1–3650. Default 90.
    pub checkin_days: u32,
    /// Days a failed attempt stays on the kiosk after it was made. 1–3650. Default 30.
    pub failed_attempt_days: u32,
    /// Pseudonymise the check-ins of people no longer on the roster once the backend has
    /// acknowledged them: the kiosk keeps only a keyed pseudonym, the time and the hash that
    /// keeps the chain verifiable; the backend keeps the full signed record. Default false.
    pub pseudonymise_departed: bool,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            checkin_days: 90,
            failed_attempt_days: 30,
            pseudonymise_departed: false,
        }
    }
}

impl RetentionConfig {
    /// The store's view of these periods.
    pub fn policy(&self) -> crate::store::retention::RetentionPolicy {
        crate::store::retention::RetentionPolicy {
            checkin_days: self.checkin_days,
            failed_attempt_days: self.failed_attempt_days,
        }
    }
}

/// `[device]`: names shown on screen and sent to the backend.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// Human name of this kiosk ("Front door"), shown in admin screens and exports.
    /// 1–64 characters. Default "Clockface kiosk".
    pub name: String,
    /// Site (building, branch) the kiosk belongs to, shown on the idle screen.
    /// 0–64 characters. Default "" (none).
    pub site: String,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            name: "Clockface kiosk".into(),
            site: String::new(),
        }
    }
}

/// `[store]`: the SQLite store and key files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory holding `clockface.db`, `device.key` and `data.key`. Must be an absolute path;
    /// systemd's `StateDirectory=clockface` creates the default. Default `/var/lib/clockface`.
    pub data_dir: PathBuf,
    /// Upper bound on the database size in MiB, so the store can never fill the SD card and
    /// starve the OS. When reached, new check-ins fail with "store is full" and nothing already
    /// recorded is lost. 0 means no cap (the disk is the limit). Default 0.
    pub max_size_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("/var/lib/clockface"),
            max_size_mb: 0,
        }
    }
}

/// `[policy]`: rules the backend may later push; the version goes into every record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Version of the check-in policy in force, written into every signed record so the
    /// backend knows which rules produced a verdict. At least 1. Default 1.
    pub version: u32,
    /// How the direction of a check-in is decided: "in", "out", "auto" (the backend pairs
    /// events) or "schedule" (by time of day, see `schedule`). Default "schedule".
    pub direction: DirectionPolicy,
    /// With `direction = "schedule"`: local time ("HH:MM") from which check-ins count as "out";
    /// before it (from midnight) they count as "in". Default "12:00".
    pub out_from: String,
    /// Anti-passback: the same person again within this many minutes is told "already checked
    /// in" and no second attendance record is written. 0 disables it. Default 5.
    pub anti_passback_minutes: u32,
    /// Allow check-in by face alone (1:N over the roster), without a badge. Default false.
    pub face_only: bool,
    /// Face attempts (capture windows) before the kiosk offers the PIN instead. 1–5. Default 2.
    pub face_attempts: u32,
    /// Seconds a capture window lasts before it counts as a failed attempt. 3–30. Default 8.
    pub capture_seconds: u32,
    /// Seconds the PIN pad waits for input. 5–60. Default 20.
    pub pin_seconds: u32,
    /// Seconds a verdict stays on screen. 1–15. Default 3.
    pub verdict_seconds: u32,
    /// Version of the consent text shown at enrolment, recorded with every consent decision.
    /// Default "2026-01".
    pub consent_text_version: String,
    /// Good frames captured per enrolment (each stored as one encrypted template). 3–5. Default 3.
    pub enrol_frames: u32,
}

/// How check-in direction is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectionPolicy {
    /// Always "in".
    In,
    /// Always "out".
    Out,
    /// Undecided on the kiosk; the backend pairs events.
    Auto,
    /// "in" before `out_from`, "out" from it.
    Schedule,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            version: 1,
            direction: DirectionPolicy::Schedule,
            out_from: "12:00".into(),
            anti_passback_minutes: 5,
            face_only: false,
            face_attempts: 2,
            capture_seconds: 8,
            pin_seconds: 20,
            verdict_seconds: 3,
            consent_text_version: "2026-01".into(),
            enrol_frames: 3,
        }
    }
}

impl PolicyConfig {
    /// `out_from` as minutes after midnight, if well-formed.
    pub fn out_from_minute(&self) -> Option<u32> {
        let (h, m) = self.out_from.split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && self.out_from.len() == 5).then_some(h * 60 + m)
    }
}

/// `[camera]`: where frames come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    /// "v4l" (a USB or CSI camera through Video4Linux) or "replay" (scripted real photos, for
    /// the demo and tests). Default "v4l".
    pub kind: CameraKind,
    /// V4L device node. Default "/dev/video0".
    pub device: PathBuf,
    /// Capture width in pixels. Default 640.
    pub width: u32,
    /// Capture height in pixels. Default 480.
    pub height: u32,
    /// Frames per second requested from the camera. 1–60. Default 15.
    pub fps: u32,
    /// Pixel format: "mjpeg" or "yuyv". Default "mjpeg" (less USB bandwidth).
    pub format: PixelFormat,
    /// Seconds without a frame before the camera counts as stalled and is reopened. Default 3.
    pub stall_seconds: u32,
}

/// Camera backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraKind {
    /// Video4Linux device.
    V4l,
    /// Scripted replay of photos.
    Replay,
}

/// V4L pixel format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// Motion JPEG.
    Mjpeg,
    /// YUV 4:2:2 packed.
    Yuyv,
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            kind: CameraKind::V4l,
            device: PathBuf::from("/dev/video0"),
            width: 640,
            height: 480,
            fps: 15,
            format: PixelFormat::Mjpeg,
            stall_seconds: 3,
        }
    }
}

/// `[gpio]`: door relay, LEDs, buzzer, motion sensor (BCM pin numbers).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GpioConfig {
    /// "rppal" (Raspberry Pi GPIO) or "sim" (records pin changes; demo and tests). Default "rppal".
    pub kind: GpioKind,
    /// Door relay output pin. Default 17.
    pub relay_pin: u8,
    /// How long the relay opens the door, in milliseconds. 100–10000. Default 1500.
    pub relay_ms: u32,
    /// Green LED pin. Default 27.
    pub green_pin: u8,
    /// Red LED pin. Default 22.
    pub red_pin: u8,
    /// Buzzer pin. Default 23.
    pub buzzer_pin: u8,
    /// PIR motion sensor input pin that wakes the screen; none if absent. Default none.
    pub pir_pin: Option<u8>,
    /// The relay board switches on a low level (common for opto-isolated boards). Default false.
    pub relay_active_low: bool,
}

/// GPIO backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpioKind {
    /// Raspberry Pi GPIO through rppal.
    Rppal,
    /// Simulated pins.
    Sim,
}

impl Default for GpioConfig {
    fn default() -> Self {
        GpioConfig {
            kind: GpioKind::Rppal,
            relay_pin: 17,
            relay_ms: 1500,
            green_pin: 27,
            red_pin: 22,
            buzzer_pin: 23,
            pir_pin: None,
            relay_active_low: false,
        }
    }
}

/// `[badge]`: the badge reader.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BadgeConfig {
    /// "evdev" (USB keyboard-wedge reader), "mfrc522" (RC522 module on SPI) or "sim".
    /// Default "evdev".
    pub kind: BadgeKind,
    /// Input device of a keyboard-wedge reader; a /dev/input/by-id path survives re-plugging.
    /// Default "/dev/input/by-id/usb-badge-reader-event-kbd".
    pub device: PathBuf,
    /// SPI bus (0 or 1) and chip select of an MFRC522. Default 0 and 0.
    pub spi_bus: u8,
    /// SPI chip select of an MFRC522.
    pub spi_cs: u8,
}

/// Badge reader backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BadgeKind {
    /// USB keyboard-wedge reader through evdev.
    Evdev,
    /// MFRC522 13.56 MHz reader on SPI.
    Mfrc522,
    /// Simulated reader.
    Sim,
}

impl Default for BadgeConfig {
    fn default() -> Self {
        BadgeConfig {
            kind: BadgeKind::Evdev,
            device: PathBuf::from("/dev/input/by-id/usb-badge-reader-event-kbd"),
            spi_bus: 0,
            spi_cs: 0,
        }
    }
}

/// `[log]`: what goes to the journal. Logs never contain names, badge ids, PINs or images.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Least severe level written: "error", "warn", "info", "debug" or "trace".
    /// `RUST_LOG` overrides it. Default "info".
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// Log levels accepted by `log.level`.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path (`store.max_size_mb`), or empty for the file as a whole.
    pub key: String,
    /// 1-based line of the key in the file, when it could be located.
    pub line: Option<usize>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl Problem {
    /// A problem with `key` whose line in the file is not known (or there is no file).
    pub fn at(key: &str, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            line: None,
            message: message.into(),
        }
    }

    /// Formats a list of problems one per line, for error messages.
    pub fn list(problems: &[Problem]) -> String {
        problems
            .iter()
            .map(|p| format!("  - {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl Config {
    /// Reads and validates a config file, reporting every problem at once.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigRead {
            path: path.to_owned(),
            reason: match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "not found (give --config PATH; an annotated example is clockface.example.toml in the source tree)".into()
                }
                _ => e.to_string(),
            },
        })?;
        check_str(&text).map_err(|problems| Error::ConfigInvalid {
            path: path.to_owned(),
            problems,
        })
    }

    /// This config with `over` (a partial config table) merged over it, validated as a whole.
    pub fn with_overrides(&self, over: &toml::Table) -> std::result::Result<Config, Vec<Problem>> {
        let mut table = match toml::Value::try_from(self) {
            Ok(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        merge_tables(&mut table, over, "", &mut Vec::new());
        check_str(&toml::to_string(&table).expect("a TOML table serialises"))
    }

    /// Semantic checks that types alone cannot express.
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, message: String| out.push(Problem::at(key, message));
        let name_len = self.device.name.chars().count();
        if !(1..=64).contains(&name_len) {
            bad(
                "device.name",
                format!("has {name_len} characters; allowed: 1 to 64"),
            );
        }
        let site_len = self.device.site.chars().count();
        if site_len > 64 {
            bad(
                "device.site",
                format!("has {site_len} characters; allowed: 0 to 64"),
            );
        }
        if !self.store.data_dir.is_absolute() {
            bad(
                "store.data_dir",
                format!(
                    "{:?} is relative; allowed: an absolute path such as \"/var/lib/clockface\"",
                    self.store.data_dir
                ),
            );
        }
        if self.store.max_size_mb > 1 << 20 {
            bad(
                "store.max_size_mb",
                format!(
                    "{} is too large; allowed: 0 (no cap) to 1048576 (1 TiB)",
                    self.store.max_size_mb
                ),
            );
        }
        if self.policy.version == 0 {
            bad("policy.version", "is 0; allowed: 1 or more".into());
        }
        let p = &self.policy;
        if p.out_from_minute().is_none() {
            bad(
                "policy.out_from",
                format!(
                    "{:?} is not a time; allowed: \"HH:MM\", 00:00 to 23:59",
                    p.out_from
                ),
            );
        }
        for (key, v, lo, hi) in [
            ("policy.face_attempts", p.face_attempts, 1, 5),
            ("policy.capture_seconds", p.capture_seconds, 3, 30),
            ("policy.pin_seconds", p.pin_seconds, 5, 60),
            ("policy.verdict_seconds", p.verdict_seconds, 1, 15),
            ("policy.enrol_frames", p.enrol_frames, 3, 5),
            (
                "policy.anti_passback_minutes",
                p.anti_passback_minutes,
                0,
                1440,
            ),
            ("camera.fps", self.camera.fps, 1, 60),
            ("camera.width", self.camera.width, 160, 4096),
            ("camera.height", self.camera.height, 120, 4096),
            ("camera.stall_seconds", self.camera.stall_seconds, 1, 60),
            ("gpio.relay_ms", self.gpio.relay_ms, 100, 10_000),
            (
                "retention.checkin_days",
                self.retention.checkin_days,
                1,
                3650,
            ),
            (
                "retention.failed_attempt_days",
                self.retention.failed_attempt_days,
                1,
                3650,
            ),
            ("sync.batch_size", self.sync.batch_size, 1, 1000),
            ("sync.interval_seconds", self.sync.interval_seconds, 1, 3600),
            (
                "sync.backoff_max_seconds",
                self.sync.backoff_max_seconds,
                5,
                86_400,
            ),
            ("sync.timeout_seconds", self.sync.timeout_seconds, 2, 300),
        ] {
            if !(lo..=hi).contains(&v) {
                bad(key, format!("{v} is out of range; allowed: {lo} to {hi}"));
            }
        }
        if crate::ui::controller::Language::parse(&self.ui.language).is_none() {
            bad(
                "ui.language",
                format!(
                    "{:?} is not a screen language; allowed: \"en\", \"zh_CN\"",
                    self.ui.language
                ),
            );
        }
        if !self.sync.url.is_empty()
            && let Err(why) = crate::sync::client::check_url(&self.sync.url)
        {
            bad("sync.url", why);
        }
        if p.consent_text_version.is_empty() || p.consent_text_version.len() > 32 {
            bad(
                "policy.consent_text_version",
                "allowed: 1 to 32 characters".into(),
            );
        }
        let pins = [
            ("gpio.relay_pin", Some(self.gpio.relay_pin)),
            ("gpio.green_pin", Some(self.gpio.green_pin)),
            ("gpio.red_pin", Some(self.gpio.red_pin)),
            ("gpio.buzzer_pin", Some(self.gpio.buzzer_pin)),
            ("gpio.pir_pin", self.gpio.pir_pin),
        ];
        for (i, (key, pin)) in pins.iter().enumerate() {
            let Some(pin) = pin else { continue };
            if *pin > 27 {
                bad(
                    key,
                    format!("{pin} is not a header GPIO; allowed: BCM 0 to 27"),
                );
            } else if pins[..i].iter().any(|(_, other)| *other == Some(*pin)) {
                bad(key, format!("pin {pin} is already used by another output"));
            }
        }
        for (key, message) in self.vision.problems() {
            bad(key, message);
        }
        if !LOG_LEVELS.contains(&self.log.level.as_str()) {
            bad(
                "log.level",
                format!(
                    "{:?} is not a level; allowed: {}",
                    self.log.level,
                    LOG_LEVELS.join(", ")
                ),
            );
        }
        let listen = &self.health.listen;
        if !listen.is_empty() && listen.parse::<std::net::SocketAddr>().is_err() {
            bad(
                "health.listen",
                format!(
                    "{listen:?} is not an address; allowed: \"\" (off) or IP:PORT such as \"127.0.0.1:8780\""
                ),
            );
        }
        out
    }
}

/// Parses and validates config text. On failure returns every problem found, in file order
/// where lines are known.
pub fn check_str(text: &str) -> std::result::Result<Config, Vec<Problem>> {
    let mut table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let e: toml::de::Error = e;
            let line = e.span().map(|s| line_of_offset(text, s.start));
            return Err(vec![Problem {
                key: String::new(),
                line,
                message: format!("not valid TOML: {}", e.message()),
            }]);
        }
    };
    let mut problems = Vec::new();
    // Deserialize; on each failure record it, drop the offending key (its default applies) and
    // try again, so one pass reports every unknown key and wrong type rather than the first.
    for _ in 0..256 {
        let value = toml::Value::Table(table.clone());
        match serde_path_to_error::deserialize::<_, Config>(value) {
            Ok(cfg) => {
                for mut p in cfg.validate() {
                    p.line = find_key_line(text, &p.key);
                    problems.push(p);
                }
                if problems.is_empty() {
                    return Ok(cfg);
                }
                break;
            }
            Err(err) => {
                let path: Vec<String> = err
                    .path()
                    .iter()
                    .map(|seg| seg.to_string())
                    .filter(|s| s != "?")
                    .collect();
                let message = err.into_inner().message().to_string();
                let mut key_path = path.clone();
                if let Some(unknown) = unknown_field_name(&message)
                    && key_path.last().map(String::as_str) != Some(unknown.as_str())
                {
                    key_path.push(unknown);
                }
                let key = key_path.join(".");
                problems.push(Problem {
                    line: find_key_line(text, &key),
                    key,
                    message: friendlier(&message),
                });
                if !remove_key(&mut table, &key_path) {
                    break;
                }
            }
        }
    }
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    Err(problems)
}

/// Pulls the key name out of serde's "unknown field `x`, expected ..." message.
fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// Rewords serde's messages into "what is wrong; allowed: ..." form.
fn friendlier(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some(i) = rest.find("`, expected ") {
            return format!("unknown key; allowed keys here: {}", &rest[i + 12..]);
        }
        if let Some(i) = rest.find("`, there are no fields") {
            let _ = i;
            return "unknown key; this table takes no keys".into();
        }
    }
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        let expected = match expected {
            "u64" | "u32" => "a whole number, 0 or more",
            "string" | "a string" => "a quoted string",
            other => other,
        };
        return format!("wrong type: found {found}; allowed: {expected}");
    }
    message.to_string()
}

/// Removes the value at `path` from the table; false if nothing could be removed.
fn remove_key(table: &mut toml::Table, path: &[String]) -> bool {
    match path {
        [] => false,
        [last] => table.remove(last).is_some(),
        [first, rest @ ..] => match table.get_mut(first) {
            Some(toml::Value::Table(inner)) => {
                remove_key(inner, rest) || table.remove(first).is_some()
            }
            Some(_) => table.remove(first).is_some(),
            None => false,
        },
    }
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Finds the line where a dotted key is set, tracking `[table]` headers. Best effort: used only
/// to point the reader at the right line.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let (table, leaf) = match key.rsplit_once('.') {
        Some((t, l)) => (t, l),
        None => ("", key),
    };
    let mut current = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(h) = line.strip_prefix('[') {
            let h = h.trim_start_matches('[');
            current = h.split(']').next().unwrap_or("").trim().replace(' ', "");
            if current == key {
                return Some(i + 1);
            }
            continue;
        }
        if let Some((k, _)) = line.split_once('=') {
            let k = k.trim().trim_matches('"');
            let full = if current.is_empty() {
                k.to_string()
            } else {
                format!("{current}.{k}")
            };
            if full == key || (current == table && k == leaf) {
                return Some(i + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(check_str("").unwrap(), Config::default());
    }

    #[test]
    fn example_config_is_valid_and_matches_defaults() {
        let text = include_str!("../clockface.example.toml");
        assert_eq!(check_str(text).unwrap(), Config::default());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = "[device]\nname = \"\"\ncolour = \"red\"\n\n[store]\nmax_size_mb = \"big\"\ndata_dir = \"rel/dir\"\n\n[log]\nlevel = \"loud\"\n\n[extra]\nx = 1\n";
        let problems = check_str(text).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for want in [
            "device.colour",
            "store.max_size_mb",
            "extra",
            "device.name",
            "store.data_dir",
            "log.level",
        ] {
            assert!(keys.contains(&want), "missing {want} in {problems:?}");
        }
        let colour = problems.iter().find(|p| p.key == "device.colour").unwrap();
        assert_eq!(colour.line, Some(3));
        assert!(colour.message.contains("unknown key"), "{colour}");
        assert!(
            colour.message.contains("name"),
            "lists allowed keys: {colour}"
        );
        let size = problems
            .iter()
            .find(|p| p.key == "store.max_size_mb")
            .unwrap();
        assert_eq!(size.line, Some(6));
        assert!(size.message.contains("wrong type"), "{size}");
        let level = problems.iter().find(|p| p.key == "log.level").unwrap();
        assert!(level.message.contains("allowed: error, warn"), "{level}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let problems = check_str("[device]\nname = \"x\"\nsite = \n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(3));
        assert!(problems[0].message.contains("not valid TOML"));
    }
}
