//! The signed, hash-chained audit log: every admin action and biometric lifecycle event.
//!
//! Entries use the same chain discipline as check-in records (sequence, previous hash, Ed25519
//! signature by the device key) in a chain of their own, so `clockface verify` proves the log
//! was neither edited nor trimmed in the middle. An entry names the actor and the subject by id
//! only; `detail` is a short JSON object and must never hold biometric data or a PIN.
//!
//! Format v1: `"CFA1"`, uuid\[16\], device_id\[16\], seq u64, wall_ms i64, clock_synced u8,
//! actor str, action str, subject str, detail str, prev_hash\[32\], signature\[64\].

use rusqlite::{Transaction, params};
use serde::Serialize;
use uuid::Uuid;

use super::codec::Writer;
use super::entry::{ChainEntry, Link, SIGNATURE_LEN, chain_fields, decode_framed, framed};
use crate::base::clock::Clock;
use crate::base::error::{Error, Result};

/// Magic and format version at the start of every audit entry.
pub const AUDIT_MAGIC: &[u8; 4] = b"CFA1";

/// What a caller supplies for a new audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    /// Who did it: an admin's employee id, "system" or "cli".
    pub actor: String,
    /// What happened, a snake_case verb (`consent_given`, `template_enrolled`, ...).
    pub action: String,
    /// Whom or what it concerned (an employee id, a setting key), or "".
    pub subject: String,
    /// A small JSON object with non-personal details, or "{}".
    pub detail: String,
}

impl NewAudit {
    /// Builds an entry with an empty detail object.
    pub fn new(actor: &str, action: &str, subject: &str) -> Self {
        NewAudit {
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            detail: "{}".into(),
        }
    }

    /// Rejects malformed fields before anything is signed.
    pub fn validate(&self) -> Result<()> {
        let code_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 48
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !code_ok(&self.action) {
            return Err(Error::invalid(
                "audit action",
                format!("{:?} must be a snake_case code", self.action),
            ));
        }
        for (what, v) in [
            ("audit actor", &self.actor),
            ("audit subject", &self.subject),
        ] {
            if v.chars().count() > 64 || v.chars().any(char::is_control) {
                return Err(Error::invalid(
                    what,
                    format!("{v:?} must be at most 64 printable characters"),
                ));
            }
        }
        if self.detail.len() > 4096
            || serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&self.detail)
                .is_err()
        {
            return Err(Error::invalid(
                "audit detail",
                "must be a JSON object of at most 4 KiB",
            ));
        }
        Ok(())
    }
}

/// A complete, signed audit entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Unique id (UUIDv7).
    pub uuid: Uuid,
    /// The kiosk that wrote it.
    pub device_id: Uuid,
    /// Position in the audit chain, from 1.
    pub seq: u64,
    /// Wall time, Unix milliseconds.
    pub wall_ms: i64,
    /// Whether the wall clock was synchronised.
    pub clock_synced: bool,
    /// Who did it.
    pub actor: String,
    /// What happened.
    pub action: String,
    /// Whom it concerned.
    pub subject: String,
    /// JSON details.
    pub detail: String,
    /// SHA-256 of the previous entry's bytes.
    #[serde(skip)]
    pub prev_hash: [u8; 32],
    /// Ed25519 signature over the preceding bytes.
    #[serde(skip)]
    pub signature: [u8; 64],
}

impl AuditEntry {
    /// The rules a signed audit entry keeps beyond its byte format (see
    /// [`super::record::Record::validate_content`]).
    pub fn validate_content(&self) -> Result<()> {
        super::record::check_link(self.seq, &self.prev_hash)?;
        NewAudit {
            actor: self.actor.clone(),
            action: self.action.clone(),
            subject: self.subject.clone(),
            detail: self.detail.clone(),
        }
        .validate()
    }

    /// A new entry at `link` in this device's audit chain; signed when it is appended.
    pub(super) fn unsigned(link: Link, device_id: Uuid, clock: &dyn Clock, new: &NewAudit) -> Self {
        AuditEntry {
            uuid: link.uuid,
            device_id,
            seq: link.seq,
            wall_ms: link.wall_ms,
            clock_synced: clock.synchronised(),
            actor: new.actor.clone(),
            action: new.action.clone(),
            subject: new.subject.clone(),
            detail: new.detail.clone(),
            prev_hash: link.prev_hash,
            signature: [0; SIGNATURE_LEN],
        }
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(AUDIT_MAGIC)
            .bytes(self.uuid.as_bytes())
            .bytes(self.device_id.as_bytes())
            .u64(self.seq)
            .i64(self.wall_ms)
            .u8(self.clock_synced as u8)
            .str(&self.actor)
            .str(&self.action)
            .str(&self.subject)
            .str(&self.detail)
            .bytes(&self.prev_hash);
        w.finish()
    }

    /// Signed part then signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        framed(self.signed_bytes(), &self.signature)
    }

    /// Parses canonical bytes.
    pub fn decode(bytes: &[u8]) -> Result<AuditEntry> {
        decode_framed(bytes, AUDIT_MAGIC, "audit entry", |r| {
            Ok(AuditEntry {
                uuid: Uuid::from_bytes(r.array("uuid")?),
                device_id: Uuid::from_bytes(r.array("device id")?),
                seq: r.u64("seq")?,
                wall_ms: r.i64("wall time")?,
                clock_synced: r.flag("clock synced")?,
                actor: r.str("actor")?,
                action: r.str("action")?,
                subject: r.str("subject")?,
                detail: r.str("detail")?,
                prev_hash: r.array("previous hash")?,
                signature: r.array("signature")?,
            })
        })
    }
}

impl ChainEntry for AuditEntry {
    const NAME: &'static str = "audit";
    const TABLE: &'static str = "audit";
    const INDEX_EXPR: &'static str = "action || '|' || subject";
    const REDACTION_EXPR: &'static str = "NULL, 0";
    chain_fields!(AuditEntry);
    fn insert(&self, tx: &Transaction<'_>, bytes: &[u8]) -> rusqlite::Result<usize> {
        tx.execute(
            "INSERT INTO audit (seq, uuid, wall_ms, action, subject, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                self.seq as i64,
                self.uuid.as_bytes().as_slice(),
                self.wall_ms,
                self.action,
                self.subject,
                bytes
            ],
        )
    }
    fn index_key(&self) -> String {
        format!("{}|{}", self.action, self.subject)
    }
}
