//! What each `clockface-hub` subcommand does, with output to a caller's writer.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::db::{DbSpec, HubDb};
use super::{Hub, tls};
use crate::base::clock::{Clock, SystemClock};
use crate::base::error::{Error, Result};

/// Writes `v` as pretty JSON (the `--json` of every listing).
fn print_json(out: &mut dyn Write, v: &impl serde::Serialize) -> Result<()> {
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(v).expect("serialisable")
    );
    Ok(())
}

fn now_ms() -> i64 {
    SystemClock::new().wall_ms()
}

/// `serve`: runs the API until SIGINT or SIGTERM.
pub fn serve(
    db: &DbSpec,
    cfg: &super::db::HubConfig,
    listen: &str,
    tls_files: Option<(std::path::PathBuf, std::path::PathBuf)>,
    out: &mut dyn Write,
) -> Result<()> {
    let hub = Hub::open_spec(db, Arc::new(SystemClock::new()), cfg)?;
    let _webhooks = super::webhook::Deliverer::spawn(db, cfg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::invalid("runtime", e.to_string()))?;
    rt.block_on(async move {
        let tcp = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Error::invalid(format!("--listen {listen}"), e.to_string()))?;
        let addr = tcp
            .local_addr()
            .map_err(|e| Error::invalid(format!("--listen {listen}"), e.to_string()))?;
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("stopping");
        };
        let scheme = if tls_files.is_some() { "https" } else { "http" };
        let _ = writeln!(out, "listening on {scheme}://{addr}");
        let _ = out.flush();
        tracing::info!(%addr, scheme, "clockface-hub serving");
        crate::base::notify::Notifier::from_env().ready();
        match tls_files {
            Some((cert, key)) => {
                let cfg = tls::server_config(&cert, &key)?;
                let l = tls::TlsListener::new(tcp, cfg).map_err(|e| Error::io(&cert, e))?;
                super::serve(l, hub, shutdown)
                    .await
                    .map_err(|e| Error::io(listen, e))?
            }
            None => super::serve(tcp, hub, shutdown)
                .await
                .map_err(|e| Error::io(listen, e))?,
        }
        Ok(())
    })
}

/// `pairing-code`.
pub fn pairing_code(
    db: &DbSpec,
    site: &str,
    valid_hours: u32,
    code: Option<&str>,
    out: &mut dyn Write,
) -> Result<()> {
    let mut h = HubDb::open_spec(db, &Default::default())?;
    let code = h.create_pairing_code(site, valid_hours as i64 * 3_600_000, code, now_ms())?;
    let _ = writeln!(out, "{code}");
    Ok(())
}

/// `roster import`.
pub fn roster_import(db: &DbSpec, file: &Path, replace: bool, out: &mut dyn Write) -> Result<()> {
    let (list, dropped) = super::import::read_roster_file(file)?;
    let mut h = HubDb::open_spec(db, &Default::default())?;
    let r = h.import_roster(&list, replace)?;
    let _ = writeln!(
        out,
        "imported {} employees ({} deleted); roster version {}",
        r.upserted, r.deleted, r.version
    );
    if !dropped.is_empty() {
        let names: Vec<String> = dropped
            .iter()
            .map(|d| crate::base::text::for_terminal(d).into_owned())
            .collect();
        let _ = writeln!(
            out,
            "dropped {} column(s) not on the allow-list, never stored: {}",
            names.len(),
            names.join(", ")
        );
    }
    Ok(())
}

/// `roster delete`.
pub fn roster_delete(db: &DbSpec, id: &str, out: &mut dyn Write) -> Result<()> {
    let mut h = HubDb::open_spec(db, &Default::default())?;
    if !h.delete_employee(id)? {
        return Err(Error::invalid(
            "employee id",
            format!("{id:?} is not on the roster"),
        ));
    }
    let _ = writeln!(out, "deleted {id}; kiosks wipe their data at the next sync");
    Ok(())
}

/// `device unpair ID`: the kiosk's token stops working and its id may pair again, with a new
/// key. For a kiosk whose key was lost or replaced; audited.
pub fn device_unpair(db: &DbSpec, id: &str, out: &mut dyn Write) -> Result<()> {
    let device = uuid::Uuid::parse_str(id.trim())
        .map_err(|_| Error::invalid("device id", format!("{id:?} is not a UUID")))?;
    let mut h = HubDb::open_spec(db, &Default::default())?;
    if !h.unpair(&device, SystemClock::new().wall_ms())? {
        return Err(Error::invalid(
            "device id",
            format!("{device} is not a paired device"),
        ));
    }
    let _ = writeln!(
        out,
        "unpaired {device}: its token no longer works; it may pair again with a new code"
    );
    Ok(())
}

