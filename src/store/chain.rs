//! Verification of the two signed chains (check-in records and audit entries).
//!
//! For every entry, in sequence order: the bytes decode canonically; the query columns agree
//! with the signed bytes; the sequence number continues the previous one without a gap; the
//! previous-hash field equals the SHA-256 of the previous entry; the Ed25519 signature verifies
//! under the device's public key. The first entry that fails is named with the reason.
//!
//! Decoding, hashing and signature checks are independent per entry, so they run in parallel
//! over chunks (signatures batch-verified, falling back to one-by-one to find the culprit); only
//! the cheap link check is sequential.

use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;
use rusqlite::Connection;
use serde::Serialize;
use uuid::Uuid;

use super::audit::AuditEntry;
use super::record::{Record, SIGNATURE_LEN, entry_hash};
use crate::error::{Error, Result};

/// The result of verifying one chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainSummary {
    /// Which chain ("check-in" or "audit").
    pub chain: &'static str,
    /// Entries verified.
    pub entries: u64,
    /// Sequence number of the last entry (0 when empty).
    pub head_seq: u64,
    /// Hex SHA-256 of the last entry ("" when empty).
    pub head_hash: String,
}

/// An entry type that lives in a signed chain table.
trait ChainEntry: Sized + Send {
    const NAME: &'static str;
    const TABLE: &'static str;
    /// SQL expression over the row's columns that [`ChainEntry::index_key`] must reproduce.
    const INDEX_EXPR: &'static str;
    fn decode(bytes: &[u8]) -> Result<Self>;
    fn seq(&self) -> u64;
    fn uuid(&self) -> Uuid;
    fn device_id(&self) -> Uuid;
    fn wall_ms(&self) -> i64;
    fn prev_hash(&self) -> [u8; 32];
    fn index_key(&self) -> String;
}

