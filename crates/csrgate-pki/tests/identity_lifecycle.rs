//! Crate-level tests: create root and intermediate identities on disk, unlock them, sign CSRs of
//! every accepted key type and check each certificate with openssl's own chain verification.

use csrgate_pki::{
    DistinguishedName, Identity, IdentityFiles, IdentityRequest, KeySpec, Passphrase, PkiError,
    SigningPolicy, ValidatedCsr, ValidityPeriod,
};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509NameBuilder, X509ReqBuilder, X509StoreContext};
use x509_parser::prelude::FromDer as _;

fn passphrase(text: &str) -> Passphrase {
    Passphrase::new(text.to_owned()).expect("passphrase")
}

fn request(cn: &str, key: KeySpec, years: i64) -> IdentityRequest {
    IdentityRequest {
        subject: DistinguishedName::from_fields(&[("CN", cn), ("O", "csrgate tests")]).expect("dn"),
        validity: ValidityPeriod::days(365 * years),
        key,
        path_len: None,
    }
}

fn csr_der(key_spec: &str) -> Vec<u8> {
    let key = match key_spec {
        "rsa" => PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("pkey"),
        "ed25519" => PKey::generate_ed25519().expect("ed25519"),
        "ec-p384" => {
            let group =
                openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).expect("group");
            PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("ec")).expect("pkey")
        }
        _ => {
            let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                .expect("group");
            PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("ec")).expect("pkey")
        }
    };
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "leaf.example").expect("cn");
    let mut builder = X509ReqBuilder::new().expect("req");
    builder.set_pubkey(&key).expect("pubkey");
    builder.set_subject_name(&name.build()).expect("subject");
    let digest = if key_spec == "ed25519" {
        MessageDigest::null()
    } else {
        MessageDigest::sha256()
    };
    builder.sign(&key, digest).expect("sign");
    builder.build().to_der().expect("der")
}

/// csrgate writes certificate DER itself; openssl must read it back byte for byte, verify its
/// signature, and find the key identifiers it would have computed.
#[test]
fn our_certificate_der_is_canonical_and_verified_by_openssl_for_every_ca_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let policy = SigningPolicy::default();
    for ca_key in [
        KeySpec::EcP256,
        KeySpec::EcP384,
        KeySpec::Rsa(2048),
        KeySpec::Ed25519,
    ] {
        let ca = Identity::create(
            &tmp.path().join(ca_key.to_string().replace(':', "-")),
            &request("DER CA", ca_key, 2),
            &passphrase("pass"),
            None,
        )
        .expect("ca");
        let ca_cert = X509::from_pem(ca.certificate_pem().as_bytes()).expect("ca cert");
        for leaf_key in ["ec", "ec-p384", "rsa", "ed25519"] {
            let csr = ValidatedCsr::parse(&csr_der(leaf_key)).expect("csr");
            let template =
                ca.summary()
                    .template_for(&csr, &policy, time::OffsetDateTime::now_utc());
            let issued = ca.sign(&csr, &template, &policy).expect("sign");
            let leaf = X509::from_der(&issued.der).expect("openssl parses our DER");
            let what = format!("CA {ca_key}, leaf {leaf_key}");
            assert_eq!(
                leaf.to_der().expect("der"),
                issued.der,
                "{what}: not canonical"
            );
            assert_eq!(
                X509::from_pem(issued.pem.as_bytes())
                    .expect("pem")
                    .to_der()
                    .expect("der"),
                issued.der
            );
            assert!(
                leaf.verify(&ca_cert.public_key().expect("ca key"))
                    .expect("verify ran"),
                "{what}: signature"
            );
            assert!(verify_chain(&issued.pem, ca.chain_pem()), "{what}: chain");
            let leaf_bits = {
                let spki = leaf
                    .public_key()
                    .expect("leaf key")
                    .public_key_to_der()
                    .expect("spki");
                // The BIT STRING is the last element of the SPKI; skip its tag, length, unused-bits.
                let (_, parsed) =
                    x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).expect("spki");
                parsed.subject_public_key.data.to_vec()
            };
            assert_eq!(
                leaf.subject_key_id().expect("SKI").as_slice(),
                openssl::sha::sha1(&leaf_bits).as_slice(),
                "{what}: SKI"
            );
            assert_eq!(
                leaf.authority_key_id().expect("AKI").as_slice(),
                ca_cert.subject_key_id().expect("CA SKI").as_slice(),
                "{what}: AKI"
            );
            assert_eq!(
                leaf.issuer_name().to_der().expect("issuer"),
                ca_cert.subject_name().to_der().expect("subject")
            );
            assert_eq!(
                hex::encode(leaf.digest(MessageDigest::sha256()).expect("digest")),
                issued.sha256_fingerprint
            );
            let text = String::from_utf8(leaf.to_text().expect("text")).expect("utf8");
            assert!(
                text.contains("X509v3 Basic Constraints: critical\n                CA:FALSE"),
                "{what}: {text}"
            );
            assert!(
                text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
                "{what}: {text}"
            );
        }
    }
}

