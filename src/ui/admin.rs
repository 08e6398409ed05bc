//! What the admin pages list, read from the store and the config. Nothing here writes except
//! the retention purge, which goes through the store's audited purge.

use super::controller::{PageId, RowData};
use crate::config::Config;
use crate::store::Store;
use crate::store::export::rfc3339_ms;

/// Where the admin pages get their rows.
pub trait AdminSource {
    /// The rows of an admin page (titles are codes the page translates) and a notice code
    /// ("" for none).
    fn rows(&mut self, page: PageId, search: &str) -> (Vec<RowData>, String);
    /// Runs the retention purge now; returns a notice code ("purged" or "purge_failed").
    fn purge(&mut self) -> String;
}

/// The real source: the kiosk's store and config.
pub struct StoreAdmin {
    /// A connection of the UI's own.
    pub store: Store,
    /// The configuration in force.
    pub config: Config,
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
    fn try_rows(&mut self, page: PageId, search: &str) -> crate::Result<(Vec<RowData>, String)> {
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
                let notice = if rows.is_empty() {
                    "no_match".into()
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
                let rows = vec![
                    row("device_name", c.device.name.clone()),
                    row("site", c.device.site.clone()),
                    row(
                        "backend_url",
                        if c.sync.url.is_empty() {
                            "—".into()
                        } else {
                            c.sync.url.clone()
                        },
                    ),
                    row("relay", format!("{} ms", c.gpio.relay_ms)),
                    row(
                        "direction",
                        format!("{:?} (out from {})", c.policy.direction, c.policy.out_from)
                            .to_lowercase(),
                    ),
                    row(
                        "anti_passback",
                        format!("{} min", c.policy.anti_passback_minutes),
                    ),
                    row("face_attempts", c.policy.face_attempts.to_string()),
                    row(
                        "match_threshold",
                        format!("{:.2}", c.vision.match_threshold()),
                    ),
                    row(
                        "liveness_threshold",
                        format!("{:.2}", c.vision.liveness_threshold),
                    ),
                ];
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
