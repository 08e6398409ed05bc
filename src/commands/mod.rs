//! The command line's commands: each one's arguments (a `clap::Args` struct or a
//! `clap::Subcommand` enum) beside the code that carries it out. `src/main.rs` only parses and
//! dispatches; tests call the functions here directly.
//!
//! Each command takes its parsed arguments, the [`context::ConfigSource`] from the global flags
//! and a writer for its normal output; progress and logs go to stderr.
//!
//! - [`context`]: loading the config, opening the store, logging, JSON-or-text output;
//! - [`kiosk`]: `run`, `enroll`;
//! - [`roster`]: `roster add`, `roster remove`, `roster consent`, `roster guardian-consent`;
//! - [`records`]: `verify`, `export`, `purge`, `export-person`;
//! - [`device`]: `device show`, `pair`, `sync`;
//! - [`hr`]: `zk serve` and `adms push`, the HR-terminal protocols on their own;
//! - [`update`]: `update run`, `update status`, the fleet server's update client;
//! - [`store`]: `store reinit`, for a lost database;
//! - [`config`]: `config check`;
//! - [`provision`], [`health`]: the appliance's first boot and its health check;
//! - [`vision`]: the face pipeline on image files;
//! - [`ui`]: the screen gallery;
//! - [`demo`]: the embedded default, a scripted day on simulated hardware;
//! - [`bench`]: benchmarks that print figures (never asserted in tests).

pub mod bench;
pub mod config;
pub mod context;
pub mod demo;
pub mod device;
pub mod health;
pub mod hr;
pub mod kiosk;
pub mod matching;
pub mod pad;
pub mod pad_plot;
pub mod provision;
pub mod records;
pub mod roster;
pub mod store;
pub mod ui;
pub mod update;
pub mod vision;
