//! Subject alternative names, parsed into types and checked, then re-encoded by csrgate itself.
//! ssl_api dropped SANs; here every SAN of the CSR is either carried over or refused with a reason.

use std::fmt;
use std::net::IpAddr;

use crate::PkiError;
use crate::der_writer;

/// One subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectAltName {
    /// A DNS name (`dNSName`), LDH labels, optionally starting with `*.`.
    Dns(String),
    /// An IPv4 or IPv6 address (`iPAddress`).
    Ip(IpAddr),
    /// An e-mail address (`rfc822Name`).
    Email(String),
    /// A URI (`uniformResourceIdentifier`), e.g. a SPIFFE ID.
    Uri(String),
}

impl SubjectAltName {
    /// A DNS name: 1..=253 ASCII characters in labels of 1..=63 letters, digits, `-` or `_`;
    /// the first label may be `*`.
    pub fn dns(name: &str) -> Result<Self, PkiError> {
        let bad = |why: &str| PkiError::InvalidCsr(format!("DNS SAN {name:?}: {why}"));
        if name.is_empty() || name.len() > 253 {
            return Err(bad("length must be 1 to 253"));
        }
        for (i, label) in name.split('.').enumerate() {
            if i == 0 && label == "*" {
                continue;
            }
            if label.is_empty() || label.len() > 63 {
                return Err(bad("every label must be 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad("only letters, digits, '-' and '_' are allowed"));
            }
        }
        Ok(SubjectAltName::Dns(name.to_owned()))
    }

    /// An e-mail address: printable ASCII without spaces, one `@` with text on both sides.
    pub fn email(address: &str) -> Result<Self, PkiError> {
        let printable = address.bytes().all(|b| b.is_ascii_graphic());
        let parts: Vec<&str> = address.split('@').collect();
        if address.len() > 254
            || !printable
            || parts.len() != 2
            || parts.iter().any(|p| p.is_empty())
        {
            return Err(PkiError::InvalidCsr(format!(
                "email SAN {address:?} is not a plain ASCII address"
            )));
        }
        Ok(SubjectAltName::Email(address.to_owned()))
    }

    /// A URI: printable ASCII without spaces, at most 2048 characters, with a scheme.
    pub fn uri(uri: &str) -> Result<Self, PkiError> {
        let scheme_ok = uri.split_once(':').is_some_and(|(scheme, _)| {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        });
        if uri.len() > 2048 || !uri.bytes().all(|b| b.is_ascii_graphic()) || !scheme_ok {
            return Err(PkiError::InvalidCsr(format!(
                "URI SAN {uri:?} is not an ASCII URI with a scheme"
            )));
        }
        Ok(SubjectAltName::Uri(uri.to_owned()))
    }

    /// An IP address from its 4- or 16-octet encoding.
    pub fn ip_from_octets(octets: &[u8]) -> Result<Self, PkiError> {
        match octets.len() {
            4 => {
                let mut a = [0u8; 4];
                a.copy_from_slice(octets);
                Ok(SubjectAltName::Ip(IpAddr::from(a)))
            }
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(octets);
                Ok(SubjectAltName::Ip(IpAddr::from(a)))
            }
            n => Err(PkiError::InvalidCsr(format!(
                "IP SAN of {n} octets: must be 4 or 16"
            ))),
        }
    }

    /// Parses the `TYPE:value` form that [`fmt::Display`] writes (`DNS:`, `IP:`, `email:`, `URI:`).
    pub fn parse_tagged(text: &str) -> Result<Self, PkiError> {
        let (kind, value) = text.split_once(':').ok_or_else(|| {
            PkiError::InvalidParameter(format!("SAN {text:?} must look like DNS:name"))
        })?;
        match kind {
            "DNS" => Self::dns(value),
            "email" => Self::email(value),
            "URI" => Self::uri(value),
            "IP" => value.parse().map(SubjectAltName::Ip).map_err(|_| {
                PkiError::InvalidParameter(format!("SAN {text:?} is not an IP address"))
            }),
            _ => Err(PkiError::InvalidParameter(format!(
                "SAN type {kind:?} is not one of DNS, IP, email, URI"
            ))),
        }
    }

    fn push_general_name(&self, out: &mut Vec<u8>) {
        match self {
            SubjectAltName::Email(v) => der_writer::push_tlv(out, 0x81, v.as_bytes()),
            SubjectAltName::Dns(v) => der_writer::push_tlv(out, 0x82, v.as_bytes()),
            SubjectAltName::Uri(v) => der_writer::push_tlv(out, 0x86, v.as_bytes()),
            SubjectAltName::Ip(IpAddr::V4(a)) => der_writer::push_tlv(out, 0x87, &a.octets()),
            SubjectAltName::Ip(IpAddr::V6(a)) => der_writer::push_tlv(out, 0x87, &a.octets()),
        }
    }
}

/// The DER of a GeneralNames SEQUENCE, the value of a subjectAltName extension.
pub(crate) fn general_names_der(names: &[SubjectAltName]) -> Vec<u8> {
    let mut content = Vec::new();
    for name in names {
        name.push_general_name(&mut content);
    }
    der_writer::sequence(&content)
}

impl fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectAltName::Dns(v) => write!(f, "DNS:{v}"),
            SubjectAltName::Ip(v) => write!(f, "IP:{v}"),
            SubjectAltName::Email(v) => write!(f, "email:{v}"),
            SubjectAltName::Uri(v) => write!(f, "URI:{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        for ok in [
            "app.internal",
            "*.example.org",
            "a",
            "xn--bcher-kva.example",
            "_svc.x",
        ] {
            SubjectAltName::dns(ok).expect(ok);
        }
        let long_label = "a".repeat(64);
        for bad in [
            "",
            "a..b",
            "a.*.b",
            "a b",
            "a,IP:1.2.3.4",
            "é.example",
            "a\0b",
            &long_label,
        ] {
            assert!(SubjectAltName::dns(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_uris_and_ips() {
        SubjectAltName::email("ops@example.org").expect("email");
        assert!(SubjectAltName::email("no-at").is_err());
        assert!(SubjectAltName::email("a@b@c").is_err());
        assert!(SubjectAltName::email("a b@c").is_err());
        SubjectAltName::uri("spiffe://example.org/ns/a").expect("uri");
        assert!(SubjectAltName::uri("no scheme").is_err());
        assert!(SubjectAltName::uri("1http://x").is_err());
        assert!(SubjectAltName::ip_from_octets(&[10, 0, 0, 7]).is_ok());
        assert!(SubjectAltName::ip_from_octets(&[0; 16]).is_ok());
        assert!(SubjectAltName::ip_from_octets(&[1, 2, 3]).is_err());
    }

    #[test]
    fn tagged_form_round_trips() {
        for text in [
            "DNS:a.example",
            "IP:10.0.0.7",
            "IP:::1",
            "email:a@b.c",
            "URI:https://x/y",
        ] {
            let san = SubjectAltName::parse_tagged(text).expect(text);
            assert_eq!(san.to_string(), text);
        }
    }

    #[test]
    fn general_names_encoding() {
        let der = general_names_der(&[
            SubjectAltName::Dns("ab".into()),
            SubjectAltName::Ip(IpAddr::from([10, 0, 0, 7])),
        ]);
        assert_eq!(
            der,
            vec![0x30, 0x0a, 0x82, 0x02, b'a', b'b', 0x87, 0x04, 10, 0, 0, 7]
        );
    }
}
