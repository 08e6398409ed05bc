//! PostgreSQL for the hub tests: Debian's `postgresql` server, `initdb`'d into a temporary
//! directory and listening on a free loopback port, with no system service. Tests share one
//! server per process ([`shared`], stopped when the process exits) and each takes a database
//! of its own; a test that stops the server mid-run starts a private one ([`PgServer::start`]).
//!
//! `CLOCKFACE_TEST_HUB_ENGINE=postgres` runs the hub suites (sync, fault proxy, the binary,
//! schemathesis) on PostgreSQL instead of SQLite; `./dev test` runs them both ways.

use std::path::Path;
use std::sync::OnceLock;

use clockface::hub::db::DbSpec;
use clockface::hub::sql::DbLocation;

/// Whether this run puts the hub on PostgreSQL.
pub fn enabled() -> bool {
    std::env::var("CLOCKFACE_TEST_HUB_ENGINE").is_ok_and(|v| v == "postgres")
}

/// Where the hub of a test keeps its data: `dir/hub.db` on SQLite, or a fresh database of the
/// shared server (its template key in `dir`) on PostgreSQL.
pub fn hub_spec(dir: &Path) -> DbSpec {
    if enabled() {
        DbSpec {
            location: DbLocation::Postgres(shared().new_database().unwrap()),
            template_key: Some(dir.join("hub.templates.key")),
        }
    } else {
        DbSpec::from(dir.join("hub.db").as_path())
    }
}

/// The `--db` (and `--template-key`) arguments of `clockface-hub` for `spec`.
pub fn hub_args(spec: &DbSpec) -> Vec<String> {
    let mut a = vec!["--db".to_string(), db_arg(&spec.location)];
    if let Some(k) = &spec.template_key {
        a.push("--template-key".into());
        a.push(k.display().to_string());
    }
    a
}

/// Runs SQL on the hub's database behind its back (to restore an older backup, say).
pub fn raw_sql(spec: &DbSpec, sql: &str) {
    match &spec.location {
        DbLocation::Sqlite(p) => rusqlite::Connection::open(p)
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
        DbLocation::Postgres(url) => postgres::Client::connect(url, postgres::NoTls)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
    }
}

fn db_arg(l: &DbLocation) -> String {
    match l {
        DbLocation::Sqlite(p) => p.display().to_string(),
        DbLocation::Postgres(url) => url.clone(),
    }
}

pub use clockface::commands::bench::pgtmp::PgServer;

static SHARED: OnceLock<PgServer> = OnceLock::new();

extern "C" fn stop_shared() {
    if let Some(s) = SHARED.get() {
        s.stop();
    }
}

/// The process's shared server, started on first use.
pub fn shared() -> &'static PgServer {
    SHARED.get_or_init(|| {
        let s = PgServer::start().expect("a throwaway PostgreSQL (./dev test installs it)");
        // Statics are never dropped: stop the server when the test binary exits.
        unsafe { libc::atexit(stop_shared) };
        s
    })
}
