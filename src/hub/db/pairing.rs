//! Pairing: one-time codes an admin hands out, the pairing that turns a code into a device
//! and its token, and finding the device a request's token names.

use crate::hub::sql::{Conn, Lock, OptionalExt, SqlError, params};
use ed25519_dalek::VerifyingKey;
use rand::RngCore;
use serde::Serialize;
use uuid::Uuid;

use crate::base::protocol::{PairRequest, PairResponse, pairing_proof_message};

use super::{ApiFailure, HubDb, sha256};
use crate::store::chain::check_public_key;

/// A paired device, as the API layer needs it after authentication.
#[derive(Debug, Clone)]
pub struct Device {
    /// Device id.
    pub id: Uuid,
    /// Key its entries must be signed with.
    pub public_key: VerifyingKey,
    /// The site it was paired for.
    pub site: String,
}

/// The alphabet of pairing codes: no 0/O or 1/I/L to misread on a screen.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

use crate::base::protocol::normalise_pairing_code as normalise_code;

impl HubDb {
    /// Creates a one-time pairing code for `site`, valid for `valid_ms`; `code` picks it
    /// (for provisioning files written ahead), otherwise a random one is made. Returns it.
    pub fn create_pairing_code(
        &mut self,
        site: &str,
        valid_ms: i64,
        code: Option<&str>,
        now_ms: i64,
    ) -> crate::base::error::Result<String> {
        let code = match code {
            Some(c) => {
                let n = normalise_code(c);
                if n.len() < 8 || !n.bytes().all(|b| CODE_ALPHABET.contains(&b)) {
                    return Err(crate::base::error::Error::invalid(
                        "pairing code",
                        "must be at least 8 characters from 2-9 and A-Z without I, L, O",
                    ));
                }
                n
            }
            None => {
                let mut rng = rand::rngs::OsRng;
                (0..12)
                    .map(|_| CODE_ALPHABET[(rng.next_u32() as usize) % CODE_ALPHABET.len()] as char)
                    .collect()
            }
        };
        if site.trim().is_empty() || site.chars().count() > 128 {
            return Err(crate::base::error::Error::invalid(
                "site",
                "must be 1 to 128 characters",
            ));
        }
        crate::base::text::check_printable("site", site)?;
        self.conn.execute(
            "INSERT INTO pairing_codes (code_sha256, site, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (code_sha256) DO UPDATE SET site = ?2, created_ms = ?3, expires_ms = ?4, used_by = NULL",
            params![sha256(code.as_bytes()), site, now_ms, now_ms + valid_ms],
        )?;
        Ok(format!("{}-{}-{}", &code[..4], &code[4..8], &code[8..]))
    }

