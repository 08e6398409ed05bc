//! Several `clockface-hub serve` processes on one PostgreSQL database: kiosks upload to
//! different replicas at once, retry a batch against the other one, and pair with codes that
//! only one replica may accept. The hub then holds every entry once, linked, with no conflict.

use crate::common;

use std::path::Path;
use std::time::Duration;

use clockface::base::config::Config;
use clockface::hub::db::{Chain, DbSpec, HubDb};
use clockface::store::Store;
use clockface::store::sync::OutboxChain;
use clockface::sync::Syncer;
use common::hubbin::{Served, hub, serve};
use common::net::{Fault, FaultProxy, block};

fn postgres_hub(dir: &Path) -> DbSpec {
    DbSpec {
        location: clockface::hub::sql::DbLocation::Postgres(
            common::pg::shared().new_database().unwrap(),
        ),
        template_key: Some(dir.join("hub.templates.key")),
    }
}

fn config(url: &str) -> Config {
    let mut c = Config::default();
    c.sync.url = url.into();
    c.sync.timeout_seconds = 5;
    c.sync.batch_size = 50;
    c
}

fn code(db: &DbSpec) -> String {
    let (status, out, err) = hub(db, &["pairing-code", "--site", "HQ"]);
    assert_eq!(status, 0, "{err}");
    out.trim().to_owned()
}

fn append(store: &mut Store, n: usize, tag: usize) {
    let recs: Vec<_> = (0..n)
        .map(|i| common::checkin(&format!("E{}", (i + tag) % 11)))
        .collect();
    store.append_many(&recs).unwrap();
}

#[test]
fn two_replicas_take_concurrent_uploads_and_retries_without_loss_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let db = postgres_hub(dir.path());
    let replicas: [Served; 2] = [serve(&db), serve(&db)];
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    // A proxy in front of replica 0 loses answers after the hub committed them.
    let addr = urls[0].trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(addr);

    const KIOSKS: usize = 6;
    let codes: Vec<String> = (0..KIOSKS).map(|_| code(&db)).collect();
    let heads: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = codes
            .iter()
            .enumerate()
            .map(|(k, code)| {
                let urls = &urls;
                let proxy_url = proxy.url.clone();
                s.spawn(move || {
                    let kdir = tempfile::tempdir().unwrap();
                    let mut store = common::open(kdir.path()).0;
                    let first = config(&urls[k % 2]);
                    block(clockface::sync::pair(
                        &mut store,
                        &first,
                        &urls[k % 2],
                        code,
                    ))
                    .expect("pairs through either replica");
                    let mut lost = 0;
                    for wave in 0..4 {
                        append(&mut store, 75 + 10 * k, wave);
                        for attempt in 0..40 {
                            if store.queued(OutboxChain::Checkins).unwrap() == 0
                                && store.queued(OutboxChain::Audit).unwrap() == 0
                            {
                                break;
                            }
                            // Alternate replicas; every third round goes through the lossy
                            // proxy, whose answer may not arrive: the next round sends the same
                            // batch to the other replica.
                            let url = match (attempt + k) % 3 {
                                0 => proxy_url.clone(),
                                n => urls[n % 2].clone(),
                            };
                            let cfg = config(&url);
                            let syncer = Syncer::for_store(&store, &cfg).unwrap().unwrap();
                            if block(syncer.round(&mut store)).is_err() {
                                lost += 1;
                            }
                        }
                    }
                    assert_eq!(store.queued(OutboxChain::Checkins).unwrap(), 0);
                    let _ = lost;
                    store.stats().unwrap().head_seq
                })
            })
            .collect();
        // Meanwhile the proxy keeps losing answers to check-in uploads.
        for _ in 0..40 {
            proxy.push_for("/v1/checkins", [Fault::Pass, Fault::LoseResponse]);
            std::thread::sleep(Duration::from_millis(20));
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let h = HubDb::open_spec(&db, &Default::default()).unwrap();
    assert_eq!(
        h.count(Chain::Checkins).unwrap(),
        heads.iter().sum::<u64>(),
        "every check-in stored exactly once"
    );
    let reports = h.chain_reports().unwrap();
    assert_eq!(
        reports.iter().filter(|r| r.chain == "checkins").count(),
        KIOSKS
    );
    for r in reports.iter().filter(|r| r.chain == "checkins") {
        assert!(
            r.gaps.is_empty() && r.conflicts.is_empty(),
            "no gap and no false conflict: {r:?}"
        );
        assert_eq!(r.head_seq, r.last_seq, "{r:?}");
        assert!(heads.contains(&r.last_seq), "{r:?}");
    }
    for r in reports.iter().filter(|r| r.chain == "audit") {
        assert!(r.conflicts.is_empty(), "{r:?}");
    }
}

