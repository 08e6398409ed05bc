//! `clockface config check`: every problem in a config file at once.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::context::ConfigSource;
use crate::base::config::Config;
use crate::base::error::Result;

/// `clockface config …`.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCmd {
    /// Report every problem in a config file at once; non-zero exit when there are any.
    Check {
        /// File to check [default: --config or /etc/clockface/clockface.toml].
        path: Option<PathBuf>,
    },
}

impl ConfigCmd {
    /// Runs the config subcommand.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        match self {
            ConfigCmd::Check { path } => {
                config_check(&path.unwrap_or_else(|| src.config_path()), out)
            }
        }
    }
}

/// `clockface config check [PATH]`: prints "ok" or every problem; Err when invalid.
pub fn config_check(path: &Path, out: &mut dyn Write) -> Result<()> {
    let cfg = Config::load(path)?;
    let _ = writeln!(out, "{}: ok", path.display());
    let _ = writeln!(
        out,
        "  device {:?}, data dir {}, policy v{}",
        cfg.device.name,
        cfg.store.data_dir.display(),
        cfg.policy.version
    );
    for w in warnings(&cfg) {
        let _ = writeln!(out, "  warning: {w}");
    }
    Ok(())
}

/// What is allowed but unwise: face-only identification with a roster larger than the
/// embedder keeps FPIR ≤ 1 % for (counted from the store when it can be read).
pub fn warnings(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if !cfg.policy.face_only {
        return out;
    }
    let limit = cfg.vision.embedder.face_only_max_roster();
    // Read-only: checking a config never creates or migrates a store.
    let opts = crate::store::StoreOptions {
        read_only: true,
        ..crate::store::StoreOptions::from_config(cfg)
    };
    let clock: std::sync::Arc<dyn crate::base::clock::Clock> =
        std::sync::Arc::new(crate::base::clock::SystemClock::new());
    let roster = crate::store::Store::open(&opts, clock)
        .ok()
        .and_then(|s| s.stats().ok())
        .map(|s| s.employees);
    match roster {
        Some(n) if n > limit => out.push(format!(
            "policy.face_only: {n} people on the roster, but {} keeps false identifications at or below 1 % only up to {limit}; use badge + face, or a stronger embedder",
            cfg.vision.embedder.name()
        )),
        Some(_) => {}
        None => out.push(format!(
            "policy.face_only: {} keeps false identifications at or below 1 % only up to {limit} people on the roster",
            cfg.vision.embedder.name()
        )),
    }
    out
}
