//! The touchscreen UI: Slint screens in `ui/*.slint`, fed by a controller.
//!
//! - [`controller`]: the state the screens show and what a touch means (pure Rust, tested
//!   without a window).
//! - `adapter`: copies that state into the Slint `Kiosk` global and routes its callbacks back.
//! - [`admin`]: the data behind the admin pages (roster, sync, audit, retention, settings,
//!   about), read from the store.
//! - [`headless`]: a software-rendered window without a display, for tests and the gallery
//!   (`clockface ui gallery`), with real pointer events.
//!
//! Backends: `SLINT_BACKEND=winit` (a desktop window, X11) or `linuxkms` (the appliance's
//! panel, no seat manager; software renderer). The UI must not touch the store's write path or
//! the vision pipeline: it renders and sends commands.

slint::include_modules!();

pub(crate) mod adapter;
pub mod admin;
pub(crate) mod app;
pub mod controller;
pub mod gallery;
pub mod headless;
pub mod state;
