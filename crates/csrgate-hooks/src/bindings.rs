//! Host bindings, one module per contract version (`wit/v0.2.0`, `wit/v0.1.0`), and
//! conversions between them and [`crate::model`]. Both are linked; a component is loaded through
//! the newest version whose world it exports (Zed's scheme), so 0.1 plugins keep loading.

use crate::model;

/// The conversions every contract version shares (all its types but `signing-request`),
/// written once and expanded in each version's module, where `wit` names its types.
macro_rules! conversions {
    () => {
        impl From<&model::SubjectAltName> for wit::SubjectAltName {
            fn from(san: &model::SubjectAltName) -> Self {
                match san {
                    model::SubjectAltName::Dns(v) => wit::SubjectAltName::Dns(v.clone()),
                    model::SubjectAltName::Ip(v) => wit::SubjectAltName::Ip(v.clone()),
                    model::SubjectAltName::Email(v) => wit::SubjectAltName::Email(v.clone()),
                    model::SubjectAltName::Uri(v) => wit::SubjectAltName::Uri(v.clone()),
                }
            }
        }

        impl From<wit::SubjectAltName> for model::SubjectAltName {
            fn from(san: wit::SubjectAltName) -> Self {
                match san {
                    wit::SubjectAltName::Dns(v) => model::SubjectAltName::Dns(v),
                    wit::SubjectAltName::Ip(v) => model::SubjectAltName::Ip(v),
                    wit::SubjectAltName::Email(v) => model::SubjectAltName::Email(v),
                    wit::SubjectAltName::Uri(v) => model::SubjectAltName::Uri(v),
                }
            }
        }

        fn names_to_wit(names: &[model::NameAttribute]) -> Vec<wit::NameAttribute> {
            names
                .iter()
                .map(|n| wit::NameAttribute {
                    oid: n.oid.clone(),
                    value: n.value.clone(),
                })
                .collect()
        }

        fn names_from_wit(names: Vec<wit::NameAttribute>) -> Vec<model::NameAttribute> {
            names
                .into_iter()
                .map(|n| model::NameAttribute {
                    oid: n.oid,
                    value: n.value,
                })
                .collect()
        }

        fn extensions_to_wit(extensions: &[model::Extension]) -> Vec<wit::Extension> {
            extensions
                .iter()
                .map(|e| wit::Extension {
                    oid: e.oid.clone(),
                    critical: e.critical,
                    value: e.value.clone(),
                })
                .collect()
        }

        fn extensions_from_wit(extensions: Vec<wit::Extension>) -> Vec<model::Extension> {
            extensions
                .into_iter()
                .map(|e| model::Extension {
                    oid: e.oid,
                    critical: e.critical,
                    value: e.value,
                })
                .collect()
        }

        fn key_usage_to_wit(usage: model::KeyUsage) -> wit::KeyUsage {
            match usage {
                model::KeyUsage::DigitalSignature => wit::KeyUsage::DigitalSignature,
                model::KeyUsage::NonRepudiation => wit::KeyUsage::NonRepudiation,
                model::KeyUsage::KeyEncipherment => wit::KeyUsage::KeyEncipherment,
                model::KeyUsage::DataEncipherment => wit::KeyUsage::DataEncipherment,
                model::KeyUsage::KeyAgreement => wit::KeyUsage::KeyAgreement,
            }
        }

        fn key_usage_from_wit(usage: wit::KeyUsage) -> model::KeyUsage {
            match usage {
                wit::KeyUsage::DigitalSignature => model::KeyUsage::DigitalSignature,
                wit::KeyUsage::NonRepudiation => model::KeyUsage::NonRepudiation,
                wit::KeyUsage::KeyEncipherment => model::KeyUsage::KeyEncipherment,
                wit::KeyUsage::DataEncipherment => model::KeyUsage::DataEncipherment,
                wit::KeyUsage::KeyAgreement => model::KeyUsage::KeyAgreement,
            }
        }

        fn eku_to_wit(purpose: model::ExtendedKeyUsage) -> wit::ExtendedKeyUsage {
            match purpose {
                model::ExtendedKeyUsage::ServerAuth => wit::ExtendedKeyUsage::ServerAuth,
                model::ExtendedKeyUsage::ClientAuth => wit::ExtendedKeyUsage::ClientAuth,
                model::ExtendedKeyUsage::CodeSigning => wit::ExtendedKeyUsage::CodeSigning,
                model::ExtendedKeyUsage::EmailProtection => wit::ExtendedKeyUsage::EmailProtection,
                model::ExtendedKeyUsage::TimeStamping => wit::ExtendedKeyUsage::TimeStamping,
                model::ExtendedKeyUsage::OcspSigning => wit::ExtendedKeyUsage::OcspSigning,
            }
        }

        fn eku_from_wit(purpose: wit::ExtendedKeyUsage) -> model::ExtendedKeyUsage {
            match purpose {
                wit::ExtendedKeyUsage::ServerAuth => model::ExtendedKeyUsage::ServerAuth,
                wit::ExtendedKeyUsage::ClientAuth => model::ExtendedKeyUsage::ClientAuth,
                wit::ExtendedKeyUsage::CodeSigning => model::ExtendedKeyUsage::CodeSigning,
                wit::ExtendedKeyUsage::EmailProtection => model::ExtendedKeyUsage::EmailProtection,
                wit::ExtendedKeyUsage::TimeStamping => model::ExtendedKeyUsage::TimeStamping,
                wit::ExtendedKeyUsage::OcspSigning => model::ExtendedKeyUsage::OcspSigning,
            }
        }

        impl From<&model::CertificateTemplate> for wit::CertificateTemplate {
            fn from(t: &model::CertificateTemplate) -> Self {
                wit::CertificateTemplate {
                    subject: names_to_wit(&t.subject),
                    subject_alt_names: t.subject_alt_names.iter().map(Into::into).collect(),
                    not_before: t.not_before,
                    not_after: t.not_after,
                    key_usage: t.key_usage.iter().copied().map(key_usage_to_wit).collect(),
                    extended_key_usage: t
                        .extended_key_usage
                        .iter()
                        .copied()
                        .map(eku_to_wit)
                        .collect(),
                    crl_distribution_points: t.crl_distribution_points.clone(),
                    ocsp_urls: t.ocsp_urls.clone(),
                    ca_issuer_urls: t.ca_issuer_urls.clone(),
                    extra_extensions: extensions_to_wit(&t.extra_extensions),
                }
            }
        }

        impl From<wit::CertificateTemplate> for model::CertificateTemplate {
            fn from(t: wit::CertificateTemplate) -> Self {
                model::CertificateTemplate {
                    subject: names_from_wit(t.subject),
                    subject_alt_names: t.subject_alt_names.into_iter().map(Into::into).collect(),
                    not_before: t.not_before,
                    not_after: t.not_after,
                    key_usage: t.key_usage.into_iter().map(key_usage_from_wit).collect(),
                    extended_key_usage: t
                        .extended_key_usage
                        .into_iter()
                        .map(eku_from_wit)
                        .collect(),
                    crl_distribution_points: t.crl_distribution_points,
                    ocsp_urls: t.ocsp_urls,
                    ca_issuer_urls: t.ca_issuer_urls,
                    extra_extensions: extensions_from_wit(t.extra_extensions),
                }
            }
        }

        impl From<&model::SignedCertificate> for wit::SignedCertificate {
            fn from(c: &model::SignedCertificate) -> Self {
                wit::SignedCertificate {
                    client_hash: c.client_hash.clone(),
                    serial: c.serial.clone(),
                    sha256_fingerprint: c.sha256_fingerprint.clone(),
                    not_before: c.not_before,
                    not_after: c.not_after,
                    der: c.der.clone(),
                }
            }
        }

        fn key_algorithm_to_wit(algorithm: model::KeyAlgorithm) -> wit::KeyAlgorithm {
            match algorithm {
                model::KeyAlgorithm::Rsa => wit::KeyAlgorithm::Rsa,
                model::KeyAlgorithm::EcP256 => wit::KeyAlgorithm::EcP256,
                model::KeyAlgorithm::EcP384 => wit::KeyAlgorithm::EcP384,
                model::KeyAlgorithm::EcP521 => wit::KeyAlgorithm::EcP521,
                model::KeyAlgorithm::Ed25519 => wit::KeyAlgorithm::Ed25519,
            }
        }
    };
}

