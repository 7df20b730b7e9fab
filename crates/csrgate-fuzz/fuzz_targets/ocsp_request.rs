//! Fuzz target: request bytes → `OcspRequest` → a signed response, the path of every `POST
//! /ocsp` and `GET /ocsp/<base64>` body. A refusal is a `malformedRequest` (never a panic); an
//! accepted request must sign into a response that openssl parses back byte for byte, whose
//! signature verifies, and that answers every CertID it was asked about.

#![no_main]

use std::sync::OnceLock;

use csrgate_pki::{
    CertStatus, DistinguishedName, Identity, IdentityRequest, KeySpec, OcspRequest, OcspSigner,
    Passphrase, RevocationReason, ValidityPeriod,
};
use libfuzzer_sys::fuzz_target;

fn signer() -> &'static (OcspSigner, openssl::x509::X509) {
    static SIGNER: OnceLock<(OcspSigner, openssl::x509::X509)> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("csrgate-fuzz-ocsp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let passphrase = Passphrase::new("fuzzing only".into()).expect("passphrase");
        let identity = Identity::create(
            &dir,
            &IdentityRequest {
                subject: DistinguishedName::from_fields(&[("CN", "fuzz OCSP CA")]).expect("dn"),
                validity: ValidityPeriod::days(365),
                key: KeySpec::EcP256,
                path_len: None,
            },
            &passphrase,
            None,
        )
        .expect("fuzz CA");
        let _ = std::fs::remove_dir_all(&dir);
        let certificate =
            openssl::x509::X509::from_pem(identity.certificate_pem().as_bytes()).expect("CA");
        (OcspSigner::for_ca(&identity).expect("signer"), certificate)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = OcspRequest::parse(data) else {
        return;
    };
    let (signer, ca) = signer();
    let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
    let statuses = [
        CertStatus::Good,
        CertStatus::Unknown,
        CertStatus::Revoked {
            revocation_time: now,
            reason: RevocationReason::KeyCompromise,
        },
    ];
    let entries: Vec<_> = request
        .cert_ids
        .iter()
        .zip(statuses.iter().cycle().copied())
        .collect();
    let der = signer
        .sign_response(
            &entries,
            request.nonce.as_deref(),
            now,
            now + time::Duration::days(1),
        )
        .expect("an accepted request signs");
    let parsed = openssl::ocsp::OcspResponse::from_der(&der).expect("openssl parses our DER");
    assert_eq!(parsed.to_der().expect("re-encode"), der, "non-canonical DER");
    let basic = parsed.basic().expect("a basic response");
    let mut issuer = openssl::stack::Stack::new().expect("stack");
    issuer.push(ca.clone()).expect("push");
    let mut store = openssl::x509::store::X509StoreBuilder::new().expect("store");
    store.add_cert(ca.clone()).expect("add");
    basic
        .verify(
            &issuer,
            &store.build(),
            openssl::ocsp::OcspFlag::TRUST_OTHER | openssl::ocsp::OcspFlag::NO_CHECKS,
        )
        .expect("the signature verifies");
});