fn verify_chain(leaf_pem: &str, chain_pem: &str) -> bool {
    let leaf = X509::from_pem(leaf_pem.as_bytes()).expect("leaf");
    let chain = X509::stack_from_pem(chain_pem.as_bytes()).expect("chain");
    let root = chain.last().expect("root").clone();
    let mut store = X509StoreBuilder::new().expect("store");
    store.add_cert(root).expect("add root");
    let store = store.build();
    let mut untrusted = Stack::new().expect("stack");
    for cert in &chain[..chain.len() - 1] {
        untrusted.push(cert.clone()).expect("push");
    }
    let mut context = X509StoreContext::new().expect("ctx");
    context
        .init(&store, &leaf, &untrusted, |c| c.verify_cert())
        .expect("verify ran")
}

#[test]
fn root_and_intermediate_sign_verifiable_leaves() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root_dir = tmp.path().join("root");
    let root = Identity::create(
        &root_dir,
        &request("Root", KeySpec::EcP384, 10),
        &passphrase("root-pass"),
        None,
    )
    .expect("root");
    let mut inter_request = request("Intermediate", KeySpec::EcP256, 20);
    inter_request.path_len = Some(0);
    let inter_dir = tmp.path().join("inter");
    let intermediate = Identity::create(
        &inter_dir,
        &inter_request,
        &passphrase("inter-pass"),
        Some(&root),
    )
    .expect("intermediate");
    // An intermediate never outlives its issuer.
    assert!(intermediate.summary().not_after <= root.summary().not_after);
    assert_eq!(intermediate.summary().chain_length, 2);

    let policy = SigningPolicy::default();
    for identity in [&root, &intermediate] {
        for key in ["ec", "rsa", "ed25519"] {
            let csr = ValidatedCsr::parse(&csr_der(key)).expect("csr");
            let template =
                identity
                    .summary()
                    .template_for(&csr, &policy, time::OffsetDateTime::now_utc());
            let issued = identity.sign(&csr, &template, &policy).expect("sign");
            assert!(
                verify_chain(&issued.pem, identity.chain_pem()),
                "{key} leaf does not verify"
            );
            assert!(issued.serial.magnitude().len() <= 20);
        }
    }

    // Reload from disk: the right passphrase unlocks, the wrong one is a typed error.
    let files = IdentityFiles::open(&inter_dir).expect("open");
    assert!(files.key_is_encrypted());
    assert!(matches!(
        IdentityFiles::open(&inter_dir)
            .expect("open")
            .unlock(Some(&passphrase("nope"))),
        Err(PkiError::WrongPassphrase(_))
    ));
    assert!(matches!(
        IdentityFiles::open(&inter_dir).expect("open").unlock(None),
        Err(PkiError::PassphraseRequired(_))
    ));
    let reloaded = files
        .unlock(Some(&passphrase("inter-pass")))
        .expect("unlock");
    assert_eq!(reloaded.chain_pem(), intermediate.chain_pem());
    assert!(!format!("{reloaded:?}").contains("PRIVATE"));

    // Refuses to overwrite.
    assert!(matches!(
        Identity::create(&inter_dir, &inter_request, &passphrase("x"), None),
        Err(PkiError::IdentityExists(_))
    ));
}

#[test]
fn key_file_is_encrypted_pkcs8_and_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().expect("tmp");
    Identity::create(
        tmp.path(),
        &request("CA", KeySpec::Ed25519, 1),
        &passphrase("pw"),
        None,
    )
    .expect("create");
    let key_path = tmp.path().join("ca.private_key.pem");
    let mode = std::fs::metadata(&key_path)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&key_path).expect("read");
    assert!(text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    for name in ["ca.cert.pem", "ca.csr.pem", "ca.public_key.pem"] {
        assert!(tmp.path().join(name).exists(), "{name}");
    }
    assert!(!tmp.path().join("ca.chain.pem").exists());
}

