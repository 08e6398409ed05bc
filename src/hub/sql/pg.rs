//! PostgreSQL through the synchronous `postgres` driver (the hub calls its database from
//! blocking threads only): one connection that reconnects between transactions, a statement
//! cache, and the conversions between [`Value`] and the server's types.

use std::collections::HashMap;

use postgres::types::{FromSql, IsNull, ToSql, Type};

use super::{Lock, SqlError, Value, redact};

/// Advisory lock keys (arbitrary, fixed: "CF" and a number).
const LOCK_WRITE: i64 = 0x4346_0001;
const LOCK_MIGRATE: i64 = 0x4346_0002;
const LOCK_DEVICE_CLASS: i32 = 0x4346;
const LOCK_EVENTS: i64 = 0x4346_0003;

/// A PostgreSQL connection.
pub struct PgConn {
    client: Option<postgres::Client>,
    config: postgres::Config,
    at: String,
    statements: HashMap<String, postgres::Statement>,
    in_tx: bool,
}

impl PgConn {
    /// Connects to `url`.
    pub(super) fn connect(url: &str) -> Result<PgConn, SqlError> {
        let at = redact(url);
        let config: postgres::Config = url.parse().map_err(|e| SqlError::Pg {
            at: at.clone(),
            why: format!("the URL is not valid: {e}"),
            unavailable: false,
        })?;
        let mut pg = PgConn {
            client: None,
            config,
            at,
            statements: HashMap::new(),
            in_tx: false,
        };
        pg.client()?;
        Ok(pg)
    }

    pub(super) fn execute(&mut self, sql: &str, p: &[Value]) -> Result<usize, SqlError> {
        let stmt = self.statement(sql)?;
        let refs = pg_params(p);
        let n = self.client()?.execute(&stmt, &refs);
        n.map(|n| n as usize).map_err(|e| self.fail(e))
    }

    pub(super) fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        let r = self.client()?.batch_execute(sql);
        r.map_err(|e| self.fail(e))
    }

    pub(super) fn query(&mut self, sql: &str, p: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        let stmt = self.statement(sql)?;
        let refs = pg_params(p);
        let rows = self.client()?.query(&stmt, &refs);
        let rows = rows.map_err(|e| self.fail(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut vals = Vec::with_capacity(r.len());
            for i in 0..r.len() {
                vals.push(r.try_get::<_, Value>(i).map_err(|e| SqlError::Type {
                    column: i,
                    why: e.to_string(),
                })?);
            }
            out.push(vals);
        }
        Ok(out)
    }

    /// BEGIN, then the advisory lock `lock` names, held to the end of the transaction.
    pub(super) fn begin(&mut self, lock: Lock<'_>) -> Result<(), SqlError> {
        self.batch(match lock {
            Lock::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            _ => "BEGIN",
        })?;
        self.in_tx = true;
        let locked = match lock {
            Lock::Read => Ok(0),
            Lock::Write => self.execute(
                "SELECT pg_advisory_xact_lock(?1)",
                &[Value::Int(LOCK_WRITE)],
            ),
            Lock::Device(id) => self.execute(
                "SELECT pg_advisory_xact_lock(?1, hashtext(?2))",
                &[Value::Int(LOCK_DEVICE_CLASS.into()), Value::Text(id.into())],
            ),
        };
        if let Err(e) = locked {
            self.end("ROLLBACK").ok();
            return Err(e);
        }
        Ok(())
    }

    /// The event-log lock, to the end of the transaction (see `Conn::lock_events`).
    pub(super) fn lock_events(&mut self) -> Result<(), SqlError> {
        self.batch(&format!("SELECT pg_advisory_xact_lock({LOCK_EVENTS})"))
    }

    /// COMMIT or ROLLBACK.
    pub(super) fn end(&mut self, sql: &str) -> Result<(), SqlError> {
        let r = self.batch(sql);
        self.in_tx = false;
        r
    }

    /// Takes (`true`) or releases the session lock migrations run under.
    pub(super) fn migration_lock(&mut self, take: bool) -> Result<(), SqlError> {
        let f = if take {
            "pg_advisory_lock"
        } else {
            "pg_advisory_unlock"
        };
        self.batch(&format!("SELECT {f}({LOCK_MIGRATE})"))
    }

    /// The live client; reconnects when the old one closed, but never inside a transaction
    /// (its statements would silently run outside it).
    fn client(&mut self) -> Result<&mut postgres::Client, SqlError> {
        let closed = self.client.as_ref().is_none_or(|c| c.is_closed());
        if closed {
            if self.in_tx {
                return Err(SqlError::Pg {
                    at: self.at.clone(),
                    why: "the connection was lost inside a transaction; it was rolled back".into(),
                    unavailable: true,
                });
            }
            self.statements.clear();
            self.client = None;
            let c = self
                .config
                .clone()
                .connect_timeout(std::time::Duration::from_secs(10))
                .connect(postgres::NoTls)
                .map_err(|e| SqlError::Pg {
                    at: self.at.clone(),
                    why: format!("cannot connect: {}", pg_reason(&e)),
                    unavailable: true,
                })?;
            self.client = Some(c);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, SqlError> {
        if let Some(s) = self.statements.get(sql)
            && !self.client.as_ref().is_none_or(|c| c.is_closed())
        {
            return Ok(s.clone());
        }
        let text = dollar_placeholders(sql);
        let r = self.client()?.prepare(&text);
        let s = r.map_err(|e| self.fail(e))?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    fn fail(&self, e: postgres::Error) -> SqlError {
        // Class 53: insufficient resources (disk full, out of memory, too many connections);
        // 57P: the server is shutting down or restarting.
        let resources = e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("53") || c.starts_with("57P")
        });
        SqlError::Pg {
            at: self.at.clone(),
            unavailable: resources
                || e.is_closed()
                || self.client.as_ref().is_none_or(|c| c.is_closed()),
            why: pg_reason(&e),
        }
    }
}

/// The driver closes a connection by blocking on its own runtime, which may not happen on a
/// thread that drives async tasks (a hub shutting down inside its runtime): there the client
/// is closed on a thread of its own.
impl Drop for PgConn {
    fn drop(&mut self) {
        if let Some(c) = self.client.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            let _ = std::thread::Builder::new()
                .name("pg-close".into())
                .spawn(move || drop(c));
        }
    }
}

/// The server's message (with its SQLSTATE) or the driver's, whichever says more.
fn pg_reason(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

fn pg_params(p: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    p.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// `?N` and `?` placeholders as PostgreSQL's `$N`, leaving string literals, quoted names and
/// comments alone.
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut next = 1;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    out.push_str(&digits);
                }
            }
            c => out.push(c),
        }
    }
    out
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Binds a value as the type the server inferred for the parameter.
impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Int(i), &Type::TEXT | &Type::VARCHAR) => i.to_string().to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT4) => (*f as f32).to_sql(ty, out),
            (Value::Text(s), _) => s.as_str().to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (v, ty) => Err(format!("cannot bind {v:?} as PostgreSQL type {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// Reads any column the hub's schema uses.
impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)? as i64),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)? as i64),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)? as i64),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)? as f64),
            Type::BYTEA => Value::Blob(<Vec<u8>>::from_sql(ty, raw)?),
            _ => Value::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT8
                | Type::INT4
                | Type::INT2
                | Type::BOOL
                | Type::FLOAT8
                | Type::FLOAT4
                | Type::BYTEA
        ) || <String as FromSql>::accepts(ty)
    }
}
