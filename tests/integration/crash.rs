//! Crash durability: a child appends records as fast as it can and prints each acknowledged
//! sequence number; it is SIGKILLed at random moments; after every kill the store must open
//! cleanly, verify, and hold every acknowledged record.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use clockface::base::config::Config;
use clockface::commands::records;
use common::*;
use rand::Rng;

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut rng = rand::thread_rng();
    let mut acked: Vec<u64> = Vec::new();
    let kills = 24;
    for round in 0..kills {
        let mut child = Command::new(bin())
            .arg("--data-dir")
            .arg(&data)
            .args(["bench", "append", "--count", "100000000", "--print-acks"])
            .env_remove("CLOCKFACE_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("child starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(seq) = line.strip_prefix("ack ") {
                    let _ = tx.send(seq.parse::<u64>().unwrap());
                }
            }
        });
        // Kill at a random moment: sometimes during start-up, mostly mid-stream.
        let delay = if round % 6 == 0 {
            rng.gen_range(1..40)
        } else {
            rng.gen_range(60..400)
        };
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().expect("SIGKILL delivered");
        child.wait().unwrap();
        reader.join().unwrap();
        let this_round: Vec<u64> = rx.try_iter().collect();
        acked.extend(&this_round);

        // The store opens cleanly read-write (as the restarted kiosk would)...
        let (store, _) = open(&data);
        for &seq in &acked {
            assert!(
                store.record(seq).unwrap().is_some(),
                "round {round}: acknowledged record {seq} is missing"
            );
        }
        let head = store.stats().unwrap().head_seq;
        assert!(head >= acked.iter().copied().max().unwrap_or(0));
        drop(store);
        // ... and the whole chain verifies.
        let mut cfg = Config::default();
        cfg.store.data_dir = data.clone();
        records::verify(&cfg, false, &mut Vec::new())
            .unwrap_or_else(|e| panic!("round {round}: verify failed after SIGKILL: {e}"));
    }
    assert!(
        acked.len() > kills,
        "the child acknowledged records between kills ({} in total)",
        acked.len()
    );
}
