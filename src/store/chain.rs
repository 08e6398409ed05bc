//! Verification of the two signed chains (check-in records and audit entries).
//!
//! For every entry, in sequence order: the bytes decode canonically; the query columns agree
//! with the signed bytes; the sequence number continues the previous one without a gap; the
//! previous-hash field equals the SHA-256 of the previous entry; the Ed25519 signature verifies
//! under the device's public key. The first entry that fails is named with the reason.
//!
//! Decoding, hashing and signature checks are independent per entry, so they run in parallel
//! over chunks (signatures batch-verified, falling back to one-by-one to find the culprit); only
//! the cheap link check is sequential.

use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;
use rusqlite::Connection;
use serde::Serialize;
use uuid::Uuid;

use super::audit::AuditEntry;
use super::entry::{ChainEntry, SIGNATURE_LEN, anchor, entry_hash};
use super::record::Record;
use crate::base::error::{Error, Result};

/// The result of verifying one chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainSummary {
    /// Which chain ("check-in" or "audit").
    pub chain: &'static str,
    /// Entries verified.
    pub entries: u64,
    /// Sequence number of the last entry (0 when empty).
    pub head_seq: u64,
    /// Hex SHA-256 of the last entry ("" when empty).
    pub head_hash: String,
}

/// One row as read from the table.
struct Row {
    seq: u64,
    uuid: Vec<u8>,
    wall_ms: i64,
    key: String,
    bytes: Vec<u8>,
    /// For a pseudonymised entry: the hash of the signed bytes it no longer holds.
    redacted_hash: Option<Vec<u8>>,
    acknowledged: bool,
}

/// What the parallel phase learnt about one row.
struct Checked {
    seq_in_bytes: u64,
    /// None for a pseudonymised entry: its link to the previous one cannot be checked here
    /// (the backend, which acknowledged the whole entry, checked it).
    prev_hash: Option<[u8; 32]>,
    hash: [u8; 32],
}

/// Sequence number and hash of the last entry verified.
type Head = (u64, [u8; 32]);

const CHUNK: usize = 16_384;
const BATCH: usize = 1024;

