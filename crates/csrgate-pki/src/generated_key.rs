//! Server-side key generation (`POST /certificates/generate`): a fresh key, the CSR that sends
//! it through the normal pipeline, and the bundle that hands it over (PKCS#12, RFC 7292, or
//! PEM). The key lives in this value only: it is never stored, never logged, and its `Debug`
//! is redacted.

use std::fmt;

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::{X509, X509Extension, X509ReqBuilder};
use zeroize::Zeroizing;

use crate::key::signing_digest;
use crate::san::general_names_der;
use crate::{DistinguishedName, KeySpec, PkiError, SubjectAltName};

/// PBKDF2 iterations of a generated PKCS#12 (key and certificate bags) and of its MAC: above
/// the 100,000 the issue sets and OWASP's 2023 floor for PBKDF2-HMAC-SHA256 with a high-entropy
/// salt; a bundle opens in well under a second.
pub const PKCS12_ITERATIONS: u32 = 210_000;

/// The shortest PKCS#12 password accepted: the bundle travels, and its key is only as safe as
/// this password against an offline guess.
pub const MIN_BUNDLE_PASSWORD_CHARS: usize = 12;

/// A freshly generated private key.
pub struct GeneratedKey {
    key: PKey<Private>,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("key", &"<redacted>")
            .finish()
    }
}

impl GeneratedKey {
    /// A new key of `spec` (RSA 2048–4096, P-256, P-384, Ed25519) from openssl's CSPRNG.
    pub fn generate(spec: KeySpec) -> Result<GeneratedKey, PkiError> {
        Ok(GeneratedKey {
            key: spec.generate()?,
        })
    }

    /// A PKCS#10 request for `subject` and `subject_alt_names`, self-signed with the key, as a
    /// client would send it (the SAN extension written by our DER writer, not through an
    /// openssl configuration string).
    pub fn csr_der(
        &self,
        subject: &DistinguishedName,
        subject_alt_names: &[SubjectAltName],
    ) -> Result<Vec<u8>, PkiError> {
        let mut request = X509ReqBuilder::new()?;
        let name = subject.to_x509_name()?;
        request.set_subject_name(&name)?;
        request.set_pubkey(&self.key)?;
        if !subject_alt_names.is_empty() {
            let der = general_names_der(subject_alt_names);
            let critical = subject.is_empty();
            let oid = openssl::asn1::Asn1Object::from_str("2.5.29.17")?;
            let value = openssl::asn1::Asn1OctetString::new_from_bytes(&der)?;
            let extension = X509Extension::new_from_der(&oid, critical, &value)?;
            let mut extensions = Stack::new()?;
            extensions.push(extension)?;
            request.add_extensions(&extensions)?;
        }
        request.sign(&self.key, signing_digest(&self.key))?;
        Ok(request.build().to_der()?)
    }

    /// A PKCS#12 bundle (RFC 7292) of the key, `certificate_der` and the PEM `chain` (the CA
    /// and its issuers), encrypted with `password`: PBES2 with AES-256-CBC and PBKDF2-HMAC-SHA256
    /// ([`PKCS12_ITERATIONS`]) for both bags, HMAC-SHA256 MAC; no RC2 or 3DES. Errors:
    /// `InvalidParameter` for a password shorter than [`MIN_BUNDLE_PASSWORD_CHARS`].
    pub fn pkcs12(
        &self,
        certificate_der: &[u8],
        chain_pem: &str,
        password: &str,
        friendly_name: &str,
    ) -> Result<Vec<u8>, PkiError> {
        check_password(password)?;
        let certificate = X509::from_der(certificate_der)?;
        let mut chain = Stack::new()?;
        for ca in X509::stack_from_pem(chain_pem.as_bytes())? {
            chain.push(ca)?;
        }
        let bundle = Pkcs12::builder()
            .name(friendly_name)
            .pkey(&self.key)
            .cert(&certificate)
            .ca(chain)
            .key_algorithm(Nid::AES_256_CBC)
            .cert_algorithm(Nid::AES_256_CBC)
            .key_iter(PKCS12_ITERATIONS)
            .mac_iter(PKCS12_ITERATIONS)
            .mac_md(MessageDigest::sha256())
            .build2(password)?;
        Ok(bundle.to_der()?)
    }

    /// The key as PEM: PKCS#8, encrypted with AES-256-CBC (PBES2, PBKDF2) under `password` when
    /// given, else plain `PRIVATE KEY`. Zeroized when dropped.
    pub fn pem(&self, password: Option<&str>) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        Ok(Zeroizing::new(match password {
            Some(password) => {
                check_password(password)?;
                self.key.private_key_to_pem_pkcs8_passphrase(
                    Cipher::aes_256_cbc(),
                    password.as_bytes(),
                )?
            }
            None => self.key.private_key_to_pem_pkcs8()?,
        }))
    }
}

fn check_password(password: &str) -> Result<(), PkiError> {
    if password.chars().count() < MIN_BUNDLE_PASSWORD_CHARS {
        return Err(PkiError::InvalidParameter(format!(
            "the password must have at least {MIN_BUNDLE_PASSWORD_CHARS} characters: it alone protects the private key in the bundle"
        )));
    }
    Ok(())
}
