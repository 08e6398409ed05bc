//! What every command starts from: where the config comes from, opening the store, logging,
//! JSON-or-text output and progress bars.
//!
//! Loading the config follows one rule: an explicit `--config` must exist; the default
//! `/etc/clockface/clockface.toml` is used when present; without either, `--data-dir` alone is
//! enough (defaults for the rest), which lets an operator verify a copied store.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::base::clock::SystemClock;
use crate::base::config::{self, Config};
use crate::base::error::{Error, Result};
use crate::store::{Store, StoreOptions};

/// Where the config comes from, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config PATH` (or `CLOCKFACE_CONFIG`).
    pub config: Option<PathBuf>,
    /// `--data-dir DIR`, overriding `store.data_dir`.
    pub data_dir: Option<PathBuf>,
}

impl ConfigSource {
    /// Loads the config according to the rule in the module docs.
    pub fn load(&self) -> Result<Config> {
        let mut cfg = match &self.config {
            Some(p) => Config::load(p)?,
            None => {
                let default = Path::new(config::DEFAULT_CONFIG_PATH);
                if default.exists() || self.data_dir.is_none() {
                    Config::load(default)?
                } else {
                    Config::default()
                }
            }
        };
        if let Some(d) = &self.data_dir {
            cfg.store.data_dir = std::path::absolute(d).map_err(|e| Error::io(d, e))?;
        }
        Ok(cfg)
    }
}

impl ConfigSource {
    /// [`ConfigSource::load`], then logging at the config's level: what most commands start with.
    pub fn load_logged(&self) -> Result<Config> {
        let cfg = self.load()?;
        init_logging(&cfg.log.level);
        Ok(cfg)
    }

    /// The config file `config check` and `provision` write or read when given no path.
    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| config::DEFAULT_CONFIG_PATH.into())
    }

    /// Like [`ConfigSource::load`], but built-in defaults when no config file exists at all
    /// (commands that need no data dir, such as `vision`).
    pub fn load_or_default(&self) -> Result<Config> {
        if self.config.is_none() && !Path::new(config::DEFAULT_CONFIG_PATH).exists() {
            return Ok(Config::default());
        }
        self.load()
    }
}

/// Writes `value` as pretty JSON with `--json`, otherwise the text `text` writes.
pub(crate) fn emit<T: Serialize>(
    out: &mut dyn Write,
    json: bool,
    value: &T,
    text: impl FnOnce(&mut dyn Write),
) {
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(value).expect("serialisable")
        );
    } else {
        text(out);
    }
}

/// Sets up `tracing` on stderr: `RUST_LOG` if set, else the given level.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("clockface={level},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Opens the configured store (read-only for commands that only look).
pub(crate) fn open(cfg: &Config, read_only: bool) -> Result<Store> {
    let mut opts = StoreOptions::from_config(cfg);
    opts.read_only = read_only;
    Store::open(&opts, Arc::new(SystemClock::new()))
}

/// A progress bar on stderr when it is a terminal (long exports, verifies, benchmarks).
pub(crate) fn progress_bar(total: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    Some(pb)
}

/// A one-thread tokio runtime for the commands that make a few HTTP calls.
pub(crate) fn small_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::invalid("runtime", e.to_string()))
}

/// Writes `bytes` to `path`, or to `out` when no path was given (`--output FILE`).
pub(crate) fn write_output(path: Option<&Path>, out: &mut dyn Write, bytes: &[u8]) -> Result<()> {
    match path {
        Some(p) => std::fs::write(p, bytes).map_err(|e| Error::io(p, e)),
        None => out.write_all(bytes).map_err(|e| Error::io("stdout", e)),
    }
}
