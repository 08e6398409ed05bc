//! The `clockface-hub` binary end to end: its admin commands, a kiosk syncing to it with the
//! `clockface` binary, and schemathesis fuzzing the running hub against docs/openapi.yaml.

use crate::common;
use clockface::hub::db::DbSpec;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::hubbin::{Served, hub, serve, serve_with};

fn kiosk(data: &Path, args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["--data-dir", data.to_str().unwrap()];
    a.extend_from_slice(args);
    common::run(&a)
}

const ROSTER_CSV: &str = "id,display_name,active,is_admin,badges,consent,consent_version
E1,Ada Lovelace,true,false,04A1;04A2,yes,2026-01
E2,Grace Hopper,true,true,04B1,,
E3,Alan Turing,false,false,,no,2026-01
";

/// Sets up a hub with a roster and a policy, and a kiosk paired to it with some check-ins.
fn hub_with_kiosk(dir: &Path) -> (DbSpec, Served, PathBuf) {
    let db = common::pg::hub_spec(dir);
    let csv = dir.join("roster.csv");
    std::fs::write(&csv, ROSTER_CSV).unwrap();
    let (code, out, err) = hub(&db, &["roster", "import", csv.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 3 employees"), "{out}");
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[policy]\nanti_passback_minutes = 10\ndirection = \"auto\"\n",
    )
    .unwrap();
    let (code, out, err) = hub(&db, &["policy", policy.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("policy version 1"), "{out}");
    let served = serve(&db);
    let (code, pairing, err) = hub(&db, &["pairing-code", "--site", "Plant 7"]);
    assert_eq!(code, 0, "{err}");
    let data = dir.join("kiosk");
    let (code, _, err) = kiosk(&data, &["bench", "append", "--count", "40"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = kiosk(
        &data,
        &["pair", "--code", pairing.trim(), "--url", &served.url],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("site Plant 7"), "{out}");
    (db, served, data)
}

#[test]
fn admin_commands_and_a_kiosk_syncing_through_the_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let (db, served, data) = hub_with_kiosk(dir.path());
    let (code, out, err) = kiosk(&data, &["sync"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("synced 40 check-ins"), "{out}");
    assert!(out.contains("roster updated, policy updated"), "{out}");
    // The roster arrived: employees, badges, and E3's declined consent.
    let (code, out, err) = kiosk(&data, &["device", "show", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["store"]["employees"], 3);
    assert_eq!(v["sync"]["queued_checkins"], 0);
    assert_eq!(v["sync"]["roster_version"], 1);
    assert_eq!(v["sync"]["policy_version"], 1);
    assert_eq!(v["sync"]["url"], served.url.as_str());
    let (_, text, _) = kiosk(&data, &["device", "show"]);
    assert!(text.contains("paired with"), "{text}");

    // Chains: one device, no gaps, no conflicts.
    let (code, out, err) = hub(&db, &["chains", "--json"]);
    assert_eq!(code, 0, "{err}");
    let chains: serde_json::Value = serde_json::from_str(&out).unwrap();
    let checkins = chains
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chain"] == "checkins")
        .unwrap();
    assert_eq!(checkins["entries"], 40);
    assert_eq!(checkins["head_seq"], 40);
    assert_eq!(checkins["gaps"].as_array().unwrap().len(), 0);

    // Timesheet: one row per accepted check-in (bench append makes every 10th a failure).
    let today = chrono::Utc::now().date_naive();
    let (code, out, err) = hub(
        &db,
        &[
            "timesheet",
            "--since",
            &(today - chrono::Days::new(1)).to_string(),
            "--until",
            &(today + chrono::Days::new(2)).to_string(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("employee_id,display_name,date"),
        "{out}"
    );
    let accepted = common::raw_db(&data)
        .query_row("SELECT count(*) FROM records WHERE outcome = 1", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap();
    assert_eq!(lines.len() as i64 - 1, accepted);

    // Deleting at the hub reaches the kiosk at the next sync.
    let (code, _, err) = hub(&db, &["roster", "delete", "E1"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = hub(&db, &["roster", "delete", "E1"]);
    assert_eq!(code, 2, "{out}");
    let (code, _, err) = kiosk(&data, &["sync"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = kiosk(&data, &["device", "show", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["store"]["employees"], 2);
}

#[test]
fn bad_admin_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::pg::hub_spec(dir.path());
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "id,display_name,consent\nE1,Ada,yes\nE2,Grace,maybe\n",
    )
    .unwrap();
    let (code, _, err) = hub(&db, &["roster", "import", csv.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("row 3 consent") && err.contains("maybe"),
        "{err}"
    );
    let json = dir.path().join("dup.json");
    std::fs::write(
        &json,
        r#"[{"id":"E1","display_name":"A","active":true,"badges":["0A"]},
            {"id":"E2","display_name":"B","active":true,"badges":["0a"]}]"#,
    )
    .unwrap();
    let (code, _, err) = hub(&db, &["roster", "import", json.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("also given to E1"), "{err}");
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "[policy]\nverdict_seconds = 99\n").unwrap();
    let (code, _, err) = hub(&db, &["policy", policy.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("policy.verdict_seconds"), "{err}");
    let (code, _, err) = hub(&db, &["pairing-code", "--site", "X", "--code", "0OIL"]);
    assert_eq!(code, 2);
    assert!(err.contains("pairing code"), "{err}");
    // Nothing half-imported.
    let h = clockface::hub::db::HubDb::open_spec(&db, &Default::default()).unwrap();
    assert_eq!(h.roster(&uuid::Uuid::nil()).unwrap().employees.len(), 0);
}

fn schemathesis() -> PathBuf {
    let cache = std::env::var_os("CLOCKFACE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/clockface"));
    let bin = cache.join("venv/bin/schemathesis");
    assert!(
        bin.exists(),
        "{} is missing: `./dev test` installs it (pinned) into the tool venv",
        bin.display()
    );
    bin
}

#[test]
fn schemathesis_finds_no_server_error_or_schema_violation() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, served, data) = hub_with_kiosk(dir.path());
    let token = std::fs::read_to_string(data.join("sync.token")).unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.yaml");
    let out = Command::new(schemathesis())
        .args(["run", spec.to_str().unwrap(), "--url", &served.url])
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args(["--checks", "all", "--workers", "2", "--seed", "20261129"])
        .args(["--max-examples", "60", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Tested: 8"), "{text}");
    assert!(!text.contains("Server error"), "{text}");
}

/// POSTs JSON over plain HTTP on loopback as any client could; returns the status and body.
fn post_json(url: &str, path: &str, body: &str) -> (u16, String) {
    raw_request(
        url,
        &format!("POST {path} HTTP/1.1\r\nContent-Type: application/json"),
        body,
    )
}

#[test]
fn a_pairing_code_alone_cannot_take_over_a_paired_kiosk() {
    let dir = tempfile::tempdir().unwrap();
    let (db, served, data) = hub_with_kiosk(dir.path());
    let (code, out, err) = kiosk(&data, &["device", "show", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (id, key) = (
        v["device_id"].as_str().unwrap().to_owned(),
        v["public_key"].as_str().unwrap().to_owned(),
    );
    // The attacker holds an unused code and what `device show` prints, not the private key.
    let (_, fresh, _) = hub(&db, &["pairing-code", "--site", "Elsewhere"]);
    let fresh = fresh.trim();
    let plain =
        serde_json::json!({"code": fresh, "device_id": id, "public_key": key, "name": "evil"});
    let (status, body) = post_json(&served.url, "/v1/pair", &plain.to_string());
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("device_already_paired"), "{body}");
    // A made-up proof does not verify.
    let mut forged = plain.clone();
    forged["proof"] = serde_json::json!("ab".repeat(64));
    let (status, body) = post_json(&served.url, "/v1/pair", &forged.to_string());
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("does not verify"), "{body}");
    // The real kiosk still syncs with its token, and its site did not move.
    let (code, out, err) = kiosk(&data, &["sync"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("synced 40 check-ins"), "{out}");
    // The kiosk itself re-pairs (it can sign), and the admin can unpair it; both are audited.
    let (code, out, err) = kiosk(&data, &["pair", "--code", fresh, "--url", &served.url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("site Elsewhere"), "{out}");
    let (code, out, err) = hub(&db, &["device", "unpair", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("unpaired"), "{out}");
    let (code, out, err) = kiosk(&data, &["sync"]);
    assert_ne!(code, 0, "a revoked token must not sync: {out}");
    let _ = err;
    let (code, out, err) = hub(&db, &["device", "audit", "--json"]);
    assert_eq!(code, 0, "{err}");
    let actions: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&out)
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        ["device_unpaired", "device_repaired", "device_paired"],
        "{out}"
    );
    let (code, _, err) = hub(&db, &["device", "unpair", "not-a-uuid"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a UUID"), "{err}");
}

#[test]
fn an_old_kiosk_without_a_proof_pairs_only_a_new_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::pg::hub_spec(dir.path());
    let served = serve(&db);
    let (_, c1, _) = hub(&db, &["pairing-code", "--site", "S"]);
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let id = uuid::Uuid::new_v4();
    let req = |code: &str| {
        serde_json::json!({"code": code, "device_id": id, "name": "old kiosk",
            "public_key": hex::encode(key.verifying_key().as_bytes())})
        .to_string()
    };
    let (status, body) = post_json(&served.url, "/v1/pair", &req(c1.trim()));
    assert_eq!(status, 200, "{body}");
    let (_, c2, _) = hub(&db, &["pairing-code", "--site", "S"]);
    let (status, body) = post_json(&served.url, "/v1/pair", &req(c2.trim()));
    assert_eq!(status, 409, "{body}");
    // After an admin unpairs it, the same old kiosk pairs again.
    let (code, _, err) = hub(&db, &["device", "unpair", &id.to_string()]);
    assert_eq!(code, 0, "{err}");
    let (status, body) = post_json(&served.url, "/v1/pair", &req(c2.trim()));
    assert_eq!(status, 200, "{body}");
    // A weak key is refused by name.
    let (_, c3, _) = hub(&db, &["pairing-code", "--site", "S"]);
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = serde_json::json!({"code": c3.trim(), "device_id": uuid::Uuid::new_v4(),
        "name": "weak", "public_key": hex::encode(identity)});
    let (status, body) = post_json(&served.url, "/v1/pair", &weak.to_string());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("small-order"), "{body}");
}

/// Sends one raw HTTP/1.1 request (`head`: request line and headers) on loopback; returns the
/// status and the whole answer.
fn raw_request(url: &str, head: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, resp)
}

/// The status alone of [`raw_request`].
fn raw_status(url: &str, head: &str, body: &str) -> u16 {
    raw_request(url, head, body).0
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_the_media_type_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, served, data) = hub_with_kiosk(dir.path());
    let token = std::fs::read_to_string(data.join("sync.token")).unwrap();
    let token = token.trim();
    let get = |auth: &str| {
        raw_status(
            &served.url,
            &format!("GET /v1/policy HTTP/1.1\r\nAuthorization: {auth}"),
            "",
        )
    };
    assert_eq!(get(&format!("Bearer {token}")), 200);
    assert_eq!(get(&format!("bearer {token}")), 200);
    assert_eq!(get(&format!("BEARER {token}")), 200);
    assert_eq!(get(&format!("Basic {token}")), 401);
    let post = |ct: &str| {
        raw_status(
            &served.url,
            &format!(
                "POST /v1/checkins HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: {ct}"
            ),
            "{\"entries\": []}",
        )
    };
    assert_eq!(post("application/jsonx"), 415);
    assert_eq!(post("application/json-patch+json"), 415);
    assert_eq!(post("application/json; charset=utf-8"), 400); // empty batch: the body was read
}

#[test]
fn idle_and_half_sent_connections_do_not_take_the_hub_offline() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let db = common::pg::hub_spec(dir.path());
    // As the probe ran it: a low file limit, then more silent connections than it allows.
    let mut served = serve_with(&db, Some(&["prlimit", "--nofile=64:64", "--"]));
    let addr = served.url.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for i in 0..64 {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            if i % 2 == 1 {
                let _ = s.write_all(b"GET /v1/health HT");
            }
            slow.push(s);
        }
    }
    // A real client is served meanwhile (the oldest silent connections make room).
    let started = Instant::now();
    let mut answered = false;
    while !answered && started.elapsed() < Duration::from_secs(20) {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = write!(
                s,
                "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            let mut resp = String::new();
            let _ = s.read_to_string(&mut resp);
            answered = resp.starts_with("HTTP/1.1 200");
        }
        if !answered {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(
        answered,
        "no answer within 20 s while 64 connections sat idle"
    );
    // A half-sent request does not keep the hub from stopping.
    let mut half = TcpStream::connect(&addr).unwrap();
    half.write_all(b"POST /v1/checkins HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let stop = Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(served.child.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(s) = served.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stop.elapsed() < Duration::from_secs(15),
            "the hub did not exit within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    served
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("Too many open files"), "{err}");
    assert!(
        err.contains("connections open, the most this hub allows"),
        "{err}"
    );
    drop(slow);
    drop(half);
}

#[test]
fn a_new_or_reset_backend_receives_the_history_and_a_head_ahead_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let (db, served, data) = hub_with_kiosk(dir.path());
    let (code, out, err) = kiosk(&data, &["sync"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("synced 40 check-ins"), "{out}");
    let backend_head = |data: &Path| {
        let (code, out, err) = kiosk(data, &["device", "show", "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["sync"]["backend_head_seq"].clone()
    };
    assert_eq!(backend_head(&data), 40);
    // Re-paired to a brand-new hub: the whole history goes there too.
    let second = dir.path().join("second");
    std::fs::create_dir(&second).unwrap();
    let db2 = common::pg::hub_spec(&second);
    let served2 = serve(&db2);
    let (_, code2, _) = hub(&db2, &["pairing-code", "--site", "New site"]);
    let (code, _, err) = kiosk(
        &data,
        &["pair", "--code", code2.trim(), "--url", &served2.url],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        backend_head(&data).is_null(),
        "the old backend's head is forgotten"
    );
    let (code, out, err) = kiosk(&data, &["sync"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("synced 40 check-ins"), "{out}");
    assert_eq!(backend_head(&data), 40);
    let (_, chains, _) = hub(&db2, &["chains", "--json"]);
    let chains: serde_json::Value = serde_json::from_str(&chains).unwrap();
    let c = chains
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chain"] == "checkins")
        .unwrap();
    assert_eq!(c["last_seq"], 40, "{c}");
    assert_eq!(c["gaps"].as_array().unwrap().len(), 0, "{c}");
    // The new hub is restored from an older backup (entries after seq 25 lost): the kiosk
    // sees its head go back and sends the rest again.
    drop(served2);
    common::pg::raw_sql(
        &db2,
        "DELETE FROM entries WHERE chain = 'checkins' AND seq > 25;
         UPDATE heads SET seq = 25, hash = (SELECT hash FROM entries WHERE chain = 'checkins' AND seq = 25) WHERE chain = 'checkins';",
    );
    let served2 = serve(&db2);
    let cfg = dir.path().join("k.toml");
    std::fs::write(&cfg, format!("[sync]\nurl = {:?}\n", served2.url)).unwrap();
    let with_cfg = |args: &[&str]| {
        let mut a = vec!["--config", cfg.to_str().unwrap()];
        a.extend_from_slice(args);
        kiosk(&data, &a)
    };
    let (code, out, err) = with_cfg(&["sync"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("synced 15 check-ins"), "{out}");
    let (code, out, _) = with_cfg(&["sync"]);
    assert_eq!(code, 0);
    assert!(out.contains("synced 0 check-ins"), "nothing loops: {out}");
    // A hub that claims more than the kiosk ever signed is not believed.
    drop(served2);
    common::pg::raw_sql(&db2, "UPDATE heads SET seq = 9999 WHERE chain = 'checkins'");
    let served2 = serve(&db2);
    std::fs::write(&cfg, format!("[sync]\nurl = {:?}\n", served2.url)).unwrap();
    let (code, _, err) = with_cfg(&["sync"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(backend_head(&data), 40, "a head of 9999 is not recorded");
    let audit: Vec<String> = common::raw_db(&data)
        .prepare("SELECT action FROM audit WHERE action = 'backend_head_ahead'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(audit.len(), 1, "{audit:?}");
    drop(served);
    let _ = db;
}

#[test]
fn each_kiosk_receives_only_its_sites_people() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::pg::hub_spec(dir.path());
    let csv = dir.path().join("roster.csv");
    let write_roster = |e1_site: &str| {
        std::fs::write(
            &csv,
            format!(
                "id,display_name,badges,sites\nE1,Ada Lovelace,04A1,{e1_site}\nE2,Grace Hopper,04B1,Depot\nE3,Alan Turing,04C1,*\n"
            ),
        )
        .unwrap();
        let (code, _, err) = hub(&db, &["roster", "import", csv.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    };
    write_roster("Plant 7");
    let served = serve(&db);
    let paired = |name: &str, site: &str| {
        let data = dir.path().join(name);
        let (_, code, _) = hub(&db, &["pairing-code", "--site", site]);
        let (c, _, err) = kiosk(
            &data,
            &["pair", "--code", code.trim(), "--url", &served.url],
        );
        assert_eq!(c, 0, "{err}");
        let (c, _, err) = kiosk(&data, &["sync"]);
        assert_eq!(c, 0, "{err}");
        data
    };
    let employees = |data: &Path| -> Vec<String> {
        common::raw_db(data)
            .prepare("SELECT id FROM employees ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let plant = paired("plant", "Plant 7");
    let depot = paired("depot", "Depot");
    assert_eq!(employees(&plant), ["E1", "E3"]);
    assert_eq!(employees(&depot), ["E2", "E3"]);
    // Nothing of the other site's person is anywhere in the kiosk's files.
    let raw = common::raw_files(&plant);
    assert!(!common::contains(&raw, b"Grace Hopper") && !common::contains(&raw, b"04B1"));
    // E1 moves to the depot: removed at the plant's kiosk, added at the depot's.
    write_roster("Depot");
    for data in [&plant, &depot] {
        let (c, _, err) = kiosk(data, &["sync"]);
        assert_eq!(c, 0, "{err}");
    }
    assert_eq!(employees(&plant), ["E3"]);
    assert_eq!(employees(&depot), ["E1", "E2", "E3"]);
}
