//! Certificate serial numbers: 20 octets, positive (RFC 5280 4.1.2.2), ordered by issuance time
//! and carrying 104 bits from the CSPRNG.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Integer;
use openssl::bn::BigNum;

use crate::PkiError;

/// Octets of a serial csrgate generates.
const SERIAL_OCTETS: usize = 20;
/// Its first octet: nonzero (fixed width) with the top bit clear (positive).
const SERIAL_LEAD: u8 = 0x40;
/// Octets of issuance time, in milliseconds (2^48 ms: beyond the year 10,000).
const TIME_OCTETS: usize = 6;
/// Octets from the CSPRNG.
const RANDOM_OCTETS: usize = SERIAL_OCTETS - 1 - TIME_OCTETS;

/// A certificate serial number, kept as its minimal big-endian magnitude and shown as lower-case hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// A fresh serial: the octet `0x40`, the issuance time in milliseconds since the Unix epoch
    /// (6 octets, big-endian), then 13 octets (104 bits) from the CSPRNG.
    ///
    /// Why this layout: the store keys certificates by serial, and a random key sends every new
    /// certificate to a random leaf of that tree, so the whole tree becomes the working set and
    /// each issuance reads a leaf back from disk once the store outgrows its cache
    /// (docs/decisions/0012-time-first-serials.md). Time first keeps new certificates at the
    /// tree's right edge. The leading `0x40` makes every serial exactly 20 octets (40 hex digits,
    /// so the store's text keys sort like the numbers) and keeps the top bit clear (the DER
    /// INTEGER is positive without a 21st octet). 104 random bits are well above the 64 the
    /// CA/B Forum asks for, so serials stay unpredictable and non-sequential; nothing about the
    /// subject goes into them (tiny-ca's serials carried the CN), and the time they show is the
    /// one the certificate's notBefore already tells.
    pub fn generate() -> Result<Self, PkiError> {
        let mut random = [0u8; RANDOM_OCTETS];
        openssl::rand::rand_bytes(&mut random)?;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        Ok(Serial::from_parts(millis, &random))
    }

    /// The serial of [`Serial::generate`] for a given time and random part.
    fn from_parts(millis: u64, random: &[u8; RANDOM_OCTETS]) -> Self {
        let mut bytes = Vec::with_capacity(SERIAL_OCTETS);
        bytes.push(SERIAL_LEAD);
        bytes.extend_from_slice(&millis.to_be_bytes()[8 - TIME_OCTETS..]);
        bytes.extend_from_slice(random);
        Serial(bytes)
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
    fn generated_serials_are_positive_twenty_octets() {
        for _ in 0..2_000 {
            let serial = Serial::generate().expect("rng");
            let der = serial.to_asn1().expect("asn1").to_bn().expect("bn");
            assert!(!der.is_negative());
            assert_eq!(serial.as_bytes().len(), SERIAL_OCTETS);
            assert_eq!(serial.to_string().len(), 2 * SERIAL_OCTETS);
            assert!(serial.as_bytes()[0] < 0x80);
        }
    }

    #[test]
    fn generated_serials_do_not_repeat() {
        let mut seen = std::collections::HashSet::new();
        let mut random_parts = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let serial = Serial::generate().expect("rng");
            assert!(random_parts.insert(serial.as_bytes()[1 + TIME_OCTETS..].to_vec()));
            assert!(seen.insert(serial));
        }
    }

    #[test]
    fn serials_sort_by_issuance_time_as_text_and_as_numbers() {
        // The store's keys are the hex text: a later millisecond must sort after an earlier one
        // whatever the random parts, and the time must be readable back from the serial.
        let now = 1_795_000_000_000_u64;
        let cases = [
            (now, [0xff; RANDOM_OCTETS], now + 1, [0x00; RANDOM_OCTETS]),
            (0, [0xff; RANDOM_OCTETS], 1, [0x00; RANDOM_OCTETS]),
            (now, [0x00; RANDOM_OCTETS], now, [0x01; RANDOM_OCTETS]),
            (
                0xff_ffff_ffff,
                [0x7f; RANDOM_OCTETS],
                0x100_0000_0000,
                [0; RANDOM_OCTETS],
            ),
        ];
        for (earlier_ms, earlier_random, later_ms, later_random) in cases {
            let earlier = Serial::from_parts(earlier_ms, &earlier_random);
            let later = Serial::from_parts(later_ms, &later_random);
            assert!(
                earlier.to_string() < later.to_string(),
                "{earlier} < {later}"
            );
            assert!(earlier < later);
            let millis = u64::from_be_bytes(
                [&[0, 0][..], &later.as_bytes()[1..1 + TIME_OCTETS]]
                    .concat()
                    .try_into()
                    .expect("8 octets"),
            );
            assert_eq!(millis, later_ms);
        }
        let before = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
        let generated = Serial::generate().expect("rng");
        let lower = Serial::from_parts(before.as_millis() as u64, &[0; RANDOM_OCTETS]);
        assert!(generated >= lower, "{generated} >= {lower}");
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
