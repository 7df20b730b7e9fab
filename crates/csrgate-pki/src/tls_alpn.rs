//! What an ACME tls-alpn-01 validation certificate must carry (RFC 8737 3): exactly the one
//! identifier being validated as its subjectAltName, and the critical `id-pe-acmeIdentifier`
//! extension holding SHA-256 of the key authorization.

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;

/// `id-pe-acmeIdentifier` (RFC 8737 6.1).
const ACME_IDENTIFIER: &str = "1.3.6.1.5.5.7.1.31";

/// An identifier a tls-alpn-01 certificate names (RFC 8737 3; IP addresses per RFC 8738 6).
#[derive(Clone, Copy, Debug)]
pub enum AlpnIdentifier<'a> {
    /// A DNS name, compared without regard to ASCII case.
    Dns(&'a str),
    /// An IP address, compared as octets.
    Ip(IpAddr),
}

/// Checks the certificate (DER) a tls-alpn-01 responder presented for `identifier` against
/// SHA-256 of the key authorization (RFC 8555 8.1).
///
/// # Errors
/// A message for the ACME problem's detail: what the certificate lacks or has wrong.
pub fn check_tls_alpn_certificate(
    der: &[u8],
    identifier: AlpnIdentifier<'_>,
    key_authorization_sha256: &[u8; 32],
) -> Result<(), String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let names = certificate
        .subject_alternative_name()
        .map_err(|e| format!("its subjectAltName does not parse: {e}"))?
        .ok_or("it has no subjectAltName")?;
    let [name] = names.value.general_names.as_slice() else {
        return Err("its subjectAltName must hold exactly the identifier validated".into());
    };
    let matches = match (name, identifier) {
        (GeneralName::DNSName(found), AlpnIdentifier::Dns(wanted)) => {
            found.eq_ignore_ascii_case(wanted)
        }
        (GeneralName::IPAddress(found), AlpnIdentifier::Ip(IpAddr::V4(wanted))) => {
            *found == wanted.octets()
        }
        (GeneralName::IPAddress(found), AlpnIdentifier::Ip(IpAddr::V6(wanted))) => {
            *found == wanted.octets()
        }
        _ => false,
    };
    if !matches {
        return Err("its subjectAltName names another identifier than the one validated".into());
    }
    let extension = certificate
        .extensions()
        .iter()
        .find(|extension| extension.oid.to_id_string() == ACME_IDENTIFIER)
        .ok_or("it has no acmeIdentifier extension (1.3.6.1.5.5.7.1.31)")?;
    if !extension.critical {
        return Err("its acmeIdentifier extension must be critical".into());
    }
    // The extension's value is the DER of an OCTET STRING of 32 octets.
    let mut expected = vec![0x04, 0x20];
    expected.extend_from_slice(key_authorization_sha256);
    if extension.value != expected.as_slice() {
        return Err(
            "its acmeIdentifier does not hold SHA-256 of this challenge's key authorization".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509, X509Extension};

    /// A self-signed certificate as a tls-alpn-01 responder makes it: `san` (openssl's
    /// syntax, e.g. `DNS:a.test`) and, when given, the acmeIdentifier extension's DER value.
    fn responder_certificate(san: &str, acme: Option<(&[u8], bool)>) -> Vec<u8> {
        let key = PKey::ec_gen("prime256v1").expect("key");
        let mut builder = X509::builder().expect("builder");
        builder.set_version(2).expect("version");
        builder.set_pubkey(&key).expect("pubkey");
        builder
            .set_not_before(&Asn1Time::days_from_now(0).expect("t"))
            .expect("nb");
        builder
            .set_not_after(&Asn1Time::days_from_now(1).expect("t"))
            .expect("na");
        let mut alt = SubjectAlternativeName::new();
        for name in san.split(',') {
            match name.split_once(':') {
                Some(("DNS", dns)) => alt.dns(dns),
                Some(("IP", ip)) => alt.ip(ip),
                _ => panic!("{name}"),
            };
        }
        let context = builder.x509v3_context(None, None);
        let alt = alt.build(&context).expect("san");
        builder.append_extension(alt).expect("append");
        if let Some((value, critical)) = acme {
            let oid = openssl::asn1::Asn1Object::from_str(ACME_IDENTIFIER).expect("oid");
            let value = openssl::asn1::Asn1OctetString::new_from_bytes(value).expect("value");
            let extension = X509Extension::new_from_der(&oid, critical, &value).expect("extension");
            builder.append_extension(extension).expect("append");
        }
        builder.sign(&key, MessageDigest::sha256()).expect("sign");
        builder.build().to_der().expect("der")
    }

    /// SANs, the acmeIdentifier value and criticality, the identifier, the verdict.
    type Row<'a> = (
        &'a str,
        Option<(&'a [u8], bool)>,
        AlpnIdentifier<'a>,
        Result<(), &'a str>,
    );

    #[test]
    fn tls_alpn_certificates_are_checked_as_rfc_8737_says() {
        let digest = openssl::sha::sha256(b"token.thumbprint");
        let mut good_value = vec![0x04, 0x20];
        good_value.extend_from_slice(&digest);
        let other = openssl::sha::sha256(b"other");
        let mut other_value = vec![0x04, 0x20];
        other_value.extend_from_slice(&other);
        let dns = AlpnIdentifier::Dns("a.test");
        let ip = AlpnIdentifier::Ip("10.0.0.7".parse().expect("ip"));
        let table: [Row<'_>; 8] = [
            ("DNS:a.test", Some((&good_value, true)), dns, Ok(())),
            ("DNS:A.Test", Some((&good_value, true)), dns, Ok(())),
            ("IP:10.0.0.7", Some((&good_value, true)), ip, Ok(())),
            (
                "DNS:b.test",
                Some((&good_value, true)),
                dns,
                Err("another identifier"),
            ),
            (
                "DNS:a.test,DNS:b.test",
                Some((&good_value, true)),
                dns,
                Err("exactly"),
            ),
            ("DNS:a.test", None, dns, Err("no acmeIdentifier")),
            (
                "DNS:a.test",
                Some((&good_value, false)),
                dns,
                Err("critical"),
            ),
            (
                "DNS:a.test",
                Some((&other_value, true)),
                dns,
                Err("does not hold"),
            ),
        ];
        for (san, acme, identifier, expected) in table {
            let der = responder_certificate(san, acme);
            let got = check_tls_alpn_certificate(&der, identifier, &digest);
            match expected {
                Ok(()) => assert_eq!(got, Ok(()), "{san}"),
                Err(part) => {
                    let message = got.expect_err(san);
                    assert!(message.contains(part), "{san}: {message}");
                }
            }
        }
    }
}
