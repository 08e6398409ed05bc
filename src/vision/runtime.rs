//! ONNX Runtime: loading the shared library once per process, checking model files against
//! their lock, and building sessions.
//!
//! `ort` is used with `load-dynamic`: the library (`libonnxruntime.so.1.32.0`, from the
//! `onnxruntime` wheel) is opened at run time from a path, never downloaded at build time. A model
//! whose sha256 does not match `models.lock.json`, or that fails to load, is reported naming the
//! file, so the kiosk can fall back to badge + PIN and say why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use sha2::{Digest, Sha256};

/// Why the face pipeline cannot run. Each message names the file concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The ONNX Runtime shared library could not be loaded.
    #[error("ONNX Runtime library {path}: {reason}")]
    Runtime { path: PathBuf, reason: String },
    /// A model file is missing, does not match its lock, or fails to load.
    #[error("model file {path}: {reason}")]
    Model { path: PathBuf, reason: String },
    /// A model ran but returned something unexpected.
    #[error("model {model}: {reason}")]
    Inference { model: &'static str, reason: String },
}

static ENV: OnceLock<Result<Environment, ModelError>> = OnceLock::new();

/// Loads ONNX Runtime from `lib` (first call wins for the whole process) and returns the
/// environment every session is built in.
pub fn environment(lib: &Path) -> Result<&'static Environment, ModelError> {
    ENV.get_or_init(|| {
        let err = |reason: String| ModelError::Runtime {
            path: lib.to_owned(),
            reason,
        };
        if !lib.is_file() {
            return Err(err(
                "not found (run models/fetch.py, or set vision.onnxruntime)".into(),
            ));
        }
        let builder = ort::init_from(lib).map_err(|e| err(e.to_string()))?;
        builder
            .with_name("clockface")
            .with_telemetry(false)
            .build()
            .map_err(|e| err(e.to_string()))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The sha256 lock written by `models/fetch.py`: relative path -> hex digest.
pub fn read_lock(models_dir: &Path) -> Result<BTreeMap<String, String>, ModelError> {
    let path = models_dir.join("models.lock.json");
    let text = std::fs::read_to_string(&path).map_err(|e| ModelError::Model {
        path: path.clone(),
        reason: format!("cannot read the model lock ({e}); run models/fetch.py"),
    })?;
    serde_json::from_str(&text).map_err(|e| ModelError::Model {
        path,
        reason: format!("not a valid lock file: {e}"),
    })
}

/// Checks a model file's sha256 against the lock before it is loaded.
pub fn check_model(
    models_dir: &Path,
    file: &str,
    lock: &BTreeMap<String, String>,
) -> Result<PathBuf, ModelError> {
    let path = models_dir.join(file);
    let err = |reason: String| ModelError::Model {
        path: path.clone(),
        reason,
    };
    let want = lock
        .iter()
        .find(|(k, _)| Path::new(k).file_name() == Some(std::ffi::OsStr::new(file)))
        .map(|(_, v)| v.clone())
        .ok_or_else(|| err("not listed in models.lock.json".into()))?;
    let bytes = std::fs::read(&path).map_err(|e| err(format!("cannot read: {e}")))?;
    let got = hex::encode(Sha256::digest(&bytes));
    if got != want {
        return Err(err(format!(
            "sha256 {got} does not match the lock ({want}): the file is corrupt or was replaced"
        )));
    }
    Ok(path)
}

/// Session options a model file needs: the block-quantised SFace runs its quantise/dequantise
/// pairs folded back into fp32 kernels (as fast as fp32, 11 MB on disk instead of 39 MB).
fn file_options(path: &Path) -> &'static [(&'static str, &'static str)] {
    match path.file_name().and_then(|f| f.to_str()) {
        Some("face_recognition_sface_2021dec_int8.onnx") => &[("session.disable_quant_qdq", "1")],
        _ => &[],
    }
}

/// Builds a session with full graph optimisation and `threads` intra-op threads.
pub fn session(env: &Environment, path: &Path, threads: usize) -> Result<Session, ModelError> {
    let err = |reason: String| ModelError::Model {
        path: path.to_owned(),
        reason: format!("fails to load: {reason}"),
    };
    let mut builder = Session::builder(env).map_err(|e| err(e.to_string()))?;
    for (k, v) in file_options(path) {
        builder = builder
            .with_config_entry(k, v)
            .map_err(|e| err(e.to_string()))?;
    }
    builder
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| err(e.to_string()))?
        .with_intra_threads(threads.max(1))
        .map_err(|e| err(e.to_string()))?
        .with_intra_op_spinning(false)
        .map_err(|e| err(e.to_string()))?
        // No arena and no memory-pattern pre-planning: activations are freed after each run
        // instead of being kept as a high-water mark per session (tens of MiB for the liveness
        // model), which keeps the kiosk within its memory budget on a 1-2 GiB board.
        .with_memory_pattern(false)
        .map_err(|e| err(e.to_string()))?
        .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])
        .map_err(|e| err(e.to_string()))?
        .commit_from_file(path)
        .map_err(|e| err(e.to_string()))
}
