//! The device's identity in its data directory: the directory's permissions, the Ed25519 device
//! key and the data key (files, mode 0600), and the device id and public key recorded in the
//! database, checked against each other every time a store is opened.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::chain::check_public_key;
use super::keys;
use super::{DATA_KEY_FILE, DEVICE_KEY_FILE};
use crate::base::error::{Error, Result};

/// The device's identity as recorded in the store.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Stable id of this kiosk, generated on first start.
    pub device_id: Uuid,
    /// Public half of the device key; what the backend verifies signatures with.
    pub public_key: VerifyingKey,
}

/// Label of the sealed known value that proves `data.key` is the key this store was made with.
const DATA_KEY_CHECK_AAD: &[u8] = b"clockface data key check v1";

/// Checks that the data dir is a usable directory, creating it (mode 0700) when allowed.
pub(super) fn prepare_data_dir(dir: &Path, read_only: bool) -> Result<()> {
    let err = |reason: String| Error::DataDir {
        path: dir.to_owned(),
        reason,
    };
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(err("exists but is not a directory".into())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !read_only => {
            fs::create_dir_all(dir).map_err(|e| err(format!("cannot create: {e}")))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| err(format!("cannot set mode 0700: {e}")))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(err("does not exist".into()));
        }
        Err(e) => return Err(err(format!("cannot be accessed: {e}"))),
    }
    fs::read_dir(dir).map_err(|e| err(format!("cannot be read: {e}")))?;
    if let Ok(m) = fs::metadata(dir) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                data_dir = %dir.display(),
                mode = format!("{mode:04o}"),
                "the data dir is open to other users; it holds signed records and keys: chmod 700 it"
            );
        }
    }
    Ok(())
}

/// Stops when the data dir holds the device's keys but no usable database: the store those
/// keys signed for is gone, and making a new one silently would give the same key a new device
/// id and an empty chain. The error names the file and both ways on.
pub(super) fn refuse_lost_database(dir: &Path, db_path: &Path) -> Result<()> {
    let keys_here = [DEVICE_KEY_FILE, DATA_KEY_FILE]
        .iter()
        .any(|k| dir.join(k).exists());
    let state = match fs::metadata(db_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "missing",
        Ok(m) if m.len() == 0 => "empty (0 bytes)",
        _ => return Ok(()),
    };
    if !keys_here {
        return Ok(());
    }
    Err(Error::Database {
        path: db_path.to_owned(),
        reason: format!(
            "is {state}, but {} holds this device's keys ({DEVICE_KEY_FILE}, {DATA_KEY_FILE}): the \
             store they belong to is lost, and nothing was changed. Restore {} from a backup, or \
             run `clockface store reinit --i-understand` to archive the keys and start a new, \
             empty store under a new device id",
            dir.display(),
            db_path.display()
        ),
    })
}

type LoadedIdentity = (
    Identity,
    Option<SigningKey>,
    Option<Zeroizing<[u8; keys::KEY_LEN]>>,
);

