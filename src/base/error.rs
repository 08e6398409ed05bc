//! The library's error type.
//!
//! Every variant names the file, field or value that was wrong, and maps to an [`ErrorKind`]
//! so a caller (the kiosk loop, the CLI, the sync task) can decide whether to retry, raise an
//! alert or reject the input. `anyhow` is only used at the CLI edge, never here.

use std::path::PathBuf;

use crate::base::problem::Problem;

/// What a caller can do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Transient: trying again later may succeed (busy database, network down).
    Retry,
    /// Needs a person: broken installation, corrupt or tampered store, full disk.
    Alert,
    /// The input was wrong: fix it and ask again.
    RejectInput,
}

/// Every failure the library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config file {path}: {reason}")]
    ConfigRead { path: PathBuf, reason: String },

    #[error("config {}: {} problem(s):\n{}", path.display(), problems.len(), Problem::list(problems))]
    ConfigInvalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },

    #[error("data dir {path}: {reason}")]
    DataDir { path: PathBuf, reason: String },

    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },

    #[error("database {path}: {reason}")]
    Database { path: PathBuf, reason: String },

    #[error(
        "store is full ({0}); nothing already recorded was lost: free disk space or raise store.max_size_mb"
    )]
    StoreFull(String),

    #[error("store busy: {0}")]
    Busy(String),

    /// The backend could not be reached or asked to come back later; nothing was lost.
    #[error("{0}; nothing was lost, the queue is kept for the next attempt")]
    Network(String),

    /// A part of the installation is missing or damaged (a face model, ONNX Runtime): it needs
    /// a person, not different input.
    #[error("{0}")]
    Installation(String),

    /// The backend answered, but not as the protocol says (or TLS with it failed): retrying
    /// the same request will not help until the backend or its certificate is fixed.
    #[error("{0}")]
    Backend(String),

    /// The running kiosk is not serving, or its health endpoint does not answer.
    #[error("{0}")]
    Unhealthy(String),

    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{what}: {reason}")]
    InvalidInput { what: String, reason: String },

    #[error("{chain} record {seq}: {reason}")]
    ChainBroken {
        chain: &'static str,
        seq: u64,
        reason: String,
    },

    #[error("cannot decrypt {what}: {reason}")]
    Crypto { what: String, reason: String },
}

impl Error {
    /// Process exit status for this error: 2 bad input, 75 try again later, 1 alert.
    pub fn exit_code(&self) -> u8 {
        match self.kind() {
            ErrorKind::RejectInput => 2,
            ErrorKind::Retry => 75,
            ErrorKind::Alert => 1,
        }
    }

    /// Classifies the error for the caller.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::ConfigRead { .. } | Error::ConfigInvalid { .. } | Error::InvalidInput { .. } => {
                ErrorKind::RejectInput
            }
            Error::Busy(_) | Error::Network(_) => ErrorKind::Retry,
            Error::Sqlite(e) if is_busy(e) => ErrorKind::Retry,
            _ => ErrorKind::Alert,
        }
    }

    /// Shorthand for an [`Error::InvalidInput`].
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Wraps an I/O error with the path it concerned.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
