//! csrgate-pki: the only crate that links openssl. It owns the CA identity (create, load, unlock),
//! CSR intake (parse, verify, key policy), the certificate template, signing and serial numbers.
//!
//! Nothing openssl-typed crosses this crate's public API, and the CA private key never leaves it:
//! [`Identity`] has no accessor for the key and its `Debug` output redacts it.

#![forbid(unsafe_code)]

mod ca_signature;
mod certificate;
mod crl;
mod csr;
mod der_writer;
mod error;
mod generated_key;
mod identity;
mod inspect;
mod jws;
mod key;
mod name;
mod ocsp;
mod oid;
mod passphrase;
mod pkcs7;
mod san;
mod serial;
mod template;
mod tls_alpn;
mod validity;

pub use certificate::{CertificateFacts, signed_by};
pub use crl::{Crl, CrlEntry};
pub use csr::{RequestedExtension, ValidatedCsr};
pub use csrgate_types::{ParseError, RevocationReason, Serial};
pub use error::PkiError;
pub use generated_key::{GeneratedKey, MIN_BUNDLE_PASSWORD_CHARS, PKCS12_ITERATIONS};
pub use identity::{
    CRL_FILE, CRL_NUMBER_FILE, Identity, IdentityFiles, IdentityRequest, IdentitySummary,
    IssuedCertificate, REVOKED_FILE, base64_lines, certificate_pem_from_der, pem_key_is_encrypted,
};
pub use inspect::{Report, ReportKind, inspect, is_pkcs12};
pub use jws::{Jwk, JwsAlgorithm, JwsError, JwsKey, JwsRequest};
pub use key::{KeyAlgorithm, KeySpec, PublicKeyInfo};
pub use name::{DistinguishedName, NameAttribute};
pub use ocsp::{
    CertId, CertIdHash, CertStatus, DelegatedResponder, MAX_REQUESTS_PER_OCSP_REQUEST,
    MalformedOcspRequest, OCSP_SIGNER_CERT_FILE, OCSP_SIGNER_KEY_FILE, OcspErrorStatus,
    OcspRequest, OcspSigner, ocsp_request_for, ocsp_status_in,
};
pub use passphrase::Passphrase;
pub use pkcs7::certs_only_pkcs7;
pub use san::SubjectAltName;
pub use serial::generate_serial;
pub use template::{CertificateTemplate, ExtendedKeyUsage, KeyUsage, RawExtension, SigningPolicy};
pub use tls_alpn::{AlpnIdentifier, check_tls_alpn_certificate};
pub use validity::ValidityPeriod;
