//! The hub's SQLite database: devices and pairing, verified chains, roster, policy.
//!
//! Every method is synchronous; the HTTP layer calls them on blocking threads. Ingest verifies
//! each entry (canonical decoding, device, signature, links to its stored neighbours) before
//! it is stored, and keeps per-device heads and a conflicts table so gaps and forks are visible.

use crate::base::badge::BadgeId;
use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::VerifyingKey;
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::base::error::Error;
use crate::base::protocol::{
    Ack, AckStatus, ChainHead, Heartbeat, HeartbeatResponse, MAX_BATCH, PairRequest, PairResponse,
    PolicyDocument, Roster, RosterConsent, RosterEmployee, RosterTemplate, UploadEntry,
    UploadResponse,
};
use crate::store::audit::AuditEntry;
use crate::store::chain::verify_entry_signatures;
use crate::store::record::{Record, entry_hash};

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

/// The fields of an entry the hub indexes, from its decoded bytes.
struct Decoded {
    uuid: Uuid,
    device_id: Uuid,
    seq: u64,
    wall_ms: i64,
    who: String,
    prev_hash: [u8; 32],
}

fn decode(chain: Chain, bytes: &[u8]) -> crate::base::error::Result<Decoded> {
    Ok(match chain {
        Chain::Checkins => {
            let r = Record::decode(bytes)?;
            Decoded {
                uuid: r.uuid,
                device_id: r.device_id,
                seq: r.seq,
                wall_ms: r.wall_ms,
                who: r.employee_id,
                prev_hash: r.prev_hash,
            }
        }
        Chain::Audit => {
            let a = AuditEntry::decode(bytes)?;
            Decoded {
                uuid: a.uuid,
                device_id: a.device_id,
                seq: a.seq,
                wall_ms: a.wall_ms,
                who: a.subject,
                prev_hash: a.prev_hash,
            }
        }
    })
}

/// A paired device, as the API layer needs it after authentication.
#[derive(Debug, Clone)]
pub struct Device {
    /// Device id.
    pub id: Uuid,
    /// Key its entries must be signed with.
    pub public_key: VerifyingKey,
}

/// One device chain's state, for `clockface-hub chains`.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    /// Device id.
    pub device_id: String,
    /// Device name.
    pub device_name: String,
    /// "checkins" or "audit".
    pub chain: String,
    /// Entries stored.
    pub entries: u64,
    /// Lowest and highest stored seq.
    pub first_seq: u64,
    /// Highest stored seq.
    pub last_seq: u64,
    /// End of the gap-free linked prefix.
    pub head_seq: u64,
    /// Missing seq ranges (inclusive) between 1 and `last_seq`.
    pub gaps: Vec<(u64, u64)>,
    /// Forks and broken links seen.
    pub conflicts: Vec<String>,
}

/// What a roster import changed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ImportReport {
    /// Employees added or updated.
    pub upserted: u64,
    /// Employees marked deleted (with `replace`).
    pub deleted: u64,
    /// Roster version after the import.
    pub version: i64,
}

/// The hub database.
pub struct HubDb {
    conn: Connection,
}

fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

