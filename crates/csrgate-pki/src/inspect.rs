//! `csrgate inspect`: what a file holds (certificates, requests, CRLs, keys, PKCS#12 bundles),
//! PEM or DER, read with x509-parser (decision 0024) and openssl for keys and bundles, as
//! ordered fields a human or a script reads.

use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509Req};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, ParsedExtension, X509Extension};
use x509_parser::prelude::FromDer as _;

use crate::certificate::general_name;
use crate::key::classify_public_key;
use crate::{DistinguishedName, PkiError};

/// What one part of a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    /// An X.509 certificate (RFC 5280).
    Certificate,
    /// A PKCS#10 request (RFC 2986).
    CertificateRequest,
    /// A CRL (RFC 5280 section 5).
    Crl,
    /// A private key (only its type is shown).
    PrivateKey,
}

impl ReportKind {
    /// `certificate`, `certificate request`, `crl`, `private key`.
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Certificate => "certificate",
            ReportKind::CertificateRequest => "certificate request",
            ReportKind::Crl => "crl",
            ReportKind::PrivateKey => "private key",
        }
    }
}

/// One part of a file: single-valued fields in order, then lists (SANs, extensions, entries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// What it is.
    pub kind: ReportKind,
    /// `(name, value)`, e.g. `("subject", "CN=app.internal")`.
    pub fields: Vec<(&'static str, String)>,
    /// `(name, values)`, e.g. `("subject_alt_names", ["DNS:app.internal"])`.
    pub lists: Vec<(&'static str, Vec<String>)>,
    /// The DER of a certificate (to ask a responder about it), empty otherwise.
    pub der: Vec<u8>,
}

/// True when `bytes` are a DER PKCS#12 bundle (which needs its password to be read).
pub fn is_pkcs12(bytes: &[u8]) -> bool {
    !bytes.starts_with(b"-----")
        && x509_parser::parse_x509_certificate(bytes).is_err()
        && Pkcs12::from_der(bytes).is_ok()
}

/// Reads every part of `bytes`: PEM blocks (certificates, requests, CRLs, private keys; text
/// around them is skipped) or one DER structure, or a PKCS#12 bundle opened with `password`.
/// Errors (`InvalidParameter`) say what was not recognised, or that a bundle's password is
/// missing or wrong.
pub fn inspect(bytes: &[u8], password: Option<&str>) -> Result<Vec<Report>, PkiError> {
    let bad = |why: String| PkiError::InvalidParameter(why);
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let mut reports = Vec::new();
        for block in x509_parser::pem::Pem::iter_from_buffer(bytes) {
            let block = block.map_err(|e| bad(format!("a PEM block does not parse: {e}")))?;
            reports.push(match block.label.as_str() {
                "CERTIFICATE" | "TRUSTED CERTIFICATE" => certificate(&block.contents)?,
                "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => request(&block.contents)?,
                "X509 CRL" => crl(&block.contents)?,
                "ENCRYPTED PRIVATE KEY" => private_key_report("encrypted (PKCS#8)".into()),
                "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                    let key = PKey::private_key_from_der(&block.contents)
                        .or_else(|_| PKey::private_key_from_pem(&pem_again(&block)))
                        .map_err(|_| bad(format!("a {} block does not parse", block.label)))?;
                    private_key_report(key_description(&key))
                }
                other => return Err(bad(format!("a PEM block labelled {other:?}"))),
            });
        }
        if reports.is_empty() {
            return Err(bad("no PEM block".into()));
        }
        return Ok(reports);
    }
    if x509_parser::parse_x509_certificate(bytes).is_ok() {
        return Ok(vec![certificate(bytes)?]);
    }
    if x509_parser::certification_request::X509CertificationRequest::from_der(bytes).is_ok() {
        return Ok(vec![request(bytes)?]);
    }
    if x509_parser::parse_x509_crl(bytes).is_ok() {
        return Ok(vec![crl(bytes)?]);
    }
    if let Ok(bundle) = Pkcs12::from_der(bytes) {
        let password =
            password.ok_or_else(|| bad("a PKCS#12 bundle: its password is needed".into()))?;
        let opened = bundle
            .parse2(password)
            .map_err(|_| bad("the password does not open this PKCS#12 bundle".into()))?;
        let mut reports = Vec::new();
        if let Some(key) = &opened.pkey {
            reports.push(private_key_report(key_description(key)));
        }
        if let Some(leaf) = &opened.cert {
            reports.push(certificate(&leaf.to_der()?)?);
        }
        for ca in opened.ca.iter().flatten() {
            reports.push(certificate(&ca.to_der()?)?);
        }
        return Ok(reports);
    }
    Err(bad(
        "not a certificate, certificate request, CRL, private key or PKCS#12 bundle (PEM or DER)"
            .into(),
    ))
}

