//! One ZK client's session: read a frame, answer it from the store, until the client says
//! exit, goes silent, sends something malformed or the server stops.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wire::{self, Packet, cmd};
use super::{Control, Shared};
use crate::base::error::Result;
use crate::store::audit::NewAudit;
use crate::store::record::Record;

/// Gap between the packets of one chunk reply. JavaScript ZK clients take one packet per
/// socket read, so the prepare, data and acknowledgement packets must not arrive as one read.
const PACKET_GAP: Duration = Duration::from_millis(3);
/// Comm-key failures in one session before it is closed.
const AUTH_TRIES: u32 = 3;
/// Failures from one address are forgotten after this long without another.
const FAILURE_MEMORY: Duration = Duration::from_secs(600);

struct Session {
    id: u16,
    authed: bool,
    /// The buffer a prepare-buffer command built, read in chunks, freed by free-data.
    buffer: Option<Vec<u8>>,
    commands: BTreeMap<u16, u32>,
    records_read: u64,
    auth_failures: u32,
    end: Option<&'static str>,
}

/// What one command produced: frames to write (with gaps) and whether the session ends.
struct Answer {
    frames: Vec<Vec<u8>>,
}

impl Answer {
    fn one(code: u16, s: u16, reply: u16, data: &[u8]) -> Answer {
        Answer {
            frames: vec![wire::frame(code, s, reply, data)],
        }
    }
}

pub(super) async fn run(
    mut sock: TcpStream,
    peer: SocketAddr,
    sh: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut s = Session {
        id: rand::random::<u16>().max(1),
        authed: sh.cfg.comm_key == 0,
        buffer: None,
        commands: BTreeMap::new(),
        records_read: 0,
        auth_failures: 0,
        end: None,
    };
    let idle = Duration::from_secs(sh.cfg.idle_seconds as u64);
    let started = Instant::now();
    loop {
        if *stop.borrow() {
            s.end = Some("server stopping");
            break;
        }
        let read = tokio::select! {
            r = tokio::time::timeout(idle, read_frame(&mut sock)) => r,
            _ = stop.changed() => {
                s.end = Some("server stopping");
                break;
            }
        };
        let pkt = match read {
            Err(_) => {
                s.end = Some("idle");
                break;
            }
            Ok(Err(why)) => {
                s.end = Some(why);
                break;
            }
            Ok(Ok(p)) => p,
        };
        *s.commands.entry(pkt.cmd).or_default() += 1;
        let answer = match handle(&mut s, &pkt, peer, &sh).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, command = pkt.cmd, "zk command failed");
                Answer::one(cmd::ACK_ERROR, s.id, pkt.reply, b"")
            }
        };
        let n = answer.frames.len();
        for (i, f) in answer.frames.into_iter().enumerate() {
            if sock.write_all(&f).await.is_err() {
                s.end = Some("write failed");
                break;
            }
            if i + 1 < n {
                let _ = sock.flush().await;
                tokio::time::sleep(PACKET_GAP).await;
            }
        }
        if s.end.is_some() {
            break;
        }
    }
    let _ = sock.shutdown().await;
    let end = s.end.unwrap_or("closed");
    tracing::info!(%peer, end, records = s.records_read, ms = started.elapsed().as_millis() as u64, "zk session ended");
    // A connection that sent nothing is not worth an audit entry (port scans, health probes).
    if s.commands.is_empty() {
        return;
    }
    let mut audit = NewAudit::new("zk", "zk_session", "");
    audit.detail = serde_json::json!({
        "peer": peer.ip().to_string(),
        "commands": s.commands.iter().map(|(c, n)| (c.to_string(), *n)).collect::<BTreeMap<_, _>>(),
        "records_read": s.records_read,
        "auth_failures": s.auth_failures,
        "end": end,
    })
    .to_string();
    if let Err(e) = sh.with_store(move |st| st.audit(&audit).map(drop)).await {
        tracing::error!(error = %e, "cannot audit a zk session");
    }
}

