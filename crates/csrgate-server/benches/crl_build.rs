//! Benchmark (not a test): building and signing the CRL from the store, for 10,000 and 100,000
//! revoked certificates, the way a revocation does it (read the revoked entries, sign, publish);
//! and OCSP answers for revoked serials of the same store (status read, sign or kept answer),
//! in process. Prints medians, and the same run's baseline of one bare P-256 signature.
//!
//! Run: cargo bench -p csrgate-server --bench crl_build

use std::time::Instant;

use csrgate_pki::{
    DistinguishedName, Identity, IdentityRequest, KeySpec, Passphrase, RevocationReason, Serial,
    ValidityPeriod,
};
use csrgate_server::{CrlPublisher, OcspResponder};
use csrgate_store::{CertificateRecord, CertificateStatus, Store};

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tmp");
    let identity = Identity::create(
        &dir.path().join("ca"),
        &IdentityRequest {
            subject: DistinguishedName::from_fields(&[("CN", "CRL bench CA")]).expect("dn"),
            validity: ValidityPeriod::days(3650),
            key: KeySpec::EcP256,
            path_len: None,
        },
        &Passphrase::new("bench".into()).expect("pass"),
        None,
    )
    .expect("identity");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let publisher = CrlPublisher::new(ValidityPeriod::days(7));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let baseline = {
        let started = Instant::now();
        let entries = Vec::new();
        for _ in 0..100 {
            identity
                .sign_crl(
                    &entries,
                    1,
                    time::OffsetDateTime::now_utc(),
                    time::OffsetDateTime::now_utc() + time::Duration::days(1),
                )
                .expect("sign");
        }
        started.elapsed().as_secs_f64() * 1e3 / 100.0
    };
    println!("baseline: empty CRL (one P-256 signature) {baseline:.3} ms");

    let issuer = issuer_hashes(&identity);
    let mut serials: Vec<Serial> = Vec::new();
    let mut revoked = 0;
    for target in [10_000usize, 100_000] {
        runtime.block_on(async {
            let fill = Instant::now();
            // Concurrent writers share group commits; sequential ones would wait for an fsync each.
            while revoked < target {
                let batch = (target - revoked).min(1000);
                let mut tasks = Vec::with_capacity(batch);
                for _ in 0..batch {
                    let store = store.clone();
                    let serial = csrgate_pki::generate_serial().expect("serial");
                    serials.push(serial.clone());
                    tasks.push(tokio::spawn(async move {
                        let record = CertificateRecord {
                            serial: serial.clone(),
                            client_hash: "bench".into(),
                            subject: "CN=bench".into(),
                            subject_alt_names: Vec::new(),
                            public_key_sha1: "00".repeat(20),
                            sha256_fingerprint: "00".repeat(32),
                            not_before: now,
                            not_after: now + 86_400 * 90,
                            issued_at: now,
                            status: CertificateStatus::Valid,
                            der: vec![0x30; 400],
                            revocation: None,
                            deleted: false,
                            replaces: None,
                            replaced_by: None,
                        };
                        store.insert_certificate(&record).await.expect("insert");
                        store.revoke(&serial, RevocationReason::KeyCompromise, None, "bench", now).await.expect("revoke");
                    }));
                }
                for task in tasks {
                    task.await.expect("task");
                }
                revoked += batch;
            }
            println!("filled the store to {target} revocations in {:.1} s", fill.elapsed().as_secs_f64());
            let mut samples = Vec::new();
            let mut size = 0;
            for _ in 0..5 {
                let started = Instant::now();
                publisher.rebuild(&identity, &store).await.expect("rebuild");
                samples.push(started.elapsed().as_secs_f64() * 1e3);
                size = publisher.current().map_or(0, |crl| crl.der.len());
            }
            let ms = median(samples);
            println!(
                "CRL of {target} entries: {ms:.1} ms median (read + sign + publish), {:.1} MB DER, {:.0}x the bare signature",
                size as f64 / 1e6,
                ms / baseline
            );
        });
        ocsp_for_revoked(&identity, &store, &issuer, &serials, target);
    }
}

