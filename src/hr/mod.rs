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

/// Lowers the calling thread's CPU priority (nice 10; threads it starts inherit it): HR reads
/// and uploads are background work, and on a 2-core kiosk the person at the door comes first.
pub(crate) fn background_priority() {
    // SAFETY: plain syscalls on this thread's own id.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 10) } != 0 {
        tracing::debug!("could not lower the HR thread's priority");
    }
}
