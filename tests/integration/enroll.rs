//! `clockface roster add` and `clockface enroll`: integrator paths onto the roster.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{bin, run};

fn photo(name: &str) -> String {
    clockface::base::config::dev_cache()
        .join("photos")
        .join(name)
        .display()
        .to_string()
}

fn roster_add(data: &str, args: &[&str], pin: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(bin());
    cmd.args(["--data-dir", data, "roster", "add"])
        .args(args)
        .env_remove("CLOCKFACE_CONFIG");
    if pin.is_some() {
        cmd.arg("--pin-stdin");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(p) = pin {
        writeln!(child.stdin.take().unwrap(), "{p}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn roster_add_then_enroll_from_photos_stores_encrypted_templates_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    assert_eq!(
        roster_add(
            d,
            &[
                "--id", "A1", "--name", "Admin", "--admin", "--badge", "aa:01"
            ],
            Some("9999")
        )
        .0,
        0
    );
    assert_eq!(
        roster_add(
            d,
            &["--id", "E1", "--name", "Alex", "--badge", "04:a1:b2:c3"],
            Some("1234")
        )
        .0,
        0
    );
    let (code, err) = roster_add(d, &["--id", "E2", "--name", "Sam"], Some("12x4"));
    assert_eq!(code, 2);
    assert!(
        err.contains("PIN") && err.contains("4 to 12 digits"),
        "{err}"
    );

    // Refusals name what was wrong and store nothing.
    let (code, _, err) = run(&[
        "--data-dir",
        d,
        "enroll",
        "--employee",
        "E9",
        "--consent-witness",
        "A1",
        &photo("obama.jpg"),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("E9") && err.contains("not on the roster"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "--data-dir",
        d,
        "enroll",
        "--employee",
        "E1",
        "--consent-witness",
        "E1",
        &photo("obama.jpg"),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--consent-witness") && err.contains("not an admin"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "--data-dir",
        d,
        "enroll",
        "--employee",
        "E1",
        "--consent-witness",
        "A1",
        &photo("obama.jpg"),
        &photo("astronaut.png"),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("astronaut.png"),
        "the failing image is named: {err}"
    );

    let (code, out, err) = run(&[
        "--data-dir",
        d,
        "enroll",
        "--json",
        "--employee",
        "E1",
        "--consent-witness",
        "A1",
        &photo("obama2.jpg"),
        &photo("obama3.jpg"),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["templates"], 2);
    assert_eq!(v["model"], "sface_int8", "the default embedder");
    let (_, show, _) = run(&["--data-dir", d, "device", "show", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(
        s["store"]["templates"], 2,
        "only the successful enrolment stored templates"
    );
    // No image file was written into the data dir.
    let files: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files
            .iter()
            .all(|f| !f.ends_with(".jpg") && !f.ends_with(".png")),
        "{files:?}"
    );
    let (code, _, err) = run(&["--data-dir", d, "verify"]);
    assert_eq!(code, 0, "{err}");
}
