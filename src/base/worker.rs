//! A background thread with a tokio runtime of its own that the kiosk can wake and stop: the
//! hub's sync outbox and the ADMS outbox are both one.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};

use crate::base::error::{Error, Result};

/// A running worker thread: wake it (a check-in was recorded), or stop it and wait for it.
#[derive(Clone)]
pub struct Worker {
    /// Wakes the worker at once.
    pub wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Worker {
    /// Starts thread `name`, running what `body` returns on a current-thread runtime. `body`
    /// gets the wake signal and the stop flag; it runs on the new thread, so its future may
    /// hold a store connection.
    pub fn spawn<F, Fut>(name: &str, body: F) -> Result<Worker>
    where
        F: FnOnce(Arc<Notify>, watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let wake = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);
        let w = wake.clone();
        let label = name.to_string();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("{label} runtime: {e}"));
                rt.block_on(body(w, stop_rx));
            })
            .map_err(|e| Error::io(format!("{name} thread"), e))?;
        Ok(Worker {
            wake,
            stop,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Stops the worker (it finishes the request in flight at most) and waits for it.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        self.wake.notify_one();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}
