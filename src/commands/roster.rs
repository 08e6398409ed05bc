//! `clockface roster …`: the kiosk's own roster, for a site without a backend or for what is
//! decided at this door: people, badges and PINs, their age, consent and a minor's guardian
//! consent. Every change is audited by the store.

use std::io::{BufRead, Write};
use std::sync::Arc;

use super::context::ConfigSource;
use super::kiosk::{check_scope, parse_scope};
use crate::base::clock::SystemClock;
use crate::base::config::Config;
use crate::base::error::{Error, Result};
use crate::base::protocol::ConsentScope;
use crate::store::consent::{Age, GuardianMethod, NewGuardianConsent};
use crate::store::roster::Employee;
use crate::store::{Store, StoreOptions};

/// `clockface roster …`.
#[derive(Debug, clap::Subcommand)]
pub enum RosterCmd {
    /// Add or update an employee.
    Add {
        /// Employee id.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Badge id (repeatable).
        #[arg(long = "badge")]
        badges: Vec<String>,
        /// May enter admin mode.
        #[arg(long)]
        admin: bool,
        /// On the roster but not allowed to check in.
        #[arg(long)]
        inactive: bool,
        /// Read a PIN (4-12 digits) from the first line of standard input.
        #[arg(long)]
        pin_stdin: bool,
        /// Year of birth: the most precise age the roster keeps.
        #[arg(long)]
        birth_year: Option<u16>,
        /// Known to be a minor (the backend's flag, or HR's word).
        #[arg(long, conflicts_with = "not_minor")]
        minor: bool,
        /// Known not to be a minor.
        #[arg(long)]
        not_minor: bool,
    },
    /// Remove an employee: badges, consent and templates go at once, here and, through the
    /// backend, at the other kiosks of the site. Signed check-ins stay.
    Remove {
        /// Employee id.
        #[arg(long)]
        id: String,
    },
    /// Record a consent decision made at this kiosk: `--withdraw` wipes the templates here at
    /// once and at the site's other kiosks within one sync round.
    Consent {
        /// Employee id.
        #[arg(long)]
        id: String,
        /// The admin who witnessed it.
        #[arg(long)]
        witness: String,
        /// Withdraw consent (templates wiped).
        #[arg(long, conflicts_with = "give")]
        withdraw: bool,
        /// Give consent (for the consent text version in force).
        #[arg(long)]
        give: bool,
        /// With --give: "device" or "site".
        #[arg(long, default_value = "device", value_parser = parse_scope)]
        scope: ConsentScope,
    },
    /// Record a parent's or guardian's consent to a minor's face enrolment.
    GuardianConsent {
        /// The minor's employee id.
        #[arg(long)]
        id: String,
        /// The guardian's name, or a reference to them in the HR system.
        #[arg(long)]
        guardian: String,
        /// Their relation to the minor ("mother", "legal guardian").
        #[arg(long)]
        relation: String,
        /// How it was given: "paper" or "form".
        #[arg(long, value_parser = parse_method)]
        method: GuardianMethod,
        /// The paper's or form's reference.
        #[arg(long)]
        reference: String,
        /// When the guardian gave it (YYYY-MM-DD or RFC 3339); default now.
        #[arg(long)]
        given: Option<String>,
        /// The admin who recorded it.
        #[arg(long)]
        witness: String,
    },
}

fn parse_method(s: &str) -> std::result::Result<GuardianMethod, String> {
    GuardianMethod::parse(s).ok_or_else(|| format!("{s:?}; allowed: paper, form"))
}

fn open(cfg: &Config) -> Result<Store> {
    Store::open(
        &StoreOptions::from_config(cfg),
        Arc::new(SystemClock::new()),
    )
}

