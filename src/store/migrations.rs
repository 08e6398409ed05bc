//! Versioned, forward-only schema migrations.
//!
//! Each migration is a SQL file under `src/store/migrations/`, applied in its own transaction
//! together with the `PRAGMA user_version` bump, so a crash leaves the schema at one version or
//! the next, never between. A store newer than this binary is refused rather than guessed at.

use std::path::Path;

use rusqlite::Connection;

use crate::base::error::{Error, Result};

/// One schema step.
pub struct Migration {
    /// The `user_version` after this step.
    pub version: u32,
    /// Short name, for logs.
    pub name: &'static str,
    /// The SQL applied.
    pub sql: &'static str,
}

/// Every migration, oldest first. Append only.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "retention",
        sql: include_str!("migrations/0002_retention.sql"),
    },
    Migration {
        version: 3,
        name: "pin_lockout",
        sql: include_str!("migrations/0003_pin_lockout.sql"),
    },
    Migration {
        version: 4,
        name: "sync",
        sql: include_str!("migrations/0004_sync.sql"),
    },
    Migration {
        version: 5,
        name: "pseudonymise",
        sql: include_str!("migrations/0005_pseudonymise.sql"),
    },
    Migration {
        version: 6,
        name: "consent",
        sql: include_str!("migrations/0006_consent.sql"),
    },
    Migration {
        version: 7,
        name: "hr",
        sql: include_str!("migrations/0007_hr.sql"),
    },
];

/// The schema version this binary writes.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Reads `PRAGMA user_version`.
pub fn current_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
        .map(|v| v as u32)
}

/// Brings the database up to `target` (normally [`latest_version`]); returns the version found.
pub fn migrate_to(conn: &mut Connection, db_path: &Path, target: u32) -> Result<u32> {
    let found = current_version(conn)?;
    if found > latest_version() {
        return Err(Error::Database {
            path: db_path.to_owned(),
            reason: format!(
                "schema version {found} is newer than this clockface understands (up to {}); \
                 downgrading is not supported: install a newer clockface",
                latest_version()
            ),
        });
    }
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target)
    {
        tracing::info!(
            version = m.version,
            name = m.name,
            "applying store migration"
        );
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
        tx.execute_batch(m.sql)?;
        tx.pragma_update(None, "user_version", m.version as i64)?;
        tx.commit()?;
    }
    Ok(found)
}
