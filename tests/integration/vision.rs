//! The vision pipeline on real photos (fetched by models/fetch.py from face_recognition 1.3.0
//! and scikit-image), with the real models through ONNX Runtime.

use std::path::PathBuf;

use clockface::base::config::VisionConfig;
use clockface::base::frame::Frame;
use clockface::camera::replay;
use clockface::vision::quality::{LivenessDecision, LivenessFusion};
use clockface::vision::{FaceAvailability, Vision, embed::cosine};

use crate::common::{photo, vision};

const PORTRAITS: [&str; 5] = [
    "obama.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "biden.jpg",
    "astronaut.png",
];
const SHARP: [&str; 4] = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"];

/// Pastes frames side by side on a grey canvas (a "group photo" of real faces).
fn side_by_side(frames: &[Frame], height: u32) -> Frame {
    let scaled: Vec<Frame> = frames
        .iter()
        .map(|f| {
            f.resize(
                (f.width as f32 * height as f32 / f.height as f32) as u32,
                height,
            )
        })
        .collect();
    let width: u32 = scaled.iter().map(|f| f.width).sum::<u32>() + 40 * (scaled.len() as u32 + 1);
    let mut data = vec![128u8; (width * height * 3) as usize];
    let mut x0 = 40;
    for f in &scaled {
        for y in 0..f.height {
            let src = &f.data[(y * f.width * 3) as usize..((y + 1) * f.width * 3) as usize];
            let at = ((y * width + x0) * 3) as usize;
            data[at..at + src.len()].copy_from_slice(src);
        }
        x0 += f.width + 40;
    }
    Frame::from_rgb(width, height, data).unwrap()
}

/// A camera's view of a still scene (see `camera::replay::camera_view`).
fn camera_frame(f: &Frame, seed: u64) -> Frame {
    use rand::SeedableRng;
    replay::camera_view(f, &mut rand::rngs::StdRng::seed_from_u64(seed))
}

/// Spoof score of the degraded frame at the clean frame's face (the degradation does not move
/// the face; it may stop the detector finding it, which would also stop a check-in).
fn score_at(v: &mut Vision, f: &Frame, face: &clockface::vision::detect::Face) -> f32 {
    v.liveness.check(f, face).unwrap().0
}

