//! `[site]`, `[zk]` and `[adms]`: the site's time zone and the two ways HR systems that read
//! ZKTeco terminals get punches from this kiosk (they pull over ZK TCP 4370, or the kiosk
//! pushes over ADMS/iclock HTTP). Both integrations are off by default.

use serde::{Deserialize, Serialize};

/// `[site]`: where the kiosk stands.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    /// IANA time zone of the site ("Asia/Shanghai"). Records keep UTC; the screen, exports, ZK
    /// and ADMS show this zone's local time. "" = the system's zone. Default "".
    pub time_zone: String,
}

/// `[zk]`: the ZKTeco device side on TCP, for HR tools that pull punches (pyzk and the like).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ZkConfig {
    /// Address to serve on, such as "192.168.1.20:4370"; the server binds this address only.
    /// "" = off. Default "".
    pub listen: String,
    /// The terminal's communication key (0–999999, 0 = none), as HR tools send it.
    pub comm_key: u32,
    /// `~DeviceName` reported to clients. Default "Clockface".
    pub device_name: String,
    /// `~SerialNumber` reported to clients, 1–32 of `A-Z a-z 0-9 - _`. "" = derived from the
    /// device id. Default "".
    pub serial: String,
    /// Whether a client may set the kiosk's clock (it is audited). Default false: the kiosk's
    /// time comes from NTP.
    pub allow_set_time: bool,
    /// Most client sessions served at once, 1–256; more are refused at accept. Default 16.
    pub max_connections: u32,
    /// Seconds a client's "disable device" pauses check-ins before the kiosk re-enables itself,
    /// 10–3600. Default 300.
    pub disable_seconds: u32,
    /// Seconds a session may stay silent before it is closed, 5–3600. Default 60.
    pub idle_seconds: u32,
}

impl Default for ZkConfig {
    fn default() -> Self {
        ZkConfig {
            listen: String::new(),
            comm_key: 0,
            device_name: "Clockface".into(),
            serial: String::new(),
            allow_set_time: false,
            max_connections: 16,
            disable_seconds: 300,
            idle_seconds: 60,
        }
    }
}

/// `[adms]`: push accepted check-ins to an ADMS/iclock server (`/iclock/cdata`), a second
/// outbox beside the hub's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdmsConfig {
    /// Server base URL, such as "http://hr.example.com:8081" (the kiosk adds `/iclock/...`).
    /// "" = off. Default "".
    pub url: String,
    /// Serial number (`SN=`) the server knows this kiosk by; "" = the same as `[zk] serial`
    /// or derived from the device id. Default "".
    pub serial: String,
    /// Records per ATTLOG upload, 1–10000. Default 500.
    pub batch_size: u32,
    /// Request timeout in seconds, 1–300. Default 20.
    pub timeout_seconds: u32,
    /// Longest back-off after errors, in seconds (the server's `ErrorDelay` may ask for less).
    /// 1–3600. Default 300.
    pub backoff_max_seconds: u32,
}

impl Default for AdmsConfig {
    fn default() -> Self {
        AdmsConfig {
            url: String::new(),
            serial: String::new(),
            batch_size: 500,
            timeout_seconds: 20,
            backoff_max_seconds: 300,
        }
    }
}

/// Checks a terminal serial number: what ZK and ADMS clients accept as `SN`.
pub fn check_serial(s: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a serial number; allowed: 1 to 32 of A-Z a-z 0-9 - _"
        ))
    }
}
