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
    Ok(())
}
