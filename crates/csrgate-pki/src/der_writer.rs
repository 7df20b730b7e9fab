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
