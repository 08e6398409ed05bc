//! Ingest: verifying each uploaded entry (canonical decoding, device, signature, links to its
//! stored neighbours) before it is stored, keeping per-device heads and the conflicts table,
//! and heartbeats.

use std::collections::BTreeMap;

use crate::hub::sql::{Conn, Lock, OptionalExt, SqlError, params};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use uuid::Uuid;

use crate::base::protocol::{
    Ack, AckStatus, BackendHeads, ChainHead, Heartbeat, HeartbeatResponse, MAX_BATCH, UploadEntry,
    UploadResponse,
};
use crate::store::audit::AuditEntry;
use crate::store::chain::verify_entry_signatures;
use crate::store::entry::entry_hash;
use crate::store::record::Record;

use super::pairing::Device;
use super::{ApiFailure, Chain, HubDb, fleet, webhooks};

/// The fields of an entry the hub indexes, from its decoded bytes.
struct Decoded {
    uuid: Uuid,
    device_id: Uuid,
    seq: u64,
    wall_ms: i64,
    who: String,
    prev_hash: [u8; 32],
    /// A check-in refused for liveness (what a run of spoofing attempts looks like).
    liveness_failed: bool,
    /// An audit entry's action.
    action: String,
    /// An accepted check-in as webhooks receive it.
    checkin: Option<serde_json::Value>,
}

fn decode(chain: Chain, bytes: &[u8]) -> crate::base::error::Result<Decoded> {
    Ok(match chain {
        Chain::Checkins => {
            let r = Record::decode(bytes)?;
            r.validate_content()?;
            let checkin = (r.outcome == crate::store::record::Outcome::Accepted).then(|| {
                serde_json::json!({
                    "record_uuid": r.uuid.to_string(),
                    "employee_id": r.employee_id,
                    "timestamp": crate::store::export::rfc3339_ms(r.wall_ms),
                    "wall_ms": r.wall_ms,
                    "punch": r.punch.as_str(),
                    "direction": r.punch.direction(),
                    "method": r.method.as_str(),
                    "device_id": r.device_id.to_string(),
                })
            });
            Decoded {
                checkin,
                uuid: r.uuid,
                device_id: r.device_id,
                seq: r.seq,
                wall_ms: r.wall_ms,
                liveness_failed: r.outcome != crate::store::record::Outcome::Accepted
                    && r.reason == "liveness_failed",
                who: r.employee_id,
                prev_hash: r.prev_hash,
                action: String::new(),
            }
        }
        Chain::Audit => {
            let a = AuditEntry::decode(bytes)?;
            a.validate_content()?;
            Decoded {
                uuid: a.uuid,
                device_id: a.device_id,
                seq: a.seq,
                wall_ms: a.wall_ms,
                who: a.subject,
                prev_hash: a.prev_hash,
                liveness_failed: false,
                action: a.action,
                checkin: None,
            }
        }
    })
}

