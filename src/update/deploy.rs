//! One action: its deploymentBase fetched, the bundle downloaded with progress feedback,
//! checked and installed into the inactive slot, then the reboot tried; and the final report.

use std::time::Duration;

use super::ddi::Feedback;
use super::{NoSlots, Outcome, Pending, Updater, download, peak_rss_mib};

impl Updater {
    /// Downloads, checks and installs one action, then tries to reboot into it.
    pub(super) async fn deploy(&mut self, href: &str, sleep: Duration) -> (Outcome, Duration) {
        let d = match self.client.deployment(href).await {
            Ok(d) => d,
            Err(reason) => return (Outcome::Unreachable { reason }, sleep),
        };
        let action = d.id.clone();
        if d.deployment.maintenance_window.as_deref() == Some("unavailable") {
            return (
                Outcome::WaitingToReboot {
                    reason: "the server's maintenance window is closed".into(),
                },
                sleep,
            );
        }
        let (chunk, artifact) = match d.bundle() {
            Ok(b) => (b.0.clone(), b.1.clone()),
            Err(why) => return self.fail(&action, why, sleep).await,
        };
        tracing::info!(action, version = %chunk.version, bytes = artifact.size, "update assigned");
        self.tell(
            &action,
            Feedback::proceeding(
                Some((0, 100)),
                format!(
                    "downloading {} ({} MiB)",
                    artifact.filename,
                    artifact.size.div_ceil(1 << 20)
                ),
            ),
        )
        .await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
        let reporter = {
            let client = self.client.clone();
            let action = action.clone();
            tokio::spawn(async move {
                let mut last = 0;
                while let Some((done, total)) = rx.recv().await {
                    let pct = done * 100 / total.max(1);
                    if pct >= last + 10 || done == total {
                        last = pct;
                        tracing::info!(percent = pct, "downloading update");
                        let fb = Feedback::proceeding(
                            Some((pct.min(90) * 9 / 10, 100)),
                            format!(
                                "downloaded {pct}% ({} of {} MiB)",
                                done.div_ceil(1 << 20),
                                total.div_ceil(1 << 20)
                            ),
                        );
                        let _ = client.deployment_feedback(&action, &fb).await;
                    }
                }
            })
        };
        let mut progress = move |done, total| {
            let _ = tx.send((done, total));
        };
        let name = format!("action-{action}.raucb");
        let stall = Duration::from_secs(self.cfg.timeout_seconds as u64);
        let fetched = download::fetch(
            &self.client,
            &artifact,
            &self.dir,
            &name,
            stall,
            &mut progress,
        )
        .await;
        drop(progress);
        let _ = reporter.await;
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) if e.retry => {
                tracing::warn!(action, error = %e.reason, "download interrupted");
                self.tell(
                    &action,
                    Feedback::proceeding(
                        None,
                        format!(
                            "download interrupted, resuming at the next poll: {}",
                            e.reason
                        ),
                    ),
                )
                .await;
                return (
                    Outcome::DownloadInterrupted { reason: e.reason },
                    sleep.min(Duration::from_secs(30)),
                );
            }
            Err(e) => return self.fail(&action, e.reason, sleep).await,
        };
        let secs = fetched.elapsed.as_secs_f64().max(1e-3);
        tracing::info!(
            action,
            bytes = artifact.size,
            resumes = fetched.resumes,
            mib_per_s = format!("{:.1}", fetched.transferred as f64 / secs / 1048576.0),
            peak_rss_mib = peak_rss_mib(),
            "bundle downloaded and its hash checked"
        );
        self.tell(
            &action,
            Feedback::proceeding(
                Some((85, 100)),
                format!(
                    "downloaded and checked in {:.0} s ({} resume(s)); installing into the inactive slot",
                    fetched.elapsed.as_secs_f64(),
                    fetched.resumes
                ),
            ),
        )
        .await;
        let from = self.slots.booted().unwrap_or_default();
        let boot_id = self.slots.boot_id().unwrap_or_default();
        let path = fetched.path.clone();
        let mut slots = std::mem::replace(&mut self.slots, Box::new(NoSlots));
        let started = std::time::Instant::now();
        let (back, installed) = tokio::task::spawn_blocking(move || {
            let r = slots.install(&path);
            (slots, r)
        })
        .await
        .unwrap_or_else(|e| (Box::new(NoSlots), Err(format!("installer crashed: {e}"))));
        self.slots = back;
        let _ = std::fs::remove_file(&fetched.path);
        let target = match installed {
            Ok(t) => t,
            Err(why) => {
                return self
                    .fail(
                        &action,
                        format!("the bundle was not installed: {why}"),
                        sleep,
                    )
                    .await;
            }
        };
        tracing::info!(action, slot = %target, seconds = started.elapsed().as_secs(), peak_rss_mib = peak_rss_mib(), "update installed");
        self.state.pending = Some(Pending {
            action: action.clone(),
            version: chunk.version.clone(),
            target: target.clone(),
            from,
            boot_id,
            forced: d.deployment.update == "forced",
        });
        if let Err(e) = self.save() {
            return self
                .fail(
                    &action,
                    format!("cannot keep the update's state: {e}"),
                    sleep,
                )
                .await;
        }
        self.tell(
            &action,
            Feedback::proceeding(
                Some((95, 100)),
                format!(
                    "installed into slot {target} in {} s; rebooting when no check-in is under way{}",
                    started.elapsed().as_secs(),
                    if d.deployment.update == "forced" { "" } else { " and within the maintenance window" }
                ),
            ),
        )
        .await;
        self.try_reboot(sleep).await
    }

    /// Reports a failed action (retried until the server has it) and forgets it.
    pub(super) async fn fail(
        &mut self,
        action: &str,
        why: String,
        sleep: Duration,
    ) -> (Outcome, Duration) {
        tracing::error!(action, reason = %why, "update failed; the running slot is untouched");
        self.finish(action, false, why, sleep).await
    }

    pub(super) async fn finish(
        &mut self,
        action: &str,
        success: bool,
        detail: String,
        sleep: Duration,
    ) -> (Outcome, Duration) {
        if let Err(reason) = self
            .client
            .deployment_feedback(action, &Feedback::closed(success, detail.clone()))
            .await
        {
            // The pending state (if any) stays, so the report is made again next time.
            return (
                Outcome::Unreachable { reason },
                sleep.min(Duration::from_secs(60)),
            );
        }
        if self
            .state
            .pending
            .as_ref()
            .is_some_and(|p| p.action == action)
        {
            self.state.pending = None;
            let _ = self.save();
        }
        (
            Outcome::Finished {
                action: action.to_string(),
                success,
                detail,
            },
            sleep,
        )
    }
}
