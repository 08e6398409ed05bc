//! The A/B slots an update goes into: RAUC on the appliance, or a simulated pair for the demo
//! and the tests. Either way the bundle's signature is checked by the real `rauc` before a
//! slot is touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// What the update client needs of the boot system.
pub trait Slots: Send {
    /// The slot the running system booted from ("A" or "B").
    fn booted(&self) -> Result<String, String>;
    /// Changes at every boot: tells the client a reboot happened.
    fn boot_id(&self) -> Result<String, String>;
    /// Whether the boot check marked `slot` good.
    fn is_good(&self, slot: &str) -> Result<bool, String>;
    /// Installs a bundle into the inactive slot and arms a trial boot of it; returns that slot.
    fn install(&mut self, bundle: &Path) -> Result<String, String>;
    /// Takes back an armed trial boot (the action was canceled before the reboot).
    fn disarm(&mut self) -> Result<(), String>;
    /// Reboots into the armed slot.
    fn reboot(&mut self) -> Result<(), String>;
    /// The version of what runs now, when the boot system knows it.
    fn running_version(&self) -> Option<String> {
        None
    }
}

/// The other slot of an A/B pair.
pub fn other(slot: &str) -> &'static str {
    if slot == "A" { "B" } else { "A" }
}

/// RAUC on the appliance: `rauc install`, `rauc status`, and the kernel's boot id.
pub struct Rauc;

fn run(cmd: &mut Command) -> Result<String, String> {
    let name = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() {
        Ok(text)
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let why = last_error(&format!("{text}\n{err}"));
        // A tool killed by a signal (a sandbox's syscall filter, the OOM killer) says nothing.
        Err(if why == "no output" {
            format!("{name} ended with {} and printed nothing", out.status)
        } else {
            why
        })
    }
}

/// The line of rauc's output that says why it failed, without its log prefixes.
pub fn last_error(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let pick = lines
        .iter()
        .rev()
        .find(|l| l.contains("LastError:") || l.contains("rror"))
        .or(lines.last())
        .copied()
        .unwrap_or("no output");
    let pick = pick.split("LastError:").last().unwrap_or(pick).trim();
    pick.chars().take(400).collect()
}

#[derive(Deserialize)]
struct RaucStatus {
    booted: Option<String>,
    #[serde(default)]
    slots: Vec<std::collections::BTreeMap<String, RaucSlot>>,
}

#[derive(Deserialize)]
struct RaucSlot {
    bootname: Option<String>,
    boot_status: Option<String>,
}

impl Slots for Rauc {
    fn booted(&self) -> Result<String, String> {
        let cmdline = std::fs::read_to_string("/proc/cmdline").map_err(|e| e.to_string())?;
        cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix("rauc.slot="))
            .map(str::to_string)
            .ok_or_else(|| "the kernel command line names no rauc.slot: not an A/B system".into())
    }

    fn boot_id(&self) -> Result<String, String> {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("boot id: {e}"))
    }

    fn is_good(&self, slot: &str) -> Result<bool, String> {
        let out = run(Command::new("rauc").args(["status", "--output-format=json"]))?;
        let st: RaucStatus = serde_json::from_str(&out).map_err(|e| format!("rauc status: {e}"))?;
        let _ = st.booted;
        let s = st
            .slots
            .iter()
            .flat_map(|m| m.values())
            .find(|s| s.bootname.as_deref() == Some(slot))
            .ok_or_else(|| format!("rauc status names no slot {slot}"))?;
        Ok(s.boot_status.as_deref() == Some("good"))
    }

    fn install(&mut self, bundle: &Path) -> Result<String, String> {
        let booted = self.booted()?;
        run(Command::new("rauc").arg("install").arg(bundle))?;
        Ok(other(&booted).to_string())
    }

    fn disarm(&mut self) -> Result<(), String> {
        run(Command::new("rauc").args(["status", "mark-active", "booted"])).map(|_| ())
    }

    fn reboot(&mut self) -> Result<(), String> {
        // rauc-pi-boot left the tryboot flag in /run/systemd/reboot-param at install.
        if let Ok(p) = std::fs::read_to_string("/run/systemd/reboot-param") {
            tracing::info!(reboot_param = p.trim(), "rebooting into the trial slot");
        }
        run(Command::new("systemctl").arg("reboot")).map(|_| ())
    }
}

/// A simulated A/B pair kept in a JSON file: what the firmware and the boot check would do,
/// for the demo and the tests. `install` checks the bundle with `rauc info` against the
/// keyring and the compatible string, as `rauc install` would; a reboot boots the trial slot
/// and runs the boot check, which fails while the file `trial-fails` is in the directory.
pub struct SimSlots {
    path: PathBuf,
    keyring: PathBuf,
    compatible: String,
}

/// The simulated firmware and slot state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimState {
    /// The slot running now.
    pub booted: String,
    /// The slot the next normal boot takes.
    pub primary: String,
    /// The slot the next reboot tries, once.
    pub trial: Option<String>,
    /// Slots the boot check kept.
    pub good: Vec<String>,
    /// Counts boots.
    pub boots: u64,
    /// The bundle version written to each slot.
    pub versions: std::collections::BTreeMap<String, String>,
}