impl HubDb {
    /// Verifies and stores an uploaded batch; see the module docs for the checks.
    pub fn ingest(
        &mut self,
        device: &Device,
        chain: Chain,
        entries: &[UploadEntry],
        now_ms: i64,
    ) -> Result<UploadResponse, ApiFailure> {
        if entries.is_empty() {
            return Err(ApiFailure::bad_request("entries must not be empty"));
        }
        if let Some(e) = entries.iter().find(|e| e.seq > i64::MAX as u64) {
            return Err(ApiFailure::bad_request(format!(
                "seq {} is out of range (at most 2^63-1)",
                e.seq
            )));
        }
        if entries.len() > MAX_BATCH {
            return Err(ApiFailure {
                status: 400,
                code: "batch_too_large",
                message: format!(
                    "{} entries in one upload; at most {MAX_BATCH}",
                    entries.len()
                ),
            });
        }
        // Decode everything first; `acks` collects early rejections.
        let mut acks: BTreeMap<u64, Ack> = BTreeMap::new();
        let mut good: Vec<(Vec<u8>, Decoded)> = Vec::with_capacity(entries.len());
        for e in entries {
            let reject = |reason: String, bytes: &[u8]| Ack {
                seq: e.seq,
                status: AckStatus::Rejected,
                hash: hex::encode(entry_hash(bytes)),
                reason,
            };
            let bytes = match B64.decode(e.entry.as_bytes()) {
                Ok(b) => b,
                Err(err) => {
                    acks.entry(e.seq)
                        .or_insert_with(|| reject(format!("entry is not base64: {err}"), &[]));
                    continue;
                }
            };
            match decode(chain, &bytes) {
                Err(err) => {
                    acks.entry(e.seq)
                        .or_insert_with(|| reject(format!("entry does not decode: {err}"), &bytes));
                }
                Ok(d) if d.device_id != device.id => {
                    acks.entry(e.seq).or_insert_with(|| {
                        reject(
                            "entry was made by another device than the token's".into(),
                            &bytes,
                        )
                    });
                }
                Ok(d) if d.seq != e.seq => {
                    acks.entry(e.seq).or_insert_with(|| {
                        reject(
                            format!("seq {} does not match the signed seq {}", e.seq, d.seq),
                            &bytes,
                        )
                    });
                }
                Ok(d) => good.push((bytes, d)),
            }
        }
        let refs: Vec<&[u8]> = good.iter().map(|(b, _)| b.as_slice()).collect();
        let sig_ok = verify_entry_signatures(&device.public_key, &refs);
        let mut verified: Vec<(Vec<u8>, Decoded)> = Vec::with_capacity(good.len());
        for ((bytes, d), ok) in good.into_iter().zip(sig_ok) {
            if ok {
                verified.push((bytes, d));
            } else {
                acks.entry(d.seq).or_insert_with(|| Ack {
                    seq: d.seq,
                    status: AckStatus::Rejected,
                    hash: hex::encode(entry_hash(&bytes)),
                    reason: "signature does not verify with the device's key".into(),
                });
            }
        }
        verified.sort_by_key(|(_, d)| d.seq);

        let dev = device.id.to_string();
        let tx = self.conn.begin(Lock::Device(&dev))?;
        for (bytes, d) in &verified {
            let hash = entry_hash(bytes);
            let ack = store_entry(&tx, &dev, chain, bytes, d, &hash, now_ms)?;
            if ack.status == AckStatus::Stored {
                match chain {
                    Chain::Checkins if d.liveness_failed => {
                        fleet::liveness_failure(&tx, &dev, d.seq, d.wall_ms)?
                    }
                    Chain::Checkins if d.checkin.is_some() => {
                        let mut data = d.checkin.clone().expect("checked");
                        data["site"] = device.site.clone().into();
                        webhooks::enqueue(&tx, "checkins", d.wall_ms, &data)?;
                    }
                    Chain::Audit => fleet::audit_alerts(
                        &tx,
                        &dev,
                        &fleet::AuditFacts {
                            uuid: d.uuid,
                            wall_ms: d.wall_ms,
                            action: d.action.clone(),
                            subject: d.who.clone(),
                        },
                    )?,
                    Chain::Checkins => {}
                }
            }
            // A verified entry beats an earlier rejection of a bad copy with the same seq.
            match acks.get(&d.seq) {
                Some(prev) if prev.status != AckStatus::Rejected => {}
                _ => {
                    acks.insert(d.seq, ack);
                }
            }
        }
        let head = advance_head(&tx, &dev, chain)?;
        tx.commit()?;
        Ok(UploadResponse {
            acks: acks.into_values().collect(),
            head,
        })
    }

