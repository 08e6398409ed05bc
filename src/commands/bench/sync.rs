//! `bench sync`: a large queue uploaded to `clockface-hub` on loopback.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use crate::base::clock::SystemClock;
use crate::base::error::{Error, Result};
use crate::store::Store;
use crate::store::record::NewRecord;

use super::measure::peak_rss_mib;
use super::store::{options, sample_record};

/// Figures of one `bench sync` run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncFigures {
    /// Check-ins uploaded.
    pub records: u64,
    /// Entries per upload.
    pub batch_size: u32,
    /// Wall time of the sync round (heartbeat, downloads and every upload), seconds.
    pub seconds: f64,
    /// Check-ins per second.
    pub records_per_second: f64,
    /// Peak RSS of the kiosk side (this process), MiB.
    pub kiosk_peak_rss_mib: f64,
    /// Peak RSS of the `clockface-hub` process, MiB.
    pub hub_peak_rss_mib: f64,
}

/// `clockface bench sync`: queues `records` check-ins, starts `clockface-hub` (the binary
/// next to this one) on loopback, pairs, and times one sync round that uploads them all.
pub fn sync(records: u64, batch_size: u32, json: bool, out: &mut dyn Write) -> Result<SyncFigures> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("temporary dir", e))?;
    let kiosk_dir = dir.path().join("kiosk");
    let mut store = Store::open(&options(&kiosk_dir), Arc::new(SystemClock::new()))?;
    let pb = crate::commands::context::progress_bar(records, "queueing check-ins");
    let mut i = 0;
    while i < records {
        let n = (records - i).min(10_000);
        let batch: Vec<NewRecord> = (i..i + n).map(sample_record).collect();
        store.append_many(&batch)?;
        i += n;
        if let Some(pb) = &pb {
            pb.set_position(i);
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }

    let spec = crate::hub::db::DbSpec::from(dir.path().join("hub.db").as_path());
    let code = super::hub::pairing_code(&spec, "bench")?;
    let (hub, url) = super::hub::serve(&spec)?;

    let mut cfg = crate::base::config::Config::default();
    cfg.sync.url = url.clone();
    cfg.sync.batch_size = batch_size;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("runtime", e))?;
    let result = (|| -> Result<f64> {
        rt.block_on(crate::sync::pair(&mut store, &cfg, &url, &code))
            .map_err(|e| Error::invalid("bench pairing", e.to_string()))?;
        let syncer = crate::sync::Syncer::for_store(&store, &cfg)?.expect("just paired");
        let t0 = Instant::now();
        let rep = rt
            .block_on(syncer.round(&mut store))
            .map_err(|e| Error::invalid("bench sync", e.to_string()))?;
        let secs = t0.elapsed().as_secs_f64();
        if rep.checkins != records {
            return Err(Error::invalid(
                "bench sync",
                format!("uploaded {} of {records}", rep.checkins),
            ));
        }
        Ok(secs)
    })();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(hub.id() as i32, libc::SIGTERM) };
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(hub.id() as i32, &mut status, 0, &mut usage) };
    let secs = result?;
    let f = SyncFigures {
        records,
        batch_size,
        seconds: secs,
        records_per_second: records as f64 / secs,
        kiosk_peak_rss_mib: peak_rss_mib(),
        hub_peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
    };
    crate::commands::context::emit(out, json, &f, |out| {
        let _ = writeln!(
            out,
            "sync: {} check-ins in {:.2} s = {:.0} records/s (batches of {}); peak RSS kiosk {:.1} MiB, hub {:.1} MiB",
            f.records,
            f.seconds,
            f.records_per_second,
            f.batch_size,
            f.kiosk_peak_rss_mib,
            f.hub_peak_rss_mib
        );
    });
    Ok(f)
}
