//! Schemas and migrations of both engines.
//!
//! SQLite: `schema.sql` creates what is missing, and the functions here add the columns later
//! versions brought to files made before them (each checks first, so opening is idempotent).
//! PostgreSQL: numbered files under `migrations/postgres/`, each applied once in its own
//! transaction and recorded in `schema_migrations`, under an advisory lock so that replicas
//! starting together migrate once.

use std::path::Path;

use crate::base::error::{Error, Result};
use crate::hub::sql::{Conn, Lock, SqlError, params};

/// PostgreSQL migrations: version, what it brings, the statements.
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "initial schema",
        include_str!("../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "alerts",
        include_str!("../migrations/postgres/0002_alerts.sql"),
    ),
    (
        3,
        "webhooks",
        include_str!("../migrations/postgres/0003_webhooks.sql"),
    ),
];

/// Opens a SQLite hub file: durable WAL, foreign keys, secure delete, and the schema brought
/// up to date.
pub(super) fn open_sqlite(path: &Path) -> Result<Conn> {
    let fail = |reason: String| Error::Database {
        path: path.to_path_buf(),
        reason,
    };
    let conn = Conn::open_sqlite(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let c = conn.sqlite().expect("a SQLite connection");
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    let _: String = c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    c.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
    )?;
    c.execute_batch(include_str!("../schema.sql"))
        .map_err(|e| fail(format!("is not a clockface-hub database ({e})")))?;
    sqlite_sites(&conn).map_err(|e| fail(format!("cannot add the employees' sites ({e})")))?;
    sqlite_consent(&conn).map_err(|e| {
        fail(format!(
            "cannot add consent scope, age and data region ({e})"
        ))
    })?;
    Ok(conn)
}

fn has_column(conn: &Conn, table: &str, column: &str) -> std::result::Result<bool, SqlError> {
    conn.exists(
        "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
        params![table, column],
    )
}

/// Databases made before employees had sites: the column is added (every employee valid at
/// every site, as before), and every device is taken to hold everyone, which it did, so that
/// its next roster deletes the people not of its site.
fn sqlite_sites(conn: &Conn) -> std::result::Result<(), SqlError> {
    if has_column(conn, "employees", "sites")? {
        return Ok(());
    }
    let tx = conn.begin(Lock::Write)?;
    tx.execute_batch(
        "ALTER TABLE employees ADD COLUMN sites TEXT NOT NULL DEFAULT '';
         INSERT INTO delivered (device_id, employee_id)
             SELECT d.id, e.id FROM devices d, employees e WHERE true ON CONFLICT DO NOTHING;",
    )?;
    tx.commit()
}

/// Databases from before consent scopes, ages and data regions: the columns are added
/// (earlier consents counted for the kiosk that took them, so their scope is 'device').
fn sqlite_consent(conn: &Conn) -> std::result::Result<(), SqlError> {
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
        if !has_column(conn, table, column)? {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl};"))?;
        }
    }
    Ok(())
}

/// Brings a PostgreSQL database to the newest schema this hub knows; refuses one that a newer
/// hub already migrated further.
pub(super) fn postgres(conn: &Conn) -> std::result::Result<(), SqlError> {
    conn.with_migration_lock(|| {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 name       TEXT   NOT NULL,
                 applied_ms BIGINT NOT NULL
             )",
        )?;
        let applied: Vec<i64> = conn.query_map(
            "SELECT version FROM schema_migrations ORDER BY version",
            params![],
            |r| r.get(0),
        )?;
        let known = POSTGRES.last().map_or(0, |m| m.0);
        if let Some(&newest) = applied.last()
            && newest > known
        {
            return Err(SqlError::Type {
                column: 0,
                why: format!(
                    "the database is at schema version {newest}, newer than this hub's {known}: upgrade clockface-hub"
                ),
            });
        }
        for &(version, name, sql) in POSTGRES {
            if applied.contains(&version) {
                continue;
            }
            let tx = conn.begin(Lock::Write)?;
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)",
                params![version, name, crate::base::clock::Clock::wall_ms(&crate::base::clock::SystemClock::new())],
            )?;
            tx.commit()?;
            tracing::info!(version, name, "applied PostgreSQL migration");
        }
        Ok(())
    })
}
