//! The fleet view and its alerts: what each kiosk last said of itself (version, queues, clock,
//! disk, camera, models), whether it is online, and the security events an operator must see.
//!
//! Alerts are raised where the evidence arrives: heartbeats (camera lost, face models failing
//! their checks, clock off, disk nearly full), ingest (chain forks and broken links, repeated
//! liveness failures at one kiosk) and synced audit entries (PIN lockouts, a backend head the
//! kiosk refused). Being offline too long and chain gaps are worked out when asked. Each alert
//! names its device and time and says what happened in words, never who or any biometric data.

use serde::Serialize;

use super::{ApiFailure, HubDb};
use crate::base::protocol::{Heartbeat, KioskStatus};
use crate::hub::sql::{Conn, OptionalExt, SqlError, params};

/// Heartbeats a kiosk may miss before it counts as offline.
pub const MISSED_HEARTBEATS: i64 = 3;
/// The interval assumed for kiosks that do not say theirs (the kiosk's default).
const DEFAULT_INTERVAL_S: i64 = 60;
/// An offline kiosk is an alert after this long.
pub const OFFLINE_ALERT_MS: i64 = 60 * 60_000;
/// Liveness failures at one kiosk within [`LIVENESS_WINDOW_MS`] that raise an alert.
pub const LIVENESS_FAILURES: i64 = 3;
/// The window for [`LIVENESS_FAILURES`].
pub const LIVENESS_WINDOW_MS: i64 = 10 * 60_000;
/// Free disk below which a kiosk is reported (its store stops taking records when full).
const LOW_DISK_BYTES: u64 = 200 * 1024 * 1024;
/// Clock skew beyond which a kiosk is reported (as the kiosk warns too).
const SKEW_ALERT_MS: i64 = 5 * 60_000;

/// One kiosk in the fleet view (`clockface-hub devices`).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    /// Device id.
    pub id: String,
    /// Its configured name.
    pub name: String,
    /// Its site.
    pub site: String,
    /// The data region it was paired under ("" when neither it nor the hub named one).
    pub data_region: String,
    /// When it paired (Unix ms).
    pub paired_ms: i64,
    /// Its last authenticated request (Unix ms).
    pub last_seen_ms: Option<i64>,
    /// "online", "offline" (no heartbeat for three of its intervals) or "never" (paired, no
    /// heartbeat yet).
    pub state: String,
    /// Software version from its last heartbeat.
    pub version: String,
    /// Check-ins and audit entries it still had to send.
    pub queue_depth: Option<u64>,
    /// Audit entries it still had to send.
    pub audit_queue_depth: Option<u64>,
    /// Hub time minus its time at the last heartbeat (ms).
    pub clock_skew_ms: Option<i64>,
    /// Free bytes on its data partition.
    pub free_disk_bytes: Option<u64>,
    /// Its camera and face models, as it said.
    pub status: Option<KioskStatus>,
    /// Its newest alerts, newest first (at most three).
    pub latest_alerts: Vec<Alert>,
}

/// One security or health event (`clockface-hub alerts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// When it happened (hub time for heartbeats, the kiosk's for its records; Unix ms).
    pub at_ms: i64,
    /// Which kiosk.
    pub device_id: String,
    /// Its name.
    pub device_name: String,
    /// Its site.
    pub site: String,
    /// `camera_lost`, `face_unavailable`, `clock_skew`, `low_disk`, `chain_conflict`,
    /// `chain_gap`, `repeated_liveness_failures`, `pin_lockout`, `admin_pin_lockout`,
    /// `backend_head_ahead`, `offline`.
    pub kind: String,
    /// What happened, in words.
    pub detail: String,
}

