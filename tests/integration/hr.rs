//! The HR-terminal protocols against the clients HR systems really run, on loopback: pyzk
//! (PyPI) and zkteco-js (npm) pulling from the ZK side, and bad input thrown at it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clockface::base::clock::{Clock, SimClock};
use clockface::base::config::ZkConfig;
use clockface::base::zone::SiteZone;
use clockface::hr::zk::{Control, ZkServer, default_serial, wire};
use clockface::store::Store;
use clockface::store::record::{Method, NewRecord, Outcome, Punch};
use clockface::store::roster::Employee;
use serde_json::Value;

use crate::common;

const ZONE: &str = "Asia/Shanghai";

fn tool(rel: &str) -> std::path::PathBuf {
    let p = clockface::base::config::dev_cache().join(rel);
    assert!(
        p.exists(),
        "{} is missing: `./dev test` installs the test partners (pinned) first",
        p.display()
    );
    p
}

/// A store with `people` employees and `n` records, most accepted, a few refused, with every
/// punch type and method, a minute apart.
pub fn hr_store(dir: &Path, people: usize, n: usize) -> (Store, Arc<SimClock>) {
    let (mut store, clock) = common::open(dir);
    for i in 0..people {
        store
            .upsert_employee(
                "test",
                &Employee {
                    id: format!("E{i:04}"),
                    // A long CJK name is cut on a character boundary for the 24-byte field.
                    display_name: if i == 1 {
                        "张伟张伟张伟张伟张伟".into()
                    } else {
                        format!("Person {i}")
                    },
                    active: true,
                    is_admin: i == 0,
                },
            )
            .unwrap();
    }
    store.add_badge("test", "4000000123", "E0000").unwrap();
    let punches = [
        Punch::In,
        Punch::Out,
        Punch::BreakOut,
        Punch::BreakIn,
        Punch::OvertimeIn,
        Punch::OvertimeOut,
    ];
    let methods = [
        Method::BadgeFace,
        Method::BadgePin,
        Method::FaceOnly,
        Method::PinOnly,
    ];
    let mut batch = Vec::new();
    for i in 0..n {
        let rejected = i % 10 == 9;
        batch.push(NewRecord {
            outcome: if rejected {
                Outcome::Rejected
            } else {
                Outcome::Accepted
            },
            employee_id: format!("E{:04}", i % people),
            punch: punches[i % punches.len()],
            method: methods[i % methods.len()],
            reason: if rejected {
                "face_mismatch".into()
            } else {
                String::new()
            },
            liveness: Some(0.05),
            match_score: Some(0.8),
        });
        if batch.len() == 2000 || i + 1 == n {
            clock.advance(Duration::from_secs(60));
            store.append_many(&batch).unwrap();
            batch.clear();
        }
    }
    (store, clock)
}

struct Zk {
    server: Option<ZkServer>,
    control: tokio::sync::mpsc::UnboundedReceiver<Control>,
}

impl Zk {
    fn start(dir: &Path, clock: Arc<SimClock>, edit: impl FnOnce(&mut ZkConfig)) -> Zk {
        let mut cfg = ZkConfig {
            listen: "127.0.0.1:0".into(),
            ..ZkConfig::default()
        };
        edit(&mut cfg);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let server = ZkServer::spawn(
            &common::options(dir),
            cfg,
            SiteZone::parse(ZONE).unwrap(),
            clock,
            Some(tx),
        )
        .unwrap();
        Zk {
            server: Some(server),
            control: rx,
        }
    }
    fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().addr
    }
}

impl Drop for Zk {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }
}

/// pyzk with no comm key: for other test modules.
pub fn pyzk_at(addr: SocketAddr, steps: &[&str]) -> Value {
    pyzk(addr, 0, steps)
}

