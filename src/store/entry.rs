//! What check-in records and audit entries share: the chain discipline. Each entry is canonical
//! bytes that start with a 4-byte magic and end with the previous entry's SHA-256 and an Ed25519
//! signature over everything before it; each lives in a table of its own with a sequence number
//! from 1, and a retention purge leaves an anchor (seq, hash) where the chain now starts.
//!
//! [`ChainEntry`] is what a format provides (its table, its columns, its decoder); [`append`]
//! and [`decode_framed`] are the one append path and the one framing check both formats use,
//! and the verifier in `super::chain` walks either chain through the same trait.

use ed25519_dalek::{Signer, SigningKey};
use rusqlite::{Connection, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::codec::Reader;
use crate::base::clock::Clock;
use crate::base::error::{Error, Result};

/// Length of an Ed25519 signature, always the last bytes of a record or audit entry.
pub const SIGNATURE_LEN: usize = 64;

/// SHA-256 of a record's or audit entry's full bytes: what the next entry's `prev_hash` holds.
pub fn entry_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// An entry type that lives in a signed chain table.
pub trait ChainEntry: Sized + Send {
    /// The chain's name in reports ("check-in", "audit").
    const NAME: &'static str;
    /// Its table.
    const TABLE: &'static str;
    /// SQL expression over the row's columns that [`ChainEntry::index_key`] must reproduce.
    const INDEX_EXPR: &'static str;
    /// SQL expression giving the kept hash of a pseudonymised entry (NULL when whole), and
    /// whether the backend acknowledged the entry.
    const REDACTION_EXPR: &'static str;
    /// Parses canonical bytes.
    fn decode(bytes: &[u8]) -> Result<Self>;
    /// The bytes the signature covers.
    fn signed_bytes(&self) -> Vec<u8>;
    /// Puts the signature in place.
    fn set_signature(&mut self, signature: [u8; SIGNATURE_LEN]);
    /// Inserts the entry's row: its query columns beside the canonical `bytes`.
    fn insert(&self, tx: &Transaction<'_>, bytes: &[u8]) -> rusqlite::Result<usize>;
    /// Position in its chain, from 1.
    fn seq(&self) -> u64;
    /// Unique id (UUIDv7).
    fn uuid(&self) -> Uuid;
    /// The kiosk that signed it.
    fn device_id(&self) -> Uuid;
    /// Wall time, Unix milliseconds.
    fn wall_ms(&self) -> i64;
    /// SHA-256 of the previous entry.
    fn prev_hash(&self) -> [u8; 32];
    /// The query columns as [`ChainEntry::INDEX_EXPR`] computes them.
    fn index_key(&self) -> String;
}

/// The [`ChainEntry`] items every format has in fields of the same names (`seq`, `uuid`,
/// `device_id`, `wall_ms`, `prev_hash`, `signature`) and the two it has as inherent methods.
macro_rules! chain_fields {
    ($t:ty) => {
        fn decode(bytes: &[u8]) -> Result<Self> {
            <$t>::decode(bytes)
        }
        fn signed_bytes(&self) -> Vec<u8> {
            <$t>::signed_bytes(self)
        }
        fn set_signature(&mut self, signature: [u8; SIGNATURE_LEN]) {
            self.signature = signature;
        }
        fn seq(&self) -> u64 {
            self.seq
        }
        fn uuid(&self) -> Uuid {
            self.uuid
        }
        fn device_id(&self) -> Uuid {
            self.device_id
        }
        fn wall_ms(&self) -> i64 {
            self.wall_ms
        }
        fn prev_hash(&self) -> [u8; 32] {
            self.prev_hash
        }
    };
}
pub(crate) use chain_fields;

/// Signed part, then signature: an entry's canonical bytes.
pub fn framed(mut signed: Vec<u8>, signature: &[u8; SIGNATURE_LEN]) -> Vec<u8> {
    signed.extend_from_slice(signature);
    signed
}

/// Decodes canonical bytes that start with `magic`: `body` reads the fields, and nothing may
/// follow them. `what` names the format in errors.
pub fn decode_framed<T>(
    bytes: &[u8],
    magic: &[u8; 4],
    what: &str,
    body: impl FnOnce(&mut Reader<'_>) -> Result<T>,
) -> Result<T> {
    let mut r = Reader::new(bytes);
    let m: [u8; 4] = r.array("magic")?;
    if &m != magic {
        return Err(Error::invalid(
            what,
            format!("bad magic/version {:?}", String::from_utf8_lossy(&m)),
        ));
    }
    let v = body(&mut r)?;
    r.end()?;
    Ok(v)
}

/// The retention anchor of a chain table: (seq, hash) of the last purged entry, if any.
pub fn anchor(conn: &Connection, table: &str) -> Result<Option<(u64, [u8; 32])>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT seq, hash FROM chain_anchor WHERE chain = ?1",
            [table],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match row {
        Some((seq, hash)) => Some((
            seq as u64,
            hash.try_into()
                .map_err(|_| Error::invalid("chain_anchor", "hash is not 32 bytes"))?,
        )),
        None => None,
    })
}

/// Last (seq, hash) of a chain table; when it is empty, its retention anchor; else (0, zeros).
pub fn head(tx: &Transaction<'_>, table: &str) -> Result<(u64, [u8; 32])> {
    let last: Option<(i64, Vec<u8>)> = tx
        .query_row(
            &format!("SELECT seq, bytes FROM {table} ORDER BY seq DESC LIMIT 1"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match last {
        Some((seq, bytes)) => Ok((seq as u64, entry_hash(&bytes))),
        None => Ok(anchor(tx, table)?.unwrap_or((0, [0; 32]))),
    }
}

/// Where a new entry goes in its chain, and when: what every format's constructor needs.
pub struct Link {
    /// A fresh UUIDv7 carrying the wall time.
    pub uuid: Uuid,
    /// One past the chain's head.
    pub seq: u64,
    /// The clock's wall time.
    pub wall_ms: i64,
    /// The head's hash.
    pub prev_hash: [u8; 32],
}

/// Where an entry landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Sequence number in its chain.
    pub seq: u64,
    /// Entry UUID.
    pub uuid: Uuid,
    /// SHA-256 of the stored bytes.
    pub hash: [u8; 32],
}

/// Appends one entry of `E`'s chain inside `tx`: links it to the head, lets `build` fill in the
/// fields, signs it and inserts it. A full disk comes back as [`Error::StoreFull`].
pub fn append<E: ChainEntry>(
    tx: &Transaction<'_>,
    signing: &SigningKey,
    clock: &dyn Clock,
    build: impl FnOnce(Link) -> E,
) -> Result<Appended> {
    let (head_seq, prev_hash) = head(tx, E::TABLE)?;
    let wall_ms = clock.wall_ms();
    let mut e = build(Link {
        uuid: uuid_v7_at(wall_ms),
        seq: head_seq + 1,
        wall_ms,
        prev_hash,
    });
    let signed = e.signed_bytes();
    let signature = signing.sign(&signed).to_bytes();
    e.set_signature(signature);
    let bytes = framed(signed, &signature);
    e.insert(tx, &bytes).map_err(map_write_err)?;
    Ok(Appended {
        seq: e.seq(),
        uuid: e.uuid(),
        hash: entry_hash(&bytes),
    })
}

/// A full disk or size cap is "store full" (nothing recorded was lost); anything else is
/// SQLite's own error.
pub fn map_write_err(e: rusqlite::Error) -> Error {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        Error::StoreFull(e.to_string())
    } else {
        Error::Sqlite(e)
    }
}

/// A UUIDv7 whose timestamp is the record's wall time (random bits keep it unique).
fn uuid_v7_at(wall_ms: i64) -> Uuid {
    let ms = wall_ms.max(0) as u64;
    let ts =
        uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, ((ms % 1000) * 1_000_000) as u32);
    Uuid::new_v7(ts)
}