/// `device audit`: the hub's own audit log (pairing, re-pairing, unpairing), newest first.
pub fn device_audit(db: &DbSpec, json: bool, out: &mut dyn Write) -> Result<()> {
    let entries = HubDb::open_spec(db, &Default::default())?.hub_audit(1000)?;
    if json {
        return print_json(out, &entries);
    }
    for e in &entries {
        let _ = writeln!(
            out,
            "{}  {:<30} {}  {}",
            crate::store::export::rfc3339_ms(e.at_ms),
            e.action,
            e.device_id,
            crate::base::text::for_terminal(&e.detail)
        );
    }
    Ok(())
}

/// `policy FILE [--site S]`: TOML with a `[policy]` section, or JSON of the policy object.
pub fn policy_set(db: &DbSpec, file: &Path, site: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::invalid(&name, format!("cannot read: {e}")))?;
    let policy: crate::base::config::PolicyConfig = if file.extension().is_some_and(|e| e == "json")
    {
        serde_json::from_str(&text).map_err(|e| Error::invalid(&name, e.to_string()))?
    } else {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct F {
            policy: crate::base::config::PolicyConfig,
        }
        toml::from_str::<F>(&text)
            .map_err(|e| Error::invalid(&name, e.to_string()))?
            .policy
    };
    let mut h = HubDb::open_spec(db, &Default::default())?;
    let v = h.set_site_policy(&policy, site)?;
    let _ = writeln!(
        out,
        "policy version {v} set for {}",
        match site {
            Some(s) => format!("site {}", crate::base::text::for_terminal(s)),
            None => "every site without its own".into(),
        }
    );
    Ok(())
}

/// `keys rotate`: every template re-sealed under a new key file, which replaces the old one.
pub fn keys_rotate(db: &DbSpec, out: &mut dyn Write) -> Result<()> {
    let mut h = HubDb::open_spec(db, &Default::default())?;
    let n = h.rotate_template_key()?;
    let _ = writeln!(
        out,
        "{n} template(s) re-sealed under a new key in {}; back it up (the old key no longer opens them)",
        db.key_file().unwrap_or_default().display()
    );
    Ok(())
}

/// `devices`: the fleet view, each paired kiosk (of `site`) with its state and latest alerts.
pub fn devices(
    db: &DbSpec,
    cfg: &super::db::HubConfig,
    site: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let h = HubDb::open_spec(db, cfg)?;
    let list = h.fleet(site, now_ms())?;
    if json {
        return print_json(
            out,
            &serde_json::json!({
                "hub_data_region": cfg.privacy.data_region,
                "devices": list,
            }),
        );
    }
    let _ = writeln!(
        out,
        "hub data region: {}",
        if cfg.privacy.data_region.is_empty() {
            "(none set)"
        } else {
            &cfg.privacy.data_region
        }
    );
    let dash = || "-".to_string();
    for d in &list {
        let camera = d.status.as_ref().map_or_else(dash, |s| {
            format!("{}{}", s.camera, if s.face_ok { "" } else { ", face off" })
        });
        let _ = writeln!(
            out,
            "{}  {:<24} site {:<16} {:<7} v{:<8} queue {:<6} skew {:<8} disk {:<9} camera {:<16} region {:<8} last seen {}",
            d.id,
            crate::base::text::for_terminal(&d.name),
            crate::base::text::for_terminal(&d.site),
            d.state,
            if d.version.is_empty() {
                "?"
            } else {
                &d.version
            },
            d.queue_depth.map_or_else(dash, |q| q.to_string()),
            d.clock_skew_ms
                .map_or_else(dash, |s| format!("{} s", s / 1000)),
            d.free_disk_bytes
                .map_or_else(dash, |b| format!("{} MiB", b / (1024 * 1024))),
            camera,
            if d.data_region.is_empty() {
                "-"
            } else {
                &d.data_region
            },
            d.last_seen_ms
                .map(crate::store::export::rfc3339_ms)
                .unwrap_or_else(|| "never".into())
        );
        for a in &d.latest_alerts {
            let _ = writeln!(
                out,
                "    alert {} {}: {}",
                crate::store::export::rfc3339_ms(a.at_ms),
                a.kind,
                a.detail
            );
        }
    }
    Ok(())
}

/// `alerts`: every security and health event of the fleet, newest first.
pub fn alerts(db: &DbSpec, json: bool, out: &mut dyn Write) -> Result<()> {
    let h = HubDb::open_spec(db, &Default::default())?;
    let list = h.alerts(now_ms())?;
    if json {
        return print_json(out, &serde_json::json!({ "alerts": list }));
    }
    if list.is_empty() {
        let _ = writeln!(out, "no alerts");
    }
    for a in &list {
        let _ = writeln!(
            out,
            "{}  {:<26} {} ({}, site {}): {}",
            crate::store::export::rfc3339_ms(a.at_ms),
            a.kind,
            a.device_id,
            crate::base::text::for_terminal(&a.device_name),
            crate::base::text::for_terminal(&a.site),
            crate::base::text::for_terminal(&a.detail)
        );
    }
    Ok(())
}

