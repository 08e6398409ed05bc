//! The UI without a display: Slint's software renderer into memory, real pointer events in.
//!
//! Used by the tests (every screen rendered in both languages and both panel sizes, taps on the
//! PIN pad and admin buttons) and by `clockface ui gallery`. Slint's platform is per thread, so
//! each thread that makes a [`Headless`] installs this one first.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{PointerEventButton, WindowAdapter, WindowEvent};
use slint::{ComponentHandle, LogicalPosition, PhysicalSize};

use super::AppWindow;
use super::adapter::{SharedAdmin, bind, handle_locally, publish, select_language};
use super::admin::AdminSource;
use super::controller::{Command, Controller};
use super::state::UiState;
use crate::base::config::Language;

thread_local! {
    /// The window the platform made last on this thread.
    static LAST_WINDOW: RefCell<Option<Rc<MinimalSoftwareWindow>>> = const { RefCell::new(None) };
}

struct HeadlessPlatform;

impl slint::platform::Platform for HeadlessPlatform {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, slint::PlatformError> {
        let w = MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer);
        LAST_WINDOW.with(|l| *l.borrow_mut() = Some(w.clone()));
        Ok(w)
    }
}

/// A rendered screen.
pub type Rgba = image::RgbaImage;

/// The app in a headless window of a given size.
pub struct Headless {
    /// The Slint component.
    pub app: AppWindow,
    window: Rc<MinimalSoftwareWindow>,
    /// The controller behind the screens.
    pub controller: Rc<RefCell<Controller>>,
    /// Commands the touches produced, in order (language and admin loads are also handled).
    pub commands: Rc<RefCell<Vec<Command>>>,
}

impl Headless {
    /// A window of `width`×`height` pixels showing `state`; `admin` answers admin pages.
    pub fn new(
        width: u32,
        height: u32,
        state: UiState,
        admin: Option<Box<dyn AdminSource>>,
    ) -> crate::base::error::Result<Headless> {
        // Fails harmlessly when this thread already has it.
        let _ = slint::platform::set_platform(Box::new(HeadlessPlatform));
        let app = AppWindow::new()
            .map_err(|e| crate::base::error::Error::invalid("UI", e.to_string()))?;
        let window = LAST_WINDOW.with(|l| l.borrow_mut().take()).ok_or_else(|| {
            crate::base::error::Error::invalid("UI", "no headless window was made")
        })?;
        window.set_size(PhysicalSize::new(width, height));
        let controller = Rc::new(RefCell::new(Controller {
            state,
            zone: Default::default(),
        }));
        let commands = Rc::new(RefCell::new(Vec::new()));
        let admin: SharedAdmin = Rc::new(RefCell::new(admin));
        let (weak, ctl, cmds) = (app.as_weak(), controller.clone(), commands.clone());
        bind(
            &app,
            controller.clone(),
            Rc::new(move |c: Command| {
                handle_locally(&c, &ctl, &admin);
                if let Some(app) = weak.upgrade() {
                    publish(&app, &ctl.borrow().state);
                }
                cmds.borrow_mut().push(c);
            }),
        );
        let h = Headless {
            app,
            window,
            controller,
            commands,
        };
        h.refresh();
        h.app
            .show()
            .map_err(|e| crate::base::error::Error::invalid("UI", e.to_string()))?;
        Ok(h)
    }

    /// Shows a camera frame on the capture pages.
    pub fn set_preview(&self, frame: &crate::base::frame::Frame) {
        super::adapter::set_preview(&self.app, frame);
    }

    /// Publishes the controller's state (after changing it directly).
    pub fn refresh(&self) {
        let st = self.controller.borrow().state.clone();
        select_language(st.language);
        publish(&self.app, &st);
    }

    /// Renders the current screen.
    pub fn render(&self) -> crate::base::error::Result<Rgba> {
        slint::platform::update_timers_and_animations();
        self.window.request_redraw();
        let shot = self
            .app
            .window()
            .take_snapshot()
            .map_err(|e| crate::base::error::Error::invalid("UI snapshot", e.to_string()))?;
        Rgba::from_raw(shot.width(), shot.height(), shot.as_bytes().to_vec()).ok_or_else(|| {
            crate::base::error::Error::invalid("UI snapshot", "buffer size mismatch")
        })
    }

    /// Renders the current screen to a PNG file.
    pub fn save_png(&self, path: &Path) -> crate::base::error::Result<()> {
        self.render()?.save(path).map_err(|e| {
            crate::base::error::Error::invalid(path.display().to_string(), e.to_string())
        })
    }

    /// A finger tap at (x, y) logical pixels: press, then release, as the touchscreen sends.
    pub fn tap(&self, x: f32, y: f32) {
        let position = LogicalPosition::new(x, y);
        let w = self.app.window();
        w.dispatch_event(WindowEvent::PointerMoved { position });
        w.dispatch_event(WindowEvent::PointerPressed {
            position,
            button: PointerEventButton::Left,
        });
        w.dispatch_event(WindowEvent::PointerReleased {
            position,
            button: PointerEventButton::Left,
        });
        w.dispatch_event(WindowEvent::PointerExited);
        slint::platform::update_timers_and_animations();
    }
}

/// Sets the language of a fresh state (for the gallery and tests).
pub fn with_language(mut s: UiState, l: Language) -> UiState {
    s.language = l;
    s
}
