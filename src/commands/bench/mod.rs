//! `clockface bench ...`: benchmarks that print figures. Targets are checked by reading these
//! figures, never by timed assertions in tests.
//!
//! - `store`: durable appends per second (one fsync'd transaction each), bytes per record on
//!   disk, and the time and peak memory of `clockface verify` over a large store (run as a child
//!   process so its peak RSS is its own).
//! - `append`: appends records one at a time and prints `ack SEQ` after each is durable; the
//!   crash-durability test SIGKILLs it and checks every acknowledged record survived.
//! - `hr`: pyzk get_attendance, an ADMS push into django-fingerprint-attendance, and the
//!   demo's tap-to-verdict with and without 200 ZK connections.
//! - `sync`: one sync round uploading a large queue to `clockface-hub` on loopback: time,
//!   records per second and the peak memory of both processes.
//! - `hub`: simulated kiosks syncing to one and two hub replicas on SQLite and PostgreSQL,
//!   and a month's timesheet among 10 M stored entries.

pub(crate) mod hr;
pub(crate) mod hub;
pub(crate) mod measure;
pub mod pgtmp;
pub(crate) mod pipeline;
pub(crate) mod store;
pub(crate) mod sync;
pub(crate) mod vision;

use std::io::Write;
use std::path::PathBuf;

use super::context::{ConfigSource, init_logging};
use crate::base::error::Result;
use crate::store::StoreOptions;

/// `clockface bench …`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCmd {
    /// Durable check-ins per second, bytes per record, verify time and memory.
    Store {
        /// Durable (one fsync each) appends to time.
        #[arg(long, default_value_t = 2000)]
        durable: u64,
        /// Size of the store to verify.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Keep the stores here and reuse a large store of the right size on the next run.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
    /// Upload a large queue to clockface-hub on loopback: time, records/s, peak RSS of both.
    Sync {
        /// Check-ins to queue and upload.
        #[arg(long, default_value_t = 100_000)]
        records: u64,
        /// Entries per upload (1-1000).
        #[arg(long, default_value_t = 500)]
        batch_size: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Simulated kiosks syncing to 1 and 2 clockface-hub replicas on SQLite and PostgreSQL
    /// (sustained check-ins/s, round latency, the fleet one hub carries at one sync a minute),
    /// and a month's timesheet for 1,000 employees among many stored entries.
    Hub {
        /// Simulated kiosks (each a store with its own key).
        #[arg(long, default_value_t = 200)]
        kiosks: usize,
        /// Seconds per run.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Check-ins each kiosk records between two syncs.
        #[arg(long, default_value_t = 5)]
        per_round: usize,
        /// Engines: sqlite, postgres or both (PostgreSQL: a throwaway initdb cluster).
        #[arg(long, default_value = "sqlite,postgres")]
        engines: String,
        /// Stored entries for the timesheet run (0 skips it).
        #[arg(long, default_value_t = 10_000_000)]
        timesheet_entries: u64,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The HR-terminal protocols against pyzk and django-fingerprint-attendance (after
    /// `./dev test` installed them): get_attendance, ADMS push, tap-to-verdict under a ZK flood.
    Hr {
        /// Check-ins in the log.
        #[arg(long, default_value_t = 100_000)]
        records: u64,
        /// Skip the two demo runs (tap-to-verdict alone and with 200 ZK connections).
        #[arg(long)]
        no_demo: bool,
    },
    /// Append records one by one to the configured store, printing `ack SEQ` after each.
    Append {
        /// How many records.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// Print an acknowledgement line after each durable append.
        #[arg(long)]
        print_acks: bool,
    },
}

impl BenchCmd {
    /// Runs one benchmark and prints its figures.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        match self {
            BenchCmd::Store {
                durable,
                records,
                keep,
            } => {
                init_logging("warn");
                store::store(durable, records, keep.as_deref(), out)
            }
            BenchCmd::Sync {
                records,
                batch_size,
                json,
            } => {
                init_logging("warn");
                sync::sync(records, batch_size, json, out).map(drop)
            }
            BenchCmd::Hub {
                kiosks,
                seconds,
                per_round,
                engines,
                timesheet_entries,
                json,
            } => {
                init_logging("warn");
                let b = hub::HubBench {
                    kiosks,
                    seconds,
                    per_round,
                    engines: engines.split(',').map(|e| e.trim().to_owned()).collect(),
                    timesheet_entries,
                };
                hub::hub(&b, json, out)
            }
            BenchCmd::Hr { records, no_demo } => {
                init_logging("warn");
                hr::hr(records, !no_demo, out)
            }
            BenchCmd::Append { count, print_acks } => {
                let opts = StoreOptions::from_config(&src.load_logged()?);
                store::append(&opts, count, print_acks, out)
            }
        }
    }
}
