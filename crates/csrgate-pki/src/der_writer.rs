//! The few DER encodings csrgate writes itself (GeneralNames), so that attacker-chosen strings are
//! never pasted into an openssl config string where a comma could smuggle in another entry.

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

/// id-ad-ocsp (1.3.6.1.5.5.7.48.1) and id-ad-caIssuers (1.3.6.1.5.5.7.48.2), DER-encoded.
const ID_AD_OCSP: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
const ID_AD_CA_ISSUERS: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];

/// The DER of an AuthorityInfoAccessSyntax value (RFC 5280 4.2.2.1).
pub(crate) fn authority_info_access(ocsp: &[String], ca_issuers: &[String]) -> Vec<u8> {
    let mut descriptions = Vec::new();
    for (method, uris) in [(ID_AD_OCSP, ocsp), (ID_AD_CA_ISSUERS, ca_issuers)] {
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
}
