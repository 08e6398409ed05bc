//! The HR-terminal protocols started beside the kiosk (`[zk]`, `[adms]`), and the channel by
//! which a ZK client's disable and enable reach the machine.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::base::clock::Clock;
use crate::base::config::Config;
use crate::base::error::Result;
use crate::base::zone::SiteZone;

/// The HR-terminal protocols running beside the kiosk: the ZK device side (and what its
/// clients ask of the kiosk) and the ADMS outbox.
#[derive(Default)]
pub struct HrLinks {
    /// The ZK server.
    pub zk: Option<crate::hr::zk::ZkServer>,
    /// Pause and resume requests from ZK clients.
    pub control: Option<mpsc::UnboundedReceiver<crate::hr::zk::Control>>,
    /// The ADMS outbox.
    pub adms: Option<crate::hr::adms::AdmsHandle>,
}

impl HrLinks {
    /// Starts what `config` turns on, over the store at `opts`.
    pub fn start(
        config: &Config,
        opts: &crate::store::StoreOptions,
        device_id: uuid::Uuid,
        clock: Arc<dyn Clock>,
    ) -> Result<HrLinks> {
        let zone = SiteZone::from_config(&config.site.time_zone)?;
        let mut links = HrLinks::default();
        if !config.zk.listen.is_empty() {
            let (tx, rx) = mpsc::unbounded_channel();
            links.zk = Some(crate::hr::zk::ZkServer::spawn(
                opts,
                config.zk.clone(),
                zone,
                clock.clone(),
                Some(tx),
            )?);
            links.control = Some(rx);
        }
        if !config.adms.url.is_empty() {
            links.adms = Some(crate::hr::adms::spawn(
                opts,
                config.adms.clone(),
                crate::hr::serial(config, device_id),
                zone,
                clock,
            )?);
        }
        Ok(links)
    }
}
