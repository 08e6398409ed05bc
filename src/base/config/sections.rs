//! The config file's sections and their defaults: plain data, one struct per `[table]`.
//!
//! Every field carries a doc comment saying why it exists; [`super::validate`] holds the rules
//! types alone cannot express, [`super::check`] the parsing that reports every problem at once.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::integrations::{AdmsConfig, SiteConfig, ZkConfig};
use super::update::UpdateConfig;
use super::vision::VisionConfig;

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
    pub vision: VisionConfig,
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
    /// Where this kiosk's data may live.
    pub privacy: PrivacyConfig,
    /// The site's time zone.
    pub site: SiteConfig,
    /// The ZKTeco device side (TCP 4370) for HR tools that pull punches.
    pub zk: ZkConfig,
    /// ADMS/iclock push of punches to an HR server.
    pub adms: AdmsConfig,
    /// Updates from a hawkBit DDI fleet server.
    pub update: UpdateConfig,
}

/// `[privacy]`: the data-residency label this kiosk was provisioned with.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Region whose backend may hold this kiosk's data ("eu-west", "cn-north"), sent when
    /// pairing: a hub labelled with another region refuses the kiosk unless it allows
    /// cross-region storage. 0–32 characters of `a-z 0-9 - _ .`; "" names no region. Default "".
    pub data_region: String,
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
    pub fn policy(&self) -> RetentionPolicy {
        RetentionPolicy {
            checkin_days: self.checkin_days,
            failed_attempt_days: self.failed_attempt_days,
        }
    }
}

/// Retention periods, from `[retention]` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Days an accepted check-in is kept after the backend acknowledged it.
    pub checkin_days: u32,
    /// Days a failed attempt is kept after it was made.
    pub failed_attempt_days: u32,
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
    /// What changed since the previous consent text, shown once with a new version at each
    /// enrolled person's next check-in. Up to 500 characters. Default "".
    pub consent_change_summary: String,
    /// Days face check-in goes on under an older consent version after this kiosk first saw
    /// the new one; past it, the person's face is not used until they accept. 0–365.
    /// Default 30.
    pub consent_grace_days: u32,
    /// Whether a person may consent to scope "site": their template goes to the backend and
    /// every kiosk of this site. When false, only "device" (this kiosk alone). Default true.
    pub site_scope_allowed: bool,
    /// Age under which a person is a minor here, whose face enrolment needs a recorded
    /// guardian consent (PIPL art. 31 sets 14; GDPR art. 8 lets states choose 13–16). With
    /// only a birth year known, anyone who may still be under it counts as a minor. 1–21.
    /// Default 14.
    pub minor_age: u32,
    /// With `direction = "ask"`: offer Break start and Break end. Default false.
    #[serde(default)]
    pub break_punches: bool,
    /// With `direction = "ask"`: offer Overtime in and Overtime out. Default false.
    #[serde(default)]
    pub overtime_punches: bool,
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
    /// The person picks on the touchscreen: In and Out, and Break start/end and Overtime
    /// in/out where `break_punches` / `overtime_punches` allow them. Until they pick, the
    /// schedule's choice stands.
    Ask,
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
            consent_change_summary: String::new(),
            consent_grace_days: 30,
            site_scope_allowed: true,
            minor_age: 14,
            break_punches: false,
            overtime_punches: false,
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

/// Screen language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// English (the source strings).
    #[default]
    English,
    /// Simplified Chinese (`translations/zh_CN`).
    SimplifiedChinese,
}

impl Language {
    /// The bundled-translation name Slint selects ("" is the source language).
    pub fn slint_name(self) -> &'static str {
        match self {
            Language::English => "",
            Language::SimplifiedChinese => "zh_CN",
        }
    }

    /// Parses a config value: "en" or "zh_CN" (also "zh", "zh-CN").
    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "en" | "" => Some(Language::English),
            "zh_CN" | "zh-CN" | "zh" => Some(Language::SimplifiedChinese),
            _ => None,
        }
    }
}
