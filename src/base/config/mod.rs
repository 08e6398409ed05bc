//! Kiosk configuration: a TOML file, `/etc/clockface/clockface.toml` by default.
//!
//! Owns parsing, defaults and validation. Unknown keys are rejected (`deny_unknown_fields`) so a
//! misspelt setting never silently falls back to a default. [`check_str`] reports every problem
//! in a file at once — syntax, unknown keys, wrong types and out-of-range values — each with its
//! key path, line and what is allowed. It must not touch the store or any hardware.
//!
//! - `sections`: the types, one per `[table]`, with their defaults;
//! - `vision`: `[vision]`, the embedder choice and where models are found;
//! - `integrations`: `[site]` (time zone), `[zk]` and `[adms]`, the HR-terminal protocols;
//! - `update`: `[update]`, the fleet server's DDI client and the maintenance window;
//! - `validate`: the rules beyond types;
//! - `check`: parsing, locating problems by line, layering partial tables.

pub(crate) mod check;
pub(crate) mod integrations;
pub(crate) mod sections;
pub(crate) mod update;
pub(crate) mod validate;
pub(crate) mod vision;

pub use check::{check_str, merge_tables};
pub use integrations::{AdmsConfig, SiteConfig, ZkConfig, check_serial};
pub use sections::*;
pub use update::{UpdateConfig, Window};
pub use validate::{check_region, check_url};
pub use vision::{EmbedderKind, VisionConfig, default_models_dir, default_onnxruntime, dev_cache};
