//! `bench hub`: a fleet of simulated kiosks syncing to one and two `clockface-hub serve`
//! replicas, on SQLite and on PostgreSQL; and a month's timesheet among 10 M stored entries.
//!
//! Each simulated kiosk is a real store with its own key, signing real check-ins, and each
//! sync is the kiosk's own round (heartbeat, roster and policy checks, the uploads), so the
//! hub sees what a fleet sends. The kiosks sync as fast as the hub answers for a bounded time;
//! the fleet one hub carries at one sync per minute per kiosk is the rounds per second it
//! sustained times 60. The kiosks run on the same two cores as the hub, so the figures are a
//! floor for a hub on a machine of its own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::base::clock::{SimClock, SystemClock};
use crate::base::config::Config;
use crate::base::error::{Error, Result};
use crate::hub::db::{DbSpec, HubConfig, HubDb};
use crate::hub::sql::DbLocation;
use crate::store::Store;
use crate::store::record::{Method, NewRecord, Outcome, Punch};

use super::pgtmp::PgServer;
use super::store::options;

/// One fleet run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FleetFigures {
    /// "sqlite" or "postgres".
    pub engine: String,
    /// `clockface-hub serve` processes.
    pub replicas: usize,
    /// Simulated kiosks.
    pub kiosks: usize,
    /// Measured time, seconds.
    pub seconds: f64,
    /// Sync rounds completed (each about five requests).
    pub rounds: u64,
    /// Rounds that failed.
    pub failed_rounds: u64,
    /// Check-ins stored per second, sustained.
    pub entries_per_second: f64,
    /// Median time of one sync round, ms.
    pub p50_round_ms: f64,
    /// 95th percentile of one sync round, ms.
    pub p95_round_ms: f64,
    /// Kiosks the hub carries at one sync per minute each (rounds per second × 60).
    pub fleet_at_one_sync_per_minute: u64,
}

/// The month's timesheet among many stored entries.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TimesheetFigures {
    /// "sqlite" or "postgres".
    pub engine: String,
    /// Entries the hub holds.
    pub stored_entries: u64,
    /// Employees in the month.
    pub employees: u64,
    /// Timesheet rows written.
    pub rows: u64,
    /// Time to write them, seconds.
    pub seconds: f64,
}

/// What `bench hub` measures.
#[derive(Debug, Clone)]
pub struct HubBench {
    /// Simulated kiosks per run.
    pub kiosks: usize,
    /// Seconds per run.
    pub seconds: u64,
    /// Check-ins each kiosk records between two syncs.
    pub per_round: usize,
    /// Engines to run ("sqlite", "postgres").
    pub engines: Vec<String>,
    /// Stored entries for the timesheet run (0 skips it).
    pub timesheet_entries: u64,
}

fn hub_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    Ok(exe.with_file_name("clockface-hub"))
}

fn hub_args(spec: &DbSpec) -> Vec<String> {
    let mut a = vec![
        "--db".into(),
        match &spec.location {
            DbLocation::Sqlite(p) => p.display().to_string(),
            DbLocation::Postgres(u) => u.clone(),
        },
    ];
    if let Some(k) = &spec.template_key {
        a.extend(["--template-key".into(), k.display().to_string()]);
    }
    a
}

/// `clockface-hub serve` on a free port; returns it and its URL.
pub(super) fn serve(spec: &DbSpec) -> Result<(Child, String)> {
    use std::io::BufRead;
    let exe = hub_exe()?;
    let mut child = Command::new(&exe)
        .args(hub_args(spec))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io(&exe, e))?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .map_err(|e| Error::io("hub output", e))?;
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    if !url.starts_with("http") {
        return Err(Error::invalid("clockface-hub serve", "did not start"));
    }
    Ok((child, url))
}

