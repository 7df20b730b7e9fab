//! The crypto side of the benchmark, in-process with openssl: the client CSRs sent to every
//! server, the CA keys of the peer, and two baselines on one core:
//! - raw: the signatures alone (hash + ECDSA verify of a CSR-sized message with a P-256 client
//!   key, hash + sign of a certificate-sized message with the CA key): the floor no CA can go
//!   below, and what every ratio is taken against;
//! - X509 API: what a straightforward openssl CA does per request (parse the CSR, verify it,
//!   build and sign a certificate with `X509Builder`, encode it).

use std::time::{Duration, Instant};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509Builder, X509NameBuilder, X509Req, X509ReqBuilder};

/// A CA key type of a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaKey {
    P256,
    Rsa2048,
}

impl CaKey {
    pub fn label(self) -> &'static str {
        match self {
            CaKey::P256 => "P-256",
            CaKey::Rsa2048 => "RSA-2048",
        }
    }

    /// The `csrgate identity create --key` spelling.
    pub fn identity_flag(self) -> &'static str {
        match self {
            CaKey::P256 => "ec:p256",
            CaKey::Rsa2048 => "rsa:2048",
        }
    }

    pub fn generate(self) -> Result<PKey<Private>, openssl::error::ErrorStack> {
        match self {
            CaKey::P256 => p256_key(),
            CaKey::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?),
        }
    }
}

fn p256_key() -> Result<PKey<Private>, openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

/// `count` P-256 CSRs in PEM, each with its own key, CN and DNS/IP SANs that the example
/// san-policy plugin accepts (`*.internal`, 10.0.0.0/8).
pub fn client_csrs(count: usize) -> Result<Vec<Vec<u8>>, openssl::error::ErrorStack> {
    (0..count)
        .map(|i| {
            let key = p256_key()?;
            let mut name = X509NameBuilder::new()?;
            name.append_entry_by_text("CN", &format!("bench-{i}.internal"))?;
            let mut builder = X509ReqBuilder::new()?;
            builder.set_subject_name(&name.build())?;
            builder.set_pubkey(&key)?;
            let mut extensions = Stack::new()?;
            extensions.push(
                SubjectAlternativeName::new()
                    .dns(&format!("bench-{i}.internal"))
                    .ip(&format!("10.0.{}.{}", i / 250, i % 250 + 1))
                    .build(&builder.x509v3_context(None))?,
            )?;
            builder.add_extensions(&extensions)?;
            builder.sign(&key, MessageDigest::sha256())?;
            builder.build().to_pem()
        })
        .collect()
}

/// A self-signed CA certificate for `key` (the peer's CA).
pub fn self_signed_ca(key: &PKey<Private>) -> Result<X509, openssl::error::ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "bench peer CA")?;
    let name = name.build();
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    builder.set_serial_number(&*random_serial()?)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(key)?;
    builder.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    builder.set_not_after(&*Asn1Time::days_from_now(3650)?)?;
    builder.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    builder.sign(key, MessageDigest::sha256())?;
    Ok(builder.build())
}

fn random_serial() -> Result<Asn1Integer, openssl::error::ErrorStack> {
    let mut serial = BigNum::new()?;
    serial.rand(159, MsbOption::MAYBE_ZERO, false)?;
    serial.to_asn1_integer()
}

/// One unit of the baseline: parse and verify the CSR, sign a certificate for its key and
/// subject with basicConstraints and the SANs, encode it.
fn verify_and_sign(
    csr_pem: &[u8],
    ca_key: &PKey<Private>,
    ca: &X509,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let request = X509Req::from_pem(csr_pem)?;
    let public_key = request.public_key()?;
    assert!(request.verify(&public_key)?, "CSR signature");
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    builder.set_serial_number(&*random_serial()?)?;
    builder.set_subject_name(request.subject_name())?;
    builder.set_issuer_name(ca.subject_name())?;
    builder.set_pubkey(&public_key)?;
    builder.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    builder.set_not_after(&*Asn1Time::days_from_now(90)?)?;
    builder.append_extension(BasicConstraints::new().critical().build()?)?;
    for extension in request.extensions()? {
        builder.append_extension(extension)?;
    }
    builder.sign(ca_key, MessageDigest::sha256())?;
    builder.build().to_der()
}

/// Median µs of one X509-API verify + sign on this thread (one core).
pub fn x509_api_us(ca: CaKey, csrs: &[Vec<u8>]) -> Result<f64, openssl::error::ErrorStack> {
    let key = ca.generate()?;
    let certificate = self_signed_ca(&key)?;
    let mut next = csrs.iter().cycle();
    time_per_op(|| {
        let csr = next.next().expect("cycle never ends");
        verify_and_sign(csr, &key, &certificate).map(drop)
    })
}

/// Median µs of the raw signatures of one certificate on this thread (one core): verify a
/// P-256 ECDSA signature over a 300-byte CSR body, sign a 500-byte TBS with the CA key.
pub fn raw_signatures_us(ca: CaKey) -> Result<f64, openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let clients: Vec<(EcKey<openssl::pkey::Public>, Vec<u8>, EcdsaSig)> = (0..64)
        .map(|i| {
            let key = EcKey::generate(&group)?;
            let message = vec![i as u8; 300];
            let signature = EcdsaSig::sign(&openssl::sha::sha256(&message), &key)?;
            let public = EcKey::from_public_key(&group, key.public_key())?;
            Ok((public, message, signature))
        })
        .collect::<Result<_, openssl::error::ErrorStack>>()?;
    let ca_key = ca.generate()?;
    let tbs = vec![0x5a_u8; 500];
    let mut next = clients.iter().cycle();
    time_per_op(|| {
        let (public, message, signature) = next.next().expect("cycle never ends");
        assert!(signature.verify(&openssl::sha::sha256(message), public)?);
        let digest = openssl::sha::sha256(&tbs);
        match ca {
            CaKey::P256 => {
                EcdsaSig::sign(&digest, &*ca_key.ec_key()?)?;
            }
            CaKey::Rsa2048 => {
                let rsa = ca_key.rsa()?;
                let mut out = vec![0u8; rsa.size() as usize];
                let mut info = SHA256_DIGEST_INFO.to_vec();
                info.extend_from_slice(&digest);
                rsa.private_encrypt(&info, &mut out, Padding::PKCS1)?;
            }
        }
        Ok(())
    })
}

/// Median µs of one P-256 ECDSA signature over the SHA-256 of a 200-byte body (an OCSP
/// ResponseData), on one core: what a responder pays per answer it signs.
pub fn raw_p256_signature_us() -> Result<f64, openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = EcKey::generate(&group)?;
    let body = vec![0xa5_u8; 200];
    time_per_op(|| EcdsaSig::sign(&openssl::sha::sha256(&body), &key).map(drop))
}

const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// Median µs per call of `op` over 5 batches of ~0.3 s.
fn time_per_op(
    mut op: impl FnMut() -> Result<(), openssl::error::ErrorStack>,
) -> Result<f64, openssl::error::ErrorStack> {
    let mut samples = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut done = 0usize;
        while started.elapsed() < Duration::from_millis(300) {
            for _ in 0..16 {
                op()?;
            }
            done += 16;
        }
        samples.push(started.elapsed().as_secs_f64() * 1e6 / done as f64);
    }
    Ok(crate::median(samples))
}
