//! Clockface's integration tests, one binary: every module links the whole appliance (Slint,
//! ONNX Runtime, SQLite, the HTTP stack), so one test binary instead of sixteen keeps a debug
//! build to a fraction of the disk and link time.
//!
//! Each module is one area: `store`, `chain`, `crash`, `bad_input`, `roster`, `consent`, `enroll`, `vision`,
//! `vision_cli`, `machine`, `kiosk`, `run`, `privacy`, `sync`, `hub_api`, `ui`, `units`, `ota`,
//! `hr` (ZK and ADMS against pyzk, zkteco-js and django-fingerprint-attendance).
//! `common` has the shared helpers (temporary stores, the binary, the loopback hub and the
//! fault-injecting proxy in `common::net`).

mod common;

mod bad_input;
mod chain;
mod consent;
mod crash;
mod enroll;
mod fleet;
mod hr;
mod hub_api;
mod hub_pg;
mod kiosk;
mod layers;
mod machine;
mod ota;
mod pad;
mod privacy;
mod probe;
mod roster;
mod run;
mod store;
mod sync;
mod ui;
mod units;
mod update;
mod vision;
mod vision_cli;
mod webhooks;
