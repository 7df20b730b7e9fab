//! Revocation reasons (RFC 5280 5.3.1 CRLReason), named as the RFC names them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

/// RFC 5280 CRLReason. `removeFromCRL` (8) only makes sense in delta CRLs and is not offered;
/// 7 is unassigned.
///
/// Shown, parsed and stored by its RFC name (`keyCompromise`), matched exactly (case included),
/// so the stored form is the one operators type and the one openssl's `-crl_reason` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// unspecified (0)
    Unspecified,
    /// keyCompromise (1)
    KeyCompromise,
    /// cACompromise (2)
    CaCompromise,
    /// affiliationChanged (3)
    AffiliationChanged,
    /// superseded (4)
    Superseded,
    /// cessationOfOperation (5)
    CessationOfOperation,
    /// certificateHold (6)
    CertificateHold,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn,
    /// aACompromise (10)
    AaCompromise,
}

/// Every reason with its RFC 5280 name and code.
const REASONS: &[(RevocationReason, &str, u8)] = &[
    (RevocationReason::Unspecified, "unspecified", 0),
    (RevocationReason::KeyCompromise, "keyCompromise", 1),
    (RevocationReason::CaCompromise, "cACompromise", 2),
    (
        RevocationReason::AffiliationChanged,
        "affiliationChanged",
        3,
    ),
    (RevocationReason::Superseded, "superseded", 4),
    (
        RevocationReason::CessationOfOperation,
        "cessationOfOperation",
        5,
    ),
    (RevocationReason::CertificateHold, "certificateHold", 6),
    (
        RevocationReason::PrivilegeWithdrawn,
        "privilegeWithdrawn",
        9,
    ),
    (RevocationReason::AaCompromise, "aACompromise", 10),
];

impl RevocationReason {
    /// The CRLReason code (RFC 5280 5.3.1): 0 to 10, never 7 or 8.
    pub fn code(self) -> u8 {
        REASONS
            .iter()
            .find(|(r, _, _)| *r == self)
            .map_or(0, |(_, _, c)| *c)
    }

    /// The reason of a CRLReason code (RFC 5280 5.3.1), `None` for 7, 8 and unknown codes.
    pub fn from_code(code: i32) -> Option<RevocationReason> {
        REASONS
            .iter()
            .find(|(_, _, c)| i32::from(*c) == code)
            .map(|(r, _, _)| *r)
    }

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub fn name(self) -> &'static str {
        REASONS
            .iter()
            .find(|(r, _, _)| *r == self)
            .map_or("unspecified", |(_, n, _)| n)
    }
}

impl FromStr for RevocationReason {
    type Err = ParseError;

    /// The RFC 5280 name, exactly.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        if text == "removeFromCRL" {
            return Err(ParseError(
                "removeFromCRL is for delta CRLs and cannot be used to revoke".into(),
            ));
        }
        REASONS
            .iter()
            .find(|(_, name, _)| *name == text)
            .map(|(r, _, _)| *r)
            .ok_or_else(|| {
                let names: Vec<&str> = REASONS.iter().map(|(_, n, _)| *n).collect();
                ParseError(format!(
                    "unknown revocation reason {text:?}: use one of {}",
                    names.join(", ")
                ))
            })
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for RevocationReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for RevocationReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_parse_by_rfc_name_and_code_and_refuse_remove_from_crl() {
        for (reason, name, code) in REASONS {
            assert_eq!(name.parse::<RevocationReason>().expect(name), *reason);
            assert_eq!(reason.to_string(), *name);
            assert_eq!(reason.code(), *code);
            assert_eq!(RevocationReason::from_code(i32::from(*code)), Some(*reason));
            let json = serde_json::to_string(reason).expect("serialize");
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<RevocationReason>(&json).expect("read"),
                *reason
            );
        }
        for text in ["removeFromCRL", "KeyCompromise", "keycompromise", "", "1"] {
            assert!(text.parse::<RevocationReason>().is_err(), "{text:?}");
        }
        for code in [7, 8, 11, -1] {
            assert_eq!(RevocationReason::from_code(code), None, "{code}");
        }
        assert!(serde_json::from_str::<RevocationReason>("\"removeFromCRL\"").is_err());
    }
}