/// Verifies both chains of a store; `progress` is called with the number of entries done so
/// far across both.
pub fn verify_all(
    conn: &Connection,
    key: &VerifyingKey,
    device_id: Uuid,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<ChainSummary>> {
    let records = verify_chain::<Record>(conn, key, device_id, 0, progress)?;
    let audit = verify_chain::<AuditEntry>(conn, key, device_id, records.entries, progress)?;
    Ok(vec![records, audit])
}

fn verify_chain<E: ChainEntry>(
    conn: &Connection,
    key: &VerifyingKey,
    device_id: Uuid,
    offset: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ChainSummary> {
    let mut stmt = conn.prepare(&format!(
        "SELECT seq, uuid, wall_ms, {}, bytes, {} FROM {} ORDER BY seq",
        E::INDEX_EXPR,
        E::REDACTION_EXPR,
        E::TABLE
    ))?;
    let start = anchor(conn, E::TABLE)?;
    let mut rows = stmt.query([])?;
    // This thread reads rows (the connection cannot leave it) while a scoped worker checks the
    // previous chunk on the rayon pool, so reading overlaps with the signature checks.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Row>>(2);
    let (summary, read_result) = std::thread::scope(|scope| {
        let worker = scope.spawn(move || -> Result<(Option<Head>, u64)> {
            // After a retention purge the chain continues from its anchor.
            let mut prev: Option<Head> = start;
            let mut done = 0u64;
            for chunk in rx {
                let checked: Vec<Result<Checked, String>> = chunk
                    .par_chunks(BATCH)
                    .flat_map_iter(|batch| check_batch::<E>(batch, key, device_id))
                    .collect();
                for (row, res) in chunk.iter().zip(checked) {
                    let c = res.map_err(|reason| broken::<E>(row.seq, reason))?;
                    link(&mut prev, row, &c).map_err(|reason| broken::<E>(row.seq, reason))?;
                }
                done += chunk.len() as u64;
                progress(offset + done);
            }
            Ok((prev, done))
        });
        let read_result = (|| -> Result<()> {
            let mut chunk = Vec::with_capacity(CHUNK);
            while let Some(r) = rows.next()? {
                chunk.push(Row {
                    seq: r.get::<_, i64>(0)? as u64,
                    uuid: r.get(1)?,
                    wall_ms: r.get(2)?,
                    key: r.get(3)?,
                    bytes: r.get(4)?,
                    redacted_hash: r.get(5)?,
                    acknowledged: r.get(6)?,
                });
                if chunk.len() == CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    if tx.send(full).is_err() {
                        return Ok(()); // the worker stopped at a broken entry
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            Ok(())
        })();
        drop(tx);
        (worker.join().expect("verify worker panicked"), read_result)
    });
    let (prev, done) = summary?;
    read_result?;
    Ok(ChainSummary {
        chain: E::NAME,
        entries: done,
        head_seq: prev.map_or(0, |p| p.0),
        head_hash: prev.map_or(String::new(), |p| hex::encode(p.1)),
    })
}

fn broken<E: ChainEntry>(seq: u64, reason: String) -> Error {
    Error::ChainBroken {
        chain: E::NAME,
        seq,
        reason,
    }
}

/// The sequential part: sequence continuity and the hash link.
fn link(prev: &mut Option<Head>, row: &Row, c: &Checked) -> Result<(), String> {
    if c.seq_in_bytes != row.seq {
        return Err(format!(
            "the row at position {} holds the entry signed as number {} (entries were moved or swapped)",
            row.seq, c.seq_in_bytes
        ));
    }
    let (want_seq, want_hash) = match prev {
        Some((s, h)) => (*s + 1, *h),
        None => (1, [0; 32]),
    };
    if row.seq != want_seq {
        return Err(if row.seq > want_seq {
            let missing = if row.seq - want_seq == 1 {
                format!("{want_seq} is missing")
            } else {
                format!("{want_seq} to {} are missing", row.seq - 1)
            };
            format!(
                "sequence jumps from {} to {}: {missing} (deleted)",
                want_seq - 1,
                row.seq
            )
        } else {
            format!("sequence goes back from {} to {}", want_seq - 1, row.seq)
        });
    }
    if c.prev_hash.is_some_and(|h| h != want_hash) {
        return Err(format!(
            "previous-hash field does not match entry {} (chain broken: an earlier entry was altered, removed or reordered)",
            want_seq - 1
        ));
    }
    *prev = Some((row.seq, c.hash));
    Ok(())
}

/// Decodes, cross-checks and signature-verifies a batch of rows.
fn check_batch<E: ChainEntry>(
    rows: &[Row],
    key: &VerifyingKey,
    device_id: Uuid,
) -> Vec<Result<Checked, String>> {
    let mut out: Vec<Result<Checked, String>> = Vec::with_capacity(rows.len());
    let mut sig_idx = Vec::with_capacity(rows.len());
    let mut msgs: Vec<&[u8]> = Vec::with_capacity(rows.len());
    let mut sigs = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        if let Some(h) = &row.redacted_hash {
            out.push(redacted(row, h));
            continue;
        }
        match decode_row::<E>(row, device_id) {
            Ok(c) => {
                let (msg, sig) = row.bytes.split_at(row.bytes.len() - SIGNATURE_LEN);
                msgs.push(msg);
                sigs.push(Signature::from_bytes(sig.try_into().expect("64 bytes")));
                sig_idx.push(i);
                out.push(Ok(c));
            }
            Err(e) => out.push(Err(e)),
        }
    }
    if !msgs.is_empty() && !verify_batch_one_key(key, &msgs, &sigs) {
        for (j, &i) in sig_idx.iter().enumerate() {
            if key.verify_strict(msgs[j], &sigs[j]).is_err() {
                out[i] = Err(
                    "signature does not verify with the device key (entry altered or forged)"
                        .into(),
                );
            }
        }
    }
    out
}

/// A pseudonymised entry: only its kept hash links it into the chain.
fn redacted(row: &Row, hash: &[u8]) -> Result<Checked, String> {
    if !row.acknowledged {
        return Err("pseudonymised before the backend acknowledged it".into());
    }
    if !row.bytes.is_empty() {
        return Err("pseudonymised entry still holds bytes".into());
    }
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| "kept hash of a pseudonymised entry is not 32 bytes".to_string())?;
    Ok(Checked {
        seq_in_bytes: row.seq,
        prev_hash: None,
        hash,
    })
}

fn decode_row<E: ChainEntry>(row: &Row, device_id: Uuid) -> Result<Checked, String> {
    if row.bytes.len() <= SIGNATURE_LEN {
        return Err(format!("stored entry is only {} bytes", row.bytes.len()));
    }
    let e = E::decode(&row.bytes).map_err(|e| format!("stored bytes do not decode: {e}"))?;
    if e.device_id() != device_id {
        return Err(format!(
            "made by device {}, not this device {device_id}",
            e.device_id()
        ));
    }
    if row.uuid != e.uuid().as_bytes() {
        return Err("uuid column differs from the signed entry".into());
    }
    if row.wall_ms != e.wall_ms() {
        return Err(format!(
            "time column ({}) differs from the signed time ({})",
            row.wall_ms,
            e.wall_ms()
        ));
    }
    if row.key != e.index_key() {
        return Err("indexed columns differ from the signed entry".into());
    }
    Ok(Checked {
        seq_in_bytes: e.seq(),
        prev_hash: Some(e.prev_hash()),
        hash: entry_hash(&row.bytes),
    })
}

/// A public key fit to check signatures with: on the curve, canonically encoded, and in the
/// prime-order subgroup. The identity and the other small-order points are refused because a
/// "signature" with R = identity and s = 0 passes the cofactored batch equation over any bytes
/// under such a key; a non-canonical encoding would be a second name for the same key. The
/// reason names what is wrong, for the caller's error.
pub fn check_public_key(bytes: &[u8; 32]) -> std::result::Result<VerifyingKey, &'static str> {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let p = CompressedEdwardsY(*bytes)
        .decompress()
        .ok_or("is not a point on Ed25519")?;
    if p.compress().to_bytes() != *bytes {
        return Err("is not canonically encoded");
    }
    if p.is_small_order() {
        return Err("is a small-order point (a weak key)");
    }
    if !p.is_torsion_free() {
        return Err("has a small-order component");
    }
    VerifyingKey::from_bytes(bytes).map_err(|_| "is not an Ed25519 public key")
}

/// Verifies the signatures of many full entries (signed bytes then signature) by one key, for
/// the backend, which receives a device's entries in batches. Element i says whether entry i
/// verifies; an entry too short to hold a signature does not.
pub fn verify_entry_signatures(key: &VerifyingKey, entries: &[&[u8]]) -> Vec<bool> {
    let mut ok = vec![false; entries.len()];
    let mut idx = Vec::with_capacity(entries.len());
    let mut msgs: Vec<&[u8]> = Vec::with_capacity(entries.len());
    let mut sigs = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        if e.len() > SIGNATURE_LEN {
            let (msg, sig) = e.split_at(e.len() - SIGNATURE_LEN);
            msgs.push(msg);
            sigs.push(Signature::from_bytes(sig.try_into().expect("64 bytes")));
            idx.push(i);
        }
    }
    if msgs.is_empty() {
        return ok;
    }
    if verify_batch_one_key(key, &msgs, &sigs) {
        for &i in &idx {
            ok[i] = true;
        }
    } else {
        for (j, &i) in idx.iter().enumerate() {
            ok[i] = key.verify_strict(msgs[j], &sigs[j]).is_ok();
        }
    }
    ok
}

