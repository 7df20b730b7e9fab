//! Plain data exchanged with plugins, mirroring `wit/v0.1.0/hooks.wit` without any wasmtime type.

/// A subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum SubjectAltName {
    /// dNSName
    Dns(String),
    /// iPAddress, as text
    Ip(String),
    /// rfc822Name
    Email(String),
    /// uniformResourceIdentifier
    Uri(String),
}

/// One attribute of a distinguished name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NameAttribute {
    /// Dotted OID.
    pub oid: String,
    /// UTF-8 value.
    pub value: String,
}

/// Algorithm of the requested key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// RSA
    Rsa,
    /// ECDSA P-256
    EcP256,
    /// ECDSA P-384
    EcP384,
    /// ECDSA P-521
    EcP521,
    /// Ed25519
    Ed25519,
}

/// An extension in raw form.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Extension {
    /// Dotted OID.
    pub oid: String,
    /// Critical flag.
    pub critical: bool,
    /// DER inside the OCTET STRING.
    pub value: Vec<u8>,
}

/// What plugins see of a signing request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SigningRequest {
    /// Client hash from the path.
    pub client_hash: String,
    /// Hex SHA-1 of the SPKI DER.
    pub public_key_sha1: String,
    /// Key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// Key size in bits.
    pub key_bits: u32,
    /// Requested subject.
    pub subject: Vec<NameAttribute>,
    /// Requested SANs.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// Requested extensions.
    pub requested_extensions: Vec<Extension>,
    /// The CSR DER.
    #[serde(skip)]
    pub csr_der: Vec<u8>,
}

/// keyUsage bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub enum KeyUsage {
    DigitalSignature,
    NonRepudiation,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
}

/// extendedKeyUsage purposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub enum ExtendedKeyUsage {
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    TimeStamping,
    OcspSigning,
}

/// The certificate about to be signed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CertificateTemplate {
    /// Subject.
    pub subject: Vec<NameAttribute>,
    /// SANs.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// keyUsage.
    pub key_usage: Vec<KeyUsage>,
    /// extendedKeyUsage.
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// CRL distribution point URIs.
    pub crl_distribution_points: Vec<String>,
    /// OCSP URIs.
    pub ocsp_urls: Vec<String>,
    /// CA issuer URIs.
    pub ca_issuer_urls: Vec<String>,
    /// Other extensions.
    pub extra_extensions: Vec<Extension>,
}

/// A signed, recorded certificate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignedCertificate {
    /// Client hash.
    pub client_hash: String,
    /// Serial, hex.
    pub serial: String,
    /// SHA-256 fingerprint, hex.
    pub sha256_fingerprint: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// DER.
    #[serde(skip)]
    pub der: Vec<u8>,
}