    /// Pairs a device with a one-time code; a device re-pairing with the same key gets a new
    /// token (the old one stops working).
    pub fn pair(&mut self, req: &PairRequest, now_ms: i64) -> Result<PairResponse, ApiFailure> {
        let forbidden = |m: &str| ApiFailure {
            status: 403,
            code: "pairing_refused",
            message: m.into(),
        };
        if req.name.trim().is_empty() || req.name.chars().count() > 128 {
            return Err(ApiFailure::bad_request("name must be 1 to 128 characters"));
        }
        crate::base::text::check_printable("name", &req.name)
            .map_err(|e| ApiFailure::bad_request(e.to_string()))?;
        crate::base::config::check_region(&req.data_region)
            .map_err(|e| ApiFailure::bad_request(format!("data_region: {e}")))?;
        let ours = &self.privacy.data_region;
        if !ours.is_empty()
            && !req.data_region.is_empty()
            && req.data_region != *ours
            && !self.privacy.allow_cross_region
        {
            return Err(ApiFailure {
                status: 403,
                code: "region_mismatch",
                message: format!(
                    "this kiosk was provisioned for data region {:?} and this hub stores data in {ours:?}; \
                     pair it with a hub of its region, or set [privacy] allow_cross_region = true",
                    req.data_region
                ),
            });
        }
        let region = if req.data_region.is_empty() {
            ours.clone()
        } else {
            req.data_region.clone()
        };
        let tx = self.conn.begin(Lock::Write)?;
        let code_hash = sha256(normalise_code(&req.code).as_bytes());
        let row: Option<(String, i64, Option<String>)> = tx
            .query_row(
                "SELECT site, expires_ms, used_by FROM pairing_codes WHERE code_sha256 = ?1",
                params![&code_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((site, expires, used_by)) = row else {
            return Err(forbidden("unknown pairing code"));
        };
        if used_by.is_some() {
            return Err(forbidden("pairing code already used"));
        }
        if expires < now_ms {
            return Err(forbidden("pairing code expired"));
        }
        // The code is checked first, so without one nothing else about the hub can be probed.
        let key_bytes: [u8; 32] = hex::decode(&req.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ApiFailure::bad_request("public_key must be 64 hex digits"))?;
        let key = check_public_key(&key_bytes)
            .map_err(|why| ApiFailure::bad_request(format!("public_key {why}")))?;
        let existing: Option<Vec<u8>> = tx
            .query_row(
                "SELECT public_key FROM devices WHERE id = ?1",
                params![req.device_id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        let unpaired: bool = tx
            .query_row(
                "SELECT 1 FROM unpaired WHERE device_id = ?1",
                params![req.device_id.to_string()],
                |_| Ok(true),
            )
            .optional()?
            .is_some();
        let proven = match &req.proof {
            Some(proof) => {
                let sig: [u8; 64] = hex::decode(proof)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| ApiFailure::bad_request("proof must be 128 hex digits"))?;
                let msg = pairing_proof_message(&req.code, req.device_id, &req.public_key);
                if key
                    .verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
                    .is_err()
                {
                    return Err(forbidden(
                        "pairing proof does not verify: it must be signed by the device key",
                    ));
                }
                true
            }
            None => false,
        };
        let action = match existing {
            // An admin unpaired the id: it pairs as new, with whatever key it brings.
            Some(_) if unpaired => "device_repaired_after_unpair",
            Some(k) if k != key_bytes => {
                return Err(ApiFailure {
                    status: 409,
                    code: "device_key_mismatch",
                    message: "this device id is paired with another key".into(),
                });
            }
            Some(_) if !proven => {
                return Err(ApiFailure {
                    status: 409,
                    code: "device_already_paired",
                    message: "this device id is already paired: re-pairing needs a proof signed \
                              by its key (update the kiosk), or `clockface-hub device unpair ID` \
                              by an admin first"
                        .into(),
                });
            }
            Some(_) => "device_repaired",
            None => "device_paired",
        };
        let mut tok = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut tok);
        let token = hex::encode(tok);
        tx.execute(
            "INSERT INTO devices (id, public_key, token_sha256, name, site, paired_ms, data_region) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET public_key = ?2, token_sha256 = ?3, name = ?4, site = ?5, paired_ms = ?6, data_region = ?7",
            params![req.device_id.to_string(), key.as_bytes().to_vec(), sha256(token.as_bytes()), req.name, site, now_ms, region],
        )?;
        tx.execute(
            "DELETE FROM unpaired WHERE device_id = ?1",
            params![req.device_id.to_string()],
        )?;
        let detail =
            serde_json::json!({ "site": site, "proof": proven, "data_region": region }).to_string();
        audit(&tx, now_ms, action, &req.device_id.to_string(), &detail)?;
        tx.execute(
            "UPDATE pairing_codes SET used_by = ?2 WHERE code_sha256 = ?1",
            params![code_hash, req.device_id.to_string()],
        )?;
        tx.commit()?;
        Ok(PairResponse {
            device_id: req.device_id,
            token,
            site,
            hub_time_ms: now_ms,
        })
    }

    /// Unpairs a device (an admin's decision, for a kiosk whose key was lost or replaced): its
    /// token stops working at once and its id may pair again with a new key. What it already
    /// uploaded stays. Audited. False when no such device is paired.
    pub fn unpair(&mut self, device_id: &Uuid, now_ms: i64) -> crate::base::error::Result<bool> {
        let tx = self.conn.begin(Lock::Write)?;
        let mut dead = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut dead);
        let n = tx.execute(
            "UPDATE devices SET token_sha256 = ?2 WHERE id = ?1",
            params![device_id.to_string(), sha256(&dead)],
        )?;
        if n == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO unpaired (device_id, at_ms) VALUES (?1, ?2)
             ON CONFLICT (device_id) DO UPDATE SET at_ms = ?2",
            params![device_id.to_string(), now_ms],
        )?;
        audit(&tx, now_ms, "device_unpaired", &device_id.to_string(), "{}")?;
        tx.commit()?;
        Ok(true)
    }

    /// The hub's own audit log (pairing, re-pairing, unpairing), newest first.
    pub fn hub_audit(&self, limit: usize) -> crate::base::error::Result<Vec<HubAudit>> {
        Ok(self.conn.query_map(
            "SELECT at_ms, action, device_id, detail FROM hub_audit ORDER BY id DESC LIMIT ?1",
            params![limit as i64],
            |r| {
                Ok(HubAudit {
                    at_ms: r.get(0)?,
                    action: r.get(1)?,
                    device_id: r.get(2)?,
                    detail: r.get(3)?,
                })
            },
        )?)
    }

    /// The device a bearer token belongs to.
    pub fn device_by_token(&self, token: &str) -> Result<Option<Device>, ApiFailure> {
        let row: Option<(String, Vec<u8>, String)> = self
            .conn
            .query_row(
                "SELECT id, public_key, site FROM devices WHERE token_sha256 = ?1",
                params![sha256(token.as_bytes())],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((id, key, site)) = row else {
            return Ok(None);
        };
        let id = Uuid::parse_str(&id).map_err(ApiFailure::internal)?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| ApiFailure::internal("stored key"))?;
        let public_key = VerifyingKey::from_bytes(&key).map_err(ApiFailure::internal)?;
        Ok(Some(Device {
            id,
            public_key,
            site,
        }))
    }

    /// Notes that a device was seen (any authenticated request).
    pub fn touch(&self, device: &Device, now_ms: i64) -> Result<(), ApiFailure> {
        self.conn.execute(
            "UPDATE devices SET last_seen_ms = ?2 WHERE id = ?1",
            params![device.id.to_string(), now_ms],
        )?;
        Ok(())
    }
}

/// One entry of the hub's own audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubAudit {
    /// When (hub wall time, Unix ms).
    pub at_ms: i64,
    /// What happened (`device_paired`, `device_repaired`, `device_unpaired`, …).
    pub action: String,
    /// Which device.
    pub device_id: String,
    /// A small JSON object with the circumstances (site, whether a key proof was given).
    pub detail: String,
}

/// Appends to the hub's audit log inside `tx`.
fn audit(
    tx: &Conn,
    now_ms: i64,
    action: &str,
    device_id: &str,
    detail: &str,
) -> Result<(), SqlError> {
    tx.execute(
        "INSERT INTO hub_audit (at_ms, action, device_id, detail) VALUES (?1, ?2, ?3, ?4)",
        params![now_ms, action, device_id, detail],
    )?;
    Ok(())
}
