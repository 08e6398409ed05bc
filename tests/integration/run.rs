//! The appliance commands as systemd and a newcomer run them: `clockface run` (READY, SIGTERM,
//! STOPPING) and `clockface demo`.

use crate::common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, run};

/// `clockface run` on `cfg` with stderr captured, and no display: without one the kiosk runs
/// without its screens (and says so).
fn kiosk(cfg: &std::path::Path) -> Command {
    let mut c = Command::new(bin());
    c.args(["--config", cfg.to_str().unwrap(), "run"])
        .env_remove("CLOCKFACE_CONFIG")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("SLINT_BACKEND")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[test]
fn run_notifies_systemd_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("clockface.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\ndata_dir = {:?}\n[camera]\ndevice = \"/dev/video-not-here\"\n[gpio]\nkind = \"sim\"\n[badge]\nkind = \"sim\"\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut child = kiosk(&cfg)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "2000000")
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let mut recv = || {
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(recv().starts_with("READY=1"), "READY first");
    // Without a camera it keeps serving badge + PIN, and keeps pinging the watchdog (twice
    // here: the second ping, a second later, also leaves the camera thread time to have tried
    // the device on a loaded machine).
    assert_eq!(recv(), "WATCHDOG=1");
    assert_eq!(recv(), "WATCHDOG=1");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut last = String::new();
    for _ in 0..5 {
        last = recv();
        if last == "STOPPING=1" {
            break;
        }
    }
    assert_eq!(last, "STOPPING=1");
    let status = child.wait().unwrap();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?}\n{err}");
    assert!(
        err.contains("camera lost") && err.contains("/dev/video-not-here"),
        "the log says why there are no frames:\n{err}"
    );
    let (code, _, e) = run(&["--data-dir", data.to_str().unwrap(), "verify"]);
    assert_eq!(code, 0, "{e}");
}

#[test]
fn run_answers_health_checks_without_camera_or_badge_reader() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let listen = format!("127.0.0.1:{}", common::free_port());
    // No camera and the badge reader unplugged: the kiosk still starts and serves PIN check-in.
    let cfg = common::write_config(
        dir.path(),
        &data,
        &format!(
            "[device]\nname = \"Door 3\"\nsite = \"Depot\"\n[camera]\ndevice = \"/dev/video-not-here\"\n[gpio]\nkind = \"sim\"\n[badge]\nkind = \"evdev\"\ndevice = \"/dev/input/by-id/not-plugged-in\"\n[health]\nlisten = \"{listen}\"\n"
        ),
    );
    let mut child = kiosk(&cfg).spawn().unwrap();
    let (code, out, err) = run(&["health", "--listen", &listen, "--wait", "60", "--json"]);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut log = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(code, 0, "{out}\n{err}\n{log}");
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(h["ok"], true, "{h}");
    assert_eq!(h["face_ok"], false, "no camera, so no face check-in: {h}");
    assert_eq!(h["device_name"], "Door 3");
    assert_eq!(h["site"], "Depot");
    assert_eq!(h["head_seq"], 0);
    assert_eq!(h["paired"], false);
    assert_eq!(h["slot"], "", "not an A/B system");
    assert!(h["db_bytes"].as_u64().unwrap() > 0);
    assert!(h["loop_ms_ago"].as_u64().unwrap() < 10_000);
    assert!(
        h["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("camera")),
        "{h}"
    );
    assert!(status.success(), "{status:?}\n{log}");
    assert!(
        log.contains("badge reader not present"),
        "the log says the reader is missing:\n{log}"
    );
    // Once the kiosk is gone, the health check fails and says where it looked.
    let (code, _, err) = run(&["health", "--listen", &listen]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("nothing answers at http://{listen}/health")),
        "{err}"
    );
}

#[test]
fn the_demo_plays_a_day_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("demo");
    let shots = dir.path().join("screens");
    // At the most verbose log level, so the log can be searched for personal data below.
    let output = Command::new(bin())
        .args(["demo", "--keep", keep.to_str().unwrap()])
        .args(["--screens", shots.to_str().unwrap()])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("SLINT_BACKEND")
        .env("RUST_LOG", "trace")
        .env_remove("CLOCKFACE_CONFIG")
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(output.status.success(), "{out}\n{err}");
    assert!(err.contains("recorded seq=1"), "trace log captured:\n{err}");
    // Names, badge ids and PINs appear on screen (stdout) but never in the log (stderr).
    for secret in [
        "Alex",
        "Morgan",
        "Sam Rivera",
        "Jo Kim",
        "04A1B2C3",
        "04:A1:B2:C3",
        "04D4E5F6",
        "0A0B0C0D",
        "DEADBEEF",
        "ADMIN-0001",
    ] {
        assert!(
            !err.contains(secret),
            "{secret:?} leaked into the log:\n{err}"
        );
    }
    // The demo's six-digit PINs, as whole tokens (timestamps and UUIDs never form one).
    let tokens: Vec<&str> = err.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    for pin in ["739214", "482913", "615370", "920481", "000000"] {
        assert!(!tokens.contains(&pin), "PIN {pin} leaked into the log");
    }
    assert!(
        out.contains("Alex Morgan"),
        "the narration does name people"
    );
    for want in [
        "face check-in ready",
        "3 face templates stored (encrypted); no image kept",
        "consent declined: badge + PIN stays available",
        "✔ Alex Morgan checked in",
        "already checked in",
        "reason face_mismatch",
        "reason liveness_failed",
        "camera: lost",
        "PIN pad for Alex Morgan (camera unavailable)",
        "✔ Sam Rivera checked out",
        "reason unknown_badge",
        "check-in chain: ",
        // The outbox paired from the provisioning code and delivered everything to the hub.
        "records, each verified",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // The hub holds exactly the kiosk's chain, however many attempts a loaded machine made
    // (a slow frame rate can turn one check-out into a challenge and a retry).
    let n: u64 = out
        .split("check-in chain: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no check-in chain count in:\n{out}"));
    assert!(
        n >= 15,
        "a day of the demo writes at least 15 records:\n{out}"
    );
    let hub_line = format!("checkins: {n} entries, seq 1..{n}, head {n}, 0 gap(s), 0 conflict(s)");
    assert!(out.contains(&hub_line), "missing {hub_line:?} in:\n{out}");
    let (code, _, err) = run(&["--data-dir", keep.to_str().unwrap(), "verify"]);
    assert_eq!(code, 0, "{err}");
    // The touchscreen followed the day, headless: one 800x480 PNG per screen change.
    let mut pngs: Vec<String> = std::fs::read_dir(&shots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pngs.sort();
    for page in [
        "idle",
        "admin",
        "consent",
        "enrolling",
        "accepted",
        "already",
        "rejected",
        "pin",
    ] {
        assert!(
            pngs.iter().any(|p| p.ends_with(&format!("-{page}.png"))),
            "no {page} screen in {pngs:?}"
        );
    }
    let first = image::open(shots.join(&pngs[0])).unwrap();
    assert_eq!((first.width(), first.height()), (800, 480));
    // The same day pushed by ADMS into a real HR receiver: every accepted check-in, once.
    crate::hr::adms_takes_the_day(&keep);
}
