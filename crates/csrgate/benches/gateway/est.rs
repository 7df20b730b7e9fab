//! The EST and ACME rows (issue 21): `simpleenroll` over TLS with HTTP Basic and full ACME
//! issuances (acme.rs), beside a `PUT` over the same
//! TLS listener and the plain `PUT` row of the same run, so what EST itself costs (base64, the
//! PKCS#7 answer, Basic authentication) is told apart from what TLS costs.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::{X509, X509NameBuilder, X509Req};

use crate::crypto::CaKey;
use crate::{CLIENT_HASHES, Options, http_load, measure, print_row, servers};

/// The EST user the load enrolls as, and its password (16 characters at least).
const USER: &str = "bench";
const PASSWORD: &str = "bench-password-0123456789";

/// Starts a daemon with only a TLS listener and EST credentials, and measures `PUT` and
/// `simpleenroll` through it.
pub fn measure_est(
    binary: &Path,
    work: &Path,
    identity: &Path,
    csrs: &[Vec<u8>],
    (baseline_us, cores): (f64, f64),
    options: &Options,
) -> anyhow::Result<()> {
    let dir = work.join("est");
    std::fs::create_dir_all(&dir)?;
    // The server's TLS certificate: self-signed, P-256; the load generator does not verify it
    // (loopback), it measures.
    let key = CaKey::P256.generate()?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, "localhost")?;
    let name = name.build();
    let mut certificate = X509::builder()?;
    certificate.set_version(2)?;
    certificate.set_subject_name(&name)?;
    certificate.set_issuer_name(&name)?;
    certificate.set_pubkey(&key)?;
    let not_before = Asn1Time::days_from_now(0)?;
    let not_after = Asn1Time::days_from_now(2)?;
    certificate.set_not_before(&not_before)?;
    certificate.set_not_after(&not_after)?;
    certificate.sign(&key, MessageDigest::sha256())?;
    let certificate_path = dir.join("tls.crt");
    let key_path = dir.join("tls.key");
    std::fs::write(&certificate_path, certificate.build().to_pem()?)?;
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8()?)?;
    let credentials = dir.join("est-credentials");
    let mut file = std::fs::File::create(&credentials)?;
    for client in 0..CLIENT_HASHES {
        writeln!(file, "bench{client} {USER}{client} {PASSWORD}")?;
    }
    let responder = crate::acme::Responder::start()?;
    let config = dir.join("csrgate.toml");
    std::fs::write(
        &config,
        format!(
            "listen = [\"127.0.0.1:0\"]\nlisten_tls = [\"127.0.0.1:0\"]\ntls_certificate = {:?}\ntls_private_key = {:?}\n\
             est_credentials_file = {:?}\nidentity = {:?}\ndata = {:?}\n\
             acme = true\nacme_client_hashes = [\"acmebench\"]\nacme_http01_port = {}\nacme_validation_address = \"127.0.0.1\"\n",
            certificate_path,
            key_path,
            credentials,
            identity,
            dir.join("data"),
            responder.port,
        ),
    )?;
    let mut server = servers::start_csrgate(binary, &dir, &config).context("EST daemon")?;
    server.address = server.tls_address()?;
    server.tls = true;

    let put: Vec<Vec<u8>> = csrs
        .iter()
        .enumerate()
        .map(|(i, csr)| {
            let path = format!("/bench{}", i % CLIENT_HASHES);
            http_load::request("PUT", &path, "application/pkcs10", csr)
        })
        .collect();
    let figures = measure(&server, &Arc::new(put), options).context("PUT over TLS")?;
    print_row("  PUT over TLS", &figures, baseline_us, cores);

    let est = csrs
        .iter()
        .enumerate()
        .map(|(i, csr)| {
            let der = X509Req::from_pem(csr)?.to_der()?;
            let client = i % CLIENT_HASHES;
            let basic = STANDARD.encode(format!("{USER}{client}:{PASSWORD}"));
            Ok(http_load::request_with_headers(
                "POST",
                &format!("/.well-known/est/bench{client}/simpleenroll"),
                "application/pkcs10",
                &[("Authorization", &format!("Basic {basic}"))],
                STANDARD.encode(der).as_bytes(),
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let figures = measure(&server, &Arc::new(est), options).context("EST simpleenroll")?;
    print_row(
        "  EST simpleenroll (TLS, Basic)",
        &figures,
        baseline_us,
        cores,
    );

    let port = server.address.port();
    let figures =
        crate::acme::measure_acme(&server, port, &responder, options).context("ACME issuances")?;
    print_row(
        "  ACME order+finalize+download",
        &figures,
        baseline_us,
        cores,
    );
    Ok(())
}
