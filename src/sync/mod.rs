//! Sync with the enterprise backend: pairing, the outbox, roster and policy download.
//!
//! The wire types are `base::protocol`; `client` is the HTTP/TLS client. This module runs sync
//! rounds: heartbeat, roster and policy download with ETags, then upload of both chains in
//! batches until the outbox is empty. A round marks an entry synced only when the backend acknowledged
//! that exact seq with that exact hash, so lost, duplicated or reordered acknowledgements can
//! delay an entry but never lose or double it (the backend deduplicates by device and seq).
//! The outbox task runs rounds on its own thread with its own store connection, with
//! exponential backoff and jitter between failed rounds. It owns no state of its own: all of
//! it is in the store, so a restart resumes where it stopped.

mod biometrics;
pub(crate) mod client;
pub mod pairing;

pub use pairing::{client_for, pair, read_token};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::Rng;
use tokio::sync::{Notify, watch};

use crate::base::clock::Clock;
use crate::base::config::Config;
use crate::base::protocol::{Ack, AckStatus, Heartbeat, UploadEntry};
use crate::store::sync::{OutboxChain, PendingEntry};
use crate::store::{Store, StoreOptions};
pub use client::{HubClient, SyncError};

/// Exponential backoff with jitter and a cap, honouring the backend's Retry-After.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// Starts at `base` after the first failure and never exceeds `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap: cap.max(base),
            failures: 0,
        }
    }

    /// The wait after one more failure: a random point in the upper half of
    /// `min(cap, base·2^(n−1))`, or the backend's Retry-After if longer (but never over the cap).
    pub fn next_delay(&mut self, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exp = self
            .base
            .saturating_mul(1u32 << (self.failures - 1).min(20))
            .min(self.cap);
        let half = exp / 2;
        let jittered = half + exp.saturating_sub(half).mul_f64(rng.gen_range(0.0..=1.0));
        jittered.max(retry_after.unwrap_or_default()).min(self.cap)
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Called after a successful round.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// What one sync round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RoundReport {
    /// Check-ins acknowledged in this round.
    pub checkins: u64,
    /// Audit entries acknowledged in this round.
    pub audit: u64,
    /// Entries the backend refused (kept locally, out of the outbox).
    pub refused: u64,
    /// Whether a new roster was applied.
    pub roster_applied: bool,
    /// Whether a new policy was stored.
    pub policy_updated: bool,
    /// Backend time minus kiosk time (ms).
    pub clock_skew_ms: i64,
    /// Entries put back into the outbox because the backend holds less than it acknowledged.
    pub resent: u64,
    /// People whose consent or enrolment here the backend was told of.
    pub biometrics: u64,
}

/// Skew beyond which the kiosk warns that its clock is off.
pub const SKEW_WARN_MS: i64 = 5 * 60_000;

/// How the sync learns the kiosk's camera and model status for its heartbeats (the kiosk
/// loop owns them; the outbox thread only asks).
pub type StatusProbe = Arc<dyn Fn() -> crate::base::protocol::KioskStatus + Send + Sync>;

/// Runs sync rounds for one paired kiosk.
pub struct Syncer {
    client: HubClient,
    batch: usize,
    model: String,
    pseudonymise: bool,
    interval_s: u32,
    status: Option<StatusProbe>,
}

impl Syncer {
    /// A syncer if the kiosk is paired (a token and a URL); `None` otherwise.
    pub fn for_store(store: &Store, config: &Config) -> crate::base::error::Result<Option<Syncer>> {
        let Some(token) = read_token(store.data_dir())? else {
            return Ok(None);
        };
        let status = store.sync_status()?;
        let url = if config.sync.url.is_empty() {
            status.url
        } else {
            config.sync.url.clone()
        };
        if url.is_empty() {
            return Ok(None);
        }
        Ok(Some(Syncer {
            client: client_for(config, Some(&url))?.with_token(token),
            batch: config
                .sync
                .batch_size
                .clamp(1, crate::base::protocol::MAX_BATCH as u32) as usize,
            model: config.vision.embedder.name().to_owned(),
            pseudonymise: config.retention.pseudonymise_departed,
            interval_s: config.sync.interval_seconds,
            status: None,
        }))
    }

    /// Reports the kiosk's camera and model status in each heartbeat.
    pub fn with_status(mut self, probe: Option<StatusProbe>) -> Syncer {
        self.status = probe;
        self
    }

