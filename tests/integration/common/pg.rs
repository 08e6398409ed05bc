//! PostgreSQL for the hub tests: Debian's `postgresql` server, `initdb`'d into a temporary
//! directory and listening on a free loopback port, with no system service. Tests share one
//! server per process ([`shared`], stopped when the process exits) and each takes a database
//! of its own; a test that stops the server mid-run starts a private one ([`PgServer::start`]).
//!
//! `CLOCKFACE_TEST_HUB_ENGINE=postgres` runs the hub suites (sync, fault proxy, the binary,
//! schemathesis) on PostgreSQL instead of SQLite; `./dev test` runs them both ways.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
            location: DbLocation::Postgres(shared().new_database()),
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

/// A running PostgreSQL server; stopped (and its files removed) on drop.
pub struct PgServer {
    /// Its loopback port.
    pub port: u16,
    pid: u32,
    dir: tempfile::TempDir,
    bin: PathBuf,
    databases: AtomicUsize,
}

static SHARED: OnceLock<PgServer> = OnceLock::new();

extern "C" fn stop_shared() {
    if let Some(s) = SHARED.get() {
        s.stop();
    }
}

/// The process's shared server, started on first use.
pub fn shared() -> &'static PgServer {
    SHARED.get_or_init(|| {
        let s = PgServer::start();
        // Statics are never dropped: stop the server when the test binary exits.
        unsafe { libc::atexit(stop_shared) };
        s
    })
}

/// The newest installed server's bin directory (`/usr/lib/postgresql/N/bin`).
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, b)| b)
        .expect("PostgreSQL is not installed: `./dev test` installs Debian's postgresql package")
}

/// `postgres` refuses to run as root: as root, the server runs as the package's `postgres` user.
fn as_server_user(program: &Path) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl PgServer {
    /// `initdb` into a new temporary directory and start the server on a free port; returns
    /// once it accepts connections.
    pub fn start() -> PgServer {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        if unsafe { libc::geteuid() } == 0 {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success(), "chown of the PostgreSQL test directory");
        }
        let data = dir.path().join("data");
        let out = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "clockface", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = super::free_port();
        let mut s = PgServer {
            port,
            pid: 0,
            dir,
            bin,
            databases: AtomicUsize::new(0),
        };
        s.run();
        s
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Starts the server on its data directory and port (again, after [`PgServer::stop`]).
    pub fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let mut child = as_server_user(&self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.pid = child.id();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "PostgreSQL exited with {status}: {}",
                    std::fs::read_to_string(self.log()).unwrap_or_default()
                );
            }
            if postgres::Client::connect(&self.url("postgres"), postgres::NoTls).is_ok() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "PostgreSQL did not accept connections within 60 s: {}",
                std::fs::read_to_string(self.log()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The child is reaped by whoever waits for the pid; keep the handle from killing it.
        std::mem::forget(child);
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://clockface@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates an empty database; returns its URL.
    pub fn new_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name = format!("hub_{}_{n}", std::process::id());
        let mut c = postgres::Client::connect(&self.url("postgres"), postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        self.url(&name)
    }

    /// Stops the server (a fast shutdown: open transactions roll back) and waits for it.
    pub fn stop(&self) {
        if self.pid == 0 {
            return;
        }
        unsafe { libc::kill(self.pid as i32, libc::SIGINT) };
        let pidfile = self.dir.path().join("data/postmaster.pid");
        let started = Instant::now();
        while pidfile.exists() && started.elapsed() < Duration::from_secs(20) {
            let mut status = 0;
            unsafe { libc::waitpid(self.pid as i32, &mut status, libc::WNOHANG) };
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut status = 0;
        unsafe { libc::waitpid(self.pid as i32, &mut status, libc::WNOHANG) };
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