impl ChainEntry for Record {
    const NAME: &'static str = "check-in";
    const TABLE: &'static str = "records";
    const INDEX_EXPR: &'static str = "employee_id || '|' || outcome";
    fn decode(bytes: &[u8]) -> Result<Self> {
        Record::decode(bytes)
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
    fn index_key(&self) -> String {
        format!("{}|{}", self.employee_id, self.outcome.code())
    }
}

impl ChainEntry for AuditEntry {
    const NAME: &'static str = "audit";
    const TABLE: &'static str = "audit";
    const INDEX_EXPR: &'static str = "action || '|' || subject";
    fn decode(bytes: &[u8]) -> Result<Self> {
        AuditEntry::decode(bytes)
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
    fn index_key(&self) -> String {
        format!("{}|{}", self.action, self.subject)
    }
}

/// One row as read from the table.
struct Row {
    seq: u64,
    uuid: Vec<u8>,
    wall_ms: i64,
    key: String,
    bytes: Vec<u8>,
}

/// What the parallel phase learnt about one row.
struct Checked {
    seq_in_bytes: u64,
    prev_hash: [u8; 32],
    hash: [u8; 32],
}

const CHUNK: usize = 16_384;
const BATCH: usize = 256;

/// Verifies both chains of a store; `progress` is called with the number of entries done so
/// far across both.
pub fn verify_all(
    conn: &Connection,
    key: &VerifyingKey,
    device_id: Uuid,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<ChainSummary>> {
    let records = verify_chain::<Record>(conn, key, device_id, 0, progress)?;
    let audit = verify_chain::<AuditEntry>(conn, key, device_id, records.entries, progress)?;
    Ok(vec![records, audit])
}

fn verify_chain<E: ChainEntry>(
    conn: &Connection,
    key: &VerifyingKey,
    device_id: Uuid,
    offset: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ChainSummary> {
    let mut stmt = conn.prepare(&format!(
        "SELECT seq, uuid, wall_ms, {}, bytes FROM {} ORDER BY seq",
        E::INDEX_EXPR,
        E::TABLE
    ))?;
    let mut rows = stmt.query([])?;
    let mut prev: Option<(u64, [u8; 32])> = None;
    let mut done = 0u64;
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        let row = rows.next()?;
        let end = row.is_none();
        if let Some(r) = row {
            chunk.push(Row {
                seq: r.get::<_, i64>(0)? as u64,
                uuid: r.get(1)?,
                wall_ms: r.get(2)?,
                key: r.get(3)?,
                bytes: r.get(4)?,
            });
        }
        if chunk.len() == CHUNK || (end && !chunk.is_empty()) {
            let checked: Vec<Result<Checked, String>> = chunk
                .par_chunks(BATCH)
                .flat_map_iter(|batch| check_batch::<E>(batch, key, device_id))
                .collect();
            for (row, res) in chunk.iter().zip(checked) {
                let c = res.map_err(|reason| broken::<E>(row.seq, reason))?;
                link(&mut prev, row, &c).map_err(|reason| broken::<E>(row.seq, reason))?;
            }
            done += chunk.len() as u64;
            progress(offset + done);
            chunk.clear();
        }
        if end {
            break;
        }
    }
    Ok(ChainSummary {
        chain: E::NAME,
        entries: done,
        head_seq: prev.map_or(0, |p| p.0),
        head_hash: prev.map_or(String::new(), |p| hex::encode(p.1)),
    })
}

fn broken<E: ChainEntry>(seq: u64, reason: String) -> Error {
    Error::ChainBroken {
        chain: E::NAME,
        seq,
        reason,
    }
}

/// The sequential part: sequence continuity and the hash link.
fn link(prev: &mut Option<(u64, [u8; 32])>, row: &Row, c: &Checked) -> Result<(), String> {
    if c.seq_in_bytes != row.seq {
        return Err(format!(
            "the row at position {} holds the entry signed as number {} (entries were moved or swapped)",
            row.seq, c.seq_in_bytes
        ));
    }
    let (want_seq, want_hash) = match prev {
        Some((s, h)) => (*s + 1, *h),
        None => (1, [0; 32]),
    };
    if row.seq != want_seq {
        return Err(if row.seq > want_seq {
            let missing = if row.seq - want_seq == 1 {
                format!("{want_seq} is missing")
            } else {
                format!("{want_seq} to {} are missing", row.seq - 1)
            };
            format!(
                "sequence jumps from {} to {}: {missing} (deleted)",
                want_seq - 1,
                row.seq
            )
        } else {
            format!("sequence goes back from {} to {}", want_seq - 1, row.seq)
        });
    }
    if c.prev_hash != want_hash {
        return Err(format!(
            "previous-hash field does not match entry {} (chain broken: an earlier entry was altered, removed or reordered)",
            want_seq - 1
        ));
    }
    *prev = Some((row.seq, c.hash));
    Ok(())
}

/// Decodes, cross-checks and signature-verifies a batch of rows.
fn check_batch<E: ChainEntry>(
    rows: &[Row],
    key: &VerifyingKey,
    device_id: Uuid,
) -> Vec<Result<Checked, String>> {
    let mut out: Vec<Result<Checked, String>> = Vec::with_capacity(rows.len());
    let mut sig_idx = Vec::with_capacity(rows.len());
    let mut msgs: Vec<&[u8]> = Vec::with_capacity(rows.len());
    let mut sigs = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        match decode_row::<E>(row, device_id) {
            Ok(c) => {
                let (msg, sig) = row.bytes.split_at(row.bytes.len() - SIGNATURE_LEN);
                msgs.push(msg);
                sigs.push(Signature::from_bytes(sig.try_into().expect("64 bytes")));
                sig_idx.push(i);
                out.push(Ok(c));
            }
            Err(e) => out.push(Err(e)),
        }
    }
    let keys = vec![*key; msgs.len()];
    if !msgs.is_empty() && ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_err() {
        for (j, &i) in sig_idx.iter().enumerate() {
            if key.verify_strict(msgs[j], &sigs[j]).is_err() {
                out[i] = Err(
                    "signature does not verify with the device key (entry altered or forged)"
                        .into(),
                );
            }
        }
    }
    out
}

fn decode_row<E: ChainEntry>(row: &Row, device_id: Uuid) -> Result<Checked, String> {
    if row.bytes.len() <= SIGNATURE_LEN {
        return Err(format!("stored entry is only {} bytes", row.bytes.len()));
    }
    let e = E::decode(&row.bytes).map_err(|e| format!("stored bytes do not decode: {e}"))?;
    if e.device_id() != device_id {
        return Err(format!(
            "made by device {}, not this device {device_id}",
            e.device_id()
        ));
    }
    if row.uuid != e.uuid().as_bytes() {
        return Err("uuid column differs from the signed entry".into());
    }
    if row.wall_ms != e.wall_ms() {
        return Err(format!(
            "time column ({}) differs from the signed time ({})",
            row.wall_ms,
            e.wall_ms()
        ));
    }
    if row.key != e.index_key() {
        return Err("indexed columns differ from the signed entry".into());
    }
    Ok(Checked {
        seq_in_bytes: e.seq(),
        prev_hash: e.prev_hash(),
        hash: entry_hash(&row.bytes),
    })
}