/// Loads the device identity, creating keys on first start. Never replaces a key that data
/// already depends on.
pub(super) fn load_identity(
    conn: &Connection,
    dir: &Path,
    db_path: &Path,
    read_only: bool,
) -> Result<LoadedIdentity> {
    let setting = |k: &str| -> Result<Option<String>> {
        Ok(conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [k], |r| {
                r.get(0)
            })
            .optional()?)
    };
    let device_key_path = dir.join(DEVICE_KEY_FILE);
    let data_key_path = dir.join(DATA_KEY_FILE);
    let stored_id = setting("device_id")?;
    let stored_pub = setting("device_public_key")?;
    let stored_check = setting("data_key_check")?;

    let bad_db = |reason: String| Error::Database {
        path: db_path.to_owned(),
        reason,
    };
    match (stored_id, stored_pub) {
        (Some(id), Some(pub_hex)) => {
            let device_id = Uuid::parse_str(&id)
                .map_err(|_| bad_db(format!("settings.device_id {id:?} is not a UUID")))?;
            let public_key = parse_public_key(&pub_hex).map_err(|why| {
                bad_db(format!(
                    "settings.device_public_key {why}: signatures under it would prove nothing"
                ))
            })?;
            let identity = Identity {
                device_id,
                public_key,
            };
            let signing = match keys::read_key_file(&device_key_path) {
                Ok(seed) => {
                    let sk = SigningKey::from_bytes(&seed);
                    if sk.verifying_key() != public_key {
                        return Err(Error::KeyFile {
                            path: device_key_path,
                            reason: format!(
                                "does not belong to this store (store's public key {}, file's {}): \
                                 restore the original key file",
                                hex::encode(public_key.as_bytes()),
                                hex::encode(sk.verifying_key().as_bytes())
                            ),
                        });
                    }
                    Some(sk)
                }
                // Read-only verification needs only the public key recorded in the store.
                Err(Error::KeyFile { .. }) if read_only && !device_key_path.exists() => None,
                Err(Error::KeyFile { path, reason }) if reason == "missing" => {
                    let n: i64 = conn.query_row(
                        "SELECT (SELECT count(*) FROM records) + (SELECT count(*) FROM audit)",
                        [],
                        |r| r.get(0),
                    )?;
                    return Err(Error::KeyFile {
                        path,
                        reason: format!(
                            "missing, but this store's {n} records are signed by device key {}: \
                             restore the key file from backup (a new key will not be made for an existing store)",
                            hex::encode(public_key.as_bytes())
                        ),
                    });
                }
                Err(e) => return Err(e),
            };
            let data_key = if read_only && !data_key_path.exists() {
                None
            } else {
                let k = keys::read_key_file(&data_key_path).map_err(|e| match e {
                    Error::KeyFile { path, reason } if reason == "missing" => Error::KeyFile {
                        path,
                        reason:
                            "missing, but this store was made with one: restore it from backup \
                                 (without it the sealed face templates cannot be read)"
                                .into(),
                    },
                    e => e,
                })?;
                if let Some(check) = stored_check {
                    let sealed = hex::decode(&check)
                        .map_err(|_| bad_db("settings.data_key_check is not hex".into()))?;
                    keys::open(&k, &sealed, DATA_KEY_CHECK_AAD, "data key check").map_err(
                        |_| Error::KeyFile {
                            path: data_key_path.clone(),
                            reason: "is not the key this store was made with: restore the original"
                                .into(),
                        },
                    )?;
                }
                Some(k)
            };
            Ok((identity, signing, data_key))
        }
        _ if read_only => Err(bad_db(
            "has no device identity yet (it was never opened by a kiosk)".into(),
        )),
        _ => {
            // First start. A key file left from an earlier store is adopted rather than
            // replaced: it may be the key a backend already trusts.
            let seed = if device_key_path.exists() {
                keys::read_key_file(&device_key_path)?
            } else {
                keys::create_key_file(&device_key_path)?
            };
            let data_key = if data_key_path.exists() {
                keys::read_key_file(&data_key_path)?
            } else {
                keys::create_key_file(&data_key_path)?
            };
            let sk = SigningKey::from_bytes(&seed);
            let device_id = Uuid::now_v7();
            let check = keys::seal(&data_key, b"ok", DATA_KEY_CHECK_AAD);
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let res = (|| -> Result<()> {
                let mut put = conn.prepare("INSERT INTO settings (key, value) VALUES (?1, ?2)")?;
                put.execute(params!["device_id", device_id.to_string()])?;
                put.execute(params![
                    "device_public_key",
                    hex::encode(sk.verifying_key().as_bytes())
                ])?;
                put.execute(params!["data_key_check", hex::encode(&check)])?;
                Ok(())
            })();
            match res {
                Ok(()) => conn.execute_batch("COMMIT")?,
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(e);
                }
            }
            tracing::info!(%device_id, "new device identity created");
            Ok((
                Identity {
                    device_id,
                    public_key: sk.verifying_key(),
                },
                Some(sk),
                Some(data_key),
            ))
        }
    }
}

/// The stored public key, refused when it is not 32 bytes of hex or not a sound key (see
/// [`check_public_key`]).
fn parse_public_key(hex_str: &str) -> std::result::Result<VerifyingKey, &'static str> {
    let bytes: [u8; 32] = hex::decode(hex_str)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("is not 64 hex digits")?;
    check_public_key(&bytes)
}
