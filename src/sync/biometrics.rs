//! The consent part of a sync round: each consent decision and enrolment made at this kiosk
//! goes to the backend (`POST /v1/biometrics`) before the roster is downloaded, so that the
//! person's other doors follow and this kiosk's own withdrawal is never undone by the download.

use super::{SyncError, Syncer};
use crate::store::Store;

impl Syncer {
    /// Tells the backend of every queued consent decision and enrolment. A person the backend
    /// refuses to take (not on its roster, say) is logged and not retried; a backend without
    /// the endpoint (older than protocol 1.2) leaves the queue for a later one.
    pub(super) async fn push_biometrics(&self, store: &mut Store) -> Result<u64, SyncError> {
        let mut sent = 0u64;
        let queued = store.biometric_outbox(10_000)?;
        for (id, stamp) in queued {
            let update = store.biometric_update(&id, &self.model)?;
            match self.client.biometrics(&update).await {
                Ok(ack) if !ack.refused.is_empty() => {
                    tracing::error!(reason = %ack.refused, "the backend refused a consent update; not retried");
                }
                Ok(_) => {}
                Err(SyncError::Status { status: 404, .. }) => {
                    tracing::warn!(
                        "the backend does not take consent updates (protocol before 1.2); templates stay on this kiosk"
                    );
                    return Ok(sent);
                }
                Err(SyncError::Status {
                    status: 400 | 422,
                    message,
                    ..
                }) => {
                    tracing::error!(reason = %message, "the backend refused a consent update; not retried");
                }
                Err(e) => return Err(e),
            }
            store.biometric_sent(&id, stamp)?;
            sent += 1;
        }
        if sent > 0 {
            tracing::info!(
                people = sent,
                "consent and enrolment changes sent to the backend"
            );
        }
        Ok(sent)
    }
}
