//! The update client (`clockface update run`) against gooseBit 0.2.12, a real hawkBit DDI
//! server from PyPI, on loopback: registration, an assigned bundle downloaded, checked,
//! installed and confirmed after the reboot, and every way it can go wrong (another CA, another
//! board, a hash mismatch, a rolled-back trial slot, a cut and a stalled download, a full
//! disk, a bad token file, a server that answers garbage). Bundles are real RAUC bundles from
//! `images/make-bundle`; the A/B pair is the simulated one (`installer = "sim"`), which checks
//! signatures with the real `rauc`. The install on the appliance itself is in
//! `images/boot-test`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;

fn images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("images")
}

fn python() -> PathBuf {
    let p = clockface::base::config::dev_cache().join("goosebit-venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: `./dev test` installs gooseBit (pinned) first",
        p.display()
    );
    p
}

fn site_script() -> &'static str {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/partners/goosebit_site.py"
    )
}

fn sh(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&common::sh(cmd).stdout).into_owned()
}

/// gooseBit serving on a loopback port from its own directory, killed on drop.
struct GooseBit {
    url: String,
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl GooseBit {
    fn start(dir: &Path) -> GooseBit {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("goosebit.log")).unwrap();
        let child = Command::new(python())
            .arg(site_script())
            .args(["serve", "--dir"])
            .arg(dir)
            .args(["--port", &port.to_string(), "--poll", "00:00:10"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(90),
                "gooseBit did not start: {}",
                std::fs::read_to_string(dir.join("goosebit.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        GooseBit {
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir: dir.to_path_buf(),
            child,
        }
    }

    fn site(&self, args: &[&str]) -> String {
        sh(Command::new(python())
            .arg(site_script())
            .arg(args[0])
            .args(["--url", &self.url])
            .args(&args[1..]))
    }

    fn upload(&self, bundle: &Path) -> String {
        self.site(&["upload", bundle.to_str().unwrap()])
            .trim()
            .to_string()
    }

    fn assign(&self, device: &str, software: &str) {
        // Forced, so that an action after a failed one is offered again (gooseBit holds a
        // device in its error state otherwise) and the same version may be reinstalled.
        self.site(&["assign", device, software, "--force"]);
    }

    fn device(&self, id: &str) -> Value {
        serde_json::from_str(&self.site(&["device", id])).unwrap()
    }

    /// The artifact file gooseBit stores for a software (by its sha1 directory).
    fn artifact(&self, name: &str) -> PathBuf {
        let root = self.dir.join("artifacts");
        for d in std::fs::read_dir(&root).unwrap() {
            let p = d.unwrap().path().join(name);
            if p.exists() {
                return p;
            }
        }
        panic!("gooseBit stores no {name} under {}", root.display())
    }
}

impl Drop for GooseBit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two CAs and a few signed bundles of a small root file system.
struct Bundles {
    dir: PathBuf,
    ca: PathBuf,
}

impl Bundles {
    fn new(dir: &Path) -> Bundles {
        for (name, cn) in [("pki", "Fleet"), ("other-pki", "Someone else")] {
            sh(Command::new(images().join("make-pki"))
                .arg(dir.join(name))
                .arg(cn));
        }
        let tree = dir.join("tree");
        std::fs::create_dir(&tree).unwrap();
        let mut noise = vec![0u8; 3_000_000];
        rand::RngCore::fill_bytes(
            &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(17),
            &mut noise,
        );
        std::fs::write(tree.join("payload"), noise).unwrap();
        sh(Command::new("mkfs.ext4")
            .args(["-q", "-d"])
            .arg(&tree)
            .arg(dir.join("rootfs.ext4"))
            .arg("8M"));
        Bundles {
            dir: dir.to_path_buf(),
            ca: dir.join("pki/ca.cert.pem"),
        }
    }

    fn make(&self, version: &str, compatible: &str, pki: &str) -> PathBuf {
        let out = self.dir.join(format!("clockface-{version}.raucb"));
        sh(Command::new(images().join("make-bundle"))
            .arg("--rootfs")
            .arg(self.dir.join("rootfs.ext4"))
            .args(["--version", version, "--compatible", compatible, "--pki"])
            .arg(self.dir.join(pki))
            .arg("--out")
            .arg(&out));
        out
    }
}

/// A kiosk's update client: a config, a state dir, and `update run --once`.
struct Client {
    config: PathBuf,
    state: PathBuf,
}

impl Client {
    fn new(dir: &Path, server: &str, ca: &Path, extra: &str) -> Client {
        let state = dir.join("update-state");
        let config = common::write_config(
            dir,
            &dir.join("data"),
            &format!(
                "[update]\nserver = {server:?}\ncontroller_id = \"kiosk-7\"\ninstaller = \"sim\"\nstate_dir = {:?}\nkeyring = {:?}\ncompatible = \"clockface-rpi-arm64\"\nwindow = \"any\"\nnotice_file = {:?}\ntimeout_seconds = 5\n{extra}",
                state.display().to_string(),
                ca.display().to_string(),
                state.join("notice").display().to_string()
            ),
        );
        Client { config, state }
    }

    fn once_raw(&self) -> (i32, String, String) {
        common::run(&[
            "--config",
            self.config.to_str().unwrap(),
            "update",
            "run",
            "--once",
        ])
    }

    fn once(&self) -> Value {
        let (code, out, err) = self.once_raw();
        assert_eq!(code, 0, "update run --once: {out}{err}");
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}{err}"))
    }

    fn slots(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.state.join("sim-slots.json")).unwrap()).unwrap()
    }
}

