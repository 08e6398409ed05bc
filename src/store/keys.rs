//! Secret key files: the device signing key and the data (template encryption) key.
//!
//! Both are 32 random bytes in a file of their own, mode 0600, created once on first start and
//! never rewritten. A key file that is missing while the store still holds data it protects, has
//! the wrong size, or is readable by anyone but its owner is an error that names the file and
//! the fix: silently making a new key would orphan every signed record or sealed template.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::base::error::{Error, Result};

/// Length of both key files.
pub const KEY_LEN: usize = 32;

/// Reads a key file, checking its type, size and permissions.
pub fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let err = |reason: String| Error::KeyFile {
        path: path.to_owned(),
        reason,
    };
    let meta = fs::symlink_metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => err("missing".into()),
        _ => err(e.to_string()),
    })?;
    if !meta.is_file() {
        return Err(err("is not a regular file".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(err(format!(
            "has mode {mode:04o}; a secret key must be readable by its owner only: chmod 600 {}",
            path.display()
        )));
    }
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| err(e.to_string()))?);
    if bytes.len() != KEY_LEN {
        return Err(err(format!(
            "holds {} bytes; a key file holds exactly {KEY_LEN}",
            bytes.len()
        )));
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Creates a new key file with fresh random bytes, mode 0600, durably (file and directory
/// fsynced). Fails if the file already exists.
pub fn create_key_file(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::KeyFile {
            path: path.to_owned(),
            reason: format!("cannot create: {e}"),
        })?;
    f.write_all(key.as_ref())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        // A bare file name's parent is "": the current directory.
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(key)
}

/// Length of the random nonce prefixed to every sealed blob.
pub const NONCE_LEN: usize = 24;

/// Encrypts with XChaCha20-Poly1305 under the data key. `aad` binds the ciphertext to its
/// context (owner, model) so a blob copied onto another employee's row fails to open.
pub fn seal(key: &[u8; KEY_LEN], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Decrypts a blob made by [`seal`]; fails if the key, the context or any byte differs.
pub fn open(
    key: &[u8; KEY_LEN],
    sealed: &[u8],
    aad: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(Error::Crypto {
            what: what.into(),
            reason: "sealed blob is too short".into(),
        });
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| Error::Crypto {
            what: what.into(),
            reason: "authentication failed (wrong data.key, or the blob was altered or moved)"
                .into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_0600_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.key");
        let k = create_key_file(&p).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(*read_key_file(&p).unwrap(), *k);
        assert!(
            create_key_file(&p).is_err(),
            "never overwrites an existing key"
        );

        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_key_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("k.key") && e.contains("0644") && e.contains("chmod 600"),
            "{e}"
        );

        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&p, b"short").unwrap();
        assert!(
            read_key_file(&p)
                .unwrap_err()
                .to_string()
                .contains("holds 5 bytes")
        );

        let e = read_key_file(&dir.path().join("none.key"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.key") && e.contains("missing"), "{e}");
    }

    #[test]
    fn sealed_blob_is_bound_to_key_and_context() {
        let key = [1u8; KEY_LEN];
        let blob = seal(&key, b"template bytes", b"E1|model");
        assert!(!blob.windows(8).any(|w| w == b"template"));
        assert_eq!(
            &open(&key, &blob, b"E1|model", "t").unwrap()[..],
            b"template bytes"
        );
        assert!(open(&[2u8; KEY_LEN], &blob, b"E1|model", "t").is_err());
        assert!(open(&key, &blob, b"E2|model", "t").is_err());
        let mut bad = blob.clone();
        bad[30] ^= 1;
        let e = open(&key, &bad, b"E1|model", "template 7")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("template 7") && e.contains("authentication failed"),
            "{e}"
        );
    }
}