/// Batch-verifies signatures that are all by one key, which is what a device chain is.
///
/// With random 128-bit weights z_i it checks the cofactored equation
/// `8·(−(Σ z_i s_i)·B + Σ z_i·R_i + (Σ z_i k_i)·A) = 0`, where `k_i = SHA-512(R_i ‖ A ‖ M_i)`.
/// Because every signature shares A, its terms fold into a single point, so the multiscalar
/// multiplication has n + 2 points rather than the 2n + 1 of a general batch — about twice as
/// fast. A `true` means every signature is valid (up to 2^-128); on `false` the caller checks
/// them one by one to find which failed.
///
/// The cofactored equation alone is weaker than `verify_strict`: it cannot see a small-order
/// component in A or in any R, so a weak key or a crafted R = r·B + T (T of order 8) would pass
/// here and fail the strict check. So A and every R must be canonical and torsion-free (and R
/// not the identity) before the batch runs; with that, a signature passes the batch exactly
/// when it passes `verify_strict`.
fn verify_batch_one_key(key: &VerifyingKey, msgs: &[&[u8]], sigs: &[Signature]) -> bool {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use rand::RngCore;
    use sha2::{Digest, Sha512};

    if check_public_key(key.as_bytes()).is_err() {
        return false;
    }
    let Some(a) = CompressedEdwardsY(key.to_bytes()).decompress() else {
        return false;
    };
    let mut rng = rand::thread_rng();
    let mut b_coeff = Scalar::ZERO;
    let mut a_coeff = Scalar::ZERO;
    let mut zs = Vec::with_capacity(sigs.len() + 2);
    let mut points = Vec::with_capacity(sigs.len() + 2);
    for (msg, sig) in msgs.iter().zip(sigs) {
        let sig = sig.to_bytes();
        let r_bytes: [u8; 32] = sig[..32].try_into().expect("32 bytes");
        let Some(r) = CompressedEdwardsY(r_bytes).decompress() else {
            return false;
        };
        if !canonical_y(&r_bytes) || r.is_small_order() {
            return false;
        }
        let s: Option<Scalar> =
            Scalar::from_canonical_bytes(sig[32..].try_into().expect("32 bytes")).into();
        let Some(s) = s else {
            return false;
        };
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(r_bytes)
                .chain_update(key.as_bytes())
                .chain_update(msg),
        );
        let mut zb = [0u8; 32];
        rng.fill_bytes(&mut zb[..16]);
        let z = Scalar::from_bytes_mod_order(zb);
        b_coeff -= z * s;
        a_coeff += z * k;
        zs.push(z);
        points.push(r);
    }
    if !all_torsion_free(&points, &mut rng) {
        return false;
    }
    zs.push(b_coeff);
    points.push(ED25519_BASEPOINT_POINT);
    zs.push(a_coeff);
    points.push(a);
    EdwardsPoint::vartime_multiscalar_mul(&zs, &points)
        .mul_by_cofactor()
        .is_identity()
}