#[test]
fn templates_past_the_ca_or_policy_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ca = Identity::create(
        tmp.path(),
        &request("CA", KeySpec::EcP256, 1),
        &passphrase("pw"),
        None,
    )
    .expect("create");
    let policy = SigningPolicy::default();
    let csr = ValidatedCsr::parse(&csr_der("ec")).expect("csr");
    let now = time::OffsetDateTime::now_utc();
    let template = ca.summary().template_for(&csr, &policy, now);
    assert!(template.not_after <= ca.summary().not_after);

    let mut past_ca = template.clone();
    past_ca.not_after = ca.summary().not_after + time::Duration::days(1);
    assert!(matches!(
        ca.sign(&csr, &past_ca, &policy),
        Err(PkiError::InvalidTemplate(_))
    ));

    let mut inverted = template.clone();
    inverted.not_before = inverted.not_after;
    assert!(matches!(
        ca.sign(&csr, &inverted, &policy),
        Err(PkiError::InvalidTemplate(_))
    ));

    let strict = SigningPolicy {
        max_validity: ValidityPeriod::days(30),
        ..policy.clone()
    };
    assert!(matches!(
        ca.sign(&csr, &template, &strict),
        Err(PkiError::InvalidTemplate(_))
    ));
}

#[test]
fn cdp_aia_and_extra_extensions_are_encoded_and_checked() {
    use csrgate_pki::RawExtension;
    let tmp = tempfile::tempdir().expect("tmp");
    let ca = Identity::create(
        tmp.path(),
        &request("CA", KeySpec::EcP256, 1),
        &passphrase("pw"),
        None,
    )
    .expect("create");
    let policy = SigningPolicy::default();
    let csr = ValidatedCsr::parse(&csr_der("ec")).expect("csr");
    let mut template = ca
        .summary()
        .template_for(&csr, &policy, time::OffsetDateTime::now_utc());
    template.crl_distribution_points = vec!["http://ca.example/crl".into()];
    template.ocsp_urls = vec!["http://ocsp.example".into()];
    template.ca_issuer_urls = vec!["http://ca.example/ca.pem".into()];
    template.extra_extensions = vec![RawExtension {
        oid: "1.3.6.1.4.1.99999.7".into(),
        critical: false,
        value: vec![0x0c, 0x02, b'h', b'i'],
    }];
    let issued = ca.sign(&csr, &template, &policy).expect("sign");
    let text = String::from_utf8(
        X509::from_der(&issued.der)
            .expect("der")
            .to_text()
            .expect("text"),
    )
    .expect("utf8");
    assert!(text.contains("X509v3 CRL Distribution Points"), "{text}");
    assert!(text.contains("URI:http://ca.example/crl"), "{text}");
    assert!(text.contains("OCSP - URI:http://ocsp.example"), "{text}");
    assert!(
        text.contains("CA Issuers - URI:http://ca.example/ca.pem"),
        "{text}"
    );
    assert!(text.contains("1.3.6.1.4.1.99999.7"), "{text}");
    assert!(verify_chain(&issued.pem, ca.chain_pem()));

    let refused = [
        ("2.5.29.19", vec![0x30, 0x03, 0x01, 0x01, 0xff]),
        ("1.3.6.1.5.5.7.1.1", vec![0x30, 0x00]),
        ("1.2.3", vec![0x30, 0x05, 0x01]),
        ("1.2.3", vec![0x05, 0x00, 0x00]),
        ("not.an.oid", vec![0x05, 0x00]),
    ];
    for (oid, value) in refused {
        let mut bad = template.clone();
        bad.extra_extensions = vec![RawExtension {
            oid: oid.into(),
            critical: false,
            value,
        }];
        assert!(
            matches!(
                ca.sign(&csr, &bad, &policy),
                Err(PkiError::InvalidTemplate(_))
            ),
            "{oid} accepted"
        );
    }
    let mut bad_uri = template.clone();
    bad_uri.crl_distribution_points = vec!["not a uri".into()];
    assert!(matches!(
        ca.sign(&csr, &bad_uri, &policy),
        Err(PkiError::InvalidTemplate(_))
    ));
}

