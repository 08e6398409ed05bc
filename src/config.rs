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
    /// Diagnostics.
    pub log: LogConfig,
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
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig { version: 1 }
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

    /// Semantic checks that types alone cannot express.
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, message: String| {
            out.push(Problem {
                key: key.into(),
                line: None,
                message,
            })
        };
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
