//! Certificate serial numbers (RFC 5280 4.1.2.2): a positive INTEGER of at most 20 octets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

/// Most octets a serial may have (RFC 5280 4.1.2.2).
pub const MAX_SERIAL_OCTETS: usize = 20;

/// A certificate serial number, kept as its big-endian magnitude without leading zero octets
/// (never empty, at most 20 octets) and shown as lower-case hex, two digits per octet
/// (`0abc` for 0x0ABC).
///
/// The shown form is also the stored one (serde) and the store's key, so two spellings of one
/// number can never be two records: parse accepts openssl's spellings (colons, upper case, odd
/// length), deserialize accepts only the shown form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// The serial whose big-endian magnitude is `bytes` (leading zero octets are dropped).
    ///
    /// # Errors
    /// Zero, and more than 20 significant octets.
    pub fn from_magnitude(bytes: &[u8]) -> Result<Self, ParseError> {
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let significant = &bytes[first..];
        if significant.is_empty() {
            return Err(ParseError(
                "a serial number is positive; 0 is not one".into(),
            ));
        }
        if significant.len() > MAX_SERIAL_OCTETS {
            return Err(ParseError(format!(
                "a serial number has at most {MAX_SERIAL_OCTETS} octets; this one has {}",
                significant.len()
            )));
        }
        Ok(Serial(significant.to_vec()))
    }

    /// The big-endian magnitude without leading zeros (1 to 20 octets).
    pub fn magnitude(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for Serial {
    type Err = ParseError;

    /// Parses hex as printed by csrgate or openssl (colons and case are ignored).
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let digits: String = text.chars().filter(|c| *c != ':').collect();
        let bad = || ParseError(format!("{text:?} is not a serial number in hex"));
        if digits.is_empty() || digits.len() > 2 * MAX_SERIAL_OCTETS + 2 {
            return Err(bad());
        }
        let padded = if digits.len() % 2 == 1 {
            format!("0{digits}")
        } else {
            digits
        };
        let bytes = hex::decode(padded).map_err(|_| bad())?;
        Serial::from_magnitude(&bytes).map_err(|_| bad())
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({self})")
    }
}

impl Serialize for Serial {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Serial {
    /// Only the shown form: lower-case hex, two digits per octet, no leading zero octet.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let serial: Serial = text.parse().map_err(serde::de::Error::custom)?;
        if serial.to_string() != text {
            return Err(serde::de::Error::custom(format!(
                "{text:?} is not a serial in its stored form ({serial})"
            )));
        }
        Ok(serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssl_spellings_and_shows_one_form() {
        let cases = [
            ("00:0A:bc", "0abc", &[0x0a, 0xbc][..]),
            ("abc", "0abc", &[0x0a, 0xbc]),
            ("0001", "01", &[0x01]),
            ("7F", "7f", &[0x7f]),
            ("80", "80", &[0x80]),
        ];
        for (text, shown, bytes) in cases {
            let serial: Serial = text.parse().expect(text);
            assert_eq!(serial.to_string(), shown, "{text}");
            assert_eq!(serial.magnitude(), bytes, "{text}");
            assert_eq!(shown.parse::<Serial>().expect(shown), serial);
        }
    }

    #[test]
    fn refuses_bad_hex_zero_and_oversize() {
        let twenty_one = "7f".repeat(21);
        for text in [
            "",
            "zz",
            "00",
            "0",
            &"1".repeat(43),
            "12 34",
            ":",
            &twenty_one,
        ] {
            assert!(text.parse::<Serial>().is_err(), "{text:?}");
        }
        assert!("7f".repeat(20).parse::<Serial>().is_ok());
        assert!(Serial::from_magnitude(&[0; 4]).is_err());
        assert_eq!(
            Serial::from_magnitude(&[0, 0, 1]).expect("one"),
            Serial::from_magnitude(&[1]).expect("one")
        );
    }

    #[test]
    fn stored_form_round_trips_and_is_the_only_one_read() {
        let serial: Serial = "40:01".parse().expect("hex");
        let json = serde_json::to_string(&serial).expect("serialize");
        assert_eq!(json, "\"4001\"");
        assert_eq!(serde_json::from_str::<Serial>(&json).expect("read"), serial);
        for other in [
            "\"4:01\"",
            "\"4001 \"",
            "\"40:01\"",
            "\"401\"",
            "\"004001\"",
            "\"4A01\"",
            "1",
        ] {
            assert!(serde_json::from_str::<Serial>(other).is_err(), "{other}");
        }
    }
}
