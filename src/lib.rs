//! Clockface: a face-attendance kiosk appliance.
//!
//! An employee taps a badge (or types a PIN) and looks at the camera; the kiosk verifies them on
//! the device and records a signed, hash-chained check-in to SQLite that survives power loss,
//! then syncs batches to the enterprise backend. This crate is the whole appliance; `main.rs`
//! only parses the command line.
//!
//! Module map:
//! - [`config`] — the TOML config file: defaults, validation that reports every problem at once.
//! - [`settings`] — what a site admin may change on the touchscreen; checked, audited, kept in
//!   the store and merged over the config file.
//! - [`clock`] — wall time, synchronised flag (`adjtimex`), boot id, monotonic time;
//!   [`clock::SimClock`] for tests.
//! - [`store`] — SQLite store in the data dir: migrations, device identity and keys, signed
//!   check-in records ([`store::record`]), signed audit log ([`store::audit`]), chain
//!   verification ([`store::chain`]), roster with consent and sealed templates
//!   ([`store::roster`]), export ([`store::export`]).
//! - [`vision`] — on-device face pipeline with ONNX Runtime: YuNet detection, 5-point
//!   alignment, DTN liveness with quality gates and fusion, MobileFaceNet/SFace embeddings,
//!   1:1 and int8 1:N matching.
//! - [`sync`] — sync protocol v1 with the backend: wire types, HTTP/TLS client, outbox rounds
//!   with backoff, pairing, roster and policy download.
//! - [`hub`] — `clockface-hub`, the reference backend that implements the protocol.
//! - [`ui`] — the touchscreen (Slint): controller, adapter to the Slint globals, admin pages,
//!   headless rendering.
//! - [`commands`] — what each CLI subcommand does, with output written to a caller's writer.
//! - [`bench`] — benchmarks that print figures (never asserted in tests).
//! - [`demo`] — the embedded default run: a scripted session against a temporary store.
//! - [`error`] — the error type and its retry/alert/reject classification.

pub mod base;
pub mod camera;
pub mod commands;
pub mod hub;
pub mod hw;
pub mod kiosk;
pub mod store;
pub mod sync;
pub mod ui;
pub mod vision;
