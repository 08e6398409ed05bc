//! The timesheet HR reads: accepted check-ins in local time, one row each, or paired into
//! worked spans. Each site has its time zone and a day boundary, so a night shift from 22:00 to
//! 03:00 is one span of one work day when the day starts at 04:00. Records keep UTC; this is
//! only how they are shown.

use std::collections::BTreeMap;

use crate::hub::sql::params;

use super::HubDb;
use crate::base::error::{Error, Result};
use crate::base::text::csv_cell;
use crate::base::zone::SiteZone;
use crate::store::record::{Outcome, Punch, Record};

/// `[sites."NAME"]` in the hub's config: where the site is and when its work day starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteTime {
    /// IANA time zone ("Asia/Shanghai"); "" = UTC.
    pub time_zone: String,
    /// Local time at which a work day starts, "HH:MM"; "" = "00:00". Punches before it count
    /// for the day before.
    pub day_starts: String,
}

impl SiteTime {
    /// Checks both fields, naming what is wrong.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.zone().map_err(|e| e.to_string())?;
        self.boundary_minutes()
            .map(drop)
            .ok_or_else(|| format!("day_starts {:?} is not HH:MM", self.day_starts))
    }

    fn zone(&self) -> Result<SiteZone> {
        if self.time_zone.is_empty() {
            Ok(SiteZone::default())
        } else {
            SiteZone::parse(&self.time_zone)
        }
    }

    fn boundary_minutes(&self) -> Option<u32> {
        if self.day_starts.is_empty() {
            return Some(0);
        }
        let (h, m) = self.day_starts.split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    }
}

/// What `clockface-hub timesheet --format` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimesheetFormat {
    /// CSV with a header row (spreadsheet formulas neutralised).
    #[default]
    Csv,
    /// One JSON object per line, keyed by the CSV's column names.
    Jsonl,
    /// One JSON object per line with the fields of ERPNext's Employee Checkin, as its
    /// `hrms...employee_checkin.add_log_based_on_employee_field` takes them.
    Erpnext,
}

impl TimesheetFormat {
    /// `csv`, `jsonl` or `erpnext`.
    pub fn parse(s: &str) -> Result<TimesheetFormat> {
        match s {
            "csv" => Ok(TimesheetFormat::Csv),
            "jsonl" => Ok(TimesheetFormat::Jsonl),
            "erpnext" => Ok(TimesheetFormat::Erpnext),
            other => Err(Error::invalid(
                "--format",
                format!("{other:?} is not one of csv, jsonl, erpnext"),
            )),
        }
    }
}

/// How `clockface-hub timesheet` writes.
#[derive(Debug, Clone, Default)]
pub struct TimesheetOptions {
    /// CSV, JSON lines or ERPNext check-ins.
    pub format: TimesheetFormat,
    /// Each site's zone and day boundary (sites not named: UTC, midnight).
    pub sites: BTreeMap<String, SiteTime>,
    /// One row per worked span (an in paired with the next out) instead of per check-in.
    pub pairs: bool,
    /// With `pairs`: one span per person and work day, from the first punch to the last.
    pub first_last: bool,
}

/// One accepted check-in as the timesheet sees it.
struct Punched {
    employee: String,
    display: String,
    wall_ms: i64,
    punch: Punch,
    method: &'static str,
    device: String,
    site: String,
    uuid: String,
    region: String,
    zone: SiteZone,
    work_date: String,
}

impl Punched {
    fn local(&self) -> String {
        self.zone.rfc3339_ms(self.wall_ms)
    }
}

fn csv_err(e: csv::Error) -> Error {
    Error::invalid("timesheet", e.to_string())
}