impl RosterCmd {
    /// Runs the roster subcommand.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        let cfg = src.load_logged()?;
        match self {
            RosterCmd::Add {
                id,
                name,
                badges,
                admin,
                inactive,
                pin_stdin,
                birth_year,
                minor,
                not_minor,
            } => {
                let age = Age {
                    birth_year,
                    is_minor: (minor || not_minor).then_some(minor),
                };
                let flags = AddFlags {
                    admin,
                    inactive,
                    pin_stdin,
                    age,
                };
                roster_add(&cfg, &id, &name, &badges, flags, out)
            }
            RosterCmd::Remove { id } => {
                let mut store = open(&cfg)?;
                if !store.delete_employee("cli", &id)? {
                    return Err(Error::invalid(
                        "--id",
                        format!("{id:?} is not on the roster"),
                    ));
                }
                let _ = writeln!(
                    out,
                    "{id}: removed with badges, consent and templates; the backend and the site's other kiosks follow at the next sync"
                );
                Ok(())
            }
            RosterCmd::Consent {
                id,
                witness,
                withdraw,
                give,
                scope,
            } => consent(&cfg, &id, &witness, (give, withdraw), scope, out),
            RosterCmd::GuardianConsent {
                id,
                guardian,
                relation,
                method,
                reference,
                given,
                witness,
            } => {
                let mut store = open(&cfg)?;
                let given_ms = match given {
                    Some(t) => crate::base::clock::parse_time("--given", &t)?,
                    None => store.clock().wall_ms(),
                };
                let g = NewGuardianConsent {
                    guardian,
                    relation,
                    method,
                    reference,
                    given_ms,
                };
                let rec = store.record_guardian_consent(&witness, &id, &g)?;
                let _ = writeln!(
                    out,
                    "{id}: guardian consent recorded ({}, {} {}, given {}, witnessed by {})",
                    rec.relation,
                    match rec.method {
                        GuardianMethod::Paper => "paper",
                        GuardianMethod::Form => "form",
                    },
                    rec.reference,
                    rec.given_at,
                    rec.witness
                );
                Ok(())
            }
        }
    }
}

/// `roster consent`: one decision, for the consent text version in force.
fn consent(
    cfg: &Config,
    id: &str,
    witness: &str,
    (give, withdraw): (bool, bool),
    scope: ConsentScope,
    out: &mut dyn Write,
) -> Result<()> {
    if give == withdraw {
        return Err(Error::invalid("roster consent", "say --give or --withdraw"));
    }
    let mut store = open(cfg)?;
    if !store.employee(witness)?.is_some_and(|e| e.is_admin) {
        return Err(Error::invalid(
            "--witness",
            format!("{witness:?} is not an admin on the roster"),
        ));
    }
    let policy = crate::store::settings::effective(cfg, &store)?.policy;
    if give {
        check_scope(&policy, scope)?;
    }
    let c = store.record_consent_scoped(
        id,
        give,
        if give { scope } else { ConsentScope::Device },
        &policy.consent_text_version,
        witness,
    )?;
    let _ = writeln!(
        out,
        "{id}: consent {} (text v{}{})",
        if c.given {
            "given"
        } else {
            "withdrawn, templates wiped"
        },
        c.text_version,
        if c.given {
            format!(", scope {}", c.scope.as_str())
        } else {
            String::new()
        }
    );
    Ok(())
}

/// The flags of `roster add` beyond id, name and badges.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddFlags {
    /// May enter admin mode.
    pub admin: bool,
    /// Not allowed to check in.
    pub inactive: bool,
    /// Read a PIN from standard input.
    pub pin_stdin: bool,
    /// What is known of their age.
    pub age: Age,
}

/// `clockface roster add`: adds or updates an employee with badges, their age when given and,
/// optionally, a PIN read from standard input (never from the command line, where other users
/// could see it).
pub fn roster_add(
    cfg: &Config,
    id: &str,
    name: &str,
    badges: &[String],
    flags: AddFlags,
    out: &mut dyn Write,
) -> Result<()> {
    let mut store = open(cfg)?;
    // Checked before anything is written, so a bad PIN or badge leaves no half-added person.
    for b in badges {
        crate::base::badge::BadgeId::parse(b)?;
    }
    let pin = if flags.pin_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::io("stdin", e))?;
        let pin = line.trim().to_owned();
        crate::store::roster::check_pin_format(&pin)?;
        Some(pin)
    } else {
        None
    };
    store.upsert_employee(
        "cli",
        &Employee {
            id: id.into(),
            display_name: name.into(),
            active: !flags.inactive,
            is_admin: flags.admin,
        },
    )?;
    for b in badges {
        store.add_badge("cli", b, id)?;
    }
    if let Some(pin) = &pin {
        store.set_pin("cli", id, pin)?;
    }
    if flags.age != Age::default() {
        store.set_age("cli", id, flags.age)?;
    }
    let minor = store.is_minor(id)?;
    let _ = writeln!(
        out,
        "{id}: on the roster ({} badge(s){}{}{})",
        badges.len(),
        if pin.is_some() { ", PIN set" } else { "" },
        if flags.admin { ", admin" } else { "" },
        if minor {
            ", minor: face enrolment needs a guardian consent"
        } else {
            ""
        }
    );
    Ok(())
}