/// `timesheet`.
pub fn timesheet(
    db: &DbSpec,
    since: &str,
    until: &str,
    opts: &crate::hub::db::timesheet::TimesheetOptions,
    output: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    let from = crate::base::clock::parse_time("--since", since)?;
    let to = crate::base::clock::parse_time("--until", until)?;
    if to <= from {
        return Err(Error::invalid("--until", "must be later than --since"));
    }
    let h = HubDb::open_spec(db, &Default::default())?;
    let n = match output {
        Some(p) => {
            let mut f = std::fs::File::create(p)
                .map_err(|e| Error::invalid(p.display().to_string(), e.to_string()))?;
            h.timesheet_with(from, to, opts, &mut f)?
        }
        None => h.timesheet_with(from, to, opts, out)?,
    };
    tracing::info!(rows = n, "timesheet written");
    Ok(())
}

/// `chains`.
pub fn chains(db: &DbSpec, json: bool, out: &mut dyn Write) -> Result<()> {
    let h = HubDb::open_spec(db, &Default::default())?;
    let reports = h.chain_reports()?;
    if json {
        return print_json(out, &reports);
    }
    for r in &reports {
        let _ = writeln!(
            out,
            "{} ({}) {}: {} entries, seq {}..{}, head {}, {} gap(s), {} conflict(s)",
            crate::base::text::for_terminal(&r.device_name),
            r.device_id,
            r.chain,
            r.entries,
            r.first_seq,
            r.last_seq,
            r.head_seq,
            r.gaps.len(),
            r.conflicts.len()
        );
        for (a, b) in &r.gaps {
            let _ = writeln!(out, "  gap: seq {a}..{b} missing");
        }
        for c in &r.conflicts {
            let _ = writeln!(out, "  conflict: {}", crate::base::text::for_terminal(c));
        }
    }
    Ok(())
}

/// `webhook add`: subscribes a URL to batches of check-ins and/or alerts, signed with the secret
/// in `secret_file`.
pub fn webhook_add(
    db: &DbSpec,
    url: &str,
    secret_file: &Path,
    events: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let secret = std::fs::read(secret_file).map_err(|e| Error::io(secret_file, e))?;
    let secret = secret.trim_ascii().to_vec();
    let events: Vec<String> = events
        .split(',')
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    let mut h = HubDb::open_spec(db, &Default::default())?;
    let id = h.add_webhook(url, &secret, &events, now_ms())?;
    let _ = writeln!(
        out,
        "webhook {id}: {} delivered to {url} from now on",
        events.join(" and ")
    );
    Ok(())
}

/// `webhook status`: each webhook's queue, last error and dead letters.
pub fn webhook_status(db: &DbSpec, json: bool, out: &mut dyn Write) -> Result<()> {
    let list = HubDb::open_spec(db, &Default::default())?.webhooks()?;
    if json {
        return print_json(out, &serde_json::json!({ "webhooks": list }));
    }
    if list.is_empty() {
        let _ = writeln!(out, "no webhooks");
    }
    for w in &list {
        let _ = writeln!(
            out,
            "webhook {} {} [{}]: {} batches delivered, {} events pending{}",
            w.id,
            w.url,
            w.events.join(","),
            w.delivered,
            w.pending,
            if w.attempts > 0 {
                format!(
                    ", {} failed attempts, next at {} ({})",
                    w.attempts,
                    crate::store::export::rfc3339_ms(w.next_attempt_ms),
                    w.last_error
                )
            } else {
                String::new()
            }
        );
        for d in &w.dead_letters {
            let _ = writeln!(
                out,
                "    dead letter {}: events {}..{} given up at {} after {} attempts: {}",
                d.id,
                d.first_event,
                d.last_event,
                crate::store::export::rfc3339_ms(d.at_ms),
                d.attempts,
                d.last_error
            );
        }
    }
    Ok(())
}

/// `webhook redeliver ID`: sends a dead letter again.
pub fn webhook_redeliver(db: &DbSpec, dead: i64, out: &mut dyn Write) -> Result<()> {
    if HubDb::open_spec(db, &Default::default())?.redeliver(dead)? {
        let _ = writeln!(
            out,
            "dead letter {dead} goes out again with the next delivery"
        );
        Ok(())
    } else {
        Err(Error::invalid(
            "dead letter",
            format!("{dead} is not in `webhook status`"),
        ))
    }
}
