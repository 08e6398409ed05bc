//! Face templates on the hub: sealed at rest, and the consent that lets them travel.
//!
//! Templates are sealed with XChaCha20-Poly1305 under a key file of their own (32 bytes,
//! mode 0600, beside the database: `hub.db` → `hub.templates.key`), bound to their employee and
//! model, so a copy of the database alone holds no usable template. `clockface-hub keys
//! rotate` re-seals every template under a new key in one transaction.
//!
//! A kiosk tells the hub of each consent decision and local enrolment (`POST
//! /v1/biometrics`). With consent given for scope "site", its templates are kept and served to
//! the other kiosks of the person's site; any other decision (declined, withdrawn, "device"
//! only, or the person deleted at a kiosk) removes every template of the person here, and the
//! next roster tells every kiosk that holds them.

use std::fs;
use std::path::{Path, PathBuf};

use crate::hub::sql::{Conn, Lock, OptionalExt, SqlError, params};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{ApiFailure, HubDb, roster::bump};
use crate::base::error::{Error, Result};
use crate::base::protocol::{
    BiometricAck, BiometricUpdate, ConsentScope, RosterConsent, RosterTemplate,
};
use crate::store::keys::{self, KEY_LEN};

/// Templates one kiosk may keep on the hub for one person.
pub const MAX_TEMPLATES: usize = 10;

/// Where the template key of the SQLite database at `db` lives by default.
pub fn key_path(db: &Path) -> PathBuf {
    let stem = db
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "hub".into());
    db.with_file_name(format!("{stem}.templates.key"))
}

fn key_id(key: &[u8; KEY_LEN]) -> String {
    hex::encode(&Sha256::digest(key)[..8])
}

fn aad(employee: &str, model: &str) -> Vec<u8> {
    format!("clockface hub template v1|{employee}|{model}").into_bytes()
}

/// The template key in memory, with its id (what `meta.template_key_id` names).
pub(super) struct TemplateKey {
    pub(super) key: Zeroizing<[u8; KEY_LEN]>,
    id: String,
}

/// The template key at `path`: read, or made on first use. A rotation that stopped between its
/// commit and the key file's rename is finished here.
pub(super) fn load_key(path: &Path, conn: &Conn) -> Result<TemplateKey> {
    let path = path.to_path_buf();
    let new = path.with_extension("key.new");
    let in_use: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'template_key_id'",
            params![],
            |r| r.get(0),
        )
        .optional()?;
    if new.exists() {
        let k = keys::read_key_file(&new)?;
        if in_use.as_deref() == Some(key_id(&k).as_str()) {
            fs::rename(&new, &path).map_err(|e| Error::io(&path, e))?;
        } else {
            fs::remove_file(&new).map_err(|e| Error::io(&new, e))?;
        }
    }
    let created = !path.exists();
    let key = if !created {
        keys::read_key_file(&path)?
    } else {
        let sealed: i64 =
            conn.query_row("SELECT count(*) FROM sealed_templates", params![], |r| {
                r.get(0)
            })?;
        if sealed > 0 {
            return Err(Error::KeyFile {
                path,
                reason: format!(
                    "missing, and the database holds {sealed} templates sealed under it: restore the key file from its backup"
                ),
            });
        }
        keys::create_key_file(&path)?
    };
    let id = key_id(&key);
    match in_use {
        Some(used) if used != id && !created => {
            return Err(Error::KeyFile {
                path,
                reason: format!(
                    "is key {id}, but the templates are sealed under key {used}: restore the right key file"
                ),
            });
        }
        Some(used) if used == id => {}
        _ => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('template_key_id', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = ?1",
                params![&id],
            )?;
        }
    }
    Ok(TemplateKey { key, id })
}

