//! The hub's SQLite database: devices and pairing, verified chains, roster, policy.
//!
//! Every method is synchronous; the HTTP layer calls them on blocking threads. Ingest verifies
//! each entry (canonical decoding, device, signature, links to its stored neighbours) before
//! it is stored, and keeps per-device heads and a conflicts table so gaps and forks are visible.

//!
//! One file per concern, one `impl HubDb` block each: `pairing`, `ingest`, `roster` (and
//! policy), `reports`.

pub mod biometrics;
pub(crate) mod ingest;
pub mod pairing;
pub(crate) mod reports;
pub(crate) mod roster;
pub mod timesheet;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

/// An error the API turns into an HTTP status with a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// HTTP status code.
    pub status: u16,
    /// Machine-readable code.
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
}

impl ApiFailure {
    /// A 400 naming what was wrong with the request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiFailure {
            status: 400,
            code: "bad_request",
            message: message.into(),
        }
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        ApiFailure {
            status: 500,
            code: "internal",
            message: format!("hub database error: {e}"),
        }
    }
}

impl From<rusqlite::Error> for ApiFailure {
    fn from(e: rusqlite::Error) -> Self {
        ApiFailure::internal(e)
    }
}

/// Which of a device's two signed chains an upload belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// Check-in records (CFR2, or CFR1 from before punch types).
    Checkins,
    /// Audit entries (CFA1).
    Audit,
}

impl Chain {
    /// Name used in the database and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Chain::Checkins => "checkins",
            Chain::Audit => "audit",
        }
    }
}

/// The hub database.
pub struct HubDb {
    conn: Connection,
    /// Seals the face templates at rest (see [`biometrics`]); reloaded when another process
    /// rotated the key file.
    template_key: std::cell::RefCell<biometrics::TemplateKey>,
    path: std::path::PathBuf,
    /// Where this hub may hold data, from its config's `[privacy]`.
    privacy: HubPrivacy,
}

/// `[privacy]` of the hub's config: the data-residency label and whether kiosks provisioned
/// for another region may pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubPrivacy {
    /// Region this hub stores data in ("eu-west"); written into `devices` and every export.
    /// "" names none (and then every kiosk may pair).
    pub data_region: String,
    /// Let kiosks provisioned for another region pair anyway. Default false.
    pub allow_cross_region: bool,
}

/// The hub's config file (`--config`, TOML).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    /// Where data may live.
    pub privacy: HubPrivacy,
    /// Per site (by the name kiosks were paired with): its time zone and day boundary, for
    /// the timesheet's local times and work days.
    pub sites: std::collections::BTreeMap<String, timesheet::SiteTime>,
}

impl HubConfig {
    /// Reads and checks a hub config file; `None` gives the defaults.
    pub fn load(path: Option<&Path>) -> crate::base::error::Result<HubConfig> {
        let Some(path) = path else {
            return Ok(HubConfig::default());
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| crate::base::error::Error::io(path, e))?;
        let cfg: HubConfig =
            toml::from_str(&text).map_err(|e| crate::base::error::Error::ConfigInvalid {
                path: path.to_path_buf(),
                problems: vec![crate::base::problem::Problem::at(
                    "hub config",
                    e.message().to_owned(),
                )],
            })?;
        crate::base::config::check_region(&cfg.privacy.data_region).map_err(|why| {
            crate::base::error::Error::ConfigInvalid {
                path: path.to_path_buf(),
                problems: vec![crate::base::problem::Problem::at(
                    "privacy.data_region",
                    why,
                )],
            }
        })?;
        for (name, site) in &cfg.sites {
            site.check()
                .map_err(|why| crate::base::error::Error::ConfigInvalid {
                    path: path.to_path_buf(),
                    problems: vec![crate::base::problem::Problem::at(
                        &format!("sites.{name}"),
                        why,
                    )],
                })?;
        }
        Ok(cfg)
    }
}

pub(super) fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

