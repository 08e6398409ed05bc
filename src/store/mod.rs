//! The on-device store: SQLite (bundled) in the data dir, plus the two key files.
//!
//! Owns the schema and its migrations, the device identity (id and Ed25519 key), appending
//! signed check-in records and audit entries to their chains, the roster with sealed face
//! templates, and verification. The database runs in WAL mode with `synchronous=FULL`, so a
//! record is on disk before [`Store::append`] returns; `secure_delete` overwrites deleted
//! content; foreign keys make deleting an employee delete their templates in the same step.
//! It must not know about cameras, models, the UI or the network.

pub mod audit;
pub mod chain;
pub mod codec;
pub mod export;
pub mod keys;
pub mod migrations;
pub mod overrides;
pub mod record;
pub mod retention;
pub mod roster;
pub mod settings;
pub mod subject;
pub mod sync;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::base::clock::Clock;
use crate::base::error::{Error, Result};
use audit::{AuditEntry, NewAudit};
use record::{NewRecord, Record, entry_hash};

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "clockface.db";
/// File name of the Ed25519 device signing key (32-byte seed, mode 0600).
pub const DEVICE_KEY_FILE: &str = "device.key";
/// File name of the template encryption key (32 bytes, mode 0600).
pub const DATA_KEY_FILE: &str = "data.key";

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Directory holding the database and key files.
    pub data_dir: PathBuf,
    /// Database size cap in MiB (0 = none); see `store.max_size_mb`.
    pub max_size_mb: u64,
    /// Policy version written into new records.
    pub policy_version: u32,
    /// Open read-only: nothing is created, migrated or written (verify, export, inspection of
    /// a copied store). Only the public key is needed.
    pub read_only: bool,
}

impl StoreOptions {
    /// Options taken from the config file's `[store]` and `[policy]` sections.
    pub fn from_config(cfg: &crate::base::config::Config) -> Self {
        StoreOptions {
            data_dir: cfg.store.data_dir.clone(),
            max_size_mb: cfg.store.max_size_mb,
            policy_version: cfg.policy.version,
            read_only: false,
        }
    }
}

/// Where a new entry landed in its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its sequence number.
    pub seq: u64,
    /// Its UUIDv7.
    pub uuid: Uuid,
    /// SHA-256 of its bytes (the next entry's `prev_hash`).
    pub hash: [u8; 32],
}

/// Figures for `clockface device show` and the admin screen.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreStats {
    /// Schema version of the database.
    pub schema_version: u32,
    /// Size of the database file plus its WAL, in bytes.
    pub db_bytes: u64,
    /// Accepted check-ins.
    pub checkins: u64,
    /// Failed attempts.
    pub failed_attempts: u64,
    /// Records not yet acknowledged by the backend.
    pub unsynced: u64,
    /// Audit entries.
    pub audit_entries: u64,
    /// Employees on the roster.
    pub employees: u64,
    /// Sealed face templates.
    pub templates: u64,
    /// Sequence number of the newest record, 0 when none.
    pub head_seq: u64,
    /// Wall time of the oldest and newest record (Unix ms).
    pub first_ms: Option<i64>,
    /// Wall time of the newest record (Unix ms).
    pub last_ms: Option<i64>,
}

/// The device's identity as recorded in the store.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Stable id of this kiosk, generated on first start.
    pub device_id: Uuid,
    /// Public half of the device key; what the backend verifies signatures with.
    pub public_key: VerifyingKey,
}

/// An open store.
pub struct Store {
    conn: Connection,
    db_path: PathBuf,
    data_dir: PathBuf,
    identity: Identity,
    signing: Option<SigningKey>,
    data_key: Option<Zeroizing<[u8; keys::KEY_LEN]>>,
    clock: Arc<dyn Clock>,
    policy_version: u32,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db_path", &self.db_path)
            .field("device_id", &self.identity.device_id)
            .finish_non_exhaustive()
    }
}