/// The poll ended an action with a failure whose detail says `why`.
fn failed_with(o: &Value, why: &str) {
    assert_eq!(o["outcome"], "finished", "{o}");
    assert_eq!(o["success"], false, "{o}");
    assert!(o["detail"].as_str().unwrap().contains(why), "{o}");
}

/// Polls until gooseBit's view of the device satisfies `f`.
fn until(gb: &GooseBit, id: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let d = gb.device(id);
    assert!(f(&d), "gooseBit: {what}: {d:#}");
    d
}

/// A temp dir with gooseBit serving from it and the bundle maker.
fn site() -> (tempfile::TempDir, GooseBit, Bundles) {
    let dir = tempfile::tempdir().unwrap();
    let gb = GooseBit::start(&dir.path().join("goosebit").tap_mkdir());
    let b = Bundles::new(dir.path());
    (dir, gb, b)
}

#[test]
fn a_goosebit_rollout_is_installed_confirmed_after_the_reboot_and_bad_bundles_are_reported() {
    let (dir, gb, b) = site();
    let d = dir.path();
    let c = Client::new(d, &gb.url, &b.ca, "");

    // Registration: the first poll answers configData with the device's attributes.
    assert_eq!(c.once()["outcome"], "idle");
    let dev = until(&gb, "kiosk-7", "registered with its board", |v| {
        v["hardware"]["model"] == "clockface-rpi-arm64" && v["last_state"] == "Registered"
    });
    assert!(dev["sw_version"].is_string(), "{dev}");

    // 1. The real bundle: downloaded, installed into B, rebooted into, confirmed.
    let good = gb.upload(&b.make("1.4.0", "clockface-rpi-arm64", "pki"));
    gb.assign("kiosk-7", &good);
    let o = c.once();
    assert_eq!(o["outcome"], "rebooting", "{o}");
    assert_eq!(o["slot"], "B");
    let slots = c.slots();
    assert_eq!(slots["booted"], "B", "{slots}");
    let o = c.once();
    assert_eq!(o["outcome"], "finished", "{o}");
    assert_eq!(o["success"], true, "{o}");
    let dev = until(&gb, "kiosk-7", "finished with success", |v| {
        v["last_state"] == "Finished" && v["sw_version"] == "1.4.0"
    });
    let log = dev["log"].as_str().unwrap();
    for step in [
        "downloading clockface-1.4.0.raucb",
        "downloaded 100%",
        "installed into slot B",
        "rebooting into slot B",
        "running 1.4.0 on slot B",
    ] {
        assert!(log.contains(step), "gooseBit's log lacks {step:?}:\n{log}");
    }
    assert!(
        !c.state
            .join("action-".to_string() + &good + ".raucb")
            .exists(),
        "the bundle is deleted once installed"
    );
    assert_eq!(c.once()["outcome"], "idle", "nothing more to do");

    // 2. Signed by another CA: failure naming the signature, still on B.
    let foreign = gb.upload(&b.make("1.5.0", "clockface-rpi-arm64", "other-pki"));
    gb.assign("kiosk-7", &foreign);
    let o = c.once();
    assert_eq!(
        (o["outcome"].as_str(), o["success"].as_bool()),
        (Some("finished"), Some(false)),
        "{o}"
    );
    assert!(
        o["detail"]
            .as_str()
            .unwrap()
            .contains("signature verification failed"),
        "{o}"
    );
    let dev = until(&gb, "kiosk-7", "failed", |v| v["last_state"] == "Error");
    assert!(
        dev["log"]
            .as_str()
            .unwrap()
            .contains("signature verification failed"),
        "{dev}"
    );
    assert_eq!(
        (c.slots()["booted"].as_str(), c.slots()["trial"].as_null()),
        (Some("B"), Some(()))
    );

    // 3. For another board: gooseBit itself will not assign it; were it assigned anyway (a
    //    server that does not check), the kiosk's installer refuses it.
    let other_bundle = b.make("1.6.0", "some-other-board", "pki");
    let other = gb.upload(&other_bundle);
    let refused = Command::new(python())
        .arg(site_script())
        .args(["assign", "--url", &gb.url, "kiosk-7", &other, "--force"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not compatible"),
        "{refused:?}"
    );
    let mut slots =
        clockface::update::slots::SimSlots::open(&c.state, &b.ca, "clockface-rpi-arm64");
    let why = clockface::update::slots::Slots::install(&mut slots, &other_bundle).unwrap_err();
    assert!(why.contains("Compatible mismatch"), "{why}");
    assert_eq!(c.slots()["trial"], Value::Null, "nothing armed");

    // 4. The artifact changed on the server after upload: the hash check refuses it.
    let v17 = b.make("1.7.0", "clockface-rpi-arm64", "pki");
    let id17 = gb.upload(&v17);
    let stored = gb.artifact("clockface-1.7.0.raucb");
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[100_000] ^= 0x55;
    std::fs::write(&stored, bytes).unwrap();
    gb.assign("kiosk-7", &id17);
    let o = c.once();
    assert_eq!(o["success"], false, "{o}");
    assert!(
        o["detail"].as_str().unwrap().contains("sha1 mismatch"),
        "{o}"
    );
    assert_eq!(c.slots()["booted"], "B");

    // 5. A trial slot that fails its boot check rolls back: reported from the old slot.
    let id18 = gb.upload(&b.make("1.8.0", "clockface-rpi-arm64", "pki"));
    gb.assign("kiosk-7", &id18);
    std::fs::write(c.state.join("trial-fails"), "").unwrap();
    assert_eq!(c.once()["outcome"], "rebooting");
    std::fs::remove_file(c.state.join("trial-fails")).unwrap();
    let o = c.once();
    failed_with(
        &o,
        "slot A did not pass its boot check and was rolled back; slot B runs",
    );
    assert_eq!(c.slots()["booted"], "B");
    let dev = until(&gb, "kiosk-7", "rollback reported", |v| {
        v["last_state"] == "Error"
    });
    assert_eq!(dev["sw_version"], "1.4.0", "{dev}");
}

/// A loopback TCP proxy that breaks the first response passing `cut_at` bytes: it closes the
/// connection (`stall` false) or stops sending without closing (`stall` true).
struct CutProxy {
    url: String,
    sent: Arc<AtomicU64>,
    cuts: Arc<AtomicU64>,
}

impl CutProxy {
    fn start(upstream: u16, cut_at: u64, stall: bool) -> CutProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
        let sent = Arc::new(AtomicU64::new(0));
        let cuts = Arc::new(AtomicU64::new(0));
        let (s2, c2) = (sent.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in l.incoming().flatten() {
                let (sent, cuts) = (s2.clone(), c2.clone());
                std::thread::spawn(move || {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        return;
                    };
                    let (mut c_read, mut s_write) =
                        (client.try_clone().unwrap(), server.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c_read, &mut s_write);
                    });
                    let (mut from, mut to) = (server, client);
                    let mut buf = [0u8; 16384];
                    let mut mine = 0u64;
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        mine += n as u64;
                        if mine > cut_at && cuts.load(Ordering::SeqCst) == 0 {
                            cuts.store(1, Ordering::SeqCst);
                            if stall {
                                std::thread::sleep(Duration::from_secs(30));
                            }
                            let _ = to.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                        sent.fetch_add(n as u64, Ordering::SeqCst);
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CutProxy { url, sent, cuts }
    }
}

#[test]
fn a_download_cut_or_stalled_halfway_resumes_where_it_stopped() {
    let (dir, gb, b) = site();
    let d = dir.path();
    let bundle = b.make("2.0.0", "clockface-rpi-arm64", "pki");
    let size = std::fs::metadata(&bundle).unwrap().len();
    let id = gb.upload(&bundle);
    for stall in [false, true] {
        let kdir = d.join(format!("kiosk-{stall}")).tap_mkdir();
        let proxy = CutProxy::start(gb.port, size / 2, stall);
        let c = Client::new(&kdir, &proxy.url, &b.ca, "");
        let name = format!("kiosk-{stall}");
        std::fs::write(
            &c.config,
            std::fs::read_to_string(&c.config)
                .unwrap()
                .replace("kiosk-7", &name),
        )
        .unwrap();
        assert_eq!(c.once()["outcome"], "idle");
        gb.assign(&name, &id);
        let o = c.once();
        assert_eq!(o["outcome"], "rebooting", "stall={stall}: {o}");
        assert_eq!(
            proxy.cuts.load(Ordering::SeqCst),
            1,
            "the transfer was broken once"
        );
        // Resumed, not restarted: about one bundle crossed the proxy, not one and a half.
        let moved = proxy.sent.load(Ordering::SeqCst);
        assert!(
            moved < size + size / 4,
            "stall={stall}: {moved} bytes moved for a {size}-byte bundle"
        );
        let o = c.once();
        assert_eq!(o["success"], true, "stall={stall}: {o}");
        let dev = gb.device(&name);
        assert_eq!(dev["last_state"], "Finished", "{dev}");
    }
}

#[test]
fn bad_servers_tokens_and_disks_are_named_and_leave_the_slot_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let b = Bundles::new(d);

    // A server that answers garbage: the poll names it; nothing changes.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!");
        }
    });
    let c = Client::new(&d.join("g").tap_mkdir(), &garbage, &b.ca, "");
    let o = c.once();
    assert_eq!(o["outcome"], "unreachable", "{o}");
    assert!(
        o["reason"].as_str().unwrap().contains("not DDI JSON"),
        "{o}"
    );
    let o = Client::new(&d.join("n").tap_mkdir(), "http://127.0.0.1:9", &b.ca, "").once();
    assert_eq!(o["outcome"], "unreachable", "{o}");

    // Token files: missing, readable by others, empty.
    let t = d.join("token");
    for (setup, want) in [
        (None, "cannot read"),
        (Some(("secret\n", 0o644)), "must be 0600"),
        (Some(("\n", 0o600)), "one token"),
    ] {
        let _ = std::fs::remove_file(&t);
        if let Some((text, mode)) = setup {
            std::fs::write(&t, text).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&t, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let c = Client::new(
            &d.join(format!("t{want}").replace(' ', "")).tap_mkdir(),
            "http://127.0.0.1:9",
            &b.ca,
            &format!("token_file = {:?}\n", t.display().to_string()),
        );
        let (code, out, err) = c.once_raw();
        assert_eq!(code, 2, "{want}: {out}{err}");
        assert!(
            err.contains("update.token_file") && err.contains(want),
            "{want}: {err}"
        );
    }

    // gooseBit with a token that works, then a full data partition.
    let gb = GooseBit::start(&d.join("goosebit").tap_mkdir());
    let id = gb.upload(&b.make("3.0.0", "clockface-rpi-arm64", "pki"));
    let small = d.join("small").tap_mkdir();
    let Some(disk) = common::SmallDisk::mount(&small, "size=4m") else {
        return;
    };
    let c = Client::new(&small, &gb.url, &b.ca, "");
    assert_eq!(c.once()["outcome"], "idle");
    gb.assign("kiosk-7", &id);
    let o = c.once();
    drop(disk);
    failed_with(&o, "the data partition is full");
    let dev = gb.device("kiosk-7");
    assert!(
        dev["log"]
            .as_str()
            .unwrap()
            .contains("the data partition is full"),
        "{dev}"
    );
}

