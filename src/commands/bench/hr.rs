//! `bench hr`: the HR-terminal protocols under load, against the real partners the tests use
//! (pyzk and django-fingerprint-attendance from the tool venv that `./dev test` fills, and the
//! partner scripts in `tests/partners/` of this checkout): `get_attendance` of a large log
//! through pyzk, an ADMS push of the same log into the Django receiver, and the demo's
//! tap-to-verdict with and without 200 ZK connections held open.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::base::clock::SimClock;
use crate::base::config::{AdmsConfig, ZkConfig, dev_cache};
use crate::base::error::{Error, Result};
use crate::base::zone::SiteZone;
use crate::hr::zk::{ZkServer, wire};
use crate::store::Store;
use crate::store::record::NewRecord;

use super::store::{options, sample_record};

fn partner(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/partners")
        .join(name)
}

fn python() -> Result<PathBuf> {
    let py = dev_cache().join("venv/bin/python");
    if py.exists() {
        Ok(py)
    } else {
        Err(Error::invalid(
            "bench hr",
            format!(
                "{} is missing: run ./dev test once to install the partners",
                py.display()
            ),
        ))
    }
}

/// A store of `n` check-ins, 5,000 people, a simulated second apart per 5,000 (ADMS servers
/// merge one person's punches within a second).
fn big_store(dir: &Path, n: u64) -> Result<Arc<SimClock>> {
    let clock = Arc::new(SimClock::new(1_796_028_000_000));
    let mut store = Store::open(&options(dir), clock.clone())?;
    let pb = crate::commands::context::progress_bar(n, "writing check-ins");
    let mut i = 0;
    while i < n {
        let k = (n - i).min(5000);
        let batch: Vec<NewRecord> = (i..i + k).map(sample_record).collect();
        store.append_many(&batch)?;
        clock.advance(Duration::from_secs(60));
        i += k;
        if let Some(pb) = &pb {
            pb.set_position(i);
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(clock)
}

/// `clockface bench hr`.
pub fn hr(records: u64, demo: bool, out: &mut dyn Write) -> Result<()> {
    let py = python()?;
    let dir = tempfile::tempdir().map_err(|e| Error::io("temporary dir", e))?;
    let data = dir.path().join("kiosk");
    let clock = big_store(&data, records)?;
    let accepted = Store::open(&options(&data), clock.clone())?.accepted_count_after(0)?;
    let zone = SiteZone::parse("Asia/Shanghai")?;

    // 1. The whole log through the chunked path: a plain reader (the server's own speed),
    //    then pyzk (whose parsing copies the rest of the buffer per record).
    let server = ZkServer::spawn(
        &options(&data),
        ZkConfig {
            listen: "127.0.0.1:0".into(),
            ..ZkConfig::default()
        },
        zone,
        clock.clone(),
        None,
    )?;
    let (n, secs) = raw_read(server.addr)?;
    let _ = writeln!(
        out,
        "ZK attendance read (prepare/read-buffer, 65,472-byte chunks): {n} records in {secs:.2} s ({:.0} records/s)",
        n as f64 / secs
    );
    let o = Command::new(&py)
        .arg(partner("zk_pull.py"))
        .arg("127.0.0.1")
        .arg(server.addr.port().to_string())
        .arg("0")
        .arg("attendance")
        .output()
        .map_err(|e| Error::io("pyzk", e))?;
    server.stop();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .map_err(|e| Error::invalid("pyzk output", e.to_string()))?;
    let got = v["attendance"].as_array().map_or(0, |a| a.len());
    let secs = v["attendance_seconds"].as_f64().unwrap_or(f64::NAN);
    let _ = writeln!(
        out,
        "pyzk get_attendance: {got} of {accepted} accepted records in {secs:.2} s ({:.0} records/s)",
        got as f64 / secs
    );

    // 2. ADMS push into django-fingerprint-attendance.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::io("free port", e))?
        .port();
    let db = dir.path().join("hr.sqlite3");
    let mut django = Command::new(&py)
        .arg(partner("adms_site.py"))
        .arg(&db)
        .args(["serve", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io("django", e))?;
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t.elapsed() > Duration::from_secs(60) {
            let _ = django.kill();
            return Err(Error::invalid(
                "bench hr",
                "the ADMS receiver did not start",
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let cfg = AdmsConfig {
        url: format!("http://127.0.0.1:{port}"),
        serial: "CFBENCH1".into(),
        batch_size: 1000,
        timeout_seconds: 120,
        ..AdmsConfig::default()
    };
    let rt = super::super::context::small_runtime()?;
    let store = Store::open(&options(&data), clock.clone())?;
    let mut adms = crate::hr::adms::Adms::new(store, cfg, "CFBENCH1".into(), zone)?;
    let _ = rt.block_on(adms.handshake());
    let _ = Command::new(&py)
        .arg(partner("adms_site.py"))
        .arg(&db)
        .args(["approve", &port.to_string(), "CFBENCH1"])
        .output();
    let t = Instant::now();
    let sent = rt.block_on(async {
        adms.handshake().await?;
        adms.upload().await
    });
    let secs = t.elapsed().as_secs_f64();
    let _ = django.kill();
    let _ = django.wait();
    let sent = sent?;
    let _ = writeln!(
        out,
        "ADMS push into django-fingerprint-attendance: {sent} records in {secs:.1} s ({:.0} records/s, batches of 1000)",
        sent as f64 / secs
    );

    // 3. The demo's tap-to-verdict, alone and with 200 ZK connections.
    if demo {
        for flood in [false, true] {
            let line = demo_latency(flood)?;
            let _ = writeln!(
                out,
                "demo {}: {line}",
                if flood {
                    "with 200 ZK connections"
                } else {
                    "alone"
                }
            );
        }
    }
    Ok(())
}

fn read_frame(s: &mut TcpStream) -> Result<(u16, Vec<u8>)> {
    use std::io::Read;
    let io = |e| Error::io("zk bench read", e);
    let mut top = [0u8; 8];
    s.read_exact(&mut top).map_err(io)?;
    let len = wire::frame_len(&top).map_err(|e| Error::invalid("zk frame", e.to_string()))?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).map_err(io)?;
    let p = wire::parse(&body).map_err(|e| Error::invalid("zk packet", e.to_string()))?;
    Ok((p.cmd, p.data))
}

/// Reads the attendance log as clients do; returns (records, seconds).
fn raw_read(addr: std::net::SocketAddr) -> Result<(u64, f64)> {
    let io = |e| Error::io("zk bench", e);
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).map_err(io)?;
    s.write_all(&wire::frame(wire::cmd::CONNECT, 0, 65534, b""))
        .map_err(io)?;
    read_frame(&mut s)?;
    let mut req = vec![1u8];
    req.extend_from_slice(&wire::cmd::ATTLOG_RRQ.to_le_bytes());
    req.extend_from_slice(&[0; 8]);
    s.write_all(&wire::frame(wire::cmd::PREPARE_BUFFER, 0, 1, &req))
        .map_err(io)?;
    let (_, d) = read_frame(&mut s)?;
    let size = u32::from_le_bytes(d[1..5].try_into().unwrap_or_default()) as usize;
    let mut got = 0;
    while got < size {
        let n = (size - got).min(wire::MAX_CHUNK);
        let mut q = (got as u32).to_le_bytes().to_vec();
        q.extend_from_slice(&(n as u32).to_le_bytes());
        s.write_all(&wire::frame(wire::cmd::READ_BUFFER, 0, 2, &q))
            .map_err(io)?;
        read_frame(&mut s)?; // prepare
        let (_, data) = read_frame(&mut s)?;
        read_frame(&mut s)?; // OK
        got += data.len();
    }
    s.write_all(&wire::frame(wire::cmd::EXIT, 0, 3, b""))
        .map_err(io)?;
    Ok((
        ((size - 4) / wire::ATT_SIZE) as u64,
        t.elapsed().as_secs_f64(),
    ))
}

/// Runs `clockface demo --headless` with the ZK side on; with `flood`, 200 connections are
/// kept open against it (re-opened when closed) and the sessions it serves poll free sizes.
fn demo_latency(flood: bool) -> Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::io("free port", e))?
        .port();
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let child = Command::new(exe)
        .args([
            "demo",
            "--headless",
            "--zk-listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io("demo", e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    if flood {
        for i in 0..200 {
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let _ = s.write_all(&wire::frame(wire::cmd::CONNECT, 0, 65534, b""));
                    let mut buf = [0u8; 256];
                    use std::io::Read;
                    while !stop.load(Ordering::Relaxed) && s.read(&mut buf).is_ok_and(|n| n > 0) {
                        std::thread::sleep(Duration::from_millis(200 + i));
                        let _ = s.write_all(&wire::frame(wire::cmd::GET_FREE_SIZES, 0, 1, b""));
                    }
                    // Closed at the cap (or at idle): try again a second later, as clients do.
                    std::thread::sleep(Duration::from_secs(1));
                }
            }));
        }
    }
    let o = child.wait_with_output().map_err(|e| Error::io("demo", e))?;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let text = String::from_utf8_lossy(&o.stdout);
    Ok(text
        .lines()
        .find(|l| l.contains("tap-to-verdict latency"))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "no latency line in the demo's output".into()))
}
