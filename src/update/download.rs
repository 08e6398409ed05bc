//! Fetching a bundle: streamed to a `.part` file in small writes (never whole in memory),
//! resumed with a `Range` request after a broken or stalled connection, then checked against
//! the size and the strongest hash the server gave before anything uses it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::Digest;

use super::ddi::{Artifact, DdiClient, describe};

/// Tries per download; each resumes where the last stopped.
const ATTEMPTS: u32 = 8;

/// Room kept free beside a bundle on the data partition (the kiosk's store lives there too).
pub const HEADROOM: u64 = 32 << 20;

/// What one finished download measured.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The checked file.
    pub path: PathBuf,
    /// Bytes moved over the network this time (less than the size after a resume).
    pub transferred: u64,
    /// How many times the transfer was resumed.
    pub resumes: u32,
    /// Wall time of the transfer.
    pub elapsed: Duration,
}

/// Why a download did not give a usable file; `retry` when a later poll may do better.
#[derive(Debug, Clone)]
pub struct DownloadError {
    /// Worded for the server's action history and the log.
    pub reason: String,
    /// A network problem (try again later) rather than a bad artifact or a full disk.
    pub retry: bool,
}

fn fatal(reason: String) -> DownloadError {
    DownloadError {
        reason,
        retry: false,
    }
}

/// Downloads `artifact` into `dir/{name}` with resume, calling `progress(done, total)` along
/// the way, and checks it.
pub async fn fetch(
    client: &DdiClient,
    artifact: &Artifact,
    dir: &Path,
    name: &str,
    stall: Duration,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<Fetched, DownloadError> {
    let url = artifact
        .url()
        .ok_or_else(|| {
            fatal(format!(
                "artifact {} has no download link",
                artifact.filename
            ))
        })?
        .to_string();
    let hash = Expected::from(artifact).map_err(fatal)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| fatal(format!("cannot make {}: {e}", dir.display())))?;
    let part = dir.join(format!("{name}.part"));
    let done = dir.join(name);
    let _ = std::fs::remove_file(&done);
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    if have > artifact.size {
        let _ = std::fs::remove_file(&part);
    }
    let have = have.min(artifact.size);
    let free = crate::sync::free_bytes(dir);
    let need = artifact.size - have + HEADROOM;
    if free != 0 && free < need {
        return Err(fatal(format!(
            "the data partition is full: {} MiB free, the bundle needs {} MiB more (and {} MiB are kept free)",
            free >> 20,
            (artifact.size - have).div_ceil(1 << 20),
            HEADROOM >> 20
        )));
    }
    let started = Instant::now();
    let (mut transferred, mut resumes) = (0u64, 0u32);
    let mut last_err = String::new();
    for attempt in 0..ATTEMPTS {
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if have == artifact.size {
            break;
        }
        if attempt > 0 {
            resumes += 1;
            tracing::info!(
                attempt,
                at = have,
                error = %last_err,
                "download interrupted; resuming"
            );
            tokio::time::sleep(Duration::from_secs(2u64.pow(attempt.min(4)))).await;
        }
        match transfer(client, &url, &part, have, artifact.size, stall, progress).await {
            Ok(n) => transferred += n,
            Err(Step::Retry(why, n)) => {
                transferred += n;
                last_err = why;
            }
            Err(Step::Fatal(why)) => return Err(fatal(why)),
        }
    }
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    if have != artifact.size {
        return Err(DownloadError {
            reason: format!(
                "download of {} stopped at {have} of {} bytes after {ATTEMPTS} tries: {last_err}",
                artifact.filename, artifact.size
            ),
            retry: true,
        });
    }
    let elapsed = started.elapsed();
    let path = part.clone();
    let check = tokio::task::spawn_blocking(move || hash.check(&path))
        .await
        .map_err(|e| fatal(format!("hash check: {e}")))?;
    if let Err(why) = check {
        let _ = std::fs::remove_file(&part);
        return Err(fatal(format!("{}: {why}", artifact.filename)));
    }
    std::fs::rename(&part, &done)
        .map_err(|e| fatal(format!("cannot keep {}: {e}", done.display())))?;
    Ok(Fetched {
        path: done,
        transferred,
        resumes,
        elapsed,
    })
}

enum Step {
    /// Worth another try from where the file stands (bytes moved this try).
    Retry(String, u64),
    /// Never worth another try.
    Fatal(String),
}

