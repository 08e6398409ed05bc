//! Subject access: everything the kiosk holds about one person, as one JSON document.
//!
//! Roster entry, badge ids, whether a PIN is set (never the hash), every consent decision and
//! guardian consent, the age the roster holds,
//! template *metadata* (model, dimensions, when — never the template bytes), every check-in
//! and failed attempt from the signed records, and every audit entry that names them as actor
//! or subject. Writing the export is itself audited.

use serde::Serialize;

use super::Store;
use super::audit::{AuditEntry, NewAudit};
use super::consent::{Age, Consent, GuardianConsent};
use super::export::rfc3339_ms;
use super::record::Record;
use super::roster::Employee;
use crate::base::error::{Error, Result};

/// Metadata of one stored template.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateInfo {
    /// Embedding model.
    pub model: String,
    /// Number of dimensions.
    pub dims: i64,
    /// When it was enrolled (RFC 3339).
    pub created: String,
}

/// The subject access export.
#[derive(Debug, Serialize)]
pub struct SubjectExport {
    /// Employee id.
    pub employee_id: String,
    /// When this export was made (RFC 3339).
    pub exported_at: String,
    /// The roster entry, if the person is still on it.
    pub employee: Option<Employee>,
    /// Badge ids linked to them.
    pub badges: Vec<String>,
    /// Whether a PIN is set (its hash is not exported).
    pub pin_set: bool,
    /// Every consent decision, oldest first.
    pub consents: Vec<Consent>,
    /// What the roster holds of their age (a birth year or a minor flag, nothing finer).
    pub age: Age,
    /// Whether they count as a minor here under the age threshold in force.
    pub minor: bool,
    /// Every guardian consent recorded for them (for a minor's face enrolment), oldest first.
    pub guardian_consents: Vec<GuardianConsent>,
    /// Stored face templates, metadata only.
    pub templates: Vec<TemplateInfo>,
    /// Check-ins and failed attempts, from the signed records.
    pub records: Vec<Record>,
    /// Audit entries naming them as actor or subject.
    pub audit: Vec<AuditEntry>,
    /// What the store no longer holds: records before this sequence number were purged.
    pub records_purged_before_seq: u64,
}

impl Store {
    /// Collects everything held about `employee_id`, and audits the export.
    pub fn export_person(&mut self, actor: &str, employee_id: &str) -> Result<SubjectExport> {
        crate::store::record::validate_employee_id(employee_id, false)?;
        let c = self.conn();
        let employee = self.employee(employee_id)?;
        let badges: Vec<String> = {
            let mut s =
                c.prepare("SELECT badge_id FROM badges WHERE employee_id = ?1 ORDER BY badge_id")?;
            s.query_map([employee_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let consents = self.consents(employee_id)?;
        let guardian_consents = self.guardian_consents(employee_id)?;
        let age = self.age(employee_id)?;
        let minor = employee.is_some() && self.is_minor(employee_id)?;
        let templates: Vec<TemplateInfo> = {
            let mut s = c.prepare(
                "SELECT model, dims, created_ms FROM templates WHERE employee_id = ?1 ORDER BY id",
            )?;
            s.query_map([employee_id], |r| {
                Ok(TemplateInfo {
                    model: r.get(0)?,
                    dims: r.get(1)?,
                    created: rfc3339_ms(r.get(2)?),
                })
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let records: Vec<Record> = {
            let mut s =
                c.prepare("SELECT bytes FROM records WHERE employee_id = ?1 ORDER BY seq")?;
            let rows: Vec<Vec<u8>> = s
                .query_map([employee_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            rows.iter()
                .map(|b| Record::decode(b))
                .collect::<Result<_>>()?
        };
        let audit: Vec<AuditEntry> = {
            let mut s = c.prepare("SELECT bytes FROM audit WHERE subject = ?1 ORDER BY seq")?;
            let rows: Vec<Vec<u8>> = s
                .query_map([employee_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut all: Vec<AuditEntry> = rows
                .iter()
                .map(|b| AuditEntry::decode(b))
                .collect::<Result<_>>()?;
            // Entries where they acted (as an admin) are found by decoding: actor is not indexed.
            let mut s = c.prepare("SELECT bytes FROM audit WHERE subject <> ?1 ORDER BY seq")?;
            for b in s.query_map([employee_id], |r| r.get::<_, Vec<u8>>(0))? {
                let e = AuditEntry::decode(&b?)?;
                if e.actor == employee_id {
                    all.push(e);
                }
            }
            all.sort_by_key(|e| e.seq);
            all
        };
        let pin_set = self.has_pin(employee_id)?;
        let purged = super::entry::anchor(c, "records")?.map_or(0, |a| a.0 + 1);
        if employee.is_none() && records.is_empty() && audit.is_empty() {
            return Err(Error::invalid(
                "employee",
                format!("nothing is held about {employee_id:?}"),
            ));
        }
        self.audit(&NewAudit::new(actor, "subject_export", employee_id))?;
        Ok(SubjectExport {
            employee_id: employee_id.into(),
            exported_at: rfc3339_ms(self.clock().wall_ms()),
            employee,
            badges,
            pin_set,
            consents,
            age,
            minor,
            guardian_consents,
            templates,
            records,
            audit,
            records_purged_before_seq: purged,
        })
    }
}