/// Label of the sealed known value that proves `data.key` is the key this store was made with.
const DATA_KEY_CHECK_AAD: &[u8] = b"clockface data key check v1";

impl Store {
    /// Opens (creating on first start, unless read-only) the store in `opts.data_dir`.
    pub fn open(opts: &StoreOptions, clock: Arc<dyn Clock>) -> Result<Store> {
        let dir = &opts.data_dir;
        prepare_data_dir(dir, opts.read_only)?;
        let db_path = dir.join(DB_FILE);
        if opts.read_only && !db_path.exists() {
            return Err(Error::Database {
                path: db_path,
                reason: "does not exist (no store in this data dir)".into(),
            });
        }
        let flags = if opts.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let db_err = |reason: String| Error::Database {
            path: db_path.clone(),
            reason,
        };
        let mut conn = Connection::open_with_flags(&db_path, flags)
            .map_err(|e| db_err(format!("cannot open: {e}")))?;
        // The first read validates the file header; a foreign or corrupt file fails here and is
        // left exactly as it was.
        let version = migrations::current_version(&conn).map_err(|e| {
            db_err(format!(
                "is not a readable Clockface database ({e}); it was left untouched: restore it from \
                 backup, or move it aside to start an empty store"
            ))
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        if !opts.read_only {
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(db_err(format!("cannot switch to WAL mode (got {mode})")));
            }
        }
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;",
        )?;
        if opts.max_size_mb > 0 {
            let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let pages = (opts.max_size_mb as i64 * 1024 * 1024) / page_size;
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        if opts.read_only {
            if version != migrations::latest_version() {
                return Err(db_err(format!(
                    "schema version {version}, this clockface reads version {} (open it read-write once to migrate)",
                    migrations::latest_version()
                )));
            }
        } else {
            migrations::migrate_to(&mut conn, &db_path, migrations::latest_version())?;
        }
        let (identity, signing, data_key) = load_identity(&conn, dir, &db_path, opts.read_only)?;
        Ok(Store {
            conn,
            db_path,
            data_dir: dir.clone(),
            identity,
            signing,
            data_key,
            clock,
            policy_version: opts.policy_version,
        })
    }

    /// This device's id and public key.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Path of the database file.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Sets the policy version written into new records (the backend sent a new policy).
    pub fn set_policy_version(&mut self, v: u32) {
        self.policy_version = v;
    }

    /// The clock records are stamped with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Read access for queries in sibling modules.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    fn signing_key(&self) -> Result<&SigningKey> {
        self.signing.as_ref().ok_or_else(|| Error::KeyFile {
            path: self.data_dir.join(DEVICE_KEY_FILE),
            reason: "store is open read-only; signing is not possible".into(),
        })
    }

    fn data_key(&self) -> Result<&[u8; keys::KEY_LEN]> {
        self.data_key.as_deref().ok_or_else(|| Error::KeyFile {
            path: self.data_dir.join(DATA_KEY_FILE),
            reason: "not loaded (store is open read-only)".into(),
        })
    }