#[test]
fn crls_verify_for_every_ca_key_type_and_list_their_entries() {
    use csrgate_pki::{CrlEntry, RevocationReason};
    use openssl::x509::X509Crl;
    for key in [
        KeySpec::EcP256,
        KeySpec::EcP384,
        KeySpec::Rsa(2048),
        KeySpec::Ed25519,
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let ca = Identity::create(
            tmp.path(),
            &request("CRL CA", key, 1),
            &passphrase("pw"),
            None,
        )
        .expect("create");
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("ns");
        let entries: Vec<CrlEntry> = (0..50)
            .map(|i| CrlEntry {
                serial: csrgate_pki::generate_serial().expect("serial"),
                revoked_at: now,
                reason: if i % 2 == 0 {
                    RevocationReason::KeyCompromise
                } else {
                    RevocationReason::Unspecified
                },
                invalidity_date: (i % 3 == 0).then_some(now - time::Duration::days(1)),
            })
            .collect();
        let crl = ca
            .sign_crl(&entries, 7, now, now + time::Duration::days(7))
            .expect("sign");
        let parsed = X509Crl::from_der(&crl.der).expect("openssl parses our CRL");
        let ca_cert = X509::from_pem(ca.certificate_pem().as_bytes()).expect("ca");
        assert!(
            parsed
                .verify(&ca_cert.public_key().expect("key"))
                .expect("verify"),
            "{key:?}"
        );
        assert_eq!(parsed.get_revoked().map(|r| r.len()), Some(50));
        assert_eq!(
            X509Crl::from_pem(crl.pem.as_bytes())
                .expect("pem")
                .to_der()
                .expect("der"),
            crl.der
        );
        let der_path = tmp.path().join("crl.der");
        std::fs::write(&der_path, &crl.der).expect("write");
        let out = std::process::Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(&der_path)
            .output()
            .expect("openssl crl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf8");
        assert!(text.contains("Version 2"), "{text}");
        assert!(
            text.contains("X509v3 CRL Number") && text.contains("7"),
            "{text}"
        );
        assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(text.contains("Invalidity Date"), "{text}");
    }
}

