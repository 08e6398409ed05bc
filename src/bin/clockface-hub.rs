//! `clockface-hub` command line: the reference backend of sync protocol v1. Parses arguments
//! and calls `clockface::hub`; no logic lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clockface::hub;

/// Reference backend for Clockface kiosks (protocol v1, docs/openapi.yaml).
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Hub database: a SQLite file (created on first use) or a PostgreSQL URL
    /// (`postgres://user:password@host:port/database`, migrated on first use).
    #[arg(
        long,
        global = true,
        env = "CLOCKFACE_HUB_DB",
        default_value = "/var/lib/clockface-hub/hub.db"
    )]
    db: String,
    /// Template key file (32 bytes, mode 0600; made on first use). Default: beside a SQLite
    /// file (`hub.db` → `hub.templates.key`); required with PostgreSQL, the same file on every
    /// replica.
    #[arg(long, global = true, env = "CLOCKFACE_HUB_TEMPLATE_KEY")]
    template_key: Option<PathBuf>,
    /// Hub config file (TOML; `[privacy] data_region`, `allow_cross_region`).
    #[arg(long, global = true, env = "CLOCKFACE_HUB_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum WebhookCmd {
    /// Deliver batches of `--events` to URL from now on, signed with the secret in
    /// --secret-file (X-Clockface-Signature: t=SECONDS,v1=HMAC-SHA256 of "t.body").
    Add {
        /// Where to POST (https, or http on loopback).
        url: String,
        /// File holding the shared HMAC secret (at least 16 bytes).
        #[arg(long)]
        secret_file: PathBuf,
        /// `checkins`, `alerts`, or `checkins,alerts`.
        #[arg(long, default_value = "checkins,alerts")]
        events: String,
    },
    /// Each webhook's deliveries, pending events, failures and dead letters.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Send a dead letter (from `status`) again.
    Redeliver {
        /// Its id.
        id: i64,
    },
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the API until SIGINT/SIGTERM; prints "listening on ADDR" once bound.
    Serve {
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        /// PEM certificate chain; with --tls-key, serve HTTPS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Make a one-time pairing code for a site and print it.
    PairingCode {
        /// Site the kiosk will belong to.
        #[arg(long)]
        site: String,
        /// Hours the code stays valid.
        #[arg(long, default_value_t = 72)]
        valid_hours: u32,
        /// Use this code (e.g. one already written into a provisioning file).
        #[arg(long)]
        code: Option<String>,
    },
    /// Manage the roster served to kiosks.
    Roster {
        #[command(subcommand)]
        command: RosterCmd,
    },
    /// Set the check-in policy kiosks apply (a TOML file with a [policy] section, or JSON).
    Policy {
        /// The policy file.
        file: PathBuf,
        /// Only for this site's kiosks (its minor age, consent scopes...); without it, for
        /// every site that has no policy of its own.
        #[arg(long)]
        site: Option<String>,
    },
    /// Write a timesheet CSV of accepted check-ins, since <= time < until.
    Timesheet {
        /// Start, inclusive: YYYY-MM-DD (UTC).
        #[arg(long)]
        since: String,
        /// End, exclusive: YYYY-MM-DD (UTC).
        #[arg(long)]
        until: String,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// One row per worked span (an in and the out that closes it, across midnight within
        /// the site's work day) instead of one per check-in.
        #[arg(long)]
        pairs: bool,
        /// With --pairs: one span per person and work day, first punch to last.
        #[arg(long, requires = "pairs")]
        first_last: bool,
        /// `csv`, `jsonl` (one JSON object per row, keyed by the CSV's columns) or `erpnext`
        /// (ERPNext Employee Checkin fields per punch, for add_log_based_on_employee_field).
        #[arg(long, default_value = "csv")]
        format: String,
    },
    /// Paired kiosks: unpair one, or read the hub's pairing audit log.
    Device {
        #[command(subcommand)]
        command: DeviceCmd,
    },
    /// The fleet view: each paired kiosk's site, version, online or offline, queue, clock skew,
    /// free disk, camera and models, last seen and latest alerts.
    Devices {
        /// Only the kiosks of this site.
        #[arg(long)]
        site: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Security and health events, newest first: PIN lockouts, repeated liveness failures,
    /// chain conflicts and gaps, model or camera problems, clock skew, low disk, kiosks offline
    /// too long.
    Alerts {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Signed batches of check-ins and alerts POSTed to other systems.
    Webhook {
        #[command(subcommand)]
        command: WebhookCmd,
    },
    /// The key file that seals face templates at rest.
    Keys {
        #[command(subcommand)]
        command: KeysCmd,
    },
    /// Each device chain: entries, head, gaps and conflicts (forks, broken links).
    Chains {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// Revoke a kiosk's token and let its id pair again with a new key (lost or replaced key).
    Unpair {
        /// Device id (as `clockface device show` prints it).
        id: String,
    },
    /// The hub's audit log of pairings, re-pairings and unpairings, newest first.
    Audit {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Re-seal every template under a new key (the old key file is replaced).
    Rotate,
}

#[derive(Subcommand)]
enum RosterCmd {
    /// Import employees from CSV or JSON (an array of roster employees). Only the allowed
    /// columns are read (id, display_name, active, is_admin, badges, consent, consent_version,
    /// consent_scope, sites, birth_year, is_minor; templates in JSON); the others are named in
    /// the output and never stored.
    Import {
        /// The file; .csv or .json.
        file: PathBuf,
        /// Delete everyone not in the file.
        #[arg(long)]
        replace: bool,
    },
    /// Delete one employee; kiosks wipe their templates at the next sync.
    Delete {
        /// Employee id.
        id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    clockface::commands::context::init_logging("info");
    let out = &mut std::io::stdout();
    let cfg = match hub::db::HubConfig::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("clockface-hub: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let db = hub::db::DbSpec {
        location: hub::sql::DbLocation::parse(&cli.db),
        template_key: cli.template_key.clone(),
    };
    let r = match cli.command {
        Cmd::Serve {
            listen,
            tls_cert,
            tls_key,
        } => hub::cli::serve(&db, &cfg, &listen, tls_cert.zip(tls_key), out),
        Cmd::Devices { site, json } => hub::cli::devices(&db, &cfg, site.as_deref(), json, out),
        Cmd::Alerts { json } => hub::cli::alerts(&db, json, out),
        Cmd::Webhook { command } => match command {
            WebhookCmd::Add {
                url,
                secret_file,
                events,
            } => hub::cli::webhook_add(&db, &url, &secret_file, &events, out),
            WebhookCmd::Status { json } => hub::cli::webhook_status(&db, json, out),
            WebhookCmd::Redeliver { id } => hub::cli::webhook_redeliver(&db, id, out),
        },
        Cmd::Keys {
            command: KeysCmd::Rotate,
        } => hub::cli::keys_rotate(&db, out),
        Cmd::PairingCode {
            site,
            valid_hours,
            code,
        } => hub::cli::pairing_code(&db, &site, valid_hours, code.as_deref(), out),
        Cmd::Roster {
            command: RosterCmd::Import { file, replace },
        } => hub::cli::roster_import(&db, &file, replace, out),
        Cmd::Roster {
            command: RosterCmd::Delete { id },
        } => hub::cli::roster_delete(&db, &id, out),
        Cmd::Policy { file, site } => hub::cli::policy_set(&db, &file, site.as_deref(), out),
        Cmd::Timesheet {
            since,
            until,
            output,
            pairs,
            first_last,
            format,
        } => hub::db::timesheet::TimesheetFormat::parse(&format).and_then(|format| {
            let opts = hub::db::timesheet::TimesheetOptions {
                format,
                sites: cfg.sites.clone(),
                pairs,
                first_last,
            };
            hub::cli::timesheet(&db, &since, &until, &opts, output.as_deref(), out)
        }),
        Cmd::Chains { json } => hub::cli::chains(&db, json, out),
        Cmd::Device {
            command: DeviceCmd::Unpair { id },
        } => hub::cli::device_unpair(&db, &id, out),
        Cmd::Device {
            command: DeviceCmd::Audit { json },
        } => hub::cli::device_audit(&db, json, out),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clockface-hub: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
