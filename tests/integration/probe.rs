//! The outside security probe's findings, each reproduced as it was found and held fixed: a
//! store silently recreated under its old key, signed records whose content the hub did not
//! check, CSV cells a spreadsheet runs, control characters in names, and a small image that
//! inflates to gigabytes. (Pairing and signature findings are in `hub_api` and `store::chain`.)

use crate::common;

use std::path::Path;

use base64::Engine;
use clockface::base::clock::{Clock, SystemClock};
use clockface::base::protocol::{AckStatus, PairRequest, UploadEntry, pairing_proof_message};
use clockface::hub::db::{Chain, HubDb};
use clockface::store::record::{Method, Outcome, Punch, Record};
use ed25519_dalek::{Signer, SigningKey};

fn kiosk(data: &Path, args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["--data-dir", data.to_str().unwrap()];
    a.extend_from_slice(args);
    common::run(&a)
}

fn device_id(data: &Path) -> String {
    let (code, out, err) = kiosk(data, &["device", "show", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["device_id"].as_str().unwrap().to_owned()
}

#[test]
fn a_lost_database_stops_the_kiosk_instead_of_a_new_identity() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, err) = kiosk(&data, &["bench", "append", "--count", "3"]);
    assert_eq!(code, 0, "{err}");
    let old_id = device_id(&data);
    let key = std::fs::read(data.join("device.key")).unwrap();
    let db = data.join("clockface.db");
    for lose in ["truncate", "remove"] {
        if lose == "truncate" {
            std::fs::write(&db, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(&db);
        }
        for args in [
            &["bench", "append", "--count", "1"][..],
            &["verify"][..],
            &["device", "show"][..],
        ] {
            let (code, out, err) = kiosk(&data, args);
            assert_eq!(code, 1, "{args:?} ({lose}): {out}{err}");
            assert!(
                err.contains("clockface.db") && err.contains("store reinit --i-understand"),
                "{args:?} ({lose}): {err}"
            );
        }
        assert_eq!(std::fs::read(data.join("device.key")).unwrap(), key);
        assert!(!db.exists() || std::fs::metadata(&db).unwrap().len() == 0);
    }
    // The way on is explicit, archives the old keys, and is audited in the new store.
    let (code, _, err) = kiosk(&data, &["store", "reinit"]);
    assert_eq!(code, 2, "{err}");
    let (code, out, err) = kiosk(&data, &["store", "reinit", "--i-understand"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("the old keys are in"), "{out}");
    let archive = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("archived-keys-")
        })
        .expect("an archive");
    assert_eq!(std::fs::read(archive.join("device.key")).unwrap(), key);
    assert_ne!(device_id(&data), old_id);
    let (code, _, err) = kiosk(&data, &["verify"]);
    assert_eq!(code, 0, "{err}");
    let actions: Vec<String> = common::raw_db(&data)
        .prepare("SELECT action FROM audit")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(actions, ["store_reinitialised"]);
    // A readable store is never reinitialised.
    let (code, _, err) = kiosk(&data, &["store", "reinit", "--i-understand"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not lost"), "{err}");
}

/// A pair request for a new device id under `sk`, with the proof of the key.
fn proven_pairing(sk: &SigningKey, code: String, name: &str) -> PairRequest {
    let device_id = uuid::Uuid::now_v7();
    let public_key = hex::encode(sk.verifying_key().as_bytes());
    let proof = hex::encode(
        sk.sign(&pairing_proof_message(&code, device_id, &public_key))
            .to_bytes(),
    );
    PairRequest {
        code,
        device_id,
        public_key,
        name: name.into(),
        proof: Some(proof),
        data_region: String::new(),
    }
}

/// A hub with one device paired (with its proof), and that device's key.
fn hub_and_device(dir: &Path) -> (HubDb, clockface::hub::db::pairing::Device, SigningKey) {
    let mut hub = HubDb::open(&dir.join("hub.db")).unwrap();
    let now = SystemClock::new().wall_ms();
    let code = hub
        .create_pairing_code("Plant 7", 3_600_000, None, now)
        .unwrap();
    let sk = SigningKey::from_bytes(&[11; 32]);
    let resp = hub.pair(&proven_pairing(&sk, code, "Door 1"), now).unwrap();
    let device = hub.device_by_token(&resp.token).unwrap().unwrap();
    (hub, device, sk)
}

/// A record signed by `sk`, as only that kiosk could make it, with fields set by `edit`.
fn signed(
    sk: &SigningKey,
    device: uuid::Uuid,
    seq: u64,
    edit: impl FnOnce(&mut Record),
) -> Vec<u8> {
    let mut r = Record {
        uuid: uuid::Uuid::now_v7(),
        device_id: device,
        seq,
        outcome: Outcome::Accepted,
        employee_id: "E1".into(),
        format: 2,
        punch: Punch::In,
        method: Method::BadgeFace,
        reason: String::new(),
        wall_ms: SystemClock::new().wall_ms(),
        clock_synced: true,
        boot_id: [0; 16],
        monotonic_ns: 1,
        liveness: Some(0.05),
        match_score: Some(0.8),
        policy_version: 1,
        prev_hash: [0; 32],
        signature: [0; 64],
    };
    edit(&mut r);
    r.signature = sk.sign(&r.signed_bytes()).to_bytes();
    r.to_bytes()
}

#[test]
fn the_hub_checks_what_a_signed_record_says() {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, device, sk) = hub_and_device(dir.path());
    let now = SystemClock::new().wall_ms();
    let cases: Vec<(u64, Vec<u8>, &str)> = vec![
        (
            0,
            signed(&sk, device.id, 0, |r| r.prev_hash = [7; 32]),
            "seq",
        ),
        (
            1,
            signed(&sk, device.id, 1, |r| r.prev_hash = [7; 32]),
            "prev_hash",
        ),
        (
            1,
            signed(&sk, device.id, 1, |r| r.employee_id.clear()),
            "employee id",
        ),
        (
            1,
            signed(&sk, device.id, 1, |r| r.employee_id = "E".repeat(5000)),
            "employee id",
        ),
        (
            1,
            signed(&sk, device.id, 1, |r| r.employee_id = "E1\r\nE2".into()),
            "employee id",
        ),
        (
            1,
            signed(&sk, device.id, 1, |r| r.liveness = Some(f32::NAN)),
            "liveness",
        ),
    ];
    for (seq, bytes, field) in cases {
        let entry = UploadEntry {
            seq,
            entry: base64::engine::general_purpose::STANDARD.encode(&bytes),
        };
        let resp = hub.ingest(&device, Chain::Checkins, &[entry], now).unwrap();
        assert_eq!(resp.acks[0].status, AckStatus::Rejected, "{field}");
        assert!(
            resp.acks[0].reason.contains(field),
            "{field}: {}",
            resp.acks[0].reason
        );
    }
    assert_eq!(hub.count(Chain::Checkins).unwrap(), 0);
    // A sound record is stored, and a formula in its employee id reaches no spreadsheet.
    let good = signed(&sk, device.id, 1, |r| {
        r.employee_id = "=HYPERLINK(\"x\")".into()
    });
    let entry = UploadEntry {
        seq: 1,
        entry: base64::engine::general_purpose::STANDARD.encode(&good),
    };
    let resp = hub.ingest(&device, Chain::Checkins, &[entry], now).unwrap();
    assert_eq!(
        resp.acks[0].status,
        AckStatus::Stored,
        "{}",
        resp.acks[0].reason
    );
    let mut csv = Vec::new();
    hub.timesheet(0, i64::MAX, &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert!(
        !csv.contains(",=HYPERLINK") && !csv.contains("\n=HYPERLINK"),
        "{csv}"
    );
}

#[test]
fn the_kiosk_export_neutralises_formula_cells() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = common::open(dir.path());
    store.append(&common::checkin("=1+2")).unwrap();
    store.append(&common::checkin("@SUM(A1)")).unwrap();
    let mut out = Vec::new();
    store
        .export(
            None,
            None,
            clockface::store::export::ExportFormat::Csv,
            &clockface::base::zone::SiteZone::default(),
            &mut out,
            &|_| {},
        )
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(",'=1+2,") && text.contains(",'@SUM(A1),"),
        "{text}"
    );
}