fn pem_again(block: &x509_parser::pem::Pem) -> Vec<u8> {
    crate::ca_signature::pem(&block.label, &block.contents).into_bytes()
}

fn private_key_report(description: String) -> Report {
    Report {
        kind: ReportKind::PrivateKey,
        fields: vec![("key", description)],
        lists: Vec::new(),
        der: Vec::new(),
    }
}

fn key_description(key: &PKey<Private>) -> String {
    classify_public_key(key).map_or_else(|_| format!("{:?}", key.id()), |info| info.to_string())
}

fn time(t: x509_parser::time::ASN1Time) -> String {
    t.to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn name(parsed: &x509_parser::x509::X509Name<'_>) -> String {
    DistinguishedName::from_parsed(parsed)
        .map(|dn| dn.to_string())
        .unwrap_or_else(|_| parsed.to_string())
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn certificate(der: &[u8]) -> Result<Report, PkiError> {
    let bad = |why: String| PkiError::InvalidParameter(why);
    let (_, parsed): (_, X509Certificate<'_>) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| bad(format!("a certificate does not parse: {e}")))?;
    let key = X509::from_der(der)
        .ok()
        .and_then(|c| c.public_key().ok())
        .and_then(|k| classify_public_key(&k).ok())
        .map_or_else(|| "unknown".to_owned(), |info| info.to_string());
    let is_ca = parsed
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    let sans = match parsed.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().map(general_name).collect(),
        _ => Vec::new(),
    };
    Ok(Report {
        kind: ReportKind::Certificate,
        fields: vec![
            ("subject", name(parsed.subject())),
            ("issuer", name(parsed.issuer())),
            ("serial", hex::encode(parsed.raw_serial())),
            ("not_before", time(parsed.validity().not_before)),
            ("not_after", time(parsed.validity().not_after)),
            ("key", key),
            (
                "signature_algorithm",
                oid_name(&parsed.signature_algorithm.algorithm),
            ),
            ("ca", is_ca.to_string()),
            ("sha256", colon_hex(&openssl::sha::sha256(der))),
            ("sha1", colon_hex(&openssl::sha::sha1(der))),
        ],
        lists: vec![
            ("subject_alt_names", sans),
            (
                "extensions",
                parsed.extensions().iter().map(extension).collect(),
            ),
        ],
        der: der.to_vec(),
    })
}

fn request(der: &[u8]) -> Result<Report, PkiError> {
    let bad = |why: String| PkiError::InvalidParameter(why);
    let (_, parsed) = x509_parser::certification_request::X509CertificationRequest::from_der(der)
        .map_err(|e| bad(format!("a certificate request does not parse: {e}")))?;
    let openssl_request = X509Req::from_der(der).ok();
    let key = openssl_request
        .as_ref()
        .and_then(|r| r.public_key().ok())
        .and_then(|k| classify_public_key(&k).ok())
        .map_or_else(|| "unknown".to_owned(), |info| info.to_string());
    let signature = openssl_request
        .as_ref()
        .and_then(|r| r.public_key().ok().map(|k| r.verify(&k).unwrap_or(false)))
        .map_or("unverifiable", |ok| if ok { "valid" } else { "INVALID" });
    let mut sans = Vec::new();
    let mut extensions = Vec::new();
    for extension in parsed.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = extension {
            sans.extend(san.general_names.iter().map(general_name));
        }
        extensions.push(requested(extension));
    }
    Ok(Report {
        kind: ReportKind::CertificateRequest,
        fields: vec![
            ("subject", name(&parsed.certification_request_info.subject)),
            ("key", key),
            ("self_signature", signature.to_owned()),
            (
                "signature_algorithm",
                oid_name(&parsed.signature_algorithm.algorithm),
            ),
            ("sha256", colon_hex(&openssl::sha::sha256(der))),
        ],
        lists: vec![
            ("subject_alt_names", sans),
            ("requested_extensions", extensions),
        ],
        der: Vec::new(),
    })
}

fn crl(der: &[u8]) -> Result<Report, PkiError> {
    let bad = |why: String| PkiError::InvalidParameter(why);
    let (_, parsed) =
        x509_parser::parse_x509_crl(der).map_err(|e| bad(format!("a CRL does not parse: {e}")))?;
    let entries = parsed
        .iter_revoked_certificates()
        .map(|entry| {
            let reason = entry
                .reason_code()
                .map_or_else(String::new, |(_, code)| format!(" {code:?}"));
            format!(
                "{} revoked {}{reason}",
                hex::encode(entry.raw_serial()),
                time(entry.revocation_date)
            )
        })
        .collect::<Vec<_>>();
    Ok(Report {
        kind: ReportKind::Crl,
        fields: vec![
            ("issuer", name(parsed.issuer())),
            ("this_update", time(parsed.last_update())),
            (
                "next_update",
                parsed.next_update().map_or_else(|| "none".into(), time),
            ),
            (
                "crl_number",
                parsed
                    .crl_number()
                    .map_or_else(|| "none".into(), |n| n.to_string()),
            ),
            ("entries", entries.len().to_string()),
            ("sha256", colon_hex(&openssl::sha::sha256(der))),
        ],
        lists: vec![
            ("revoked", entries),
            (
                "extensions",
                parsed.extensions().iter().map(extension).collect(),
            ),
        ],
        der: Vec::new(),
    })
}

fn oid_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map_or_else(|_| oid.to_id_string(), str::to_owned)
}

