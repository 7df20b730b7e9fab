//! Serial numbers csrgate generates (RFC 5280 4.1.2.2: 20 octets, positive), ordered by issuance
//! time and carrying 104 bits from the CSPRNG; and [`Serial`]'s conversion to openssl.

use std::time::{SystemTime, UNIX_EPOCH};

use csrgate_types::Serial;
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
///
/// # Errors
/// [`PkiError`] when the CSPRNG fails.
pub fn generate_serial() -> Result<Serial, PkiError> {
    let mut random = [0u8; RANDOM_OCTETS];
    openssl::rand::rand_bytes(&mut random)?;
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    Ok(from_parts(millis, &random))
}

/// The serial of [`generate_serial`] for a given time and random part.
fn from_parts(millis: u64, random: &[u8; RANDOM_OCTETS]) -> Serial {
    let mut bytes = Vec::with_capacity(SERIAL_OCTETS);
    bytes.push(SERIAL_LEAD);
    bytes.extend_from_slice(&millis.to_be_bytes()[8 - TIME_OCTETS..]);
    bytes.extend_from_slice(random);
    Serial::from_magnitude(&bytes).expect("20 octets led by 0x40 are a serial")
}

/// The serial as an openssl INTEGER.
pub(crate) fn to_asn1(serial: &Serial) -> Result<Asn1Integer, PkiError> {
    Ok(BigNum::from_slice(serial.magnitude())?.to_asn1_integer()?)
}

/// An openssl INTEGER as lower-case hex, for display: any value, RFC 5280's or not (a CA made
/// with `openssl req -x509 -set_serial 0` has serial 0, and csrgate still signs under it).
pub(crate) fn display_hex(value: &openssl::asn1::Asn1IntegerRef) -> Result<String, PkiError> {
    Ok(value.to_bn()?.to_hex_str()?.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_serials_are_positive_twenty_octets() {
        for _ in 0..2_000 {
            let serial = generate_serial().expect("rng");
            let der = to_asn1(&serial).expect("asn1").to_bn().expect("bn");
            assert!(!der.is_negative());
            assert_eq!(serial.magnitude().len(), SERIAL_OCTETS);
            assert_eq!(serial.to_string().len(), 2 * SERIAL_OCTETS);
            assert!(serial.magnitude()[0] < 0x80);
        }
    }

    #[test]
    fn generated_serials_do_not_repeat() {
        let mut seen = std::collections::HashSet::new();
        let mut random_parts = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let serial = generate_serial().expect("rng");
            assert!(random_parts.insert(serial.magnitude()[1 + TIME_OCTETS..].to_vec()));
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
            let earlier = from_parts(earlier_ms, &earlier_random);
            let later = from_parts(later_ms, &later_random);
            assert!(
                earlier.to_string() < later.to_string(),
                "{earlier} < {later}"
            );
            assert!(earlier < later);
            let millis = u64::from_be_bytes(
                [&[0, 0][..], &later.magnitude()[1..1 + TIME_OCTETS]]
                    .concat()
                    .try_into()
                    .expect("8 octets"),
            );
            assert_eq!(millis, later_ms);
        }
        let before = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
        let generated = generate_serial().expect("rng");
        let lower = from_parts(before.as_millis() as u64, &[0; RANDOM_OCTETS]);
        assert!(generated >= lower, "{generated} >= {lower}");
    }
}