/// Records an alert once (`dedupe` tells repeats of one event apart from new ones); true when
/// it is new. Runs inside the caller's transaction.
pub(super) fn raise(
    conn: &Conn,
    device: &str,
    at_ms: i64,
    kind: &str,
    detail: &str,
    dedupe: &str,
) -> Result<bool, SqlError> {
    let n = conn.execute(
        "INSERT INTO alerts (device_id, at_ms, kind, detail, dedupe) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO NOTHING",
        params![device, at_ms, kind, detail, dedupe],
    )?;
    if n > 0 {
        tracing::warn!(device, kind, "alert");
        let (name, site): (String, String) = conn
            .query_row(
                "SELECT name, site FROM devices WHERE id = ?1",
                params![device],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or_default();
        let alert = Alert {
            at_ms,
            device_id: device.into(),
            device_name: name,
            site,
            kind: kind.into(),
            detail: detail.into(),
        };
        super::webhooks::enqueue(
            conn,
            "alerts",
            at_ms,
            &serde_json::to_value(&alert).expect("serialisable"),
        )?;
    }
    Ok(n > 0)
}

/// The alerts a heartbeat raises, against the one before it.
pub(super) fn heartbeat_alerts(
    conn: &Conn,
    device: &str,
    before: Option<&Heartbeat>,
    hb: &Heartbeat,
    skew_ms: i64,
    before_skew: Option<i64>,
    now_ms: i64,
) -> Result<(), SqlError> {
    let dedupe = hb.device_time_ms.to_string();
    let prev = before.and_then(|b| b.status.as_ref());
    if let Some(st) = &hb.status {
        if st.camera == "lost" && prev.is_none_or(|p| p.camera != "lost") {
            let why = st.problems.iter().find(|p| p.starts_with("camera"));
            let detail = why.map_or("the camera delivers no frames", |w| w.as_str());
            raise(conn, device, now_ms, "camera_lost", detail, &dedupe)?;
        }
        let face_problem = st
            .problems
            .iter()
            .find(|p| p.starts_with("face check-in unavailable"));
        let had = prev.is_some_and(|p| {
            p.problems
                .iter()
                .any(|x| x.starts_with("face check-in unavailable"))
        });
        if let Some(why) = face_problem
            && !had
        {
            raise(conn, device, now_ms, "face_unavailable", why, &dedupe)?;
        }
    }
    if skew_ms.abs() > SKEW_ALERT_MS && before_skew.is_none_or(|s| s.abs() <= SKEW_ALERT_MS) {
        let detail = format!(
            "the kiosk's clock is {} s off the hub's (records keep their own time)",
            skew_ms / 1000
        );
        raise(conn, device, now_ms, "clock_skew", &detail, &dedupe)?;
    }
    if hb.free_disk_bytes < LOW_DISK_BYTES
        && before.is_none_or(|b| b.free_disk_bytes >= LOW_DISK_BYTES)
    {
        let detail = format!(
            "{} MiB free on the data partition",
            hb.free_disk_bytes / (1024 * 1024)
        );
        raise(conn, device, now_ms, "low_disk", &detail, &dedupe)?;
    }
    Ok(())
}

/// What the hub reads of an audit entry for its alerts.
pub(super) struct AuditFacts {
    pub(super) uuid: uuid::Uuid,
    pub(super) wall_ms: i64,
    pub(super) action: String,
    pub(super) subject: String,
}

/// Alerts from one stored audit entry of a kiosk.
pub(super) fn audit_alerts(conn: &Conn, device: &str, entry: &AuditFacts) -> Result<(), SqlError> {
    let dedupe = entry.uuid.to_string();
    match entry.action.as_str() {
        "pin_locked_out" => {
            let admin = conn
                .query_row(
                    "SELECT is_admin FROM employees WHERE id = ?1",
                    params![entry.subject],
                    |r| r.get::<bool>(0),
                )
                .optional()?
                .unwrap_or(false);
            let (kind, detail) = if admin {
                (
                    "admin_pin_lockout",
                    "an admin PIN was locked after repeated wrong entries",
                )
            } else {
                (
                    "pin_lockout",
                    "an employee PIN was locked after repeated wrong entries",
                )
            };
            raise(conn, device, entry.wall_ms, kind, detail, &dedupe)?;
        }
        "backend_head_ahead" => {
            raise(
                conn,
                device,
                entry.wall_ms,
                "backend_head_ahead",
                "the kiosk was told of more entries than it ever signed and refused to believe it",
                &dedupe,
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// Counts a stored liveness failure; a run of them at one kiosk is an alert.
pub(super) fn liveness_failure(
    conn: &Conn,
    device: &str,
    seq: u64,
    wall_ms: i64,
) -> Result<(), SqlError> {
    conn.execute(
        "INSERT INTO liveness_failures (device_id, seq, wall_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        params![device, seq as i64, wall_ms],
    )?;
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM liveness_failures
          WHERE device_id = ?1 AND wall_ms > ?2 AND wall_ms <= ?3",
        params![device, wall_ms - LIVENESS_WINDOW_MS, wall_ms],
        |r| r.get(0),
    )?;
    if n >= LIVENESS_FAILURES {
        let detail = format!(
            "{n} liveness failures within {} minutes (a photo or screen held up to the camera?)",
            LIVENESS_WINDOW_MS / 60_000
        );
        let bucket = (wall_ms / LIVENESS_WINDOW_MS).to_string();
        raise(
            conn,
            device,
            wall_ms,
            "repeated_liveness_failures",
            &detail,
            &bucket,
        )?;
    }
    Ok(())
}

/// A device row as the view reads it.
type DeviceRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

impl HubDb {
    fn device_rows(&self, site: Option<&str>) -> Result<Vec<DeviceRow>, SqlError> {
        self.conn.query_map(
            "SELECT id, name, site, data_region, paired_ms, last_seen_ms, heartbeat, clock_skew_ms
               FROM devices WHERE CAST(?1 AS TEXT) IS NULL OR site = ?1 ORDER BY site, name, id",
            params![site],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
    }

    /// Every paired kiosk (of `site`, when given), by site and name, as of `now_ms`.
    pub fn fleet(
        &self,
        site: Option<&str>,
        now_ms: i64,
    ) -> crate::base::error::Result<Vec<DeviceInfo>> {
        let rows = self.device_rows(site)?;
        let alerts = self.alerts(now_ms)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, name, site, data_region, paired_ms, last_seen_ms, hb, skew) in rows {
            let hb: Option<Heartbeat> = hb.and_then(|j| serde_json::from_str(&j).ok());
            let state = state(hb.as_ref(), last_seen_ms, now_ms);
            let latest_alerts = alerts
                .iter()
                .filter(|a| a.device_id == id)
                .take(3)
                .cloned()
                .collect();
            out.push(DeviceInfo {
                id,
                name,
                site,
                data_region,
                paired_ms,
                last_seen_ms,
                state: state.into(),
                version: hb.as_ref().map(|h| h.version.clone()).unwrap_or_default(),
                queue_depth: hb.as_ref().map(|h| h.queue_depth),
                audit_queue_depth: hb.as_ref().map(|h| h.audit_queue_depth),
                clock_skew_ms: skew,
                free_disk_bytes: hb.as_ref().map(|h| h.free_disk_bytes),
                status: hb.and_then(|h| h.status),
                latest_alerts,
            });
        }
        Ok(out)
    }

    /// Every alert, newest first: those stored, and kiosks offline too long or with gaps in
    /// their chains as of `now_ms`.
    pub fn alerts(&self, now_ms: i64) -> crate::base::error::Result<Vec<Alert>> {
        let mut out: Vec<Alert> = self.conn.query_map(
            "SELECT a.at_ms, a.device_id, coalesce(d.name, ''), coalesce(d.site, ''), a.kind, a.detail
               FROM alerts a LEFT JOIN devices d ON d.id = a.device_id
              ORDER BY a.at_ms DESC, a.id DESC LIMIT 10000",
            params![],
            |r| {
                Ok(Alert {
                    at_ms: r.get(0)?,
                    device_id: r.get(1)?,
                    device_name: r.get(2)?,
                    site: r.get(3)?,
                    kind: r.get(4)?,
                    detail: r.get(5)?,
                })
            },
        )?;
        for (id, name, site, _, _, last_seen, hb, _) in self.device_rows(None)? {
            let hb: Option<Heartbeat> = hb.and_then(|j| serde_json::from_str(&j).ok());
            if let Some(seen) = last_seen
                && state(hb.as_ref(), last_seen, now_ms) == "offline"
                && now_ms - seen > OFFLINE_ALERT_MS
            {
                out.push(Alert {
                    at_ms: seen + OFFLINE_ALERT_MS,
                    device_id: id.clone(),
                    device_name: name.clone(),
                    site: site.clone(),
                    kind: "offline".into(),
                    detail: format!("no heartbeat for {} minutes", (now_ms - seen) / 60_000),
                });
            }
            let gaps: Vec<(String, i64, i64, i64)> = self.conn.query_map(
                "SELECT h.chain, h.seq, max(e.seq), max(e.received_ms)
                   FROM heads h JOIN entries e ON e.device_id = h.device_id AND e.chain = h.chain
                  WHERE h.device_id = ?1
                  GROUP BY h.chain, h.seq HAVING max(e.seq) > h.seq",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            for (chain, head, last, at) in gaps {
                out.push(Alert {
                    at_ms: at,
                    device_id: id.clone(),
                    device_name: name.clone(),
                    site: site.clone(),
                    kind: "chain_gap".into(),
                    detail: format!(
                        "the {chain} chain stops at seq {head} but seq {last} is stored: entries are missing (deleted at the kiosk?)"
                    ),
                });
            }
        }
        out.sort_by_key(|a| std::cmp::Reverse(a.at_ms));
        Ok(out)
    }

    /// The heartbeat a device sent last, if any.
    pub(super) fn last_heartbeat(&self, device: &str) -> Result<Option<Heartbeat>, ApiFailure> {
        let j: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT heartbeat FROM devices WHERE id = ?1",
                params![device],
                |r| r.get(0),
            )
            .optional()?;
        Ok(j.flatten().and_then(|j| serde_json::from_str(&j).ok()))
    }
}

/// "online", "offline" or "never".
fn state(hb: Option<&Heartbeat>, last_seen: Option<i64>, now_ms: i64) -> &'static str {
    let Some(seen) = last_seen else {
        return "never";
    };
    let interval = hb
        .and_then(|h| h.interval_s)
        .map_or(DEFAULT_INTERVAL_S, |s| s.max(1) as i64);
    if hb.is_none() {
        "never"
    } else if now_ms - seen > MISSED_HEARTBEATS * interval * 1000 {
        "offline"
    } else {
        "online"
    }
}
