//! Clockface: a face-attendance kiosk appliance.
//!
//! An employee taps a badge (or types a PIN) and looks at the camera; the kiosk verifies them on
//! the device and records a signed, hash-chained check-in to SQLite that survives power loss,
//! then syncs batches to the enterprise backend. This crate is the whole appliance and its
//! reference backend; `main.rs` and `bin/clockface-hub.rs` only parse the command line.
//!
//! Module map, by layer. Each layer imports only the layers below it (`docs/architecture.md`
//! draws them; `tests/integration/layers.rs` fails when a file reaches up):
//!
//! 1. **base** — [`base`]: errors, config types and their validation, clock, the RGB frame,
//!    the sync wire types, badge-id normalisation, systemd notification. Imports nothing else
//!    of the crate.
//! 2. **devices, vision and storage**, each over base only, and apart from each other:
//!    - [`vision`] — on-device face pipeline with ONNX Runtime: YuNet detection, 5-point
//!      alignment, DTN liveness with quality gates and fusion, MobileFaceNet/SFace
//!      embeddings, 1:1 and int8 1:N matching;
//!    - [`camera`] — the capture thread, V4L2 and replay sources;
//!    - [`hw`] — GPIO (rppal, simulated) and badge readers (evdev, MFRC522, simulated);
//!    - [`store`] — the SQLite store: migrations, device identity and keys, the signed record
//!      and audit formats and their chains, roster with consent and sealed templates,
//!      settings changed at the kiosk, retention, export.
//! 3. **sync** — [`sync`]: the HTTP/TLS client of sync protocol v1, outbox rounds with
//!    backoff, pairing, roster and policy download. Over store and base.
//! 4. **kiosk** — [`kiosk`]: the pure check-in state machine and the tokio runner that
//!    connects it to everything above, plus the health endpoint.
//!    **update** — [`update`]: the hawkBit DDI client that installs signed bundles from a fleet
//!    server (`clockface update run`, its own unit). Over sync's TLS setup and base; reaches the
//!    kiosk only through its health endpoint and a notice file.
//! 5. **ui** — [`ui`]: the touchscreen (Slint): controller, state, adapter to the Slint
//!    globals, admin pages, headless rendering. Over kiosk.
//! 6. **top** — [`commands`]: every CLI command with its arguments, the demo and the
//!    benchmarks; [`hub`]: `clockface-hub`, the reference backend, which uses only base (the
//!    protocol) and the store's record codec, never the kiosk or the CLI.

pub mod base;
pub mod camera;
pub mod commands;
pub mod hr;
pub mod hub;
pub mod hw;
pub mod kiosk;
pub mod store;
pub mod sync;
pub mod ui;
pub mod update;
pub mod vision;
