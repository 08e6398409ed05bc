//! The `clockface vision` commands as integrators call them: JSON fields and errors.

use crate::common;

use common::run;

use std::path::{Path, PathBuf};

fn photo(name: &str) -> String {
    clockface::base::config::dev_cache()
        .join("photos")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn detect_json_has_box_score_and_five_landmarks() {
    let (code, out, err) = run(&[
        "vision",
        "detect",
        "--json",
        &photo("obama.jpg"),
        &photo("biden.jpg"),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let face = &v[0]["faces"][0];
    assert_eq!(face["box"].as_array().unwrap().len(), 4);
    assert!(face["score"].as_f64().unwrap() > 0.8);
    assert_eq!(face["landmarks"].as_array().unwrap().len(), 5);
    assert_eq!(
        (v[1]["width"].as_u64(), v[1]["height"].as_u64()),
        (Some(970), Some(2204)),
        "biden.jpg is 970x2204"
    );
}

#[test]
fn liveness_json_has_score_live_and_reason() {
    let (code, out, err) = run(&[
        "vision",
        "liveness",
        "--json",
        &photo("obama.jpg"),
        &photo("astronaut.png"),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["live"], true);
    assert_eq!(v[0]["reason"], "live");
    assert!(v[0]["score"].as_f64().unwrap() < v[0]["threshold"].as_f64().unwrap());
    // Every cue the fused score rests on is reported.
    for cue in ["dtn", "fasnet", "moire_db"] {
        assert!(v[0]["cues"][cue].is_number(), "{cue}: {}", v[0]);
    }
    // The astronaut's face is small and soft: the sharpness gate refuses to call it live.
    assert_eq!(v[1]["live"], false);
    assert!(
        v[1]["reason"].as_str().unwrap().contains("sharp"),
        "{}",
        v[1]
    );
}

#[test]
fn compare_json_with_both_embedders() {
    let (code, out, err) = run(&[
        "vision",
        "compare",
        "--json",
        &photo("obama.jpg"),
        &photo("obama2.jpg"),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["match"], true);
    assert_eq!(v["threshold"], 0.5);
    assert_eq!(v["embedder"], "sface_int8", "the default embedder");

    // MobileFaceNet through a config file, with its own default threshold (0.5).
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[vision]\nembedder = \"mobilefacenet\"\n").unwrap();
    let c = cfg.to_str().unwrap();
    let (code, out, err) = run(&[
        "--config",
        c,
        "vision",
        "compare",
        "--json",
        &photo("obama.jpg"),
        &photo("obama3.jpg"),
    ]);
    assert_eq!(code, 0, "{err}");
    let same: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(same["embedder"], "mobilefacenet");
    assert!((same["threshold"].as_f64().unwrap() - 0.5).abs() < 1e-6);
    assert_eq!(same["match"], true, "{same}");
    let (_, out, _) = run(&[
        "--config",
        c,
        "vision",
        "compare",
        "--json",
        &photo("obama.jpg"),
        &photo("biden.jpg"),
    ]);
    let diff: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(diff["match"], false, "{diff}");
}

#[test]
fn missing_runtime_library_and_bad_image_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[vision]\nonnxruntime = \"/nonexistent/libonnxruntime.so\"\n",
    )
    .unwrap();
    let (code, _, err) = run(&[
        "--config",
        cfg.to_str().unwrap(),
        "vision",
        "detect",
        &photo("obama.jpg"),
    ]);
    // The installation needs attention (README: exit 1), not the input.
    assert_eq!(code, 1);
    assert!(
        err.contains("/nonexistent/libonnxruntime.so") && err.contains("not found"),
        "{err}"
    );

    let bad = dir.path().join("not-an-image.jpg");
    std::fs::write(&bad, b"hello").unwrap();
    let (code, _, err) = run(&["vision", "detect", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("not-an-image.jpg") && err.contains("cannot read image"),
        "{err}"
    );
}

/// `upright` stored sideways, as a phone stores a portrait photo: the pixels turned 90° to the
/// left, and an EXIF Orientation tag of 6 ("turn 90° clockwise to display").
fn sideways_jpeg(upright: &Path) -> Vec<u8> {
    let img = image::open(upright).unwrap().rotate270().to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92)
        .encode_image(&img)
        .unwrap();
    // APP1 "Exif": a little-endian TIFF header and one IFD entry, Orientation (0x0112) = 6.
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&[6, 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn a_phone_photo_stored_sideways_is_read_upright() {
    let dir = tempfile::tempdir().unwrap();
    let upright = PathBuf::from(photo("obama.jpg"));
    let side = dir.path().join("sideways.jpg");
    std::fs::write(&side, sideways_jpeg(&upright)).unwrap();
    let a = clockface::base::frame::Frame::open(&upright).unwrap();
    let b = clockface::base::frame::Frame::open(&side).unwrap();
    assert_eq!(
        (b.width, b.height),
        (a.width, a.height),
        "turned back upright"
    );
    // The detector finds the face, with the eyes level, as in the upright photo.
    let (code, out, err) = run(&["vision", "detect", "--json", side.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let faces = v[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "{out}");
    let lm = &faces[0]["landmarks"];
    let (dx, dy) = (
        lm[1][0].as_f64().unwrap() - lm[0][0].as_f64().unwrap(),
        lm[1][1].as_f64().unwrap() - lm[0][1].as_f64().unwrap(),
    );
    assert!(dx > 0.0 && dy.abs() < dx * 0.2, "eyes {lm}");
}
