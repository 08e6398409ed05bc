//! The store's side of sync: the outbox queries, the acknowledgement bookkeeping, the sync
//! status the UI and `device show` read, and applying a downloaded roster and policy.
//!
//! Nothing here talks to the network; `crate::sync` calls these after each exchange. Marking
//! entries synced is by exact seq (never "everything up to"), so duplicate, missing or
//! out-of-order acknowledgements cannot mark an entry the backend does not hold.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use zeroize::Zeroizing;

use super::Store;
use super::audit::NewAudit;
use super::keys;
use super::roster::template_aad;
use crate::base::badge::BadgeId;
use crate::base::error::{Error, Result};
use crate::base::protocol::{PolicyDocument, Roster};

/// Which signed chain an outbox operation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxChain {
    /// Check-in records.
    Checkins,
    /// Audit entries.
    Audit,
}

impl OutboxChain {
    fn table(self) -> &'static str {
        match self {
            OutboxChain::Checkins => "records",
            OutboxChain::Audit => "audit",
        }
    }

    /// The protocol path entries of this chain are uploaded to.
    pub fn api_path(self) -> &'static str {
        match self {
            OutboxChain::Checkins => "/v1/checkins",
            OutboxChain::Audit => "/v1/audit",
        }
    }

    /// Name for logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxChain::Checkins => "checkins",
            OutboxChain::Audit => "audit",
        }
    }
}

/// One queued entry.
#[derive(Debug, Clone)]
pub struct PendingEntry {
    /// Sequence number.
    pub seq: u64,
    /// Canonical signed bytes.
    pub bytes: Vec<u8>,
}

/// Sync as the UI and `clockface device show` present it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SyncStatus {
    /// Whether the kiosk holds a token for a backend.
    pub paired: bool,
    /// The backend it is paired with ("" when not paired).
    pub url: String,
    /// Last round that finished without error (Unix ms).
    pub last_success_ms: Option<i64>,
    /// What went wrong last, if the last round failed ("" otherwise).
    pub last_error: String,
    /// When the last error happened (Unix ms).
    pub last_error_ms: Option<i64>,
    /// Check-ins waiting for the backend.
    pub queued_checkins: u64,
    /// Audit entries waiting for the backend.
    pub queued_audit: u64,
    /// Entries the backend refused (kept here, out of the outbox).
    pub rejected: u64,
    /// The backend's time minus this kiosk's, from the last heartbeat (ms).
    pub clock_skew_ms: Option<i64>,
    /// The backend's gap-free head of this kiosk's check-in chain.
    pub backend_head_seq: Option<u64>,
    /// Roster version last applied.
    pub roster_version: Option<i64>,
    /// Backend policy version in force, if the backend set one.
    pub policy_version: Option<i64>,
}

/// What applying a roster changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RosterApplied {
    /// Employees added or updated.
    pub upserted: u64,
    /// Employees deleted (their templates wiped).
    pub deleted: u64,
    /// Employees whose consent was withdrawn (their templates wiped).
    pub consent_withdrawn: u64,
    /// Templates stored from the backend.
    pub templates: u64,
    /// Templates skipped because they were made by another model than this kiosk's.
    pub templates_other_model: u64,
}

/// Sync-state keys.
mod key {
    pub const URL: &str = "url";
    pub const LAST_SUCCESS: &str = "last_success_ms";
    pub const LAST_ERROR: &str = "last_error";
    pub const LAST_ERROR_AT: &str = "last_error_ms";
    pub const SKEW: &str = "clock_skew_ms";
    pub const HEAD: &str = "backend_head_seq";
    pub const AUDIT_HEAD: &str = "backend_audit_head_seq";
    pub const ROSTER_ETAG: &str = "roster_etag";
    pub const ROSTER_VERSION: &str = "roster_version";
    pub const POLICY_ETAG: &str = "policy_etag";
    pub const POLICY: &str = "policy";
}

fn head_key(chain: OutboxChain) -> &'static str {
    match chain {
        OutboxChain::Checkins => key::HEAD,
        OutboxChain::Audit => key::AUDIT_HEAD,
    }
}

/// File in the data dir that holds the backend token (0600).
pub const TOKEN_FILE: &str = "sync.token";