/// The alphabet of pairing codes: no 0/O or 1/I/L to misread on a screen.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
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

    /// Creates a one-time pairing code for `site`, valid for `valid_ms`; `code` picks it
    /// (for provisioning files written ahead), otherwise a random one is made. Returns it.
    pub fn create_pairing_code(
        &mut self,
        site: &str,
        valid_ms: i64,
        code: Option<&str>,
        now_ms: i64,
    ) -> crate::base::error::Result<String> {
        let code = match code {
            Some(c) => {
                let n = normalise_code(c);
                if n.len() < 8 || !n.bytes().all(|b| CODE_ALPHABET.contains(&b)) {
                    return Err(crate::base::error::Error::invalid(
                        "pairing code",
                        "must be at least 8 characters from 2-9 and A-Z without I, L, O",
                    ));
                }
                n
            }
            None => {
                let mut rng = rand::rngs::OsRng;
                (0..12)
                    .map(|_| CODE_ALPHABET[(rng.next_u32() as usize) % CODE_ALPHABET.len()] as char)
                    .collect()
            }
        };
        if site.trim().is_empty() {
            return Err(crate::base::error::Error::invalid(
                "site",
                "must not be empty",
            ));
        }
        self.conn.execute(
            "INSERT INTO pairing_codes (code_sha256, site, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (code_sha256) DO UPDATE SET site = ?2, created_ms = ?3, expires_ms = ?4, used_by = NULL",
            params![sha256(code.as_bytes()), site, now_ms, now_ms + valid_ms],
        )?;
        Ok(format!("{}-{}-{}", &code[..4], &code[4..8], &code[8..]))
    }

    /// Pairs a device with a one-time code; a device re-pairing with the same key gets a new
    /// token (the old one stops working).
    pub fn pair(&mut self, req: &PairRequest, now_ms: i64) -> Result<PairResponse, ApiFailure> {
        let forbidden = |m: &str| ApiFailure {
            status: 403,
            code: "pairing_refused",
            message: m.into(),
        };
        if req.name.trim().is_empty() || req.name.chars().count() > 128 {
            return Err(ApiFailure::bad_request("name must be 1 to 128 characters"));
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let code_hash = sha256(normalise_code(&req.code).as_bytes());
        let row: Option<(String, i64, Option<String>)> = tx
            .query_row(
                "SELECT site, expires_ms, used_by FROM pairing_codes WHERE code_sha256 = ?1",
                [&code_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((site, expires, used_by)) = row else {
            return Err(forbidden("unknown pairing code"));
        };
        if used_by.is_some() {
            return Err(forbidden("pairing code already used"));
        }
        if expires < now_ms {
            return Err(forbidden("pairing code expired"));
        }
        // The code is checked first, so without one nothing else about the hub can be probed.
        let key_bytes: [u8; 32] = hex::decode(&req.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ApiFailure::bad_request("public_key must be 64 hex digits"))?;
        let key = VerifyingKey::from_bytes(&key_bytes)
            .map_err(|_| ApiFailure::bad_request("public_key is not an Ed25519 public key"))?;
        let existing: Option<Vec<u8>> = tx
            .query_row(
                "SELECT public_key FROM devices WHERE id = ?1",
                [req.device_id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(k) = existing
            && k != key_bytes
        {
            return Err(ApiFailure {
                status: 409,
                code: "device_key_mismatch",
                message: "this device id is paired with another key".into(),
            });
        }
        let mut tok = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut tok);
        let token = hex::encode(tok);
        tx.execute(
            "INSERT INTO devices (id, public_key, token_sha256, name, site, paired_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET token_sha256 = ?3, name = ?4, site = ?5, paired_ms = ?6",
            params![req.device_id.to_string(), key.as_bytes().to_vec(), sha256(token.as_bytes()), req.name, site, now_ms],
        )?;
        tx.execute(
            "UPDATE pairing_codes SET used_by = ?2 WHERE code_sha256 = ?1",
            params![code_hash, req.device_id.to_string()],
        )?;
        tx.commit()?;
        Ok(PairResponse {
            device_id: req.device_id,
            token,
            site,
            hub_time_ms: now_ms,
        })
    }

    /// The device a bearer token belongs to.
    pub fn device_by_token(&self, token: &str) -> Result<Option<Device>, ApiFailure> {
        let row: Option<(String, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT id, public_key FROM devices WHERE token_sha256 = ?1",
                [sha256(token.as_bytes())],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((id, key)) = row else {
            return Ok(None);
        };
        let id = Uuid::parse_str(&id).map_err(ApiFailure::internal)?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| ApiFailure::internal("stored key"))?;
        let public_key = VerifyingKey::from_bytes(&key).map_err(ApiFailure::internal)?;
        Ok(Some(Device { id, public_key }))
    }

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
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for (bytes, d) in &verified {
            let hash = entry_hash(bytes);
            let ack = store_entry(&tx, &dev, chain, bytes, d, &hash, now_ms)?;
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
        let was_off = self
            .clock_skew_ms(&device.id)
            .map_err(ApiFailure::internal)?
            .is_some_and(|s| s.abs() > 5 * 60_000);
        let json = serde_json::to_string(hb).map_err(ApiFailure::internal)?;
        self.conn.execute(
            "UPDATE devices SET last_seen_ms = ?2, heartbeat = ?3, clock_skew_ms = ?4 WHERE id = ?1",
            params![device.id.to_string(), now_ms, json, skew],
        )?;
        if skew.abs() > 5 * 60_000 && !was_off {
            tracing::warn!(device = %device.id, skew_s = skew / 1000, "device clock differs from the hub's");
        }
        Ok(HeartbeatResponse {
            hub_time_ms: now_ms,
            clock_skew_ms: skew,
        })
    }

    /// Notes that a device was seen (any authenticated request).
    pub fn touch(&self, device: &Device, now_ms: i64) -> Result<(), ApiFailure> {
        self.conn.execute(
            "UPDATE devices SET last_seen_ms = ?2 WHERE id = ?1",
            params![device.id.to_string(), now_ms],
        )?;
        Ok(())
    }

    /// Current roster version (0 before the first import).
    pub fn roster_version(&self) -> Result<i64, ApiFailure> {
        Ok(self.meta_i64("roster_version")?)
    }

    /// The roster as served to kiosks.
    pub fn roster(&self) -> Result<Roster, ApiFailure> {
        let version = self.roster_version()?;
        let mut employees = Vec::new();
        let mut deletions = Vec::new();
        let mut stmt = self.conn.prepare(
            "SELECT id, display_name, active, is_admin, consent_given, consent_version, deleted FROM employees ORDER BY id",
        )?;
        let mut badges_q = self
            .conn
            .prepare("SELECT badge_id FROM badges WHERE employee_id = ?1 ORDER BY badge_id")?;
        let mut templates_q = self
            .conn
            .prepare("SELECT model, embedding FROM templates WHERE employee_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Option<bool>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, bool>(6)?,
            ))
        })?;
        for row in rows {
            let (id, display_name, active, is_admin, given, version_text, deleted) = row?;
            if deleted {
                deletions.push(id);
                continue;
            }
            let badges = badges_q
                .query_map([&id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let consent = given.map(|given| RosterConsent {
                given,
                text_version: version_text.unwrap_or_default(),
            });
            let templates = if given == Some(true) {
                templates_q
                    .query_map([&id], |r| {
                        Ok(RosterTemplate {
                            model: r.get(0)?,
                            embedding: B64.encode(r.get::<_, Vec<u8>>(1)?),
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            } else {
                Vec::new()
            };
            employees.push(RosterEmployee {
                id,
                display_name,
                active,
                is_admin,
                badges,
                consent,
                templates,
            });
        }
        Ok(Roster {
            version,
            employees,
            deletions,
        })
    }

    /// Imports employees (upsert); with `replace`, everyone not in `list` is deleted. Bumps
    /// the roster version once. Everything is checked before anything is written.
    pub fn import_roster(
        &mut self,
        list: &[RosterEmployee],
        replace: bool,
    ) -> crate::base::error::Result<ImportReport> {
        let mut seen_badges = BTreeMap::new();
        let mut badges: Vec<Vec<BadgeId>> = Vec::with_capacity(list.len());
        for (i, e) in list.iter().enumerate() {
            let at = |what: &str, why: String| {
                crate::base::error::Error::invalid(format!("roster entry {} ({what})", i + 1), why)
            };
            crate::store::record::validate_employee_id(&e.id, false)
                .map_err(|err| at("id", err.to_string()))?;
            if e.display_name.trim().is_empty() || e.display_name.chars().count() > 128 {
                return Err(at("display_name", "must be 1 to 128 characters".into()));
            }
            let mut normal = Vec::with_capacity(e.badges.len());
            for b in &e.badges {
                let n = BadgeId::parse(b).map_err(|err| at("badges", err.to_string()))?;
                if let Some(other) = seen_badges.insert(n.clone(), &e.id)
                    && other != &e.id
                {
                    return Err(at(
                        "badges",
                        format!("badge {b:?} is also given to {other}"),
                    ));
                }
                normal.push(n);
            }
            badges.push(normal);
            for t in &e.templates {
                let v = decode_embedding(&t.embedding).map_err(|why| at("templates", why))?;
                if v.is_empty() || t.model.is_empty() {
                    return Err(at("templates", "model and embedding are required".into()));
                }
            }
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut report = ImportReport::default();
        if replace {
            let ids: Vec<&str> = list.iter().map(|e| e.id.as_str()).collect();
            let mut stmt = tx.prepare("SELECT id FROM employees WHERE deleted = 0")?;
            let existing: Vec<String> = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            drop(stmt);
            for id in existing.iter().filter(|id| !ids.contains(&id.as_str())) {
                tombstone(&tx, id)?;
                report.deleted += 1;
            }
        }
        for (e, badges) in list.iter().zip(&badges) {
            tx.execute(
                "INSERT INTO employees (id, display_name, active, is_admin, consent_given, consent_version, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
                 ON CONFLICT (id) DO UPDATE SET display_name = ?2, active = ?3, is_admin = ?4,
                   consent_given = ?5, consent_version = ?6, deleted = 0",
                params![
                    e.id,
                    e.display_name,
                    e.active,
                    e.is_admin,
                    e.consent.as_ref().map(|c| c.given),
                    e.consent.as_ref().map(|c| c.text_version.clone())
                ],
            )?;
            tx.execute("DELETE FROM badges WHERE employee_id = ?1", [&e.id])?;
            for b in badges {
                tx.execute(
                    "INSERT INTO badges (badge_id, employee_id) VALUES (?1, ?2)
                     ON CONFLICT (badge_id) DO UPDATE SET employee_id = ?2",
                    params![b.as_str(), e.id],
                )?;
            }
            let withdrawn = e.consent.as_ref().is_some_and(|c| !c.given);
            if !e.templates.is_empty() || withdrawn {
                tx.execute("DELETE FROM templates WHERE employee_id = ?1", [&e.id])?;
            }
            if !withdrawn {
                for t in &e.templates {
                    let raw = B64.decode(t.embedding.as_bytes()).expect("checked above");
                    tx.execute(
                        "INSERT INTO templates (employee_id, model, embedding) VALUES (?1, ?2, ?3)",
                        params![e.id, t.model, raw],
                    )?;
                }
            }
            report.upserted += 1;
        }
        let version = bump(&tx, "roster_version")?;
        tx.commit()?;
        report.version = version;
        Ok(report)
    }

    /// Deletes one employee from the roster (a tombstone tells kiosks to wipe them).
    pub fn delete_employee(&mut self, id: &str) -> crate::base::error::Result<bool> {
        let tx = self.conn.transaction()?;
        let n: i64 = tx.query_row(
            "SELECT count(*) FROM employees WHERE id = ?1 AND deleted = 0",
            [id],
            |r| r.get(0),
        )?;
        if n == 0 {
            return Ok(false);
        }
        tombstone(&tx, id)?;
        bump(&tx, "roster_version")?;
        tx.commit()?;
        Ok(true)
    }

    /// The policy document, if one was set.
    pub fn policy(&self) -> Result<Option<PolicyDocument>, ApiFailure> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'policy'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(json) = json else { return Ok(None) };
        let policy = serde_json::from_str(&json).map_err(ApiFailure::internal)?;
        Ok(Some(PolicyDocument {
            version: self.meta_i64("policy_version")?,
            policy,
        }))
    }

    /// Sets the policy kiosks should apply; it must pass the same validation as a config file.
    pub fn set_policy(
        &mut self,
        policy: &crate::base::config::PolicyConfig,
    ) -> crate::base::error::Result<i64> {
        let cfg = crate::base::config::Config {
            policy: policy.clone(),
            ..Default::default()
        };
        let problems = cfg.validate();
        if let Some(p) = problems.first() {
            return Err(crate::base::error::Error::invalid("policy", p.to_string()));
        }
        let tx = self.conn.transaction()?;
        let v = bump(&tx, "policy_version")?;
        // The version kiosks write into records is the hub's, so it only ever grows.
        let mut policy = policy.clone();
        policy.version = u32::try_from(v).unwrap_or(u32::MAX);
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('policy', ?1)
             ON CONFLICT (key) DO UPDATE SET value = ?1",
            [serde_json::to_string(&policy).expect("policy serialises")],
        )?;
        tx.commit()?;
        Ok(v)
    }

    /// Writes a timesheet CSV of accepted check-ins in `[from_ms, until_ms)`, one row per
    /// check-in, oldest first. Returns the number of rows.
    pub fn timesheet(
        &self,
        from_ms: i64,
        until_ms: i64,
        out: &mut dyn std::io::Write,
    ) -> crate::base::error::Result<u64> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record([
            "employee_id",
            "display_name",
            "date",
            "time_utc",
            "direction",
            "method",
            "device",
            "site",
            "record_uuid",
        ])
        .map_err(csv_err)?;
        let mut stmt = self.conn.prepare(
            "SELECT e.bytes, d.name, d.site, coalesce(emp.display_name, '')
             FROM entries e JOIN devices d ON d.id = e.device_id
             LEFT JOIN employees emp ON emp.id = e.employee_id
             WHERE e.chain = 'checkins' AND e.wall_ms >= ?1 AND e.wall_ms < ?2
             ORDER BY e.wall_ms, e.device_id, e.seq",
        )?;
        let mut rows = stmt.query(params![from_ms, until_ms])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            let rec = Record::decode(&row.get::<_, Vec<u8>>(0)?)?;
            if rec.outcome != crate::store::record::Outcome::Accepted {
                continue;
            }
            let t = chrono::DateTime::from_timestamp_millis(rec.wall_ms).unwrap_or_default();
            let name: String = row.get(1)?;
            let site: String = row.get(2)?;
            let display: String = row.get(3)?;
            w.write_record([
                rec.employee_id.as_str(),
                display.as_str(),
                &t.format("%Y-%m-%d").to_string(),
                &t.format("%H:%M:%S").to_string(),
                rec.direction.as_str(),
                rec.method.as_str(),
                name.as_str(),
                site.as_str(),
                &rec.uuid.to_string(),
            ])
            .map_err(csv_err)?;
            n += 1;
        }
        w.flush().map_err(|e| Error::io("timesheet", e))?;
        Ok(n)
    }

    /// Gaps, heads and conflicts of every device chain.
    pub fn chain_reports(&self) -> crate::base::error::Result<Vec<ChainReport>> {
        let mut out = Vec::new();
        let mut devs = self
            .conn
            .prepare("SELECT id, name FROM devices ORDER BY id")?;
        let devices: Vec<(String, String)> = devs
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, name) in devices {
            for chain in [Chain::Checkins, Chain::Audit] {
                let mut stmt = self.conn.prepare(
                    "SELECT seq FROM entries WHERE device_id = ?1 AND chain = ?2 ORDER BY seq",
                )?;
                let seqs: Vec<i64> = stmt
                    .query_map(params![id, chain.as_str()], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut gaps = Vec::new();
                let mut expect = 1u64;
                for &s in &seqs {
                    let s = s as u64;
                    if s > expect {
                        gaps.push((expect, s - 1));
                    }
                    expect = s + 1;
                }
                let head: i64 = self
                    .conn
                    .query_row(
                        "SELECT seq FROM heads WHERE device_id = ?1 AND chain = ?2",
                        params![id, chain.as_str()],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(0);
                let mut cstmt = self.conn.prepare(
                    "SELECT seq, kind, detail FROM conflicts WHERE device_id = ?1 AND chain = ?2 ORDER BY seq, id",
                )?;
                let conflicts = cstmt
                    .query_map(params![id, chain.as_str()], |r| {
                        Ok(format!(
                            "seq {}: {} ({})",
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                out.push(ChainReport {
                    device_id: id.clone(),
                    device_name: name.clone(),
                    chain: chain.as_str().into(),
                    entries: seqs.len() as u64,
                    first_seq: seqs.first().copied().unwrap_or(0) as u64,
                    last_seq: seqs.last().copied().unwrap_or(0) as u64,
                    head_seq: head as u64,
                    gaps,
                    conflicts,
                });
            }
        }
        Ok(out)
    }

    /// Number of stored entries of one chain across devices (for tests and the bench).
    pub fn count(&self, chain: Chain) -> crate::base::error::Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM entries WHERE chain = ?1",
            [chain.as_str()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// The last heartbeat's clock skew of a device (hub − device, ms), if any.
    pub fn clock_skew_ms(&self, device_id: &Uuid) -> crate::base::error::Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT clock_skew_ms FROM devices WHERE id = ?1",
                [device_id.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }
}

fn csv_err(e: csv::Error) -> crate::base::error::Error {
    crate::base::error::Error::invalid("timesheet", e.to_string())
}

/// Base64 of little-endian f32s, each finite.
fn decode_embedding(b64: &str) -> Result<Vec<f32>, String> {
    let raw = B64
        .decode(b64.as_bytes())
        .map_err(|e| format!("embedding is not base64: {e}"))?;
    if raw.len() % 4 != 0 || raw.len() > 4 * 4096 {
        return Err(format!(
            "embedding is {} bytes; it must be whole little-endian f32s (at most 4096)",
            raw.len()
        ));
    }
    let v: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    if v.iter().any(|x| !x.is_finite()) {
        return Err("embedding holds a non-finite number".into());
    }
    Ok(v)
}

fn tombstone(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM templates WHERE employee_id = ?1", [id])?;
    tx.execute("DELETE FROM badges WHERE employee_id = ?1", [id])?;
    tx.execute(
        "UPDATE employees SET deleted = 1, active = 0, consent_given = NULL, consent_version = NULL WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

fn bump(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<i64> {
    tx.query_row(
        "INSERT INTO meta (key, value) VALUES (?1, '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)
         RETURNING CAST(value AS INTEGER)",
        [key],
        |r| r.get(0),
    )
}

/// Stores one verified entry unless it contradicts what is stored; returns its ack.
fn store_entry(
    tx: &Transaction<'_>,
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
            "INSERT OR IGNORE INTO conflicts (device_id, chain, seq, kind, detail, hash, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![dev, chain.as_str(), d.seq as i64, kind, detail, hash.to_vec(), now_ms],
        )?;
        tracing::warn!(
            device = dev,
            chain = chain.as_str(),
            seq = d.seq,
            kind,
            "chain conflict"
        );
        Ok(ack(AckStatus::Rejected, &format!("{kind}: {detail}")))
    };
    let stored_hash = |seq: u64| -> rusqlite::Result<Option<(Vec<u8>, Vec<u8>)>> {
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
        "INSERT OR IGNORE INTO entries (device_id, chain, seq, uuid, hash, prev_hash, bytes, wall_ms, employee_id, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
fn advance_head(tx: &Transaction<'_>, dev: &str, chain: Chain) -> Result<ChainHead, ApiFailure> {
    let (mut seq, mut hash): (i64, Vec<u8>) = tx
        .query_row(
            "SELECT seq, hash FROM heads WHERE device_id = ?1 AND chain = ?2",
            params![dev, chain.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, vec![0u8; 32]));
    let mut next = tx.prepare_cached(
        "SELECT seq, hash FROM entries WHERE device_id = ?1 AND chain = ?2 AND seq > ?3 ORDER BY seq LIMIT 1000",
    )?;
    'outer: loop {
        let rows: Vec<(i64, Vec<u8>)> = next
            .query_map(params![dev, chain.as_str(), seq], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
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
    drop(next);
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