/// One contract version's module body: its bindings, `wit` naming its types, its version, and
/// the shared conversions.
macro_rules! contract {
    ($path:literal, $version:literal) => {
        wasmtime::component::bindgen!({
            path: $path,
            world: "plugin",
            exports: { default: async },
            // The key-value store may be PostgreSQL, shared by every replica: its host
            // functions wait on the network without blocking the runtime's thread.
            imports: {
                // A read the store cannot answer traps the call (fail closed), rather than
                // tell the plugin the key is absent: a deny-list kept there would otherwise
                // let a request by.
                "csrgate:hooks/host.kv-get": async | trappable,
                "csrgate:hooks/host.kv-set": async,
                "csrgate:hooks/host.kv-delete": async,
            },
        });

        pub(crate) use csrgate::hooks::types as wit;

        /// The contract version of this module (the WIT package version).
        pub(crate) const CONTRACT_VERSION: &str = $version;

        conversions!();
    };
}

/// `wit/v0.2.0`: the current contract (`signing-request.via`).
pub(crate) mod v0_2 {
    use super::model;

    contract!("../../wit/v0.2.0", "0.2.0");

    impl From<&model::SigningRequest> for wit::SigningRequest {
        fn from(r: &model::SigningRequest) -> Self {
            wit::SigningRequest {
                client_hash: r.client_hash.clone(),
                public_key_sha1: r.public_key_sha1.clone(),
                key_algorithm: key_algorithm_to_wit(r.key_algorithm),
                key_bits: r.key_bits,
                subject: names_to_wit(&r.subject),
                subject_alt_names: r.subject_alt_names.iter().map(Into::into).collect(),
                requested_extensions: extensions_to_wit(&r.requested_extensions),
                csr_der: r.csr_der.clone(),
                via: match r.via {
                    model::Via::Put => wit::RequestVia::Put,
                    model::Via::Est => wit::RequestVia::Est,
                    model::Via::Acme => wit::RequestVia::Acme,
                    model::Via::Generate => wit::RequestVia::Generate,
                    model::Via::Renew => wit::RequestVia::Renew,
                    model::Via::Cosign => wit::RequestVia::Cosign,
                },
            }
        }
    }
}

/// `wit/v0.1.0`: the first contract, still loaded (no `via`).
pub(crate) mod v0_1 {
    use super::model;

    contract!("../../wit/v0.1.0", "0.1.0");

    impl From<&model::SigningRequest> for wit::SigningRequest {
        fn from(r: &model::SigningRequest) -> Self {
            wit::SigningRequest {
                client_hash: r.client_hash.clone(),
                public_key_sha1: r.public_key_sha1.clone(),
                key_algorithm: key_algorithm_to_wit(r.key_algorithm),
                key_bits: r.key_bits,
                subject: names_to_wit(&r.subject),
                subject_alt_names: r.subject_alt_names.iter().map(Into::into).collect(),
                requested_extensions: extensions_to_wit(&r.requested_extensions),
                csr_der: r.csr_der.clone(),
            }
        }
    }
}
