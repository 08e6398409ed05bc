//! `clockface provision`: first-boot provisioning from a file on the boot partition.
//!
//! One SD image serves a whole fleet: what differs per kiosk — backend URL and pairing code,
//! device and site name, Wi-Fi, host name, the backend's CA — comes from
//! `clockface-provision.toml`, which a fleet manager drops on the card's FAT boot partition.
//! The image's `clockface-provision.service` applies it at boot, before the kiosk starts. The
//! whole file is checked first and every problem reported at once; nothing is written unless it
//! all holds. With `--consume` the file (which holds secrets, on a partition anyone holding the
//! card can read) is removed after it was applied, leaving a `.done` note without the secrets,
//! or a `.error` note beside it when it was refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::context::{ConfigSource, init_logging};
use crate::base::config;
use crate::base::error::{Error, Result};
use crate::base::problem::Problem;

/// Where the appliance image keeps its own default config, the base of the first provisioning.
pub const IMAGE_BASE_CONFIG: &str = "/usr/share/clockface/clockface.toml";

/// The provisioning file, as a fleet manager writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvisionFile {
    /// Host name of the kiosk.
    hostname: Option<String>,
    /// PEM of the CA that signs the backend's certificate (pinned: only it is trusted).
    backend_ca: Option<String>,
    /// Settings of clockface.toml, merged over the config in force.
    kiosk: Option<toml::Table>,
    /// The Wi-Fi network to join.
    wifi: Option<Wifi>,
    /// The target security token the fleet server (hawkBit DDI) issued for this kiosk: kept
    /// in a 0600 file beside the config, which `[update] token_file` then names.
    update_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wifi {
    /// ISO 3166 country code: the radio's regulatory domain.
    country: String,
    ssid: String,
    /// WPA2/WPA3-personal passphrase; empty for an open network.
    #[serde(default)]
    psk: String,
    /// Whether the network hides its SSID.
    #[serde(default)]
    hidden: bool,
}

/// Where `provision` writes.
#[derive(Debug, Clone)]
pub struct ProvisionTargets {
    /// The kiosk config (on the appliance a symlink into the data partition).
    pub config: PathBuf,
    /// Base config used when `config` does not exist yet.
    pub base: PathBuf,
    /// wpa_supplicant configuration for wlan0.
    pub wifi: PathBuf,
    /// Host name file.
    pub hostname: PathBuf,
    /// Group that may read the written config (the kiosk's service group), if it exists.
    pub group: Option<String>,
}

/// What `provision` changed (for its output; no secrets).
#[derive(Debug, Default, serde::Serialize, PartialEq)]
pub struct Provisioned {
    /// Config keys set from the file, dotted.
    pub config_keys: Vec<String>,
    /// Whether a Wi-Fi network was configured (its SSID, not its passphrase).
    pub wifi_ssid: Option<String>,
    /// Host name set.
    pub hostname: Option<String>,
    /// Whether the backend CA was pinned.
    pub backend_ca: bool,
}

/// `clockface provision`.
#[derive(Debug, clap::Args)]
pub struct ProvisionArgs {
    /// The provisioning file (on the appliance: /boot/firmware/clockface-provision.toml).
    file: PathBuf,
    /// Config to write [default: --config or /etc/clockface/clockface.toml].
    #[arg(long, value_name = "PATH")]
    config_out: Option<PathBuf>,
    /// Base config used when the config does not exist yet.
    #[arg(long, value_name = "PATH", default_value = IMAGE_BASE_CONFIG)]
    base: PathBuf,
    /// wpa_supplicant configuration to write for [wifi].
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
    )]
    wifi_out: PathBuf,
    /// Host name file to write for `hostname`.
    #[arg(long, value_name = "PATH", default_value = "/etc/hostname")]
    hostname_out: PathBuf,
    /// Group that may read the written config (the kiosk service's group).
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// Remove the file once applied (it holds secrets), leaving FILE.done; on refusal write
    /// the reasons to FILE.error.
    #[arg(long)]
    consume: bool,
}

