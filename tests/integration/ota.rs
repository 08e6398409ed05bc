//! Updates on the build machine: the A/B boot backend RAUC calls (`rauc-pi-boot`) against a
//! boot partition in a temporary directory, and signed bundles from `images/make-bundle` checked
//! by the real `rauc`. The installation itself, on the target, is in `images/boot-test`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::sh;

fn images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("images")
}

/// A boot partition, kernel command line, boot id and reboot-parameter file, all in a temp dir.
struct Board {
    dir: tempfile::TempDir,
}

impl Board {
    fn new() -> Board {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("boot")).unwrap();
        std::fs::copy(
            images().join("boot/config.txt"),
            dir.path().join("boot/config.txt"),
        )
        .unwrap();
        let b = Board { dir };
        b.boot("A", "boot-1");
        b
    }

    /// Simulates a boot of `slot` (what the firmware chose) with a fresh boot id.
    fn boot(&self, slot: &str, boot_id: &str) {
        std::fs::write(
            self.dir.path().join("cmdline"),
            format!(
                "console=serial0,115200 root=PARTUUID=c10cface-0{} rw rauc.slot={slot}\n",
                if slot == "A" { 2 } else { 3 }
            ),
        )
        .unwrap();
        std::fs::write(self.dir.path().join("boot_id"), boot_id).unwrap();
        let _ = std::fs::remove_file(self.dir.path().join("reboot-param"));
    }

    fn call(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new("sh")
            .arg(images().join("rootfs/usr/lib/clockface/rauc-pi-boot"))
            .args(args)
            .env("CLOCKFACE_BOOT_DIR", d.join("boot"))
            .env("CLOCKFACE_CMDLINE", d.join("cmdline"))
            .env("CLOCKFACE_BOOT_ID", d.join("boot_id"))
            .env("CLOCKFACE_REBOOT_PARAM", d.join("reboot-param"))
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.call(args);
        assert!(
            o.status.success(),
            "rauc-pi-boot {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn config(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("boot/config.txt")).unwrap()
    }

    /// The os_prefix the firmware picks: [all] normally, [tryboot] on a trial boot.
    fn firmware_picks(&self, tryboot: bool) -> String {
        let mut prefix = String::new();
        let mut active = true;
        for line in self.config().lines() {
            let line = line.trim();
            if line.starts_with('[') {
                active = line == "[all]" || line == "[pi4]" || (line == "[tryboot]" && tryboot);
            } else if active && let Some(p) = line.strip_prefix("os_prefix=") {
                prefix = p.to_string();
            }
        }
        prefix
    }

    fn reboot_param(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("reboot-param")).ok()
    }
}