/// SHA-1 of the CA's subject DER and of its public key bits (RFC 6960 4.1.1), for CertIDs.
fn issuer_hashes(identity: &Identity) -> ([u8; 20], [u8; 20]) {
    let certificate =
        openssl::x509::X509::from_pem(identity.certificate_pem().as_bytes()).expect("ca");
    let name = certificate.subject_name().to_der().expect("name");
    let spki = certificate
        .public_key()
        .expect("key")
        .public_key_to_der()
        .expect("spki");
    // A P-256 key: the uncompressed point is the SPKI's last 65 bytes.
    let bits = &spki[spki.len() - 65..];
    (openssl::sha::sha1(&name), openssl::sha::sha1(bits))
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if content.len() < 0x80 {
        out.push(content.len() as u8);
    } else {
        out.extend_from_slice(&[0x81, content.len() as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// A one-CertID OCSPRequest without nonce (SHA-1, as `openssl ocsp -no_nonce` sends).
fn request_for(issuer: &([u8; 20], [u8; 20]), serial: &Serial) -> Vec<u8> {
    let sha1 = [
        0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
    ];
    let mut magnitude = serial.magnitude().to_vec();
    if magnitude[0] & 0x80 != 0 {
        magnitude.insert(0, 0);
    }
    let mut cert_id = sha1.to_vec();
    cert_id.extend(tlv(0x04, &issuer.0));
    cert_id.extend(tlv(0x04, &issuer.1));
    cert_id.extend(tlv(0x02, &magnitude));
    let request = tlv(0x30, &tlv(0x30, &cert_id));
    tlv(0x30, &tlv(0x30, &tlv(0x30, &request)))
}

/// OCSP answers for 1,000 revoked serials of a store holding `target` revocations: the first
/// answer (status read + signature) and the next one (status read + kept answer), medians.
fn ocsp_for_revoked(
    identity: &Identity,
    store: &Store,
    issuer: &([u8; 20], [u8; 20]),
    serials: &[Serial],
    target: usize,
) {
    // A responder of its own, so no answer is kept from the previous round.
    let responder = OcspResponder::new(
        Some(csrgate_pki::OcspSigner::for_ca(identity).expect("signer")),
        ValidityPeriod::days(7),
        identity.summary().not_after,
        None,
    );
    let step = (serials.len() / 1000).max(1);
    let chosen: Vec<Vec<u8>> = serials
        .iter()
        .step_by(step)
        .take(1000)
        .map(|serial| request_for(issuer, serial))
        .collect();
    let mut first = Vec::new();
    let mut kept = Vec::new();
    let mut status_only = Vec::new();
    // sled answers without waiting: block_on costs a poll, well under the microseconds measured.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for (request, serial) in chosen.iter().zip(serials.iter().step_by(step)) {
        let started = Instant::now();
        let answer = runtime.block_on(responder.answer(request, store));
        first.push(started.elapsed().as_secs_f64() * 1e6);
        assert_eq!(answer.outcome(), "signed", "a successful answer");
        let started = Instant::now();
        let again = runtime.block_on(responder.answer(request, store));
        kept.push(started.elapsed().as_secs_f64() * 1e6);
        assert_eq!(again.outcome(), "cached");
        let started = Instant::now();
        let status = runtime
            .block_on(store.revocation_status(serial))
            .expect("status");
        status_only.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(matches!(
            status,
            csrgate_store::RevocationStatus::Revoked(_)
        ));
    }
    println!(
        "OCSP for revoked serials among {target} revocations: first answer {:.1} µs (status + signature), kept answer {:.1} µs, status read alone {:.1} µs (medians of {})",
        median(first),
        median(kept),
        median(status_only),
        chosen.len()
    );
}