impl ProvisionArgs {
    /// Applies the provisioning file.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        init_logging("info");
        let targets = ProvisionTargets {
            config: self.config_out.unwrap_or_else(|| src.config_path()),
            base: self.base,
            wifi: self.wifi_out,
            hostname: self.hostname_out,
            group: self.group,
        };
        provision(&self.file, &targets, self.consume, out).map(drop)
    }
}

/// `clockface provision FILE`: checks the whole file, then writes the config, Wi-Fi and host
/// name. With `consume`, removes FILE afterwards (leaving FILE.done), or writes FILE.error.
pub fn provision(
    file: &Path,
    targets: &ProvisionTargets,
    consume: bool,
    out: &mut dyn Write,
) -> Result<Provisioned> {
    let result = apply(file, targets);
    if consume {
        let note = |ext: &str, text: String| {
            let p = PathBuf::from(format!("{}.{ext}", file.display()));
            if let Err(e) = std::fs::write(&p, text) {
                tracing::error!(path = %p.display(), error = %e, "cannot write provisioning note");
            }
        };
        match &result {
            Ok(done) => {
                std::fs::remove_file(file).map_err(|e| Error::io(file, e))?;
                let _ = std::fs::remove_file(format!("{}.error", file.display()));
                note(
                    "done",
                    format!(
                        "applied at {}; the file was removed because it held secrets\n{}\n",
                        crate::store::export::rfc3339_ms(chrono::Utc::now().timestamp_millis()),
                        serde_json::to_string_pretty(done).expect("serialisable")
                    ),
                );
            }
            Err(e) => note(
                "error",
                format!("{e}\nnothing was applied; fix the file and reboot\n"),
            ),
        }
    }
    let done = result?;
    let _ = writeln!(
        out,
        "provisioned: {} config key(s){}{}{}",
        done.config_keys.len(),
        done.wifi_ssid
            .as_ref()
            .map(|s| format!(", Wi-Fi {s:?}"))
            .unwrap_or_default(),
        done.hostname
            .as_ref()
            .map(|h| format!(", host name {h}"))
            .unwrap_or_default(),
        if done.backend_ca {
            ", backend CA pinned"
        } else {
            ""
        }
    );
    Ok(done)
}

