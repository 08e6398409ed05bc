//! The roster: employees, badges, PIN hashes, consent decisions and sealed face templates.
//!
//! Every change is written together with its audit entry in one transaction. A face template
//! can only be stored while the employee's latest consent decision is "given"; declining or
//! withdrawing consent, or deleting the employee, wipes their templates in the same
//! transaction (with `secure_delete` on, the bytes are overwritten, not just unlinked).
//! Templates are sealed under `data.key` and only ever decrypted into memory.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use zeroize::Zeroizing;

use super::Store;
use super::audit::NewAudit;
use super::keys;
use super::record::validate_employee_id;
use crate::base::badge::BadgeId;
use crate::base::error::{Error, Result};

/// An employee as the kiosk knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Employee {
    /// Stable id from the enterprise (payroll number).
    pub id: String,
    /// Name shown on the verdict screen.
    pub display_name: String,
    /// Inactive employees cannot check in but keep their history.
    pub active: bool,
    /// Admins may enter admin mode with their badge or PIN.
    pub is_admin: bool,
}

pub use super::consent::Consent;

/// A decrypted face template, held only in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Row id.
    pub id: i64,
    /// Embedder that produced it.
    pub model: String,
    /// The embedding vector.
    pub vector: Vec<f32>,
}

/// Failed PIN attempts allowed in a row before lockouts start.
pub const PIN_FREE_ATTEMPTS: u32 = 5;

/// The outcome of a PIN entry under lockout rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PinCheck {
    /// The PIN matched.
    Ok,
    /// Wrong PIN; this many more tries before a lockout.
    Wrong {
        /// Attempts left before the first lockout.
        before_lockout: u32,
    },
    /// Locked out until this time (Unix ms); the PIN was not checked.
    LockedOut {
        /// When entry is possible again.
        until_ms: i64,
    },
}

/// Outcome of an admin PIN typed at the kiosk (no badge says whose it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminPinCheck {
    /// The PIN belongs to this active admin.
    Ok(String),
    /// No active admin has this PIN; every admin's failure count grew.
    Wrong,
    /// Every admin with a PIN is locked out until this time (Unix ms).
    LockedOut {
        /// When entry is possible again.
        until_ms: i64,
    },
    /// No active admin has a PIN set: admin mode needs an admin badge.
    NoAdminPin,
}

/// The PIN rule, for callers that check input before they write anything: 4 to 12 digits.
pub fn check_pin_format(pin: &str) -> Result<()> {
    if !(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid("PIN", "must be 4 to 12 digits"));
    }
    Ok(())
}

pub(crate) fn template_aad(employee_id: &str, model: &str) -> Vec<u8> {
    format!("clockface template v1|{employee_id}|{model}").into_bytes()
}