/// Whether a compressed point's y coordinate is below p = 2^255 − 19, i.e. its encoding is the
/// canonical one. (The other non-canonical encodings, x = 0 with the sign bit set, are of the
/// identity and the order-2 point, which the small-order check refuses.)
fn canonical_y(bytes: &[u8; 32]) -> bool {
    // p in little-endian: ed ff .. ff 7f. y >= p only when bytes 1..31 are all ff (7f at the
    // top, sign bit masked) and byte 0 >= ed.
    let top = bytes[31] & 0x7f;
    !(top == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed)
}

/// Rounds of the subset test in [`all_torsion_free`]: a point with a small-order component
/// slips through one round with probability at most 1/2, so through all with at most 2^-48:
/// an uploader trying a thousand batches a second would need some nine thousand years.
const TORSION_ROUNDS: usize = 48;

/// Whether every point lies in the prime-order subgroup. Checking each point costs a full
/// scalar multiplication by the group order; for more points than rounds, random subsets are
/// summed instead and each sum is checked: a small-order component T in one point makes the
/// sum with and without that point differ by T, so at most one of the two can be torsion-free,
/// and the sum misses it with probability at most 1/2 a round, whatever the other points are.
fn all_torsion_free(
    points: &[curve25519_dalek::edwards::EdwardsPoint],
    rng: &mut impl rand::RngCore,
) -> bool {
    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::traits::Identity;
    if points.len() <= TORSION_ROUNDS {
        return points.iter().all(EdwardsPoint::is_torsion_free);
    }
    (0..TORSION_ROUNDS).all(|_| {
        let mut sum = EdwardsPoint::identity();
        let mut bits = 0u64;
        for (i, p) in points.iter().enumerate() {
            if i % 64 == 0 {
                bits = rng.next_u64();
            }
            if bits & 1 == 1 {
                sum += p;
            }
            bits >>= 1;
        }
        sum.is_torsion_free()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn one_key_batch_accepts_valid_and_rejects_any_bad_signature() {
        let sk = SigningKey::from_bytes(&[7; 32]);
        let msgs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 50 + i as usize]).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        let mut sigs: Vec<Signature> = msgs.iter().map(|m| sk.sign(m)).collect();
        let vk = sk.verifying_key();
        assert!(verify_batch_one_key(&vk, &refs, &sigs));
        // Another key's signature, a flipped s bit, a flipped R bit: each fails the batch.
        let other = SigningKey::from_bytes(&[8; 32]);
        let good = sigs[17];
        sigs[17] = other.sign(&msgs[17]);
        assert!(!verify_batch_one_key(&vk, &refs, &sigs));
        for byte in [3usize, 40] {
            let mut b = good.to_bytes();
            b[byte] ^= 1;
            sigs[17] = Signature::from_bytes(&b);
            assert!(
                !verify_batch_one_key(&vk, &refs, &sigs),
                "flip in byte {byte}"
            );
        }
        sigs[17] = good;
        let mut wrong_msgs = refs.clone();
        wrong_msgs[3] = b"something else";
        assert!(!verify_batch_one_key(&vk, &wrong_msgs, &sigs));
        assert!(!verify_batch_one_key(&other.verifying_key(), &refs, &sigs));
    }

    /// A signature whose R carries an order-8 component: it satisfies the cofactored equation
    /// (the torsion is multiplied away) but not the strict one.
    fn torsion_signature(sk: &SigningKey, msg: &[u8]) -> Signature {
        use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
        use curve25519_dalek::scalar::Scalar;
        use sha2::{Digest, Sha512};
        let r = Scalar::from_bytes_mod_order([42; 32]);
        let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[1]).compress();
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(big_r.as_bytes())
                .chain_update(sk.verifying_key().as_bytes())
                .chain_update(msg),
        );
        let s = r + k * sk.to_scalar();
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(big_r.as_bytes());
        b[32..].copy_from_slice(s.as_bytes());
        Signature::from_bytes(&b)
    }

    #[test]
    fn a_torsion_signature_fails_the_batch_and_is_named_alone() {
        let sk = SigningKey::from_bytes(&[9; 32]);
        let vk = sk.verifying_key();
        let msgs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 60]).collect();
        let mut entries: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| [m.as_slice(), &sk.sign(m).to_bytes()].concat())
            .collect();
        let bad = torsion_signature(&sk, &msgs[4]);
        // What the old check let through: the cofactored equation holds...
        assert!(vk.verify_strict(&msgs[4], &bad).is_err());
        entries[4] = [msgs[4].as_slice(), &bad.to_bytes()].concat();
        let refs: Vec<&[u8]> = entries.iter().map(|e| e.as_slice()).collect();
        let ok = verify_entry_signatures(&vk, &refs);
        // ...and now exactly the crafted entry is refused, the others still verify.
        assert_eq!(ok.iter().filter(|&&b| !b).count(), 1, "{ok:?}");
        assert!(!ok[4]);
    }

    #[test]
    fn a_torsion_signature_in_a_large_batch_is_found_too() {
        let sk = SigningKey::from_bytes(&[10; 32]);
        let vk = sk.verifying_key();
        let msgs: Vec<Vec<u8>> = (0..500u32).map(|i| i.to_be_bytes().repeat(20)).collect();
        let mut entries: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| [m.as_slice(), &sk.sign(m).to_bytes()].concat())
            .collect();
        for bad in [0usize, 257, 499] {
            let mut e = entries.clone();
            e[bad] = [
                msgs[bad].as_slice(),
                &torsion_signature(&sk, &msgs[bad]).to_bytes(),
            ]
            .concat();
            let refs: Vec<&[u8]> = e.iter().map(|e| e.as_slice()).collect();
            let ok = verify_entry_signatures(&vk, &refs);
            assert!(!ok[bad], "entry {bad}");
            assert_eq!(ok.iter().filter(|&&b| !b).count(), 1);
        }
        let refs: Vec<&[u8]> = entries.iter().map(|e| e.as_slice()).collect();
        assert!(verify_entry_signatures(&vk, &refs).iter().all(|&b| b));
        entries.clear();
    }

    #[test]
    fn canonical_y_is_below_p() {
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!canonical_y(&p));
        let mut below = p;
        below[0] = 0xec;
        assert!(canonical_y(&below));
        p[31] = 0xff; // the sign bit does not count
        assert!(!canonical_y(&p));
        assert!(canonical_y(&[0; 32]));
    }

    #[test]
    fn weak_and_non_canonical_keys_are_refused_by_name() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        // The identity (y = 1), another small-order point, and y = 1 + p (non-canonical).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            check_public_key(&identity).unwrap_err(),
            "is a small-order point (a weak key)"
        );
        let t = EIGHT_TORSION[3].compress().to_bytes();
        assert!(check_public_key(&t).is_err());
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee; // p + 1 = 2^255 - 18
        non_canonical[31] = 0x7f;
        assert!(check_public_key(&non_canonical).is_err());
        // A real key passes, and an identity key cannot "sign" with R = identity, s = 0.
        let sk = SigningKey::from_bytes(&[3; 32]);
        assert!(check_public_key(sk.verifying_key().as_bytes()).is_ok());
        if let Ok(weak) = VerifyingKey::from_bytes(&identity) {
            let mut forged = [0u8; 64];
            forged[..32].copy_from_slice(&identity);
            let entry = [b"any bytes at all".as_slice(), &forged].concat();
            assert_eq!(verify_entry_signatures(&weak, &[&entry]), vec![false]);
        }
    }
}