/// One request: appends to `part` from `have`; Ok(bytes moved) when the file is complete.
async fn transfer(
    client: &DdiClient,
    url: &str,
    part: &Path,
    have: u64,
    size: u64,
    stall: Duration,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<u64, Step> {
    let mut req = client.request(reqwest::Method::GET, url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let mut resp = match tokio::time::timeout(stall, req.send()).await {
        Err(_) => return Err(Step::Retry("no answer".into(), 0)),
        Ok(Err(e)) => return Err(Step::Retry(describe(&e), 0)),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    let mut at = match status {
        206 => have,
        200 => 0,
        404 | 410 => {
            return Err(Step::Fatal(format!(
                "the server has no such artifact (HTTP {status})"
            )));
        }
        401 | 403 => {
            return Err(Step::Fatal(format!(
                "the server refused the download (HTTP {status}): check the token"
            )));
        }
        416 => {
            // The part file is not a prefix of this artifact: start again.
            let _ = std::fs::remove_file(part);
            return Err(Step::Retry(
                "HTTP 416 for the resume; starting over".into(),
                0,
            ));
        }
        s => return Err(Step::Retry(format!("HTTP {s}"), 0)),
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(at > 0)
        .write(true)
        .truncate(at == 0)
        .open(part)
        .map_err(|e| Step::Fatal(format!("cannot write {}: {e}", part.display())))?;
    let mut moved = 0u64;
    let mut last_report = 0u64;
    loop {
        let chunk = match tokio::time::timeout(stall, resp.chunk()).await {
            Err(_) => {
                return Err(Step::Retry(
                    format!("no byte for {} s", stall.as_secs()),
                    moved,
                ));
            }
            Ok(Err(e)) => return Err(Step::Retry(describe(&e), moved)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => c,
        };
        if at + chunk.len() as u64 > size {
            let _ = std::fs::remove_file(part);
            return Err(Step::Fatal(format!(
                "the server sent more than the {size} bytes it announced"
            )));
        }
        if let Err(e) = file.write_all(&chunk) {
            let full = e.raw_os_error() == Some(libc::ENOSPC);
            let _ = std::fs::remove_file(part);
            return Err(Step::Fatal(if full {
                format!(
                    "the data partition is full: writing the bundle failed at {at} of {size} bytes"
                )
            } else {
                format!("cannot write {}: {e}", part.display())
            }));
        }
        at += chunk.len() as u64;
        moved += chunk.len() as u64;
        if at - last_report >= size / 20 || at == size {
            last_report = at;
            progress(at, size);
        }
    }
    file.flush()
        .and_then(|_| file.sync_all())
        .map_err(|e| Step::Fatal(format!("cannot write {}: {e}", part.display())))?;
    if at < size {
        return Err(Step::Retry(
            format!("the connection closed at {at} of {size} bytes"),
            moved,
        ));
    }
    Ok(moved)
}

/// The hash a download must have: sha256 when the server gives one, else sha1 (gooseBit gives
/// only sha1; the RAUC signature checked at install is what the kiosk trusts either way).
enum Expected {
    Sha256(String),
    Sha1(String),
}

impl Expected {
    fn from(a: &Artifact) -> Result<Expected, String> {
        let get = |k: &str| a.hashes.get(k).map(|h| h.to_ascii_lowercase());
        if let Some(h) = get("sha256") {
            Ok(Expected::Sha256(h))
        } else if let Some(h) = get("sha1") {
            Ok(Expected::Sha1(h))
        } else {
            Err(format!(
                "artifact {} comes with no sha256 or sha1 hash; refusing it unchecked",
                a.filename
            ))
        }
    }

    fn check(&self, path: &Path) -> Result<(), String> {
        let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 1 << 16];
        let mut s256 = sha2::Sha256::new();
        let mut s1 = sha1::Sha1::new();
        loop {
            let n = f.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            match self {
                Expected::Sha256(_) => s256.update(&buf[..n]),
                Expected::Sha1(_) => s1.update(&buf[..n]),
            }
        }
        let (name, want, got) = match self {
            Expected::Sha256(w) => ("sha256", w, hex(&s256.finalize())),
            Expected::Sha1(w) => ("sha1", w, hex(&s1.finalize())),
        };
        if &got == want {
            Ok(())
        } else {
            Err(format!(
                "{name} mismatch: the server announced {want}, the file has {got}"
            ))
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
