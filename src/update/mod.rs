//! Updates from a fleet server: a hawkBit DDI controller (`clockface update run`, its own
//! systemd unit beside the kiosk).
//!
//! Each poll: send the device's attributes when the server asks (or they changed), then
//! - an update installed before a reboot is finished first: after the reboot into the new
//!   slot, `closed/success` once the boot check marked that slot good; a trial slot that was
//!   rolled back is `closed/failure` with the reason, sent from the old slot;
//! - a `cancelAction` stops an action not yet rebooted into;
//! - a `deploymentBase` is downloaded (resumable, checked), installed into the inactive slot
//!   by RAUC, and rebooted into when no check-in is under way, within the maintenance window
//!   (or at once when the server forces it). The kiosk shows "update under way" meanwhile.
//!
//! Over base and sync's TLS setup only: the kiosk is reached through its health endpoint and
//! a notice file, so the two processes never wait on each other.
//!
//! - `ddi`: the wire types and HTTP calls;
//! - `download`: resumable, hash-checked download to disk;
//! - `deploy`: one action from its deploymentBase to the installed slot, and its report;
//! - `local`: what the client reads of this device and kiosk (token, board, version, health);
//! - `slots`: RAUC, or a simulated A/B pair.

pub mod ddi;
mod deploy;
pub mod download;
mod local;
pub mod slots;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::config::{Config, UpdateConfig, Window};
use crate::base::error::{Error, Result};
use crate::base::zone::SiteZone;
use ddi::{DdiClient, Feedback};
use local::{
    hardware_model, kiosk_activity, kiosk_attributes, rauc_compatible, read_auth, write_notice,
};
pub use local::{notice_path, peak_rss_mib, running_version};
use slots::Slots;

/// What the client remembers across polls and reboots (`state_dir/state.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// An update installed and not yet reported finished.
    pub pending: Option<Pending>,
    /// The attributes last accepted by the server.
    pub sent_attributes: BTreeMap<String, String>,
    /// The controller id in use (the device id, learnt from the kiosk once).
    pub controller_id: String,
}

/// An installed update waiting for its reboot or its boot check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pending {
    /// The server's action id.
    pub action: String,
    /// The bundle's version.
    pub version: String,
    /// The slot it went into.
    pub target: String,
    /// The slot that was running.
    pub from: String,
    /// The boot it was installed in: a different one means the reboot happened.
    pub boot_id: String,
    /// The server forced it: reboot without waiting for the window.
    pub forced: bool,
}

/// What one poll did, for `update run --once` and the tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing to do.
    Idle,
    /// The server could not be used; tried again after the sleep.
    Unreachable {
        /// Why.
        reason: String,
    },
    /// An update is installed and waits for its reboot.
    WaitingToReboot {
        /// Why not yet.
        reason: String,
    },
    /// Rebooting into the new slot now.
    Rebooting {
        /// The slot.
        slot: String,
    },
    /// The boot check has not yet decided about the new slot.
    WaitingForBootCheck,
    /// An action ended and was reported.
    Finished {
        /// The action.
        action: String,
        /// Whether it worked.
        success: bool,
        /// What was reported.
        detail: String,
    },
    /// A download was interrupted and is resumed at the next poll.
    DownloadInterrupted {
        /// Why.
        reason: String,
    },
    /// An action was canceled as the server asked.
    Canceled {
        /// The action.
        action: String,
    },
}

/// The update client: one server, one boot system, one kiosk.
pub struct Updater {
    cfg: UpdateConfig,
    client: DdiClient,
    slots: Box<dyn Slots>,
    dir: PathBuf,
    state: State,
    zone: SiteZone,
    window: Window,
    kiosk_health: String,
    /// Device attributes that do not change while running.
    attributes: BTreeMap<String, String>,
}