fn apply(file: &Path, t: &ProvisionTargets) -> Result<Provisioned> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::ConfigRead {
        path: file.to_owned(),
        reason: e.to_string(),
    })?;
    let invalid = |problems: Vec<Problem>| Error::ConfigInvalid {
        path: file.to_owned(),
        problems,
    };
    let pf: ProvisionFile = toml::from_str(&text).map_err(|e| {
        invalid(vec![Problem {
            key: String::new(),
            line: e.span().map(|s| text[..s.start].lines().count().max(1)),
            message: e.message().to_string(),
        }])
    })?;
    let mut problems = Vec::new();
    let mut bad = |key: &str, message: String| problems.push(Problem::at(key, message));

    if let Some(h) = &pf.hostname
        && !valid_hostname(h)
    {
        bad(
            "hostname",
            format!(
                "{h:?} is not a host name; allowed: 1 to 63 letters, digits and '-', not starting or ending with '-'"
            ),
        );
    }
    if let Some(w) = &pf.wifi {
        for (key, why) in wifi_problems(w) {
            bad(key, why);
        }
    }
    let ca_path = t
        .config
        .parent()
        .unwrap_or(Path::new("/"))
        .join("backend-ca.pem");
    if let Some(pem) = &pf.backend_ca
        && let Err(why) = check_ca(pem)
    {
        bad("backend_ca", why);
    }
    let token_path = ca_path.with_file_name("update-token");
    if let Some(tok) = &pf.update_token
        && (tok.is_empty() || tok.len() > 256 || !tok.bytes().all(|b| b.is_ascii_graphic()))
    {
        bad(
            "update_token",
            "allowed: 1 to 256 printable ASCII characters, no spaces".into(),
        );
    }

    // The config: current (or the image's base), the file's [kiosk] table merged over it.
    let base_path = if t.config.exists() {
        &t.config
    } else {
        &t.base
    };
    let mut table: toml::Table = match std::fs::read_to_string(base_path) {
        Ok(s) => s
            .parse()
            .map_err(|e: toml::de::Error| Error::ConfigInvalid {
                path: base_path.clone(),
                problems: vec![Problem::at("", format!("not valid TOML: {}", e.message()))],
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(Error::io(base_path, e)),
    };
    let mut keys = Vec::new();
    if let Some(k) = &pf.kiosk {
        config::merge_tables(&mut table, k, "", &mut keys);
    }
    if pf.backend_ca.is_some() {
        set_path_default(&mut table, "sync", "ca_file", &ca_path, &mut keys);
    }
    if pf.update_token.is_some() {
        set_path_default(&mut table, "update", "token_file", &token_path, &mut keys);
    }
    let merged = toml::to_string(&table).expect("a TOML table serialises");
    if let Err(ps) = config::check_str(&merged) {
        for p in ps {
            let key = if p.key.is_empty() {
                "kiosk".to_string()
            } else {
                format!("kiosk.{}", p.key)
            };
            bad(&key, p.message);
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }

    // Everything holds: write.
    let gid = t.group.as_deref().and_then(group_id);
    if let Some(pem) = &pf.backend_ca {
        write_atomic(&ca_path, pem.as_bytes(), 0o644, None)?;
    }
    if let Some(tok) = &pf.update_token {
        // Read by the update unit (root) only; the kiosk never needs it.
        write_atomic(&token_path, format!("{tok}\n").as_bytes(), 0o600, None)?;
    }
    let header = format!(
        "# Written by `clockface provision` from {} — the image's defaults are in {}.\n\
         # Edit with care: `clockface config check` before restarting the kiosk.\n\n",
        file.display(),
        IMAGE_BASE_CONFIG
    );
    write_atomic(
        &t.config,
        format!("{header}{merged}").as_bytes(),
        0o640,
        gid,
    )?;
    let mut done = Provisioned {
        config_keys: keys,
        backend_ca: pf.backend_ca.is_some(),
        ..Default::default()
    };
    if let Some(w) = &pf.wifi {
        write_atomic(&t.wifi, wpa_supplicant_conf(w).as_bytes(), 0o600, None)?;
        done.wifi_ssid = Some(w.ssid.clone());
    }
    if let Some(h) = &pf.hostname {
        write_atomic(&t.hostname, format!("{h}\n").as_bytes(), 0o644, None)?;
        done.hostname = Some(h.clone());
    }
    tracing::info!(
        keys = done.config_keys.len(),
        wifi = done.wifi_ssid.is_some(),
        "provisioning applied"
    );
    Ok(done)
}

/// Names `path` in `[section] key` unless the file set that key itself: where a secret the
/// provisioning file carried (CA, token) was written.
fn set_path_default(
    table: &mut toml::Table,
    section: &str,
    key: &str,
    path: &Path,
    keys: &mut Vec<String>,
) {
    let t = table
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(t) = t.as_table_mut()
        && !t.contains_key(key)
    {
        t.insert(key.into(), toml::Value::String(path.display().to_string()));
        keys.push(format!("{section}.{key}"));
    }
}

fn valid_hostname(h: &str) -> bool {
    (1..=63).contains(&h.len())
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !h.starts_with('-')
        && !h.ends_with('-')
}

fn wifi_problems(w: &Wifi) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if w.country.len() != 2 || !w.country.bytes().all(|b| b.is_ascii_uppercase()) {
        out.push((
            "wifi.country",
            format!(
                "{:?} is not a country code; allowed: two capital letters such as \"CN\" or \"DE\"",
                w.country
            ),
        ));
    }
    if !(1..=32).contains(&w.ssid.len()) {
        out.push((
            "wifi.ssid",
            format!("is {} bytes long; allowed: 1 to 32", w.ssid.len()),
        ));
    }
    let printable = w.psk.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !w.psk.is_empty() && (!(8..=63).contains(&w.psk.len()) || !printable) {
        out.push((
            "wifi.psk",
            "allowed: \"\" (open network) or a passphrase of 8 to 63 printable ASCII characters"
                .into(),
        ));
    }
    out
}

/// wpa_supplicant's configuration for one network. The SSID is written in hex, so any bytes in
/// it are safe; the passphrase is printable ASCII (checked) and wpa_supplicant reads a quoted
/// value up to the line's last quote.
fn wpa_supplicant_conf(w: &Wifi) -> String {
    let mut s = format!(
        "# Written by `clockface provision`.\nctrl_interface=DIR=/run/wpa_supplicant\nupdate_config=0\ncountry={}\n\nnetwork={{\n    ssid={}\n",
        w.country,
        hex::encode(w.ssid.as_bytes())
    );
    if w.hidden {
        s.push_str("    scan_ssid=1\n");
    }
    if w.psk.is_empty() {
        s.push_str("    key_mgmt=NONE\n");
    } else {
        s.push_str(&format!(
            "    key_mgmt=WPA-PSK SAE\n    ieee80211w=1\n    psk=\"{}\"\n",
            w.psk
        ));
    }
    s.push_str("}\n");
    s
}

fn check_ca(pem: &str) -> std::result::Result<(), String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err("holds no \"BEGIN CERTIFICATE\" block".into());
    }
    rustls::RootCertStore::empty()
        .add_parsable_certificates(certs)
        .1
        .eq(&0)
        .then_some(())
        .ok_or_else(|| "a certificate in it does not parse".into())
}