impl SimSlots {
    /// The pair kept in `dir/sim-slots.json` (slot A booted and good at first).
    pub fn open(dir: &Path, keyring: &Path, compatible: &str) -> SimSlots {
        SimSlots {
            path: dir.join("sim-slots.json"),
            keyring: keyring.to_path_buf(),
            compatible: compatible.to_string(),
        }
    }

    /// The state now.
    pub fn state(&self) -> SimState {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(SimState {
                booted: "A".into(),
                primary: "A".into(),
                trial: None,
                good: vec!["A".into()],
                boots: 1,
                versions: Default::default(),
            })
    }

    fn save(&self, s: &SimState) -> Result<(), String> {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(s).unwrap_or_default())
            .and_then(|_| std::fs::rename(&tmp, &self.path))
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

#[derive(Deserialize)]
struct RaucInfo {
    compatible: String,
    version: Option<String>,
}

impl Slots for SimSlots {
    fn booted(&self) -> Result<String, String> {
        Ok(self.state().booted)
    }

    fn boot_id(&self) -> Result<String, String> {
        Ok(format!("sim-boot-{}", self.state().boots))
    }

    fn is_good(&self, slot: &str) -> Result<bool, String> {
        Ok(self.state().good.iter().any(|g| g == slot))
    }

    fn install(&mut self, bundle: &Path) -> Result<String, String> {
        let conf = self.path.with_file_name("sim-rauc.conf");
        std::fs::write(
            &conf,
            format!(
                "[system]\ncompatible={}\nbootloader=noop\n[keyring]\npath={}\ncheck-purpose=codesign\n",
                self.compatible,
                self.keyring.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let out = run(Command::new("rauc")
            .arg(format!("--conf={}", conf.display()))
            .args(["info", "--output-format=json"])
            .arg(bundle))
        .map_err(|e| format!("rauc refused the bundle: {e}"))?;
        let json = out.lines().find(|l| l.starts_with('{')).unwrap_or("");
        let info: RaucInfo =
            serde_json::from_str(json).map_err(|e| format!("rauc info: {e}: {out}"))?;
        if info.compatible != self.compatible {
            return Err(format!(
                "the bundle is for {:?}, this kiosk is {:?}: Compatible mismatch",
                info.compatible, self.compatible
            ));
        }
        let mut s = self.state();
        let target = other(&s.booted).to_string();
        s.good.retain(|g| *g != target);
        s.trial = Some(target.clone());
        s.versions
            .insert(target.clone(), info.version.unwrap_or_default());
        self.save(&s)?;
        Ok(target)
    }

    fn running_version(&self) -> Option<String> {
        let s = self.state();
        s.versions.get(&s.booted).cloned()
    }

    fn disarm(&mut self) -> Result<(), String> {
        let mut s = self.state();
        s.trial = None;
        self.save(&s)
    }

    fn reboot(&mut self) -> Result<(), String> {
        let mut s = self.state();
        s.boots += 1;
        match s.trial.take() {
            Some(t) if self.path.with_file_name("trial-fails").exists() => {
                // The trial slot boots, its kiosk never serves, the boot check marks it bad
                // and reboots: the firmware goes back to the primary slot.
                s.boots += 1;
                s.good.retain(|g| *g != t);
                s.booted = s.primary.clone();
            }
            Some(t) => {
                s.booted = t.clone();
                s.primary = t.clone();
                s.good.push(t);
            }
            None => s.booted = s.primary.clone(),
        }
        self.save(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rauc_failures_are_reduced_to_their_reason() {
        let out = "installing\n  0% Installing\n 10% Checking bundle failed.\n100% Installing failed.\nLastError: signature verification failed: Verify error:unable to get local issuer certificate\nInstalling `/x.raucb` failed\n";
        assert_eq!(
            last_error(out),
            "signature verification failed: Verify error:unable to get local issuer certificate"
        );
        assert_eq!(last_error("just this"), "just this");
    }

    #[test]
    fn a_simulated_reboot_tries_the_slot_and_may_fall_back() {
        let d = tempfile::tempdir().unwrap();
        let mut s = SimSlots::open(d.path(), Path::new("/none"), "c");
        let mut st = s.state();
        st.trial = Some("B".into());
        s.save(&st).unwrap();
        s.reboot().unwrap();
        assert_eq!(
            (s.booted().unwrap(), s.is_good("B").unwrap()),
            ("B".into(), true)
        );
        let mut st = s.state();
        st.trial = Some("A".into());
        st.good.retain(|g| g != "A");
        s.save(&st).unwrap();
        std::fs::write(d.path().join("trial-fails"), "").unwrap();
        s.reboot().unwrap();
        assert_eq!(
            (s.booted().unwrap(), s.is_good("A").unwrap()),
            ("B".into(), false)
        );
    }
}