#[test]
fn the_reboot_waits_for_a_check_in_and_shows_the_notice_first() {
    let (dir, gb, b) = site();
    let d = dir.path();
    let id = gb.upload(&b.make("4.0.0", "clockface-rpi-arm64", "pki"));
    // A stand-in for the kiosk's health endpoint whose answer the test sets: busy with a
    // check-in, then idle and showing the notice once it exists.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let health = l.local_addr().unwrap().to_string();
    let busy = Arc::new(AtomicU64::new(1));
    let state = d.join("update-state");
    let (b2, notice) = (busy.clone(), state.join("notice"));
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = format!(
                "{{\"ok\":true,\"device_id\":\"kiosk-9\",\"site\":\"Door 2\",\"device_name\":\"North\",\"busy\":{},\"updating\":{}}}",
                b2.load(Ordering::SeqCst) == 1,
                notice.exists()
            );
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let c = Client::new(d, &gb.url, &b.ca, &format!("kiosk_health = {health:?}\n"));
    // No controller id in the config: the kiosk's device id is used.
    std::fs::write(
        &c.config,
        std::fs::read_to_string(&c.config)
            .unwrap()
            .replace("controller_id = \"kiosk-7\"\n", ""),
    )
    .unwrap();
    assert_eq!(c.once()["outcome"], "idle");
    let dev = gb.device("kiosk-9");
    assert_eq!(dev["hardware"]["model"], "clockface-rpi-arm64", "{dev}");
    gb.assign("kiosk-9", &id);
    let o = c.once();
    assert_eq!(o["outcome"], "waiting_to_reboot", "{o}");
    assert_eq!(o["reason"], "a check-in is under way", "{o}");
    assert_eq!(c.slots()["booted"], "A", "no reboot during a check-in");
    assert!(!state.join("notice").exists());
    busy.store(0, Ordering::SeqCst);
    let o = c.once();
    assert_eq!(o["outcome"], "rebooting", "{o}");
    assert_eq!(c.slots()["booted"], "B");
    assert_eq!(c.once()["success"], true);
}

