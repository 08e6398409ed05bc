//! Consent that follows the person: each decision with the scope it covers, a minor's
//! guardian consent, the consent notice version in force and its grace period, and the queue
//! of biometric changes the backend must hear of (in [`super::biometrics`]).
//!
//! Every decision is written with its signed audit entry in one transaction. Declining or
//! withdrawing wipes the person's templates in that same transaction, and queues the change
//! for the backend, which wipes them at every other kiosk of the site.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::Store;
use super::audit::NewAudit;
use super::export::rfc3339_ms;
use super::record::validate_employee_id;
use crate::base::config::PolicyConfig;
use crate::base::error::{Error, Result};
use crate::base::protocol::ConsentScope;
use crate::base::text::check_printable;

/// A consent decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consent {
    /// True when the employee accepted face enrolment.
    pub given: bool,
    /// Version of the consent text they read.
    pub text_version: String,
    /// Where their template may go: this kiosk, or every kiosk of the site.
    pub scope: ConsentScope,
    /// Who witnessed the decision: an admin, the person themselves (a re-consent at the
    /// door), or "backend" (recorded elsewhere).
    pub witness: String,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// Age as the roster may hold it: nothing more precise than a birth year.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Age {
    /// Year of birth, if known.
    pub birth_year: Option<u16>,
    /// A minor flag from the backend (which may know the exact date), if given.
    pub is_minor: Option<bool>,
}

impl Age {
    /// Checks the birth year: from 1900 to `year`, the current one. Every place an age enters
    /// (`roster add`, a roster download, the hub's import) applies this one rule.
    pub fn check(&self, year: i32) -> std::result::Result<(), String> {
        match self.birth_year {
            Some(by) if !(1900..=year).contains(&(by as i32)) => {
                Err(format!("{by} is not a birth year; allowed: 1900 to {year}"))
            }
            _ => Ok(()),
        }
    }

    /// Whether this person is a minor under `minor_age` in `year`. The flag decides when it
    /// is given. With only a birth year, anyone who may not have had their `minor_age`-th
    /// birthday yet counts as a minor (born in 2012, in 2026, with 14: maybe 13, so a minor).
    /// Unknown age counts as adult: the roster is the place to say otherwise.
    pub fn is_minor(&self, minor_age: u32, year: i32) -> bool {
        match (self.is_minor, self.birth_year) {
            (Some(flag), _) => flag,
            (None, Some(by)) => year - (by as i32) <= minor_age as i32,
            (None, None) => false,
        }
    }
}

/// How a guardian gave their consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardianMethod {
    /// A signed paper form, kept by the employer.
    Paper,
    /// An electronic form (the HR system's reference).
    Form,
}

impl GuardianMethod {
    /// Parses "paper" or "form".
    pub fn parse(s: &str) -> Option<GuardianMethod> {
        match s {
            "paper" => Some(GuardianMethod::Paper),
            "form" => Some(GuardianMethod::Form),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            GuardianMethod::Paper => "paper",
            GuardianMethod::Form => "form",
        }
    }
}

/// A guardian's consent as an admin enters it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGuardianConsent {
    /// The guardian's name, or a reference to them in the HR system.
    pub guardian: String,
    /// Their relation to the minor ("mother", "legal guardian").
    pub relation: String,
    /// How it was given.
    pub method: GuardianMethod,
    /// The paper's or form's reference.
    pub reference: String,
    /// When the guardian gave it (Unix ms).
    pub given_ms: i64,
}

/// A recorded guardian consent, as `export-person` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardianConsent {
    /// The guardian's name or reference.
    pub guardian: String,
    /// Their relation to the minor.
    pub relation: String,
    /// How it was given.
    pub method: GuardianMethod,
    /// The paper's or form's reference.
    pub reference: String,
    /// When the guardian gave it (RFC 3339).
    pub given_at: String,
    /// The admin who recorded it.
    pub witness: String,
    /// When it was recorded here (RFC 3339).
    pub recorded_at: String,
}

