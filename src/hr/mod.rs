//! The HR-terminal protocols: how HR and payroll tools that read ZKTeco door terminals get
//! punches from this kiosk, unchanged on their side.
//!
//! - [`zk`]: the device side of the ZK binary protocol on TCP (tools pull);
//! - [`adms`]: the ADMS/iclock HTTP push client, a second outbox beside the hub's.
//!
//! Both read accepted check-ins from the store (never write or delete one) and show times in
//! the site's zone. Over base and store only.

pub mod adms;
pub mod zk;

use crate::base::config::Config;

/// The serial number both protocols report: `[adms] serial`, else `[zk] serial`, else one
/// derived from the device id.
pub fn serial(cfg: &Config, device_id: uuid::Uuid) -> String {
    [&cfg.adms.serial, &cfg.zk.serial]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| zk::default_serial(device_id))
}