    /// One round: heartbeat, roster, policy, then both chains uploaded until empty.
    pub async fn round(&self, store: &mut Store) -> Result<RoundReport, SyncError> {
        let mut rep = RoundReport::default();
        let clock = store.clock().clone();
        let hb = Heartbeat {
            device_time_ms: clock.wall_ms(),
            clock_synchronised: clock.synchronised(),
            queue_depth: store.queued(OutboxChain::Checkins)?,
            audit_queue_depth: store.queued(OutboxChain::Audit)?,
            free_disk_bytes: free_bytes(store.data_dir()),
            head_seq: store.stats()?.head_seq,
            version: env!("CARGO_PKG_VERSION").into(),
            models: Default::default(),
            interval_s: Some(self.interval_s),
            status: self.status.as_ref().map(|p| p()),
        };
        let hr = self.client.heartbeat(&hb).await?;
        let was_off = store
            .sync_status()?
            .clock_skew_ms
            .is_some_and(|s| s.abs() > SKEW_WARN_MS);
        store.record_clock_skew(hr.clock_skew_ms)?;
        rep.clock_skew_ms = hr.clock_skew_ms;
        if let Some(heads) = &hr.heads {
            for (chain, head) in [
                (OutboxChain::Checkins, &heads.checkins),
                (OutboxChain::Audit, &heads.audit),
            ] {
                rep.resent += check_backend_head(store, chain, head.seq)?;
            }
        }
        // Said once when the clock goes off (it stays visible in the sync status).
        if hr.clock_skew_ms.abs() > SKEW_WARN_MS && !was_off {
            tracing::warn!(
                skew_s = hr.clock_skew_ms / 1000,
                "this kiosk's clock differs from the backend's; records keep their own time and boot-relative order"
            );
        }
        // Consent decisions and enrolments here go first, so that the roster downloaded next
        // already reflects them (and this kiosk's own withdrawal is never undone by it).
        rep.biometrics = self.push_biometrics(store).await?;
        if let Some((roster, tag)) = self.client.roster(store.roster_etag()?.as_deref()).await? {
            let applied = store.apply_roster(&roster, &tag, &self.model)?;
            tracing::info!(
                version = roster.version,
                upserted = applied.upserted,
                deleted = applied.deleted,
                templates = applied.templates,
                "roster applied"
            );
            rep.roster_applied = true;
        }
        if let Some((doc, tag)) = self.client.policy(store.policy_etag()?.as_deref()).await? {
            let cfg = Config {
                policy: doc.policy.clone(),
                ..Config::default()
            };
            if let Some(p) = cfg.validate().first() {
                return Err(SyncError::Protocol(format!(
                    "backend policy version {} is invalid ({p}); the current policy stays",
                    doc.version
                )));
            }
            store.set_backend_policy(&doc, &tag)?;
            tracing::info!(version = doc.version, "backend policy stored");
            rep.policy_updated = true;
        }
        // Uploads last, so the audit entries the roster and policy made go in this round.
        let (n, refused) = self.drain(store, OutboxChain::Checkins).await?;
        rep.checkins = n;
        rep.refused += refused;
        let (n, refused) = self.drain(store, OutboxChain::Audit).await?;
        rep.audit = n;
        rep.refused += refused;
        if self.pseudonymise {
            // Acknowledgements and roster deletions may have made some check-ins eligible; the
            // audit entry this writes goes in the next round.
            store.pseudonymise_departed()?;
        }
        Ok(rep)
    }

    /// Uploads `chain`'s outbox batch by batch until it is empty. Returns (acknowledged,
    /// refused).
    async fn drain(&self, store: &mut Store, chain: OutboxChain) -> Result<(u64, u64), SyncError> {
        let mut total = 0u64;
        let mut refused_total = 0u64;
        let queued = store.queued(chain)?;
        let mut next_report = 10_000u64;
        loop {
            let batch = store.pending(chain, self.batch)?;
            if batch.is_empty() {
                return Ok((total, refused_total));
            }
            let entries = batch
                .iter()
                .map(|p| UploadEntry {
                    seq: p.seq,
                    entry: B64.encode(&p.bytes),
                })
                .collect();
            let resp = self.client.upload(chain.api_path(), entries).await?;
            let r = reconcile(&batch, &resp.acks);
            let now = store.clock().wall_ms();
            store.mark_acknowledged(chain, &r.acknowledged, now)?;
            store.mark_refused(chain, &r.refused)?;
            check_backend_head(store, chain, resp.head.seq)?;
            if r.ignored > 0 {
                tracing::warn!(
                    chain = chain.as_str(),
                    ignored = r.ignored,
                    "ignored acknowledgements that match no entry sent (unknown seq or other hash)"
                );
            }
            if !r.refused.is_empty() {
                tracing::error!(
                    chain = chain.as_str(),
                    refused = r.refused.len(),
                    first_seq = r.refused[0].0,
                    reason = %r.refused[0].1,
                    "backend refused entries; they stay on the kiosk, out of the outbox"
                );
            }
            if r.acknowledged.is_empty() && r.refused.is_empty() {
                return Err(SyncError::Protocol(format!(
                    "backend acknowledged none of the {} {} entries sent",
                    batch.len(),
                    chain.as_str()
                )));
            }
            total += r.acknowledged.len() as u64;
            refused_total += r.refused.len() as u64;
            if total >= next_report {
                tracing::info!(
                    chain = chain.as_str(),
                    uploaded = total,
                    queued,
                    "sync progress"
                );
                next_report += 10_000;
            }
        }
    }
}

