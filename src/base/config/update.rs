//! `[update]`: the hawkBit DDI client that takes signed RAUC bundles from a fleet server
//! (Eclipse hawkBit, gooseBit, or another server of the same API). Off by default.

use serde::{Deserialize, Serialize};

use crate::base::problem::Problem;

/// `[update]`: where the fleet server is, who this kiosk is to it, and when it may reboot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateConfig {
    /// Server base URL, such as "https://hawkbit.example.com" (the client adds
    /// `/{tenant}/controller/v1/{controller_id}`). "" = off. Default "".
    pub server: String,
    /// The server's tenant. Default "DEFAULT".
    pub tenant: String,
    /// The controller id the server knows this kiosk by. "" = the device id. Default "".
    pub controller_id: String,
    /// File (0600) holding this kiosk's target security token, sent as `TargetToken`.
    /// Default "".
    pub token_file: String,
    /// File (0600) holding the tenant's gateway token, sent as `GatewayToken`, when the
    /// server does not issue target tokens. Default "".
    pub gateway_token_file: String,
    /// Seconds between polls when the server names none, 10–86400. Default 300.
    pub poll_seconds: u32,
    /// When the kiosk may reboot into an update, site local time: "HH:MM-HH:MM" (may cross
    /// midnight) or "any". A forced action reboots now. Default "02:00-04:00".
    pub window: String,
    /// Where bundles are downloaded and the client's state is kept (it must survive a
    /// reboot and an update: the data partition). Default "/var/lib/clockface-update".
    pub state_dir: String,
    /// How updates are installed: "rauc" (the appliance) or "sim" (a simulated A/B pair in
    /// `state_dir`, for the demo and tests, with the bundle's signature checked by `rauc info`).
    /// Default "rauc".
    pub installer: String,
    /// CA keyring the "sim" installer checks bundles against. Default "/etc/rauc/keyring.pem".
    pub keyring: String,
    /// The compatible string bundles must carry ("" = read from /etc/rauc/system.conf).
    /// Default "".
    pub compatible: String,
    /// The kiosk's health endpoint, asked whether a check-in is under way before a reboot
    /// ("" = the `[health] listen` address). Default "".
    pub kiosk_health: String,
    /// The file whose presence makes the kiosk show "update under way" and take no check-in
    /// (the update unit's runtime directory). Default "/run/clockface-update/notice".
    pub notice_file: String,
    /// Request timeout in seconds; a download that moves no byte for this long is retried
    /// from where it stopped. 5–600. Default 30.
    pub timeout_seconds: u32,
    /// Allow a plain http server that is not on loopback. Bundles are signed either way, but
    /// the token crosses the network in clear: for a lab or an emulator only. Default false.
    pub allow_plain_http: bool,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            server: String::new(),
            tenant: "DEFAULT".into(),
            controller_id: String::new(),
            token_file: String::new(),
            gateway_token_file: String::new(),
            poll_seconds: 300,
            window: "02:00-04:00".into(),
            state_dir: "/var/lib/clockface-update".into(),
            installer: "rauc".into(),
            keyring: "/etc/rauc/keyring.pem".into(),
            compatible: String::new(),
            kiosk_health: String::new(),
            notice_file: "/run/clockface-update/notice".into(),
            timeout_seconds: 30,
            allow_plain_http: false,
        }
    }
}

/// A maintenance window in minutes of the local day: `[start, end)`, crossing midnight when
/// `end <= start`; None means any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window(pub Option<(u32, u32)>);

