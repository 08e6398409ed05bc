//! Webhooks in the database: subscriptions, the events waiting for them, the batch each is
//! delivering, and the dead letters. Delivery itself (HTTP, signatures, the loop) is in
//! `hub::webhook`.
//!
//! Events are appended in the transaction that stored what they tell of (a check-in, an
//! alert), and only while some webhook wants them. Each webhook keeps a cursor: the batch it
//! delivers is the events after the cursor, fixed when first tried, so a retry sends the same
//! batch under the same id. On PostgreSQL the appends take one more advisory lock, held to the
//! commit, so event ids become visible in order and a cursor never passes an event that was
//! still being written.

use serde::Serialize;

use super::HubDb;
use crate::base::error::{Error, Result};
use crate::hub::sql::{Conn, Lock, OptionalExt, SqlError, params};

/// `[webhooks]` in the hub config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Attempts at one batch before it becomes a dead letter.
    pub max_attempts: u32,
    /// The longest wait between two attempts (the wait doubles from one second).
    pub backoff_max_seconds: u32,
    /// Connect and response timeout of one attempt.
    pub timeout_seconds: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            max_attempts: 12,
            backoff_max_seconds: 300,
            timeout_seconds: 10,
        }
    }
}

/// Events one delivery carries at most.
pub const BATCH: i64 = 500;

/// What a webhook may subscribe to.
pub const EVENT_KINDS: &[&str] = &["checkins", "alerts"];

/// One subscription, as `webhook status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    /// Its id.
    pub id: i64,
    /// Where batches are POSTed.
    pub url: String,
    /// `checkins`, `alerts` or both.
    pub events: Vec<String>,
    /// Batches delivered so far.
    pub delivered: i64,
    /// Events waiting for it.
    pub pending: i64,
    /// Failed attempts at the current batch.
    pub attempts: i64,
    /// The last failure ("" after a success).
    pub last_error: String,
    /// When the next attempt is due (Unix ms).
    pub next_attempt_ms: i64,
    /// Batches given up on.
    pub dead_letters: Vec<DeadLetter>,
}

/// A batch given up on after every retry; its events are kept so it can be sent again.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Its id (for `webhook redeliver`).
    pub id: i64,
    /// The events it held: ids `first_event..=last_event` (of the webhook's kinds).
    pub first_event: i64,
    /// Last event id.
    pub last_event: i64,
    /// Attempts made.
    pub attempts: i64,
    /// Why the last one failed.
    pub last_error: String,
    /// When it was given up (Unix ms).
    pub at_ms: i64,
}

/// A batch ready to send.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The webhook.
    pub webhook: i64,
    /// Where to.
    pub url: String,
    /// The HMAC key.
    pub secret: Vec<u8>,
    /// Stable across retries: `<webhook>-<first>-<last>`.
    pub id: String,
    /// Event ids covered (exclusive start, inclusive end).
    pub after: i64,
    /// Last event id covered.
    pub last: i64,
    /// The events, as JSON objects.
    pub events: Vec<serde_json::Value>,
    /// Attempts made before this one.
    pub attempts: i64,
    /// A dead letter being sent again (its id), rather than the webhook's own cursor.
    pub redelivery: Option<i64>,
}

/// Appends an event of `kind` ("checkins" or "alerts") for the webhooks that want it; nothing
/// when none does. Runs in the caller's transaction.
pub(super) fn enqueue(
    conn: &Conn,
    kind: &str,
    at_ms: i64,
    data: &serde_json::Value,
) -> std::result::Result<(), SqlError> {
    let pattern = format!("%{kind}%");
    if !conn.exists(
        "SELECT 1 FROM webhooks WHERE events LIKE ?1",
        params![pattern],
    )? {
        return Ok(());
    }
    conn.lock_events()?;
    conn.execute(
        "INSERT INTO webhook_events (kind, at_ms, body) VALUES (?1, ?2, ?3)",
        params![kind, at_ms, data.to_string()],
    )?;
    Ok(())
}

fn newest_event(conn: &Conn) -> std::result::Result<i64, SqlError> {
    conn.query_row(
        "SELECT coalesce(max(id), 0) FROM webhook_events",
        params![],
        |r| r.get(0),
    )
}

