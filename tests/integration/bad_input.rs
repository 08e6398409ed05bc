//! Bad input: each case gives a clear error naming the cause, and nothing already recorded is
//! lost.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use clockface::base::config::Config;
use clockface::base::error::Error;
use clockface::commands::records;
use clockface::store::Store;
use common::*;

fn cfg(dir: &Path) -> Config {
    let mut c = Config::default();
    c.store.data_dir = dir.to_owned();
    c
}

/// Verifies the store and returns how many check-in records it holds.
fn verified_count(dir: &Path) -> u64 {
    records::verify(&cfg(dir), false, &mut Vec::new())
        .expect("store still verifies")
        .chains[0]
        .entries
}

#[test]
fn missing_config_names_the_file() {
    let (code, _, err) = run(&["--config", "/nonexistent/clockface.toml", "verify"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("/nonexistent/clockface.toml") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn unknown_key_and_wrong_type_are_named_with_all_problems_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = write_config(
        dir.path(),
        &data,
        "max_size_mb = \"lots\"\nshred = true\n[policy]\nversion = 0\n[log]\nlevel = 3\n",
    );
    let (code, out, err) = run(&["config", "check", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    for want in [
        "store.shred: unknown key",
        "store.max_size_mb: wrong type: found string \"lots\"",
        "policy.version: is 0",
        "log.level: wrong type",
        "4 problem(s)",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(
        err.contains("line 3"),
        "the unknown key's line is given:\n{err}"
    );
    // Any command refuses to run on that config, without touching the data dir.
    let (code, _, err) = run(&["--config", p.to_str().unwrap(), "device", "show"]);
    assert_eq!(code, 2, "{err}");
    assert!(!data.exists());
}

#[test]
fn valid_config_checks_ok() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(
        dir.path(),
        &dir.path().join("d"),
        "[device]\nname = \"Gate 3\"\n",
    );
    let (code, out, err) = run(&["config", "check", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": ok") && out.contains("Gate 3"), "{out}");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/clockface.example.toml");
    assert_eq!(run(&["config", "check", example]).0, 0);
}

#[test]
fn data_dir_that_is_a_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("not-a-dir");
    std::fs::write(&f, "precious").unwrap();
    let (code, _, err) = run(&[
        "--data-dir",
        f.to_str().unwrap(),
        "bench",
        "append",
        "--count",
        "1",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not-a-dir") && err.contains("not a directory"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "precious");
}

#[test]
fn unreadable_data_dir_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(store_with(&data, 2));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root ignores permission bits, so run the child as an unprivileged user when we are root.
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("--data-dir").arg(&data).arg("verify");
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("data dir") && err.contains("ermission denied"),
        "{err}"
    );
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(verified_count(&data), 2);
}

#[test]
fn corrupt_database_is_named_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 3));
    let db = dir.path().join("clockface.db");
    let mut garbage = std::fs::read(&db).unwrap();
    garbage[..100].copy_from_slice(&[0x5a; 100]); // header overwritten
    std::fs::write(&db, &garbage).unwrap();
    let d = dir.path().to_str().unwrap();
    for args in [
        vec!["--data-dir", d, "verify"],
        vec!["--data-dir", d, "bench", "append", "--count", "1"],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("clockface.db") && err.contains("not a readable Clockface database"),
            "{err}"
        );
        assert!(err.contains("left untouched"), "{err}");
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        garbage,
        "the file was not modified"
    );
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 1));
    raw_db(dir.path())
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let e = Store::open(
        &options(dir.path()),
        std::sync::Arc::new(clockface::base::clock::SystemClock::new()),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("schema version 99 is newer"), "{e}");
}

#[test]
fn missing_device_key_is_named_and_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 3));
    let key = dir.path().join("device.key");
    std::fs::remove_file(&key).unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, _, err) = run(&["--data-dir", d, "bench", "append", "--count", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("device.key") && err.contains("missing") && err.contains("3 records"),
        "{err}"
    );
    assert!(!key.exists(), "no new key was made");
    assert_eq!(verified_count(dir.path()), 3);
}

#[test]
fn key_file_with_wrong_permissions_is_named() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 2));
    for file in ["device.key", "data.key"] {
        let key = dir.path().join(file);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let d = dir.path().to_str().unwrap();
        let (code, _, err) = run(&["--data-dir", d, "bench", "append", "--count", "1"]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(file) && err.contains("mode 0644") && err.contains("chmod 600"),
            "{err}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(verified_count(dir.path()), 2);
}

#[test]
fn wrong_data_key_is_detected_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 1));
    let other = tempfile::tempdir().unwrap();
    drop(store_with(other.path(), 1));
    std::fs::copy(other.path().join("data.key"), dir.path().join("data.key")).unwrap();
    let e = Store::open(
        &options(dir.path()),
        std::sync::Arc::new(clockface::base::clock::SystemClock::new()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("data.key") && e.contains("not the key this store was made with"),
        "{e}"
    );
}

#[test]
fn disk_full_refuses_new_records_and_keeps_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_size_mb = 1;
    let clock = std::sync::Arc::new(clockface::base::clock::SimClock::new(T0));
    let mut store = Store::open(&opts, clock).unwrap();
    let mut ok = 0u64;
    let err = loop {
        match store.append(&checkin(&format!("E{ok}"))) {
            Ok(_) => ok += 1,
            Err(e) => break e,
        }
        assert!(ok < 100_000, "a 1 MiB cap must fill up");
    };
    assert!(matches!(err, Error::StoreFull(_)), "{err:?}");
    assert!(err.to_string().contains("store is full"), "{err}");
    assert!(ok > 100, "{ok} records fitted before the cap");
    // Still full on retries. A retry can fit now and then (its random UUID may land in an index
    // page with room, and pages freed by rolled-back attempts are reused), so count those: the
    // cap must hold — ten refusals in a row well before 500 tries — every refusal is StoreFull,
    // and nothing is lost.
    let (mut in_a_row, mut tries, mut fitted) = (0, 0, 0);
    while in_a_row < 10 {
        tries += 1;
        assert!(
            tries < 500,
            "the cap does not hold: {fitted} of {tries} retries fitted"
        );
        match store.append(&checkin(&format!("E{ok}"))) {
            Ok(_) => {
                ok += 1;
                fitted += 1;
                in_a_row = 0;
            }
            Err(Error::StoreFull(_)) => in_a_row += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    eprintln!("after the first refusal, {fitted} of {tries} retries fitted");
    drop(store);
    assert_eq!(verified_count(dir.path()), ok);
}

#[test]
fn bad_export_range_is_named() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), 1));
    let d = dir.path().to_str().unwrap();
    let (code, _, err) = run(&["--data-dir", d, "export", "--since", "yesterday"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--since") && err.contains("\"yesterday\""),
        "{err}"
    );
    let (code, _, err) = run(&[
        "--data-dir",
        d,
        "export",
        "--since",
        "2026-12-01",
        "--until",
        "2026-11-01",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--until"), "{err}");
}
