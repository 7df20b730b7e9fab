//! Benchmark (not a test): what csrgate's own certificate path costs per certificate, in
//! process and on one thread, with no HTTP, store or hooks: `ValidatedCsr::parse` (decode, key
//! checks, self-signature), `template_for`, and `Identity::sign` (template check, TBS, CA
//! signature), for each CA key type with a P-256 client CSR.
//!
//! Baseline, measured in the same rounds (alternating with csrgate's path): the raw signatures of
//! one certificate, defined as in the gateway benchmark: SHA-256 + ECDSA verify of a 300-byte
//! message with a P-256 client key, SHA-256 + sign of a 500-byte TBS with a CA key of the same
//! type (`ECDSA_do_sign`, or RSA PKCS#1 v1.5 by `RSA_private_encrypt`).
//!
//! Prints µs per certificate (wall time of a single-threaded loop), medians of 5 rounds, and the
//! ratio to the baseline. Run under
//! `valgrind --tool=callgrind` for instruction counts that do not depend on the machine's hour.
//! Run: cargo bench -p csrgate-pki --bench issue

use std::time::{Duration, Instant};

use csrgate_pki::{
    DistinguishedName, Identity, IdentityRequest, KeySpec, Passphrase, SigningPolicy, ValidatedCsr,
    ValidityPeriod,
};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::x509::X509ReqBuilder;

const CERTIFICATES: usize = 2_000;
const ROUNDS: usize = 5;

fn client_csr(cn: &str) -> Vec<u8> {
    let group =
        openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("group");
    let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("ec"))
        .expect("pkey");
    let mut builder = X509ReqBuilder::new().expect("req");
    builder.set_pubkey(&key).expect("pubkey");
    let mut name = openssl::x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", cn).expect("cn");
    builder.set_subject_name(&name.build()).expect("subject");
    builder.sign(&key, MessageDigest::sha256()).expect("sign");
    builder.build().to_der().expect("der")
}

/// The raw signatures' inputs: client keys with signed messages, and a CA key.
struct RawSignatures {
    clients: Vec<(EcKey<Public>, Vec<u8>, EcdsaSig)>,
    ca_key: PKey<Private>,
    tbs: Vec<u8>,
}

/// DigestInfo prefix of a SHA-256 digest (RFC 8017 9.2 note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

impl RawSignatures {
    fn new(ca_key: PKey<Private>) -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        let clients = (0..64)
            .map(|i| {
                let key = EcKey::generate(&group).expect("key");
                let message = vec![i as u8; 300];
                let signature =
                    EcdsaSig::sign(&openssl::sha::sha256(&message), &key).expect("sign");
                let public = EcKey::from_public_key(&group, key.public_key()).expect("public");
                (public, message, signature)
            })
            .collect();
        RawSignatures {
            clients,
            ca_key,
            tbs: vec![0x5a; 500],
        }
    }

    fn one(&self, i: usize) {
        let (public, message, signature) = &self.clients[i % self.clients.len()];
        let verified = signature
            .verify(&openssl::sha::sha256(message), public)
            .expect("verify");
        assert!(verified);
        let digest = openssl::sha::sha256(&self.tbs);
        if let Ok(ec) = self.ca_key.ec_key() {
            std::hint::black_box(EcdsaSig::sign(&digest, &ec).expect("sign"));
        } else {
            let rsa = self.ca_key.rsa().expect("rsa");
            let mut out = vec![0u8; rsa.size() as usize];
            let mut info = SHA256_DIGEST_INFO.to_vec();
            info.extend_from_slice(&digest);
            rsa.private_encrypt(&info, &mut out, Padding::PKCS1)
                .expect("sign");
            std::hint::black_box(out);
        }
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let csrs: Vec<Vec<u8>> = (0..64)
        .map(|i| client_csr(&format!("bench-{i}.internal")))
        .collect();
    let policy = SigningPolicy::default();
    println!(
        "csrgate's certificate path, one thread, P-256 client CSRs ({CERTIFICATES} per round, medians of {ROUNDS} rounds):"
    );
    for (label, key) in [
        ("CA P-256", KeySpec::EcP256),
        ("CA RSA-2048", KeySpec::Rsa(2048)),
    ] {
        let raw = RawSignatures::new(match key {
            KeySpec::EcP256 => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
                PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey")
            }
            _ => PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey"),
        });
        let dir = tempfile::tempdir().expect("tmp");
        let request = IdentityRequest {
            subject: DistinguishedName::from_fields(&[("CN", "bench CA")]).expect("dn"),
            validity: ValidityPeriod::days(3650),
            key,
            path_len: None,
        };
        let passphrase = Passphrase::new("bench passphrase".to_owned()).expect("passphrase");
        let ca = Identity::create(dir.path(), &request, &passphrase, None).expect("identity");
        let (mut parse, mut sign, mut baseline) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let started = Instant::now();
            for i in 0..CERTIFICATES {
                raw.one(i);
            }
            baseline.push(started.elapsed().as_secs_f64() * 1e6 / CERTIFICATES as f64);
            let (mut parsing, mut signing) = (Duration::ZERO, Duration::ZERO);
            for i in 0..CERTIFICATES {
                let started = Instant::now();
                let csr = ValidatedCsr::parse(&csrs[i % csrs.len()]).expect("csr");
                let parsed = Instant::now();
                let template =
                    ca.summary()
                        .template_for(&csr, &policy, time::OffsetDateTime::now_utc());
                let issued = ca.sign(&csr, &template, &policy).expect("sign");
                std::hint::black_box(issued);
                let signed = Instant::now();
                parsing += parsed - started;
                signing += signed - parsed;
            }
            parse.push(parsing.as_secs_f64() * 1e6 / CERTIFICATES as f64);
            sign.push(signing.as_secs_f64() * 1e6 / CERTIFICATES as f64);
        }
        let (parse, sign, baseline) = (median(parse), median(sign), median(baseline));
        println!(
            "  {label:<12} raw signatures {baseline:6.1} µs   csrgate: parse + verify CSR {parse:6.1} µs, template + sign {sign:6.1} µs, total {:6.1} µs ({:.2}x raw)",
            parse + sign,
            (parse + sign) / baseline
        );
    }
}
