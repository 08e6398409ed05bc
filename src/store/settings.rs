//! The settings a site admin may change on the touchscreen, what kind of value each takes, and
//! how a change is checked, stored and turned into the configuration in force.
//!
//! The config file is the fleet's (written by provisioning, on a read-only system in the
//! appliance); changes made at the kiosk are kept in the store ([`Store::admin_overrides`]) and
//! merged over it. A change is validated as a whole config would be — the same rules, the same
//! messages as `clockface config check` — audited, and then reloaded by the running kiosk
//! without a restart. This module owns that policy; it must not touch the screens.

use crate::base::config::Config;
use crate::base::error::{Error, Result};
use crate::base::problem::Problem;
use crate::store::Store;

/// What kind of value a setting takes, and so which editor the screen shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Free text typed on the on-screen keyboard, up to `max` characters.
    Text {
        /// Longest value.
        max: usize,
    },
    /// A number changed with − and + in steps.
    Number {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
        /// One press of − or +.
        step: f64,
        /// Decimals shown and stored.
        decimals: usize,
    },
    /// One of a few values.
    Choice(&'static [&'static str]),
    /// A time of day, HH:MM, in steps of 15 minutes.
    Time,
}

/// One editable setting: its config key and kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    /// Dotted config key (`gpio.relay_ms`); also the code the screens translate.
    pub key: &'static str,
    /// Its editor.
    pub kind: Kind,
}

/// The settings the settings page lists, in order.
pub const EDITABLE: &[Setting] = &[
    Setting {
        key: "device.name",
        kind: Kind::Text { max: 64 },
    },
    Setting {
        key: "device.site",
        kind: Kind::Text { max: 64 },
    },
    Setting {
        key: "sync.url",
        kind: Kind::Text { max: 200 },
    },
    Setting {
        key: "gpio.relay_ms",
        kind: Kind::Number {
            min: 100.0,
            max: 10_000.0,
            step: 100.0,
            decimals: 0,
        },
    },
    Setting {
        key: "vision.match_threshold",
        kind: Kind::Number {
            min: 0.2,
            max: 0.95,
            step: 0.01,
            decimals: 2,
        },
    },
    Setting {
        key: "vision.liveness_threshold",
        kind: Kind::Number {
            min: 0.05,
            max: 0.6,
            step: 0.01,
            decimals: 2,
        },
    },
    Setting {
        key: "policy.direction",
        kind: Kind::Choice(&["in", "out", "auto", "schedule"]),
    },
    Setting {
        key: "policy.out_from",
        kind: Kind::Time,
    },
    Setting {
        key: "ui.language",
        kind: Kind::Choice(&["en", "zh_CN"]),
    },
];

/// The setting for `key`, if admins may change it.
pub fn find(key: &str) -> Option<&'static Setting> {
    EDITABLE.iter().find(|s| s.key == key)
}

/// The value in force, as the editor shows it.
pub fn current(cfg: &Config, key: &str) -> String {
    match key {
        "device.name" => cfg.device.name.clone(),
        "device.site" => cfg.device.site.clone(),
        "sync.url" => cfg.sync.url.clone(),
        "gpio.relay_ms" => cfg.gpio.relay_ms.to_string(),
        "vision.match_threshold" => format!("{:.2}", cfg.vision.match_threshold()),
        "vision.liveness_threshold" => format!("{:.2}", cfg.vision.liveness_threshold),
        "policy.direction" => serde_plain(&cfg.policy.direction),
        "policy.out_from" => cfg.policy.out_from.clone(),
        "ui.language" => cfg.ui.language.clone(),
        _ => String::new(),
    }
}

