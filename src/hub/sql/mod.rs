//! The hub's two database engines behind one small interface: SQLite (one file, the embedded
//! default for a single site) and PostgreSQL (one server that several `clockface-hub serve`
//! replicas share).
//!
//! Statements are written once, in the SQL both engines accept, with `?N` placeholders (turned
//! into `$N` for PostgreSQL). Values cross the interface as [`Value`]; rows come back whole.
//! Transactions name the lock they need ([`Lock`]), which each engine takes its own way: SQLite
//! with `BEGIN IMMEDIATE`, PostgreSQL with transaction-scoped advisory locks, so two replicas
//! never interleave the writes of one device's chain or hand out one pairing code twice.

mod pg;
mod value;

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};

pub use pg::PgConn;
pub(crate) use value::params;
pub use value::{FromValue, Row, ToValue, Value};

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// `query_row` found nothing (see [`OptionalExt::optional`]).
    #[error("the query returned no rows")]
    NoRows,
    /// SQLite's own error.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL's error, with the server it came from.
    #[error("PostgreSQL at {at}: {why}")]
    Pg {
        /// The server (host, port, database; never the password).
        at: String,
        /// What the driver or the server said.
        why: String,
        /// The connection is gone (server down or unreachable), or the server is out of
        /// disk or memory: a retry later may work.
        unavailable: bool,
    },
    /// A column did not hold what the code expected.
    #[error("column {column}: {why}")]
    Type {
        /// Column index.
        column: usize,
        /// What was found.
        why: String,
    },
}

impl SqlError {
    /// The database cannot be reached now (not a wrong statement): the request may be retried.
    pub fn is_unavailable(&self) -> bool {
        match self {
            SqlError::Pg { unavailable, .. } => *unavailable,
            SqlError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::DiskFull
                )
            ),
            _ => false,
        }
    }
}

impl From<SqlError> for crate::base::error::Error {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::Sqlite(e) => crate::base::error::Error::Sqlite(e),
            SqlError::Pg { at, why, .. } => crate::base::error::Error::Database {
                path: PathBuf::from(at),
                reason: why,
            },
            other => crate::base::error::Error::Database {
                path: PathBuf::from("hub database"),
                reason: other.to_string(),
            },
        }
    }
}

/// `query_row`'s "no rows" as `None`.
pub trait OptionalExt<T> {
    /// `Ok(None)` for no rows, other errors kept.
    fn optional(self) -> Result<Option<T>, SqlError>;
}

impl<T> OptionalExt<T> for Result<T, SqlError> {
    fn optional(self) -> Result<Option<T>, SqlError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(SqlError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Where the hub's database is: a SQLite file, or a PostgreSQL URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A SQLite file (created when missing).
    Sqlite(PathBuf),
    /// `postgres://user:password@host:port/database?options`.
    Postgres(String),
}

impl DbLocation {
    /// `postgres://` or `postgresql://` names a server; anything else is a file path.
    pub fn parse(s: &str) -> DbLocation {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            DbLocation::Postgres(s.to_owned())
        } else {
            DbLocation::Sqlite(PathBuf::from(s))
        }
    }

    /// The SQLite file, if it is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            DbLocation::Sqlite(p) => Some(p),
            DbLocation::Postgres(_) => None,
        }
    }
}

impl From<&Path> for DbLocation {
    fn from(p: &Path) -> Self {
        DbLocation::Sqlite(p.to_path_buf())
    }
}

/// Shown without the password, so that it can go into errors and logs.
impl fmt::Display for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::Sqlite(p) => write!(f, "{}", p.display()),
            DbLocation::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The URL with any password replaced by `***`.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<a postgres:// URL that does not parse>".into(),
    }
}

/// Which engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// What a transaction must exclude.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock<'a> {
    /// Reads only: a consistent view, no lock.
    Read,
    /// Writes that must not interleave with other such writes (pairing, roster, policy, keys).
    Write,
    /// Writes to one device's chains (ingest): other devices go on in parallel.
    Device(&'a str),
}

/// A connection to either engine.
pub enum Conn {
    /// SQLite, through rusqlite.
    Sqlite(rusqlite::Connection),
    /// PostgreSQL (see [`PgConn`]).
    Pg(RefCell<Box<PgConn>>),
}

impl Conn {
    /// Opens a SQLite file.
    pub fn open_sqlite(path: &Path) -> Result<Conn, SqlError> {
        Ok(Conn::Sqlite(rusqlite::Connection::open(path)?))
    }

    /// Connects to PostgreSQL at `url`.
    pub fn connect_pg(url: &str) -> Result<Conn, SqlError> {
        Ok(Conn::Pg(RefCell::new(Box::new(PgConn::connect(url)?))))
    }

    /// Which engine this is.
    pub fn engine(&self) -> Engine {
        match self {
            Conn::Sqlite(_) => Engine::Sqlite,
            Conn::Pg(_) => Engine::Postgres,
        }
    }