impl HubDb {
    /// Opens or creates the hub database at `path`.
    pub fn open(path: &Path) -> crate::base::error::Result<HubDb> {
        let conn = Connection::open(path).map_err(|e| crate::base::error::Error::Database {
            path: path.to_path_buf(),
            reason: format!("cannot open: {e}"),
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let _: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
        )?;
        conn.execute_batch(include_str!("schema.sql"))
            .map_err(|e| crate::base::error::Error::Database {
                path: path.to_path_buf(),
                reason: format!("is not a clockface-hub database ({e})"),
            })?;
        migrate_sites(&conn).map_err(|e| crate::base::error::Error::Database {
            path: path.to_path_buf(),
            reason: format!("cannot add the employees' sites ({e})"),
        })?;
        migrate_consent(&conn).map_err(|e| crate::base::error::Error::Database {
            path: path.to_path_buf(),
            reason: format!("cannot add consent scope, age and data region ({e})"),
        })?;
        let mut conn = conn;
        let template_key = biometrics::load_key(path, &conn)?;
        let sealed = biometrics::migrate_plain(&mut conn, &template_key.key).map_err(|e| {
            crate::base::error::Error::Database {
                path: path.to_path_buf(),
                reason: format!("cannot seal the plain templates ({e})"),
            }
        })?;
        if sealed > 0 {
            tracing::info!(
                templates = sealed,
                "sealed the templates a plain database held"
            );
        }
        Ok(HubDb {
            conn,
            template_key: std::cell::RefCell::new(template_key),
            path: path.to_path_buf(),
            privacy: HubPrivacy::default(),
        })
    }

    /// Opens the database under the hub config `cfg`.
    pub fn open_with(path: &Path, cfg: &HubConfig) -> crate::base::error::Result<HubDb> {
        let mut db = Self::open(path)?;
        db.privacy = cfg.privacy.clone();
        Ok(db)
    }

    /// Moves the WAL into the database and truncates it, so that template bytes deleted with
    /// `secure_delete` are not left in older WAL frames. Best effort: while another connection
    /// reads, the frames stay until the next call.
    pub(crate) fn wipe_wal(&self) {
        let r: rusqlite::Result<(i64, i64, i64)> =
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                });
        if !matches!(r, Ok((0, _, _))) {
            tracing::warn!(
                "the hub's WAL could not be truncated now; deleted template bytes go at the next checkpoint"
            );
        }
    }

    /// The `[privacy]` section in force.
    pub fn privacy(&self) -> &HubPrivacy {
        &self.privacy
    }

    fn meta_i64(&self, key: &str) -> rusqlite::Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }
}

/// Databases made before employees had sites: the column is added (every employee valid at
/// every site, as before), and every device is taken to hold everyone, which it did, so that
/// its next roster deletes the people not of its site.
fn migrate_sites(conn: &Connection) -> rusqlite::Result<()> {
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('employees') WHERE name = 'sites'")?
        .exists([])?;
    if has {
        return Ok(());
    }
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         ALTER TABLE employees ADD COLUMN sites TEXT NOT NULL DEFAULT '';
         INSERT OR IGNORE INTO delivered (device_id, employee_id)
             SELECT d.id, e.id FROM devices d, employees e;
         COMMIT;",
    )
}

/// Databases from before consent scopes, ages and data regions: the columns are added
/// (earlier consents counted for the kiosk that took them, so their scope is 'device').
fn migrate_consent(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, decl) in [
        (
            "employees",
            "consent_scope",
            "TEXT NOT NULL DEFAULT 'device'",
        ),
        ("employees", "birth_year", "INTEGER"),
        ("employees", "is_minor", "INTEGER"),
        ("devices", "data_region", "TEXT NOT NULL DEFAULT ''"),
    ] {
        let has: bool = conn
            .prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = '{column}'"
            ))?
            .exists([])?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl};"))?;
        }
    }
    Ok(())
}
