//! The `clockface-hub` binary as its users run it: admin commands, and `serve` processes on
//! loopback (several at once are replicas when they share a PostgreSQL database).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use clockface::hub::db::DbSpec;

pub fn hub_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_clockface-hub"))
}

pub fn hub(db: &DbSpec, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(hub_bin())
        .args(super::pg::hub_args(db))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `clockface-hub serve` process, killed on drop.
pub struct Served {
    /// The process.
    pub child: Child,
    /// Its base URL.
    pub url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(db: &DbSpec) -> Served {
    serve_with(db, None)
}

/// `clockface-hub serve` on a free loopback port, run through `wrapper` (such as `prlimit`)
/// when given; its stderr is kept for the caller when `wrapper` is given.
pub fn serve_with(db: &DbSpec, wrapper: Option<&[&str]>) -> Served {
    let mut cmd = match wrapper {
        Some(w) => {
            let mut c = Command::new(w[0]);
            c.args(&w[1..]).arg(hub_bin());
            c.stderr(Stdio::piped());
            c
        }
        None => {
            let mut c = Command::new(hub_bin());
            c.stderr(Stdio::null());
            c
        }
    };
    let mut child = cmd
        .args(super::pg::hub_args(db))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Served { child, url }
}