impl Window {
    /// Parses "HH:MM-HH:MM" or "any".
    pub fn parse(s: &str) -> Result<Window, String> {
        if s == "any" {
            return Ok(Window(None));
        }
        let hm = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60 && t.trim().len() == 5).then_some(h * 60 + m)
        };
        match s.split_once('-').map(|(a, b)| (hm(a), hm(b))) {
            Some((Some(a), Some(b))) if a != b => Ok(Window(Some((a, b)))),
            _ => Err(format!(
                "{s:?} is not a window; allowed: \"HH:MM-HH:MM\" (two different times) or \"any\""
            )),
        }
    }

    /// Whether `minute` (0–1439 of the local day) is inside.
    pub fn contains(&self, minute: u32) -> bool {
        match self.0 {
            None => true,
            Some((a, b)) if a < b => (a..b).contains(&minute),
            Some((a, b)) => minute >= a || minute < b,
        }
    }
}

impl UpdateConfig {
    /// The rules beyond types, each naming its key.
    pub fn validate(&self, out: &mut Vec<Problem>) {
        let mut bad = |key: &str, message: String| out.push(Problem::at(key, message));
        if !(10..=86_400).contains(&self.poll_seconds) {
            bad(
                "update.poll_seconds",
                format!(
                    "{} is out of range; allowed: 10 to 86400",
                    self.poll_seconds
                ),
            );
        }
        if !(5..=600).contains(&self.timeout_seconds) {
            bad(
                "update.timeout_seconds",
                format!(
                    "{} is out of range; allowed: 5 to 600",
                    self.timeout_seconds
                ),
            );
        }
        if let Err(e) = Window::parse(&self.window) {
            bad("update.window", e);
        }
        if !matches!(self.installer.as_str(), "rauc" | "sim") {
            bad(
                "update.installer",
                format!("{:?}; allowed: \"rauc\" or \"sim\"", self.installer),
            );
        }
        let id_ok = |s: &str| {
            s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        for (key, v) in [
            ("update.tenant", &self.tenant),
            ("update.controller_id", &self.controller_id),
        ] {
            if !id_ok(v) || (key == "update.tenant" && v.is_empty()) {
                bad(
                    key,
                    format!("{v:?}; allowed: up to 64 of A-Z a-z 0-9 - _ ."),
                );
            }
        }
        if self.server.is_empty() {
            return;
        }
        match url::Url::parse(&self.server) {
            Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
            Ok(u) if u.scheme() == "http" && u.host_str().is_some() => {
                if super::check_url(&self.server).is_err() && !self.allow_plain_http {
                    bad(
                        "update.server",
                        format!(
                            "{:?} is plain http to a host that is not loopback, and the token would cross in clear; use https, or set update.allow_plain_http = true for a lab",
                            self.server
                        ),
                    );
                }
            }
            _ => bad(
                "update.server",
                format!(
                    "{:?} is not an http(s) URL with a host, such as \"https://hawkbit.example.com\"",
                    self.server
                ),
            ),
        }
        if !self.token_file.is_empty() && !self.gateway_token_file.is_empty() {
            bad(
                "update.gateway_token_file",
                "set either update.token_file or update.gateway_token_file, not both".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_may_cross_midnight() {
        let w = Window::parse("02:00-04:00").unwrap();
        assert!(w.contains(120) && w.contains(239) && !w.contains(240) && !w.contains(60));
        let night = Window::parse("23:30-01:00").unwrap();
        assert!(night.contains(23 * 60 + 45) && night.contains(30) && !night.contains(61));
        assert!(Window::parse("any").unwrap().contains(777));
        for bad in ["2:00-4:00", "02:00", "02:00-02:00", "25:00-01:00", "now"] {
            assert!(Window::parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn plain_http_needs_an_explicit_yes() {
        let mut c = UpdateConfig {
            server: "http://10.0.2.2:60053".into(),
            ..UpdateConfig::default()
        };
        let mut out = Vec::new();
        c.validate(&mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].to_string().contains("update.server"), "{}", out[0]);
        c.allow_plain_http = true;
        let mut out = Vec::new();
        c.validate(&mut out);
        assert!(out.is_empty(), "{out:?}");
        c.server = "http://127.0.0.1:1".into();
        c.allow_plain_http = false;
        c.validate(&mut out);
        assert!(out.is_empty(), "{out:?}");
    }
}
