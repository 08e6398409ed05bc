//! One problem with a configuration, a setting or a provisioning file: the key, its line when
//! known, and what is wrong and allowed. Lives apart from the config types so that the error
//! type can carry a list of them without importing the config.

use std::fmt;

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path (`store.max_size_mb`), or empty for the file as a whole.
    pub key: String,
    /// 1-based line of the key in the file, when it could be located.
    pub line: Option<usize>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl Problem {
    /// A problem with `key` whose line in the file is not known (or there is no file).
    pub fn at(key: &str, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            line: None,
            message: message.into(),
        }
    }

    /// Formats a list of problems one per line, for error messages.
    pub fn list(problems: &[Problem]) -> String {
        problems
            .iter()
            .map(|p| format!("  - {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}