/// Compares what the backend says it holds of `chain` with what this kiosk has. A head beyond
/// the kiosk's own is never recorded (it is logged and audited once per value: a backend that
/// claims records this kiosk never signed is not to be trusted); a head behind the one last
/// seen means the backend lost entries, which go back into the outbox. Returns how many did.
fn check_backend_head(
    store: &mut Store,
    chain: OutboxChain,
    backend_seq: u64,
) -> Result<u64, SyncError> {
    let own = store.chain_head_seq(chain)?;
    if backend_seq > own {
        let mut a =
            crate::store::audit::NewAudit::new("system", "backend_head_ahead", chain.as_str());
        a.detail = serde_json::json!({ "backend_seq": backend_seq, "own_seq": own }).to_string();
        let already = store
            .recent_audit(20)?
            .iter()
            .any(|e| e.action == a.action && e.detail == a.detail);
        if !already {
            tracing::error!(
                chain = chain.as_str(),
                backend_seq,
                own_seq = own,
                "the backend claims entries this kiosk never signed; its head is not trusted"
            );
            store.audit(&a)?;
        }
        return Ok(0);
    }
    let seen = store.backend_head(chain)?;
    let mut resent = 0;
    if seen.is_some_and(|s| backend_seq < s) {
        resent = store.resend_after(chain, backend_seq, "backend_behind")?;
        tracing::warn!(
            chain = chain.as_str(),
            backend_seq,
            resent,
            "the backend holds less than it acknowledged; sending the rest again"
        );
    }
    store.record_backend_head_of(chain, backend_seq)?;
    Ok(resent)
}

/// How a batch's acknowledgements map onto what was sent.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Seqs the backend holds with our exact bytes.
    pub acknowledged: Vec<u64>,
    /// Seqs the backend refused (our exact bytes), with its reason.
    pub refused: Vec<(u64, String)>,
    /// Acknowledgements that name a seq not sent, or another hash, or repeat one already seen.
    pub ignored: usize,
}

/// Matches acknowledgements to the entries sent, by seq and hash.
pub fn reconcile(sent: &[PendingEntry], acks: &[Ack]) -> Reconciled {
    let mine: std::collections::HashMap<u64, String> = sent
        .iter()
        .map(|p| {
            (
                p.seq,
                hex::encode(crate::store::entry::entry_hash(&p.bytes)),
            )
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut out = Reconciled::default();
    for a in acks {
        let matches = mine
            .get(&a.seq)
            .is_some_and(|h| h.eq_ignore_ascii_case(&a.hash));
        if !matches || !seen.insert(a.seq) {
            out.ignored += 1;
            continue;
        }
        match a.status {
            AckStatus::Stored | AckStatus::Duplicate => out.acknowledged.push(a.seq),
            AckStatus::Rejected => out.refused.push((a.seq, a.reason.clone())),
        }
    }
    out.acknowledged.sort_unstable();
    out
}

/// Free bytes for unprivileged writers on the file system holding `dir` (0 when unknown).
pub(crate) fn free_bytes(dir: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return 0;
    };
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return 0;
    }
    s.f_bavail as u64 * s.f_frsize as u64
}

/// Signals between the outbox thread and the kiosk.
#[derive(Clone)]
pub struct OutboxHandle {
    /// Wakes the outbox at once (a check-in was just recorded).
    pub wake: Arc<Notify>,
    /// Bumped after a round that changed the roster or policy, so the kiosk reloads them.
    pub roster_changed: watch::Receiver<u64>,
    worker: crate::base::worker::Worker,
}

impl OutboxHandle {
    /// Stops the outbox (finishing the request in flight at most) and waits for it.
    pub fn stop(&self) {
        self.worker.stop();
    }
}

