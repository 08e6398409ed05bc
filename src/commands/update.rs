//! `clockface update …`: the fleet server's DDI client, on its own (the appliance runs it as
//! `clockface-update.service` beside the kiosk).

use std::io::Write;

use crate::base::error::{Error, Result};
use crate::commands::context::{ConfigSource, small_runtime};

/// `clockface update …`.
#[derive(Debug, clap::Subcommand)]
pub enum UpdateCmd {
    /// Poll the DDI server in [update] server and install what it assigns.
    Run {
        /// One poll and what it asks for, then print the outcome as JSON and exit, instead of
        /// polling until stopped.
        #[arg(long)]
        once: bool,
    },
    /// Print the client's state: controller id, an update waiting for its reboot or check.
    Status,
}

impl UpdateCmd {
    /// Runs the update subcommand.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        let cfg = src.load_logged()?;
        let rt = small_runtime()?;
        match self {
            UpdateCmd::Run { once } => rt.block_on(async {
                let mut u = loop {
                    match crate::update::Updater::open(&cfg).await {
                        // As a service, wait for the kiosk (its device id is the controller
                        // id) instead of failing at boot before it is up.
                        Err(e) if !once && e.kind() == crate::base::error::ErrorKind::Retry => {
                            tracing::warn!(error = %e, "update client waiting");
                            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                        }
                        r => break r?,
                    }
                };
                if once {
                    let (outcome, _) = u.step().await;
                    let _ = writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&outcome).unwrap_or_default()
                    );
                    return Ok(());
                }
                u.run(crate::kiosk::runner::signals()).await;
                Ok(())
            }),
            UpdateCmd::Status => {
                let path = std::path::Path::new(&cfg.update.state_dir).join("state.json");
                let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                let _ = writeln!(out, "{}", text.trim());
                Ok(())
            }
        }
    }
}
