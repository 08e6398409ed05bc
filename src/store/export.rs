//! Export of check-in records for payroll and audits, as CSV or JSON Lines.
//!
//! Exported fields come from the signed bytes (not the query columns), so an export shows what
//! was signed. The time range is half-open: `since <= time < until`. `time` is the site's
//! local time with its offset; `time_utc` the instant as the record holds it.

use std::io::Write;

use serde::Serialize;

use super::Store;
use super::entry::entry_hash;
use super::record::Record;
use crate::base::error::{Error, Result};
use crate::base::zone::SiteZone;

/// Output formats of `clockface export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// One exported row: a record flattened for spreadsheets.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRow {
    /// Sequence number in the device chain.
    pub seq: u64,
    /// Record UUIDv7.
    pub uuid: String,
    /// Kiosk id.
    pub device_id: String,
    /// Employee ("" when nobody was identified).
    pub employee_id: String,
    /// accepted / rejected.
    pub outcome: &'static str,
    /// in / out / auto.
    pub direction: &'static str,
    /// badge_face, badge_pin, face_only, pin_only.
    pub method: &'static str,
    /// Failure reason code.
    pub reason: String,
    /// RFC 3339 local time of the site with milliseconds and the offset.
    pub time: String,
    /// Whether the clock was synchronised.
    pub clock_synced: bool,
    /// Liveness score, if any.
    pub liveness: Option<f32>,
    /// Match score, if any.
    pub match_score: Option<f32>,
    /// Policy version.
    pub policy_version: u32,
    /// Hex SHA-256 of the record, to cross-reference with the backend.
    pub hash: String,
    /// The punch type: in, out, break_out, break_in, overtime_in, overtime_out or auto.
    pub punch: &'static str,
    /// The same instant as `time`, RFC 3339 UTC, as the record holds it.
    pub time_utc: String,
}

/// Formats Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

impl ExportRow {
    fn from_record(r: &Record, bytes: &[u8], zone: &SiteZone) -> Self {
        ExportRow {
            seq: r.seq,
            uuid: r.uuid.to_string(),
            device_id: r.device_id.to_string(),
            employee_id: r.employee_id.clone(),
            outcome: r.outcome.as_str(),
            direction: r.punch.direction(),
            method: r.method.as_str(),
            reason: r.reason.clone(),
            time: zone.rfc3339_ms(r.wall_ms),
            clock_synced: r.clock_synced,
            liveness: r.liveness,
            match_score: r.match_score,
            policy_version: r.policy_version,
            hash: hex::encode(entry_hash(bytes)),
            punch: r.punch.as_str(),
            time_utc: rfc3339_ms(r.wall_ms),
        }
    }
}

impl Store {
    /// Counts the records an export of this range would write (for progress bars).
    pub fn count_range(&self, since_ms: Option<i64>, until_ms: Option<i64>) -> Result<u64> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM records WHERE wall_ms >= ?1 AND wall_ms < ?2 AND redacted_hash IS NULL",
            [since_ms.unwrap_or(i64::MIN), until_ms.unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Writes records with `since <= time < until` in sequence order; returns how many.
    /// `progress` is called with the running count.
    pub fn export(
        &self,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        format: ExportFormat,
        zone: &SiteZone,
        out: &mut dyn Write,
        progress: &dyn Fn(u64),
    ) -> Result<u64> {
        let mut stmt = self.conn().prepare(
            "SELECT bytes FROM records WHERE wall_ms >= ?1 AND wall_ms < ?2 AND redacted_hash IS NULL ORDER BY seq",
        )?;
        let mut rows = stmt.query([since_ms.unwrap_or(i64::MIN), until_ms.unwrap_or(i64::MAX)])?;
        let io = |e: std::io::Error| Error::io("export output", e);
        let bad = |e: csv::Error| Error::invalid("export", e.to_string());
        let mut n = 0u64;
        let mut each = |f: &mut dyn FnMut(&ExportRow) -> Result<()>| -> Result<()> {
            while let Some(row) = rows.next()? {
                let bytes: Vec<u8> = row.get(0)?;
                let rec = Record::decode(&bytes)?;
                f(&ExportRow::from_record(&rec, &bytes, zone))?;
                n += 1;
                if n.is_multiple_of(4096) {
                    progress(n);
                }
            }
            Ok(())
        };
        match format {
            ExportFormat::Csv => {
                let mut w = csv::Writer::from_writer(&mut *out);
                // The one free-text column is neutralised for spreadsheets (JSON keeps it as is).
                each(&mut |er| {
                    let mut row = er.clone();
                    row.employee_id = crate::base::text::csv_cell(&er.employee_id).into_owned();
                    w.serialize(row).map_err(bad)
                })?;
                if n == 0 {
                    // Header even for an empty range, so consumers see the columns.
                    w.write_record(CSV_HEADER).map_err(bad)?;
                }
                w.flush().map_err(io)?;
            }
            ExportFormat::Jsonl => {
                let mut w = std::io::BufWriter::new(&mut *out);
                each(&mut |er| {
                    serde_json::to_writer(&mut w, er)
                        .map_err(|e| Error::invalid("export", e.to_string()))?;
                    w.write_all(b"\n").map_err(io)
                })?;
                w.flush().map_err(io)?;
            }
        }
        progress(n);
        Ok(n)
    }
}

/// Column names of the CSV export, in order.
pub const CSV_HEADER: &[&str] = &[
    "seq",
    "uuid",
    "device_id",
    "employee_id",
    "outcome",
    "direction",
    "method",
    "reason",
    "time",
    "clock_synced",
    "liveness",
    "match_score",
    "policy_version",
    "hash",
    "punch",
    "time_utc",
];
