//! Conversions between the PKI types (csrgate-pki) and the plugin model (csrgate-hooks). A
//! template coming back from a plugin is parsed here, value by value, before the PKI checks it.

use std::net::IpAddr;

use csrgate_hooks::model;
use csrgate_pki::{
    CertificateTemplate, DistinguishedName, ExtendedKeyUsage, IssuedCertificate, KeyAlgorithm,
    KeyUsage, NameAttribute, RawExtension, SubjectAltName, ValidatedCsr,
};
use time::OffsetDateTime;

use crate::ClientHash;

pub(crate) fn signing_request(
    client_hash: &ClientHash,
    csr: &ValidatedCsr,
    via: model::Via,
) -> model::SigningRequest {
    let key = csr.public_key_info();
    model::SigningRequest {
        client_hash: client_hash.to_string(),
        public_key_sha1: csr.public_key_sha1().to_owned(),
        key_algorithm: match key.algorithm {
            KeyAlgorithm::Rsa => model::KeyAlgorithm::Rsa,
            KeyAlgorithm::EcP256 => model::KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384 => model::KeyAlgorithm::EcP384,
            KeyAlgorithm::EcP521 => model::KeyAlgorithm::EcP521,
            KeyAlgorithm::Ed25519 => model::KeyAlgorithm::Ed25519,
        },
        key_bits: key.bits,
        subject: names_to_model(csr.subject()),
        subject_alt_names: csr.subject_alt_names().iter().map(san_to_model).collect(),
        requested_extensions: csr
            .requested_extensions()
            .iter()
            .map(|e| model::Extension {
                oid: e.oid.clone(),
                critical: e.critical,
                value: e.value.clone(),
            })
            .collect(),
        csr_der: csr.der().to_vec(),
        via,
    }
}

pub(crate) fn signed_certificate(
    client_hash: &ClientHash,
    issued: &IssuedCertificate,
) -> model::SignedCertificate {
    model::SignedCertificate {
        client_hash: client_hash.to_string(),
        serial: issued.serial.to_string(),
        sha256_fingerprint: issued.sha256_fingerprint.clone(),
        not_before: issued.not_before.unix_timestamp(),
        not_after: issued.not_after.unix_timestamp(),
        der: issued.der.clone(),
    }
}

fn names_to_model(name: &DistinguishedName) -> Vec<model::NameAttribute> {
    name.attributes()
        .map(|a| model::NameAttribute {
            oid: a.oid.clone(),
            value: a.value.clone(),
        })
        .collect()
}

fn san_to_model(san: &SubjectAltName) -> model::SubjectAltName {
    match san {
        SubjectAltName::Dns(v) => model::SubjectAltName::Dns(v.clone()),
        SubjectAltName::Ip(v) => model::SubjectAltName::Ip(v.to_string()),
        SubjectAltName::Email(v) => model::SubjectAltName::Email(v.clone()),
        SubjectAltName::Uri(v) => model::SubjectAltName::Uri(v.clone()),
    }
}

pub(crate) fn template_to_model(t: &CertificateTemplate) -> model::CertificateTemplate {
    model::CertificateTemplate {
        subject: names_to_model(&t.subject),
        subject_alt_names: t.subject_alt_names.iter().map(san_to_model).collect(),
        not_before: t.not_before.unix_timestamp(),
        not_after: t.not_after.unix_timestamp(),
        key_usage: t
            .key_usage
            .iter()
            .map(|u| match u {
                KeyUsage::NonRepudiation => model::KeyUsage::NonRepudiation,
                KeyUsage::KeyEncipherment => model::KeyUsage::KeyEncipherment,
                KeyUsage::DataEncipherment => model::KeyUsage::DataEncipherment,
                KeyUsage::KeyAgreement => model::KeyUsage::KeyAgreement,
                KeyUsage::DigitalSignature => model::KeyUsage::DigitalSignature,
            })
            .collect(),
        extended_key_usage: t
            .extended_key_usage
            .iter()
            .map(|p| match p {
                ExtendedKeyUsage::ClientAuth => model::ExtendedKeyUsage::ClientAuth,
                ExtendedKeyUsage::CodeSigning => model::ExtendedKeyUsage::CodeSigning,
                ExtendedKeyUsage::EmailProtection => model::ExtendedKeyUsage::EmailProtection,
                ExtendedKeyUsage::TimeStamping => model::ExtendedKeyUsage::TimeStamping,
                ExtendedKeyUsage::OcspSigning => model::ExtendedKeyUsage::OcspSigning,
                ExtendedKeyUsage::ServerAuth => model::ExtendedKeyUsage::ServerAuth,
            })
            .collect(),
        crl_distribution_points: t.crl_distribution_points.clone(),
        ocsp_urls: t.ocsp_urls.clone(),
        ca_issuer_urls: t.ca_issuer_urls.clone(),
        extra_extensions: t
            .extra_extensions
            .iter()
            .map(|e| model::Extension {
                oid: e.oid.clone(),
                critical: e.critical,
                value: e.value.clone(),
            })
            .collect(),
    }
}

