//! The on-device store: SQLite (bundled) in the data dir, plus the two key files.
//!
//! Owns the schema and its migrations, the device identity (id and Ed25519 key), appending
//! signed check-in records and audit entries to their chains, the roster with sealed face
//! templates, and verification. The database runs in WAL mode with `synchronous=FULL`, so a
//! record is on disk before [`Store::append`] returns; `secure_delete` overwrites deleted
//! content; foreign keys make deleting an employee delete their templates in the same step.
//! It must not know about cameras, models, the UI or the network.

pub mod audit;
pub(crate) mod biometrics;
pub(crate) mod chain;
pub(crate) mod codec;
pub mod consent;
pub mod entry;
pub mod export;
pub mod hr;
pub(crate) mod identity;
pub(crate) mod keys;
pub mod migrations;
pub(crate) mod overrides;
pub mod record;
pub(crate) mod retention;
pub mod roster;
pub mod settings;
pub(crate) mod subject;
pub mod sync;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction};
use zeroize::Zeroizing;

use crate::base::clock::Clock;
use crate::base::error::{Error, Result};
use audit::{AuditEntry, NewAudit};
use entry::Appended;
use entry::map_write_err;
use identity::{Identity, load_identity, prepare_data_dir};
use record::{NewRecord, Record};

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
    /// The config file's `policy.minor_age` (the backend's policy, once sent, wins).
    pub minor_age: u32,
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
            minor_age: cfg.policy.minor_age,
            read_only: false,
        }
    }
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
    minor_age: u32,
}

/// The database and the WAL and shared-memory files SQLite keeps beside it.
fn db_files(dir: &Path) -> [PathBuf; 3] {
    ["", "-wal", "-shm"].map(|suffix| dir.join(format!("{DB_FILE}{suffix}")))
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db_path", &self.db_path)
            .field("device_id", &self.identity.device_id)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating on first start, unless read-only) the store in `opts.data_dir`.
    pub fn open(opts: &StoreOptions, clock: Arc<dyn Clock>) -> Result<Store> {
        let dir = &opts.data_dir;
        prepare_data_dir(dir, opts.read_only)?;
        let db_path = dir.join(DB_FILE);
        identity::refuse_lost_database(dir, &db_path)?;
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
        if !opts.read_only {
            // Owner only, like the key files; SQLite gives the WAL and shm files the database's
            // mode, so this comes before WAL mode is switched on.
            for p in db_files(dir) {
                if p.exists() {
                    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).map_err(|e| {
                        db_err(format!("cannot set mode 0600 on {}: {e}", p.display()))
                    })?;
                }
            }
        }
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
            minor_age: opts.minor_age,
        })
    }

    /// Starts over in a data dir whose database is lost (missing or empty) but whose keys are
    /// still there: the keys move into `archived-keys-<unix ms>/` beside it (never deleted: a
    /// backend may still need the old public key to check what it received), and a new store
    /// with a new device identity is created; its first audit entry names the archive. A
    /// readable database is never touched. Returns the new store and the archive's path.
    pub fn reinit(opts: &StoreOptions, clock: Arc<dyn Clock>) -> Result<(Store, PathBuf)> {
        let dir = &opts.data_dir;
        let db_path = dir.join(DB_FILE);
        if identity::refuse_lost_database(dir, &db_path).is_ok() {
            return Err(Error::invalid(
                "store reinit",
                format!(
                    "{} is not lost (it exists and is not empty, or there are no keys to archive): nothing was changed",
                    db_path.display()
                ),
            ));
        }
        let archive = dir.join(format!("archived-keys-{}", clock.wall_ms()));
        fs::create_dir(&archive).map_err(|e| Error::io(&archive, e))?;
        fs::set_permissions(&archive, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(&archive, e))?;
        for name in [
            DEVICE_KEY_FILE,
            DATA_KEY_FILE,
            crate::store::sync::TOKEN_FILE,
        ] {
            let from = dir.join(name);
            if from.exists() {
                fs::rename(&from, archive.join(name)).map_err(|e| Error::io(&from, e))?;
            }
        }
        for p in db_files(dir) {
            if p.exists() {
                fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
        let mut store = Store::open(opts, clock)?;
        let mut a = NewAudit::new("cli", "store_reinitialised", "");
        a.detail = serde_json::json!({ "archived_keys": archive.file_name().map(|n| n.to_string_lossy().into_owned()) })
            .to_string();
        store.audit(&a)?;
        tracing::warn!(archive = %archive.display(), "store reinitialised; the old keys are archived");
        Ok((store, archive))
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

    /// The config file's minor age, as the store was opened with.
    pub(crate) fn file_minor_age(&self) -> u32 {
        self.minor_age
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

    /// Hex of the device key's signature over the pairing proof for `code`
    /// ([`crate::base::protocol::pairing_proof_message`]): the backend pairs a device only
    /// with a proof that the one pairing holds its private key. The message starts with its
    /// own label, so the signature can never stand for a record or an audit entry.
    pub fn pairing_proof(&self, code: &str) -> Result<String> {
        use ed25519_dalek::Signer;
        let msg = crate::base::protocol::pairing_proof_message(
            code,
            self.identity.device_id,
            &hex::encode(self.identity.public_key.as_bytes()),
        );
        Ok(hex::encode(self.signing_key()?.sign(&msg).to_bytes()))
    }

    /// Appends a signed check-in record (or failed attempt) and returns once it is durable.
    pub fn append(&mut self, new: &NewRecord) -> Result<Appended> {
        self.append_many(std::slice::from_ref(new)).map(|a| a[0])
    }

    /// Appends many records in one transaction (one fsync). For imports and benchmarks; the
    /// kiosk appends one at a time so each is durable before the person is told.
    pub fn append_many(&mut self, news: &[NewRecord]) -> Result<Vec<Appended>> {
        for n in news {
            n.validate()?;
        }
        let signing = self.signing_key()?.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_write_err)?;
        let mut out = Vec::with_capacity(news.len());
        for n in news {
            out.push(entry::append(&tx, &signing, &*self.clock, |l| {
                Record::unsigned(
                    l,
                    self.identity.device_id,
                    &*self.clock,
                    self.policy_version,
                    n,
                )
            })?);
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
        let a = entry::append(&tx, &signing, &*self.clock, |l| {
            AuditEntry::unsigned(l, self.identity.device_id, &*self.clock, new)
        })?;
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
            entry::append(&tx, &signing, &*self.clock, |l| {
                AuditEntry::unsigned(l, self.identity.device_id, &*self.clock, a)
            })?;
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