impl HubDb {
    /// The accepted check-ins in `[from_ms, until_ms)`, oldest first, with local times.
    fn punches(
        &self,
        from_ms: i64,
        until_ms: i64,
        opts: &TimesheetOptions,
    ) -> Result<Vec<Punched>> {
        let rows = self.conn.query_map(
            "SELECT e.bytes, d.name, d.site, coalesce(emp.display_name, ''), d.data_region
             FROM entries e JOIN devices d ON d.id = e.device_id
             LEFT JOIN employees emp ON emp.id = e.employee_id
             WHERE e.chain = 'checkins' AND e.wall_ms >= ?1 AND e.wall_ms < ?2
             ORDER BY e.wall_ms, e.device_id, e.seq",
            params![from_ms, until_ms],
            |r| {
                Ok((
                    r.get::<Vec<u8>>(0)?,
                    r.get::<String>(1)?,
                    r.get::<String>(2)?,
                    r.get::<String>(3)?,
                    r.get::<String>(4)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        let mut zones: BTreeMap<String, (SiteZone, u32)> = BTreeMap::new();
        for (bytes, device, site, display, region) in rows {
            let rec = Record::decode(&bytes)?;
            if rec.outcome != Outcome::Accepted {
                continue;
            }
            if !zones.contains_key(&site) {
                let st = opts.sites.get(&site).cloned().unwrap_or_default();
                let z = st.zone()?;
                zones.insert(site.clone(), (z, st.boundary_minutes().unwrap_or(0)));
            }
            let (zone, boundary) = zones[&site];
            let shifted = rec.wall_ms - boundary as i64 * 60_000;
            let work_date = zone.local(shifted).format("%Y-%m-%d").to_string();
            out.push(Punched {
                employee: rec.employee_id.clone(),
                display,
                wall_ms: rec.wall_ms,
                punch: rec.punch,
                method: rec.method.as_str(),
                device,
                site,
                uuid: rec.uuid.to_string(),
                region,
                zone,
                work_date,
            });
        }
        Ok(out)
    }

    /// Writes a timesheet CSV of accepted check-ins in `[from_ms, until_ms)`, one row per
    /// check-in, oldest first, times in UTC and each site at midnight UTC. Returns the rows.
    pub fn timesheet(
        &self,
        from_ms: i64,
        until_ms: i64,
        out: &mut dyn std::io::Write,
    ) -> Result<u64> {
        self.timesheet_with(from_ms, until_ms, &TimesheetOptions::default(), out)
    }

    /// Writes the timesheet as `opts` asks; returns the number of rows.
    pub fn timesheet_with(
        &self,
        from_ms: i64,
        until_ms: i64,
        opts: &TimesheetOptions,
        out: &mut dyn std::io::Write,
    ) -> Result<u64> {
        if opts.format == TimesheetFormat::Erpnext && opts.pairs {
            return Err(Error::invalid(
                "--format erpnext",
                "is one Employee Checkin per punch; ERPNext pairs them itself (leave out --pairs)",
            ));
        }
        let punches = self.punches(from_ms, until_ms, opts)?;
        let mut w = match opts.format {
            TimesheetFormat::Erpnext => return write_erpnext(out, &punches),
            TimesheetFormat::Csv => Sink::Csv(Box::new(csv::Writer::from_writer(out))),
            TimesheetFormat::Jsonl => Sink::Jsonl {
                out,
                header: Vec::new(),
            },
        };
        let n = if opts.pairs {
            write_pairs(&mut w, &punches, opts.first_last)?
        } else {
            write_rows(&mut w, &punches)?
        };
        w.flush()?;
        Ok(n)
    }
}

/// Where rows go: CSV, or JSON lines keyed by the header.
enum Sink<'w> {
    Csv(Box<csv::Writer<&'w mut dyn std::io::Write>>),
    Jsonl {
        out: &'w mut dyn std::io::Write,
        header: Vec<String>,
    },
}

impl Sink<'_> {
    fn write_record<'a>(&mut self, fields: impl IntoIterator<Item = &'a str>) -> Result<()> {
        match self {
            Sink::Csv(w) => w.write_record(fields).map_err(csv_err),
            Sink::Jsonl { header, .. } if header.is_empty() => {
                *header = fields.into_iter().map(str::to_owned).collect();
                Ok(())
            }
            Sink::Jsonl { out, header } => {
                let obj: serde_json::Map<String, serde_json::Value> = header
                    .iter()
                    .cloned()
                    .zip(fields.into_iter().map(serde_json::Value::from))
                    .collect();
                writeln!(out, "{}", serde_json::Value::Object(obj))
                    .map_err(|e| Error::io("timesheet", e))
            }
        }
    }

    /// A text cell: spreadsheet formulas neutralised in CSV, as is in JSON.
    fn cell<'a>(&self, s: &'a str) -> std::borrow::Cow<'a, str> {
        match self {
            Sink::Csv(_) => csv_cell(s),
            Sink::Jsonl { .. } => std::borrow::Cow::Borrowed(s),
        }
    }

    fn flush(&mut self) -> Result<()> {
        match self {
            Sink::Csv(w) => w.flush(),
            Sink::Jsonl { out, .. } => out.flush(),
        }
        .map_err(|e| Error::io("timesheet", e))
    }
}