fn serde_plain<T: serde::Serialize>(v: &T) -> String {
    match toml::Value::try_from(v) {
        Ok(toml::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// One press of − (`dir` < 0) or + on a number or time editor; other kinds are unchanged.
/// The result stays within the setting's range.
pub fn step(s: &Setting, value: &str, dir: i32) -> String {
    match s.kind {
        Kind::Number {
            min,
            max,
            step,
            decimals,
        } => {
            let v = value.trim().parse::<f64>().unwrap_or(min);
            let n = ((v + step * dir.signum() as f64) / step).round() * step;
            format!("{:.*}", decimals, n.clamp(min, max))
        }
        Kind::Time => {
            let minutes = value
                .split_once(':')
                .and_then(|(h, m)| Some(h.parse::<i32>().ok()? * 60 + m.parse::<i32>().ok()?))
                .unwrap_or(12 * 60);
            let m = ((minutes / 15 + dir.signum()) * 15).rem_euclid(24 * 60);
            format!("{:02}:{:02}", m / 60, m % 60)
        }
        _ => value.to_string(),
    }
}

/// The text an admin entered, as the TOML value the config takes.
fn to_value(s: &Setting, text: &str) -> std::result::Result<toml::Value, String> {
    Ok(match s.kind {
        Kind::Text { max } => {
            let n = text.chars().count();
            if n > max {
                return Err(format!("has {n} characters; allowed: up to {max}"));
            }
            toml::Value::String(text.to_string())
        }
        Kind::Number { decimals: 0, .. } => toml::Value::Integer(
            text.trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a whole number"))?,
        ),
        Kind::Number { .. } => toml::Value::Float(
            text.trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a number"))?,
        ),
        Kind::Choice(options) => {
            if !options.contains(&text) {
                return Err(format!("{text:?}; allowed: {}", options.join(", ")));
            }
            toml::Value::String(text.to_string())
        }
        Kind::Time => toml::Value::String(text.to_string()),
    })
}

/// The configuration in force: the file's, with the changes made at the kiosk merged over it,
/// and the backend's policy in place of `[policy]` once the backend sent one. Every reader of
/// the configuration (the runner, the outbox, the admin pages, `clockface run`) calls this, so
/// they cannot disagree. A stored change that no longer validates (say, after an update
/// tightened a range) is left out, loudly, rather than stopping the kiosk.
pub fn effective(file: &Config, store: &Store) -> Result<Config> {
    let overrides = store.admin_overrides()?;
    let mut cfg = if overrides.is_empty() {
        file.clone()
    } else {
        match file.with_overrides(&overrides) {
            Ok(cfg) => cfg,
            Err(problems) => {
                tracing::error!(
                    problems = %Problem::list(&problems),
                    "settings changed at the kiosk no longer validate; using the config file's"
                );
                file.clone()
            }
        }
    };
    if let Some(doc) = store.backend_policy()? {
        cfg.policy = doc.policy;
    }
    Ok(cfg)
}

/// Sets `key` to `text` for `actor` (an admin's employee id): checks it as part of the whole
/// config, stores and audits it, and returns the configuration now in force. On a problem
/// nothing is stored and the error names the key, the value and what is allowed.
pub fn change(
    store: &mut Store,
    file: &Config,
    actor: &str,
    key: &str,
    text: &str,
) -> Result<Config> {
    let invalid = |message: String| Error::ConfigInvalid {
        path: "the settings page".into(),
        problems: vec![Problem::at(key, message)],
    };
    let s = find(key).ok_or_else(|| invalid("cannot be changed at the kiosk".into()))?;
    let value = to_value(s, text).map_err(invalid)?;
    if key.starts_with("policy.") && store.backend_policy()?.is_some() {
        return Err(invalid(
            "is set by the backend's policy; change it there".into(),
        ));
    }
    let before = effective(file, store)?;
    let mut overrides = store.admin_overrides()?;
    let mut single = toml::Table::new();
    let (section, field) = key.split_once('.').expect("dotted key");
    let mut inner = toml::Table::new();
    inner.insert(field.to_string(), value.clone());
    single.insert(section.to_string(), toml::Value::Table(inner));
    crate::base::config::merge_tables(&mut overrides, &single, "", &mut Vec::new());
    file.with_overrides(&overrides)
        .map_err(|problems| Error::ConfigInvalid {
            path: "the settings page".into(),
            problems,
        })?;
    store.set_admin_override(actor, key, value, &current(&before, key))?;
    tracing::info!(key, "setting changed at the kiosk");
    effective(file, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_stay_in_range_and_on_the_grid() {
        let relay = find("gpio.relay_ms").unwrap();
        assert_eq!(step(relay, "1500", 1), "1600");
        assert_eq!(step(relay, "100", -1), "100");
        assert_eq!(step(relay, "9990", 1), "10000");
        let thr = find("vision.match_threshold").unwrap();
        assert_eq!(step(thr, "0.50", 1), "0.51");
        assert_eq!(step(thr, "0.20", -1), "0.20");
        let t = find("policy.out_from").unwrap();
        assert_eq!(step(t, "12:00", 1), "12:15");
        assert_eq!(step(t, "00:00", -1), "23:45");
        assert_eq!(step(t, "23:50", 1), "00:00");
    }

    #[test]
    fn every_editable_key_is_a_real_config_key() {
        let cfg = Config::default();
        for s in EDITABLE {
            let shown = current(&cfg, s.key);
            if !matches!(s.kind, Kind::Text { .. }) {
                assert!(!shown.is_empty(), "{} shows nothing", s.key);
            }
            // Setting it to what it is validates.
            let mut t = toml::Table::new();
            let (sec, field) = s.key.split_once('.').unwrap();
            let mut inner = toml::Table::new();
            inner.insert(field.into(), to_value(s, &shown).unwrap());
            t.insert(sec.into(), toml::Value::Table(inner));
            let after = cfg
                .with_overrides(&t)
                .unwrap_or_else(|p| panic!("{}: {p:?}", s.key));
            assert_eq!(current(&after, s.key), shown, "{}", s.key);
        }
    }
}