/// OCSP responses are ours too: openssl must parse them, re-encode them byte for byte, verify
/// them against the CA alone (signed by the CA, or by a delegated responder the CA issued), and
/// find the status, time and reason of each CertID it asked about, for SHA-1 and SHA-256
/// CertIDs.
#[test]
fn ocsp_responses_verify_in_openssl_for_every_ca_key_and_both_signers() {
    use csrgate_pki::{CertStatus, OcspRequest, OcspSigner, RevocationReason};
    use openssl::ocsp::{
        OcspCertId, OcspCertStatus, OcspFlag, OcspRequest as OpensslRequest, OcspResponse,
        OcspRevokedStatus,
    };
    use openssl::x509::store::X509StoreBuilder;
    for key in [
        KeySpec::EcP256,
        KeySpec::EcP384,
        KeySpec::Rsa(2048),
        KeySpec::Ed25519,
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let pass = passphrase("pw");
        let ca =
            Identity::create(tmp.path(), &request("OCSP CA", key, 1), &pass, None).expect("create");
        let ca_cert = X509::from_pem(ca.certificate_pem().as_bytes()).expect("ca");
        let policy = SigningPolicy::default();
        let leaf = |_: usize| {
            let csr = ValidatedCsr::parse(&csr_der("ec")).expect("csr");
            let template =
                ca.summary()
                    .template_for(&csr, &policy, time::OffsetDateTime::now_utc());
            X509::from_der(&ca.sign(&csr, &template, &policy).expect("sign").der).expect("leaf")
        };
        let leaves: Vec<X509> = (0..3).map(leaf).collect();
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("ns");
        let revoked_at = now - time::Duration::hours(2);
        let statuses = [
            CertStatus::Good,
            CertStatus::Revoked {
                revocation_time: revoked_at,
                reason: RevocationReason::KeyCompromise,
            },
            CertStatus::Unknown,
        ];
        let delegated = ca
            .issue_ocsp_signer(tmp.path(), Some(&pass), ValidityPeriod::days(7))
            .expect("delegated responder");
        let reloaded =
            OcspSigner::load_delegated(&ca, tmp.path(), Some(&pass)).expect("load delegated");
        assert_eq!(
            reloaded.delegated_responder(),
            delegated.delegated_responder()
        );
        let responder = X509::from_pem(
            &std::fs::read(tmp.path().join(csrgate_pki::OCSP_SIGNER_CERT_FILE)).expect("crt"),
        )
        .expect("responder cert");
        let responder_text =
            String::from_utf8_lossy(&responder.to_text().expect("text")).into_owned();
        assert!(responder_text.contains("OCSP Signing"), "{responder_text}");
        assert!(responder_text.contains("OCSP No Check"), "{responder_text}");
        assert!(responder_text.contains("CA:FALSE"), "{responder_text}");
        for (signer_name, signer) in [
            ("CA", OcspSigner::for_ca(&ca).expect("ca signer")),
            ("delegated", reloaded),
        ] {
            for digest in [MessageDigest::sha1(), MessageDigest::sha256()] {
                let mut asked = OpensslRequest::new().expect("request");
                for leaf in &leaves {
                    asked
                        .add_id(OcspCertId::from_cert(digest, leaf, &ca_cert).expect("id"))
                        .expect("add");
                }
                let parsed = OcspRequest::parse(&asked.to_der().expect("der")).expect("parse");
                assert_eq!(parsed.cert_ids.len(), 3);
                assert!(parsed.cert_ids.iter().all(|id| signer.answers_for(id)));
                let entries: Vec<_> = parsed.cert_ids.iter().zip(statuses).collect();
                let der = signer
                    .sign_response(&entries, None, now, now + time::Duration::days(1))
                    .expect("sign response");
                let response = OcspResponse::from_der(&der).expect("openssl parses");
                assert_eq!(
                    response.to_der().expect("der"),
                    der,
                    "{key:?} {signer_name}"
                );
                let basic = response.basic().expect("basic");
                let mut store = X509StoreBuilder::new().expect("store");
                store.add_cert(ca_cert.clone()).expect("add");
                let store = store.build();
                // A CA-signed response carries no certificate: the client has the issuer, and
                // passes it as `openssl ocsp -issuer` does (OCSP_TRUSTOTHER).
                let mut issuer = Stack::new().expect("stack");
                let flags = if signer_name == "CA" {
                    issuer.push(ca_cert.clone()).expect("push");
                    OcspFlag::TRUST_OTHER
                } else {
                    OcspFlag::empty()
                };
                basic
                    .verify(&issuer, &store, flags)
                    .unwrap_or_else(|e| panic!("{key:?} {signer_name}: {e}"));
                for (leaf, expected) in leaves.iter().zip(statuses) {
                    let id = OcspCertId::from_cert(digest, leaf, &ca_cert).expect("id");
                    let found = basic.find_status(&id).expect("status for the CertID");
                    found
                        .check_validity(300, None)
                        .expect("thisUpdate/nextUpdate");
                    match expected {
                        CertStatus::Good => assert_eq!(found.status, OcspCertStatus::GOOD),
                        CertStatus::Unknown => assert_eq!(found.status, OcspCertStatus::UNKNOWN),
                        CertStatus::Revoked { .. } => {
                            assert_eq!(found.status, OcspCertStatus::REVOKED);
                            assert_eq!(found.reason, OcspRevokedStatus::KEY_COMPROMISE);
                            let at = found.revocation_time.expect("time");
                            let expected_at =
                                openssl::asn1::Asn1Time::from_unix(revoked_at.unix_timestamp())
                                    .expect("time");
                            assert_eq!(at.to_string(), expected_at.to_string());
                        }
                    }
                }
            }
        }
        // A CertID for another CA is not this signer's to answer.
        let other_dir = tempfile::tempdir().expect("tmp");
        let other = Identity::create(
            other_dir.path(),
            &request("Other CA", KeySpec::EcP256, 1),
            &pass,
            None,
        )
        .expect("other");
        let other_cert = X509::from_pem(other.certificate_pem().as_bytes()).expect("other");
        let mut asked = OpensslRequest::new().expect("request");
        asked
            .add_id(
                OcspCertId::from_cert(MessageDigest::sha1(), &leaves[0], &other_cert).expect("id"),
            )
            .expect("add");
        let parsed = OcspRequest::parse(&asked.to_der().expect("der")).expect("parse");
        assert!(
            !OcspSigner::for_ca(&ca)
                .expect("signer")
                .answers_for(&parsed.cert_ids[0])
        );
    }
}

/// id-kp-OCSPSigning makes a certificate a responder for the whole CA: a template (a plugin's
/// presign result) may not carry it under a request's policy.
#[test]
fn ocsp_signing_is_refused_in_leaf_templates() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ca = Identity::create(
        tmp.path(),
        &request("EKU CA", KeySpec::EcP256, 1),
        &passphrase("pw"),
        None,
    )
    .expect("create");
    let policy = SigningPolicy::default();
    let csr = ValidatedCsr::parse(&csr_der("ec")).expect("csr");
    let mut template = ca
        .summary()
        .template_for(&csr, &policy, time::OffsetDateTime::now_utc());
    template
        .extended_key_usage
        .push(csrgate_pki::ExtendedKeyUsage::OcspSigning);
    let refused = ca.sign(&csr, &template, &policy).expect_err("refused");
    assert!(matches!(refused, PkiError::InvalidTemplate(_)), "{refused}");
    assert!(refused.to_string().contains("OCSPSigning"), "{refused}");
}
