//! The hub's SQLite database: devices and pairing, verified chains, roster, policy.
//!
//! Every method is synchronous; the HTTP layer calls them on blocking threads. Ingest verifies
//! each entry (canonical decoding, device, signature, links to its stored neighbours) before
//! it is stored, and keeps per-device heads and a conflicts table so gaps and forks are visible.

//!
//! One file per concern, one `impl HubDb` block each: `pairing`, `ingest`, `roster` (and
//! policy), `reports`.

pub mod biometrics;
pub mod fleet;
pub(crate) mod ingest;
mod migrate;
pub mod pairing;
pub(crate) mod reports;
pub(crate) mod roster;
pub mod timesheet;
pub mod webhooks;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::sql::{Conn, DbLocation, Engine, OptionalExt, SqlError, params};

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

impl From<SqlError> for ApiFailure {
    fn from(e: SqlError) -> Self {
        if e.is_unavailable() {
            // The kiosk keeps its queue and retries; nothing is lost.
            tracing::error!(error = %e, "hub database unavailable");
            return ApiFailure {
                status: 503,
                code: "database_unavailable",
                message: "the hub's database is unavailable (down, unreachable or out of space); \
                          nothing was stored, retry later"
                    .into(),
            };
        }
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

/// Where the hub's data is: the database and the template key file that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSpec {
    /// The SQLite file or PostgreSQL URL.
    pub location: DbLocation,
    /// The template key file; `None` puts it beside a SQLite file (PostgreSQL needs one).
    pub template_key: Option<PathBuf>,
}

impl DbSpec {
    /// The template key file in force.
    pub fn key_file(&self) -> Option<PathBuf> {
        self.template_key
            .clone()
            .or_else(|| self.location.sqlite_path().map(biometrics::key_path))
    }
}

impl From<&Path> for DbSpec {
    fn from(p: &Path) -> Self {
        DbSpec {
            location: p.into(),
            template_key: None,
        }
    }
}

/// The hub database.
pub struct HubDb {
    conn: Conn,
    /// Seals the face templates at rest (see [`biometrics`]); reloaded when another process
    /// rotated the key file.
    template_key: std::cell::RefCell<biometrics::TemplateKey>,
    /// The template key file (beside a SQLite file, or `--template-key`).
    key_file: PathBuf,
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
    /// How webhook deliveries are retried.
    pub webhooks: webhooks::WebhookConfig,
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
    /// Opens or creates the SQLite hub database at `path` (its template key beside it).
    pub fn open(path: &Path) -> crate::base::error::Result<HubDb> {
        Self::open_at(&path.into(), None, &HubConfig::default())
    }

    /// Opens the SQLite database at `path` under the hub config `cfg`.
    pub fn open_with(path: &Path, cfg: &HubConfig) -> crate::base::error::Result<HubDb> {
        Self::open_at(&path.into(), None, cfg)
    }

    /// Opens the database `spec` names under `cfg`.
    pub fn open_spec(spec: &DbSpec, cfg: &HubConfig) -> crate::base::error::Result<HubDb> {
        Self::open_at(&spec.location, spec.template_key.as_deref(), cfg)
    }

    /// Opens (creating or migrating) the database at `loc` under `cfg`. `key_file` is the
    /// template key; a SQLite file has it beside itself by default, PostgreSQL needs it named
    /// (every replica reads the same key, which the database never holds).
    pub fn open_at(
        loc: &DbLocation,
        key_file: Option<&Path>,
        cfg: &HubConfig,
    ) -> crate::base::error::Result<HubDb> {
        let fail = |reason: String| crate::base::error::Error::Database {
            path: PathBuf::from(loc.to_string()),
            reason,
        };
        let (conn, key_file) = match loc {
            DbLocation::Sqlite(path) => (
                migrate::open_sqlite(path)?,
                key_file.map_or_else(|| biometrics::key_path(path), Path::to_path_buf),
            ),
            DbLocation::Postgres(url) => {
                let Some(key_file) = key_file else {
                    return Err(crate::base::error::Error::invalid(
                        "--template-key",
                        "a PostgreSQL database needs the template key file named (the same file on every replica)",
                    ));
                };
                let conn = Conn::connect_pg(url)?;
                migrate::postgres(&conn).map_err(|e| match e {
                    SqlError::Pg { why, .. } => fail(format!("cannot migrate: {why}")),
                    other => fail(format!("cannot migrate: {other}")),
                })?;
                (conn, key_file.to_path_buf())
            }
        };
        let template_key = biometrics::load_key(&key_file, &conn)?;
        if conn.engine() == Engine::Sqlite {
            let sealed = biometrics::migrate_plain(&conn, &template_key.key)
                .map_err(|e| fail(format!("cannot seal the plain templates ({e})")))?;
            if sealed > 0 {
                tracing::info!(
                    templates = sealed,
                    "sealed the templates a plain database held"
                );
            }
        }
        Ok(HubDb {
            conn,
            template_key: std::cell::RefCell::new(template_key),
            key_file,
            privacy: cfg.privacy.clone(),
        })
    }

    /// Which engine holds the data.
    pub fn engine(&self) -> Engine {
        self.conn.engine()
    }

    /// Moves the WAL into the database and truncates it, so that template bytes deleted with
    /// `secure_delete` are not left in older WAL frames. Best effort: while another connection
    /// reads, the frames stay until the next call. PostgreSQL never holds plain templates, and
    /// its sealed ones are left to its own vacuum.
    pub(crate) fn wipe_wal(&self) {
        let Some(c) = self.conn.sqlite() else { return };
        let r: rusqlite::Result<(i64, i64, i64)> =
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
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

    fn meta_i64(&self, key: &str) -> Result<i64, SqlError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get::<String>(0)
            })
            .optional()?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }
}
