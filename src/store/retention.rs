//! Retention: purging check-ins the backend already has, and old failed attempts.
//!
//! Records form one chain, so only a *prefix* of it can go: the oldest records, up to the first
//! one that must stay. An accepted check-in may go once the backend acknowledged it and
//! `retention.checkin_days` have passed since; a failed attempt (no biometric data, but still
//! personal data) once `retention.failed_attempt_days` have passed since it was made. The hash of
//! the last purged record is kept as the chain's anchor, so `verify` and new appends continue the
//! same chain. Each purge is written to the signed audit log in the same transaction.

use rusqlite::params;
use serde::Serialize;

use super::Store;
use super::audit::NewAudit;
use super::entry::entry_hash;
use crate::base::config::RetentionPolicy;
use crate::base::error::Result;

/// What a purge removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Accepted check-ins removed.
    pub checkins: u64,
    /// Failed attempts removed.
    pub failed_attempts: u64,
    /// The chain now starts after this sequence number (0: nothing purged ever).
    pub anchor_seq: u64,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

const DAY_MS: i64 = 86_400_000;

impl Store {
    /// Marks records up to `seq` as acknowledged by the backend at `at_ms` (the sync outbox calls
    /// this; retention counts from it).
    pub fn mark_synced(&mut self, up_to_seq: u64, at_ms: i64) -> Result<u64> {
        let n = self.conn().execute(
            "UPDATE records SET synced_at_ms = ?2 WHERE seq <= ?1 AND synced_at_ms IS NULL",
            params![up_to_seq as i64, at_ms],
        )?;
        Ok(n as u64)
    }

    /// Purges the prefix of the check-in chain whose retention has run out (see module docs).
    pub fn purge(&mut self, policy: RetentionPolicy, dry_run: bool) -> Result<PurgeReport> {
        let now = self.clock().wall_ms();
        let synced_before = now - policy.checkin_days as i64 * DAY_MS;
        let made_before = now - policy.failed_attempt_days as i64 * DAY_MS;
        // The first record that must stay bounds the purgeable prefix.
        let keep_from: Option<i64> = self.conn().query_row(
            "SELECT min(seq) FROM records WHERE NOT (
                 (outcome = 1 AND synced_at_ms IS NOT NULL AND synced_at_ms < ?1)
              OR (outcome = 2 AND wall_ms < ?2))",
            params![synced_before, made_before],
            |r| r.get(0),
        )?;
        let upto: i64 = match keep_from {
            Some(s) => s - 1,
            None => {
                self.conn()
                    .query_row("SELECT coalesce(max(seq), 0) FROM records", [], |r| {
                        r.get(0)
                    })?
            }
        };
        let (checkins, failed): (i64, i64) = self.conn().query_row(
            "SELECT count(*) FILTER (WHERE outcome = 1), count(*) FILTER (WHERE outcome = 2) FROM records WHERE seq <= ?1",
            [upto],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let previous = super::entry::anchor(self.conn(), "records")?.map_or(0, |a| a.0);
        let mut report = PurgeReport {
            checkins: checkins as u64,
            failed_attempts: failed as u64,
            anchor_seq: previous.max(upto.max(0) as u64),
            dry_run,
        };
        if dry_run || checkins + failed == 0 {
            report.anchor_seq = if dry_run { report.anchor_seq } else { previous };
            return Ok(report);
        }
        let mut audit = NewAudit::new("system", "retention_purge", "");
        audit.detail = serde_json::json!({ "checkins": checkins, "failed_attempts": failed, "up_to_seq": upto }).to_string();
        self.audited(&audit, |tx, _, now| {
            let (bytes, redacted): (Vec<u8>, Option<Vec<u8>>) = tx.query_row(
                "SELECT bytes, redacted_hash FROM records WHERE seq = ?1",
                [upto],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let hash = redacted.unwrap_or_else(|| entry_hash(&bytes).to_vec());
            tx.execute(
                "INSERT INTO chain_anchor (chain, seq, hash, purged_at_ms) VALUES ('records', ?1, ?2, ?3)
                 ON CONFLICT (chain) DO UPDATE SET seq = ?1, hash = ?2, purged_at_ms = ?3",
                params![upto, hash, now],
            )?;
            tx.execute("DELETE FROM records WHERE seq <= ?1", [upto])?;
            Ok(())
        })?;
        self.wipe_wal()?;
        tracing::info!(
            checkins,
            failed_attempts = failed,
            up_to_seq = upto,
            "retention purge"
        );
        Ok(report)
    }

    /// Pseudonymises acknowledged check-ins of people no longer on the roster (see
    /// `retention.pseudonymise_departed`): the signed bytes go, their SHA-256 stays so the
    /// chain still verifies, and the employee id becomes a pseudonym keyed with `data.key` (the
    /// same person always maps to the same pseudonym on this kiosk, and nobody without the key
    /// can compute it). Records not yet acknowledged are left whole. Returns how many changed.
    pub fn pseudonymise_departed(&mut self) -> Result<u64> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM records WHERE synced_at_ms IS NOT NULL AND redacted_hash IS NULL
               AND employee_id != '' AND employee_id NOT IN (SELECT id FROM employees)",
            [],
            |r| r.get(0),
        )?;
        if n == 0 {
            return Ok(0);
        }
        let mut audit = NewAudit::new("system", "records_pseudonymised", "");
        audit.detail = serde_json::json!({ "records": n }).to_string();
        let changed = self.audited(&audit, |tx, key, _| {
            let rows: Vec<(i64, String, Vec<u8>)> = {
                let mut stmt = tx.prepare(
                    "SELECT seq, employee_id, bytes FROM records WHERE synced_at_ms IS NOT NULL
                       AND redacted_hash IS NULL AND employee_id != ''
                       AND employee_id NOT IN (SELECT id FROM employees)",
                )?;
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?
            };
            for (seq, id, bytes) in &rows {
                tx.execute(
                    "UPDATE records SET bytes = X'', redacted_hash = ?2, employee_id = ?3 WHERE seq = ?1",
                    params![seq, entry_hash(bytes).to_vec(), pseudonym(key, id)],
                )?;
            }
            Ok(rows.len() as u64)
        })?;
        self.wipe_wal()?;
        tracing::info!(
            records = changed,
            "check-ins of departed employees pseudonymised"
        );
        Ok(changed)
    }
}

/// The pseudonym of an employee id on this kiosk: `p:` and 16 hex digits of a keyed SHA-256.
pub fn pseudonym(key: &[u8; 32], employee_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::new()
        .chain_update(b"clockface pseudonym v1\0")
        .chain_update(key)
        .chain_update(employee_id.as_bytes())
        .finalize();
    format!("p:{}", hex::encode(&d[..8]))
}