/// Where one person stands with the consent notice in force, for the check-in machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentStatus {
    /// Consent is given (for some version).
    pub given: bool,
    /// Its scope.
    pub scope: ConsentScope,
    /// Given for an older notice than the one in force: they must be asked again.
    pub notice_due: bool,
    /// With `notice_due`: the grace period still lets their face be used meanwhile.
    pub within_grace: bool,
    /// A minor here with no guardian consent recorded: face enrolment is refused.
    pub guardian_required: bool,
}

impl ConsentStatus {
    /// Whether the person's face may be used at all right now.
    pub fn face_usable(&self) -> bool {
        self.given && (!self.notice_due || self.within_grace)
    }
}

fn text_field(what: &str, value: &str, max: usize) -> Result<()> {
    let n = value.trim().chars().count();
    if n == 0 || n > max {
        return Err(Error::invalid(
            what,
            format!("must be 1 to {max} characters (it is required)"),
        ));
    }
    check_printable(what, value)
}

const SETTING_NOTICE: &str = "consent_notice";

impl Store {
    /// Records a consent decision for this kiosk only (scope "device"), witnessed by an admin.
    pub fn record_consent(
        &mut self,
        employee_id: &str,
        given: bool,
        text_version: &str,
        witness: &str,
    ) -> Result<Consent> {
        self.record_consent_scoped(
            employee_id,
            given,
            ConsentScope::Device,
            text_version,
            witness,
        )
    }

    /// Records a consent decision with its scope. Declining or withdrawing wipes existing
    /// templates at once; a given consent of a minor needs a guardian consent first. Either
    /// way the backend hears of it in the next sync round.
    pub fn record_consent_scoped(
        &mut self,
        employee_id: &str,
        given: bool,
        scope: ConsentScope,
        text_version: &str,
        witness: &str,
    ) -> Result<Consent> {
        self.require_employee(employee_id)?;
        if text_version.is_empty() || text_version.len() > 32 {
            return Err(Error::invalid(
                "consent text version",
                "must be 1 to 32 characters",
            ));
        }
        validate_employee_id(witness, false).map_err(|_| {
            Error::invalid(
                "consent witness",
                "must be the id of the witnessing admin or of the person",
            )
        })?;
        if given {
            self.require_guardian_if_minor(employee_id)?;
        }
        let mut audit = NewAudit::new(
            witness,
            if given {
                "consent_given"
            } else {
                "consent_declined"
            },
            employee_id,
        );
        audit.detail = serde_json::json!({ "text_version": text_version, "scope": scope.as_str() })
            .to_string();
        let c = self.audited(&audit, |tx, _, now| {
            tx.execute(
                "INSERT INTO consents (employee_id, given, text_version, witness, at_ms, scope) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![employee_id, given, text_version, witness, now, scope.as_str()],
            )?;
            if !given {
                tx.execute("DELETE FROM templates WHERE employee_id = ?1", [employee_id])?;
            }
            super::biometrics::queue_biometric(tx, employee_id, now)?;
            Ok(Consent {
                given,
                text_version: text_version.into(),
                scope,
                witness: witness.into(),
                at_ms: now,
            })
        })?;
        if !given {
            self.wipe_wal()?;
        }
        Ok(c)
    }

