//! The biometric outbox: people whose consent or locally enrolled templates changed since the
//! backend last heard of them, and the state each round sends (`POST /v1/biometrics`), so that
//! the person's other doors follow their decision.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rusqlite::{Transaction, params};

use super::Store;
use crate::base::error::Result;
use crate::base::protocol::{BiometricUpdate, ConsentScope, RosterConsent, RosterTemplate};

/// Marks `employee_id`'s biometric state as changed, for the next sync round to tell the
/// backend (state, not events: re-queueing is harmless).
/// The stamp grows strictly, so an acknowledgement of an older state never clears a newer one.
pub(crate) fn queue_biometric(tx: &Transaction<'_>, employee_id: &str, now: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO biometric_outbox (employee_id, queued_ms)
              VALUES (?1, max(?2, coalesce((SELECT max(queued_ms) FROM biometric_outbox), 0) + 1))
         ON CONFLICT (employee_id) DO UPDATE SET queued_ms = excluded.queued_ms",
        params![employee_id, now],
    )?;
    Ok(())
}

impl Store {
    /// People whose biometric state the backend has not heard of yet, oldest change first.
    pub fn biometric_outbox(&self, limit: usize) -> Result<Vec<(String, i64)>> {
        let mut s = self.conn().prepare(
            "SELECT employee_id, queued_ms FROM biometric_outbox ORDER BY queued_ms, employee_id LIMIT ?1",
        )?;
        let rows = s.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What the backend is told of one person: the consent in force (none once they are
    /// deleted here) and, under a consent given for scope "site", the templates enrolled at
    /// this kiosk for `model` (never those the backend sent).
    pub fn biometric_update(&self, employee_id: &str, model: &str) -> Result<BiometricUpdate> {
        let consent = if self.employee(employee_id)?.is_some() {
            self.consent(employee_id)?
        } else {
            None
        };
        let site = consent
            .as_ref()
            .is_some_and(|c| c.given && c.scope == ConsentScope::Site);
        let templates = if site {
            let key = self.data_key()?;
            let mut s = self.conn().prepare(
                "SELECT id, sealed FROM templates WHERE employee_id = ?1 AND model = ?2 AND source = 'local' ORDER BY id",
            )?;
            let rows: Vec<(i64, Vec<u8>)> = s
                .query_map(params![employee_id, model], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, sealed) in rows {
                let plain = super::keys::open(
                    key,
                    &sealed,
                    &super::roster::template_aad(employee_id, model),
                    &format!("template {id}"),
                )?;
                out.push(RosterTemplate {
                    model: model.into(),
                    embedding: B64.encode(&*plain),
                });
            }
            out
        } else {
            Vec::new()
        };
        Ok(BiometricUpdate {
            employee_id: employee_id.into(),
            consent: consent.map(|c| RosterConsent {
                given: c.given,
                text_version: c.text_version,
                scope: c.scope,
            }),
            // Site consent with nothing enrolled here yet: nothing to send but the consent.
            templates,
        })
    }

    /// The backend acknowledged the state queued at `queued_ms`; a newer change stays queued.
    pub fn biometric_sent(&mut self, employee_id: &str, queued_ms: i64) -> Result<()> {
        self.conn().execute(
            "DELETE FROM biometric_outbox WHERE employee_id = ?1 AND queued_ms = ?2",
            params![employee_id, queued_ms],
        )?;
        Ok(())
    }
}