/// A requested extension (PKCS#9 extensionRequest) as `name: value`.
fn requested(parsed: &ParsedExtension<'_>) -> String {
    let name = match parsed {
        ParsedExtension::SubjectAlternativeName(_) => "subjectAltName",
        ParsedExtension::KeyUsage(_) => "keyUsage",
        ParsedExtension::ExtendedKeyUsage(_) => "extendedKeyUsage",
        ParsedExtension::BasicConstraints(_) => "basicConstraints",
        ParsedExtension::SubjectKeyIdentifier(_) => "subjectKeyIdentifier",
        _ => "extension",
    };
    let value =
        decoded(parsed).unwrap_or_else(|| format!("{parsed:?}").chars().take(120).collect());
    format!("{name}: {value}")
}

/// `name[, critical]: value`, the value decoded for the extensions csrgate writes.
fn extension(extension: &X509Extension<'_>) -> String {
    let value = decoded(extension.parsed_extension()).unwrap_or_else(|| {
        let value = extension.value;
        let shown = colon_hex(&value[..value.len().min(32)]);
        if value.len() > 32 {
            format!("{shown}…")
        } else {
            shown
        }
    });
    let critical = if extension.critical { ", critical" } else { "" };
    format!("{}{critical}: {value}", oid_name(&extension.oid))
}

/// The value of the extensions csrgate writes and reads, as text; `None` for others.
fn decoded(parsed: &ParsedExtension<'_>) -> Option<String> {
    Some(match parsed {
        ParsedExtension::BasicConstraints(bc) => match bc.path_len_constraint {
            Some(len) => format!("CA:{}, pathlen:{len}", bc.ca.to_string().to_uppercase()),
            None => format!("CA:{}", bc.ca.to_string().to_uppercase()),
        },
        ParsedExtension::KeyUsage(ku) => ku.to_string(),
        ParsedExtension::ExtendedKeyUsage(eku) => {
            let mut names: Vec<String> = [
                (eku.any, "anyExtendedKeyUsage"),
                (eku.server_auth, "serverAuth"),
                (eku.client_auth, "clientAuth"),
                (eku.code_signing, "codeSigning"),
                (eku.email_protection, "emailProtection"),
                (eku.time_stamping, "timeStamping"),
                (eku.ocsp_signing, "OCSPSigning"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| (*name).to_owned())
            .collect();
            names.extend(eku.other.iter().map(|oid| oid.to_id_string()));
            names.join(", ")
        }
        ParsedExtension::SubjectAlternativeName(san) => san
            .general_names
            .iter()
            .map(general_name)
            .collect::<Vec<_>>()
            .join(", "),
        ParsedExtension::SubjectKeyIdentifier(id) => colon_hex(id.0),
        ParsedExtension::AuthorityKeyIdentifier(aki) => aki
            .key_identifier
            .as_ref()
            .map_or_else(String::new, |id| colon_hex(id.0)),
        ParsedExtension::CRLDistributionPoints(points) => points
            .points
            .iter()
            .filter_map(|p| match &p.distribution_point {
                Some(DistributionPointName::FullName(names)) => Some(
                    names
                        .iter()
                        .map(general_name)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(", "),
        ParsedExtension::AuthorityInfoAccess(aia) => aia
            .accessdescs
            .iter()
            .map(|d| {
                format!(
                    "{} {}",
                    oid_name(&d.access_method),
                    general_name(&d.access_location)
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        ParsedExtension::CRLNumber(number) => number.to_string(),
        _ => return None,
    })
}
