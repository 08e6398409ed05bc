//! The hub's SQLite database: devices and pairing, verified chains, roster, policy.
//!
//! Every method is synchronous; the HTTP layer calls them on blocking threads. Ingest verifies
//! each entry (canonical decoding, device, signature, links to its stored neighbours) before
//! it is stored, and keeps per-device heads and a conflicts table so gaps and forks are visible.

//!
//! One file per concern, one `impl HubDb` block each: `pairing`, `ingest`, `roster` (and
//! policy), `reports`.

pub(crate) mod ingest;
pub mod pairing;
pub(crate) mod reports;
pub(crate) mod roster;

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
    /// Check-in records (CFR1).
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
        Ok(HubDb { conn })
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