#[test]
fn one_face_per_portrait_the_right_count_in_a_group_and_none_in_noise() {
    let mut v = vision();
    for name in PORTRAITS {
        let faces = v.detect(&photo(name)).unwrap();
        assert_eq!(faces.len(), 1, "{name}: {faces:?}");
        let f = &faces[0];
        // Landmarks fall inside the box, eyes above the mouth.
        for lm in f.landmarks {
            assert!(
                lm[0] >= f.bbox[0] - 5.0 && lm[0] <= f.bbox[0] + f.bbox[2] + 5.0,
                "{name}"
            );
        }
        assert!(
            f.landmarks[0][1] < f.landmarks[3][1],
            "{name}: eyes above mouth"
        );
    }
    let group = side_by_side(
        &[photo("obama.jpg"), photo("biden.jpg"), photo("obama2.jpg")],
        480,
    );
    v.detector.size = 640;
    let faces = v.detect(&group).unwrap();
    v.detector.size = 320;
    assert_eq!(faces.len(), 3, "{faces:?}");
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let noise = Frame::from_rgb(
        640,
        480,
        (0..640 * 480 * 3).map(|_| rng.r#gen::<u8>()).collect(),
    )
    .unwrap();
    assert!(v.detect(&noise).unwrap().is_empty());
    let flat = Frame::from_rgb(320, 240, vec![90; 320 * 240 * 3]).unwrap();
    assert!(v.detect(&flat).unwrap().is_empty());
}

#[test]
fn same_person_above_threshold_different_people_below() {
    let mut v = vision();
    let thr = v.config.match_threshold();
    let mut emb = std::collections::HashMap::new();
    for name in PORTRAITS {
        let f = photo(name);
        let faces = v.detect(&f).unwrap();
        let e = v.embed_face(&f, &faces[0]).unwrap();
        assert!(
            (e.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4,
            "L2-normalised"
        );
        emb.insert(name, e);
    }
    let same = [
        ("obama.jpg", "obama2.jpg"),
        ("obama.jpg", "obama3.jpg"),
        ("obama2.jpg", "obama3.jpg"),
    ];
    for (a, b) in same {
        let s = cosine(&emb[a], &emb[b]);
        eprintln!("same {a} {b}: {s:.3}");
        assert!(s >= thr, "{a} vs {b}: {s} < {thr}");
    }
    for a in ["obama.jpg", "obama2.jpg", "obama3.jpg"] {
        for b in ["biden.jpg", "astronaut.png"] {
            let s = cosine(&emb[a], &emb[b]);
            eprintln!("different {a} {b}: {s:.3}");
            assert!(s < thr, "{a} vs {b}: {s} >= {thr}");
        }
    }
}

#[test]
fn fused_liveness_is_live_on_sharp_real_portraits() {
    let mut v = vision();
    for name in SHARP {
        let still = photo(name);
        let mut fusion =
            LivenessFusion::new(v.config.pad_threshold, v.config.liveness_frames as usize);
        let mut prev = None;
        for seed in 0..5 {
            let frame = camera_frame(&still, seed);
            let a = v.analyse(&frame, prev.as_ref(), true, false).unwrap();
            if let (Some(l), Some(face)) = (&a.liveness, &a.face) {
                fusion.push(l, face);
            }
            prev = a.face.clone();
        }
        let d = fusion.decide();
        eprintln!("{name}: {d:?}");
        assert!(matches!(d, LivenessDecision::Live { .. }), "{name}: {d:?}");
    }
}

#[test]
fn the_same_frame_replayed_is_weak_evidence() {
    let mut v = vision();
    let still = photo("obama.jpg");
    let mut fusion = LivenessFusion::new(0.2, 3);
    for _ in 0..3 {
        let a = v.analyse(&still, None, true, false).unwrap();
        fusion.push(a.liveness.as_ref().unwrap(), a.face.as_ref().unwrap());
    }
    assert!(
        matches!(fusion.decide(), LivenessDecision::Weak { .. }),
        "{:?}",
        fusion.decide()
    );
}

#[test]
fn degradations_move_the_score_toward_spoof() {
    let mut v = vision();
    let mut rows = Vec::new();
    for name in SHARP {
        let clean = photo(name);
        let face = v.detect(&clean).unwrap().remove(0);
        let base = score_at(&mut v, &clean, &face);
        let blurred = score_at(&mut v, &replay::printed_photo(&clean), &face);
        let moired = score_at(&mut v, &replay::phone_screen(&clean), &face);
        let small = clean.resize(clean.width / 5, clean.height / 5);
        let rescaled = score_at(&mut v, &small.resize(clean.width, clean.height), &face);
        eprintln!(
            "{name}: clean {base:.3}  blur+jpeg {blurred:.3}  moire {moired:.3}  down-up {rescaled:.3}"
        );
        rows.push((base, blurred, moired, rescaled));
    }
    let mean =
        |k: usize| rows.iter().map(|r| [r.0, r.1, r.2, r.3][k]).sum::<f32>() / rows.len() as f32;
    for (k, what) in [(1, "blur+JPEG"), (2, "moire"), (3, "downscale-upscale")] {
        assert!(
            mean(k) > mean(0),
            "{what}: mean score {} is not above the clean mean {}",
            mean(k),
            mean(0)
        );
    }
}

#[test]
fn a_corrupt_or_missing_model_is_named_and_face_checkin_is_unavailable() {
    let src = clockface::base::config::dev_cache().join("models");
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let cfg = VisionConfig {
        models_dir: Some(dir.path().to_path_buf()),
        ..VisionConfig::default()
    };
    let live = dir.path().join("face_antispoofing.onnx");
    let mut bytes = std::fs::read(&live).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&live, &bytes).unwrap();
    let (v, state) = Vision::load_or_explain(&cfg);
    assert!(v.is_none());
    let FaceAvailability::Unavailable { reason } = state else {
        panic!("{state:?}")
    };
    assert!(
        reason.contains("face_antispoofing.onnx") && reason.contains("sha256"),
        "{reason}"
    );

    // The embedder is checked before the liveness models: its absence is what is named.
    let embedder = cfg.embedder.file();
    std::fs::remove_file(dir.path().join(embedder)).unwrap();
    let e = Vision::load(&cfg).err().unwrap().to_string();
    assert!(e.contains(embedder) && e.contains("cannot read"), "{e}");

    std::fs::remove_file(dir.path().join("models.lock.json")).unwrap();
    let e = Vision::load(&cfg).err().unwrap().to_string();
    assert!(e.contains("models.lock.json"), "{e}");
}

#[test]
fn rust_agrees_with_opencv_and_python_onnxruntime() {
    let py = clockface::base::config::dev_cache().join("venv/bin/python");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/reference.py");
    let paths: Vec<PathBuf> = PORTRAITS
        .iter()
        .map(|n| clockface::base::config::dev_cache().join("photos").join(n))
        .collect();
    let mut v = vision();
    // Detection: boxes and landmarks within 2 px of OpenCV's own YuNet decoder.
    let out = std::process::Command::new(&py)
        .arg(&script)
        .args(["detect", "--size", "320", "--threshold", "0.8"])
        .args(&paths)
        .stderr(std::process::Stdio::null())
        .output()
        .expect("reference runs (run models/fetch.py)");
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).expect("reference JSON");
    let dir = tempfile::tempdir().unwrap();
    let mut crops = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let frame = Frame::open(p).unwrap();
        let ours = v.detect(&frame).unwrap();
        let theirs = reference[i]["faces"].as_array().unwrap();
        assert_eq!(ours.len(), theirs.len(), "{p:?}");
        for (a, b) in ours.iter().zip(theirs) {
            for k in 0..4 {
                let d = (a.bbox[k] - b["box"][k].as_f64().unwrap() as f32).abs();
                assert!(d <= 2.0, "{p:?} box[{k}] differs by {d} px");
            }
            for (j, lm) in a.landmarks.iter().enumerate() {
                for k in 0..2 {
                    let d = (lm[k] - b["landmarks"][j][k].as_f64().unwrap() as f32).abs();
                    assert!(d <= 2.0, "{p:?} landmark {j} differs by {d} px");
                }
            }
        }
        let crop = clockface::vision::align::align_112(&frame, &ours[0].landmarks);
        let path = dir.path().join(format!("crop{i}.png"));
        crop.to_image().save(&path).unwrap();
        crops.push((path, crop));
    }
    // Embeddings: the same aligned pixels through Python ORT agree within 1e-4 cosine.
    let out = std::process::Command::new(&py)
        .arg(&script)
        .arg("embed")
        .args(crops.iter().map(|c| &c.0))
        .output()
        .unwrap();
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("embed JSON");
    // The reference runs MobileFaceNet, whatever the kiosk's default embedder is.
    let mut mfn = Vision::load(&VisionConfig {
        embedder: clockface::base::config::EmbedderKind::Mobilefacenet,
        ..VisionConfig::default()
    })
    .unwrap();
    for (i, (_, crop)) in crops.iter().enumerate() {
        let ours = mfn.embedder.embed(&[crop]).unwrap().remove(0);
        let t: Vec<f32> = theirs[i]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let c = cosine(&ours, &t);
        assert!(1.0 - c <= 1e-4, "crop {i}: cosine {c}");
    }
}
