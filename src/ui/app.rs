//! The UI on a real display: the Slint event loop on the calling (main) thread, fed by the
//! kiosk core's reports from another thread, sending touches back as [`UiInput`]s.
//!
//! The backend is Slint's choice unless `SLINT_BACKEND` names one: `winit` opens a desktop
//! window (X11), `linuxkms` draws on the appliance's panel without a seat manager.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use slint::ComponentHandle;
use tokio::sync::mpsc;

use super::AppWindow;
use super::adapter::{SharedAdmin, bind, handle_locally, publish, select_language};
use super::admin::AdminSource;
use super::controller::{Command, Controller};
use crate::kiosk::runner::{Report, UiInput};

/// Whether a display is likely reachable (an X/Wayland session, or a DRM device for linuxkms).
pub fn display_available() -> bool {
    std::env::var_os("SLINT_BACKEND").is_some()
        || std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
        || std::path::Path::new("/dev/dri/card0").exists()
        || std::path::Path::new("/dev/dri/card1").exists()
}

/// Runs the UI until its window is closed or `reports` ends. Reports update the screens;
/// touches go to `input`; `admin` answers the admin pages; `status` is polled every second for
/// the clock and the sync line.
pub fn run(
    controller: Controller,
    mut reports: mpsc::UnboundedReceiver<Report>,
    input: mpsc::UnboundedSender<UiInput>,
    admin: Option<Box<dyn AdminSource>>,
    status: Box<dyn Fn() -> (bool, u64)>,
) -> crate::base::error::Result<()> {
    let ui_err =
        |e: &dyn std::fmt::Display| crate::base::error::Error::invalid("UI", e.to_string());
    let app = AppWindow::new().map_err(|e| ui_err(&e))?;
    let language = controller.state.language;
    let zone = controller.zone;
    let controller = Rc::new(RefCell::new(controller));
    let admin: SharedAdmin = Rc::new(RefCell::new(admin));
    let (weak, ctl) = (app.as_weak(), controller.clone());
    bind(
        &app,
        controller.clone(),
        Rc::new(move |c: Command| {
            if let Command::Kiosk(i) = &c {
                let _ = input.send(i.clone());
            }
            handle_locally(&c, &ctl, &admin);
            if let Some(app) = weak.upgrade() {
                publish(&app, &ctl.borrow().state);
            }
        }),
    );
    select_language(language);
    publish(&app, &controller.borrow().state);

    // Reports arrive on another thread; each is applied inside the event loop.
    let weak = app.as_weak();
    std::thread::Builder::new()
        .name("ui-reports".into())
        .spawn(move || {
            while let Some(r) = reports.blocking_recv() {
                let applied = weak.upgrade_in_event_loop(move |app| {
                    APPLY.with(|f| {
                        if let Some(f) = f.borrow().as_ref() {
                            f(&app, &r)
                        }
                    })
                });
                if applied.is_err() {
                    break;
                }
            }
            let _ = slint::quit_event_loop();
        })
        .map_err(|e| crate::base::error::Error::io("ui thread", e))?;
    let c = controller.clone();
    APPLY.with(|f| {
        *f.borrow_mut() = Some(Box::new(move |app: &AppWindow, r: &Report| {
            c.borrow_mut().on_report(r);
            publish(app, &c.borrow().state);
        }))
    });

    // The clock and the sync line, once a second.
    let timer = slint::Timer::default();
    let (weak, c) = (app.as_weak(), controller.clone());
    timer.start(
        slint::TimerMode::Repeated,
        Duration::from_secs(1),
        move || {
            let now = zone.local(chrono::Utc::now().timestamp_millis());
            let (online, queued) = status();
            {
                let mut ctl = c.borrow_mut();
                ctl.set_clock(
                    &now.format("%H:%M").to_string(),
                    &now.format("%Y-%m-%d").to_string(),
                );
                ctl.set_sync(online, queued);
            }
            if let Some(app) = weak.upgrade() {
                publish(&app, &c.borrow().state);
            }
        },
    );
    app.run().map_err(|e| ui_err(&e))
}

type Apply = Box<dyn Fn(&AppWindow, &Report)>;

thread_local! {
    /// How a report changes the screens, installed on the UI thread by [`run`].
    static APPLY: RefCell<Option<Apply>> = const { RefCell::new(None) };
}