#[test]
fn a_pairing_code_is_used_once_across_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let db = postgres_hub(dir.path());
    let replicas: [Served; 2] = [serve(&db), serve(&db)];
    for round in 0..5 {
        let code = code(&db);
        let results: Vec<Result<(), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let url = replicas[i % 2].url.clone();
                    let code = code.clone();
                    s.spawn(move || {
                        let kdir = tempfile::tempdir().unwrap();
                        let mut store = common::open(kdir.path()).0;
                        block(clockface::sync::pair(
                            &mut store,
                            &config(&url),
                            &url,
                            &code,
                        ))
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "round {round}: {results:?}");
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(e.contains("already used"), "{e}");
        }
    }
    let devices = HubDb::open_spec(&db, &Default::default())
        .unwrap()
        .fleet(None, common::net::now_ms())
        .unwrap();
    assert_eq!(devices.len(), 5);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A kiosk whose request timed out retries while the first is still being processed: here
/// two copies of each kiosk send the same batches to the two replicas at the same moment.
/// Without a lock per device chain, one replica would see the other's half-stored batch and
/// call it a fork.
#[test]
fn the_same_batches_sent_to_both_replicas_at_once_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = postgres_hub(dir.path());
    let replicas: [Served; 2] = [serve(&db), serve(&db)];
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let mut kiosk_dirs = Vec::new();
    for k in 0..3 {
        let a = dir.path().join(format!("kiosk{k}a"));
        let mut store = common::open(&a).0;
        block(clockface::sync::pair(
            &mut store,
            &config(&urls[0]),
            &urls[0],
            &code(&db),
        ))
        .unwrap();
        append(&mut store, 600, k);
        drop(store);
        let b = dir.path().join(format!("kiosk{k}b"));
        copy_dir(&a, &b);
        kiosk_dirs.push((a, 0));
        kiosk_dirs.push((b, 1));
    }
    let heads: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = kiosk_dirs
            .iter()
            .map(|(d, r)| {
                let url = urls[*r].clone();
                s.spawn(move || {
                    let mut store = common::open(d).0;
                    let cfg = config(&url);
                    for _ in 0..30 {
                        if store.queued(OutboxChain::Checkins).unwrap() == 0 {
                            break;
                        }
                        let syncer = Syncer::for_store(&store, &cfg).unwrap().unwrap();
                        block(syncer.round(&mut store)).unwrap();
                    }
                    assert_eq!(store.queued(OutboxChain::Checkins).unwrap(), 0);
                    store.stats().unwrap().head_seq
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let h = HubDb::open_spec(&db, &Default::default()).unwrap();
    assert_eq!(
        h.count(Chain::Checkins).unwrap(),
        heads.iter().step_by(2).sum::<u64>()
    );
    // (The copies' audit chains really do fork after the copy: each logs its own rounds.)
    for r in h
        .chain_reports()
        .unwrap()
        .iter()
        .filter(|r| r.chain == "checkins")
    {
        assert!(
            r.gaps.is_empty() && r.conflicts.is_empty(),
            "no false conflict: {r:?}"
        );
        assert_eq!(r.head_seq, r.last_seq, "{r:?}");
    }
}

#[test]
fn a_wrong_database_url_or_missing_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    let key = key.to_str().unwrap();
    let run = |db: &str, extra: &[&str]| {
        let out = std::process::Command::new(common::hubbin::hub_bin())
            .args(["--db", db])
            .args(extra)
            .arg("devices")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Nothing listens there.
    let port = common::free_port();
    let url = format!("postgres://clockface:hunter2@127.0.0.1:{port}/hub");
    let (code, err) = run(&url, &["--template-key", key]);
    assert_ne!(code, 0);
    assert!(
        err.contains("cannot connect") && err.contains(&port.to_string()),
        "{err}"
    );
    assert!(
        !err.contains("hunter2"),
        "the password stays out of messages: {err}"
    );
    // The server is there, the database is not.
    let server = common::pg::shared();
    let (code, err) = run(&server.url("no_such_db"), &["--template-key", key]);
    assert_ne!(code, 0);
    assert!(err.contains("\"no_such_db\" does not exist"), "{err}");
    // Not a URL at all.
    let (code, err) = run(
        "postgres://clockface@127.0.0.1:port/hub",
        &["--template-key", key],
    );
    assert_ne!(code, 0);
    assert!(err.contains("URL is not valid"), "{err}");
    // No template key named for a database every replica shares.
    let (code, err) = run(&server.new_database().unwrap(), &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--template-key"), "{err}");
}

/// `clockface-hub serve` on `db` and a kiosk in `dir` paired with it.
fn paired_kiosk(db: &DbSpec, dir: &Path) -> (Served, Store, Config) {
    let hubp = serve(db);
    let mut store = common::open(&dir.join("kiosk")).0;
    let cfg = config(&hubp.url);
    block(clockface::sync::pair(
        &mut store,
        &cfg,
        &hubp.url,
        &code(db),
    ))
    .unwrap();
    (hubp, store, cfg)
}

#[test]
fn postgresql_stopped_mid_run_loses_nothing_and_the_hub_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = common::pg::PgServer::start().unwrap();
    let db = DbSpec {
        location: clockface::hub::sql::DbLocation::Postgres(server.new_database().unwrap()),
        template_key: Some(dir.path().join("hub.templates.key")),
    };
    let (hubp, mut store, cfg) = paired_kiosk(&db, dir.path());
    append(&mut store, 120, 0);
    let round = |store: &mut Store| {
        let s = Syncer::for_store(store, &cfg).unwrap().unwrap();
        block(s.round(store))
    };
    round(&mut store).unwrap();
    assert_eq!(store.queued(OutboxChain::Checkins).unwrap(), 0);

    server.stop();
    append(&mut store, 80, 1);
    let e = round(&mut store).unwrap_err();
    assert!(e.to_string().contains("503"), "{e}");
    assert!(e.to_string().contains("unavailable"), "{e}");
    assert_eq!(store.queued(OutboxChain::Checkins).unwrap(), 80, "all kept");
    let mut child = hubp;
    assert!(
        child.child.try_wait().unwrap().is_none(),
        "the hub keeps running while its database is down"
    );

    server.run().unwrap();
    round(&mut store).unwrap();
    assert_eq!(store.queued(OutboxChain::Checkins).unwrap(), 0);
    let h = HubDb::open_spec(&db, &Default::default()).unwrap();
    assert_eq!(h.count(Chain::Checkins).unwrap(), 200);
    let r = h.chain_reports().unwrap();
    assert!(
        r.iter()
            .all(|r| r.gaps.is_empty() && r.conflicts.is_empty()),
        "{r:?}"
    );
    drop(child);
}

#[test]
fn a_full_postgresql_disk_is_named_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let Some(_disk) =
        common::SmallDisk::mount(&small, "size=1m,uid=postgres,gid=postgres,mode=0700")
    else {
        return;
    };
    // The tmpfs sits inside a root-only temporary directory: let the server reach it.
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(dir.path())
        .status();
    let server = common::pg::shared();
    let url = server.new_database().unwrap();
    let db = DbSpec {
        location: clockface::hub::sql::DbLocation::Postgres(url.clone()),
        template_key: Some(dir.path().join("hub.templates.key")),
    };
    HubDb::open_spec(&db, &Default::default()).unwrap();
    // The entries table on a 1 MiB disk of its own.
    let ts = format!("small_{}", std::process::id());
    common::pg::raw_sql(
        &db,
        &format!("CREATE TABLESPACE {ts} LOCATION '{}'", small.display()),
    );
    common::pg::raw_sql(&db, &format!("ALTER TABLE entries SET TABLESPACE {ts}"));
    let (hubp, mut store, cfg) = paired_kiosk(&db, dir.path());
    append(&mut store, 3000, 0);
    let mut err = None;
    for _ in 0..100 {
        let s = Syncer::for_store(&store, &cfg).unwrap().unwrap();
        match block(s.round(&mut store)) {
            Ok(_) if store.queued(OutboxChain::Checkins).unwrap() == 0 => break,
            Ok(_) => {}
            Err(e) => {
                err = Some(e.to_string());
                break;
            }
        }
    }
    let err = err.expect("1 MiB cannot hold 3000 signed check-ins");
    assert!(err.contains("503") && err.contains("out of space"), "{err}");
    let h = HubDb::open_spec(&db, &Default::default()).unwrap();
    let stored = h.count(Chain::Checkins).unwrap();
    assert!(stored > 0 && stored < 3000, "{stored}");
    assert_eq!(
        store.queued(OutboxChain::Checkins).unwrap(),
        3000 - stored,
        "what the hub could not store stays queued at the kiosk"
    );
    drop(hubp);
    drop(h);
    common::pg::raw_sql(&db, "ALTER TABLE entries SET TABLESPACE pg_default");
    common::pg::raw_sql(&db, &format!("DROP TABLESPACE {ts}"));
}

#[test]
fn a_database_at_an_older_schema_is_migrated_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::pg::shared().new_database().unwrap();
    let db = DbSpec {
        location: clockface::hub::sql::DbLocation::Postgres(url.clone()),
        template_key: Some(dir.path().join("hub.templates.key")),
    };
    // A database as the first PostgreSQL hub left it, with a paired kiosk and an employee.
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(include_str!(
        "../../src/hub/migrations/postgres/0001_initial.sql"
    ))
    .unwrap();
    c.batch_execute(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL);
         INSERT INTO schema_migrations VALUES (1, 'initial schema', 0);
         INSERT INTO devices (id, public_key, token_sha256, name, site, paired_ms)
              VALUES ('01a23ae6-0000-7000-8000-000000000001', '\\x00', '\\x01', 'Door', 'HQ', 1);
         INSERT INTO employees (id, display_name, active, is_admin) VALUES ('E1', 'Ada', 1, 0);",
    )
    .unwrap();
    let h = HubDb::open_spec(&db, &Default::default()).unwrap();
    let versions: Vec<i64> = c
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    let fleet = h.fleet(None, common::net::now_ms()).unwrap();
    assert_eq!(fleet.len(), 1);
    assert_eq!(
        (fleet[0].name.as_str(), fleet[0].state.as_str()),
        ("Door", "never")
    );
    assert!(h.alerts(common::net::now_ms()).unwrap().is_empty());
    assert_eq!(h.roster(&uuid::Uuid::nil()).unwrap().employees.len(), 1);
    drop(h);
    // Opening again applies nothing twice.
    HubDb::open_spec(&db, &Default::default()).unwrap();
    // A database a newer hub has migrated further is refused, and left as it is.
    c.batch_execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 0)")
        .unwrap();
    let e = HubDb::open_spec(&db, &Default::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("schema version 99") && e.contains("upgrade clockface-hub"),
        "{e}"
    );
}