    /// The SQLite connection (for what only SQLite has: pragmas, WAL, VACUUM).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Pg(_) => None,
        }
    }

    /// Runs one statement; returns the rows it changed.
    pub fn execute(&self, sql: &str, p: &[Value]) -> Result<usize, SqlError> {
        match self {
            Conn::Sqlite(c) => {
                let mut s = c.prepare_cached(sql)?;
                Ok(s.execute(rusqlite::params_from_iter(p.iter()))?)
            }
            Conn::Pg(pg) => pg.borrow_mut().execute(sql, p),
        }
    }

    /// Runs several statements without parameters (schema, pragmas).
    pub fn execute_batch(&self, sql: &str) -> Result<(), SqlError> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(pg) => pg.borrow_mut().batch(sql),
        }
    }

    /// Every row of a query, each through `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        p: &[Value],
        mut f: impl FnMut(&Row) -> Result<T, SqlError>,
    ) -> Result<Vec<T>, SqlError> {
        match self {
            Conn::Sqlite(c) => {
                let mut s = c.prepare_cached(sql)?;
                let n = s.column_count();
                let mut rows = s.query(rusqlite::params_from_iter(p.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut vals = Vec::with_capacity(n);
                    for i in 0..n {
                        vals.push(value::from_sqlite(r.get_ref(i)?));
                    }
                    out.push(f(&Row(vals))?);
                }
                Ok(out)
            }
            Conn::Pg(pg) => {
                let rows = pg.borrow_mut().query(sql, p)?;
                rows.into_iter().map(|v| f(&Row(v))).collect()
            }
        }
    }

    /// The first row of a query through `f`; [`SqlError::NoRows`] when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        p: &[Value],
        f: impl FnOnce(&Row) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let mut f = Some(f);
        let mut first = None;
        self.query_map(sql, p, |r| {
            if let Some(f) = f.take() {
                first = Some(f(r)?);
            }
            Ok(())
        })?;
        first.ok_or(SqlError::NoRows)
    }

    /// Whether a query returns any row.
    pub fn exists(&self, sql: &str, p: &[Value]) -> Result<bool, SqlError> {
        self.query_row(sql, p, |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
    }

    /// Starts a transaction holding `lock`; it rolls back unless committed.
    pub fn begin(&self, lock: Lock<'_>) -> Result<Tx<'_>, SqlError> {
        match self {
            Conn::Sqlite(c) => c.execute_batch(match lock {
                Lock::Read => "BEGIN DEFERRED",
                Lock::Write | Lock::Device(_) => "BEGIN IMMEDIATE",
            })?,
            Conn::Pg(pg) => pg.borrow_mut().begin(lock)?,
        }
        Ok(Tx {
            conn: self,
            open: true,
        })
    }

    fn end(&self, sql: &str) -> Result<(), SqlError> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(pg) => pg.borrow_mut().end(sql),
        }
    }

    /// Inside a transaction that appends to an ordered log (webhook events): on PostgreSQL a
    /// lock held to the commit, so that ids become visible in the order they were taken.
    /// SQLite's writers are serial already.
    pub fn lock_events(&self) -> Result<(), SqlError> {
        match self {
            Conn::Sqlite(_) => Ok(()),
            Conn::Pg(pg) => pg.borrow_mut().lock_events(),
        }
    }

    /// Runs `f` while holding the migration lock (PostgreSQL: a session advisory lock, so two
    /// replicas starting together migrate once); SQLite runs it as is.
    pub fn with_migration_lock<T>(
        &self,
        f: impl FnOnce() -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let Conn::Pg(pg) = self else { return f() };
        pg.borrow_mut().migration_lock(true)?;
        let r = f();
        let unlock = pg.borrow_mut().migration_lock(false);
        let v = r?;
        unlock?;
        Ok(v)
    }
}

/// An open transaction; derefs to its connection for statements.
pub struct Tx<'c> {
    conn: &'c Conn,
    open: bool,
}

impl Tx<'_> {
    /// Makes the transaction's writes durable.
    pub fn commit(mut self) -> Result<(), SqlError> {
        self.open = false;
        self.conn.end("COMMIT")
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open
            && let Err(e) = self.conn.end("ROLLBACK")
        {
            tracing::debug!(error = %e, "rollback failed (the connection is gone)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_literals() {
        assert_eq!(
            pg::dollar_placeholders(
                "SELECT '?1', \"a?\" FROM t WHERE a = ?1 AND b = ?12 -- ?3\n AND c = ?"
            ),
            "SELECT '?1', \"a?\" FROM t WHERE a = $1 AND b = $12 -- ?3\n AND c = $1"
        );
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        let l = DbLocation::parse("postgres://hub:s3cret@db.example:5433/clockface");
        assert_eq!(
            l.to_string(),
            "postgres://hub:***@db.example:5433/clockface"
        );
        assert!(!format!("{l:?}").contains("s3cret"));
        assert_eq!(
            DbLocation::parse("/var/lib/hub.db").sqlite_path(),
            Some(Path::new("/var/lib/hub.db"))
        );
    }

    #[test]
    fn sqlite_rows_and_transactions() {
        let c = Conn::open_sqlite(Path::new(":memory:")).unwrap();
        c.execute_batch("CREATE TABLE t (a INTEGER, b TEXT, c BLOB)")
            .unwrap();
        let tx = c.begin(Lock::Write).unwrap();
        tx.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            params![7i64, "x", vec![1u8, 2]],
        )
        .unwrap();
        drop(tx);
        assert!(!c.exists("SELECT 1 FROM t", params![]).unwrap());
        let tx = c.begin(Lock::Device("d")).unwrap();
        tx.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            params![7i64, None::<String>, [9u8; 2]],
        )
        .unwrap();
        tx.commit().unwrap();
        let (a, b, blob): (u32, Option<String>, Vec<u8>) = c
            .query_row("SELECT a, b, c FROM t", params![], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((a, b, blob), (7, None, vec![9, 9]));
        assert!(matches!(
            c.query_row("SELECT a FROM t WHERE a = 8", params![], |r| r
                .get::<i64>(0)),
            Err(SqlError::NoRows)
        ));
        let e = c
            .query_row("SELECT b FROM t", params![], |r| r.get::<String>(0))
            .unwrap_err();
        assert!(e.to_string().contains("column 0"), "{e}");
    }
}