    /// Records a heartbeat and answers with the hub's time.
    pub fn heartbeat(
        &mut self,
        device: &Device,
        hb: &Heartbeat,
        now_ms: i64,
    ) -> Result<HeartbeatResponse, ApiFailure> {
        for (what, v) in [
            ("queue_depth", hb.queue_depth),
            ("audit_queue_depth", hb.audit_queue_depth),
            ("free_disk_bytes", hb.free_disk_bytes),
            ("head_seq", hb.head_seq),
        ] {
            if v > i64::MAX as u64 {
                return Err(ApiFailure::bad_request(format!(
                    "{what} {v} is out of range (at most 2^63-1)"
                )));
            }
        }
        let skew = now_ms.saturating_sub(hb.device_time_ms);
        let dev = device.id.to_string();
        let before_skew = self
            .clock_skew_ms(&device.id)
            .map_err(ApiFailure::internal)?;
        let was_off = before_skew.is_some_and(|s| s.abs() > 5 * 60_000);
        let json = serde_json::to_string(hb).map_err(ApiFailure::internal)?;
        let tx = self.conn.begin(Lock::Device(&dev))?;
        let before = self.last_heartbeat(&dev)?;
        tx.execute(
            "UPDATE devices SET last_seen_ms = ?2, heartbeat = ?3, clock_skew_ms = ?4 WHERE id = ?1",
            params![dev, now_ms, json, skew],
        )?;
        fleet::heartbeat_alerts(&tx, &dev, before.as_ref(), hb, skew, before_skew, now_ms)?;
        tx.commit()?;
        if skew.abs() > 5 * 60_000 && !was_off {
            tracing::warn!(device = %device.id, skew_s = skew / 1000, "device clock differs from the hub's");
        }
        let head = |chain: Chain| -> Result<ChainHead, ApiFailure> {
            let row: Option<(i64, Vec<u8>)> = self
                .conn
                .query_row(
                    "SELECT seq, hash FROM heads WHERE device_id = ?1 AND chain = ?2",
                    params![device.id.to_string(), chain.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(match row {
                Some((seq, hash)) if seq > 0 => ChainHead {
                    seq: seq as u64,
                    hash: hex::encode(hash),
                },
                _ => ChainHead::default(),
            })
        };
        Ok(HeartbeatResponse {
            hub_time_ms: now_ms,
            clock_skew_ms: skew,
            heads: Some(BackendHeads {
                checkins: head(Chain::Checkins)?,
                audit: head(Chain::Audit)?,
            }),
        })
    }
}

/// A stored entry's hash and previous hash.
type HashLink = (Vec<u8>, Vec<u8>);

/// Stores one verified entry unless it contradicts what is stored; returns its ack.
fn store_entry(
    tx: &Conn,
    dev: &str,
    chain: Chain,
    bytes: &[u8],
    d: &Decoded,
    hash: &[u8; 32],
    now_ms: i64,
) -> Result<Ack, ApiFailure> {
    let ack = |status, reason: &str| Ack {
        seq: d.seq,
        status,
        hash: hex::encode(hash),
        reason: reason.into(),
    };
    let conflict = |kind: &str, detail: &str| -> Result<Ack, ApiFailure> {
        tx.execute(
            "INSERT INTO conflicts (device_id, chain, seq, kind, detail, hash, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            params![dev, chain.as_str(), d.seq as i64, kind, detail, hash.to_vec(), now_ms],
        )?;
        tracing::warn!(
            device = dev,
            chain = chain.as_str(),
            seq = d.seq,
            kind,
            "chain conflict"
        );
        fleet::raise(
            tx,
            dev,
            now_ms,
            "chain_conflict",
            &format!("{} chain, seq {}: {kind} ({detail})", chain.as_str(), d.seq),
            &format!("{}:{}:{}", chain.as_str(), d.seq, hex::encode(hash)),
        )?;
        Ok(ack(AckStatus::Rejected, &format!("{kind}: {detail}")))
    };
    let stored_hash = |seq: u64| -> Result<Option<HashLink>, SqlError> {
        tx.query_row(
            "SELECT hash, prev_hash FROM entries WHERE device_id = ?1 AND chain = ?2 AND seq = ?3",
            params![dev, chain.as_str(), seq as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
    };
    if let Some((h, _)) = stored_hash(d.seq)? {
        return if h == hash {
            Ok(ack(AckStatus::Duplicate, ""))
        } else {
            conflict("fork", "a different entry with this seq is already stored")
        };
    }
    if d.seq == 1 && d.prev_hash != [0u8; 32] {
        return conflict(
            "link",
            "the first entry must have an all-zero previous hash",
        );
    }
    if d.seq > 1
        && let Some((h, _)) = stored_hash(d.seq - 1)?
        && h != d.prev_hash
    {
        return conflict(
            "link",
            "previous hash does not match the stored entry seq-1",
        );
    }
    if let Some((_, next_prev)) = stored_hash(d.seq + 1)?
        && next_prev != hash
    {
        return conflict("link", "the stored entry seq+1 does not link to this entry");
    }
    let inserted = tx.execute(
        "INSERT INTO entries (device_id, chain, seq, uuid, hash, prev_hash, bytes, wall_ms, employee_id, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
        params![
            dev,
            chain.as_str(),
            d.seq as i64,
            d.uuid.as_bytes().to_vec(),
            hash.to_vec(),
            d.prev_hash.to_vec(),
            bytes,
            d.wall_ms,
            if chain == Chain::Checkins { d.who.as_str() } else { "" },
            now_ms
        ],
    )?;
    if inserted == 0 {
        return conflict("fork", "this entry's uuid is already stored at another seq");
    }
    Ok(ack(AckStatus::Stored, ""))
}

/// Moves a chain's head over every newly contiguous entry.
fn advance_head(tx: &Conn, dev: &str, chain: Chain) -> Result<ChainHead, ApiFailure> {
    let (mut seq, mut hash): (i64, Vec<u8>) = tx
        .query_row(
            "SELECT seq, hash FROM heads WHERE device_id = ?1 AND chain = ?2",
            params![dev, chain.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, vec![0u8; 32]));
    'outer: loop {
        let rows: Vec<(i64, Vec<u8>)> = tx.query_map(
            "SELECT seq, hash FROM entries WHERE device_id = ?1 AND chain = ?2 AND seq > ?3 ORDER BY seq LIMIT 1000",
            params![dev, chain.as_str(), seq],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if rows.is_empty() {
            break;
        }
        for (s, h) in rows {
            if s != seq + 1 {
                break 'outer;
            }
            seq = s;
            hash = h;
        }
    }
    tx.execute(
        "INSERT INTO heads (device_id, chain, seq, hash) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (device_id, chain) DO UPDATE SET seq = ?3, hash = ?4",
        params![dev, chain.as_str(), seq, hash],
    )?;
    Ok(ChainHead {
        seq: seq as u64,
        hash: if seq == 0 {
            String::new()
        } else {
            hex::encode(&hash)
        },
    })
}