impl Store {
    /// The oldest `limit` entries of `chain` the backend has not acknowledged or refused.
    pub fn pending(&self, chain: OutboxChain, limit: usize) -> Result<Vec<PendingEntry>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT seq, bytes FROM {} WHERE synced_at_ms IS NULL AND sync_rejected IS NULL ORDER BY seq LIMIT ?1",
            chain.table()
        ))?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(PendingEntry {
                seq: r.get::<_, i64>(0)? as u64,
                bytes: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks exactly these entries acknowledged at `at_ms`; returns how many changed.
    pub fn mark_acknowledged(
        &mut self,
        chain: OutboxChain,
        seqs: &[u64],
        at_ms: i64,
    ) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        {
            let mut stmt = tx.prepare_cached(&format!(
                "UPDATE {} SET synced_at_ms = ?2 WHERE seq = ?1 AND synced_at_ms IS NULL",
                chain.table()
            ))?;
            for &s in seqs {
                n += stmt.execute(params![s as i64, at_ms])? as u64;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Takes refused entries out of the outbox, keeping them with the backend's reason, and
    /// audits it (reasons are protocol text, never personal data).
    pub fn mark_refused(&mut self, chain: OutboxChain, refused: &[(u64, String)]) -> Result<u64> {
        if refused.is_empty() {
            return Ok(0);
        }
        let mut audit = NewAudit::new("system", "sync_refused", chain.as_str());
        let first: Vec<u64> = refused.iter().take(20).map(|(s, _)| *s).collect();
        audit.detail = serde_json::json!({ "count": refused.len(), "seqs": first, "reason": refused[0].1.chars().take(200).collect::<String>() }).to_string();
        let table = chain.table();
        self.audited(&audit, |tx, _, _| {
            let mut n = 0;
            for (s, why) in refused {
                n += tx.execute(
                    &format!("UPDATE {table} SET sync_rejected = ?2 WHERE seq = ?1 AND synced_at_ms IS NULL"),
                    params![*s as i64, why],
                )? as u64;
            }
            Ok(n)
        })
    }

    /// Entries waiting in `chain`'s outbox.
    pub fn queued(&self, chain: OutboxChain) -> Result<u64> {
        Ok(self.conn().query_row(
            &format!(
                "SELECT count(*) FROM {} WHERE synced_at_ms IS NULL AND sync_rejected IS NULL",
                chain.table()
            ),
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    fn sync_get(&self, k: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM sync_state WHERE key = ?1", [k], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn sync_set(&self, k: &str, v: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO sync_state (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
            params![k, v],
        )?;
        Ok(())
    }

    /// Records the backend a pairing was made with.
    pub fn set_sync_url(&mut self, url: &str) -> Result<()> {
        self.sync_set(key::URL, url)
    }

    /// Records the end of a sync round: success clears the last error.
    pub fn record_sync_round(&mut self, at_ms: i64, error: Option<&str>) -> Result<()> {
        match error {
            None => {
                self.sync_set(key::LAST_SUCCESS, &at_ms.to_string())?;
                self.sync_set(key::LAST_ERROR, "")
            }
            Some(e) => {
                self.sync_set(key::LAST_ERROR, e)?;
                self.sync_set(key::LAST_ERROR_AT, &at_ms.to_string())
            }
        }
    }

    /// Records the clock skew the backend measured.
    pub fn record_clock_skew(&mut self, skew_ms: i64) -> Result<()> {
        self.sync_set(key::SKEW, &skew_ms.to_string())
    }

    /// Records the backend's gap-free head of `chain`.
    pub fn record_backend_head_of(&mut self, chain: OutboxChain, seq: u64) -> Result<()> {
        self.sync_set(head_key(chain), &seq.to_string())
    }

    /// The sequence number of this kiosk's newest entry of `chain` (the retention anchor's when
    /// the table is empty, 0 when nothing was ever written).
    pub fn chain_head_seq(&self, chain: OutboxChain) -> Result<u64> {
        let max: Option<i64> = self.conn().query_row(
            &format!("SELECT max(seq) FROM {}", chain.table()),
            [],
            |r| r.get(0),
        )?;
        Ok(match max {
            Some(m) => m as u64,
            None => super::entry::anchor(self.conn(), chain.table())?.map_or(0, |a| a.0),
        })
    }

    /// The backend's head of `chain` as last seen, if any since pairing.
    pub fn backend_head(&self, chain: OutboxChain) -> Result<Option<u64>> {
        Ok(self.sync_get(head_key(chain))?.and_then(|v| v.parse().ok()))
    }

    /// Forgets what the last backend held (a pairing with a backend starts from nothing).
    pub fn forget_backend_heads(&mut self) -> Result<()> {
        self.conn().execute(
            "DELETE FROM sync_state WHERE key IN (?1, ?2)",
            params![key::HEAD, key::AUDIT_HEAD],
        )?;
        Ok(())
    }

    /// Puts back into the outbox every entry of `chain` after `after_seq` that was marked
    /// acknowledged and still has its bytes (a pseudonymised check-in, whose bytes are gone,
    /// or a purged one cannot be sent again), so that a backend which lost them, or a new one,
    /// receives them. Refusals are cleared too: a new backend judges for itself. Audited.
    /// Returns how many went back.
    pub fn resend_after(&mut self, chain: OutboxChain, after_seq: u64, why: &str) -> Result<u64> {
        let table = chain.table();
        let whole = match chain {
            OutboxChain::Checkins => " AND redacted_hash IS NULL",
            OutboxChain::Audit => "",
        };
        let n: i64 = self.conn().query_row(
            &format!(
                "SELECT count(*) FROM {table} WHERE seq > ?1 AND (synced_at_ms IS NOT NULL OR sync_rejected IS NOT NULL){whole}"
            ),
            [after_seq as i64],
            |r| r.get(0),
        )?;
        if n == 0 {
            return Ok(0);
        }
        let mut audit = NewAudit::new("system", "sync_resend", chain.as_str());
        audit.detail =
            serde_json::json!({ "after_seq": after_seq, "count": n, "why": why }).to_string();
        self.audited(&audit, |tx, _, _| {
            Ok(tx.execute(
                &format!(
                    "UPDATE {table} SET synced_at_ms = NULL, sync_rejected = NULL WHERE seq > ?1{whole}"
                ),
                [after_seq as i64],
            )? as u64)
        })
    }

    /// The ETag of the roster last applied.
    pub fn roster_etag(&self) -> Result<Option<String>> {
        self.sync_get(key::ROSTER_ETAG)
    }

    /// The ETag of the backend policy last stored.
    pub fn policy_etag(&self) -> Result<Option<String>> {
        self.sync_get(key::POLICY_ETAG)
    }

    /// Stores the backend's policy (already validated by the caller) and its ETag, audited.
    pub fn set_backend_policy(&mut self, doc: &PolicyDocument, etag: &str) -> Result<()> {
        let mut audit = NewAudit::new("backend", "policy_received", "policy");
        audit.detail = serde_json::json!({ "version": doc.version }).to_string();
        let json = serde_json::to_string(doc).expect("policy serialises");
        self.audited(&audit, |tx, _, _| {
            for (k, v) in [(key::POLICY, json.as_str()), (key::POLICY_ETAG, etag)] {
                tx.execute(
                    "INSERT INTO sync_state (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                    params![k, v],
                )?;
            }
            Ok(())
        })
    }

    /// The policy the backend set, if any.
    pub fn backend_policy(&self) -> Result<Option<PolicyDocument>> {
        match self.sync_get(key::POLICY)? {
            None => Ok(None),
            Some(j) => serde_json::from_str(&j)
                .map(Some)
                .map_err(|e| Error::invalid("stored backend policy", e.to_string())),
        }
    }

    /// Sync status for the UI and `device show`; `paired` is whether a token file exists.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        let num = |k| -> Result<Option<i64>> { Ok(self.sync_get(k)?.and_then(|v| v.parse().ok())) };
        let rejected: i64 = self.conn().query_row(
            "SELECT (SELECT count(*) FROM records WHERE sync_rejected IS NOT NULL)
                  + (SELECT count(*) FROM audit WHERE sync_rejected IS NOT NULL)",
            [],
            |r| r.get(0),
        )?;
        let policy_version = self.backend_policy()?.map(|p| p.version);
        Ok(SyncStatus {
            paired: self.data_dir().join(TOKEN_FILE).exists(),
            url: self.sync_get(key::URL)?.unwrap_or_default(),
            last_success_ms: num(key::LAST_SUCCESS)?,
            last_error: self.sync_get(key::LAST_ERROR)?.unwrap_or_default(),
            last_error_ms: num(key::LAST_ERROR_AT)?,
            queued_checkins: self.queued(OutboxChain::Checkins)?,
            queued_audit: self.queued(OutboxChain::Audit)?,
            rejected: rejected as u64,
            clock_skew_ms: num(key::SKEW)?,
            backend_head_seq: num(key::HEAD)?.map(|v| v as u64),
            roster_version: num(key::ROSTER_VERSION)?,
            policy_version,
        })
    }

    /// Applies a downloaded roster in one transaction: upserts employees and badges, applies
    /// consent changes (a withdrawal wipes templates), replaces the templates the backend sent
    /// before, deletes removed employees with all their biometric data, stores the ETag, and
    /// audits every lifecycle event. Invalid input changes nothing. `model` is this kiosk's
    /// embedder; templates of other models are skipped.
    pub fn apply_roster(
        &mut self,
        roster: &Roster,
        etag: &str,
        model: &str,
    ) -> Result<RosterApplied> {
        // Check everything first, so a bad roster changes nothing.
        let year = self.current_year();
        let mut decoded: Vec<Vec<Zeroizing<Vec<u8>>>> = Vec::with_capacity(roster.employees.len());
        let mut badges: Vec<Vec<BadgeId>> = Vec::with_capacity(roster.employees.len());
        for (i, e) in roster.employees.iter().enumerate() {
            let at = |what: &str| format!("roster employee {} ({what})", i + 1);
            super::record::validate_employee_id(&e.id, false)
                .map_err(|err| Error::invalid(at("id"), err.to_string()))?;
            let n = e.display_name.chars().count();
            if n == 0 || n > 128 || e.display_name.chars().any(char::is_control) {
                return Err(Error::invalid(
                    at("display_name"),
                    "must be 1 to 128 printable characters",
                ));
            }
            badges.push(
                e.badges
                    .iter()
                    .map(|b| BadgeId::parse(b))
                    .collect::<Result<_>>()
                    .map_err(|err| Error::invalid(at("badges"), err.to_string()))?,
            );
            if let Some(c) = &e.consent
                && (c.text_version.is_empty() || c.text_version.len() > 32)
            {
                return Err(Error::invalid(
                    at("consent"),
                    "text_version must be 1 to 32 characters",
                ));
            }
            let age = super::consent::Age {
                birth_year: e.birth_year,
                is_minor: e.is_minor,
            };
            age.check(year)
                .map_err(|why| Error::invalid(at("birth_year"), why))?;
            let mut ts = Vec::new();
            for t in &e.templates {
                let raw = Zeroizing::new(B64.decode(t.embedding.as_bytes()).map_err(|err| {
                    Error::invalid(at("templates"), format!("embedding is not base64: {err}"))
                })?);
                let ok = !raw.is_empty()
                    && raw.len() % 4 == 0
                    && raw.len() <= 4 * 4096
                    && raw
                        .chunks_exact(4)
                        .all(|c| f32::from_le_bytes(c.try_into().expect("4")).is_finite());
                if !ok {
                    return Err(Error::invalid(
                        at("templates"),
                        "embedding must be 1 to 4096 finite little-endian f32",
                    ));
                }
                ts.push(raw);
            }
            decoded.push(ts);
        }
        for id in &roster.deletions {
            super::record::validate_employee_id(id, false)
                .map_err(|err| Error::invalid("roster deletions", err.to_string()))?;
        }

        let (applied, wiped) = self.audited_dyn(|tx, data_key, now| {
            let mut audits = Vec::new();
            let mut rep = RosterApplied::default();
            let mut wiped = false;
            for ((e, templates), badges) in roster.employees.iter().zip(&decoded).zip(&badges) {
                tx.execute(
                    "INSERT INTO employees (id, display_name, active, is_admin, updated_ms, birth_year, is_minor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (id) DO UPDATE SET display_name = ?2, active = ?3, is_admin = ?4, updated_ms = ?5, birth_year = ?6, is_minor = ?7",
                    params![e.id, e.display_name, e.active, e.is_admin, now, e.birth_year, e.is_minor],
                )?;
                tx.execute("DELETE FROM badges WHERE employee_id = ?1", [&e.id])?;
                for b in badges {
                    tx.execute(
                        "INSERT INTO badges (badge_id, employee_id) VALUES (?1, ?2)
                         ON CONFLICT (badge_id) DO UPDATE SET employee_id = ?2",
                        params![b.as_str(), e.id],
                    )?;
                }
                let local: Option<(bool, String, String)> = tx
                    .query_row(
                        "SELECT given, text_version, scope FROM consents WHERE employee_id = ?1 ORDER BY id DESC LIMIT 1",
                        [&e.id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                // A decision made here that the backend has not heard of yet stands: the
                // next round tells the backend, before it downloads the roster again.
                let pending: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM biometric_outbox WHERE employee_id = ?1)",
                    [&e.id],
                    |r| r.get(0),
                )?;
                if let Some(c) = &e.consent
                    && !pending
                    && local.as_ref()
                        != Some(&(c.given, c.text_version.clone(), c.scope.as_str().to_owned()))
                {
                    tx.execute(
                        "INSERT INTO consents (employee_id, given, text_version, witness, at_ms, scope) VALUES (?1, ?2, ?3, 'backend', ?4, ?5)",
                        params![e.id, c.given, c.text_version, now, c.scope.as_str()],
                    )?;
                    let mut a = NewAudit::new(
                        "backend",
                        if c.given { "consent_given" } else { "consent_declined" },
                        &e.id,
                    );
                    a.detail = serde_json::json!({ "text_version": c.text_version, "scope": c.scope.as_str(), "source": "roster" }).to_string();
                    audits.push(a);
                    if !c.given {
                        let n = tx.execute("DELETE FROM templates WHERE employee_id = ?1", [&e.id])?;
                        rep.consent_withdrawn += 1;
                        wiped |= n > 0;
                    }
                }
                let consent_now: bool = tx
                    .query_row(
                        "SELECT given FROM consents WHERE employee_id = ?1 ORDER BY id DESC LIMIT 1",
                        [&e.id],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(false);
                // What the backend sent before is replaced by what it sends now, even by
                // nothing: a template withdrawn from the site's other doors goes here too.
                if consent_now {
                    let replaced = tx.execute(
                        "DELETE FROM templates WHERE employee_id = ?1 AND source = 'backend'",
                        [&e.id],
                    )?;
                    wiped |= replaced > 0;
                    let mut stored = 0;
                    for (t, raw) in e.templates.iter().zip(templates) {
                        if t.model != model {
                            rep.templates_other_model += 1;
                            continue;
                        }
                        let sealed = keys::seal(data_key, raw, &template_aad(&e.id, model));
                        tx.execute(
                            "INSERT INTO templates (employee_id, model, dims, sealed, created_ms, source) VALUES (?1, ?2, ?3, ?4, ?5, 'backend')",
                            params![e.id, model, (raw.len() / 4) as i64, sealed, now],
                        )?;
                        stored += 1;
                    }
                    if stored > 0 {
                        let mut a = NewAudit::new("backend", "template_received", &e.id);
                        a.detail = serde_json::json!({ "model": model, "count": stored }).to_string();
                        audits.push(a);
                    }
                    rep.templates += stored;
                }
                rep.upserted += 1;
            }
            for id in &roster.deletions {
                if tx.execute("DELETE FROM employees WHERE id = ?1", [id])? > 0 {
                    rep.deleted += 1;
                    wiped = true;
                    audits.push(NewAudit::new("backend", "employee_deleted", id));
                }
            }
            for (k, v) in [
                (key::ROSTER_ETAG, etag.to_owned()),
                (key::ROSTER_VERSION, roster.version.to_string()),
            ] {
                tx.execute(
                    "INSERT INTO sync_state (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                    params![k, v],
                )?;
            }
            let mut a = NewAudit::new("backend", "roster_applied", "roster");
            a.detail = serde_json::json!({ "version": roster.version, "upserted": rep.upserted, "deleted": rep.deleted }).to_string();
            audits.push(a);
            Ok(((rep, wiped), audits))
        })?;
        if wiped {
            self.wipe_wal()?;
        }
        Ok(applied)
    }
}
