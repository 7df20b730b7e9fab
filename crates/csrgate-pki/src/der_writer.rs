//! The DER csrgate writes itself: certificate and CRL bodies and their extensions. Attacker-chosen
//! strings are never pasted into an openssl config string where a comma could smuggle in another
//! entry, and no openssl object is allocated per field.

use time::OffsetDateTime;

/// Appends a DER length.
fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
}

/// Appends one TLV.
pub(crate) fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_length(out, content.len());
    out.extend_from_slice(content);
}

/// Wraps content in a SEQUENCE.
pub(crate) fn sequence(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    push_tlv(&mut out, 0x30, content);
    out
}

/// Appends a Time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5).
pub(crate) fn push_time(out: &mut Vec<u8>, time: OffsetDateTime) {
    let t = time.to_offset(time::UtcOffset::UTC);
    if (1950..2050).contains(&t.year()) {
        let text = format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}Z",
            t.year() % 100,
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        push_tlv(out, 0x17, text.as_bytes());
    } else {
        push_generalized_time(out, t);
    }
}

/// Appends a GeneralizedTime (UTC, whole seconds).
pub(crate) fn push_generalized_time(out: &mut Vec<u8>, time: OffsetDateTime) {
    let t = time.to_offset(time::UtcOffset::UTC);
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    push_tlv(out, 0x18, text.as_bytes());
}

/// Appends a non-negative INTEGER given its big-endian magnitude.
pub(crate) fn push_unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let mut content = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(magnitude);
    push_tlv(out, 0x02, &content);
}

/// The shortest big-endian form of a number (at least one byte).
pub(crate) fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    &bytes[first..]
}

/// Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }.
/// `oid_der` is the whole OBJECT IDENTIFIER TLV.
pub(crate) fn push_extension(out: &mut Vec<u8>, oid_der: &[u8], critical: bool, value: &[u8]) {
    let mut content = Vec::with_capacity(oid_der.len() + value.len() + 8);
    content.extend_from_slice(oid_der);
    if critical {
        content.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    push_tlv(&mut content, 0x04, value);
    push_tlv(out, 0x30, &content);
}

/// The OBJECT IDENTIFIER TLV of a dotted OID, or `None` when it is not one (fewer than two arcs,
/// a first arc above 2, a second above 39 under 0 or 1, an empty or non-decimal arc).
pub(crate) fn oid(dotted: &str) -> Option<Vec<u8>> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|arc| {
            (!arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()) && arc.len() < 19)
                .then(|| arc.parse().ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    let (&first, &second) = (arcs.first()?, arcs.get(1)?);
    if first > 2 || (first < 2 && second > 39) {
        return None;
    }
    let mut content = Vec::new();
    for arc in std::iter::once(first * 40 + second).chain(arcs[2..].iter().copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        content.extend(groups.iter().rev());
    }
    let mut out = Vec::with_capacity(content.len() + 2);
    push_tlv(&mut out, 0x06, &content);
    Some(out)
}

/// The DER of a CRLDistributionPoints value: one DistributionPoint per URI, each a fullName
/// holding that URI (RFC 5280 4.2.1.13).
pub(crate) fn crl_distribution_points(uris: &[String]) -> Vec<u8> {
    let mut points = Vec::new();
    for uri in uris {
        let mut general_name = Vec::new();
        push_tlv(&mut general_name, 0x86, uri.as_bytes());
        let mut full_name = Vec::new();
        push_tlv(&mut full_name, 0xa0, &general_name); // fullName [0] IMPLICIT GeneralNames
        let mut point_name = Vec::new();
        push_tlv(&mut point_name, 0xa0, &full_name); // distributionPoint [0] (a CHOICE: explicit)
        push_tlv(&mut points, 0x30, &point_name);
    }
    sequence(&points)
}

/// The DER of an AuthorityInfoAccessSyntax value (RFC 5280 4.2.2.1).
pub(crate) fn authority_info_access(ocsp: &[String], ca_issuers: &[String]) -> Vec<u8> {
    let mut descriptions = Vec::new();
    for (method, uris) in [
        (crate::oid::AD_OCSP, ocsp),
        (crate::oid::AD_CA_ISSUERS, ca_issuers),
    ] {
        for uri in uris {
            let mut description = method.to_vec();
            push_tlv(&mut description, 0x86, uri.as_bytes());
            push_tlv(&mut descriptions, 0x30, &description);
        }
    }
    sequence(&descriptions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_short_and_long_forms() {
        let cases: [(usize, &[u8]); 5] = [
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x81, 0x80]),
            (255, &[0x81, 0xff]),
            (256, &[0x82, 0x01, 0x00]),
        ];
        for (len, want) in cases {
            let mut out = Vec::new();
            push_length(&mut out, len);
            assert_eq!(out, want, "length {len}");
        }
    }

    #[test]
    fn sequence_wraps_content() {
        assert_eq!(
            sequence(&[0x82, 0x01, b'a']),
            vec![0x30, 0x03, 0x82, 0x01, b'a']
        );
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        let mut out = Vec::new();
        push_time(&mut out, time::macros::datetime!(2049-12-31 23:59:59 UTC));
        assert_eq!(out[0], 0x17);
        assert_eq!(&out[2..], b"491231235959Z");
        out.clear();
        push_time(&mut out, time::macros::datetime!(2050-01-01 00:00:00 UTC));
        assert_eq!(out[0], 0x18);
        assert_eq!(&out[2..], b"20500101000000Z");
    }

    #[test]
    fn integers_stay_positive() {
        let mut out = Vec::new();
        push_unsigned_integer(&mut out, &[0x80]);
        assert_eq!(out, vec![0x02, 0x02, 0x00, 0x80]);
        out.clear();
        push_unsigned_integer(&mut out, trim_leading_zeros(&1u64.to_be_bytes()));
        assert_eq!(out, vec![0x02, 0x01, 0x01]);
    }

    #[test]
    fn oids_encode_as_openssl_does() {
        for dotted in [
            "2.5.29.17",
            "1.3.6.1.5.5.7.1.1",
            "1.2.840.113549.1.1.11",
            "2.999.3",
            "1.3.6.1.4.1.99999.1",
        ] {
            let ours = oid(dotted).expect(dotted);
            let theirs = openssl::asn1::Asn1Object::from_str(dotted).expect(dotted);
            assert_eq!(&ours[2..], theirs.as_slice(), "{dotted}");
        }
        for bad in [
            "",
            "1",
            "3.1",
            "1.40",
            "1..2",
            "1.2.x",
            "1.2.-3",
            "1.2.99999999999999999999",
        ] {
            assert!(oid(bad).is_none(), "{bad:?}");
        }
    }
}
