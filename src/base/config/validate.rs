//! The rules a config must keep beyond its types: ranges, lengths, pin clashes, URLs, languages.
//! Every rule names the key and what is allowed; all problems are returned at once.

use url::Url;

use super::sections::{Config, LOG_LEVELS, Language};
use crate::base::problem::Problem;

impl Config {
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
        for (key, v) in [
            ("device.name", &self.device.name),
            ("device.site", &self.device.site),
        ] {
            if let Some(why) = crate::base::text::unprintable(v) {
                bad(key, why);
            }
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
            ("policy.consent_grace_days", p.consent_grace_days, 0, 365),
            ("policy.minor_age", p.minor_age, 1, 21),
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
        if Language::parse(&self.ui.language).is_none() {
            bad(
                "ui.language",
                format!(
                    "{:?} is not a screen language; allowed: \"en\", \"zh_CN\"",
                    self.ui.language
                ),
            );
        }
        if !self.sync.url.is_empty()
            && let Err(why) = check_url(&self.sync.url)
        {
            bad("sync.url", why);
        }
        if p.consent_text_version.is_empty() || p.consent_text_version.len() > 32 {
            bad(
                "policy.consent_text_version",
                "allowed: 1 to 32 characters".into(),
            );
        }
        if let Some(why) = crate::base::text::unprintable(&p.consent_change_summary) {
            bad("policy.consent_change_summary", why);
        }
        if p.consent_change_summary.chars().count() > 500 {
            bad(
                "policy.consent_change_summary",
                "allowed: up to 500 characters".into(),
            );
        }
        if let Err(why) = check_region(&self.privacy.data_region) {
            bad("privacy.data_region", why);
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
        for (key, listen, example) in [
            ("health.listen", &self.health.listen, "127.0.0.1:8780"),
            ("zk.listen", &self.zk.listen, "192.168.1.20:4370"),
        ] {
            if !listen.is_empty() && listen.parse::<std::net::SocketAddr>().is_err() {
                bad(
                    key,
                    format!(
                        "{listen:?} is not an address; allowed: \"\" (off) or IP:PORT such as \"{example}\""
                    ),
                );
            }
        }
        if let Err(e) = crate::base::zone::SiteZone::from_config(&self.site.time_zone) {
            bad("site.time_zone", e.to_string());
        }
        let zk = &self.zk;
        let ranges = [
            ("zk.comm_key", zk.comm_key, 0, 999_999),
            ("zk.max_connections", zk.max_connections, 1, 256),
            ("zk.disable_seconds", zk.disable_seconds, 10, 3600),
            ("zk.idle_seconds", zk.idle_seconds, 5, 3600),
            ("adms.batch_size", self.adms.batch_size, 1, 10_000),
            ("adms.timeout_seconds", self.adms.timeout_seconds, 1, 300),
            (
                "adms.backoff_max_seconds",
                self.adms.backoff_max_seconds,
                1,
                3600,
            ),
        ];
        for (key, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                bad(key, format!("{v} is out of range; allowed: {lo} to {hi}"));
            }
        }
        for (key, v) in [
            ("zk.serial", &zk.serial),
            ("adms.serial", &self.adms.serial),
        ] {
            if !v.is_empty()
                && let Err(why) = super::check_serial(v)
            {
                bad(key, why);
            }
        }
        if zk.device_name.is_empty()
            || zk.device_name.len() > 32
            || crate::base::text::unprintable(&zk.device_name).is_some()
        {
            bad(
                "zk.device_name",
                "allowed: 1 to 32 bytes of printable text".into(),
            );
        }
        // ADMS servers on a site LAN are mostly plain http, as the terminals they serve are:
        // allowed here, unlike the hub's sync, because the punches it carries are copies; the
        // signed records stay on the kiosk and go to the hub.
        if !self.adms.url.is_empty() {
            match Url::parse(&self.adms.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => bad(
                    "adms.url",
                    format!(
                        "{:?} is not an http(s) URL with a host, such as \"http://hr.example.com:8081\"",
                        self.adms.url
                    ),
                ),
            }
        }
        self.update.validate(&mut out);
        out
    }
}

/// Checks that a backend URL is usable: http(s), https unless the host is loopback.
pub fn check_url(url: &str) -> Result<Url, String> {
    let u = Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    match u.scheme() {
        "https" => {}
        "http" if is_loopback(&u) => {}
        "http" => {
            return Err(format!(
                "{url:?} uses plain http to a non-loopback host; allowed: https (http only for 127.0.0.1, ::1 or localhost)"
            ));
        }
        s => return Err(format!("{url:?} has scheme {s:?}; allowed: https")),
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(u)
}

fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// A data-region label: 0–32 characters of lower-case letters, digits, `-`, `_` and `.`, so
/// that comparing two labels never depends on case or spelling tricks.
pub fn check_region(region: &str) -> std::result::Result<(), String> {
    let ok = region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{region:?} is not a region label; allowed: up to 32 of a-z 0-9 - _ ."
        ))
    }
}
