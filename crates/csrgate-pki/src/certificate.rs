//! Facts about a certificate csrgate did not necessarily issue: one adopted from a hand-run
//! OpenSSL CA (`store import-openssl`). Read with x509-parser, as requests are (decision 0024);
//! whether the CA issued it is asked of openssl.

use openssl::x509::X509;
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;

use crate::{DistinguishedName, Identity, PkiError, Serial};

/// What a record of a certificate needs, read from its DER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateFacts {
    /// serialNumber (positive, at most 20 octets: RFC 5280 4.1.2.2).
    pub serial: Serial,
    /// The subject, as csrgate shows names (`CN=…, O=…`).
    pub subject: String,
    /// The issuer, likewise.
    pub issuer: String,
    /// subjectAltName entries as `DNS:…`, `IP:…`, `email:…`, `URI:…` (others by their kind).
    pub subject_alt_names: Vec<String>,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// ssl_api's `public_key_hash`: lower-case hex SHA-1 of the SubjectPublicKeyInfo DER.
    pub public_key_sha1: String,
    /// Lower-case hex SHA-256 of the DER.
    pub sha256_fingerprint: String,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// The DER.
    pub der: Vec<u8>,
}

impl CertificateFacts {
    /// Reads one DER certificate. Errors (`InvalidParameter`) say what does not parse, or that
    /// the serial is zero, negative or longer than 20 octets.
    pub fn from_der(der: &[u8]) -> Result<CertificateFacts, PkiError> {
        let bad = |why: String| PkiError::InvalidParameter(why);
        let (rest, parsed) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| bad(format!("not a DER certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(bad("bytes after the certificate".into()));
        }
        let raw_serial = parsed.raw_serial();
        if raw_serial.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(bad("a negative serial number".into()));
        }
        let serial: Serial = hex::encode(raw_serial).parse().map_err(|_| {
            bad(format!(
                "serial {} is zero or longer than 20 octets",
                hex::encode(raw_serial)
            ))
        })?;
        let show = |name: &x509_parser::x509::X509Name<'_>| {
            DistinguishedName::from_parsed(name)
                .map(|dn| dn.to_string())
                .unwrap_or_else(|_| name.to_string())
        };
        let time = |t: x509_parser::time::ASN1Time| {
            OffsetDateTime::from_unix_timestamp(t.timestamp())
                .map_err(|e| bad(format!("a validity time out of range: {e}")))
        };
        let subject_alt_names = match parsed.subject_alternative_name() {
            Ok(Some(san)) => san.value.general_names.iter().map(general_name).collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(bad(format!("subjectAltName does not parse: {e}"))),
        };
        let is_ca = parsed
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca);
        Ok(CertificateFacts {
            serial,
            subject: show(parsed.subject()),
            issuer: show(parsed.issuer()),
            subject_alt_names,
            not_before: time(parsed.validity().not_before)?,
            not_after: time(parsed.validity().not_after)?,
            public_key_sha1: hex::encode(openssl::sha::sha1(parsed.public_key().raw)),
            sha256_fingerprint: hex::encode(openssl::sha::sha256(der)),
            is_ca,
            der: der.to_vec(),
        })
    }

    /// Reads the first certificate of a PEM file (text before the block, as `openssl ca` writes
    /// into `newcerts/`, is skipped).
    pub fn from_pem(pem: &[u8]) -> Result<CertificateFacts, PkiError> {
        let certificate = X509::from_pem(pem)
            .map_err(|_| PkiError::InvalidParameter("no PEM certificate".into()))?;
        CertificateFacts::from_der(&certificate.to_der()?)
    }
}

/// A GeneralName as `DNS:…`, `IP:…`, `email:…`, `URI:…` (others by their kind).
pub(crate) fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(v) => format!("DNS:{v}"),
        GeneralName::RFC822Name(v) => format!("email:{v}"),
        GeneralName::URI(v) => format!("URI:{v}"),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => format!(
                "IP:{}",
                std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).unwrap_or_default())
            ),
            16 => format!(
                "IP:{}",
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).unwrap_or_default())
            ),
            _ => format!("IP:{}", hex::encode(bytes)),
        },
        GeneralName::DirectoryName(n) => format!("dirName:{n}"),
        GeneralName::RegisteredID(oid) => format!("RID:{oid}"),
        GeneralName::OtherName(oid, _) => format!("othername:{oid}"),
        other => format!("{other:?}"),
    }
}

impl Identity {
    /// True when this CA signed `der`: its issuer is the CA's subject and the signature
    /// verifies with the CA key.
    pub fn issued(&self, der: &[u8]) -> bool {
        issued_by(self.certificate(), der)
    }
}

impl crate::IdentityFiles {
    /// [`Identity::issued`], without the passphrase: only the CA certificate is needed.
    pub fn issued(&self, der: &[u8]) -> bool {
        issued_by(self.ca_certificate(), der)
    }
}

/// True when the certificate `der` names `issuer_der`'s subject as its issuer and that key
/// verifies its signature (`inspect --url` checks this before asking about its status).
pub fn signed_by(der: &[u8], issuer_der: &[u8]) -> bool {
    X509::from_der(issuer_der).is_ok_and(|issuer| issued_by(&issuer, der))
}

fn issued_by(ca: &X509, der: &[u8]) -> bool {
    let Ok(certificate) = X509::from_der(der) else {
        return false;
    };
    let same_issuer = match (
        certificate.issuer_name().to_der(),
        ca.subject_name().to_der(),
    ) {
        (Ok(issuer), Ok(ours)) => issuer == ours,
        _ => false,
    };
    same_issuer
        && ca
            .public_key()
            .and_then(|key| certificate.verify(&key))
            .unwrap_or(false)
}
