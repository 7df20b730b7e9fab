//! Certificate serial numbers: 159 bits from the CSPRNG, positive, at most 20 octets (RFC 5280 4.1.2.2).

use std::fmt;
use std::str::FromStr;

use openssl::asn1::Asn1Integer;
use openssl::bn::BigNum;

use crate::PkiError;

/// A certificate serial number, kept as its minimal big-endian magnitude and shown as lower-case hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// A fresh serial: 20 random octets with the top bit cleared, so the DER INTEGER is positive and
    /// never needs a 21st padding octet. 159 random bits is well above the 64 the CA/B Forum asks for,
    /// and nothing about the subject leaks into it (tiny-ca's serials carried the CN).
    pub fn random() -> Result<Self, PkiError> {
        loop {
            let mut bytes = [0u8; 20];
            openssl::rand::rand_bytes(&mut bytes)?;
            bytes[0] &= 0x7f;
            let serial = Serial::from_magnitude(&bytes);
            // An all-zero draw has probability 2^-159; a zero serial is invalid, so draw again.
            if !serial.0.is_empty() {
                return Ok(serial);
            }
        }
    }

    fn from_magnitude(bytes: &[u8]) -> Self {
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        Serial(bytes[first..].to_vec())
    }

    /// The big-endian magnitude without leading zeros.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn to_asn1(&self) -> Result<Asn1Integer, PkiError> {
        Ok(BigNum::from_slice(&self.0)?.to_asn1_integer()?)
    }

    pub(crate) fn from_openssl(value: &openssl::asn1::Asn1IntegerRef) -> Result<Self, PkiError> {
        let bn = value.to_bn()?;
        if bn.is_negative() {
            return Err(PkiError::InvalidParameter("negative serial".into()));
        }
        Ok(Serial::from_magnitude(&bn.to_vec()))
    }
}

impl FromStr for Serial {
    type Err = PkiError;

    /// Parses hex as printed by csrgate or openssl (colons and case are ignored).
    fn from_str(text: &str) -> Result<Self, PkiError> {
        let digits: String = text.chars().filter(|c| *c != ':').collect();
        let bad = || PkiError::InvalidParameter(format!("{text:?} is not a serial number in hex"));
        if digits.is_empty() || digits.len() > 42 {
            return Err(bad());
        }
        let padded = if digits.len() % 2 == 1 {
            format!("0{digits}")
        } else {
            digits
        };
        let bytes = hex::decode(padded).map_err(|_| bad())?;
        let serial = Serial::from_magnitude(&bytes);
        if serial.0.is_empty() || serial.0.len() > 20 {
            return Err(bad());
        }
        Ok(serial)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_and_fit_twenty_octets() {
        for _ in 0..2_000 {
            let serial = Serial::random().expect("rng");
            let der = serial.to_asn1().expect("asn1").to_bn().expect("bn");
            assert!(!der.is_negative());
            assert!(serial.as_bytes().len() <= 20);
            assert!(serial.as_bytes()[0] != 0);
            if serial.as_bytes().len() == 20 {
                assert!(serial.as_bytes()[0] < 0x80);
            }
        }
    }

    #[test]
    fn random_serials_do_not_repeat() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(Serial::random().expect("rng")));
        }
    }

    #[test]
    fn hex_round_trip_and_openssl_formats() {
        let serial: Serial = "00:0A:bc".parse().expect("hex");
        assert_eq!(serial.to_string(), "0abc");
        assert_eq!(serial.as_bytes(), &[0x0a, 0xbc]);
        let again: Serial = serial.to_string().parse().expect("hex");
        assert_eq!(again, serial);
    }

    #[test]
    fn refuses_bad_hex_zero_and_oversize() {
        for text in ["", "zz", "00", "0", &"1".repeat(43), "12 34"] {
            assert!(text.parse::<Serial>().is_err(), "{text:?}");
        }
        assert!("7f".repeat(21).parse::<Serial>().is_err());
    }
}
