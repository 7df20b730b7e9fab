//! The client hash of `PUT /<client_hash>`: 1 to 128 ASCII letters or digits, nothing else.

use std::fmt;

/// A client hash that matched `^[A-Za-z0-9]{1,128}$`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientHash(String);

impl ClientHash {
    /// Parses a path segment; `None` for anything that is not 1..=128 ASCII alphanumerics.
    pub fn parse(segment: &str) -> Option<Self> {
        let ok = (1..=128).contains(&segment.len())
            && segment.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| ClientHash(segment.to_owned()))
    }

    /// The hash as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::ClientHash;

    #[test]
    fn accepts_only_short_ascii_alphanumerics() {
        let longest = "a".repeat(128);
        for ok in ["abc123", "A", "Z9", longest.as_str()] {
            assert!(ClientHash::parse(ok).is_some(), "{ok}");
        }
        let too_long = "a".repeat(129);
        for bad in [
            "",
            "a/b",
            "..",
            "ab-c",
            "a b",
            "é",
            "a%41",
            "abc\0",
            too_long.as_str(),
        ] {
            assert!(ClientHash::parse(bad).is_none(), "{bad:?}");
        }
    }
}