/// Reads one frame; the error names why the session must end.
async fn read_frame(sock: &mut TcpStream) -> std::result::Result<Packet, &'static str> {
    let mut top = [0u8; 8];
    sock.read_exact(&mut top).await.map_err(|_| "closed")?;
    let len = wire::frame_len(&top).map_err(|e| {
        tracing::warn!(error = %e, "zk: malformed frame; ending the session");
        "malformed frame"
    })?;
    let mut body = vec![0u8; len];
    sock.read_exact(&mut body)
        .await
        .map_err(|_| "truncated frame")?;
    wire::parse(&body).map_err(|e| {
        tracing::warn!(error = %e, "zk: malformed packet; ending the session");
        "malformed packet"
    })
}

fn le32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

async fn handle(s: &mut Session, p: &Packet, peer: SocketAddr, sh: &Arc<Shared>) -> Result<Answer> {
    let (id, r) = (s.id, p.reply);
    let ok = |data: &[u8]| Answer::one(cmd::ACK_OK, id, r, data);
    let error = || Answer::one(cmd::ACK_ERROR, id, r, b"");
    match p.cmd {
        cmd::CONNECT => {
            let code = if s.authed {
                cmd::ACK_OK
            } else {
                cmd::ACK_UNAUTH
            };
            return Ok(Answer::one(code, id, r, b""));
        }
        cmd::AUTH => return Ok(auth(s, p, peer, sh).await),
        cmd::EXIT => {
            s.end = Some("exit");
            return Ok(ok(b""));
        }
        _ if !s.authed => return Ok(Answer::one(cmd::ACK_UNAUTH, id, r, b"")),
        _ => {}
    }
    Ok(match p.cmd {
        cmd::GET_FREE_SIZES => {
            let ip = peer.ip().to_string();
            let (users, records) = sh
                .with_store(move |st| {
                    let cursor = st.zk_cursor(&ip)?;
                    Ok((
                        st.zk_users()?.len() as i32,
                        st.accepted_count_after(cursor)? as i32,
                    ))
                })
                .await?;
            let mut f = [0i32; 23];
            f[4] = users;
            f[8] = records;
            f[14] = 0; // fingerprint capacity: none
            f[15] = 65_535; // user capacity (uids are u16)
            f[16] = 10_000_000; // record capacity
            f[18] = 65_535 - users;
            f[19] = 10_000_000 - records;
            f[22] = 0; // face capacity of the ZK face format: none
            ok(&f.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>())
        }
        cmd::PREPARE_BUFFER => {
            // [1, command u16, fct i32, ext i32]
            let what = p.data.get(1..3).map(|b| u16::from_le_bytes([b[0], b[1]]));
            let buf = match what {
                Some(cmd::ATTLOG_RRQ) => attendance_buffer(s, peer, sh).await?,
                Some(cmd::USERTEMP_RRQ) if le32(&p.data, 3) == Some(5) => users_buffer(sh).await?,
                _ => return Ok(error()),
            };
            let mut d = vec![0u8];
            d.extend_from_slice(&(buf.len() as u32).to_le_bytes());
            d.extend_from_slice(&[0; 4]);
            s.buffer = Some(buf);
            ok(&d)
        }
        cmd::READ_BUFFER => {
            let (Some(start), Some(size)) = (le32(&p.data, 0), le32(&p.data, 4)) else {
                return Ok(error());
            };
            let (start, size) = (start as usize, size as usize);
            match &s.buffer {
                Some(b)
                    if size <= wire::MAX_CHUNK
                        && start.checked_add(size).is_some_and(|e| e <= b.len()) =>
                {
                    chunk(id, r, &b[start..start + size])
                }
                _ => error(),
            }
        }
        // The old one-shot reads: the whole buffer as one transfer.
        cmd::ATTLOG_RRQ => {
            let b = attendance_buffer(s, peer, sh).await?;
            chunk(id, r, &b)
        }
        cmd::USERTEMP_RRQ => {
            let b = users_buffer(sh).await?;
            chunk(id, r, &b)
        }
        cmd::FREE_DATA => {
            s.buffer = None;
            ok(b"")
        }
        cmd::GET_TIME => {
            let now = sh.clock.wall_ms();
            let t = wire::encode_time(sh.zone.local(now).naive_local());
            ok(&t.to_le_bytes())
        }
        cmd::SET_TIME => set_time(p, peer, sh)
            .await?
            .map_or_else(error, |()| ok(b"")),
        cmd::OPTIONS_RRQ => {
            let key = p.data.split(|b| *b == 0).next().unwrap_or_default();
            let key = String::from_utf8_lossy(key).to_string();
            match option(&key, sh) {
                Some(v) => ok(format!("{key}={v}\0").as_bytes()),
                None => error(),
            }
        }
        cmd::GET_VERSION => {
            ok(format!("Ver 6.60 Clockface {}\0", env!("CARGO_PKG_VERSION")).as_bytes())
        }
        cmd::GET_PINWIDTH => ok(&[24]),
        cmd::DISABLE_DEVICE => {
            let seconds = sh.cfg.disable_seconds;
            if let Some(c) = &sh.control {
                let _ = c.send(Control::Disable { seconds });
            }
            tracing::info!(%peer, seconds, "zk client paused check-ins");
            ok(b"")
        }
        cmd::ENABLE_DEVICE => {
            if let Some(c) = &sh.control {
                let _ = c.send(Control::Enable);
            }
            ok(b"")
        }
        cmd::REFRESH_DATA | cmd::REFRESH_OPTION => ok(b""),
        cmd::CLEAR_ATTLOG => {
            let ip = peer.ip().to_string();
            let cursor = sh.with_store(move |st| st.zk_clear(&ip)).await?;
            tracing::info!(%peer, cursor, "zk clear attendance: the client's cursor moved; nothing deleted");
            ok(b"")
        }
        // Writes and device actions are refused: the roster comes from the backend, signed
        // records are never deleted, and the door is the kiosk's to open.
        cmd::USER_WRQ
        | cmd::USERTEMP_WRQ
        | cmd::DELETE_USER
        | cmd::DELETE_USERTEMP
        | cmd::CLEAR_DATA
        | cmd::CLEAR_ADMIN
        | cmd::OPTIONS_WRQ
        | cmd::PREPARE_DATA
        | cmd::DATA
        | cmd::RESTART
        | cmd::POWEROFF
        | cmd::UNLOCK
        | cmd::DB_RRQ
        | cmd::REG_EVENT => {
            tracing::info!(%peer, command = p.cmd, "zk: refused");
            error()
        }
        _ => Answer::one(cmd::ACK_UNKNOWN, id, r, b""),
    })
}

