//! What the admin pages list, read from the store and the config. Nothing here writes except
//! the retention purge, which goes through the store's audited purge.

use super::state::{PageId, RowData};
use crate::base::config::Config;
use crate::store::Store;
use crate::store::export::rfc3339_ms;

/// Where the admin pages get their rows, and where settings changes go.
pub trait AdminSource {
    /// The rows of an admin page (titles are codes the page translates) and a notice code
    /// ("" for none).
    fn rows(&mut self, page: PageId, search: &str) -> (Vec<RowData>, String);
    /// Runs the retention purge now; returns a notice code ("purged" or "purge_failed").
    fn purge(&mut self) -> String;
    /// The value in force of an editable setting, as its editor starts.
    fn current(&mut self, key: &str) -> String;
    /// Checks, stores and audits a setting `actor` entered; `Err` says what is wrong.
    fn save(&mut self, actor: &str, key: &str, value: &str) -> Result<(), String>;
}

/// The real source: the kiosk's store and config.
pub struct StoreAdmin {
    /// A connection of the UI's own.
    pub store: Store,
    /// The config file's settings (changes made at the kiosk are merged over them).
    pub config: Config,
    /// Told when a setting changed, so the kiosk core reloads it.
    pub changed: Option<tokio::sync::mpsc::UnboundedSender<crate::kiosk::runner::UiInput>>,
}

/// The label code (translated by the pages' `Words.label`) of an editable setting.
pub fn label_code(key: &str) -> &'static str {
    match key {
        "device.name" => "device_name",
        "device.site" => "site",
        "sync.url" => "backend_url",
        "gpio.relay_ms" => "relay",
        "vision.match_threshold" => "match_threshold",
        "vision.liveness_threshold" => "liveness_threshold",
        "policy.direction" => "direction",
        "policy.out_from" => "out_from",
        "ui.language" => "language",
        _ => "",
    }
}

fn row(title: &str, detail: impl Into<String>) -> RowData {
    RowData {
        id: String::new(),
        title: title.into(),
        detail: detail.into(),
    }
}

fn when(ms: Option<i64>) -> String {
    ms.map_or("—".into(), rfc3339_ms)
}

