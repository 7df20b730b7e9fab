//! Subject alternative names, parsed into types and checked, then re-encoded by csrgate itself.
//! ssl_api dropped SANs; here every SAN of the CSR is either carried over or refused with a reason.

use std::fmt;
use std::net::IpAddr;

use crate::PkiError;
use crate::der_writer;

/// One subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
    /// A DNS name (`dNSName`, RFC 5280 4.2.1.6 with RFC 1034/1123 syntax): 1..=253 ASCII
    /// characters in labels of 1..=63 letters, digits, `-` (not first or last) or `_`. A
    /// wildcard is only the whole left-most label of a longer name (`*.example.com`; `*`,
    /// `a*.example.com` and `*.*.example.com` are refused; how many labels must follow is
    /// [`check_wildcards`]'s policy). Internationalised names only as A-labels (`xn--`,
    /// RFC 5890), which must decode. Errors are [`PkiError::InvalidCsr`] naming the SAN.
    pub fn dns(name: &str) -> Result<Self, PkiError> {
        let bad = |why: &str| PkiError::InvalidCsr(format!("DNS SAN {name:?}: {why}"));
        if name.is_empty() || name.len() > 253 {
            return Err(bad("length must be 1 to 253"));
        }
        let unqualified = name.strip_prefix("*.").unwrap_or(name);
        if name.contains('*') && (unqualified.contains('*') || unqualified == name) {
            return Err(bad(
                "a wildcard is only the whole left-most label of a longer name, as in *.example.com",
            ));
        }
        let mut has_a_label = false;
        for label in unqualified.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(bad("every label must be 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad(
                    "only letters, digits, '-' and '_' are allowed (write an international name \
                     as its xn-- A-label)",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("a label may not start or end with '-'"));
            }
            has_a_label |= label.len() > 4 && label[..4].eq_ignore_ascii_case("xn--");
        }
        if has_a_label && idna::domain_to_unicode(unqualified).1.is_err() {
            return Err(bad("an xn-- label is not a valid IDNA A-label"));
        }
        Ok(SubjectAltName::Dns(name.to_owned()))
    }

    /// The SAN a certificate gets for a request without SANs: its commonName when that is an
    /// IP address or a DNS name (what step-ca, Vault and Boulder do, since names live in the
    /// SAN: RFC 6125, RFC 2818); `None` for a CN that is not meant as a host name (it has
    /// white space, or neither a dot nor a `*`: a person's name). A CN meant as a host name that
    /// the DNS grammar refuses (`*`, `a*.example.com`) is an error, so that no client reading
    /// the CN matches a name no SAN could carry.
    pub(crate) fn from_common_name(common_name: &str) -> Result<Option<Self>, PkiError> {
        if let Ok(ip) = common_name.parse::<IpAddr>() {
            return Ok(Some(SubjectAltName::Ip(ip)));
        }
        let host_like = !common_name.contains(char::is_whitespace)
            && (common_name.contains('.') || common_name.contains('*'));
        match Self::dns(common_name) {
            Ok(san) => Ok(Some(san)),
            Err(PkiError::InvalidCsr(why)) if host_like => Err(PkiError::InvalidCsr(format!(
                "the CN is a host name, and as the request has no SAN it becomes one: {why}"
            ))),
            Err(_) => Ok(None),
        }
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

/// Refuses a wildcard DNS SAN whose `*` stands for a label directly under a top-level name
/// (`*.internal`, `*.com`) unless `policy.allow_single_label_wildcards`: by default a wildcard
/// needs at least two labels after it. The grammar itself is [`SubjectAltName::dns`]'s.
pub(crate) fn check_wildcards(
    names: &[SubjectAltName],
    policy: &crate::SigningPolicy,
) -> Result<(), String> {
    if policy.allow_single_label_wildcards {
        return Ok(());
    }
    for name in names {
        if let SubjectAltName::Dns(dns) = name
            && let Some(rest) = dns.strip_prefix("*.")
            && !rest.contains('.')
        {
            return Err(format!(
                "DNS SAN {dns:?}: a wildcard needs at least two labels after it, as in \
                 *.example.com (an operator can allow *.{rest} with \
                 signing.allow_single_label_wildcards)"
            ));
        }
    }
    Ok(())
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

    /// The DNS SAN grammar, one row per rule: (name, accepted, text the refusal contains).
    #[test]
    fn dns_names() {
        let long_label = "a".repeat(64);
        let long_name = ["a".repeat(63).as_str(); 4].join(".") + ".ab"; // 255 characters
        let cases: Vec<(&str, bool, &str)> = vec![
            ("app.internal", true, ""),
            ("localhost", true, ""),
            ("*.example.org", true, ""),
            ("*.internal", true, ""), // grammar only; check_wildcards decides
            ("xn--bcher-kva.example", true, ""),
            ("_svc.x", true, ""),
            ("*", false, "wildcard"),
            ("a*.example.com", false, "wildcard"),
            ("*.*.example.com", false, "wildcard"),
            ("a.*.b", false, "wildcard"),
            ("*a.example.com", false, "wildcard"),
            ("", false, "length"),
            (&long_name, false, "length"),
            ("a..b", false, "1 to 63"),
            ("example.com.", false, "1 to 63"),
            (&long_label, false, "1 to 63"),
            ("a b", false, "only letters"),
            ("a,IP:1.2.3.4", false, "only letters"),
            ("é.example", false, "A-label"),
            ("a\0b", false, "only letters"),
            ("-a.example", false, "start or end"),
            ("a-.example", false, "start or end"),
            ("xn--a.example", false, "not a valid IDNA A-label"),
        ];
        for (name, accepted, message) in cases {
            let result = SubjectAltName::dns(name);
            assert_eq!(result.is_ok(), accepted, "{name:?}: {result:?}");
            if let Err(error) = result {
                assert!(error.to_string().contains(message), "{name:?}: {error}");
            }
        }
    }

    #[test]
    fn one_label_wildcards_need_the_operator() {
        let strict = crate::SigningPolicy::default();
        let lenient = crate::SigningPolicy {
            allow_single_label_wildcards: true,
            ..strict.clone()
        };
        let one = [SubjectAltName::dns("*.internal").expect("grammar")];
        let two = [SubjectAltName::dns("*.example.com").expect("grammar")];
        assert!(check_wildcards(&one, &strict).is_err());
        assert!(check_wildcards(&one, &lenient).is_ok());
        assert!(check_wildcards(&two, &strict).is_ok());
    }

    /// (CN, the SAN it becomes, or the refusal's text).
    #[test]
    fn common_names_that_become_sans() {
        let cases: [(&str, Result<Option<&str>, &str>); 9] = [
            ("localhost", Ok(Some("DNS:localhost"))),
            ("app.example.com", Ok(Some("DNS:app.example.com"))),
            ("*.example.com", Ok(Some("DNS:*.example.com"))),
            ("10.0.0.7", Ok(Some("IP:10.0.0.7"))),
            ("::1", Ok(Some("IP:::1"))),
            ("Jane Doe", Ok(None)),
            ("Zoë", Ok(None)),
            ("*", Err("wildcard")),
            ("a*.example.com", Err("wildcard")),
        ];
        for (cn, want) in cases {
            let got = SubjectAltName::from_common_name(cn)
                .map(|s| s.map(|s| s.to_string()))
                .map_err(|e| e.to_string());
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got.as_deref(), want, "{cn}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{cn}: {got}"),
                (got, want) => panic!("{cn}: got {got:?}, want {want:?}"),
            }
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
