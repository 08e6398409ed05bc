//! Badge ids: the one normal form every reader, the roster and the backend agree on.
//!
//! A badge id is normalised once, where it enters the kiosk (a reader, `roster add`, a roster
//! from the backend); from then on it travels as a [`BadgeId`], which cannot hold anything else.

use crate::base::error::{Error, Result};

/// A normalised badge id: 1 to 64 ASCII letters or digits, upper case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BadgeId(String);

impl BadgeId {
    /// Normalises a badge id as readers deliver it: separators and spaces removed, upper case.
    /// `"04:a1:b2 c3"` and `"04A1B2C3"` are the same badge.
    pub fn parse(raw: &str) -> Result<BadgeId> {
        let s: String = raw
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | ' ' | '\t'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid(
                "badge id",
                "must be 1 to 64 letters or digits (separators : - and spaces are ignored)",
            ));
        }
        Ok(BadgeId(s))
    }

    /// The normal form, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Never prints the id itself: badge ids are personal data and must not reach the logs.
impl std::fmt::Debug for BadgeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BadgeId(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_case_do_not_matter() {
        assert_eq!(BadgeId::parse("04:a1:b2 c3").unwrap().as_str(), "04A1B2C3");
        assert_eq!(
            BadgeId::parse("04-A1-B2-C3").unwrap(),
            BadgeId::parse("04a1b2c3").unwrap()
        );
        assert!(BadgeId::parse("").is_err());
        assert!(BadgeId::parse("04A1;").is_err());
        assert!(BadgeId::parse(&"A".repeat(65)).is_err());
        assert_eq!(
            format!("{:?}", BadgeId::parse("04A1").unwrap()),
            "BadgeId(..)"
        );
    }

    #[test]
    fn badges_are_normalised() {
        let n = |raw: &str| BadgeId::parse(raw).map(|b| b.as_str().to_string());
        assert_eq!(n("04:a1:b2 c3").unwrap(), "04A1B2C3");
        assert_eq!(n(" 0012-3456 ").unwrap(), "00123456");
        let e = n("x/y").unwrap_err().to_string();
        assert!(e.starts_with("badge id:"), "{e}");
        assert!(n(" : ").is_err());
    }
}