/// ERPNext's Employee Checkin per punch: the employee (matched on its
/// `attendance_device_id`), the site's local time as ERPNext stores it (no offset: ERPNext
/// keeps naive times in its system zone, so a site's kiosks should report to an ERPNext of
/// that zone), IN or OUT (none for `auto`), and the kiosk.
fn write_erpnext(out: &mut dyn std::io::Write, punches: &[Punched]) -> Result<u64> {
    for p in punches {
        let log_type = match p.punch.direction() {
            "in" => serde_json::Value::from("IN"),
            "out" => serde_json::Value::from("OUT"),
            _ => serde_json::Value::Null,
        };
        let row = serde_json::json!({
            "employee_field_value": p.employee,
            "timestamp": p.zone.local(p.wall_ms).format("%Y-%m-%d %H:%M:%S").to_string(),
            "log_type": log_type,
            "device_id": p.device,
        });
        writeln!(out, "{row}").map_err(|e| Error::io("timesheet", e))?;
    }
    out.flush().map_err(|e| Error::io("timesheet", e))?;
    Ok(punches.len() as u64)
}

fn write_rows(w: &mut Sink<'_>, punches: &[Punched]) -> Result<u64> {
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
        "punch",
        "time_local",
    ])?;
    for p in punches {
        let utc = chrono::DateTime::from_timestamp_millis(p.wall_ms).unwrap_or_default();
        w.write_record([
            &*w.cell(&p.employee),
            &*w.cell(&p.display),
            &p.work_date,
            &utc.format("%H:%M:%S").to_string(),
            p.punch.direction(),
            p.method,
            &*w.cell(&p.device),
            &*w.cell(&p.site),
            &p.uuid,
            &*w.cell(&p.region),
            p.punch.as_str(),
            &p.local(),
        ])?;
    }
    Ok(punches.len() as u64)
}

/// A worked span: an in and the out that closes it; either may be missing.
struct Span<'a> {
    start: Option<&'a Punched>,
    end: Option<&'a Punched>,
}

/// Pairs one person's punches of one work day, in time order.
fn pair_day<'a>(day: &[&'a Punched], first_last: bool) -> Vec<Span<'a>> {
    if first_last {
        return match day {
            [] => Vec::new(),
            [only] => vec![if only.punch.direction() == "out" {
                Span {
                    start: None,
                    end: Some(only),
                }
            } else {
                Span {
                    start: Some(only),
                    end: None,
                }
            }],
            [first, .., last] => vec![Span {
                start: Some(first),
                end: Some(last),
            }],
        };
    }
    let mut spans = Vec::new();
    let mut open: Option<&Punched> = None;
    for p in day {
        let arriving = match p.punch.direction() {
            "in" => true,
            "out" => false,
            // "auto": the kiosk did not decide; alternate.
            _ => open.is_none(),
        };
        match (arriving, open.take()) {
            (true, prev) => {
                if let Some(prev) = prev {
                    spans.push(Span {
                        start: Some(prev),
                        end: None,
                    });
                }
                open = Some(p);
            }
            (false, Some(start)) => spans.push(Span {
                start: Some(start),
                end: Some(p),
            }),
            (false, None) => spans.push(Span {
                start: None,
                end: Some(p),
            }),
        }
    }
    if let Some(start) = open {
        spans.push(Span {
            start: Some(start),
            end: None,
        });
    }
    spans
}

fn write_pairs(w: &mut Sink<'_>, punches: &[Punched], first_last: bool) -> Result<u64> {
    w.write_record([
        "employee_id",
        "display_name",
        "site",
        "work_date",
        "in_time",
        "out_time",
        "hours",
        "in_punch",
        "out_punch",
        "in_device",
        "out_device",
        "note",
    ])?;
    let mut days: BTreeMap<(&str, &str), Vec<&Punched>> = BTreeMap::new();
    for p in punches {
        days.entry((&p.employee, &p.work_date)).or_default().push(p);
    }
    let mut n = 0;
    for ((employee, date), day) in &days {
        for s in pair_day(day, first_last) {
            let any = s.start.or(s.end).expect("a span has a punch");
            let hours = match (s.start, s.end) {
                (Some(a), Some(b)) => format!("{:.2}", (b.wall_ms - a.wall_ms) as f64 / 3.6e6),
                _ => String::new(),
            };
            let note = match (s.start, s.end) {
                (Some(_), None) => "missing_out",
                (None, Some(_)) => "missing_in",
                _ => "",
            };
            let field =
                |p: Option<&Punched>, f: &dyn Fn(&Punched) -> String| p.map(f).unwrap_or_default();
            let cell = |s: &str| w.cell(s).into_owned();
            let record = [
                cell(employee),
                cell(&any.display),
                cell(&any.site),
                date.to_string(),
                field(s.start, &|p| p.local()),
                field(s.end, &|p| p.local()),
                hours,
                field(s.start, &|p| p.punch.as_str().into()),
                field(s.end, &|p| p.punch.as_str().into()),
                field(s.start, &|p| cell(&p.device)),
                field(s.end, &|p| cell(&p.device)),
                note.to_string(),
            ];
            w.write_record(record.iter().map(String::as_str))?;
            n += 1;
        }
    }
    Ok(n)
}