impl HubDb {
    /// Subscribes `url` to `events` with the HMAC `secret`; it receives what happens from now
    /// on. Returns its id.
    pub fn add_webhook(
        &mut self,
        url: &str,
        secret: &[u8],
        events: &[String],
        now_ms: i64,
    ) -> Result<i64> {
        crate::base::config::check_url(url)
            .map_err(|why| Error::invalid(format!("webhook URL {url:?}"), why))?;
        if secret.len() < 16 {
            return Err(Error::invalid(
                "--secret-file",
                "the secret must be at least 16 bytes (32 random bytes, say)",
            ));
        }
        if events.is_empty() {
            return Err(Error::invalid("--events", "name checkins, alerts or both"));
        }
        for e in events {
            if !EVENT_KINDS.contains(&e.as_str()) {
                return Err(Error::invalid(
                    "--events",
                    format!("{e:?} is not one of checkins, alerts"),
                ));
            }
        }
        let tx = self.conn.begin(Lock::Write)?;
        let cursor = newest_event(&tx)?;
        let id: i64 = tx.query_row(
            "INSERT INTO webhooks (url, secret, events, created_ms, cursor) VALUES (?1, ?2, ?3, ?4, ?5)
             RETURNING id",
            params![url, secret, events.join(","), now_ms, cursor],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Every webhook with its queue and dead letters.
    pub fn webhooks(&self) -> Result<Vec<Webhook>> {
        let rows: Vec<(Webhook, i64)> = self.conn.query_map(
            "SELECT id, url, events, delivered, cursor, attempts, last_error, next_attempt_ms
               FROM webhooks ORDER BY id",
            params![],
            |r| {
                let events: String = r.get(2)?;
                Ok((
                    Webhook {
                        id: r.get(0)?,
                        url: r.get(1)?,
                        events: events.split(',').map(str::to_owned).collect(),
                        delivered: r.get(3)?,
                        pending: 0,
                        attempts: r.get(5)?,
                        last_error: r.get(6)?,
                        next_attempt_ms: r.get(7)?,
                        dead_letters: Vec::new(),
                    },
                    r.get(4)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for (mut w, cursor) in rows {
            w.pending = self.conn.query_row(
                "SELECT count(*) FROM webhook_events WHERE id > ?1 AND (kind = ?2 OR kind = ?3)",
                params![
                    cursor,
                    w.events[0],
                    w.events.last().cloned().unwrap_or_default()
                ],
                |r| r.get(0),
            )?;
            w.dead_letters = self.conn.query_map(
                "SELECT id, first_event, last_event, attempts, last_error, at_ms
                   FROM webhook_dead WHERE webhook_id = ?1 ORDER BY id",
                params![w.id],
                |r| {
                    Ok(DeadLetter {
                        id: r.get(0)?,
                        first_event: r.get(1)?,
                        last_event: r.get(2)?,
                        attempts: r.get(3)?,
                        last_error: r.get(4)?,
                        at_ms: r.get(5)?,
                    })
                },
            )?;
            out.push(w);
        }
        Ok(out)
    }

    /// Takes the next batch due for some webhook, leased to the caller for `lease_ms` so that
    /// no other replica sends it meanwhile. `None` when nothing is due.
    pub fn claim_batch(&mut self, now_ms: i64, lease_ms: i64) -> Result<Option<Batch>> {
        let due: Vec<i64> = self.conn.query_map(
            "SELECT id FROM webhooks WHERE next_attempt_ms <= ?1 AND lease_until_ms <= ?1 ORDER BY next_attempt_ms, id",
            params![now_ms],
            |r| r.get(0),
        )?;
        for id in due {
            let tx = self.conn.begin(Lock::Write)?;
            let claimed = tx.execute(
                "UPDATE webhooks SET lease_until_ms = ?2 WHERE id = ?1 AND lease_until_ms <= ?3",
                params![id, now_ms + lease_ms, now_ms],
            )?;
            if claimed == 0 {
                continue;
            }
            let (url, secret, events, cursor, batch_last, attempts): (
                String,
                Vec<u8>,
                String,
                i64,
                Option<i64>,
                i64,
            ) = tx.query_row(
                "SELECT url, secret, events, cursor, batch_last, attempts FROM webhooks WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )?;
            let redo: Option<(i64, i64, i64)> = tx
                .query_row(
                    "SELECT id, first_event, last_event FROM webhook_dead
                      WHERE webhook_id = ?1 AND redeliver = 1 ORDER BY id LIMIT 1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let kinds: Vec<&str> = events.split(',').collect();
            let (after, last, redelivery) = match (redo, batch_last) {
                (Some((dead, first, last)), _) => (first - 1, last, Some(dead)),
                (None, Some(last)) => (cursor, last, None),
                (None, None) => {
                    let last: i64 = tx.query_row(
                        "SELECT coalesce(max(id), ?1) FROM (SELECT id FROM webhook_events
                          WHERE id > ?1 AND (kind = ?2 OR kind = ?3) ORDER BY id LIMIT ?4) b",
                        params![cursor, kinds[0], kinds[kinds.len() - 1], BATCH],
                        |r| r.get(0),
                    )?;
                    if last == cursor {
                        tx.execute(
                            "UPDATE webhooks SET lease_until_ms = 0 WHERE id = ?1",
                            params![id],
                        )?;
                        tx.commit()?;
                        continue;
                    }
                    tx.execute(
                        "UPDATE webhooks SET batch_last = ?2 WHERE id = ?1",
                        params![id, last],
                    )?;
                    (cursor, last, None)
                }
            };
            let events: Vec<serde_json::Value> = tx.query_map(
                "SELECT id, kind, at_ms, body FROM webhook_events
                  WHERE id > ?1 AND id <= ?2 AND (kind = ?3 OR kind = ?4) ORDER BY id",
                params![after, last, kinds[0], kinds[kinds.len() - 1]],
                |r| {
                    let body: String = r.get(3)?;
                    Ok(serde_json::json!({
                        "id": r.get::<i64>(0)?,
                        "kind": r.get::<String>(1)?,
                        "at_ms": r.get::<i64>(2)?,
                        "data": serde_json::from_str::<serde_json::Value>(&body)
                            .unwrap_or(serde_json::Value::Null),
                    }))
                },
            )?;
            tx.commit()?;
            return Ok(Some(Batch {
                webhook: id,
                url,
                secret,
                id: format!("{id}-{}-{last}", after + 1),
                after,
                last,
                events,
                attempts,
                redelivery,
            }));
        }
        Ok(None)
    }

    /// The receiver took `batch`: the cursor moves past it (or its dead letter is gone).
    pub fn batch_delivered(&mut self, batch: &Batch) -> Result<()> {
        let tx = self.conn.begin(Lock::Write)?;
        match batch.redelivery {
            Some(dead) => {
                tx.execute("DELETE FROM webhook_dead WHERE id = ?1", params![dead])?;
                tx.execute(
                    "UPDATE webhooks SET lease_until_ms = 0, delivered = delivered + 1 WHERE id = ?1",
                    params![batch.webhook],
                )?;
            }
            None => {
                tx.execute(
                    "UPDATE webhooks SET cursor = ?2, batch_last = NULL, attempts = 0, last_error = '',
                            next_attempt_ms = 0, lease_until_ms = 0, delivered = delivered + 1
                      WHERE id = ?1",
                    params![batch.webhook, batch.last],
                )?;
            }
        }
        tx.commit()?;
        self.prune_events()?;
        Ok(())
    }

    /// A delivery failed: try again at `retry_at_ms`, or, after `max_attempts`, give the batch
    /// up into the dead letters (its events kept) and go on with the next.
    pub fn batch_failed(
        &mut self,
        batch: &Batch,
        why: &str,
        now_ms: i64,
        retry_at_ms: i64,
        max_attempts: i64,
    ) -> Result<()> {
        let tx = self.conn.begin(Lock::Write)?;
        let attempts = batch.attempts + 1;
        if let Some(dead) = batch.redelivery {
            tx.execute(
                "UPDATE webhook_dead SET redeliver = 0, attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                params![dead, why],
            )?;
            tx.execute(
                "UPDATE webhooks SET lease_until_ms = 0 WHERE id = ?1",
                params![batch.webhook],
            )?;
        } else if attempts >= max_attempts {
            tx.execute(
                "INSERT INTO webhook_dead (webhook_id, first_event, last_event, attempts, last_error, at_ms, redeliver)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
                params![batch.webhook, batch.after + 1, batch.last, attempts, why, now_ms],
            )?;
            tx.execute(
                "UPDATE webhooks SET cursor = ?2, batch_last = NULL, attempts = 0, last_error = ?3,
                        next_attempt_ms = 0, lease_until_ms = 0 WHERE id = ?1",
                params![batch.webhook, batch.last, why],
            )?;
            tracing::error!(
                webhook = batch.webhook,
                batch = batch.id,
                "webhook batch given up after {attempts} attempts: kept as a dead letter"
            );
        } else {
            tx.execute(
                "UPDATE webhooks SET attempts = ?2, last_error = ?3, next_attempt_ms = ?4, lease_until_ms = 0
                  WHERE id = ?1",
                params![batch.webhook, attempts, why, retry_at_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sends a dead letter again at the next chance (`webhook redeliver`). False when there
    /// is no such dead letter.
    pub fn redeliver(&mut self, dead: i64) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE webhook_dead SET redeliver = 1 WHERE id = ?1",
            params![dead],
        )?;
        Ok(n > 0)
    }

    /// Drops the events every webhook and every dead letter is past.
    fn prune_events(&mut self) -> Result<()> {
        self.conn.execute(
            "DELETE FROM webhook_events WHERE id <= (SELECT coalesce(min(cursor), 0) FROM webhooks)
               AND id < (SELECT coalesce(min(first_event), 9223372036854775807) FROM webhook_dead)",
            params![],
        )?;
        Ok(())
    }
}
