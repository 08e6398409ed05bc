//! The hub's connection loop: hyper driven directly rather than through `axum::serve`, for the
//! limits a server on a network needs and `axum::serve` does not set.
//!
//! - A request's headers must arrive within [`Limits::header_read`]; a body within
//!   [`BODY_READ_TIMEOUT`] (checked where bodies are read); a connection lives at most
//!   [`Limits::lifetime`], after which it is closed once its request in flight is answered.
//! - At most [`Limits::max_connections`] connections are open at once, derived from the
//!   process's file limit so that accepting never runs out of descriptors. At the cap, the
//!   oldest connection that has not sent a single request yet is dropped to make room (what a
//!   slowloris client holds); if every connection is busy, the new one is refused. Either way
//!   it is logged, at most once a second.
//! - On shutdown no connection is accepted, requests in flight get [`Limits::grace`] to finish,
//!   and whatever is still open after that is dropped: a half-sent request never keeps the hub
//!   from exiting.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::serve::Listener;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::oneshot;
use tower::ServiceExt;

/// How long a handler waits for a request body to arrive in full.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection limits of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time allowed for a request's headers to arrive.
    pub header_read: Duration,
    /// Longest life of one connection (keep-alive included).
    pub lifetime: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Time requests in flight get at shutdown.
    pub grace: Duration,
}

impl Limits {
    /// Defaults, with the connection cap kept below the process's open-file limit (leaving
    /// room for the database, the listener and the logs, and `reserved` more).
    pub fn for_this_process(reserved: usize) -> Limits {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is given.
        let files = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 {
            rl.rlim_cur as usize
        } else {
            1024
        };
        Limits {
            header_read: Duration::from_secs(10),
            lifetime: Duration::from_secs(120),
            max_connections: files.saturating_sub(24 + reserved).clamp(4, 4096),
            grace: Duration::from_secs(5),
        }
    }
}

/// One open connection, as the loop tracks it for the cap.
struct Open {
    opened: Instant,
    /// Set once the connection has sent its first request.
    active: Arc<AtomicBool>,
    /// Dropping it closes the connection.
    close: oneshot::Sender<()>,
    done: Arc<AtomicBool>,
}

/// Serves `app` on `listener` until `shutdown` resolves, within `limits`.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut open: VecDeque<Open> = VecDeque::new();
    let mut last_cap_log: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (io, _addr) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            c = listener.accept() => c,
        };
        open.retain(|o| !o.done.load(Ordering::Relaxed));
        if open.len() >= limits.max_connections {
            let idle = open.iter().position(|o| !o.active.load(Ordering::Relaxed));
            let note = match idle {
                Some(i) => {
                    let o = open.remove(i).expect("index in range");
                    drop(o.close);
                    format!(
                        "dropped a connection that sent nothing for {:.1} s",
                        o.opened.elapsed().as_secs_f64()
                    )
                }
                None => "refused a new connection".to_string(),
            };
            if last_cap_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                tracing::warn!(
                    cap = limits.max_connections,
                    "{} connections open, the most this hub allows: {note}",
                    limits.max_connections
                );
                last_cap_log = Some(Instant::now());
            }
            if idle.is_none() {
                drop(io);
                continue;
            }
        }
        let active = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (close_tx, close_rx) = oneshot::channel::<()>();
        let seen = active.clone();
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                seen.store(true, Ordering::Relaxed);
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read)
            .serve_connection(TokioIo::new(io), service);
        let conn = graceful.watch(conn);
        let finished = done.clone();
        let lifetime = limits.lifetime;
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = close_rx => {}
                _ = tokio::time::sleep(lifetime) => {
                    tracing::debug!("connection reached its lifetime; closing it");
                }
            }
            finished.store(true, Ordering::Relaxed);
        });
        open.push_back(Open {
            opened: Instant::now(),
            active,
            close: close_tx,
            done,
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.grace) => {
            tracing::warn!(
                grace_s = limits.grace.as_secs(),
                "connections still open after the grace period are dropped"
            );
        }
    }
    Ok(())
}