/// A transfer as clients read it: prepare (size), the data, then OK.
fn chunk(id: u16, reply: u16, bytes: &[u8]) -> Answer {
    let mut size = (bytes.len() as u32).to_le_bytes().to_vec();
    size.extend_from_slice(&[0; 4]);
    Answer {
        frames: vec![
            wire::frame(cmd::PREPARE_DATA, id, reply, &size),
            wire::frame(cmd::DATA, id, reply, bytes),
            wire::frame(cmd::ACK_OK, id, reply, b""),
        ],
    }
}

async fn auth(s: &mut Session, p: &Packet, peer: SocketAddr, sh: &Arc<Shared>) -> Answer {
    let (id, r) = (s.id, p.reply);
    if wire::auth_ok(sh.cfg.comm_key, s.id, &p.data) {
        s.authed = true;
        sh.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&peer.ip());
        return Answer::one(cmd::ACK_OK, id, r, b"");
    }
    s.auth_failures += 1;
    let n = {
        let mut f = sh.failures.lock().unwrap_or_else(|e| e.into_inner());
        let e = f.entry(peer.ip()).or_insert((0, Instant::now()));
        if e.1.elapsed() > FAILURE_MEMORY {
            e.0 = 0;
        }
        e.0 += 1;
        e.1 = Instant::now();
        e.0
    };
    // 0.5 s, 1 s, 2 s ... up to 30 s before a wrong key hears back.
    let delay = Duration::from_millis(500u64.saturating_mul(1 << (n - 1).min(6)))
        .min(Duration::from_secs(30));
    tracing::warn!(%peer, failures = n, delay_ms = delay.as_millis() as u64, "zk: wrong comm key");
    tokio::time::sleep(delay).await;
    if s.auth_failures >= AUTH_TRIES {
        s.end = Some("comm key refused");
    }
    Answer::one(cmd::ACK_UNAUTH, id, r, b"")
}