/// Runs pyzk's steps on one connection; the JSON it printed.
fn pyzk(addr: SocketAddr, key: u32, steps: &[&str]) -> Value {
    let out = Command::new(tool("venv/bin/python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/partners/zk_pull.py"
        ))
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(key.to_string())
        .args(steps)
        .output()
        .expect("python runs");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "pyzk printed no JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The accepted check-ins as `clockface export` writes them, in the site's zone:
/// (employee, local time to the second, ZK punch state).
fn exported(dir: &Path) -> Vec<(String, String, u8)> {
    let cfg = common::write_config(dir, dir, &format!("[site]\ntime_zone = {ZONE:?}\n"));
    let (code, out, err) = common::run(&[
        "--config",
        cfg.to_str().unwrap(),
        "export",
        "--format",
        "jsonl",
    ]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["outcome"] == "accepted")
        .map(|v| {
            let time = v["time"].as_str().unwrap();
            assert!(
                time.ends_with("+08:00"),
                "export is local with the offset: {time}"
            );
            let punch: Punch = v["punch"].as_str().unwrap().parse().unwrap();
            (
                v["employee_id"].as_str().unwrap().to_string(),
                time[..19].to_string(),
                punch.zk_state(),
            )
        })
        .collect()
}

#[test]
fn pyzk_reads_the_roster_and_30000_punches_through_the_chunked_path_as_the_export_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = hr_store(dir.path(), 40, 33_000);
    let id = store.identity().device_id;
    drop(store);
    let zk = Zk::start(dir.path(), clock.clone(), |_| {});
    let v = pyzk(
        zk.addr(),
        0,
        &[
            "sizes",
            "users",
            "attendance",
            "time",
            "serial",
            "name",
            "firmware",
            "mac",
        ],
    );
    let want = exported(dir.path());
    assert!(want.len() >= 29_000, "{} accepted", want.len());
    let got: Vec<(String, String, u8)> = v["attendance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a[0].as_str().unwrap().to_string(),
                a[1].as_str().unwrap().to_string(),
                a[2].as_u64().unwrap() as u8,
            )
        })
        .collect();
    assert_eq!(got.len(), want.len(), "same count as the export");
    assert_eq!(
        got, want,
        "same people, local times and punch states, in order"
    );
    // Verify modes: face 15, card 4 (badge + PIN), password 3.
    let modes: std::collections::BTreeSet<u64> = v["attendance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a[3].as_u64().unwrap())
        .collect();
    assert_eq!(modes, [3, 4, 15].into_iter().collect());
    assert_eq!(v["sizes"]["records"], want.len());
    let users = v["users"].as_array().unwrap();
    assert_eq!(users.len(), 40);
    assert_eq!(users[0]["user_id"], "E0000");
    assert_eq!(users[0]["privilege"], 14, "an admin is a ZK admin");
    assert_eq!(
        users[0]["card"], 4_000_000_123u64,
        "a numeric badge is the card"
    );
    assert_eq!(
        users[1]["name"], "张伟张伟张伟张伟",
        "cut at 24 bytes on a character"
    );
    let uids: std::collections::BTreeSet<u64> =
        users.iter().map(|u| u["uid"].as_u64().unwrap()).collect();
    assert_eq!(uids.len(), 40, "one uid each");
    // The uid mapping is kept: a second read sees the same numbers.
    let again = pyzk(zk.addr(), 0, &["users"]);
    assert_eq!(again["users"], v["users"]);
    let zone = SiteZone::parse(ZONE).unwrap();
    assert_eq!(
        v["time"],
        zone.local(clock.wall_ms())
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string(),
        "the kiosk's time is the site's local time"
    );
    assert_eq!(v["serial"], default_serial(id));
    assert_eq!(v["name"], "Clockface");
    assert!(v["firmware"].as_str().unwrap().contains("Clockface"));
    assert_eq!(v["mac"].as_str().unwrap().len(), 17);
    eprintln!(
        "pyzk get_attendance of {} records: {:.2} s",
        got.len(),
        v["attendance_seconds"].as_f64().unwrap()
    );
}

