//! The base layer: what every other layer may use, and which uses nothing of the crate above it.
//!
//! - [`error`]: the error type and its retry / alert / reject classification;
//! - [`problem`]: one located problem with a config, setting or provisioning file;
//! - [`config`]: the TOML config's types, defaults and validation;
//! - [`clock`]: wall time, synchronised flag, boot id, monotonic time, a simulated clock;
//! - [`frame`]: the RGB frame cameras produce and the pipeline reads, with its pixel operations;
//! - [`protocol`]: the sync wire types shared by the kiosk and the hub;
//! - [`badge`]: the one normal form of a badge id;
//! - [`text`]: control characters refused or escaped, CSV cells neutralised;
//! - [`worker`]: a background thread that can be woken and stopped (the two outboxes);
//! - [`zone`]: the site's IANA time zone, for every local time people and integrations read;
//! - `notify`: systemd's `sd_notify` (READY, WATCHDOG, STOPPING) for the kiosk and the hub.

pub mod badge;
pub mod clock;
pub mod config;
pub mod error;
pub mod frame;
pub(crate) mod notify;
pub mod problem;
pub mod protocol;
pub mod text;
pub mod tls;
pub mod worker;
pub mod zone;