/// `mkdir -p` inline.
trait TapMkdir {
    fn tap_mkdir(self) -> PathBuf;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> PathBuf {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

/// A minimal DDI server in the test (an extra beside gooseBit, for what gooseBit never sends:
/// `cancelAction`, sha256 hashes, a soft `attempt` action, a 404 artifact). Answers from a
/// script the test changes, and records every request as "METHOD PATH BODY".
struct StandIn {
    url: String,
    poll: Arc<std::sync::Mutex<String>>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

impl StandIn {
    fn start(bundle: Vec<u8>) -> StandIn {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
        let poll = Arc::new(std::sync::Mutex::new("{}".to_string()));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (p, s, base) = (poll.clone(), seen.clone(), url.clone());
        let sha = {
            use sha2::Digest;
            sha2::Sha256::digest(&bundle)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 65536];
                let head_end = loop {
                    let n = c.read(&mut tmp).unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i + 4);
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = c.read(&mut tmp).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                }
                let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                let mut parts = head.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                );
                let path = path.split('?').next().unwrap_or("").to_string();
                s.lock().unwrap().push(format!("{method} {path} {body}"));
                let ctl = "/DEFAULT/controller/v1/kiosk-7";
                let (status, bytes): (&str, Vec<u8>) = match path.strip_prefix(ctl).unwrap_or("?") {
                    "" => (
                        "200 OK",
                        p.lock().unwrap().replace("BASE", &base).into_bytes(),
                    ),
                    "/deploymentBase/5" | "/deploymentBase/6" => {
                        let a = if path.ends_with('5') {
                            "bundle"
                        } else {
                            "gone"
                        };
                        (
                            "200 OK",
                            format!(
                                r#"{{"id":"{}","deployment":{{"download":"attempt","update":"attempt","chunks":[{{"part":"os","version":"5.0.0","name":"clockface","artifacts":[{{"filename":"clockface-5.0.0.raucb","hashes":{{"sha256":"{sha}","sha1":"0000"}},"size":{},"_links":{{"download-http":{{"href":"{base}/artifacts/{a}"}}}}}}]}}]}}}}"#,
                                &path[path.len() - 1..],
                                bundle.len()
                            )
                            .into_bytes(),
                        )
                    }
                    "/cancelAction/9" => (
                        "200 OK",
                        br#"{"id":"9","cancelAction":{"stopId":"5"}}"#.to_vec(),
                    ),
                    _ if path == "/artifacts/bundle" => ("200 OK", bundle.clone()),
                    _ if method == "POST" || method == "PUT" => ("200 OK", b"{}".to_vec()),
                    _ => ("404 Not Found", b"{}".to_vec()),
                };
                let _ = write!(
                    c,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    bytes.len()
                );
                let _ = c.write_all(&bytes);
            }
        });
        StandIn { url, poll, seen }
    }

    fn offer(&self, json: &str) {
        *self.poll.lock().unwrap() = json.to_string();
    }

    fn feedback(&self, path: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| r.strip_prefix(&format!("POST /DEFAULT/controller/v1/kiosk-7{path} ")))
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

