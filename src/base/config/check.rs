//! Reading config text: TOML parsing, serde's errors reworded and located by line, unknown keys
//! and wrong types collected in one pass, and layering partial tables (provisioning, settings
//! changed at the kiosk) over a config.

use std::path::Path;

use super::sections::Config;
use crate::base::error::{Error, Result};
use crate::base::problem::Problem;

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
        let text = include_str!("../../../clockface.example.toml");
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