    /// Appends a signed check-in record (or failed attempt) and returns once it is durable.
    pub fn append(&mut self, new: &NewRecord) -> Result<Appended> {
        new.validate()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_write_err)?;
        let appended = append_record_tx(
            &tx,
            &self.identity,
            self.signing.as_ref(),
            &*self.clock,
            self.policy_version,
            new,
        )?;
        tx.commit().map_err(map_write_err)?;
        Ok(appended)
    }

    /// Appends many records in one transaction (one fsync). For imports and benchmarks; the
    /// kiosk appends one at a time so each is durable before the person is told.
    pub fn append_many(&mut self, news: &[NewRecord]) -> Result<Vec<Appended>> {
        for n in news {
            n.validate()?;
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_write_err)?;
        let mut out = Vec::with_capacity(news.len());
        for n in news {
            out.push(append_record_tx(
                &tx,
                &self.identity,
                self.signing.as_ref(),
                &*self.clock,
                self.policy_version,
                n,
            )?);
        }
        tx.commit().map_err(map_write_err)?;
        Ok(out)
    }

    /// Appends an audit entry on its own.
    pub fn audit(&mut self, new: &NewAudit) -> Result<Appended> {
        new.validate()?;
        let signing = self.signing_key()?.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_write_err)?;
        let a = append_audit_tx(&tx, &self.identity, &signing, &*self.clock, new)?;
        tx.commit().map_err(map_write_err)?;
        Ok(a)
    }

    /// Runs `f` in one write transaction and appends `audit` in the same transaction, so a
    /// change and its audit entry are durable together or not at all.
    pub(crate) fn audited<T>(
        &mut self,
        audit: &NewAudit,
        f: impl FnOnce(&Transaction<'_>, &[u8; keys::KEY_LEN], i64) -> Result<T>,
    ) -> Result<T> {
        audit.validate()?;
        self.audited_dyn(|tx, key, now| Ok((f(tx, key, now)?, vec![audit.clone()])))
    }

    /// Like [`Store::audited`], for changes whose audit entries are only known once the
    /// change is made (a roster download deleting some employees): `f` returns them.
    pub(crate) fn audited_dyn<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>, &[u8; keys::KEY_LEN], i64) -> Result<(T, Vec<NewAudit>)>,
    ) -> Result<T> {
        let now = self.clock.wall_ms();
        let data_key = *self.data_key()?;
        let signing = self.signing_key()?.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_write_err)?;
        let (out, audits) = f(&tx, &data_key, now)?;
        for a in &audits {
            a.validate()?;
            append_audit_tx(&tx, &self.identity, &signing, &*self.clock, a)?;
        }
        tx.commit().map_err(map_write_err)?;
        Ok(out)
    }

    /// Reads one record by sequence number.
    pub fn record(&self, seq: u64) -> Result<Option<Record>> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT bytes FROM records WHERE seq = ?1",
                [seq as i64],
                |r| r.get(0),
            )
            .optional()?;
        bytes.map(|b| Record::decode(&b)).transpose()
    }

    /// The newest `limit` audit entries, newest first (the admin audit page).
    pub fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut stmt = self
            .conn
            .prepare("SELECT bytes FROM audit ORDER BY seq DESC LIMIT ?1")?;
        let rows = stmt.query_map([limit as i64], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for b in rows {
            out.push(AuditEntry::decode(&b?)?);
        }
        Ok(out)
    }

    /// Reads the audit entries about one subject, oldest first.
    pub fn audit_entries_for(&self, subject: &str) -> Result<Vec<AuditEntry>> {
        let mut stmt = self
            .conn
            .prepare("SELECT bytes FROM audit WHERE subject = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([subject], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for b in rows {
            out.push(AuditEntry::decode(&b?)?);
        }
        Ok(out)
    }

    /// Counts and sizes for status displays.
    pub fn stats(&self) -> Result<StoreStats> {
        let c = &self.conn;
        let count =
            |sql: &str| -> Result<u64> { Ok(c.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64) };
        let (first_ms, last_ms): (Option<i64>, Option<i64>) = c.query_row(
            "SELECT (SELECT wall_ms FROM records ORDER BY seq LIMIT 1), (SELECT wall_ms FROM records ORDER BY seq DESC LIMIT 1)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(StoreStats {
            schema_version: migrations::current_version(c)?,
            db_bytes: self.disk_bytes(),
            checkins: count("SELECT count(*) FROM records WHERE outcome = 1")?,
            failed_attempts: count("SELECT count(*) FROM records WHERE outcome = 2")?,
            unsynced: count("SELECT count(*) FROM records WHERE synced_at_ms IS NULL")?,
            audit_entries: count("SELECT count(*) FROM audit")?,
            employees: count("SELECT count(*) FROM employees")?,
            templates: count("SELECT count(*) FROM templates")?,
            head_seq: count("SELECT coalesce(max(seq), 0) FROM records")?,
            first_ms,
            last_ms,
        })
    }

    /// The database file plus its WAL, in bytes.
    fn disk_bytes(&self) -> u64 {
        let wal = PathBuf::from(format!("{}-wal", self.db_path.display()));
        let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        size(&self.db_path) + size(&wal)
    }

    /// The newest record's sequence number and the bytes on disk: the cheap part of
    /// [`Store::stats`], for the health endpoint that is polled every few seconds.
    pub fn head_and_size(&self) -> Result<(u64, u64)> {
        let head: i64 =
            self.conn
                .query_row("SELECT coalesce(max(seq), 0) FROM records", [], |r| {
                    r.get(0)
                })?;
        Ok((head as u64, self.disk_bytes()))
    }

    /// Reads an integer pragma of the store's own connection (for diagnostics and tests).
    pub fn pragma(&self, name: &str) -> Result<i64> {
        Ok(self.conn.pragma_query_value(None, name, |r| r.get(0))?)
    }

    /// After deleting personal data: copies the WAL into the database (whose deleted cells
    /// `secure_delete` has zeroed) and truncates the WAL, so no older page image holding the
    /// deleted bytes stays on disk.
    pub fn wipe_wal(&self) -> Result<()> {
        self.checkpoint()
    }

    /// Moves the WAL's content into the database file (for size measurements and backups).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(map_write_err)
    }
}