#[test]
fn control_characters_in_names_are_refused_where_they_enter() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let hub = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_clockface-hub"))
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = hub(&["pairing-code", "--site", "Plant\r\x1b[2KFAKE ok"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("U+000D"), "{err}");
    let csv = dir.path().join("r.csv");
    std::fs::write(&csv, "id,display_name\nE1,\"Ada\x1b[31m\"\n").unwrap();
    let (code, err) = hub(&["roster", "import", csv.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("display_name") && err.contains("U+001B"),
        "{err}"
    );
    // A device name with a carriage return is refused at pairing, by the hub.
    let mut h = HubDb::open(&db).unwrap();
    let now = SystemClock::new().wall_ms();
    let code = h.create_pairing_code("S", 3_600_000, None, now).unwrap();
    let sk = SigningKey::from_bytes(&[12; 32]);
    let e = h
        .pair(&proven_pairing(&sk, code, "Door 1\rDoor 2"), now)
        .unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.message.contains("U+000D"), "{}", e.message);
    // And in the kiosk's own config.
    let problems =
        clockface::base::config::check_str("[device]\nname = \"Door\\r1\"\n").unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.key == "device.name" && p.message.contains("U+000D")),
        "{problems:?}"
    );
}

/// A PNG whose header declares `w`x`h` 8-bit greyscale, with a tiny (invalid) image body:
/// enough for a reader that trusts the header.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    fn crc(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let chunk = |kind: &[u8], body: &[u8]| {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        let mut kb = kind.to_vec();
        kb.extend_from_slice(body);
        v.extend_from_slice(&kb);
        v.extend_from_slice(&crc(&kb).to_be_bytes());
        v
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[test]
fn an_image_that_would_inflate_is_refused_by_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.png");
    std::fs::write(&bomb, png_header_only(20_000, 20_000)).unwrap();
    let e = clockface::base::frame::Frame::open(&bomb)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bomb.png") && e.contains("20000x20000"), "{e}");
    let (code, _, err) = common::run(&["vision", "detect", bomb.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("20000x20000") && err.contains("megapixels"),
        "{err}"
    );
    // A normal photo still opens.
    let photo = clockface::base::config::dev_cache().join("photos/obama.jpg");
    assert!(clockface::base::frame::Frame::open(&photo).is_ok());
}