impl Store {
    /// Adds or updates an employee.
    pub fn upsert_employee(&mut self, actor: &str, e: &Employee) -> Result<()> {
        validate_employee_id(&e.id, false)?;
        let n = e.display_name.chars().count();
        if n == 0 || n > 128 || e.display_name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "display name",
                "must be 1 to 128 printable characters",
            ));
        }
        let audit = NewAudit::new(actor, "employee_upserted", &e.id);
        self.audited(&audit, |tx, _, now| {
            tx.execute(
                "INSERT INTO employees (id, display_name, active, is_admin, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET display_name = ?2, active = ?3, is_admin = ?4, updated_ms = ?5",
                params![e.id, e.display_name, e.active, e.is_admin, now],
            )?;
            Ok(())
        })
    }

    /// Employees whose id or name contains `filter` (case-insensitive), by name, at most
    /// `limit`, each with whether face consent is in force and how many templates they have:
    /// what the admin roster page lists.
    pub fn list_employees(&self, filter: &str, limit: usize) -> Result<Vec<(Employee, bool, u64)>> {
        let like = format!("%{}%", filter.replace(['%', '_'], ""));
        let mut stmt = self.conn().prepare(
            "SELECT e.id, e.display_name, e.active, e.is_admin,
                    coalesce((SELECT given FROM consents c WHERE c.employee_id = e.id ORDER BY c.id DESC LIMIT 1), 0),
                    (SELECT count(*) FROM templates t WHERE t.employee_id = e.id)
             FROM employees e
             WHERE e.id LIKE ?1 OR e.display_name LIKE ?1
             ORDER BY e.display_name, e.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![like, limit as i64], |r| {
            Ok((
                Employee {
                    id: r.get(0)?,
                    display_name: r.get(1)?,
                    active: r.get(2)?,
                    is_admin: r.get(3)?,
                },
                r.get::<_, bool>(4)?,
                r.get::<_, i64>(5)? as u64,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Looks an employee up by id.
    pub fn employee(&self, id: &str) -> Result<Option<Employee>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, display_name, active, is_admin FROM employees WHERE id = ?1",
                [id],
                |r| {
                    Ok(Employee {
                        id: r.get(0)?,
                        display_name: r.get(1)?,
                        active: r.get(2)?,
                        is_admin: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Deletes an employee; their badges, consents and templates go in the same transaction.
    /// Check-in records stay: they are signed history the employer must keep.
    pub fn delete_employee(&mut self, actor: &str, id: &str) -> Result<bool> {
        let audit = NewAudit::new(actor, "employee_deleted", id);
        let deleted = self.audited(&audit, |tx, _, now| {
            let had_consent: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM consents WHERE employee_id = ?1)",
                [id],
                |r| r.get(0),
            )?;
            let deleted = tx.execute("DELETE FROM employees WHERE id = ?1", [id])? > 0;
            if deleted && had_consent {
                // The backend and the person's other doors forget their templates too.
                super::biometrics::queue_biometric(tx, id, now)?;
            }
            Ok(deleted)
        })?;
        self.wipe_wal()?;
        Ok(deleted)
    }

    /// Links a badge to an employee (normalising its id); a badge names one employee only.
    pub fn add_badge(&mut self, actor: &str, badge: &str, employee_id: &str) -> Result<()> {
        let badge = BadgeId::parse(badge)?;
        self.require_employee(employee_id)?;
        let audit = NewAudit::new(actor, "badge_assigned", employee_id);
        self.audited(&audit, |tx, _, _| {
            tx.execute(
                "INSERT INTO badges (badge_id, employee_id) VALUES (?1, ?2)
                 ON CONFLICT (badge_id) DO UPDATE SET employee_id = ?2",
                params![badge.as_str(), employee_id],
            )?;
            Ok(())
        })
    }

    /// The employee a badge names, if any.
    pub fn employee_by_badge(&self, badge: &BadgeId) -> Result<Option<Employee>> {
        let id: Option<String> = self
            .conn()
            .query_row(
                "SELECT employee_id FROM badges WHERE badge_id = ?1",
                [badge.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => self.employee(&id),
            None => Ok(None),
        }
    }

    /// Sets an employee's PIN (4 to 12 digits), stored as an argon2id hash.
    pub fn set_pin(&mut self, actor: &str, employee_id: &str, pin: &str) -> Result<()> {
        check_pin_format(pin)?;
        self.require_employee(employee_id)?;
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let hash = Argon2::default()
            .hash_password(pin.as_bytes(), &salt)
            .map_err(|e| Error::invalid("PIN", e.to_string()))?
            .to_string();
        let audit = NewAudit::new(actor, "pin_set", employee_id);
        self.audited(&audit, |tx, _, _| {
            tx.execute(
                "UPDATE employees SET pin_hash = ?2 WHERE id = ?1",
                params![employee_id, hash],
            )?;
            Ok(())
        })
    }

    /// Checks a PIN against the stored hash; false when no PIN is set.
    pub fn verify_pin(&self, employee_id: &str, pin: &str) -> Result<bool> {
        let hash: Option<Option<String>> = self
            .conn()
            .query_row(
                "SELECT pin_hash FROM employees WHERE id = ?1",
                [employee_id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(Some(hash)) = hash else {
            return Ok(false);
        };
        let parsed = PasswordHash::new(&hash).map_err(|e| Error::Database {
            path: self.db_path().to_owned(),
            reason: format!("PIN hash of an employee is malformed: {e}"),
        })?;
        Ok(Argon2::default()
            .verify_password(pin.as_bytes(), &parsed)
            .is_ok())
    }

    /// Checks a PIN typed for admin mode against every active admin. A match is checked through
    /// [`Store::check_pin`], so a locked-out admin stays locked out; no match counts as a failed
    /// attempt for every admin, so guessing admin PINs locks admin entry as a whole, with the
    /// same growing lockout that survives a restart.
    pub fn check_admin_pin(&mut self, pin: &str) -> Result<AdminPinCheck> {
        let admins: Vec<String> = {
            let mut stmt = self.conn().prepare(
                "SELECT id FROM employees WHERE is_admin = 1 AND active = 1 AND pin_hash IS NOT NULL ORDER BY id",
            )?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        if admins.is_empty() {
            return Ok(AdminPinCheck::NoAdminPin);
        }
        let mut locked: Vec<i64> = Vec::new();
        for id in &admins {
            if self.verify_pin(id, pin)? {
                match self.check_pin(id, pin)? {
                    PinCheck::Ok => return Ok(AdminPinCheck::Ok(id.clone())),
                    PinCheck::LockedOut { until_ms } => locked.push(until_ms),
                    PinCheck::Wrong { .. } => {}
                }
            }
        }
        locked.clear();
        for id in &admins {
            if let PinCheck::LockedOut { until_ms } = self.check_pin(id, pin)? {
                locked.push(until_ms);
            }
        }
        Ok(if locked.len() == admins.len() {
            AdminPinCheck::LockedOut {
                until_ms: locked.into_iter().min().unwrap_or(0),
            }
        } else {
            AdminPinCheck::Wrong
        })
    }

    /// Checks a PIN with brute-force protection that survives restarts: after
    /// [`PIN_FREE_ATTEMPTS`] failures in a row the employee is locked out for 30 s, doubling
    /// with each further failure up to an hour; while locked out the PIN is not even checked.
    /// Success clears the count. Each lockout is audited.
    pub fn check_pin(&mut self, employee_id: &str, pin: &str) -> Result<PinCheck> {
        let now = self.clock().wall_ms();
        let state: Option<(i64, i64)> = self
            .conn()
            .query_row(
                "SELECT failures, locked_until_ms FROM pin_lockout WHERE employee_id = ?1",
                [employee_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (failures, locked_until) = state.unwrap_or((0, 0));
        if locked_until > now {
            return Ok(PinCheck::LockedOut {
                until_ms: locked_until,
            });
        }
        if self.verify_pin(employee_id, pin)? {
            if failures > 0 {
                self.conn().execute(
                    "DELETE FROM pin_lockout WHERE employee_id = ?1",
                    [employee_id],
                )?;
            }
            return Ok(PinCheck::Ok);
        }
        let failures = failures + 1;
        let over = failures - PIN_FREE_ATTEMPTS as i64;
        let lock_ms = if over >= 0 {
            (30_000i64 << over.min(7)).min(3_600_000)
        } else {
            0
        };
        let until = if lock_ms > 0 { now + lock_ms } else { 0 };
        if self.employee(employee_id)?.is_some() {
            self.conn().execute(
                "INSERT INTO pin_lockout (employee_id, failures, locked_until_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (employee_id) DO UPDATE SET failures = ?2, locked_until_ms = ?3",
                params![employee_id, failures, until],
            )?;
        }
        if lock_ms > 0 {
            let mut a = NewAudit::new("system", "pin_locked_out", employee_id);
            a.detail =
                serde_json::json!({ "failures": failures, "seconds": lock_ms / 1000 }).to_string();
            self.audit(&a)?;
            return Ok(PinCheck::LockedOut { until_ms: until });
        }
        Ok(PinCheck::Wrong {
            before_lockout: (PIN_FREE_ATTEMPTS as i64 - failures) as u32,
        })
    }

    /// Seals and stores a face template. Refused unless consent is currently given.
    pub fn add_template(
        &mut self,
        actor: &str,
        employee_id: &str,
        model: &str,
        vector: &[f32],
    ) -> Result<i64> {
        self.require_employee(employee_id)?;
        if !self.consent(employee_id)?.is_some_and(|c| c.given) {
            return Err(Error::invalid(
                "face template",
                format!("employee {employee_id} has not given consent to face enrolment"),
            ));
        }
        self.require_guardian_if_minor(employee_id)?;
        if vector.is_empty() || vector.len() > 4096 || !vector.iter().all(|x| x.is_finite()) {
            return Err(Error::invalid(
                "face template",
                "must be 1 to 4096 finite numbers",
            ));
        }
        let plain: Zeroizing<Vec<u8>> =
            Zeroizing::new(vector.iter().flat_map(|x| x.to_le_bytes()).collect());
        let mut audit = NewAudit::new(actor, "template_enrolled", employee_id);
        audit.detail = serde_json::json!({ "model": model, "dims": vector.len() }).to_string();
        self.audited(&audit, |tx, key, now| {
            let sealed = keys::seal(key, &plain, &template_aad(employee_id, model));
            tx.execute(
                "INSERT INTO templates (employee_id, model, dims, sealed, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![employee_id, model, vector.len() as i64, sealed, now],
            )?;
            super::biometrics::queue_biometric(tx, employee_id, now)?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Decrypts an employee's templates into memory.
    pub fn templates(&self, employee_id: &str) -> Result<Vec<Template>> {
        let key = self.data_key()?;
        let mut stmt = self.conn().prepare(
            "SELECT id, model, dims, sealed FROM templates WHERE employee_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([employee_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, model, dims, sealed) = row?;
            let plain = keys::open(
                key,
                &sealed,
                &template_aad(employee_id, &model),
                &format!("template {id}"),
            )?;
            if plain.len() != dims as usize * 4 {
                return Err(Error::Crypto {
                    what: format!("template {id}"),
                    reason: format!("holds {} bytes for {dims} dimensions", plain.len()),
                });
            }
            let vector = plain
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect();
            out.push(Template { id, model, vector });
        }
        Ok(out)
    }

    /// Whether the employee has a PIN set.
    pub fn has_pin(&self, employee_id: &str) -> Result<bool> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM employees WHERE id = ?1 AND pin_hash IS NOT NULL",
            [employee_id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// How many templates of `model` the employee has.
    pub fn template_count(&self, employee_id: &str, model: &str) -> Result<u64> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM templates WHERE employee_id = ?1 AND model = ?2",
            [employee_id, model],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Every employee with templates of `model`: (employee id, decrypted templates), for the
    /// 1:N gallery.
    pub fn all_templates(&self, model: &str) -> Result<Vec<(String, Vec<Template>)>> {
        let ids: Vec<String> = {
            let mut stmt = self.conn().prepare(
                "SELECT DISTINCT employee_id FROM templates WHERE model = ?1 ORDER BY employee_id",
            )?;
            stmt.query_map([model], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        ids.into_iter()
            .map(|id| {
                let t = self
                    .templates(&id)?
                    .into_iter()
                    .filter(|t| t.model == model)
                    .collect();
                Ok((id, t))
            })
            .collect()
    }

    /// Accepted check-ins since `since_ms` (wall time): the newest per employee, for
    /// anti-passback after a restart.
    pub fn recent_checkins(&self, since_ms: i64) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.conn().prepare(
            "SELECT employee_id, max(wall_ms) FROM records WHERE outcome = 1 AND wall_ms >= ?1 GROUP BY employee_id",
        )?;
        let rows = stmt.query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub(crate) fn require_employee(&self, id: &str) -> Result<()> {
        if self.employee(id)?.is_none() {
            return Err(Error::invalid(
                "employee",
                format!("{id:?} is not on the roster"),
            ));
        }
        Ok(())
    }
}
