//! What the HR-terminal protocols (ZK pull, ADMS push) read from and keep in the store: the
//! roster as ZK users with stable small uids, accepted check-ins after a cursor, each ZK
//! client's read-up-to cursor and the ADMS outbox position. Nothing here deletes or changes a
//! signed record: "clear attendance" only moves a cursor, and is audited.

use rusqlite::{OptionalExtension, params};

use super::Store;
use super::audit::NewAudit;
use super::record::Record;
use crate::base::error::{Error, Result};

/// One employee as a ZK client sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkUser {
    /// The small per-employee number ZK clients key on (1–65535), stable while on the roster.
    pub uid: u16,
    /// The employee id (ZK `user_id`).
    pub employee_id: String,
    /// Display name.
    pub name: String,
    /// Admin at this kiosk (ZK privilege 14) or a normal user (0).
    pub is_admin: bool,
    /// The badge number when one of the person's badges is all digits and fits 32 bits; else 0.
    pub card: u32,
}

impl Store {
    /// Every active employee as a ZK user, by uid. Employees without a uid get the next free
    /// one, in one write transaction (so two sessions never hand out the same number); when
    /// every employee has one, this only reads.
    pub fn zk_users(&mut self) -> Result<Vec<ZkUser>> {
        let missing_sql = "SELECT e.id FROM employees e LEFT JOIN zk_uids z ON z.employee_id = e.id
                 WHERE e.active = 1 AND z.uid IS NULL ORDER BY e.id";
        let any_missing =
            self.conn
                .query_row(&format!("SELECT EXISTS ({missing_sql})"), [], |r| {
                    r.get::<_, bool>(0)
                })?;
        if any_missing {
            self.assign_zk_uids(missing_sql)?;
        }
        self.read_zk_users()
    }

    /// How many active employees a ZK client sees (its "free sizes" user count).
    pub fn zk_user_count(&self) -> Result<u64> {
        let n: i64 =
            self.conn
                .query_row("SELECT count(*) FROM employees WHERE active = 1", [], |r| {
                    r.get(0)
                })?;
        Ok(n as u64)
    }

    fn assign_zk_uids(&mut self, missing_sql: &str) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(super::entry::map_write_err)?;
        let missing: Vec<String> = {
            let mut stmt = tx.prepare(missing_sql)?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        for id in missing {
            // The lowest free number: 1, or one above a taken number whose successor is free.
            let free: Option<i64> = tx.query_row(
                "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM zk_uids WHERE uid = 1) THEN 1 ELSE
                   (SELECT min(z.uid) + 1 FROM zk_uids z
                    WHERE z.uid < 65535 AND NOT EXISTS (SELECT 1 FROM zk_uids y WHERE y.uid = z.uid + 1))
                 END",
                [],
                |r| r.get(0),
            )?;
            let uid = free
                .ok_or_else(|| Error::invalid("zk uid", "all 65,535 ZK user numbers are in use"))?;
            tx.execute(
                "INSERT INTO zk_uids (employee_id, uid) VALUES (?1, ?2)",
                params![id, uid],
            )?;
        }
        tx.commit().map_err(super::entry::map_write_err)?;
        Ok(())
    }

    fn read_zk_users(&self) -> Result<Vec<ZkUser>> {
        let users = {
            let mut stmt = self.conn.prepare(
                "SELECT z.uid, e.id, e.display_name, e.is_admin,
                        (SELECT min(CAST(b.badge_id AS INTEGER)) FROM badges b
                         WHERE b.employee_id = e.id AND b.badge_id NOT GLOB '*[^0-9]*'
                           AND length(b.badge_id) BETWEEN 1 AND 10
                           AND CAST(b.badge_id AS INTEGER) <= 4294967295)
                 FROM employees e JOIN zk_uids z ON z.employee_id = e.id
                 WHERE e.active = 1 ORDER BY z.uid",
            )?;
            stmt.query_map([], |r| {
                Ok(ZkUser {
                    uid: r.get::<_, i64>(0)? as u16,
                    employee_id: r.get(1)?,
                    name: r.get(2)?,
                    is_admin: r.get(3)?,
                    card: r.get::<_, Option<i64>>(4)?.unwrap_or(0) as u32,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
        };
        Ok(users)
    }

    /// Accepted check-ins with a seq above `after`, oldest first, at most `limit`. A
    /// pseudonymised record (its bytes gone) is skipped: nobody can be paid from it.
    pub fn accepted_after(&self, after: u64, limit: usize) -> Result<Vec<Record>> {
        let mut stmt = self.conn.prepare(
            "SELECT bytes FROM records WHERE outcome = 1 AND seq > ?1 AND bytes IS NOT NULL
             AND redacted_hash IS NULL ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after as i64, limit as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        rows.map(|b| Record::decode(&b?))
            .collect::<Result<Vec<_>>>()
    }

    /// How many accepted check-ins have a seq above `after`.
    pub fn accepted_count_after(&self, after: u64) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM records WHERE outcome = 1 AND seq > ?1 AND bytes IS NOT NULL
             AND redacted_hash IS NULL",
            [after as i64],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// The highest record seq in the chain (0 when empty).
    pub fn last_record_seq(&self) -> Result<u64> {
        let n: Option<i64> = self
            .conn
            .query_row("SELECT max(seq) FROM records", [], |r| r.get(0))?;
        Ok(n.unwrap_or(0) as u64)
    }

    /// A ZK client's read-up-to cursor (0: it has cleared nothing).
    pub fn zk_cursor(&self, client: &str) -> Result<u64> {
        let n: Option<i64> = self
            .conn
            .query_row(
                "SELECT seq FROM zk_cursors WHERE client = ?1",
                [client],
                |r| r.get(0),
            )
            .optional()?;
        Ok(n.unwrap_or(0) as u64)
    }

    /// "Clear attendance" from a ZK client: moves its cursor to the chain's head and audits
    /// it, in one transaction. Returns the new cursor. No record is deleted.
    pub fn zk_clear(&mut self, client: &str) -> Result<u64> {
        let head = self.last_record_seq()?;
        let mut audit = NewAudit::new("zk", "zk_clear_attendance", "");
        audit.detail = serde_json::json!({ "client": client, "cursor": head }).to_string();
        self.audited(&audit, |tx, _, now| {
            tx.execute(
                "INSERT INTO zk_cursors (client, seq, updated_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (client) DO UPDATE SET seq = excluded.seq, updated_ms = excluded.updated_ms",
                params![client, head as i64, now],
            )?;
            Ok(head)
        })
    }

    /// The last record seq the ADMS server acknowledged (0: none yet).
    pub fn adms_sent(&self) -> Result<u64> {
        let n: Option<i64> = self
            .conn
            .query_row("SELECT sent_seq FROM adms_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(n.unwrap_or(0) as u64)
    }

    /// Moves the ADMS outbox position: after the server's `OK` for records up to `seq`, or to
    /// where the server's handshake `ATTLOGStamp` says it is (the server's word wins).
    pub fn set_adms_sent(&mut self, seq: u64) -> Result<()> {
        let now = self.clock.wall_ms();
        self.conn
            .execute(
                "INSERT INTO adms_state (id, sent_seq, updated_ms) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET sent_seq = excluded.sent_seq, updated_ms = excluded.updated_ms",
                params![seq as i64, now],
            )
            .map_err(super::entry::map_write_err)?;
        Ok(())
    }
}