impl StoreAdmin {
    fn try_rows(
        &mut self,
        page: PageId,
        search: &str,
    ) -> crate::base::error::Result<(Vec<RowData>, String)> {
        let c = &self.config;
        Ok(match page {
            PageId::AdminRoster => {
                let list = self.store.list_employees(search.trim(), 200)?;
                let rows = list
                    .into_iter()
                    .map(|(e, consent, templates)| RowData {
                        id: e.id.clone(),
                        title: e.display_name,
                        detail: format!(
                            "{}{}{}",
                            e.id,
                            if !e.active { " · inactive" } else { "" },
                            match (consent, templates) {
                                (true, t) if t > 0 => format!(" · face ✔ ({t})"),
                                (true, _) => " · consent ✔".into(),
                                (false, _) => String::new(),
                            }
                        ),
                    })
                    .collect::<Vec<_>>();
                let faces = self.store.stats()?.employees;
                let notice = if rows.is_empty() {
                    "no_match".into()
                } else if c.policy.face_only && faces > c.vision.embedder.face_only_max_roster() {
                    "face_only_roster_large".into()
                } else {
                    String::new()
                };
                (rows, notice)
            }
            PageId::AdminSync => {
                let y = self.store.sync_status()?;
                let mut rows = vec![
                    row(
                        "backend",
                        if y.paired {
                            y.url.clone()
                        } else {
                            "not paired".into()
                        },
                    ),
                    row("queued_checkins", y.queued_checkins.to_string()),
                    row("queued_audit", y.queued_audit.to_string()),
                    row("refused", y.rejected.to_string()),
                    row("last_success", when(y.last_success_ms)),
                ];
                if !y.last_error.is_empty() {
                    rows.push(row("last_error", y.last_error.clone()));
                }
                if let Some(s) = y.clock_skew_ms {
                    rows.push(row("clock_skew", format!("{:+.1} s", s as f64 / 1000.0)));
                }
                (rows, String::new())
            }
            PageId::AdminAudit => {
                let rows = self
                    .store
                    .recent_audit(100)?
                    .into_iter()
                    .map(|a| RowData {
                        id: String::new(),
                        title: a.action.replace('_', " "),
                        detail: format!("#{} {} · {}", a.seq, rfc3339_ms(a.wall_ms), a.actor),
                    })
                    .collect();
                (rows, String::new())
            }
            PageId::AdminRetention => {
                let preview = self.store.purge(c.retention.policy(), true)?;
                let rows = vec![
                    row(
                        "keep_checkins",
                        format!("{} days", c.retention.checkin_days),
                    ),
                    row(
                        "keep_failed",
                        format!("{} days", c.retention.failed_attempt_days),
                    ),
                    row(
                        "pseudonymise",
                        if c.retention.pseudonymise_departed {
                            "yes"
                        } else {
                            "no"
                        },
                    ),
                    row(
                        "due_now",
                        format!(
                            "{} check-ins, {} failed attempts",
                            preview.checkins, preview.failed_attempts
                        ),
                    ),
                ];
                (rows, String::new())
            }
            PageId::AdminSettings => {
                let c = crate::store::settings::effective(&self.config, &self.store)?;
                let mut rows: Vec<RowData> = crate::store::settings::EDITABLE
                    .iter()
                    .map(|s| {
                        let v = crate::store::settings::current(&c, s.key);
                        let shown = match s.key {
                            _ if v.is_empty() => "—".to_string(),
                            "gpio.relay_ms" => format!("{v} ms"),
                            _ => v,
                        };
                        RowData {
                            id: s.key.into(),
                            title: label_code(s.key).into(),
                            detail: shown,
                        }
                    })
                    .collect();
                rows.push(row(
                    "anti_passback",
                    format!("{} min", c.policy.anti_passback_minutes),
                ));
                rows.push(row("face_attempts", c.policy.face_attempts.to_string()));
                (rows, "settings_source".into())
            }
            PageId::AdminAbout => {
                let id = self.store.identity().clone();
                let mut rows = vec![
                    row("version", env!("CARGO_PKG_VERSION")),
                    row("device_id", id.device_id.to_string()),
                    row("public_key", hex::encode(id.public_key.as_bytes())),
                    row("licence", "GPL-3.0-or-later"),
                ];
                match crate::vision::runtime::read_lock(&c.vision.models_dir()) {
                    Ok(lock) => {
                        for (file, sha) in lock {
                            rows.push(row(&file, format!("sha256 {}…", &sha[..16.min(sha.len())])));
                        }
                    }
                    Err(e) => rows.push(row("models", e.to_string())),
                }
                (rows, String::new())
            }
            _ => (Vec::new(), String::new()),
        })
    }
}

impl AdminSource for StoreAdmin {
    fn rows(&mut self, page: PageId, search: &str) -> (Vec<RowData>, String) {
        self.try_rows(page, search).unwrap_or_else(|e| {
            tracing::error!(error = %e, "admin page");
            (Vec::new(), "store_error".into())
        })
    }

    fn current(&mut self, key: &str) -> String {
        match crate::store::settings::effective(&self.config, &self.store) {
            Ok(c) => crate::store::settings::current(&c, key),
            Err(e) => {
                tracing::error!(error = %e, "settings");
                String::new()
            }
        }
    }

    fn save(&mut self, actor: &str, key: &str, value: &str) -> Result<(), String> {
        match crate::store::settings::change(&mut self.store, &self.config, actor, key, value) {
            Ok(_) => {
                if let Some(tx) = &self.changed {
                    let _ = tx.send(crate::kiosk::runner::UiInput::SettingsChanged);
                }
                Ok(())
            }
            Err(crate::base::error::Error::ConfigInvalid { problems, .. }) => Err(problems
                .iter()
                .map(|p| format!("{}: {}", p.key, p.message))
                .collect::<Vec<_>>()
                .join("\n")),
            Err(e) => {
                tracing::error!(error = %e, "storing a setting failed");
                Err("store_error".into())
            }
        }
    }

    fn purge(&mut self) -> String {
        match self.store.purge(self.config.retention.policy(), false) {
            Ok(r) => {
                tracing::info!(
                    checkins = r.checkins,
                    failed = r.failed_attempts,
                    "purge from the admin screen"
                );
                "purged".into()
            }
            Err(e) => {
                tracing::error!(error = %e, "purge from the admin screen failed");
                "purge_failed".into()
            }
        }
    }
}
