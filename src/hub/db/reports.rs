//! Reports over what the hub holds: each device's chains (heads, gaps, conflicts), counts and
//! clock skew. The timesheet is in `timesheet`.

use crate::hub::sql::{OptionalExt, params};
use serde::Serialize;
use uuid::Uuid;

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
    /// Gaps, heads and conflicts of every device chain.
    pub fn chain_reports(&self) -> crate::base::error::Result<Vec<ChainReport>> {
        let mut out = Vec::new();
        let devices: Vec<(String, String)> =
            self.conn
                .query_map("SELECT id, name FROM devices ORDER BY id", params![], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
        for (id, name) in devices {
            for chain in [Chain::Checkins, Chain::Audit] {
                let seqs: Vec<i64> = self.conn.query_map(
                    "SELECT seq FROM entries WHERE device_id = ?1 AND chain = ?2 ORDER BY seq",
                    params![id, chain.as_str()],
                    |r| r.get(0),
                )?;
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
                let conflicts = self.conn.query_map(
                    "SELECT seq, kind, detail FROM conflicts WHERE device_id = ?1 AND chain = ?2 ORDER BY seq, id",
                    params![id, chain.as_str()],
                    |r| {
                        Ok(format!(
                            "seq {}: {} ({})",
                            r.get::<i64>(0)?,
                            r.get::<String>(1)?,
                            r.get::<String>(2)?
                        ))
                    },
                )?;
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
            params![chain.as_str()],
            |r| r.get::<i64>(0),
        )? as u64)
    }

    /// The last heartbeat's clock skew of a device (hub − device, ms), if any.
    pub fn clock_skew_ms(&self, device_id: &Uuid) -> crate::base::error::Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT clock_skew_ms FROM devices WHERE id = ?1",
                params![device_id.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }
}