    /// The consent decision in force (the latest), if any was ever made.
    pub fn consent(&self, employee_id: &str) -> Result<Option<Consent>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT given, text_version, witness, at_ms, scope FROM consents WHERE employee_id = ?1 ORDER BY id DESC LIMIT 1",
                [employee_id],
                consent_row,
            )
            .optional()?)
    }

    /// Every consent decision of one person, oldest first.
    pub fn consents(&self, employee_id: &str) -> Result<Vec<Consent>> {
        let mut s = self.conn().prepare(
            "SELECT given, text_version, witness, at_ms, scope FROM consents WHERE employee_id = ?1 ORDER BY id",
        )?;
        Ok(s.query_map([employee_id], consent_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Sets what the roster knows of a person's age (audited; the value itself is not put in
    /// the audit entry).
    pub fn set_age(&mut self, actor: &str, employee_id: &str, age: Age) -> Result<()> {
        self.require_employee(employee_id)?;
        age.check(self.current_year())
            .map_err(|why| Error::invalid("birth year", why))?;
        let mut audit = NewAudit::new(actor, "age_set", employee_id);
        audit.detail = serde_json::json!({
            "birth_year_known": age.birth_year.is_some(),
            "minor_flag_known": age.is_minor.is_some(),
        })
        .to_string();
        self.audited(&audit, |tx, _, _| {
            tx.execute(
                "UPDATE employees SET birth_year = ?2, is_minor = ?3 WHERE id = ?1",
                params![employee_id, age.birth_year, age.is_minor],
            )?;
            Ok(())
        })
    }

    /// What the roster knows of a person's age.
    pub fn age(&self, employee_id: &str) -> Result<Age> {
        Ok(self
            .conn()
            .query_row(
                "SELECT birth_year, is_minor FROM employees WHERE id = ?1",
                [employee_id],
                |r| {
                    Ok(Age {
                        birth_year: r.get(0)?,
                        is_minor: r.get(1)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    /// The age under which people are minors here: the backend's policy once it sent one,
    /// else the config file's, as the store was opened with.
    pub fn minor_age(&self) -> Result<u32> {
        Ok(match self.backend_policy()? {
            Some(doc) => doc.policy.minor_age,
            None => self.file_minor_age(),
        })
    }

    /// Whether the person counts as a minor here today.
    pub fn is_minor(&self, employee_id: &str) -> Result<bool> {
        Ok(self
            .age(employee_id)?
            .is_minor(self.minor_age()?, self.current_year()))
    }

    /// Records a guardian's consent to a minor's face enrolment, witnessed by an admin on the
    /// roster. Every field is required; nothing is stored when one is missing.
    pub fn record_guardian_consent(
        &mut self,
        witness: &str,
        employee_id: &str,
        g: &NewGuardianConsent,
    ) -> Result<GuardianConsent> {
        self.require_employee(employee_id)?;
        text_field("guardian", &g.guardian, 128)?;
        text_field("guardian relation", &g.relation, 32)?;
        text_field("guardian consent reference", &g.reference, 64)?;
        if !self
            .employee(witness)?
            .is_some_and(|e| e.is_admin && e.active)
        {
            return Err(Error::invalid(
                "guardian consent witness",
                format!("{witness:?} is not an active admin on the roster"),
            ));
        }
        let now = self.clock().wall_ms();
        if g.given_ms > now + 86_400_000 || g.given_ms < 0 {
            return Err(Error::invalid(
                "guardian consent time",
                "must not be in the future",
            ));
        }
        let mut audit = NewAudit::new(witness, "guardian_consent_recorded", employee_id);
        audit.detail = serde_json::json!({
            "method": g.method.as_str(),
            "reference": g.reference.trim(),
            "given_at": rfc3339_ms(g.given_ms),
        })
        .to_string();
        self.audited(&audit, |tx, _, now| {
            tx.execute(
                "INSERT INTO guardian_consents (employee_id, guardian, relation, method, reference, given_ms, witness, recorded_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    employee_id,
                    g.guardian.trim(),
                    g.relation.trim(),
                    g.method.as_str(),
                    g.reference.trim(),
                    g.given_ms,
                    witness,
                    now
                ],
            )?;
            Ok(())
        })?;
        Ok(self
            .guardian_consents(employee_id)?
            .pop()
            .expect("just recorded"))
    }

    /// Every guardian consent recorded for a person, oldest first.
    pub fn guardian_consents(&self, employee_id: &str) -> Result<Vec<GuardianConsent>> {
        let mut s = self.conn().prepare(
            "SELECT guardian, relation, method, reference, given_ms, witness, recorded_ms
               FROM guardian_consents WHERE employee_id = ?1 ORDER BY id",
        )?;
        let rows = s.query_map([employee_id], |r| {
            Ok(GuardianConsent {
                guardian: r.get(0)?,
                relation: r.get(1)?,
                method: GuardianMethod::parse(&r.get::<_, String>(2)?)
                    .unwrap_or(GuardianMethod::Paper),
                reference: r.get(3)?,
                given_at: rfc3339_ms(r.get(4)?),
                witness: r.get(5)?,
                recorded_at: rfc3339_ms(r.get(6)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Refuses when the person is a minor here and no guardian consent is recorded.
    pub fn require_guardian_if_minor(&self, employee_id: &str) -> Result<()> {
        if self.is_minor(employee_id)? && self.guardian_consents(employee_id)?.is_empty() {
            return Err(Error::invalid(
                "face enrolment",
                format!(
                    "{employee_id} is a minor here (under {}): record a parent's or guardian's \
                     consent first (`clockface roster guardian-consent`); badge and PIN work meanwhile",
                    self.minor_age()?
                ),
            ));
        }
        Ok(())
    }

    /// Since when (Unix ms) this kiosk has had consent text `version`, if it noted it.
    pub fn consent_version_since(&self, version: &str) -> Result<Option<i64>> {
        let stored: Option<String> = self
            .conn()
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                [SETTING_NOTICE],
                |r| r.get(0),
            )
            .optional()?;
        Ok(stored
            .as_deref()
            .and_then(|s| s.rsplit_once('@'))
            .filter(|(v, _)| *v == version)
            .and_then(|(_, since)| since.parse().ok()))
    }

    /// Notes the consent text version in force and returns since when (Unix ms) this kiosk
    /// has had it: the grace period for older consents runs from there.
    pub fn note_consent_version(&mut self, version: &str) -> Result<i64> {
        if let Some(since) = self.consent_version_since(version)? {
            return Ok(since);
        }
        let now = self.clock().wall_ms();
        let mut audit = NewAudit::new("system", "consent_notice_changed", "");
        audit.detail = serde_json::json!({ "text_version": version }).to_string();
        self.audited(&audit, |tx, _, _| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                params![SETTING_NOTICE, format!("{version}@{now}")],
            )?;
            Ok(())
        })?;
        Ok(now)
    }

    /// Where `employee_id` stands under `policy`. The grace period runs from when this kiosk
    /// noted the policy's consent version ([`Store::note_consent_version`]), or from now.
    pub fn consent_status(
        &self,
        employee_id: &str,
        policy: &PolicyConfig,
    ) -> Result<ConsentStatus> {
        let now = self.clock().wall_ms();
        let notice_since = self
            .consent_version_since(&policy.consent_text_version)?
            .unwrap_or(now);
        let c = self.consent(employee_id)?;
        let given = c.as_ref().is_some_and(|c| c.given);
        let notice_due = given
            && c.as_ref()
                .is_some_and(|c| c.text_version != policy.consent_text_version);
        let grace_ms = policy.consent_grace_days as i64 * 86_400_000;
        let minor = self
            .age(employee_id)?
            .is_minor(policy.minor_age, self.current_year());
        Ok(ConsentStatus {
            given,
            scope: c.map(|c| c.scope).unwrap_or_default(),
            notice_due,
            within_grace: now < notice_since.saturating_add(grace_ms),
            guardian_required: minor && self.guardian_consents(employee_id)?.is_empty(),
        })
    }

    /// Everyone whose face may be used now under `policy` (consent given, for the current
    /// notice or within its grace period), in one query: what the 1:N gallery is built from.
    pub fn face_usable_ids(
        &self,
        policy: &PolicyConfig,
    ) -> Result<std::collections::HashSet<String>> {
        let now = self.clock().wall_ms();
        let since = self
            .consent_version_since(&policy.consent_text_version)?
            .unwrap_or(now);
        let in_grace = now < since.saturating_add(policy.consent_grace_days as i64 * 86_400_000);
        let mut s = self.conn().prepare(
            "SELECT c.employee_id FROM consents c
              WHERE c.id = (SELECT max(id) FROM consents WHERE employee_id = c.employee_id)
                AND c.given = 1 AND (c.text_version = ?1 OR ?2)",
        )?;
        let rows = s.query_map(params![policy.consent_text_version, in_grace], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The calendar year (UTC) by this store's clock.
    pub(crate) fn current_year(&self) -> i32 {
        year_of(self.clock().wall_ms())
    }
}

/// The calendar year (UTC) of a wall time in Unix ms.
pub fn year_of(wall_ms: i64) -> i32 {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp_millis(wall_ms)
        .unwrap_or_default()
        .year()
}

fn consent_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Consent> {
    Ok(Consent {
        given: r.get(0)?,
        text_version: r.get(1)?,
        witness: r.get(2)?,
        at_ms: r.get(3)?,
        scope: ConsentScope::parse(&r.get::<_, String>(4)?).unwrap_or_default(),
    })
}