/// Checks that the data dir is a usable directory, creating it (mode 0700) when allowed.
fn prepare_data_dir(dir: &Path, read_only: bool) -> Result<()> {
    let err = |reason: String| Error::DataDir {
        path: dir.to_owned(),
        reason,
    };
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(err("exists but is not a directory".into())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !read_only => {
            fs::create_dir_all(dir).map_err(|e| err(format!("cannot create: {e}")))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| err(format!("cannot set mode 0700: {e}")))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(err("does not exist".into()));
        }
        Err(e) => return Err(err(format!("cannot be accessed: {e}"))),
    }
    fs::read_dir(dir).map_err(|e| err(format!("cannot be read: {e}")))?;
    Ok(())
}

type LoadedIdentity = (
    Identity,
    Option<SigningKey>,
    Option<Zeroizing<[u8; keys::KEY_LEN]>>,
);

/// Loads the device identity, creating keys on first start. Never replaces a key that data
/// already depends on.
fn load_identity(
    conn: &Connection,
    dir: &Path,
    db_path: &Path,
    read_only: bool,
) -> Result<LoadedIdentity> {
    let setting = |k: &str| -> Result<Option<String>> {
        Ok(conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [k], |r| {
                r.get(0)
            })
            .optional()?)
    };
    let device_key_path = dir.join(DEVICE_KEY_FILE);
    let data_key_path = dir.join(DATA_KEY_FILE);
    let stored_id = setting("device_id")?;
    let stored_pub = setting("device_public_key")?;
    let stored_check = setting("data_key_check")?;

    let bad_db = |reason: String| Error::Database {
        path: db_path.to_owned(),
        reason,
    };
    match (stored_id, stored_pub) {
        (Some(id), Some(pub_hex)) => {
            let device_id = Uuid::parse_str(&id)
                .map_err(|_| bad_db(format!("settings.device_id {id:?} is not a UUID")))?;
            let public_key = parse_public_key(&pub_hex)
                .ok_or_else(|| bad_db("settings.device_public_key is not an Ed25519 key".into()))?;
            let identity = Identity {
                device_id,
                public_key,
            };
            let signing = match keys::read_key_file(&device_key_path) {
                Ok(seed) => {
                    let sk = SigningKey::from_bytes(&seed);
                    if sk.verifying_key() != public_key {
                        return Err(Error::KeyFile {
                            path: device_key_path,
                            reason: format!(
                                "does not belong to this store (store's public key {}, file's {}): \
                                 restore the original key file",
                                hex::encode(public_key.as_bytes()),
                                hex::encode(sk.verifying_key().as_bytes())
                            ),
                        });
                    }
                    Some(sk)
                }
                // Read-only verification needs only the public key recorded in the store.
                Err(Error::KeyFile { .. }) if read_only && !device_key_path.exists() => None,
                Err(Error::KeyFile { path, reason }) if reason == "missing" => {
                    let n: i64 = conn.query_row(
                        "SELECT (SELECT count(*) FROM records) + (SELECT count(*) FROM audit)",
                        [],
                        |r| r.get(0),
                    )?;
                    return Err(Error::KeyFile {
                        path,
                        reason: format!(
                            "missing, but this store's {n} records are signed by device key {}: \
                             restore the key file from backup (a new key will not be made for an existing store)",
                            hex::encode(public_key.as_bytes())
                        ),
                    });
                }
                Err(e) => return Err(e),
            };
            let data_key = if read_only && !data_key_path.exists() {
                None
            } else {
                let k = keys::read_key_file(&data_key_path).map_err(|e| match e {
                    Error::KeyFile { path, reason } if reason == "missing" => Error::KeyFile {
                        path,
                        reason:
                            "missing, but this store was made with one: restore it from backup \
                                 (without it the sealed face templates cannot be read)"
                                .into(),
                    },
                    e => e,
                })?;
                if let Some(check) = stored_check {
                    let sealed = hex::decode(&check)
                        .map_err(|_| bad_db("settings.data_key_check is not hex".into()))?;
                    keys::open(&k, &sealed, DATA_KEY_CHECK_AAD, "data key check").map_err(
                        |_| Error::KeyFile {
                            path: data_key_path.clone(),
                            reason: "is not the key this store was made with: restore the original"
                                .into(),
                        },
                    )?;
                }
                Some(k)
            };
            Ok((identity, signing, data_key))
        }
        _ if read_only => Err(bad_db(
            "has no device identity yet (it was never opened by a kiosk)".into(),
        )),
        _ => {
            // First start. A key file left from an earlier store is adopted rather than
            // replaced: it may be the key a backend already trusts.
            let seed = if device_key_path.exists() {
                keys::read_key_file(&device_key_path)?
            } else {
                keys::create_key_file(&device_key_path)?
            };
            let data_key = if data_key_path.exists() {
                keys::read_key_file(&data_key_path)?
            } else {
                keys::create_key_file(&data_key_path)?
            };
            let sk = SigningKey::from_bytes(&seed);
            let device_id = Uuid::now_v7();
            let check = keys::seal(&data_key, b"ok", DATA_KEY_CHECK_AAD);
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let res = (|| -> Result<()> {
                let mut put = conn.prepare("INSERT INTO settings (key, value) VALUES (?1, ?2)")?;
                put.execute(params!["device_id", device_id.to_string()])?;
                put.execute(params![
                    "device_public_key",
                    hex::encode(sk.verifying_key().as_bytes())
                ])?;
                put.execute(params!["data_key_check", hex::encode(&check)])?;
                Ok(())
            })();
            match res {
                Ok(()) => conn.execute_batch("COMMIT")?,
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(e);
                }
            }
            tracing::info!(%device_id, "new device identity created");
            Ok((
                Identity {
                    device_id,
                    public_key: sk.verifying_key(),
                },
                Some(sk),
                Some(data_key),
            ))
        }
    }
}