#[test]
fn exit_codes_follow_the_readme_for_damaged_models_and_a_backend_that_breaks_the_protocol() {
    use common::net::{Fault, FaultProxy, TestHub};
    let dir = tempfile::tempdir().unwrap();
    // A damaged model is the installation's problem: exit 1, the file named.
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    for e in std::fs::read_dir(clockface::base::config::dev_cache().join("models")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, models.join(p.file_name().unwrap())).unwrap();
        }
    }
    let det = models.join(clockface::vision::DETECTOR_FILE);
    let mut bytes = std::fs::read(&det).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&det, bytes).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!("[vision]\nmodels_dir = {:?}\n", models.to_str().unwrap()),
    )
    .unwrap();
    let photo = clockface::base::config::dev_cache().join("photos/obama.jpg");
    let (code, _, err) = common::run(&[
        "--config",
        cfg.to_str().unwrap(),
        "vision",
        "detect",
        photo.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(clockface::vision::DETECTOR_FILE), "{err}");
    // A backend that answers garbage: exit 1 too, and nothing is lost (the next round syncs).
    let hub = TestHub::start();
    let proxy = FaultProxy::start(hub.addr);
    let data = dir.path().join("kiosk");
    let (code, _, err) = kiosk(&data, &["bench", "append", "--count", "5"]);
    assert_eq!(code, 0, "{err}");
    let code_ = hub.pairing_code();
    let (code, _, err) = kiosk(&data, &["pair", "--code", &code_, "--url", &proxy.url]);
    assert_eq!(code, 0, "{err}");
    proxy.push([Fault::Malformed]);
    let (code, out, err) = kiosk(&data, &["sync"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("broke the protocol"), "{err}");
    let (code, out, err) = kiosk(&data, &["sync"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("synced 5 check-ins"), "{out}");
}

#[test]
fn the_database_is_owner_only_and_a_wide_data_dir_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, err) = kiosk(&data, &["bench", "append", "--count", "2"]);
    assert_eq!(code, 0, "{err}");
    for f in ["clockface.db", "clockface.db-wal", "device.key", "data.key"] {
        let p = data.join(f);
        if p.exists() {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f} has mode {mode:o}");
        }
    }
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, _, err) = kiosk(&data, &["bench", "append", "--count", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("chmod 700") && err.contains("0755"), "{err}");
}

