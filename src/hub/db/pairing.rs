//! Pairing: one-time codes an admin hands out, the pairing that turns a code into a device
//! and its token, and finding the device a request's token names.

use ed25519_dalek::VerifyingKey;
use rand::RngCore;
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use crate::base::protocol::{PairRequest, PairResponse};

use super::{ApiFailure, HubDb, sha256};

/// A paired device, as the API layer needs it after authentication.
#[derive(Debug, Clone)]
pub struct Device {
    /// Device id.
    pub id: Uuid,
    /// Key its entries must be signed with.
    pub public_key: VerifyingKey,
}

/// The alphabet of pairing codes: no 0/O or 1/I/L to misread on a screen.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

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
        if site.trim().is_empty() {
            return Err(crate::base::error::Error::invalid(
                "site",
                "must not be empty",
            ));
        }
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
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let code_hash = sha256(normalise_code(&req.code).as_bytes());
        let row: Option<(String, i64, Option<String>)> = tx
            .query_row(
                "SELECT site, expires_ms, used_by FROM pairing_codes WHERE code_sha256 = ?1",
                [&code_hash],
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
        let key = VerifyingKey::from_bytes(&key_bytes)
            .map_err(|_| ApiFailure::bad_request("public_key is not an Ed25519 public key"))?;
        let existing: Option<Vec<u8>> = tx
            .query_row(
                "SELECT public_key FROM devices WHERE id = ?1",
                [req.device_id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(k) = existing
            && k != key_bytes
        {
            return Err(ApiFailure {
                status: 409,
                code: "device_key_mismatch",
                message: "this device id is paired with another key".into(),
            });
        }
        let mut tok = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut tok);
        let token = hex::encode(tok);
        tx.execute(
            "INSERT INTO devices (id, public_key, token_sha256, name, site, paired_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET token_sha256 = ?3, name = ?4, site = ?5, paired_ms = ?6",
            params![req.device_id.to_string(), key.as_bytes().to_vec(), sha256(token.as_bytes()), req.name, site, now_ms],
        )?;
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

    /// The device a bearer token belongs to.
    pub fn device_by_token(&self, token: &str) -> Result<Option<Device>, ApiFailure> {
        let row: Option<(String, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT id, public_key FROM devices WHERE token_sha256 = ?1",
                [sha256(token.as_bytes())],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((id, key)) = row else {
            return Ok(None);
        };
        let id = Uuid::parse_str(&id).map_err(ApiFailure::internal)?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| ApiFailure::internal("stored key"))?;
        let public_key = VerifyingKey::from_bytes(&key).map_err(ApiFailure::internal)?;
        Ok(Some(Device { id, public_key }))
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
