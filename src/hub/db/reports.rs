//! Reports over what the hub holds: the timesheet, each device's chains (heads, gaps,
//! conflicts), counts and clock skew.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use uuid::Uuid;

use crate::base::error::Error;
use crate::base::text::csv_cell;
use crate::store::record::Record;

use super::{Chain, HubDb};

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

impl HubDb {
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
            "data_region",
        ])
        .map_err(csv_err)?;
        let mut stmt = self.conn.prepare(
            "SELECT e.bytes, d.name, d.site, coalesce(emp.display_name, ''), d.data_region
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
                &*csv_cell(&rec.employee_id),
                &*csv_cell(&display),
                &t.format("%Y-%m-%d").to_string(),
                &t.format("%H:%M:%S").to_string(),
                rec.punch.as_str(),
                rec.method.as_str(),
                &*csv_cell(&name),
                &*csv_cell(&site),
                &rec.uuid.to_string(),
                &*csv_cell(&row.get::<_, String>(4)?),
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
