//! The systemd units: `systemd-analyze verify` prints nothing on stderr, and
//! `systemd-analyze security --offline=yes` rates each unit 2.0 or better; the appliance
//! image's own units (provisioning, boot check, data partition growth) verify cleanly too.

use std::path::Path;
use std::process::Command;

/// Copies a unit into `dir` with ExecStart pointing at the freshly built binary (verify needs
/// the executable to exist).
fn staged(unit: &str, dir: &Path) -> std::path::PathBuf {
    staged_from("systemd", unit, dir)
}

fn staged_from(folder: &str, unit: &str, dir: &Path) -> std::path::PathBuf {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(top.join(folder).join(unit))
        .unwrap()
        .replace(
            "/usr/lib/clockface/",
            &format!("{}/", top.join("images/rootfs/usr/lib/clockface").display()),
        )
        .replace(
            "/usr/bin/clockface-hub",
            env!("CARGO_BIN_EXE_clockface-hub"),
        )
        .replace(
            "/usr/bin/clockface ",
            &format!("{} ", env!("CARGO_BIN_EXE_clockface")),
        );
    let dst = dir.join(unit);
    std::fs::write(&dst, text).unwrap();
    dst
}

/// Runs `systemd-analyze verify` on a staged unit and fails on any complaint.
fn assert_verifies(unit: &str, path: &Path) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(path)
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    let err = String::from_utf8_lossy(&out.stderr);
    // systemd-analyze verify exits 0 even on misspelt directives: any stderr is a failure.
    assert!(
        out.status.success() && err.trim().is_empty(),
        "{unit}: {err}"
    );
}

#[test]
fn units_verify_cleanly_and_rate_2_0_or_better() {
    let dir = tempfile::tempdir().unwrap();
    for unit in [
        "clockface.service",
        "clockface-hub.service",
        "clockface-verify.service",
        "clockface-verify.timer",
    ] {
        let path = staged(unit, dir.path());
        assert_verifies(unit, &path);
        if unit.ends_with(".service") {
            let out = Command::new("systemd-analyze")
                .args(["security", "--offline=yes", "--threshold=20"])
                .arg(&path)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{unit} rates worse than 2.0:\n{text}");
            let overall = text
                .lines()
                .find(|l| l.contains("Overall exposure level"))
                .unwrap_or_default();
            eprintln!("{unit}: {overall}");
        }
    }
}

#[test]
fn the_image_units_verify_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for unit in [
        "clockface-provision.service",
        "clockface-boot-ok.service",
        "clockface-grow-data.service",
    ] {
        let path = staged_from("images/rootfs/usr/lib/systemd/system", unit, dir.path());
        assert_verifies(unit, &path);
    }
}

/// The system calls a `SystemCallFilter=` item names, groups expanded by systemd itself.
fn syscalls(item: &str, out: &mut std::collections::BTreeSet<String>) {
    if !item.starts_with('@') {
        out.insert(item.to_owned());
        return;
    }
    let o = Command::new("systemd-analyze")
        .args(["syscall-filter", item])
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    assert!(o.status.success(), "{item}");
    for line in String::from_utf8_lossy(&o.stdout).lines().skip(1) {
        let l = line.trim();
        if !l.is_empty() && !l.starts_with('#') {
            syscalls(l, out);
        }
    }
}

#[test]
fn the_kiosk_unit_lets_it_read_the_clock_sync_flag_it_signs_into_every_entry() {
    // `base::clock` reads the NTP-synchronised flag with adjtimex(2) (glibc uses clock_adjtime
    // on arm64) for every record and audit entry; a filter that blocks it kills the kiosk with
    // SIGSYS at its first entry, which the QEMU boot test saw once a start-up audit existed.
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(top.join("systemd/clockface.service")).unwrap();
    assert!(
        !unit.lines().any(|l| l.trim() == "ProtectClock=yes"),
        "ProtectClock=yes blocks adjtimex even for reading"
    );
    let (mut allowed, mut denied) = (Default::default(), Default::default());
    for line in unit.lines() {
        let Some(v) = line.trim().strip_prefix("SystemCallFilter=") else {
            continue;
        };
        let (set, items) = match v.strip_prefix('~') {
            Some(rest) => (&mut denied, rest),
            None => (&mut allowed, v),
        };
        for item in items.split_whitespace() {
            syscalls(item, set);
        }
    }
    for call in ["adjtimex", "clock_adjtime"] {
        assert!(
            allowed.contains(call) && !denied.contains(call),
            "{call} is not allowed by systemd/clockface.service"
        );
    }
    // And the clock still cannot be set.
    assert!(!allowed.contains("clock_settime") && !allowed.contains("settimeofday"));
    assert!(unit.contains("CapabilityBoundingSet=\n"));
}
