//! Benchmark (not a test): what csrgate's own certificate path costs per certificate, in
//! process and on one thread, with no HTTP, store or hooks: `ValidatedCsr::parse` (decode, key
//! checks, self-signature), `template_for`, and `Identity::sign` (template check, TBS, CA
//! signature), for each CA key type with a P-256 client CSR.
//!
//! Prints µs per certificate (wall time of a single-threaded loop), medians of 5 rounds. Run under
//! `valgrind --tool=callgrind` for instruction counts that do not depend on the machine's hour.
//! Run: cargo bench -p csrgate-pki --bench issue

use std::time::{Duration, Instant};

use csrgate_pki::{
    DistinguishedName, Identity, IdentityRequest, KeySpec, Passphrase, SigningPolicy, ValidatedCsr,
    ValidityPeriod,
};
use openssl::hash::MessageDigest;
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
        let dir = tempfile::tempdir().expect("tmp");
        let request = IdentityRequest {
            subject: DistinguishedName::from_fields(&[("CN", "bench CA")]).expect("dn"),
            validity: ValidityPeriod::days(3650),
            key,
            path_len: None,
        };
        let passphrase = Passphrase::new("bench passphrase".to_owned()).expect("passphrase");
        let ca = Identity::create(dir.path(), &request, &passphrase, None).expect("identity");
        let (mut parse, mut sign) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
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
        let (parse, sign) = (median(parse), median(sign));
        println!(
            "  {label:<12} parse + verify CSR {parse:6.1} µs   template + sign {sign:6.1} µs   total {:6.1} µs",
            parse + sign
        );
    }
}
