//! A throwaway PostgreSQL server for the hub's benchmark and tests: Debian's `postgresql`
//! binaries, `initdb` into a temporary directory, a free loopback port, no system service,
//! stopped and removed on drop. As root it runs as the package's `postgres` user (the server
//! refuses root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::base::error::{Error, Result};

/// A running PostgreSQL server; stopped (and its files removed) on drop.
pub struct PgServer {
    /// Its loopback port.
    pub port: u16,
    pid: u32,
    dir: tempfile::TempDir,
    bin: PathBuf,
    databases: AtomicUsize,
}

/// The newest installed server's bin directory (`/usr/lib/postgresql/N/bin`).
fn bin_dir() -> Option<PathBuf> {
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
    found.pop().map(|(_, b)| b)
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

fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("127.0.0.1:0", e))
}

impl PgServer {
    /// `initdb` into a new temporary directory and start the server on a free port; returns
    /// once it accepts connections.
    pub fn start() -> Result<PgServer> {
        let bin = bin_dir().ok_or_else(|| {
            Error::Installation(
                "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql"
                    .into(),
            )
        })?;
        let dir = tempfile::tempdir().map_err(|e| Error::io("temporary dir", e))?;
        if unsafe { libc::geteuid() } == 0 {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(Error::Installation(
                    "cannot hand the PostgreSQL directory to the postgres user (is the postgresql package installed?)".into(),
                ));
            }
        }
        let data = dir.path().join("data");
        let out = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "clockface", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .output()
            .map_err(|e| Error::io(bin.join("initdb"), e))?;
        if !out.status.success() {
            return Err(Error::Installation(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let mut s = PgServer {
            port: free_port()?,
            pid: 0,
            dir,
            bin,
            databases: AtomicUsize::new(0),
        };
        s.run()?;
        Ok(s)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Starts the server on its data directory and port (again, after [`PgServer::stop`]).
    /// Durability is relaxed (`fsync=off`): this server holds nothing worth keeping.
    pub fn run(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| Error::io(self.log(), e))?;
        let log2 = log.try_clone().map_err(|e| Error::io(self.log(), e))?;
        let postgres = self.bin.join("postgres");
        let mut child = as_server_user(&postgres)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log2)
            .stderr(log)
            .spawn()
            .map_err(|e| Error::io(&postgres, e))?;
        self.pid = child.id();
        let started = Instant::now();
        let log_text = || std::fs::read_to_string(self.log()).unwrap_or_default();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Error::Installation(format!(
                    "PostgreSQL exited with {status}: {}",
                    log_text()
                )));
            }
            if postgres::Client::connect(&self.url("postgres"), postgres::NoTls).is_ok() {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(Error::Installation(format!(
                    "PostgreSQL did not accept connections within 60 s: {}",
                    log_text()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Reaped by `stop`; the handle must not kill it.
        std::mem::forget(child);
        Ok(())
    }

    /// The cluster's data directory (for tests that scan what the server wrote to disk).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://clockface@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates an empty database; returns its URL.
    pub fn new_database(&self) -> Result<String> {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name = format!("hub_{}_{n}", std::process::id());
        let fail = |e: postgres::Error| Error::Database {
            path: PathBuf::from(self.url("postgres")),
            reason: e.to_string(),
        };
        let mut c =
            postgres::Client::connect(&self.url("postgres"), postgres::NoTls).map_err(fail)?;
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(fail)?;
        Ok(self.url(&name))
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