async fn set_time(p: &Packet, peer: SocketAddr, sh: &Arc<Shared>) -> Result<Option<()>> {
    let allowed = sh.cfg.allow_set_time;
    let local = le32(&p.data, 0).and_then(wire::decode_time);
    let target = local.and_then(|t| sh.zone.from_local(t).ok());
    let result = match (allowed, target) {
        (false, _) => Err("refused: zk.allow_set_time is false"),
        (true, None) => Err("not a valid local time"),
        (true, Some(ms)) => set_clock(ms),
    };
    let mut audit = NewAudit::new("zk", "zk_set_time", "");
    audit.detail = serde_json::json!({
        "peer": peer.ip().to_string(),
        "requested": local.map(|t| t.to_string()),
        "result": result.err().unwrap_or("ok"),
    })
    .to_string();
    sh.with_store(move |st| st.audit(&audit).map(drop)).await?;
    Ok(result.ok())
}

fn set_clock(ms: i64) -> std::result::Result<(), &'static str> {
    let ts = libc::timespec {
        tv_sec: ms.div_euclid(1000),
        tv_nsec: (ms.rem_euclid(1000) * 1_000_000) as _,
    };
    // SAFETY: a plain syscall on a timespec we own.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } == 0 {
        Ok(())
    } else {
        Err("the system refused to set the clock (CAP_SYS_TIME)")
    }
}

/// Device options a client may read; `None` for one this terminal does not have.
fn option(key: &str, sh: &Shared) -> Option<String> {
    Some(match key {
        "~SerialNumber" => sh.id.serial.clone(),
        "~DeviceName" => sh.id.name.clone(),
        "~Platform" => format!("Clockface_{}", std::env::consts::ARCH),
        "~OS" => "1".into(),
        "MAC" => sh.id.mac.clone(),
        "~ZKFPVersion" => "10".into(),
        "~ZKFaceVersion" => "0".into(),
        "FaceFunOn" => "0".into(),
        "~ExtendFmt" | "~UserExtFmt" => "1".into(),
        "CompatOldFirmware" => "0".into(),
        "~OEMVendor" => "Clockface".into(),
        "~PIN2Width" => "24".into(),
        "WorkCode" => "0".into(),
        _ => return None,
    })
}

async fn users_buffer(sh: &Arc<Shared>) -> Result<Vec<u8>> {
    let users = sh.with_store(|st| st.zk_users()).await?;
    let mut b = Vec::with_capacity(4 + users.len() * wire::USER_SIZE);
    b.extend_from_slice(&((users.len() * wire::USER_SIZE) as u32).to_le_bytes());
    for u in &users {
        b.extend_from_slice(&wire::user_record(u));
    }
    Ok(b)
}

async fn attendance_buffer(s: &mut Session, peer: SocketAddr, sh: &Arc<Shared>) -> Result<Vec<u8>> {
    let ip = peer.ip().to_string();
    let zone = sh.zone;
    let b = sh
        .with_store(move |st| {
            let uids: std::collections::HashMap<String, u16> = st
                .zk_users()?
                .into_iter()
                .map(|u| (u.employee_id, u.uid))
                .collect();
            let mut after = st.zk_cursor(&ip)?;
            let mut b = vec![0u8; 4];
            loop {
                let page: Vec<Record> = st.accepted_after(after, 10_000)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for rec in &page {
                    let t = wire::encode_time(zone.local(rec.wall_ms).naive_local());
                    let uid = uids.get(&rec.employee_id).copied().unwrap_or(0);
                    b.extend_from_slice(&wire::attendance_record(
                        uid,
                        &rec.employee_id,
                        rec.method.zk_verify(),
                        t,
                        rec.punch.zk_state(),
                    ));
                }
            }
            let n = (b.len() - 4) as u32;
            b[..4].copy_from_slice(&n.to_le_bytes());
            Ok(b)
        })
        .await?;
    s.records_read += ((b.len() - 4) / wire::ATT_SIZE) as u64;
    Ok(b)
}