#[test]
fn an_update_is_tried_once_then_committed_by_the_new_slot() {
    let b = Board::new();
    assert_eq!(b.ok(&["get-primary"]), "A");
    assert_eq!(b.ok(&["get-current"]), "A");
    assert_eq!(b.ok(&["get-state", "B"]), "good");
    let before = b.config();

    // rauc install (on A) makes B primary: A stays the firmware's normal choice, B is tried
    // on the next reboot, which systemd is told to make a tryboot.
    b.ok(&["set-primary", "B"]);
    assert_eq!(b.ok(&["get-primary"]), "B");
    assert_eq!(b.firmware_picks(false), "a/");
    assert_eq!(b.firmware_picks(true), "b/");
    assert_eq!(b.reboot_param().as_deref(), Some("0 tryboot\n"));
    // The image's part of config.txt is kept as it was.
    let head = |s: &str| s.split("# --- slot selection").next().unwrap().to_string();
    assert_eq!(head(&b.config()), head(&before));
    // Marking A good again during the same boot (a restarted kiosk) does not cancel the trial,
    // and B cannot be committed before it has booted.
    b.ok(&["set-state", "A", "good"]);
    assert_eq!(b.firmware_picks(true), "b/");
    let o = b.call(&["set-state", "B", "good"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("on trial but not booted"));
    assert!(b.call(&["on-trial"]).status.code() == Some(1));

    // The tryboot boot of B: the boot check finds the kiosk healthy and marks B good.
    b.boot("B", "boot-2");
    assert!(b.call(&["on-trial"]).status.success());
    b.ok(&["set-state", "B", "good"]);
    assert_eq!(b.ok(&["get-primary"]), "B");
    assert_eq!(b.firmware_picks(false), "b/");
    assert_eq!(b.firmware_picks(true), "b/", "no trial left");
    assert!(b.call(&["on-trial"]).status.code() == Some(1));
}

#[test]
fn an_update_that_never_comes_up_is_marked_bad_and_the_old_slot_stays() {
    let b = Board::new();
    b.ok(&["set-primary", "B"]);
    // B hung; the watchdog reset the board without the tryboot flag: the firmware boots A.
    assert_eq!(b.firmware_picks(false), "a/");
    b.boot("A", "boot-2");
    b.ok(&["set-state", "A", "good"]); // the boot check on A
    assert_eq!(b.ok(&["get-state", "B"]), "bad");
    assert_eq!(b.ok(&["get-primary"]), "A");
    assert_eq!(b.firmware_picks(true), "a/", "the failed trial is closed");

    // A trial boot that is up but unhealthy: the boot check marks it bad, and the reboot
    // that follows (without tryboot) lands on A.
    b.ok(&["set-primary", "B"]);
    b.boot("B", "boot-3");
    b.ok(&["set-state", "B", "bad"]);
    assert_eq!(b.ok(&["get-state", "B"]), "bad");
    assert_eq!(b.ok(&["get-primary"]), "A");
    assert_eq!(b.firmware_picks(false), "a/");
    assert_eq!(b.firmware_picks(true), "a/");
}

#[test]
fn bad_arguments_are_named_and_change_nothing() {
    let b = Board::new();
    let before = b.config();
    for (args, says) in [
        (&["set-primary", "C"][..], "unknown slot 'C'"),
        (
            &["set-state", "B", "maybe"][..],
            "needs good or bad, not 'maybe'",
        ),
        (&["launch"][..], "usage: rauc-pi-boot"),
    ] {
        let o = b.call(args);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(b.config(), before);
    std::fs::write(b.dir.path().join("cmdline"), "root=/dev/sda1\n").unwrap();
    let o = b.call(&["get-current"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no rauc.slot="));
}

#[test]
fn a_slot_kernel_lands_in_its_own_boot_directory() {
    let b = Board::new();
    let root = b.dir.path().join("rootfs");
    let ver = "6.1.0-99-arm64";
    std::fs::create_dir_all(root.join("boot")).unwrap();
    std::fs::create_dir_all(root.join(format!("usr/lib/linux-image-{ver}/broadcom"))).unwrap();
    std::fs::write(root.join(format!("boot/vmlinuz-{ver}")), "kernel").unwrap();
    std::fs::write(root.join(format!("boot/initrd.img-{ver}")), "initrd").unwrap();
    std::fs::write(
        root.join(format!(
            "usr/lib/linux-image-{ver}/broadcom/bcm2711-rpi-4-b.dtb"
        )),
        "dtb",
    )
    .unwrap();
    b.ok(&["install-boot-files", "B", root.to_str().unwrap()]);
    let slot = b.dir.path().join("boot/b");
    assert_eq!(
        std::fs::read_to_string(slot.join("vmlinuz")).unwrap(),
        "kernel"
    );
    assert_eq!(
        std::fs::read_to_string(slot.join("initrd.img")).unwrap(),
        "initrd"
    );
    assert!(slot.join("bcm2711-rpi-4-b.dtb").exists());
    let cmdline = std::fs::read_to_string(slot.join("cmdline.txt")).unwrap();
    assert!(cmdline.contains("root=PARTUUID=c10cface-03") && cmdline.contains("rauc.slot=B"));
    // Read-write: without it the root stays read-only and timesyncd and logind fail to start.
    assert!(cmdline.split_whitespace().any(|w| w == "rw"), "{cmdline}");
    // A root file system without a kernel is refused and the slot's files stay as they were.
    let o = b.call(&["install-boot-files", "B", b.dir.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no kernel in"));
    assert_eq!(
        std::fs::read_to_string(slot.join("vmlinuz")).unwrap(),
        "kernel"
    );
}

/// `rauc` with a system config that trusts `ca` (as the kiosk's does).
fn rauc(dir: &Path, ca: &Path, args: &[&str]) -> Output {
    let conf = dir.join(format!("system-{}.conf", args[0]));
    std::fs::write(
        &conf,
        format!(
            "[system]\ncompatible=clockface-rpi-arm64\nbootloader=noop\n[keyring]\npath={}\ncheck-purpose=codesign\n",
            ca.display()
        ),
    )
    .unwrap();
    Command::new("rauc")
        .arg(format!("--conf={}", conf.display()))
        .args(args)
        .output()
        .expect("rauc (Debian's rauc package; ./dev test installs it)")
}

#[test]
fn bundles_from_another_ca_or_with_a_corrupted_payload_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ours, theirs) = (d.join("pki"), d.join("other-pki"));
    sh(Command::new(images().join("make-pki"))
        .arg(&ours)
        .arg("Fleet"));
    sh(Command::new(images().join("make-pki"))
        .arg(&theirs)
        .arg("Someone else"));
    let tree = d.join("tree");
    std::fs::create_dir(&tree).unwrap();
    // Random bytes, so the payload does not compress away (RAUC needs more than 4 KiB).
    let mut noise = vec![0u8; 2_000_000];
    rand::RngCore::fill_bytes(
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7),
        &mut noise,
    );
    std::fs::write(tree.join("payload"), noise).unwrap();
    let rootfs = d.join("rootfs.ext4");
    sh(Command::new("mkfs.ext4")
        .args(["-q", "-d"])
        .arg(&tree)
        .arg(&rootfs)
        .arg("8M"));
    let bundle = |pki: &Path, name: &str| {
        let out = d.join(name);
        sh(Command::new(images().join("make-bundle"))
            .arg("--rootfs")
            .arg(&rootfs)
            .args([
                "--version",
                "1.2.3",
                "--compatible",
                "clockface-rpi-arm64",
                "--pki",
            ])
            .arg(pki)
            .arg("--out")
            .arg(&out));
        out
    };
    let good = bundle(&ours, "good.raucb");
    let foreign = bundle(&theirs, "foreign.raucb");
    let ca = ours.join("ca.cert.pem");

    let info = rauc(d, &ca, &["info", good.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    assert!(
        text.contains("clockface-rpi-arm64") && text.contains("1.2.3"),
        "{text}"
    );
    assert!(text.contains("verity"), "{text}");
    let ex = d.join("extracted");
    let o = rauc(
        d,
        &ca,
        &["extract", good.to_str().unwrap(), ex.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(ex.join("rootfs.ext4")).unwrap(),
        std::fs::read(&rootfs).unwrap()
    );
    assert!(
        std::fs::read_to_string(ex.join("hook"))
            .unwrap()
            .contains("install-boot-files")
    );

    // Signed by a CA the kiosk does not trust.
    let o = rauc(d, &ca, &["info", foreign.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("signature verification failed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A flipped run of bytes in the payload: `rauc info` checks only the signed manifest, the
    // payload check (`rauc extract`, and dm-verity during `rauc install`) catches it.
    let mut bytes = std::fs::read(&good).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xff;
    }
    let corrupted = d.join("corrupted.raucb");
    std::fs::write(&corrupted, bytes).unwrap();
    assert!(
        rauc(d, &ca, &["info", corrupted.to_str().unwrap()])
            .status
            .success()
    );
    let o = rauc(
        d,
        &ca,
        &[
            "extract",
            corrupted.to_str().unwrap(),
            d.join("ex2").to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "extract succeeded on a corrupted bundle"
    );
    assert!(err.contains("payload is corrupted"), "{err}");
}