/// The record's signature replaced by one whose R carries an order-8 component: it passes
/// the cofactored batch equation and fails the strict one (what OpenSSL also refuses).
fn torsion_signed(sk: &SigningKey, rec: &mut Record) {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};
    let msg = rec.signed_bytes();
    let r = Scalar::from_bytes_mod_order([77; 32]);
    let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[1]).compress();
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(big_r.as_bytes())
            .chain_update(sk.verifying_key().as_bytes())
            .chain_update(&msg),
    );
    let s = r + k * sk.to_scalar();
    rec.signature[..32].copy_from_slice(big_r.as_bytes());
    rec.signature[32..].copy_from_slice(s.as_bytes());
}

#[test]
fn a_torsion_signature_is_named_by_verify_and_refused_by_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, err) = kiosk(&data, &["bench", "append", "--count", "5"]);
    assert_eq!(code, 0, "{err}");
    let seed: [u8; 32] = std::fs::read(data.join("device.key"))
        .unwrap()
        .try_into()
        .unwrap();
    let sk = SigningKey::from_bytes(&seed);
    // Only the device key can make this: the newest record, re-signed the torsion way.
    let conn = common::raw_db(&data);
    let bytes: Vec<u8> = conn
        .query_row("SELECT bytes FROM records WHERE seq = 5", [], |r| r.get(0))
        .unwrap();
    let mut rec = Record::decode(&bytes).unwrap();
    torsion_signed(&sk, &mut rec);
    assert!(
        sk.verifying_key()
            .verify_strict(
                &rec.signed_bytes(),
                &ed25519_dalek::Signature::from_bytes(&rec.signature)
            )
            .is_err()
    );
    conn.execute(
        "UPDATE records SET bytes = ?1 WHERE seq = 5",
        [rec.to_bytes()],
    )
    .unwrap();
    drop(conn);
    let (code, out, err) = kiosk(&data, &["verify"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("record 5") && err.contains("signature"),
        "{err}"
    );
    // The hub refuses it too (its batch check is the same one).
    let (mut hub, device, hub_sk) = hub_and_device(dir.path());
    let mut r = Record::decode(&signed(&hub_sk, device.id, 1, |_| {})).unwrap();
    torsion_signed(&hub_sk, &mut r);
    let entry = UploadEntry {
        seq: 1,
        entry: base64::engine::general_purpose::STANDARD.encode(r.to_bytes()),
    };
    let resp = hub
        .ingest(
            &device,
            Chain::Checkins,
            &[entry],
            SystemClock::new().wall_ms(),
        )
        .unwrap();
    assert_eq!(
        resp.acks[0].status,
        AckStatus::Rejected,
        "{:?}",
        resp.acks[0]
    );
    assert!(
        resp.acks[0].reason.contains("signature"),
        "{}",
        resp.acks[0].reason
    );
}

#[test]
fn a_weak_public_key_in_a_store_is_refused_when_it_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, err) = kiosk(&data, &["bench", "append", "--count", "1"]);
    assert_eq!(code, 0, "{err}");
    let mut identity = [0u8; 32];
    identity[0] = 1;
    common::raw_db(&data)
        .execute(
            "UPDATE settings SET value = ?1 WHERE key = 'device_public_key'",
            [hex::encode(identity)],
        )
        .unwrap();
    let (code, out, err) = kiosk(&data, &["verify"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("device_public_key") && err.contains("small-order"),
        "{err}"
    );
}