#[test]
fn the_comm_key_is_required_and_a_wrong_one_is_refused_and_slowed_down() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = hr_store(dir.path(), 3, 20);
    drop(store);
    let zk = Zk::start(dir.path(), clock, |c| c.comm_key = 246_810);
    let ok = pyzk(zk.addr(), 246_810, &["sizes"]);
    assert_eq!(ok["sizes"]["users"], 3);
    let t = Instant::now();
    let bad = pyzk(zk.addr(), 13_579, &["sizes"]);
    assert!(
        bad["error"].as_str().unwrap().contains("Unauthenticated"),
        "{bad}"
    );
    let first = t.elapsed();
    let t = Instant::now();
    let _ = pyzk(zk.addr(), 13_579, &["sizes"]);
    assert!(t.elapsed() > first, "a repeated failure waits longer");
    let none = pyzk(zk.addr(), 0, &["sizes"]);
    assert!(none["error"].is_string(), "no key is a wrong key: {none}");
}

#[test]
fn disable_pauses_the_kiosk_and_enable_resumes_it_while_writes_and_set_time_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = hr_store(dir.path(), 3, 20);
    drop(store);
    let mut zk = Zk::start(dir.path(), clock, |c| c.disable_seconds = 90);
    let v = pyzk(
        zk.addr(),
        0,
        &["disable", "enable", "free", "refresh", "settime"],
    );
    assert_eq!(v["disable"], true);
    assert_eq!(v["enable"], true);
    assert!(
        v["settime"].as_str().unwrap().contains("can't set time"),
        "{v}"
    );
    assert_eq!(
        zk.control.try_recv().unwrap(),
        Control::Disable { seconds: 90 }
    );
    assert_eq!(zk.control.try_recv().unwrap(), Control::Enable);
    drop(zk);
    // Both the refused set-time and the session are in the signed audit log.
    let (store, _) = common::open(dir.path());
    let actions: Vec<String> = store
        .recent_audit(20)
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert!(actions.contains(&"zk_set_time".to_string()), "{actions:?}");
    assert!(actions.contains(&"zk_session".to_string()), "{actions:?}");
}

#[test]
fn clear_attendance_moves_the_clients_cursor_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = hr_store(dir.path(), 5, 200);
    let total = store.stats().unwrap().checkins;
    drop(store);
    let zk = Zk::start(dir.path(), clock.clone(), |_| {});
    let v = pyzk(
        zk.addr(),
        0,
        &["attendance", "clear", "attendance", "sizes"],
    );
    assert_eq!(v["clear"], true);
    assert_eq!(
        v["attendance"].as_array().unwrap().len(),
        0,
        "after the cursor: nothing"
    );
    assert_eq!(v["sizes"]["records"], 0);
    // A new check-in after the clear is read, and only it.
    {
        let (mut s, _) = common::open(dir.path());
        s.append(&common::checkin("E0001")).unwrap();
    }
    let v = pyzk(zk.addr(), 0, &["attendance"]);
    assert_eq!(v["attendance"].as_array().unwrap().len(), 1);
    drop(zk);
    let (store, _) = common::open(dir.path());
    assert_eq!(
        store.stats().unwrap().checkins,
        total + 1,
        "nothing deleted"
    );
    let (code, _, err) = common::run(&["--data-dir", dir.path().to_str().unwrap(), "verify"]);
    assert_eq!(code, 0, "the chain still verifies: {err}");
    assert!(
        store
            .recent_audit(10)
            .unwrap()
            .iter()
            .any(|a| a.action == "zk_clear_attendance")
    );
}

