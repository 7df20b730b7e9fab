//! Fuzz target: request bytes → `ValidatedCsr` → certificate template → signed certificate, the
//! path every `PUT /<client_hash>` body takes before any plugin. Refusals are fine when they are
//! a requester's 400 (`InvalidCsr`, `WeakKey`); any other error would be a 5xx for a requester's
//! mistake. Panics, aborts, leaks and hangs are findings too. An accepted CSR must sign, into a
//! certificate that openssl parses back byte for byte.

#![no_main]

use std::sync::OnceLock;

use csrgate_pki::{
    DistinguishedName, Identity, IdentityRequest, KeySpec, Passphrase, PkiError, SigningPolicy,
    ValidatedCsr, ValidityPeriod,
};
use libfuzzer_sys::fuzz_target;

fn identity() -> &'static Identity {
    static IDENTITY: OnceLock<Identity> = OnceLock::new();
    IDENTITY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("csrgate-fuzz-ca-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let passphrase = Passphrase::new("fuzzing only".into()).expect("passphrase");
        let identity = Identity::create(
            &dir,
            &IdentityRequest {
                subject: DistinguishedName::from_fields(&[("CN", "fuzz CA")]).expect("dn"),
                validity: ValidityPeriod::days(365),
                key: KeySpec::EcP256,
                path_len: None,
            },
            &passphrase,
            None,
        )
        .expect("fuzz CA");
        let _ = std::fs::remove_dir_all(&dir);
        identity
    })
}

fuzz_target!(|data: &[u8]| {
    let csr = match ValidatedCsr::parse(data) {
        Ok(csr) => csr,
        Err(PkiError::InvalidCsr(_) | PkiError::WeakKey(_)) => return,
        Err(other) => panic!("a request fault that is not a 400: {other}"),
    };
    let ca = identity();
    let policy = SigningPolicy::default();
    let template = ca
        .summary()
        .template_for(&csr, &policy, time::OffsetDateTime::now_utc());
    let issued = ca
        .sign(&csr, &template, &policy)
        .expect("an accepted request signs (a refusal here would be a 5xx)");
    let parsed = openssl::x509::X509::from_der(&issued.der).expect("openssl parses our DER");
    assert_eq!(parsed.to_der().expect("re-encode"), issued.der, "non-canonical DER");
    assert!(issued.pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
});