impl Updater {
    /// The client `config` describes; the controller id is the kiosk's device id unless set.
    pub async fn open(config: &Config) -> Result<Updater> {
        let cfg = config.update.clone();
        if cfg.server.is_empty() {
            return Err(Error::invalid(
                "update.server",
                "is empty: no fleet server is configured",
            ));
        }
        let dir = PathBuf::from(&cfg.state_dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut state: State = match std::fs::read(dir.join("state.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                Error::invalid(
                    dir.join("state.json").display().to_string(),
                    format!("not the update client's state ({e}); move it away to start over"),
                )
            })?,
            Err(_) => State::default(),
        };
        let kiosk_health = if cfg.kiosk_health.is_empty() {
            config.health.listen.clone()
        } else {
            cfg.kiosk_health.clone()
        };
        let kiosk = kiosk_attributes(&kiosk_health).await;
        let controller_id = if !cfg.controller_id.is_empty() {
            cfg.controller_id.clone()
        } else if let Some(id) = kiosk.get("device_id") {
            id.clone()
        } else if !state.controller_id.is_empty() {
            state.controller_id.clone()
        } else {
            return Err(Error::Network(format!(
                "the controller id defaults to the kiosk's device id, and the kiosk's health endpoint ({}) does not answer yet; set update.controller_id or start the kiosk",
                if kiosk_health.is_empty() {
                    "[health] listen is empty"
                } else {
                    &kiosk_health
                }
            )));
        };
        state.controller_id = controller_id.clone();
        let auth = read_auth(&cfg)?;
        let compatible = if cfg.compatible.is_empty() {
            rauc_compatible(Path::new("/etc/rauc/system.conf"))?
        } else {
            cfg.compatible.clone()
        };
        let slots: Box<dyn Slots> = match cfg.installer.as_str() {
            "sim" => Box::new(slots::SimSlots::open(
                &dir,
                Path::new(&cfg.keyring),
                &compatible,
            )),
            _ => Box::new(slots::Rauc),
        };
        let client = DdiClient::new(
            &cfg.server,
            &cfg.tenant,
            &controller_id,
            auth,
            Duration::from_secs(cfg.timeout_seconds as u64),
        )?;
        let mut attributes = BTreeMap::new();
        attributes.insert("device_id".into(), controller_id.clone());
        for k in ["device_name", "site"] {
            if let Some(v) = kiosk.get(k) {
                attributes.insert(k.to_string(), v.clone());
            }
        }
        // gooseBit matches hw_boardname against the bundle's compatible; hawkBit shows them.
        attributes.insert("hw_boardname".into(), compatible.clone());
        attributes.insert("hw_revision".into(), "default".into());
        attributes.insert("hardware_model".into(), hardware_model());
        let me = Updater {
            zone: SiteZone::from_config(&config.site.time_zone)?,
            window: Window::parse(&cfg.window).map_err(|e| Error::invalid("update.window", e))?,
            cfg,
            client,
            slots,
            dir,
            state,
            kiosk_health,
            attributes,
        };
        me.save()?;
        Ok(me)
    }

    /// The state as kept.
    pub fn state(&self) -> &State {
        &self.state
    }

    fn save(&self) -> Result<()> {
        let path = self.dir.join("state.json");
        let tmp = self.dir.join("state.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&self.state).unwrap_or_default(),
        )
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io(&path, e))
    }

    /// The attributes as they are now: the fixed ones, the running version and slot.
    fn attributes(&self) -> BTreeMap<String, String> {
        let mut a = self.attributes.clone();
        a.insert(
            "sw_version".into(),
            self.slots.running_version().unwrap_or_else(running_version),
        );
        if let Ok(slot) = self.slots.booted() {
            a.insert("booted_slot".into(), slot);
        }
        a
    }

    /// Feedback that may fail without stopping the action: it is logged, and the final
    /// `closed` report is what the server must get (that one is retried by the caller).
    pub(super) async fn tell(&self, action: &str, fb: Feedback) {
        if let Err(e) = self.client.deployment_feedback(action, &fb).await {
            tracing::warn!(action, error = %e, "feedback not delivered");
        }
    }

    /// One poll and what it asks for. Returns what happened and when to poll next.
    pub async fn step(&mut self) -> (Outcome, Duration) {
        let default = Duration::from_secs(self.cfg.poll_seconds as u64);
        let poll = match self.client.poll().await {
            Ok(p) => p,
            Err(reason) => {
                tracing::warn!(error = %reason, "update server poll failed");
                // A finished update is still finished: keep its state for the next poll.
                return (
                    Outcome::Unreachable { reason },
                    default.min(Duration::from_secs(60)),
                );
            }
        };
        let sleep = poll.sleep().unwrap_or(default).max(Duration::from_secs(1));
        let attrs = self.attributes();
        if poll.links.contains_key("configData") || attrs != self.state.sent_attributes {
            match self.client.config_data(&attrs).await {
                Ok(()) => {
                    self.state.sent_attributes = attrs;
                    let _ = self.save();
                }
                Err(e) => tracing::warn!(error = %e, "configData not accepted"),
            }
        }
        if self.state.pending.is_some() {
            return self.finish_pending(&poll, sleep).await;
        }
        if let Some(link) = poll.links.get("cancelAction") {
            return (self.cancel(&link.href.clone(), None).await, sleep);
        }
        if let Some(link) = poll.links.get("deploymentBase") {
            let href = link.href.clone();
            return self.deploy(&href, sleep).await;
        }
        (Outcome::Idle, sleep)
    }

    /// Confirms a cancel; `pending` is the installed, not yet rebooted, action if any.
    async fn cancel(&mut self, href: &str, pending: Option<&Pending>) -> Outcome {
        let c = match self.client.cancel_action(href).await {
            Ok(c) => c,
            Err(reason) => return Outcome::Unreachable { reason },
        };
        if let Some(p) = pending
            && p.action == c.cancel.stop_id
            && let Err(e) = self.slots.disarm()
        {
            let fb = Feedback {
                execution: ddi::Execution::Rejected,
                finished: ddi::Finished::Failure,
                progress: None,
                details: vec![format!("the installed update could not be taken back: {e}")],
            };
            let _ = self.client.cancel_feedback(&c.id, &fb).await;
            return Outcome::WaitingToReboot {
                reason: format!("cancel refused: {e}"),
            };
        }
        if pending.is_some_and(|p| p.action == c.cancel.stop_id) {
            self.state.pending = None;
            let _ = self.save();
        }
        let _ = std::fs::remove_file(
            self.dir
                .join(format!("action-{}.raucb.part", c.cancel.stop_id)),
        );
        let fb = Feedback::closed(
            true,
            format!("action {} canceled on the kiosk", c.cancel.stop_id),
        );
        if let Err(reason) = self.client.cancel_feedback(&c.id, &fb).await {
            return Outcome::Unreachable { reason };
        }
        tracing::info!(action = %c.cancel.stop_id, "update canceled as the server asked");
        Outcome::Canceled {
            action: c.cancel.stop_id,
        }
    }

    /// An installed update: reboot into it, or report how the reboot went.
    async fn finish_pending(&mut self, poll: &ddi::Poll, sleep: Duration) -> (Outcome, Duration) {
        let Some(p) = self.state.pending.clone() else {
            return (Outcome::Idle, sleep);
        };
        let rebooted = self.slots.boot_id().is_ok_and(|b| b != p.boot_id);
        if !rebooted {
            if let Some(link) = poll.links.get("cancelAction") {
                return (self.cancel(&link.href.clone(), Some(&p)).await, sleep);
            }
            return self.try_reboot(sleep).await;
        }
        let booted = self.slots.booted().unwrap_or_default();
        if booted == p.target {
            match self.slots.is_good(&p.target) {
                Ok(true) => {
                    let detail = format!(
                        "running {} on slot {}; the boot check kept it",
                        p.version, p.target
                    );
                    tracing::info!(action = %p.action, slot = %p.target, "update kept");
                    self.finish(&p.action, true, detail, sleep).await
                }
                Ok(false) => {
                    self.tell(
                        &p.action,
                        Feedback::proceeding(
                            Some((98, 100)),
                            format!("booted slot {}; waiting for the boot check", p.target),
                        ),
                    )
                    .await;
                    (
                        Outcome::WaitingForBootCheck,
                        sleep.min(Duration::from_secs(15)),
                    )
                }
                Err(e) => (
                    Outcome::WaitingToReboot {
                        reason: format!("slot state unknown: {e}"),
                    },
                    sleep.min(Duration::from_secs(15)),
                ),
            }
        } else {
            let note = std::fs::read_to_string(self.dir.join("rollback-reason"))
                .map(|s| format!(": {}", s.trim()))
                .unwrap_or_default();
            let detail = format!(
                "slot {} did not pass its boot check and was rolled back; slot {booted} runs the previous version{note}",
                p.target
            );
            tracing::error!(action = %p.action, slot = %p.target, "update rolled back");
            let out = self.finish(&p.action, false, detail, sleep).await;
            if matches!(out.0, Outcome::Finished { .. }) {
                let _ = std::fs::remove_file(self.dir.join("rollback-reason"));
            }
            out
        }
    }

    /// Reboots into the installed slot when the window allows and the kiosk is not busy.
    pub(super) async fn try_reboot(&mut self, sleep: Duration) -> (Outcome, Duration) {
        let Some(p) = self.state.pending.clone() else {
            return (Outcome::Idle, sleep);
        };
        let retry = sleep.min(Duration::from_secs(30));
        let minute = {
            use chrono::Timelike;
            let t = self.zone.local(chrono::Utc::now().timestamp_millis());
            t.hour() * 60 + t.minute()
        };
        if !p.forced && !self.window.contains(minute) {
            return (
                Outcome::WaitingToReboot {
                    reason: format!("outside the maintenance window {}", self.cfg.window),
                },
                retry,
            );
        }
        let notice = notice_path(&self.cfg);
        let kiosk = kiosk_activity(&self.kiosk_health).await;
        if kiosk.is_some_and(|(busy, _)| busy) {
            let _ = std::fs::remove_file(&notice);
            return (
                Outcome::WaitingToReboot {
                    reason: "a check-in is under way".into(),
                },
                Duration::from_secs(3),
            );
        }
        // Tell the people at the door, then wait (briefly) for the kiosk to show it: a tap
        // between the two checks finishes before the screen changes.
        if let Err(e) = write_notice(&notice) {
            tracing::warn!(error = %e, "cannot show the update notice");
        }
        if kiosk.is_some() {
            let mut shown = false;
            for _ in 0..40 {
                match kiosk_activity(&self.kiosk_health).await {
                    Some((false, true)) | None => {
                        shown = true;
                        break;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
            if !shown {
                let _ = std::fs::remove_file(&notice);
                return (
                    Outcome::WaitingToReboot {
                        reason:
                            "the kiosk did not show the update notice (a check-in is under way)"
                                .into(),
                    },
                    Duration::from_secs(3),
                );
            }
        }
        self.tell(
            &p.action,
            Feedback::proceeding(Some((96, 100)), format!("rebooting into slot {}", p.target)),
        )
        .await;
        tracing::info!(action = %p.action, slot = %p.target, "rebooting into the update");
        match self.slots.reboot() {
            Ok(()) => {
                // A simulated reboot returns at once; the real one ends this process. The
                // notice goes with the boot (/run) either way.
                let _ = std::fs::remove_file(&notice);
                (
                    Outcome::Rebooting { slot: p.target },
                    Duration::from_secs(1),
                )
            }
            Err(e) => {
                let _ = std::fs::remove_file(&notice);
                (
                    Outcome::WaitingToReboot {
                        reason: format!("reboot failed: {e}"),
                    },
                    retry,
                )
            }
        }
    }

    /// Polls until `stop` resolves.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let (outcome, sleep) = self.step().await;
            tracing::debug!(?outcome, next_s = sleep.as_secs(), "update poll");
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }
}

/// Stand-in while the real slots are lent to the blocking installer.
pub(super) struct NoSlots;

impl Slots for NoSlots {
    fn booted(&self) -> std::result::Result<String, String> {
        Err("busy".into())
    }
    fn boot_id(&self) -> std::result::Result<String, String> {
        Err("busy".into())
    }
    fn is_good(&self, _: &str) -> std::result::Result<bool, String> {
        Err("busy".into())
    }
    fn install(&mut self, _: &Path) -> std::result::Result<String, String> {
        Err("busy".into())
    }
    fn disarm(&mut self) -> std::result::Result<(), String> {
        Err("busy".into())
    }
    fn reboot(&mut self) -> std::result::Result<(), String> {
        Err("busy".into())
    }
}
