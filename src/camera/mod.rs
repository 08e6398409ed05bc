//! Cameras: where frames come from, and the capture thread that keeps them flowing.
//!
//! A [`FrameSource`] captures and decodes one frame at a time (V4L2 or scripted replay). The
//! capture thread owns it, so decoding never happens on the UI or kiosk task, and publishes each
//! frame into a one-slot channel ([`tokio::sync::watch`]): a consumer always gets the newest
//! frame, stale frames are overwritten rather than queued, and capture never blocks on a slow
//! consumer. When the source fails (unplugged, stalled) the thread reports the camera lost and
//! reopens it with exponential backoff until it comes back.

pub mod replay;
pub(crate) mod v4l;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::base::frame::Frame;

/// Why a source stopped delivering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    /// The device is gone or cannot be opened.
    #[error("camera unavailable: {0}")]
    Gone(String),
    /// No frame within the stall timeout.
    #[error("camera stalled: no frame for {0} s")]
    Stalled(u32),
    /// A frame could not be decoded (skipped; the stream goes on).
    #[error("bad frame: {0}")]
    Bad(String),
}

/// Something that produces decoded frames, blocking until the next one.
pub trait FrameSource: Send {
    /// The next frame.
    fn capture(&mut self) -> Result<Frame, CameraError>;
}

/// Opens (or reopens) a frame source.
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, CameraError> + Send>;

/// Camera state as the kiosk sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CameraStatus {
    /// Not opened yet.
    Starting,
    /// Frames are flowing.
    Live,
    /// No frames; the thread keeps trying to reopen.
    Lost {
        /// Why.
        reason: String,
    },
}

/// A frame and when it was captured.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The decoded frame.
    pub frame: Arc<Frame>,
    /// When the capture thread received it.
    pub at: std::time::Instant,
}

/// Handle on a running capture thread.
pub struct Camera {
    /// The newest frame (None until the first arrives, and while the camera is lost).
    pub frames: watch::Receiver<Option<Captured>>,
    /// The camera's status.
    pub status: watch::Receiver<CameraStatus>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// First and longest wait between reopen attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

impl Camera {
    /// Starts the capture thread.
    pub fn spawn(mut open: Opener) -> Camera {
        let (ftx, frames) = watch::channel(None);
        let (stx, status) = watch::channel(CameraStatus::Starting);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("camera".into())
            .spawn(move || {
                let mut wait = BACKOFF.0;
                while !stop2.load(Ordering::Relaxed) {
                    let mut source = match open() {
                        Ok(s) => s,
                        Err(e) => {
                            stx.send_if_modified(|s| set_lost(s, &e));
                            std::thread::sleep(wait);
                            wait = (wait * 2).min(BACKOFF.1);
                            continue;
                        }
                    };
                    while !stop2.load(Ordering::Relaxed) {
                        match source.capture() {
                            Ok(frame) => {
                                wait = BACKOFF.0;
                                ftx.send_replace(Some(Captured {
                                    frame: Arc::new(frame),
                                    at: std::time::Instant::now(),
                                }));
                                stx.send_if_modified(|s| {
                                    if *s != CameraStatus::Live {
                                        tracing::info!("camera live");
                                        *s = CameraStatus::Live;
                                        return true;
                                    }
                                    false
                                });
                            }
                            Err(CameraError::Bad(reason)) => {
                                tracing::debug!(%reason, "skipping a bad frame")
                            }
                            Err(e) => {
                                stx.send_if_modified(|s| set_lost(s, &e));
                                ftx.send_replace(None);
                                break;
                            }
                        }
                    }
                }
            })
            .expect("spawn camera thread");
        Camera {
            frames,
            status,
            stop,
            thread: Some(thread),
        }
    }

    /// The newest frame, if the camera is live.
    pub fn latest(&self) -> Option<Arc<Frame>> {
        self.frames.borrow().as_ref().map(|c| c.frame.clone())
    }

    /// The newest frame captured after `since` (older frames may show whoever stood there
    /// before the kiosk started asking).
    pub fn latest_since(&self, since: std::time::Instant) -> Option<Arc<Frame>> {
        self.frames
            .borrow()
            .as_ref()
            .filter(|c| c.at > since)
            .map(|c| c.frame.clone())
    }

    /// Whether frames are flowing.
    pub fn is_live(&self) -> bool {
        *self.status.borrow() == CameraStatus::Live
    }
}

fn set_lost(s: &mut CameraStatus, e: &CameraError) -> bool {
    let next = CameraStatus::Lost {
        reason: e.to_string(),
    };
    if *s != next {
        tracing::warn!(error = %e, "camera lost; reopening with backoff");
        *s = next;
        return true;
    }
    false
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens the configured camera backend (`replay` needs a script and uses [`replay`]).
pub fn v4l_opener(cfg: crate::base::config::CameraConfig) -> Opener {
    Box::new(move || Ok(Box::new(v4l::V4lSource::open(&cfg)?) as Box<dyn FrameSource>))
}
