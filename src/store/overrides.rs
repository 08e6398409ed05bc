//! Settings an admin changed at the kiosk, kept in the store so they survive restarts and
//! updates (the config file may sit on a read-only system). Every change is audited in the same
//! transaction. What a setting may be is decided by [`crate::store::settings`]; this only stores them.

use rusqlite::{OptionalExtension, params};

use super::Store;
use super::audit::NewAudit;
use crate::base::error::{Error, Result};

/// The `settings` row holding the changes, as a TOML table of dotted keys.
const KEY: &str = "admin_overrides";

impl Store {
    /// The settings changed at the kiosk, as a (nested) TOML table to merge over the config.
    pub fn admin_overrides(&self) -> Result<toml::Table> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [KEY], |r| {
                r.get(0)
            })
            .optional()?;
        match text {
            None => Ok(toml::Table::new()),
            Some(t) => t.parse().map_err(|e: toml::de::Error| {
                Error::invalid("stored admin settings", e.message().to_string())
            }),
        }
    }

    /// Records that `actor` set `key` (dotted, such as `gpio.relay_ms`) to `value`, `from` being
    /// the value shown before; audited as `setting_changed`.
    pub fn set_admin_override(
        &mut self,
        actor: &str,
        key: &str,
        value: toml::Value,
        from: &str,
    ) -> Result<()> {
        let mut table = self.admin_overrides()?;
        let mut at = &mut table;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                at.insert(part.to_string(), value.clone());
                break;
            }
            at = at
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| {
                    Error::invalid("stored admin settings", format!("{part} is not a table"))
                })?;
        }
        let text = toml::to_string(&table).expect("a TOML table serialises");
        let mut audit = NewAudit::new(actor, "setting_changed", key);
        let shown = match &value {
            toml::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        audit.detail = serde_json::json!({ "from": from, "to": shown }).to_string();
        self.audited(&audit, |tx, _, _| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                params![KEY, text],
            )?;
            Ok(())
        })
    }
}