fn group_id(name: &str) -> Option<libc::gid_t> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getgrnam takes a NUL-terminated name and returns a pointer to static storage (or
    // null), read at once; provisioning runs single-threaded.
    let g = unsafe { libc::getgrnam(c.as_ptr()) };
    if g.is_null() {
        None
    } else {
        Some(unsafe { (*g).gr_gid })
    }
}

/// Writes `bytes` to a temporary file beside `path`, fsyncs, sets mode (and group), renames.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32, gid: Option<libc::gid_t>) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(&tmp, e))?;
    if let Some(gid) = gid {
        std::os::unix::fs::fchown(&f, None, Some(gid)).map_err(|e| Error::io(&tmp, e))?;
    }
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(dir: &Path) -> ProvisionTargets {
        ProvisionTargets {
            config: dir.join("etc/clockface.toml"),
            base: dir.join("base.toml"),
            wifi: dir.join("etc/wpa_supplicant-wlan0.conf"),
            hostname: dir.join("etc/hostname"),
            group: None,
        }
    }

    #[test]
    fn a_good_file_merges_over_the_base_and_writes_wifi_and_hostname() {
        let dir = tempfile::tempdir().unwrap();
        let t = targets(dir.path());
        std::fs::write(
            &t.base,
            "[device]\nname = \"Image default\"\n[camera]\nfps = 10\n",
        )
        .unwrap();
        let file = dir.path().join("clockface-provision.toml");
        std::fs::write(
            &file,
            "hostname = \"kiosk-lobby\"\n[kiosk.device]\nsite = \"HQ\"\n[kiosk.sync]\nurl = \"https://hub.example:8443\"\npairing_code = \"ABCD-1234\"\n[wifi]\ncountry = \"CN\"\nssid = \"Office \\\"5G\\\"\"\npsk = \"correct horse\"\n",
        )
        .unwrap();
        let mut out = Vec::new();
        let done = provision(&file, &t, true, &mut out).unwrap();
        assert_eq!(
            done.config_keys,
            ["device.site", "sync.pairing_code", "sync.url"]
        );
        let cfg = crate::base::config::Config::load(&t.config).unwrap();
        assert_eq!(cfg.device.name, "Image default");
        assert_eq!(cfg.device.site, "HQ");
        assert_eq!(cfg.camera.fps, 10);
        assert_eq!(cfg.sync.url, "https://hub.example:8443");
        let wifi = std::fs::read_to_string(&t.wifi).unwrap();
        assert!(wifi.contains(&format!("ssid={}", hex::encode("Office \"5G\""))));
        assert!(wifi.contains("psk=\"correct horse\""));
        assert!(wifi.contains("country=CN"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&t.wifi).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_to_string(&t.hostname).unwrap(),
            "kiosk-lobby\n"
        );
        // Consumed: the secrets are gone from the boot partition, a note without them stays.
        assert!(!file.exists());
        let note =
            std::fs::read_to_string(dir.path().join("clockface-provision.toml.done")).unwrap();
        assert!(note.contains("sync.pairing_code"));
        assert!(!note.contains("ABCD-1234") && !note.contains("correct horse"));
    }

    #[test]
    fn an_update_token_goes_to_a_0600_file_that_the_config_names() {
        let dir = tempfile::tempdir().unwrap();
        let t = targets(dir.path());
        let file = dir.path().join("clockface-provision.toml");
        std::fs::write(
            &file,
            "update_token = \"d5f2c1ab9e\"\n[kiosk.update]\nserver = \"https://fleet.example\"\ntenant = \"ACME\"\n",
        )
        .unwrap();
        let done = provision(&file, &t, true, &mut Vec::new()).unwrap();
        assert!(done.config_keys.contains(&"update.token_file".to_string()));
        let cfg = crate::base::config::Config::load(&t.config).unwrap();
        assert_eq!(cfg.update.tenant, "ACME");
        let tok = std::path::PathBuf::from(&cfg.update.token_file);
        assert_eq!(std::fs::read_to_string(&tok).unwrap(), "d5f2c1ab9e\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tok).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let note = std::fs::read_to_string(file.with_extension("toml.done")).unwrap();
        assert!(!note.contains("d5f2c1ab9e"), "{note}");
        std::fs::write(&file, "update_token = \"two words\"\n").unwrap();
        let e = provision(&file, &t, false, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("update_token"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_at_once_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let t = targets(dir.path());
        std::fs::create_dir_all(t.config.parent().unwrap()).unwrap();
        std::fs::write(&t.config, "[device]\nname = \"Kept\"\n").unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(
            &file,
            "hostname = \"-bad_name\"\nbackend_ca = \"not a pem\"\n[kiosk.sync]\nurl = \"ftp://x\"\nbatch_size = 0\n[kiosk.camera]\nfsp = 3\n[wifi]\ncountry = \"china\"\nssid = \"\"\npsk = \"short\"\n",
        )
        .unwrap();
        let err = provision(&file, &t, true, &mut Vec::new()).unwrap_err();
        let msg = err.to_string();
        for key in [
            "hostname",
            "backend_ca",
            "wifi.country",
            "wifi.ssid",
            "wifi.psk",
            "kiosk.sync.url",
            "kiosk.sync.batch_size",
            "kiosk.camera.fsp",
        ] {
            assert!(msg.contains(key), "{key} missing from: {msg}");
        }
        assert_eq!(err.exit_code(), 2);
        // Nothing changed, the file stays for the fleet manager, with the reasons beside it.
        assert_eq!(
            std::fs::read_to_string(&t.config).unwrap(),
            "[device]\nname = \"Kept\"\n"
        );
        assert!(!t.wifi.exists() && !t.hostname.exists());
        assert!(file.exists());
        let note = std::fs::read_to_string(dir.path().join("p.toml.error")).unwrap();
        assert!(note.contains("wifi.psk") && note.contains("nothing was applied"));
    }

    #[test]
    fn an_unknown_top_level_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "hostnme = \"x\"\n").unwrap();
        let err = provision(&file, &targets(dir.path()), false, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("hostnme"), "{err}");
    }
}