/// Every byte a PostgreSQL cluster wrote under `dir` (tables, WAL), concatenated.
fn cluster_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                all.extend(b);
            }
        }
    }
    all
}

#[test]
fn templates_reach_postgresql_only_sealed_and_are_served_only_to_their_site() {
    use base64::Engine;
    use clockface::base::protocol::{ConsentScope, RosterConsent, RosterEmployee, RosterTemplate};
    let dir = tempfile::tempdir().unwrap();
    let server = common::pg::PgServer::start().unwrap();
    let db = DbSpec {
        location: clockface::hub::sql::DbLocation::Postgres(server.new_database().unwrap()),
        template_key: Some(dir.path().join("hub.templates.key")),
    };
    // A recognisable embedding: 64 floats whose bytes cannot occur by chance.
    let v: Vec<f32> = (0..64)
        .map(|i| 0.123_456_79 + i as f32 * 0.001_953_1)
        .collect();
    let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut h = HubDb::open_spec(&db, &Default::default()).unwrap();
    let person = |id: &str, site: &str| RosterEmployee {
        id: id.into(),
        display_name: "Ada".into(),
        active: true,
        is_admin: false,
        badges: vec![],
        consent: Some(RosterConsent {
            given: true,
            text_version: "v1".into(),
            scope: ConsentScope::Site,
        }),
        templates: vec![RosterTemplate {
            model: Config::default().vision.embedder.name().into(),
            embedding: base64::engine::general_purpose::STANDARD.encode(&raw),
        }],
        birth_year: None,
        is_minor: None,
        sites: vec![site.into()],
    };
    h.import_roster(&[person("E1", "HQ"), person("E2", "Plant 7")], false)
        .unwrap();
    // Kiosks of each site: only their own people, and those with their templates.
    let hubp = serve(&db);
    let mut hq = common::open(&dir.path().join("hq")).0;
    let cfg = config(&hubp.url);
    let c = h
        .create_pairing_code("HQ", 3_600_000, None, common::net::now_ms())
        .unwrap();
    block(clockface::sync::pair(&mut hq, &cfg, &hubp.url, &c)).unwrap();
    let s = Syncer::for_store(&hq, &cfg).unwrap().unwrap();
    block(s.round(&mut hq)).unwrap();
    assert_eq!(hq.templates("E1").unwrap()[0].vector, v);
    assert!(hq.templates("E2").unwrap().is_empty(), "not of this site");
    // Checkpoint so that everything is in the table files as well as the WAL.
    common::pg::raw_sql(&db, "CHECKPOINT");
    assert!(
        !common::contains(&cluster_bytes(&server.data_dir()), &raw),
        "the plain template is nowhere in the cluster's files"
    );
    h.delete_employee("E1").unwrap();
    common::pg::raw_sql(&db, "CHECKPOINT");
    assert!(!common::contains(&cluster_bytes(&server.data_dir()), &raw));
    // What the deleted rows leave in dead tuples is ciphertext; rotating the key re-seals the
    // rest and leaves no key that opens it.
    let key = std::fs::read(dir.path().join("hub.templates.key")).unwrap();
    assert_eq!(h.rotate_template_key().unwrap(), 1);
    assert_ne!(
        std::fs::read(dir.path().join("hub.templates.key")).unwrap(),
        key
    );
    drop(hubp);
}