#[test]
fn a_soft_action_waits_for_the_window_and_a_cancel_takes_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let b = Bundles::new(d);
    let bundle = std::fs::read(b.make("5.0.0", "clockface-rpi-arm64", "pki")).unwrap();
    let server = StandIn::start(bundle);
    // A window that is not now, in UTC: the soft action installs but does not reboot.
    let h = (chrono::Utc::now().timestamp() / 3600 + 12) % 24;
    let c = Client::new(d, &server.url, &b.ca, "");
    let text = std::fs::read_to_string(&c.config).unwrap().replace(
        "window = \"any\"",
        &format!("window = \"{h:02}:00-{:02}:00\"", (h + 1) % 24),
    );
    std::fs::write(&c.config, format!("{text}[site]\ntime_zone = \"UTC\"\n")).unwrap();
    server.offer(r#"{"config":{"polling":{"sleep":"00:00:20"}},"_links":{"deploymentBase":{"href":"BASE/DEFAULT/controller/v1/kiosk-7/deploymentBase/5?c=1"}}}"#);
    let o = c.once();
    assert_eq!(o["outcome"], "waiting_to_reboot", "{o}");
    assert!(
        o["reason"]
            .as_str()
            .unwrap()
            .contains("outside the maintenance window"),
        "{o}"
    );
    assert_eq!(
        (c.slots()["booted"].as_str(), c.slots()["trial"].as_str()),
        (Some("A"), Some("B"))
    );
    let fb = server.feedback("/deploymentBase/5/feedback");
    assert!(
        fb.iter().any(|f| f["status"]["details"][0]
            .as_str()
            .unwrap()
            .contains("installed into slot B")),
        "{fb:?}"
    );
    // The server cancels it before the window opens: the trial boot is taken back.
    server.offer(r#"{"_links":{"cancelAction":{"href":"BASE/DEFAULT/controller/v1/kiosk-7/cancelAction/9"}}}"#);
    let o = c.once();
    assert_eq!(o["outcome"], "canceled", "{o}");
    assert_eq!(c.slots()["trial"], Value::Null, "disarmed");
    let fb = server.feedback("/cancelAction/9/feedback");
    assert_eq!(fb.len(), 1, "{fb:?}");
    assert_eq!(fb[0]["status"]["execution"], "closed");
    assert_eq!(fb[0]["status"]["result"]["finished"], "success");
    // An artifact the server no longer has: a failure that names it.
    server.offer(r#"{"_links":{"deploymentBase":{"href":"BASE/DEFAULT/controller/v1/kiosk-7/deploymentBase/6"}}}"#);
    let o = c.once();
    failed_with(&o, "no such artifact (HTTP 404)");
    assert_eq!(c.slots()["booted"], "A");
}