/// Databases from before templates were sealed: each plain embedding is sealed into
/// `sealed_templates`, and the plain table is emptied (secure_delete overwrites the bytes)
/// and dropped, in one transaction.
pub(super) fn migrate_plain(conn: &Conn, key: &[u8; KEY_LEN]) -> Result<u64, SqlError> {
    let has = conn.exists(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'templates'",
        params![],
    )?;
    if !has {
        return Ok(0);
    }
    let tx = conn.begin(Lock::Write)?;
    let rows: Vec<(String, String, Vec<u8>)> = tx.query_map(
        "SELECT employee_id, model, embedding FROM templates ORDER BY id",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (emp, model, raw) in &rows {
        tx.execute(
            "INSERT INTO sealed_templates (employee_id, model, sealed, origin_device) VALUES (?1, ?2, ?3, NULL)",
            params![emp, model, keys::seal(key, raw, &aad(emp, model))],
        )?;
    }
    tx.execute("DELETE FROM templates", params![])?;
    tx.execute("DROP TABLE templates", params![])?;
    tx.commit()?;
    conn.execute_batch("VACUUM")?;
    Ok(rows.len() as u64)
}

/// Stores one template sealed (the caller checked the embedding).
pub(super) fn insert_template(
    tx: &Conn,
    key: &[u8; KEY_LEN],
    employee: &str,
    model: &str,
    raw: &[u8],
    origin: Option<&Uuid>,
) -> Result<(), SqlError> {
    tx.execute(
        "INSERT INTO sealed_templates (employee_id, model, sealed, origin_device) VALUES (?1, ?2, ?3, ?4)",
        params![
            employee,
            model,
            keys::seal(key, raw, &aad(employee, model)),
            origin.map(|d| d.to_string())
        ],
    )?;
    Ok(())
}

impl HubDb {
    /// The template key in force: reloaded when another process (`keys rotate`) changed it,
    /// so a running hub never seals or opens with a stale key.
    pub(super) fn key(&self) -> std::result::Result<Zeroizing<[u8; KEY_LEN]>, ApiFailure> {
        let used: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'template_key_id'",
                params![],
                |r| r.get(0),
            )
            .optional()?;
        if used.as_deref() != Some(self.template_key.borrow().id.as_str()) {
            let k = load_key(&self.key_file, &self.conn).map_err(ApiFailure::internal)?;
            *self.template_key.borrow_mut() = k;
        }
        Ok(self.template_key.borrow().key.clone())
    }

    /// The templates a kiosk is served for one person: every template but its own, opened
    /// with `key` (from [`HubDb::key`], read once per roster).
    pub(super) fn served_templates(
        &self,
        key: &[u8; KEY_LEN],
        employee: &str,
        device: &Uuid,
    ) -> std::result::Result<Vec<RosterTemplate>, ApiFailure> {
        let rows = self.conn.query_map(
            "SELECT id, model, sealed FROM sealed_templates
              WHERE employee_id = ?1 AND (origin_device IS NULL OR origin_device <> ?2) ORDER BY id",
            params![employee, device.to_string()],
            |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<String>(1)?,
                r.get::<Vec<u8>>(2)?,
            ))
        },
        )?;
        let mut out = Vec::new();
        for (id, model, sealed) in rows {
            let plain = keys::open(
                key,
                &sealed,
                &aad(employee, &model),
                &format!("hub template {id}"),
            )
            .map_err(ApiFailure::internal)?;
            out.push(RosterTemplate {
                model,
                embedding: B64.encode(&*plain),
            });
        }
        Ok(out)
    }

    /// What a kiosk reports after a consent decision or enrolment there. An update that does
    /// not hold up is answered with its reason in `refused` and changes nothing.
    pub fn biometric_update(
        &mut self,
        device: &Uuid,
        site: &str,
        u: &BiometricUpdate,
    ) -> std::result::Result<BiometricAck, ApiFailure> {
        // What the protocol's schema says is a malformed request (400); anything else that does
        // not hold up is a refusal with its reason.
        if !(1..=64).contains(&u.employee_id.chars().count()) {
            return Err(ApiFailure::bad_request(
                "employee_id must be 1 to 64 characters",
            ));
        }
        if u.templates.len() > MAX_TEMPLATES {
            return Err(ApiFailure::bad_request(format!(
                "{} templates; at most {MAX_TEMPLATES}",
                u.templates.len()
            )));
        }
        if let Some(c) = &u.consent
            && !(1..=32).contains(&c.text_version.chars().count())
        {
            return Err(ApiFailure::bad_request(
                "consent.text_version must be 1 to 32 characters",
            ));
        }
        match self.apply_biometric(device, site, u)? {
            Ok(ack) => Ok(ack),
            Err(refused) => Ok(BiometricAck {
                roster_version: self.roster_version()?,
                templates_stored: 0,
                refused,
            }),
        }
    }

    fn apply_biometric(
        &mut self,
        device: &Uuid,
        site: &str,
        u: &BiometricUpdate,
    ) -> std::result::Result<std::result::Result<BiometricAck, String>, ApiFailure> {
        macro_rules! bad {
            ($($t:tt)*) => {
                return Ok(Err(format!($($t)*)))
            };
        }
        if let Err(e) = crate::store::record::validate_employee_id(&u.employee_id, false) {
            bad!("employee_id: {e}");
        }
        let row: Option<(bool, String)> = self
            .conn
            .query_row(
                "SELECT deleted, sites FROM employees WHERE id = ?1",
                params![&u.employee_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let here = |sites: &str| sites.is_empty() || sites.split('\n').any(|s| s == site);
        let keep = match &u.consent {
            Some(RosterConsent {
                given: true, scope, ..
            }) => *scope == ConsentScope::Site,
            _ => false,
        };
        if let Some(c) = &u.consent
            && (c.text_version.is_empty() || c.text_version.len() > 32)
        {
            bad!("consent.text_version must be 1 to 32 characters");
        }
        if keep
            && let Some(doc) = self.policy_for(site)?
            && !doc.policy.site_scope_allowed
        {
            bad!(
                "site {site:?} does not allow consent of scope \"site\" (its policy's site_scope_allowed is false)"
            );
        }
        if !keep && !u.templates.is_empty() {
            bad!("templates may only be sent with consent given for scope \"site\"");
        }
        let mut raws = Vec::with_capacity(u.templates.len());
        for t in &u.templates {
            if t.model.is_empty() || t.model.len() > 64 {
                bad!("templates: model must be 1 to 64 characters");
            }
            match super::roster::decode_embedding(&t.embedding) {
                Err(w) => bad!("templates: {w}"),
                Ok(v) if v.is_empty() => bad!("templates: an embedding is empty"),
                Ok(_) => {}
            }
            raws.push(Zeroizing::new(B64.decode(&t.embedding).expect("checked")));
        }
        let key = self.key()?;
        let tx = self.conn.begin(Lock::Write)?;
        let stored = match row {
            // Unknown, deleted, or not of this kiosk's site: nothing to keep here, and no
            // other kiosk may learn of them from this one.
            None | Some((true, _)) => 0,
            Some((false, sites)) if !here(&sites) => 0,
            Some(_) => {
                match &u.consent {
                    Some(c) => tx.execute(
                        "UPDATE employees SET consent_given = ?2, consent_version = ?3, consent_scope = ?4 WHERE id = ?1",
                        params![u.employee_id, c.given, c.text_version, c.scope.as_str()],
                    )?,
                    None => tx.execute(
                        "UPDATE employees SET consent_given = 0, consent_scope = 'device' WHERE id = ?1",
                        params![&u.employee_id],
                    )?,
                };
                if keep {
                    tx.execute(
                        "DELETE FROM sealed_templates WHERE employee_id = ?1 AND (origin_device = ?2 OR origin_device IS NULL)",
                        params![u.employee_id, device.to_string()],
                    )?;
                    for (t, raw) in u.templates.iter().zip(&raws) {
                        insert_template(&tx, &key, &u.employee_id, &t.model, raw, Some(device))?;
                    }
                } else {
                    tx.execute(
                        "DELETE FROM sealed_templates WHERE employee_id = ?1",
                        params![&u.employee_id],
                    )?;
                }
                raws.len() as u64
            }
        };
        let version = bump(&tx, "roster_version")?;
        tx.commit()?;
        if !keep {
            self.wipe_wal();
        }
        Ok(Ok(BiometricAck {
            roster_version: version,
            templates_stored: stored,
            refused: String::new(),
        }))
    }

    /// Re-seals every template under a new key file; returns how many. The new key is
    /// written beside the old one first and takes its place only after the commit, so a stop
    /// at any point leaves a key that opens every template.
    pub fn rotate_template_key(&mut self) -> Result<u64> {
        let old = self.key().map_err(|e| Error::Crypto {
            what: "template key".into(),
            reason: e.message,
        })?;
        let path = self.key_file.clone();
        let new_path = path.with_extension("key.new");
        let _ = fs::remove_file(&new_path);
        let new = keys::create_key_file(&new_path)?;
        let tx = self.conn.begin(Lock::Write)?;
        let rows: Vec<(i64, String, String, Vec<u8>)> = tx.query_map(
            "SELECT id, employee_id, model, sealed FROM sealed_templates",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        for (id, emp, model, sealed) in &rows {
            let plain = keys::open(
                &old,
                sealed,
                &aad(emp, model),
                &format!("hub template {id}"),
            )?;
            tx.execute(
                "UPDATE sealed_templates SET sealed = ?2 WHERE id = ?1",
                params![id, keys::seal(&new, &plain, &aad(emp, model))],
            )?;
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'template_key_id'",
            params![key_id(&new)],
        )?;
        tx.commit()?;
        fs::rename(&new_path, &path).map_err(|e| Error::io(&path, e))?;
        self.wipe_wal();
        let id = key_id(&new);
        *self.template_key.borrow_mut() = TemplateKey { key: new, id };
        Ok(rows.len() as u64)
    }
}
