//! The HR-terminal protocols on their own: `zk serve` (the ZK device side over a store, for a
//! migration or a test) and `adms push` (the ADMS outbox until the backlog is sent, or for
//! ever). `clockface run` starts both beside the kiosk when the config turns them on.

use std::io::Write;
use std::sync::Arc;

use super::context::{ConfigSource, small_runtime};
use crate::base::clock::SystemClock;
use crate::base::error::{Error, Result};
use crate::base::zone::SiteZone;
use crate::hr::zk::ZkServer;
use crate::store::{Store, StoreOptions};

/// `clockface zk …`.
#[derive(Debug, clap::Subcommand)]
pub enum ZkCmd {
    /// Serve the store's roster and accepted check-ins over the ZK protocol until stopped.
    Serve {
        /// Address to listen on [default: zk.listen from the config].
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<String>,
    },
}

impl ZkCmd {
    /// Runs the zk subcommand.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        match self {
            ZkCmd::Serve { listen } => {
                let mut cfg = src.load_logged()?;
                if let Some(l) = listen {
                    cfg.zk.listen = l;
                }
                if cfg.zk.listen.is_empty() {
                    return Err(Error::invalid(
                        "zk.listen",
                        "is empty: give --listen IP:PORT or set [zk] listen",
                    ));
                }
                let zone = SiteZone::from_config(&cfg.site.time_zone)?;
                let clock: Arc<dyn crate::base::clock::Clock> = Arc::new(SystemClock::new());
                let server = ZkServer::spawn(
                    &StoreOptions::from_config(&cfg),
                    cfg.zk.clone(),
                    zone,
                    clock,
                    None,
                )?;
                // Tests and scripts read the bound address (port 0 picks one).
                let _ = writeln!(out, "listening {}", server.addr);
                let _ = out.flush();
                small_runtime()?.block_on(crate::kiosk::runner::signals());
                server.stop();
                Ok(())
            }
        }
    }
}

/// `clockface adms …`.
#[derive(Debug, clap::Subcommand)]
pub enum AdmsCmd {
    /// Push accepted check-ins to the ADMS server in [adms] url.
    Push {
        /// Stop once the server holds every accepted check-in (exit 0), instead of running
        /// until stopped.
        #[arg(long)]
        once: bool,
    },
}

impl AdmsCmd {
    /// Runs the adms subcommand.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        let AdmsCmd::Push { once } = self;
        let cfg = src.load_logged()?;
        if cfg.adms.url.is_empty() {
            return Err(Error::invalid("adms.url", "is empty: set [adms] url"));
        }
        let zone = SiteZone::from_config(&cfg.site.time_zone)?;
        let clock: Arc<dyn crate::base::clock::Clock> = Arc::new(SystemClock::new());
        let store = Store::open(&StoreOptions::from_config(&cfg), clock.clone())?;
        let serial = crate::hr::serial(&cfg, store.identity().device_id);
        let rt = small_runtime()?;
        if !once {
            let (_stop_tx, stop) = tokio::sync::watch::channel(false);
            let a = crate::hr::adms::Adms::new(store, cfg.adms.clone(), serial, zone)?;
            let wake = Arc::new(tokio::sync::Notify::new());
            return rt.block_on(async {
                tokio::select! {
                    _ = crate::hr::adms::run(a, wake, stop) => {}
                    _ = crate::kiosk::runner::signals() => {}
                }
                Ok(())
            });
        }
        let mut a = crate::hr::adms::Adms::new(store, cfg.adms.clone(), serial, zone)?;
        rt.block_on(async {
            // One handshake, then one step that uploads whatever the server's schedule says
            // (--once means now) and answers the server's commands.
            a.handshake().await?;
            a.options.realtime = true;
            let step = a.step(&mut true).await?;
            let _ = writeln!(out, "sent {} waiting {}", step.sent, step.waiting);
            Ok(())
        })
    }
}