fn parse_public_key(hex_str: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_str).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// Maps SQLite's "full" to [`Error::StoreFull`] so callers can tell it from corruption.
fn map_write_err(e: rusqlite::Error) -> Error {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        return Error::StoreFull(e.to_string());
    }
    Error::Sqlite(e)
}

/// Last (seq, hash) of a chain table; when it is empty, its retention anchor; else (0, zeros).
fn chain_head(tx: &Transaction<'_>, table: &str) -> Result<(u64, [u8; 32])> {
    let last: Option<(i64, Vec<u8>)> = tx
        .query_row(
            &format!("SELECT seq, bytes FROM {table} ORDER BY seq DESC LIMIT 1"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match last {
        Some((seq, bytes)) => Ok((seq as u64, entry_hash(&bytes))),
        None => Ok(chain::anchor(tx, table)?.unwrap_or((0, [0; 32]))),
    }
}

fn append_record_tx(
    tx: &Transaction<'_>,
    identity: &Identity,
    signing: Option<&SigningKey>,
    clock: &dyn Clock,
    policy_version: u32,
    new: &NewRecord,
) -> Result<Appended> {
    let signing = signing.ok_or_else(|| Error::KeyFile {
        path: DEVICE_KEY_FILE.into(),
        reason: "store is open read-only; signing is not possible".into(),
    })?;
    let (head_seq, prev_hash) = chain_head(tx, "records")?;
    let wall_ms = clock.wall_ms();
    let mut rec = Record {
        uuid: uuid_v7_at(wall_ms),
        device_id: identity.device_id,
        seq: head_seq + 1,
        outcome: new.outcome,
        employee_id: new.employee_id.clone(),
        direction: new.direction,
        method: new.method,
        reason: new.reason.clone(),
        wall_ms,
        clock_synced: clock.synchronised(),
        boot_id: clock.boot_id(),
        monotonic_ns: clock.monotonic_ns(),
        liveness: new.liveness,
        match_score: new.match_score,
        policy_version,
        prev_hash,
        signature: [0; 64],
    };
    rec.signature = signing.sign(&rec.signed_bytes()).to_bytes();
    let bytes = rec.to_bytes();
    tx.execute(
        "INSERT INTO records (seq, uuid, wall_ms, employee_id, outcome, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            rec.seq as i64,
            rec.uuid.as_bytes().as_slice(),
            rec.wall_ms,
            rec.employee_id,
            rec.outcome.code() as i64,
            bytes
        ],
    )
    .map_err(map_write_err)?;
    Ok(Appended {
        seq: rec.seq,
        uuid: rec.uuid,
        hash: entry_hash(&bytes),
    })
}

fn append_audit_tx(
    tx: &Transaction<'_>,
    identity: &Identity,
    signing: &SigningKey,
    clock: &dyn Clock,
    new: &NewAudit,
) -> Result<Appended> {
    let (head_seq, prev_hash) = chain_head(tx, "audit")?;
    let wall_ms = clock.wall_ms();
    let mut e = AuditEntry {
        uuid: uuid_v7_at(wall_ms),
        device_id: identity.device_id,
        seq: head_seq + 1,
        wall_ms,
        clock_synced: clock.synchronised(),
        actor: new.actor.clone(),
        action: new.action.clone(),
        subject: new.subject.clone(),
        detail: new.detail.clone(),
        prev_hash,
        signature: [0; 64],
    };
    e.signature = signing.sign(&e.signed_bytes()).to_bytes();
    let bytes = e.to_bytes();
    tx.execute(
        "INSERT INTO audit (seq, uuid, wall_ms, action, subject, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            e.seq as i64,
            e.uuid.as_bytes().as_slice(),
            e.wall_ms,
            e.action,
            e.subject,
            bytes
        ],
    )
    .map_err(map_write_err)?;
    Ok(Appended {
        seq: e.seq,
        uuid: e.uuid,
        hash: entry_hash(&bytes),
    })
}

/// A UUIDv7 whose timestamp is the record's wall time (random bits keep it unique).
fn uuid_v7_at(wall_ms: i64) -> Uuid {
    let ms = wall_ms.max(0) as u64;
    let ts =
        uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, ((ms % 1000) * 1_000_000) as u32);
    Uuid::new_v7(ts)
}