/// Starts the outbox on its own thread with its own store connection. It pairs first when the
/// config carries a pairing code and the kiosk is not paired yet; without a URL it idles.
pub fn spawn_outbox(
    opts: StoreOptions,
    config: Config,
    clock: Arc<dyn Clock>,
    status: Option<StatusProbe>,
) -> crate::base::error::Result<OutboxHandle> {
    let mut store = Store::open(&opts, clock)?;
    let (changed_tx, changed_rx) = watch::channel(0u64);
    let worker = crate::base::worker::Worker::spawn("outbox", move |w, mut stop_rx| {
        async move {
            let interval = Duration::from_secs(config.sync.interval_seconds as u64);
            let cap = Duration::from_secs(config.sync.backoff_max_seconds as u64);
            let mut backoff = Backoff::new(Duration::from_secs(1), cap);
            let mut rng = rand::thread_rng();
            loop {
                if *stop_rx.borrow() {
                    break;
                }
                // Settings an admin changed at the kiosk (the backend URL) apply from the
                // next round.
                let config = crate::store::settings::effective(&config, &store).unwrap_or_else(|e| {
                        tracing::error!(error = %e, "cannot read the settings changed at the kiosk");
                        config.clone()
                    });
                let delay = match outbox_round(&mut store, &config, &status).await {
                    Ok(None) => interval,
                    Ok(Some(rep)) => {
                        backoff.reset();
                        if rep.roster_applied || rep.policy_updated {
                            changed_tx.send_modify(|v| *v += 1);
                        }
                        interval
                    }
                    Err(e) => {
                        let now = store.clock().wall_ms();
                        let _ = store.record_sync_round(now, Some(&e.to_string()));
                        let d = backoff.next_delay(e.retry_after(), &mut rng);
                        tracing::warn!(error = %e, failures = backoff.failures(), retry_in_ms = d.as_millis() as u64, "sync round failed");
                        d
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = w.notified() => {}
                    _ = stop_rx.changed() => {}
                }
            }
        }
    })?;
    Ok(OutboxHandle {
        wake: worker.wake.clone(),
        roster_changed: changed_rx,
        worker,
    })
}

/// One outbox step: pair if provisioned to, then a round. `Ok(None)` when sync is off.
async fn outbox_round(
    store: &mut Store,
    config: &Config,
    status: &Option<StatusProbe>,
) -> Result<Option<RoundReport>, SyncError> {
    if read_token(store.data_dir())?.is_none() {
        if config.sync.url.is_empty() || config.sync.pairing_code.is_empty() {
            return Ok(None);
        }
        pair(store, config, &config.sync.url, &config.sync.pairing_code).await?;
    }
    let Some(s) = Syncer::for_store(store, config)? else {
        return Ok(None);
    };
    let rep = s.with_status(status.clone()).round(store).await?;
    let now = store.clock().wall_ms();
    store.record_sync_round(now, None)?;
    if rep.checkins + rep.audit > 0 {
        tracing::info!(checkins = rep.checkins, audit = rep.audit, "synced");
    }
    Ok(Some(rep))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_jitters_and_stays_under_the_cap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let cap = Duration::from_secs(60);
        let mut b = Backoff::new(Duration::from_secs(1), cap);
        let mut prev_exp = Duration::ZERO;
        for n in 1..=40u32 {
            let d = b.next_delay(None, &mut rng);
            let exp = Duration::from_secs(1)
                .saturating_mul(1 << (n - 1).min(20))
                .min(cap);
            assert!(
                d >= exp / 2 && d <= exp,
                "failure {n}: {d:?} outside [{:?}, {exp:?}]",
                exp / 2
            );
            assert!(exp >= prev_exp);
            prev_exp = exp;
        }
        assert_eq!(b.failures(), 40);
        b.reset();
        assert!(b.next_delay(None, &mut rng) <= Duration::from_secs(1));
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(42)), &mut rng),
            Duration::from_secs(42)
        );
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(86_400)), &mut rng),
            Duration::from_secs(300)
        );
    }

    fn entry(seq: u64) -> PendingEntry {
        PendingEntry {
            seq,
            bytes: vec![seq as u8; 10],
        }
    }

    fn ack(e: &PendingEntry, status: AckStatus) -> Ack {
        Ack {
            seq: e.seq,
            status,
            hash: hex::encode(crate::store::entry::entry_hash(&e.bytes)),
            reason: if status == AckStatus::Rejected {
                "fork".into()
            } else {
                String::new()
            },
        }
    }

    #[test]
    fn reconcile_counts_only_exact_matches_once() {
        let sent = [entry(1), entry(2), entry(3), entry(4)];
        let mut wrong_hash = ack(&sent[1], AckStatus::Stored);
        wrong_hash.hash = "00".repeat(32);
        let acks = vec![
            ack(&sent[2], AckStatus::Duplicate), // out of order
            ack(&sent[0], AckStatus::Stored),
            ack(&sent[0], AckStatus::Stored),  // repeated
            wrong_hash,                        // another entry's bytes
            ack(&entry(9), AckStatus::Stored), // never sent
            ack(&sent[3], AckStatus::Rejected),
        ];
        let r = reconcile(&sent, &acks);
        assert_eq!(r.acknowledged, vec![1, 3]);
        assert_eq!(r.refused, vec![(4, "fork".to_string())]);
        assert_eq!(r.ignored, 3);
    }
}