/// A one-time pairing code for `site` from `clockface-hub pairing-code`.
pub(super) fn pairing_code(spec: &DbSpec, site: &str) -> Result<String> {
    let exe = hub_exe()?;
    let out = Command::new(&exe)
        .args(hub_args(spec))
        .args(["pairing-code", "--site", site])
        .output()
        .map_err(|e| Error::io(&exe, e))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn stop(mut c: Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let _ = c.wait();
}

fn checkin(employee: String, punch: Punch) -> NewRecord {
    NewRecord {
        outcome: Outcome::Accepted,
        employee_id: employee,
        punch,
        method: Method::BadgeFace,
        reason: String::new(),
        liveness: Some(0.04),
        match_score: Some(0.78),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A database for one run: a SQLite file in `dir`, or a new database on `pg`.
fn new_spec(dir: &Path, pg: Option<&PgServer>, n: usize) -> Result<DbSpec> {
    let key = dir.join(format!("hub{n}.templates.key"));
    Ok(match pg {
        None => DbSpec::from(dir.join(format!("hub{n}.db")).as_path()),
        Some(pg) => DbSpec {
            location: DbLocation::Postgres(pg.new_database()?),
            template_key: Some(key),
        },
    })
}

/// One fleet run: `b.kiosks` kiosks against `replicas` replicas of `spec` for `b.seconds`.
fn fleet(
    b: &HubBench,
    spec: &DbSpec,
    engine: &str,
    replicas: usize,
    dir: &Path,
) -> Result<FleetFigures> {
    HubDb::open_spec(spec, &HubConfig::default())?;
    let mut procs = Vec::new();
    for _ in 0..replicas {
        procs.push(serve(spec)?);
    }
    let urls: Vec<String> = procs.iter().map(|(_, u)| u.clone()).collect();
    let pb = crate::commands::context::progress_bar(b.kiosks as u64, "pairing kiosks");
    let mut kiosks = Vec::with_capacity(b.kiosks);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("runtime", e))?;
    for k in 0..b.kiosks {
        let mut store = Store::open(
            &options(&dir.join(format!("k{k}"))),
            Arc::new(SystemClock::new()),
        )?;
        let code = pairing_code(spec, &format!("Site {}", k % 50))?;
        let mut cfg = Config::default();
        cfg.sync.url = urls[k % replicas].clone();
        cfg.sync.timeout_seconds = 30;
        rt.block_on(crate::sync::pair(&mut store, &cfg, &cfg.sync.url, &code))
            .map_err(|e| Error::invalid("bench pairing", e.to_string()))?;
        kiosks.push((store, cfg));
        if let Some(pb) = &pb {
            pb.set_position(k as u64 + 1);
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    // Eight client threads, each driving its share of the kiosks round after round.
    let threads = 8.min(b.kiosks.max(1));
    let mut shares: Vec<Vec<(Store, Config)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, k) in kiosks.into_iter().enumerate() {
        shares[i % threads].push(k);
    }
    let entries = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(b.seconds);
    let started = Instant::now();
    let per_round = b.per_round;
    let mut times: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .into_iter()
            .enumerate()
            .map(|(t, mut share)| {
                let entries = entries.clone();
                let failed = failed.clone();
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    let mut times = Vec::new();
                    let mut n = 0usize;
                    while Instant::now() < deadline {
                        for (store, cfg) in share.iter_mut() {
                            if Instant::now() >= deadline {
                                break;
                            }
                            let recs: Vec<NewRecord> = (0..per_round)
                                .map(|i| {
                                    let punch = if (n + i).is_multiple_of(2) {
                                        Punch::In
                                    } else {
                                        Punch::Out
                                    };
                                    checkin(format!("E{:04}", (t * 131 + n + i) % 1000), punch)
                                })
                                .collect();
                            n += per_round;
                            if store.append_many(&recs).is_err() {
                                failed.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            let t0 = Instant::now();
                            let ok = match crate::sync::Syncer::for_store(store, cfg) {
                                Ok(Some(sy)) => rt.block_on(sy.round(store)).ok(),
                                _ => None,
                            };
                            match ok {
                                Some(rep) => {
                                    times.push(t0.elapsed().as_secs_f64() * 1000.0);
                                    entries.fetch_add(rep.checkins, Ordering::Relaxed);
                                }
                                None => {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                    times
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let secs = started.elapsed().as_secs_f64();
    for (c, _) in procs {
        stop(c);
    }
    times.sort_by(f64::total_cmp);
    let rounds = times.len() as u64;
    Ok(FleetFigures {
        engine: engine.into(),
        replicas,
        kiosks: b.kiosks,
        seconds: secs,
        rounds,
        failed_rounds: failed.load(Ordering::Relaxed),
        entries_per_second: entries.load(Ordering::Relaxed) as f64 / secs,
        p50_round_ms: percentile(&times, 0.5),
        p95_round_ms: percentile(&times, 0.95),
        fleet_at_one_sync_per_minute: (rounds as f64 / secs * 60.0) as u64,
    })
}

/// Filler entries outside the month (other devices, years before), written straight into
/// the table: 16-byte placeholders instead of signed records, since the timesheet never
/// reads them but the indexes must hold them.
fn fill(spec: &DbSpec, n: u64, before_ms: i64) -> Result<()> {
    let chunk = 1_000_000u64;
    let pb = crate::commands::context::progress_bar(n, "storing filler entries");
    let mut done = 0;
    while done < n {
        let m = chunk.min(n - done);
        match &spec.location {
            DbLocation::Sqlite(p) => {
                let c = rusqlite::Connection::open(p)?;
                c.execute_batch("PRAGMA synchronous = OFF")?;
                c.execute(
                    "WITH RECURSIVE g(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM g WHERE n < ?2)
                     INSERT INTO entries (device_id, chain, seq, uuid, hash, prev_hash, bytes, wall_ms, employee_id, received_ms)
                     SELECT 'filler-' || (n / 100000), 'checkins', n, randomblob(16), randomblob(32),
                            zeroblob(32), zeroblob(16), ?3 - n * 30000, 'F' || (n % 1000), ?3 FROM g",
                    rusqlite::params![done as i64 + 1, (done + m) as i64, before_ms],
                )?;
            }
            DbLocation::Postgres(url) => {
                let fail = |e: postgres::Error| Error::Database {
                    path: PathBuf::from("bench filler"),
                    reason: e.to_string(),
                };
                let mut c = postgres::Client::connect(url, postgres::NoTls).map_err(fail)?;
                c.execute(
                    "INSERT INTO entries (device_id, chain, seq, uuid, hash, prev_hash, bytes, wall_ms, employee_id, received_ms)
                     SELECT 'filler-' || (n / 100000), 'checkins', n, decode(md5(n::text), 'hex'),
                            sha256(int8send(n)), '\\x00'::bytea, '\\x00'::bytea, $3 - n * 30000, 'F' || (n % 1000), $3
                       FROM generate_series($1::bigint, $2::bigint) n",
                    &[&(done as i64 + 1), &((done + m) as i64), &before_ms],
                )
                .map_err(fail)?;
            }
        }
        done += m;
        if let Some(pb) = &pb {
            pb.set_position(done);
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if let DbLocation::Postgres(url) = &spec.location
        && let Ok(mut c) = postgres::Client::connect(url, postgres::NoTls)
    {
        let _ = c.batch_execute("ANALYZE entries");
    }
    Ok(())
}

/// A month of real signed check-ins: 1,000 employees at 20 kiosks, in and out on 22 work
/// days, synced through the hub; then the filler; then the timesheet of that month.
fn timesheet(b: &HubBench, spec: &DbSpec, engine: &str, dir: &Path) -> Result<TimesheetFigures> {
    const EMPLOYEES: u64 = 1000;
    const KIOSKS: u64 = 20;
    let month_ms: i64 = 1_793_577_600_000; // 2026-11-01T00:00:00Z
    let local = crate::hub::LocalHub::start_spec(spec, None, &HubConfig::default())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("runtime", e))?;
    let pb = crate::commands::context::progress_bar(KIOSKS, "a month of check-ins");
    for k in 0..KIOSKS {
        let clock = Arc::new(SimClock::new(month_ms));
        let mut store = Store::open(&options(&dir.join(format!("month{k}"))), clock.clone())?;
        let mut day = 0;
        for d in 0..30 {
            if d % 7 >= 5 || day >= 22 {
                continue;
            }
            day += 1;
            for (hour, punch) in [(8, Punch::In), (17, Punch::Out)] {
                clock.set_wall_ms(month_ms + d * 86_400_000 + hour * 3_600_000);
                let recs: Vec<NewRecord> = (0..EMPLOYEES / KIOSKS)
                    .map(|e| checkin(format!("E{:04}", k * (EMPLOYEES / KIOSKS) + e), punch))
                    .collect();
                store.append_many(&recs)?;
            }
        }
        let mut db = HubDb::open_spec(spec, &HubConfig::default())?;
        let now = crate::base::clock::Clock::wall_ms(&SystemClock::new());
        // The kiosk's clock is right today; its records keep the month's times.
        clock.set_wall_ms(now);
        let code = db.create_pairing_code("Month", 3_600_000, None, now)?;
        let mut cfg = Config::default();
        cfg.sync.url = local.url.clone();
        rt.block_on(crate::sync::pair(&mut store, &cfg, &local.url, &code))
            .map_err(|e| Error::invalid("bench pairing", e.to_string()))?;
        let sy = crate::sync::Syncer::for_store(&store, &cfg)?.expect("paired");
        rt.block_on(sy.round(&mut store))
            .map_err(|e| Error::invalid("bench sync", e.to_string()))?;
        if let Some(pb) = &pb {
            pb.set_position(k + 1);
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    drop(local);
    let db = HubDb::open_spec(spec, &HubConfig::default())?;
    let real = db.count(crate::hub::db::Chain::Checkins)?;
    fill(spec, b.timesheet_entries.saturating_sub(real), month_ms)?;
    let stored = db.count(crate::hub::db::Chain::Checkins)?;
    let t0 = Instant::now();
    let mut sink = std::io::sink();
    let rows = db.timesheet_with(
        month_ms,
        month_ms + 30 * 86_400_000,
        &Default::default(),
        &mut sink,
    )?;
    Ok(TimesheetFigures {
        engine: engine.into(),
        stored_entries: stored,
        employees: EMPLOYEES,
        rows,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// `clockface bench hub`.
pub fn hub(b: &HubBench, json: bool, out: &mut dyn Write) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("temporary dir", e))?;
    let mut fleets = Vec::new();
    let mut sheets = Vec::new();
    let mut run = 0;
    for engine in &b.engines {
        let pg = match engine.as_str() {
            "sqlite" => None,
            "postgres" => Some(PgServer::start()?),
            other => {
                return Err(Error::invalid(
                    "--engines",
                    format!("{other:?} is not sqlite or postgres"),
                ));
            }
        };
        for replicas in [1, 2] {
            run += 1;
            let spec = new_spec(dir.path(), pg.as_ref(), run)?;
            let kdir = dir.path().join(format!("kiosks{run}"));
            let f = fleet(b, &spec, engine, replicas, &kdir)?;
            if !json {
                let _ = writeln!(
                    out,
                    "hub {:<8} {} replica(s), {} kiosks, {:.0} s: {:.0} check-ins/s, {} rounds ({} failed), round p50 {:.0} ms p95 {:.0} ms; carries {} kiosks at one sync a minute",
                    f.engine,
                    f.replicas,
                    f.kiosks,
                    f.seconds,
                    f.entries_per_second,
                    f.rounds,
                    f.failed_rounds,
                    f.p50_round_ms,
                    f.p95_round_ms,
                    f.fleet_at_one_sync_per_minute
                );
            }
            fleets.push(f);
            let _ = std::fs::remove_dir_all(&kdir);
        }
        if b.timesheet_entries > 0 {
            run += 1;
            let spec = new_spec(dir.path(), pg.as_ref(), run)?;
            let t = timesheet(b, &spec, engine, &dir.path().join(format!("month{run}")))?;
            if !json {
                let _ = writeln!(
                    out,
                    "timesheet {:<8} a month of {} employees ({} rows) among {} stored entries in {:.2} s",
                    t.engine, t.employees, t.rows, t.stored_entries, t.seconds
                );
            }
            sheets.push(t);
        }
    }
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "fleet": fleets,
                "timesheet": sheets,
            }))
            .expect("serialisable")
        );
    }
    Ok(())
}