#[test]
fn zkteco_js_reads_the_same_users_and_attendance_as_pyzk() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = hr_store(dir.path(), 12, 3_000);
    drop(store);
    let zk = Zk::start(dir.path(), clock, |_| {});
    let py = pyzk(zk.addr(), 0, &["users", "attendance"]);
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/partners/zk_pull.js"
        ))
        .arg(zk.addr().ip().to_string())
        .arg(zk.addr().port().to_string())
        .env("NODE_PATH", tool("npm/node_modules"))
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "no result: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let js: Value = serde_json::from_str(line).unwrap();
    assert!(js["error"].is_null(), "{js}");
    let ids = |v: &Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["user_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&js, "users"), ids(&py, "users"));
    let js_att: Vec<(String, u64)> = js["attendance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a[0].as_str().unwrap().to_string(), a[1].as_u64().unwrap()))
        .collect();
    let py_att: Vec<(String, u64)> = py["attendance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a[0].as_str().unwrap().to_string(), a[2].as_u64().unwrap()))
        .collect();
    assert_eq!(js_att.len(), 2_700);
    assert_eq!(js_att, py_att, "the same punches, states and order");
}

fn raw(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(bytes)?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Ok(out)
}

#[test]
fn malformed_frames_floods_and_silent_clients_end_their_session_only() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = hr_store(dir.path(), 3, 30);
    drop(store);
    let zk = Zk::start(dir.path(), clock, |c| {
        c.idle_seconds = 1;
        c.max_connections = 8;
    });
    let addr = zk.addr();
    let connect = wire::frame(wire::cmd::CONNECT, 0, 65534, b"");
    // A truncated header, then a wrong checksum, then a length larger than the packet.
    assert!(raw(addr, &connect[..5]).unwrap().is_empty());
    let mut bad_sum = connect.clone();
    bad_sum[10] ^= 0x55;
    assert!(
        raw(addr, &bad_sum).unwrap().is_empty(),
        "no answer to a bad checksum"
    );
    let mut long = connect.clone();
    long[4..8].copy_from_slice(&200u32.to_le_bytes());
    assert!(raw(addr, &long).unwrap().is_empty());
    // 1 MB of garbage.
    let garbage: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = raw(addr, &garbage);
    // An unknown command gets the protocol's "unknown" reply, and the session goes on.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&connect).unwrap();
    let mut reply = [0u8; 16];
    s.read_exact(&mut reply).unwrap();
    let session = u16::from_le_bytes([reply[12], reply[13]]);
    s.write_all(&wire::frame(4242, session, 1, b"")).unwrap();
    s.read_exact(&mut reply).unwrap();
    assert_eq!(
        u16::from_le_bytes([reply[8], reply[9]]),
        wire::cmd::ACK_UNKNOWN
    );
    // A silent client is dropped after idle_seconds.
    let t = Instant::now();
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
    assert!(t.elapsed() < Duration::from_secs(4));
    // 200 connections at once: at most 8 are served, the rest closed, nothing crashes.
    let flood: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    let (mut store, _) = common::open(dir.path());
    let mut lat = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        store.append(&common::checkin("E0002")).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    eprintln!(
        "check-in append during a 200-connection flood: median {:.1} ms, max {:.1} ms",
        lat[lat.len() / 2],
        lat[lat.len() - 1]
    );
    drop(flood);
    std::thread::sleep(Duration::from_millis(1500));
    let v = pyzk(addr, 0, &["sizes"]);
    assert_eq!(v["sizes"]["users"], 3, "the server still serves: {v}");
}

/// django-fingerprint-attendance in a minimal Django project on SQLite, on loopback.
struct Receiver {
    db: std::path::PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

impl Receiver {
    fn script() -> &'static str {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/partners/adms_site.py")
    }

    fn start(dir: &Path) -> Receiver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Receiver {
            db: dir.join("hr.sqlite3"),
            port,
            child: None,
        };
        r.up();
        r
    }

    fn up(&mut self) {
        let log = std::fs::File::create(self.db.with_extension("log")).unwrap();
        let child = Command::new(tool("venv/bin/python"))
            .arg(Self::script())
            .arg(&self.db)
            .args(["serve", &self.port.to_string()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the ADMS receiver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn run(&self, args: &[&str]) -> Value {
        let out = Command::new(tool("venv/bin/python"))
            .arg(Self::script())
            .arg(&self.db)
            .args(args)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

/// A store with a day of accepted and refused check-ins, seconds apart (ADMS servers take a
/// person's punches in one second as one).
fn day_store(dir: &Path, n: usize) -> Arc<SimClock> {
    let (mut store, clock) = hr_store(dir, 12, 0);
    for i in 0..n {
        clock.advance(Duration::from_secs(7));
        let mut r = common::checkin(&format!("E{:04}", i % 12));
        r.punch = [Punch::In, Punch::Out, Punch::BreakOut, Punch::BreakIn][i % 4];
        if i % 9 == 8 {
            r = common::failed(&format!("E{:04}", i % 12), "face_mismatch");
        }
        store.append(&r).unwrap();
    }
    clock
}

fn adms_config(dir: &Path, url: &str) -> std::path::PathBuf {
    adms_config_for(dir, dir, url)
}

fn adms_config_for(dir: &Path, data: &Path, url: &str) -> std::path::PathBuf {
    common::write_config(
        dir,
        data,
        &format!(
            "[site]\ntime_zone = {ZONE:?}\n[adms]\nurl = {url:?}\nserial = \"CFTEST1\"\nbatch_size = 50\ntimeout_seconds = 5\nbackoff_max_seconds = 2\n"
        ),
    )
}

/// (employee, UTC second, ZK state) of every accepted check-in, from the export.
fn exported_utc(dir: &Path) -> Vec<(String, String, String)> {
    let (code, out, err) = common::run(&[
        "--data-dir",
        dir.to_str().unwrap(),
        "export",
        "--format",
        "jsonl",
    ]);
    assert_eq!(code, 0, "{err}");
    let mut v: Vec<_> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["outcome"] == "accepted")
        .map(|v| {
            let p: Punch = v["punch"].as_str().unwrap().parse().unwrap();
            (
                v["employee_id"].as_str().unwrap().to_string(),
                v["time_utc"].as_str().unwrap()[..19].to_string(),
                p.zk_state().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn received(r: &Receiver) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = r
        .run(&["punches"])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pin"].as_str().unwrap().to_string(),
                p["utc"].as_str().unwrap().to_string(),
                p["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn adms_push_delivers_every_accepted_checkin_exactly_once_through_kills_and_outages() {
    let dir = tempfile::tempdir().unwrap();
    day_store(dir.path(), 1_200);
    let mut hr = Receiver::start(dir.path());
    let cfg = adms_config(dir.path(), &hr.url());
    let cfg = cfg.to_str().unwrap();
    // Before the HR admin approves it, the server refuses the data: nothing moves.
    let (code, _, err) = common::run(&["--config", cfg, "adms", "push", "--once"]);
    assert_ne!(code, 0);
    assert!(err.contains("403"), "{err}");
    assert!(received(&hr).is_empty());
    hr.run(&["approve", &hr.port.to_string(), "CFTEST1"]);
    // Killed at random moments during the upload, ten times.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..10 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = Command::new(common::bin())
            .args(["--config", cfg, "adms", "push"])
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + rng % 600));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let (code, out, err) = common::run(&["--config", cfg, "adms", "push", "--once"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("waiting 0"), "{out}");
    let want = exported_utc(dir.path());
    assert_eq!(want.len(), 1_200 - 1_200 / 9);
    assert_eq!(
        received(&hr),
        want,
        "every accepted check-in once, right PIN, time and state"
    );

    // The server down for a while: new check-ins wait, then arrive.
    hr.down();
    {
        let (mut s, clock) = common::open(dir.path());
        // Later the same day (the store's simulated clock starts at its epoch again).
        clock.advance(Duration::from_secs(3 * 3600));
        for i in 0..30 {
            clock.advance(Duration::from_secs(5));
            let mut r = common::checkin(&format!("E{:04}", i % 12));
            r.punch = Punch::Out;
            s.append(&r).unwrap();
        }
    }
    let (code, _, err) = common::run(&["--config", cfg, "adms", "push", "--once"]);
    assert_ne!(code, 0, "no server: an error, and nothing lost");
    assert!(err.contains("ADMS server"), "{err}");
    hr.up();
    let (code, out, err) = common::run(&["--config", cfg, "adms", "push", "--once"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("waiting 0"), "{out}");
    let after = exported_utc(dir.path());
    assert_eq!(after.len(), want.len() + 30);
    assert_eq!(received(&hr), after, "the backlog arrived, once");
}

#[test]
fn adms_answers_info_check_and_attlog_queries_from_the_server() {
    let dir = tempfile::tempdir().unwrap();
    day_store(dir.path(), 60);
    let hr = Receiver::start(dir.path());
    let cfg = adms_config(dir.path(), &hr.url());
    let cfg = cfg.to_str().unwrap();
    let _ = common::run(&["--config", cfg, "adms", "push", "--once"]);
    hr.run(&["approve", &hr.port.to_string(), "CFTEST1"]);
    hr.run(&["command", "CFTEST1", "info"]);
    hr.run(&["command", "CFTEST1", "check"]);
    hr.run(&[
        "command",
        "CFTEST1",
        "query_attlog",
        r#"{"start": "2000-01-01 00:00:00", "end": "2099-12-31 23:59:59"}"#,
    ]);
    hr.run(&["command", "CFTEST1", "reboot"]);
    let (code, _, err) = common::run(&["--config", cfg, "adms", "push", "--once"]);
    assert_eq!(code, 0, "{err}");
    let results = hr.run(&["results"]);
    let by = |prefix: &str| {
        results
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["command"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {results}"))
            .clone()
    };
    assert_eq!(by("INFO")["return"], 0, "{results}");
    assert_eq!(by("CHECK")["return"], 0);
    assert_eq!(
        by("DATA QUERY ATTLOG")["return"],
        60 - 60 / 9,
        "every accepted one re-sent"
    );
    assert_ne!(by("REBOOT")["return"], 0, "unsupported commands say so");
    // The re-sent punches were absorbed by the server's dedupe.
    assert_eq!(received(&hr), exported_utc(dir.path()));
}

#[test]
fn an_adms_server_that_answers_500s_or_garbage_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    day_store(dir.path(), 20);
    for reply in [
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 5\r\nconnection: close\r\n\r\nERROR",
        "HTTP/1.1 200 OK\r\ncontent-length: 17\r\nconnection: close\r\n\r\n<html>oops</html>",
    ] {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let reply = reply.to_string();
        std::thread::spawn(move || {
            for s in l.incoming().flatten().take(20) {
                let mut s = s;
                let mut buf = [0u8; 65536];
                let _ = s.read(&mut buf);
                let _ = s.write_all(reply.as_bytes());
            }
        });
        let cfg = adms_config(dir.path(), &url);
        let (code, _, err) =
            common::run(&["--config", cfg.to_str().unwrap(), "adms", "push", "--once"]);
        assert_ne!(code, 0, "{err}");
        assert!(err.contains("ADMS"), "{err}");
        let (s, _) = common::open(dir.path());
        assert_eq!(s.adms_sent().unwrap(), 0, "the cursor did not move");
    }
}

#[test]
fn the_hub_timesheet_is_local_and_pairs_a_night_shift_across_midnight() {
    use clockface::hub::db::timesheet::{SiteTime, TimesheetFormat, TimesheetOptions};
    use common::net::{TestHub, block};
    let hub = TestHub::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut store, clock) = common::open(dir.path());
    let mut cfg = clockface::base::config::Config::default();
    cfg.sync.url = hub.url.clone();
    block(clockface::sync::pair(
        &mut store,
        &cfg,
        &hub.url,
        &hub.pairing_code(),
    ))
    .unwrap();
    // T0 is 2026-11-30 08:40 UTC, 16:40 in Shanghai. Minutes after T0, with punches:
    let at = |m: i64| Duration::from_secs((m * 60) as u64);
    let plan = [
        (320, "E1", Punch::In),             // 22:00 local on the 30th
        (300 + 20 + 300, "E1", Punch::Out), // 03:00 local on the 1st
        (920, "E2", Punch::In),             // 08:00 on the 1st
        (1160, "E2", Punch::BreakOut),      // 12:00
        (1220, "E2", Punch::BreakIn),       // 13:00
        (1460, "E2", Punch::Out),           // 17:00
    ];
    let mut elapsed = 0;
    for (m, who, punch) in plan {
        clock.advance(at(m - elapsed));
        elapsed = m;
        let mut r = common::checkin(who);
        r.punch = punch;
        store.append(&r).unwrap();
    }
    let s = clockface::sync::Syncer::for_store(&store, &cfg)
        .unwrap()
        .unwrap();
    block(s.round(&mut store)).unwrap();
    let site = SiteTime {
        time_zone: ZONE.into(),
        day_starts: "04:00".into(),
    };
    let mut opts = TimesheetOptions {
        sites: [("HQ".to_string(), site)].into_iter().collect(),
        ..Default::default()
    };
    let sheet = |opts: &TimesheetOptions| {
        let mut out = Vec::new();
        hub.db()
            .timesheet_with(0, i64::MAX, opts, &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let head = r.headers().unwrap().clone();
        r.records()
            .map(|row| {
                let row = row.unwrap();
                head.iter()
                    .zip(row.iter())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<std::collections::BTreeMap<_, _>>()
            })
            .collect::<Vec<_>>()
    };
    let rows = sheet(&opts);
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0]["time_local"], "2026-11-30T22:00:00.000+08:00");
    assert_eq!(rows[0]["punch"], "in");
    assert_eq!(rows[1]["time_local"], "2026-12-01T03:00:00.000+08:00");
    assert_eq!(
        rows[1]["date"], "2026-11-30",
        "before 04:00 counts for the day before"
    );
    assert_eq!(rows[3]["punch"], "break_out");
    assert_eq!(rows[3]["direction"], "out");
    // The same rows as JSON lines, and as ERPNext Employee Checkins in the site's local time.
    let lines = |opts: &TimesheetOptions| {
        let mut out = Vec::new();
        hub.db()
            .timesheet_with(0, i64::MAX, opts, &mut out)
            .unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    opts.format = TimesheetFormat::Jsonl;
    let json = lines(&opts);
    assert_eq!(json.len(), rows.len());
    for (j, row) in json.iter().zip(&rows) {
        for (k, v) in row {
            assert_eq!(j[k], v.as_str(), "{k}");
        }
    }
    opts.format = TimesheetFormat::Erpnext;
    let erp = lines(&opts);
    assert_eq!(
        erp[0],
        serde_json::json!({
            "employee_field_value": rows[0]["employee_id"],
            "timestamp": "2026-11-30 22:00:00",
            "log_type": "IN",
            "device_id": rows[0]["device"],
        })
    );
    assert_eq!(erp[1]["timestamp"], "2026-12-01 03:00:00");
    assert_eq!(erp[3]["log_type"], "OUT", "a break out leaves");
    opts.pairs = true;
    let mut sink = Vec::new();
    let e = hub
        .db()
        .timesheet_with(0, i64::MAX, &opts, &mut sink)
        .unwrap_err();
    assert!(e.to_string().contains("leave out --pairs"), "{e}");
    opts.format = TimesheetFormat::Csv;
    let pairs = sheet(&opts);
    let e1: Vec<_> = pairs.iter().filter(|p| p["employee_id"] == "E1").collect();
    assert_eq!(e1.len(), 1, "{pairs:?}");
    assert_eq!(e1[0]["work_date"], "2026-11-30");
    assert_eq!(e1[0]["hours"], "5.00");
    assert_eq!(e1[0]["note"], "");
    let e2: Vec<_> = pairs.iter().filter(|p| p["employee_id"] == "E2").collect();
    assert_eq!(
        e2.iter().map(|p| p["hours"].as_str()).collect::<Vec<_>>(),
        ["4.00", "4.00"],
        "the break is not worked time"
    );
    opts.first_last = true;
    let fl = sheet(&opts);
    let e2: Vec<_> = fl.iter().filter(|p| p["employee_id"] == "E2").collect();
    assert_eq!(e2.len(), 1);
    assert_eq!(e2[0]["hours"], "9.00");
    // With the day starting at midnight the night shift splits into two half spans.
    opts.sites.get_mut("HQ").unwrap().day_starts = "00:00".into();
    opts.first_last = false;
    let split = sheet(&opts);
    let e1: Vec<_> = split.iter().filter(|p| p["employee_id"] == "E1").collect();
    assert_eq!(
        e1.iter().map(|p| p["note"].as_str()).collect::<Vec<_>>(),
        ["missing_out", "missing_in"]
    );
    // The command line takes the sites from the hub's config.
    let conf = dir.path().join("hub.toml");
    std::fs::write(
        &conf,
        format!("[sites.HQ]\ntime_zone = {ZONE:?}\nday_starts = \"04:00\"\n"),
    )
    .unwrap();
    let timesheet = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_clockface-hub"))
            .arg("--db")
            .arg(&hub.db)
            .arg("--config")
            .arg(&conf)
            .args([
                "timesheet",
                "--since",
                "2026-11-29",
                "--until",
                "2026-12-03",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = timesheet(&["--pairs", "--first-last"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(",5.00,in,out,"), "{text}");
    assert!(text.contains(",9.00,in,out,"), "{text}");
    let out = timesheet(&["--format", "erpnext"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"timestamp\":\"2026-11-30 22:00:00\"")
            && text.contains("\"log_type\":\"IN\""),
        "{text}"
    );
    let out = timesheet(&["--format", "xml"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"xml\" is not one of csv, jsonl, erpnext")
    );
    std::fs::write(&conf, "[sites.HQ]\ntime_zone = \"Mars/Base\"\n").unwrap();
    let out = timesheet(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Mars/Base"));
}

#[test]
fn django_fingerprint_attendance_pulls_the_same_punches_over_zk_as_it_receives_by_adms() {
    let dir = tempfile::tempdir().unwrap();
    let clock = day_store(dir.path(), 300);
    let zk = Zk::start(dir.path(), clock, |_| {});
    let db = dir.path().join("pull.sqlite3");
    let out = Command::new(tool("venv/bin/python"))
        .arg(Receiver::script())
        .arg(&db)
        .args([
            "pull",
            "CFPULL1",
            "127.0.0.1",
            &zk.addr().port().to_string(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = exported_utc(dir.path());
    assert!(text.contains(&format!("{} new", want.len())), "{text}");
    let r = Receiver {
        db,
        port: 0,
        child: None,
    };
    assert_eq!(
        received(&r),
        want,
        "pulled: right PIN, UTC time and state, once"
    );
}

/// The demo's day (a kept demo store at `data`) pushed by ADMS into django-fingerprint-
/// attendance: after approval its punch table holds every accepted check-in of the day with
/// the right PIN, UTC time and state, exactly once, and a second push adds nothing.
pub fn adms_takes_the_day(data: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let hr = Receiver::start(dir.path());
    let cfg = adms_config_for(dir.path(), data, &hr.url());
    let cfg = cfg.to_str().unwrap();
    let _ = common::run(&["--config", cfg, "adms", "push", "--once"]);
    hr.run(&["approve", &hr.port.to_string(), "CFTEST1"]);
    for _ in 0..2 {
        let (code, out, err) = common::run(&["--config", cfg, "adms", "push", "--once"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("waiting 0"), "{out}");
    }
    let want = exported_utc(data);
    assert!(
        want.len() >= 4,
        "the demo day has accepted check-ins: {want:?}"
    );
    assert_eq!(received(&hr), want);
}
