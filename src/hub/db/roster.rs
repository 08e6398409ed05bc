//! The roster and the policy the hub publishes: imports from HR (checked whole before anything
//! is written), deletions as tombstones, and the versions kiosks poll.

use crate::base::badge::BadgeId;
use std::collections::BTreeMap;

use crate::hub::sql::{Conn, Lock, OptionalExt, SqlError, params};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use uuid::Uuid;

use crate::base::protocol::{ConsentScope, PolicyDocument, Roster, RosterConsent, RosterEmployee};

use super::{ApiFailure, HubDb};

/// What a roster import changed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ImportReport {
    /// Employees added or updated.
    pub upserted: u64,
    /// Employees marked deleted (with `replace`).
    pub deleted: u64,
    /// Roster version after the import.
    pub version: i64,
}

impl HubDb {
    /// Current roster version (0 before the first import).
    pub fn roster_version(&self) -> Result<i64, ApiFailure> {
        Ok(self.meta_i64("roster_version")?)
    }

    /// The roster as served to kiosks.
    pub fn roster(&self, device: &Uuid) -> Result<Roster, ApiFailure> {
        let version = self.roster_version()?;
        let site: String = self
            .conn
            .query_row(
                "SELECT site FROM devices WHERE id = ?1",
                params![device.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or_default();
        let key = self.key()?;
        let mut employees = Vec::new();
        let mut deletions = Vec::new();
        let rows = self.conn.query_map(
            "SELECT id, display_name, active, is_admin, consent_given, consent_version, deleted, sites,
                    EXISTS (SELECT 1 FROM delivered WHERE device_id = ?1 AND employee_id = employees.id),
                    consent_scope, birth_year, is_minor
               FROM employees ORDER BY id",
            params![device.to_string()],
            |r| {
            Ok((
                (
                    r.get::<String>(0)?,
                    r.get::<String>(1)?,
                    r.get::<bool>(2)?,
                    r.get::<bool>(3)?,
                ),
                (r.get::<Option<bool>>(4)?, r.get::<Option<String>>(5)?),
                (
                    r.get::<bool>(6)?,
                    r.get::<String>(7)?,
                    r.get::<bool>(8)?,
                ),
                (
                    r.get::<String>(9)?,
                    r.get::<Option<u16>>(10)?,
                    r.get::<Option<bool>>(11)?,
                ),
            ))
        },
        )?;
        for row in rows {
            let (
                (id, display_name, active, is_admin),
                (given, version_text),
                (deleted, sites, held),
                (scope, birth_year, is_minor),
            ) = row;
            let scope = ConsentScope::parse(&scope).unwrap_or_default();
            let here = sites.is_empty() || sites.split('\n').any(|s| s == site);
            if deleted || !here {
                // Deleted, or no longer of this site: only a kiosk that was sent the person
                // hears of it, and only by id.
                if held {
                    deletions.push(id);
                }
                continue;
            }
            self.conn.execute(
                "INSERT INTO delivered (device_id, employee_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![device.to_string(), id],
            )?;
            let badges = self.conn.query_map(
                "SELECT badge_id FROM badges WHERE employee_id = ?1 ORDER BY badge_id",
                params![&id],
                |r| r.get::<String>(0),
            )?;
            let consent = given.map(|given| RosterConsent {
                given,
                text_version: version_text.unwrap_or_default(),
                scope,
            });
            // Templates travel only under a consent given for every door of the site.
            let templates = if given == Some(true) && scope == ConsentScope::Site {
                self.served_templates(&key, &id, device)?
            } else {
                Vec::new()
            };
            employees.push(RosterEmployee {
                id,
                display_name,
                active,
                is_admin,
                badges,
                consent,
                templates,
                birth_year,
                is_minor,
                sites: Vec::new(),
            });
        }
        Ok(Roster {
            version,
            employees,
            deletions,
        })
    }

    /// Imports employees (upsert); with `replace`, everyone not in `list` is deleted. Bumps
    /// the roster version once. Everything is checked before anything is written.
    pub fn import_roster(
        &mut self,
        list: &[RosterEmployee],
        replace: bool,
    ) -> crate::base::error::Result<ImportReport> {
        let year = crate::store::consent::year_of(crate::base::clock::Clock::wall_ms(
            &crate::base::clock::SystemClock::new(),
        ));
        let mut seen_badges = BTreeMap::new();
        let mut badges: Vec<Vec<BadgeId>> = Vec::with_capacity(list.len());
        for (i, e) in list.iter().enumerate() {
            let at = |what: &str, why: String| {
                crate::base::error::Error::invalid(format!("roster entry {} ({what})", i + 1), why)
            };
            crate::store::record::validate_employee_id(&e.id, false)
                .map_err(|err| at("id", err.to_string()))?;
            if e.display_name.trim().is_empty() || e.display_name.chars().count() > 128 {
                return Err(at("display_name", "must be 1 to 128 characters".into()));
            }
            crate::base::text::check_printable("display_name", &e.display_name)
                .map_err(|err| at("display_name", err.to_string()))?;
            for site in &e.sites {
                if site.trim().is_empty() || site.chars().count() > 128 {
                    return Err(at("sites", "each site must be 1 to 128 characters".into()));
                }
                crate::base::text::check_printable("sites", site)
                    .map_err(|err| at("sites", err.to_string()))?;
            }
            let mut normal = Vec::with_capacity(e.badges.len());
            for b in &e.badges {
                let n = BadgeId::parse(b).map_err(|err| at("badges", err.to_string()))?;
                if let Some(other) = seen_badges.insert(n.clone(), &e.id)
                    && other != &e.id
                {
                    return Err(at(
                        "badges",
                        format!("badge {b:?} is also given to {other}"),
                    ));
                }
                normal.push(n);
            }
            badges.push(normal);
            for t in &e.templates {
                let v = decode_embedding(&t.embedding).map_err(|why| at("templates", why))?;
                if v.is_empty() || t.model.is_empty() {
                    return Err(at("templates", "model and embedding are required".into()));
                }
            }
            if !e.templates.is_empty()
                && !e
                    .consent
                    .as_ref()
                    .is_some_and(|c| c.given && c.scope == ConsentScope::Site)
            {
                return Err(at(
                    "templates",
                    "templates are kept only with consent given for scope \"site\"".into(),
                ));
            }
            let age = crate::store::consent::Age {
                birth_year: e.birth_year,
                is_minor: e.is_minor,
            };
            age.check(year).map_err(|why| at("birth_year", why))?;
        }
        let key = self
            .key()
            .map_err(|e| crate::base::error::Error::invalid("template key", e.message))?;
        let tx = self.conn.begin(Lock::Write)?;
        let mut report = ImportReport::default();
        if replace {
            let ids: Vec<&str> = list.iter().map(|e| e.id.as_str()).collect();
            let existing: Vec<String> = tx.query_map(
                "SELECT id FROM employees WHERE deleted = 0",
                params![],
                |r| r.get(0),
            )?;
            for id in existing.iter().filter(|id| !ids.contains(&id.as_str())) {
                tombstone(&tx, id)?;
                report.deleted += 1;
            }
        }
        for (e, badges) in list.iter().zip(&badges) {
            // A consent the import does not state leaves the one kiosks reported in place.
            tx.execute(
                "INSERT INTO employees (id, display_name, active, is_admin, consent_given, consent_version, deleted, sites, birth_year, is_minor, consent_scope)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, coalesce(?10, 'device'))
                 ON CONFLICT (id) DO UPDATE SET display_name = ?2, active = ?3, is_admin = ?4,
                   consent_given = CASE WHEN ?11 THEN ?5 ELSE employees.consent_given END,
                   consent_version = CASE WHEN ?11 THEN ?6 ELSE employees.consent_version END,
                   consent_scope = coalesce(?10, employees.consent_scope),
                   deleted = 0, sites = ?7, birth_year = ?8, is_minor = ?9",
                params![
                    e.id,
                    e.display_name,
                    e.active,
                    e.is_admin,
                    e.consent.as_ref().map(|c| c.given),
                    e.consent.as_ref().map(|c| c.text_version.clone()),
                    site_list(&e.sites),
                    e.birth_year,
                    e.is_minor,
                    e.consent.as_ref().map(|c| c.scope.as_str()),
                    e.consent.is_some(),
                ],
            )?;
            tx.execute("DELETE FROM badges WHERE employee_id = ?1", params![&e.id])?;
            for b in badges {
                tx.execute(
                    "INSERT INTO badges (badge_id, employee_id) VALUES (?1, ?2)
                     ON CONFLICT (badge_id) DO UPDATE SET employee_id = ?2",
                    params![b.as_str(), e.id],
                )?;
            }
            let narrowed = e
                .consent
                .as_ref()
                .is_some_and(|c| !c.given || c.scope != ConsentScope::Site);
            if narrowed {
                tx.execute(
                    "DELETE FROM sealed_templates WHERE employee_id = ?1",
                    params![&e.id],
                )?;
            } else if !e.templates.is_empty() {
                tx.execute(
                    "DELETE FROM sealed_templates WHERE employee_id = ?1 AND origin_device IS NULL",
                    params![&e.id],
                )?;
                for t in &e.templates {
                    let raw = zeroize::Zeroizing::new(
                        B64.decode(t.embedding.as_bytes()).expect("checked above"),
                    );
                    super::biometrics::insert_template(&tx, &key, &e.id, &t.model, &raw, None)?;
                }
            }
            report.upserted += 1;
        }
        let version = bump(&tx, "roster_version")?;
        tx.commit()?;
        self.wipe_wal();
        report.version = version;
        Ok(report)
    }

    /// Deletes one employee from the roster (a tombstone tells kiosks to wipe them).
    pub fn delete_employee(&mut self, id: &str) -> crate::base::error::Result<bool> {
        let tx = self.conn.begin(Lock::Write)?;
        let n: i64 = tx.query_row(
            "SELECT count(*) FROM employees WHERE id = ?1 AND deleted = 0",
            params![id],
            |r| r.get(0),
        )?;
        if n == 0 {
            return Ok(false);
        }
        tombstone(&tx, id)?;
        bump(&tx, "roster_version")?;
        tx.commit()?;
        self.wipe_wal();
        Ok(true)
    }

    /// The policy document for every site, if one was set.
    pub fn policy(&self) -> Result<Option<PolicyDocument>, ApiFailure> {
        self.policy_for("")
    }

    /// The policy document a kiosk of `site` applies: the site's own, else every site's.
    pub fn policy_for(&self, site: &str) -> Result<Option<PolicyDocument>, ApiFailure> {
        let own: Option<String> = if site.is_empty() {
            None
        } else {
            self.conn
                .query_row(
                    "SELECT policy FROM site_policies WHERE site = ?1",
                    params![site],
                    |r| r.get(0),
                )
                .optional()?
        };
        let json: Option<String> = match own {
            Some(j) => Some(j),
            None => self
                .conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'policy'",
                    params![],
                    |r| r.get(0),
                )
                .optional()?,
        };
        let Some(json) = json else { return Ok(None) };
        let policy = serde_json::from_str(&json).map_err(ApiFailure::internal)?;
        Ok(Some(PolicyDocument {
            version: self.meta_i64("policy_version")?,
            policy,
        }))
    }

    /// Sets the policy every site's kiosks should apply; it must pass the same validation as
    /// a config file.
    pub fn set_policy(
        &mut self,
        policy: &crate::base::config::PolicyConfig,
    ) -> crate::base::error::Result<i64> {
        self.set_site_policy(policy, None)
    }

    /// Sets the policy of one site (its minor age, consent scopes, ...), or of every site
    /// without one of its own when `site` is `None`. Versions are shared by all sites, so a
    /// kiosk's ETag changes whenever any policy does and it fetches its own again.
    pub fn set_site_policy(
        &mut self,
        policy: &crate::base::config::PolicyConfig,
        site: Option<&str>,
    ) -> crate::base::error::Result<i64> {
        if let Some(site) = site {
            if site.trim().is_empty() || site.chars().count() > 128 {
                return Err(crate::base::error::Error::invalid(
                    "--site",
                    "must be 1 to 128 characters",
                ));
            }
            crate::base::text::check_printable("--site", site)?;
        }
        let cfg = crate::base::config::Config {
            policy: policy.clone(),
            ..Default::default()
        };
        let problems = cfg.validate();
        if let Some(p) = problems.first() {
            return Err(crate::base::error::Error::invalid("policy", p.to_string()));
        }
        let tx = self.conn.begin(Lock::Write)?;
        let v = bump(&tx, "policy_version")?;
        // The version kiosks write into records is the hub's, so it only ever grows.
        let mut policy = policy.clone();
        policy.version = u32::try_from(v).unwrap_or(u32::MAX);
        let json = serde_json::to_string(&policy).expect("policy serialises");
        match site {
            Some(site) => tx.execute(
                "INSERT INTO site_policies (site, policy) VALUES (?1, ?2)
                 ON CONFLICT (site) DO UPDATE SET policy = ?2",
                params![site, json],
            )?,
            None => tx.execute(
                "INSERT INTO meta (key, value) VALUES ('policy', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = ?1",
                params![json],
            )?,
        };
        tx.commit()?;
        Ok(v)
    }
}

/// Base64 of little-endian f32s, each finite.
pub(super) fn decode_embedding(b64: &str) -> Result<Vec<f32>, String> {
    let raw = B64
        .decode(b64.as_bytes())
        .map_err(|e| format!("embedding is not base64: {e}"))?;
    if raw.len() % 4 != 0 || raw.len() > 4 * 4096 {
        return Err(format!(
            "embedding is {} bytes; it must be whole little-endian f32s (at most 4096)",
            raw.len()
        ));
    }
    let v: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    if v.iter().any(|x| !x.is_finite()) {
        return Err("embedding holds a non-finite number".into());
    }
    Ok(v)
}

fn tombstone(tx: &Conn, id: &str) -> Result<(), SqlError> {
    tx.execute(
        "DELETE FROM sealed_templates WHERE employee_id = ?1",
        params![id],
    )?;
    tx.execute("DELETE FROM badges WHERE employee_id = ?1", params![id])?;
    tx.execute(
        "UPDATE employees SET deleted = 1, active = 0, consent_given = NULL, consent_version = NULL,
                consent_scope = 'device', birth_year = NULL, is_minor = NULL WHERE id = ?1",
        params![id],
    )?;
    Ok(())
}

pub(super) fn bump(tx: &Conn, key: &str) -> Result<i64, SqlError> {
    tx.query_row(
        "INSERT INTO meta (key, value) VALUES (?1, '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)
         RETURNING CAST(value AS INTEGER)",
        params![key],
        |r| r.get(0),
    )
}

/// How an employee's sites are stored: '\n'-separated names, empty for every site (as is a
/// list that holds `"*"`).
fn site_list(sites: &[String]) -> String {
    if sites.iter().any(|s| s.trim() == "*") {
        return String::new();
    }
    sites
        .iter()
        .map(|s| s.trim())
        .collect::<Vec<_>>()
        .join("\n")
}