/// Parses a plugin's template. Every SAN is re-validated as if it came from a CSR.
pub(crate) fn template_from_model(
    t: model::CertificateTemplate,
) -> Result<CertificateTemplate, String> {
    let time = |what: &str, unix: i64| {
        OffsetDateTime::from_unix_timestamp(unix)
            .map_err(|_| format!("{what} {unix} is out of range"))
    };
    let subject_alt_names = t
        .subject_alt_names
        .into_iter()
        .map(|san| match san {
            model::SubjectAltName::Dns(v) => SubjectAltName::dns(&v),
            model::SubjectAltName::Email(v) => SubjectAltName::email(&v),
            model::SubjectAltName::Uri(v) => SubjectAltName::uri(&v),
            model::SubjectAltName::Ip(v) => {
                v.parse::<IpAddr>().map(SubjectAltName::Ip).map_err(|_| {
                    csrgate_pki::PkiError::InvalidParameter(format!(
                        "IP SAN {v:?} is not an address"
                    ))
                })
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok(CertificateTemplate {
        // Plugins see a flat list; a subject they write is one attribute per RDN.
        // `pipeline::prepare_validated` keeps the request's RDN structure when it is unchanged.
        subject: DistinguishedName::from_attributes(
            t.subject
                .into_iter()
                .map(|a| NameAttribute {
                    oid: a.oid,
                    value: a.value,
                })
                .collect(),
        ),
        subject_alt_names,
        not_before: time("not-before", t.not_before)?,
        not_after: time("not-after", t.not_after)?,
        key_usage: t
            .key_usage
            .into_iter()
            .map(|u| match u {
                model::KeyUsage::DigitalSignature => KeyUsage::DigitalSignature,
                model::KeyUsage::NonRepudiation => KeyUsage::NonRepudiation,
                model::KeyUsage::KeyEncipherment => KeyUsage::KeyEncipherment,
                model::KeyUsage::DataEncipherment => KeyUsage::DataEncipherment,
                model::KeyUsage::KeyAgreement => KeyUsage::KeyAgreement,
            })
            .collect(),
        extended_key_usage: t
            .extended_key_usage
            .into_iter()
            .map(|p| match p {
                model::ExtendedKeyUsage::ServerAuth => ExtendedKeyUsage::ServerAuth,
                model::ExtendedKeyUsage::ClientAuth => ExtendedKeyUsage::ClientAuth,
                model::ExtendedKeyUsage::CodeSigning => ExtendedKeyUsage::CodeSigning,
                model::ExtendedKeyUsage::EmailProtection => ExtendedKeyUsage::EmailProtection,
                model::ExtendedKeyUsage::TimeStamping => ExtendedKeyUsage::TimeStamping,
                model::ExtendedKeyUsage::OcspSigning => ExtendedKeyUsage::OcspSigning,
            })
            .collect(),
        crl_distribution_points: t.crl_distribution_points,
        ocsp_urls: t.ocsp_urls,
        ca_issuer_urls: t.ca_issuer_urls,
        extra_extensions: t
            .extra_extensions
            .into_iter()
            .map(|e| RawExtension {
                oid: e.oid,
                critical: e.critical,
                value: e.value,
            })
            .collect(),
    })
}

/// The template as JSON, for `csrgate plugin run` (the plugin model's field names).
pub fn template_json(template: &CertificateTemplate) -> serde_json::Value {
    serde_json::to_value(template_to_model(template)).unwrap_or(serde_json::Value::Null)
}
