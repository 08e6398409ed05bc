//! Reading HR's roster exports, minimised: whatever columns the HR system writes, only those on
//! the allow-list are read, and the names of the others are reported back, never stored.
//!
//! The check is by column name, against [`ALLOWED`]; nothing is guessed from the values. A
//! national ID number in a column called `staff_ref` is dropped because `staff_ref` is not on
//! the list, not because it looks like an ID. A column on the list holds what the list says
//! (`id` is the payroll number the kiosks show): the HR export is set up to match.

use std::collections::BTreeSet;
use std::path::Path;

use crate::base::error::{Error, Result};
use crate::base::protocol::{ConsentScope, RosterConsent, RosterEmployee};

/// The only columns (CSV) or fields (JSON) an import reads.
pub const ALLOWED: &[&str] = &[
    "id",
    "display_name",
    "active",
    "is_admin",
    "badges",
    "consent",
    "consent_version",
    "consent_scope",
    "sites",
    "birth_year",
    "is_minor",
    "templates",
];

/// Reads a roster file, CSV (header row) or JSON (an array of roster employees), and names
/// the columns it left out.
pub fn read_roster_file(file: &Path) -> Result<(Vec<RosterEmployee>, BTreeSet<String>)> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::invalid(&name, format!("cannot read: {e}")))?;
    match file.extension().and_then(|e| e.to_str()) {
        Some("json") => read_json(&name, &text),
        Some("csv") => read_csv(&name, &text),
        _ => Err(Error::invalid(&name, "must end in .csv or .json")),
    }
}

fn read_json(name: &str, text: &str) -> Result<(Vec<RosterEmployee>, BTreeSet<String>)> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::invalid(name, e.to_string()))?;
    let serde_json::Value::Array(items) = value else {
        return Err(Error::invalid(name, "must be a JSON array of employees"));
    };
    let mut dropped = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let serde_json::Value::Object(mut obj) = item else {
            return Err(Error::invalid(format!("{name} [{i}]"), "must be an object"));
        };
        obj.retain(|k, _| {
            let keep = ALLOWED.contains(&k.as_str());
            if !keep {
                dropped.insert(k.clone());
            }
            keep
        });
        // The JSON form carries consent as one object, like the protocol.
        let e: RosterEmployee = serde_path_to_error::deserialize(serde_json::Value::Object(obj))
            .map_err(|e| {
                Error::invalid(
                    format!("{name} [{i}]"),
                    format!("at {}: {}", e.path(), e.inner()),
                )
            })?;
        out.push(e);
    }
    Ok((out, dropped))
}

fn flag(cell: &str, what: &str, at: &str, default: Option<bool>) -> Result<Option<bool>> {
    match cell.to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "yes" | "true" | "1" => Ok(Some(true)),
        "no" | "false" | "0" => Ok(Some(false)),
        other => Err(Error::invalid(
            format!("{at} {what}"),
            format!("{other:?}; allowed: yes, no or empty"),
        )),
    }
}

/// A `;`-separated CSV cell as its items, blanks dropped.
fn split_list(cell: &str) -> Vec<String> {
    cell.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn read_csv(name: &str, text: &str) -> Result<(Vec<RosterEmployee>, BTreeSet<String>)> {
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = r
        .headers()
        .map_err(|e| Error::invalid(name, e.to_string()))?
        .clone();
    let mut dropped = BTreeSet::new();
    let mut col = std::collections::HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if ALLOWED.contains(&h) && h != "templates" {
            if col.insert(h.to_owned(), i).is_some() {
                return Err(Error::invalid(name, format!("column {h:?} appears twice")));
            }
        } else {
            dropped.insert(h.to_owned());
        }
    }
    for required in ["id", "display_name"] {
        if !col.contains_key(required) {
            return Err(Error::invalid(
                name,
                format!(
                    "has no {required:?} column (allowed: {})",
                    ALLOWED.join(", ")
                ),
            ));
        }
    }
    let mut out = Vec::new();
    for (i, row) in r.records().enumerate() {
        let at = format!("{name} row {}", i + 2);
        let row = row.map_err(|e| Error::invalid(&at, e.to_string()))?;
        let cell = |c: &str| col.get(c).and_then(|&i| row.get(i)).unwrap_or("");
        let consent = flag(cell("consent"), "consent", &at, None)?;
        let scope = match cell("consent_scope") {
            "" => ConsentScope::Device,
            s => ConsentScope::parse(s).ok_or_else(|| {
                Error::invalid(
                    format!("{at} consent_scope"),
                    format!("{s:?}; allowed: device, site or empty"),
                )
            })?,
        };
        let birth_year = match cell("birth_year") {
            "" => None,
            s => Some(s.parse::<u16>().map_err(|_| {
                Error::invalid(
                    format!("{at} birth_year"),
                    format!("{s:?} is not a year (only the year is kept, never a date)"),
                )
            })?),
        };
        out.push(RosterEmployee {
            id: cell("id").to_owned(),
            display_name: cell("display_name").to_owned(),
            active: flag(cell("active"), "active", &at, Some(true))?.unwrap_or(true),
            is_admin: flag(cell("is_admin"), "is_admin", &at, Some(false))?.unwrap_or(false),
            badges: split_list(cell("badges")),
            consent: consent.map(|given| RosterConsent {
                given,
                text_version: match cell("consent_version") {
                    "" => "backend".into(),
                    v => v.to_owned(),
                },
                scope,
            }),
            templates: Vec::new(),
            birth_year,
            is_minor: flag(cell("is_minor"), "is_minor", &at, None)?,
            sites: split_list(cell("sites")),
        });
    }
    Ok((out, dropped))
}
