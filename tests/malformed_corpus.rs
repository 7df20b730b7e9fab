//! End-to-end: a generated corpus of hostile requests (truncated, garbled and mislabelled PEM and
//! DER, absurd subjects, bogus and duplicate extensions, odd SANs and keys, mismatched signature
//! algorithms, odd client hashes, oversized headers, a slow body) against the real daemon. Each
//! must be refused with a 4xx and a stable code within a bounded time, without a panic, and
//! without writing a record.

use std::time::{Duration, Instant};

use openssl::asn1::{Asn1Object, Asn1OctetString};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::{X509Extension, X509NameBuilder, X509ReqBuilder};

use crate::support::*;

/// One hostile request and what it must get.
struct Case {
    what: String,
    path: String,
    headers: Vec<String>,
    body: Vec<u8>,
    status: u16,
    /// Codes any of which is right (a flipped byte can break the structure or the signature).
    codes: &'static [&'static str],
}

const CSR_CODES: &[&str] = &["invalid_csr", "weak_key"];

fn case(
    what: impl Into<String>,
    body: Vec<u8>,
    status: u16,
    codes: &'static [&'static str],
) -> Case {
    Case {
        what: what.into(),
        path: "/corpus".into(),
        headers: Vec::new(),
        body,
        status,
        codes,
    }
}

fn ec_key(nid: Nid) -> PKey<Private> {
    let group = EcGroup::from_curve_name(nid).expect("group");
    PKey::from_ec_key(EcKey::generate(&group).expect("ec")).expect("pkey")
}

/// A CSR for `public` with subject `fields`, extensions `(oid, critical, DER value)`, signed by
/// `signer` (normally the same key).
fn build_csr(
    public: &PKey<Private>,
    signer: &PKey<Private>,
    fields: &[(&str, &str)],
    extensions: &[(&str, bool, Vec<u8>)],
) -> Vec<u8> {
    let mut name = X509NameBuilder::new().expect("name");
    for (field, value) in fields {
        name.append_entry_by_text(field, value).expect("field");
    }
    let mut builder = X509ReqBuilder::new().expect("req");
    builder.set_subject_name(&name.build()).expect("subject");
    builder.set_pubkey(public).expect("pubkey");
    if !extensions.is_empty() {
        let mut stack = Stack::new().expect("stack");
        for (oid, critical, value) in extensions {
            let oid = Asn1Object::from_str(oid).expect("oid");
            let value = Asn1OctetString::new_from_bytes(value).expect("octets");
            stack
                .push(X509Extension::new_from_der(&oid, *critical, &value).expect("ext"))
                .expect("push");
        }
        builder.add_extensions(&stack).expect("extensions");
    }
    builder.sign(signer, MessageDigest::sha256()).expect("sign");
    builder.build().to_der().expect("der")
}

/// GeneralNames with one dNSName of arbitrary bytes.
fn dns_san(bytes: &[u8]) -> Vec<u8> {
    let mut name = vec![0x82, bytes.len() as u8];
    name.extend_from_slice(bytes);
    let mut out = vec![0x30, name.len() as u8];
    out.extend(name);
    out
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("ascii"));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text.into_bytes()
}

fn corpus() -> Vec<Case> {
    let key = ec_key(Nid::X9_62_PRIME256V1);
    let good = build_csr(&key, &key, &[("CN", "good.internal")], &[]);
    let good_pem = pem("CERTIFICATE REQUEST", &good);
    let mut cases = Vec::new();

    // Truncated DER and PEM at evenly spaced lengths.
    for i in 0..40 {
        let at = good.len() * i / 40;
        cases.push(case(
            format!("DER cut at {at}"),
            good[..at].to_vec(),
            400,
            CSR_CODES,
        ));
    }
    for i in 1..21 {
        let at = good_pem.len() * i / 21;
        cases.push(case(
            format!("PEM cut at {at}"),
            good_pem[..at].to_vec(),
            400,
            CSR_CODES,
        ));
    }
    // Garbled: one byte flipped at 50 positions (structure, OIDs, key, signature).
    for i in 0..50 {
        let at = 1 + (good.len() - 2) * i / 50;
        let mut bytes = good.clone();
        bytes[at] ^= 0x5a;
        cases.push(case(
            format!("DER byte {at} flipped"),
            bytes,
            400,
            CSR_CODES,
        ));
    }
    // Garbled base64 inside valid armour.
    for i in 0..10 {
        let mut bytes = good_pem.clone();
        let at = 40 + i * 17;
        bytes[at] = b'!';
        cases.push(case(
            format!("PEM base64 garbled at {at}"),
            bytes,
            400,
            CSR_CODES,
        ));
    }
    // Wrong labels, nested and repeated armour.
    for label in [
        "CERTIFICATE",
        "PRIVATE KEY",
        "PUBLIC KEY",
        "X509 CRL",
        "certificate request",
        "CERTIFICATE REQUEST ",
        "PKCS7",
        "",
    ] {
        cases.push(case(
            format!("PEM label {label:?}"),
            pem(label, &good),
            400,
            CSR_CODES,
        ));
    }
    cases.push(case(
        "PEM inside PEM",
        pem("CERTIFICATE REQUEST", &good_pem),
        400,
        CSR_CODES,
    ));
    cases.push(case(
        "two PEM blocks",
        [good_pem.clone(), good_pem.clone()].concat(),
        400,
        CSR_CODES,
    ));
    cases.push(case(
        "PEM then garbage",
        [good_pem.clone(), b"trailing words".to_vec()].concat(),
        400,
        CSR_CODES,
    ));
    cases.push(case(
        "DER with trailing bytes",
        [good.clone(), vec![0; 8]].concat(),
        400,
        CSR_CODES,
    ));
    // Structures that are not requests, and lengths that lie.
    for (what, bytes) in [
        ("empty", Vec::new()),
        ("whitespace", b" \n\t \r\n".to_vec()),
        ("SEQUENCE of nothing", vec![0x30, 0x00]),
        (
            "length beyond the body",
            vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02],
        ),
        (
            "indefinite length",
            vec![0x30, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00],
        ),
        (
            "deep nesting",
            [[0x30, 0x82, 0x0f, 0xa0].repeat(1000), vec![0x05, 0x00]].concat(),
        ),
        ("NUL bytes", vec![0; 512]),
        ("UTF-8 text", "ünïcödé request ☃".as_bytes().to_vec()),
        ("JSON", br#"{"csr":"MIIB"}"#.to_vec()),
    ] {
        cases.push(case(what, bytes, 400, CSR_CODES));
    }
    for seed in 0..20u32 {
        let mut bytes = vec![0x30, 0x81, 0xf0];
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        for _ in 0..240 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            bytes.push(state as u8);
        }
        cases.push(case(
            format!("random SEQUENCE {seed}"),
            bytes,
            400,
            CSR_CODES,
        ));
    }

    // Absurd subjects: too many RDNs, over-long values (small enough and too big for the body).
    let many: Vec<(&str, String)> = (0..40).map(|i| ("OU", format!("unit {i}"))).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(f, v)| (*f, v.as_str())).collect();
    cases.push(case(
        "40 RDNs",
        build_csr(&key, &key, &many, &[]),
        400,
        &["invalid_csr"],
    ));
    let long = "x".repeat(4000);
    cases.push(case(
        // openssl caps CN at 64 characters when building; description has no cap.
        "4000-byte description",
        build_csr(
            &key,
            &key,
            &[("CN", "long.internal"), ("description", long.as_str())],
            &[],
        ),
        400,
        &["invalid_csr"],
    ));
    let huge: Vec<(&str, String)> = (0..10_000).map(|i| ("OU", format!("u{i}"))).collect();
    let huge: Vec<(&str, &str)> = huge.iter().map(|(f, v)| (*f, v.as_str())).collect();
    cases.push(case(
        "10,000 RDNs",
        build_csr(&key, &key, &huge, &[]),
        413,
        &["body_too_large"],
    ));
    let megabyte = "y".repeat(1 << 20);
    cases.push(case(
        "1 MB name",
        pem("CERTIFICATE REQUEST", megabyte.as_bytes()),
        413,
        &["body_too_large"],
    ));
    cases.push(case(
        "NUL in CN",
        build_csr(&key, &key, &[("CN", "a\0b")], &[]),
        400,
        &["invalid_csr"],
    ));

    // Bogus and duplicate extensions, hostile SANs.
    let san = dns_san(b"ok.internal");
    for (what, extensions) in [
        (
            "SAN not DER",
            vec![("2.5.29.17", false, vec![0x04, 0x02, 0xff])],
        ),
        (
            "SAN truncated",
            vec![("2.5.29.17", false, san[..san.len() - 3].to_vec())],
        ),
        (
            "SAN twice",
            vec![
                ("2.5.29.17", false, san.clone()),
                ("2.5.29.17", false, san.clone()),
            ],
        ),
        (
            "basicConstraints twice",
            vec![
                ("2.5.29.19", true, vec![0x30, 0x00]),
                ("2.5.29.19", true, vec![0x30, 0x00]),
            ],
        ),
        (
            "SAN with NUL",
            vec![("2.5.29.17", false, dns_san(b"a\0.internal"))],
        ),
        (
            "SAN non-ASCII",
            vec![("2.5.29.17", false, dns_san("ünï.internal".as_bytes()))],
        ),
        (
            "SAN with space",
            vec![("2.5.29.17", false, dns_san(b"a b.internal"))],
        ),
        ("SAN empty", vec![("2.5.29.17", false, dns_san(b""))]),
        (
            "SAN label too long",
            vec![("2.5.29.17", false, dns_san(&[b'a'; 70]))],
        ),
        (
            "SAN of IP with 5 bytes",
            vec![(
                "2.5.29.17",
                false,
                vec![0x30, 0x07, 0x87, 0x05, 10, 0, 0, 0, 1],
            )],
        ),
        (
            "SAN directoryName",
            vec![("2.5.29.17", false, vec![0x30, 0x04, 0xa4, 0x02, 0x30, 0x00])],
        ),
        (
            "SAN registeredID",
            vec![(
                "2.5.29.17",
                false,
                vec![0x30, 0x05, 0x88, 0x03, 0x2a, 0x03, 0x04],
            )],
        ),
    ] {
        cases.push(case(
            what,
            build_csr(&key, &key, &[("CN", "ext.internal")], &extensions),
            400,
            &["invalid_csr"],
        ));
    }
    let sans: Vec<u8> = (0..150)
        .flat_map(|i| {
            let name = format!("h{i}.internal");
            [vec![0x82, name.len() as u8], name.into_bytes()].concat()
        })
        .collect();
    let mut many_sans = vec![0x30, 0x82];
    many_sans.extend_from_slice(&(sans.len() as u16).to_be_bytes());
    many_sans.extend(sans);
    cases.push(case(
        "150 SANs",
        build_csr(
            &key,
            &key,
            &[("CN", "many.internal")],
            &[("2.5.29.17", false, many_sans)],
        ),
        400,
        &["invalid_csr"],
    ));

    // Keys the policy refuses.
    for (what, nid) in [
        ("secp256k1", Nid::SECP256K1),
        ("P-224", Nid::SECP224R1),
        ("brainpoolP256r1", Nid::BRAINPOOL_P256R1),
        ("P-192", Nid::X9_62_PRIME192V1),
    ] {
        let weak = ec_key(nid);
        cases.push(case(
            format!("curve {what}"),
            build_csr(&weak, &weak, &[("CN", "curve.internal")], &[]),
            400,
            &["weak_key"],
        ));
    }
    let rsa = Rsa::generate(2048).expect("rsa");
    let exponent_one = Rsa::from_public_components(
        rsa.n().to_owned().expect("n"),
        BigNum::from_u32(1).expect("e"),
    )
    .expect("rsa e=1");
    let signer = PKey::from_rsa(rsa).expect("pkey");
    let e1_der = {
        // The request carries the e=1 key but is signed by another: the key is refused first.
        let public = PKey::from_rsa(exponent_one).expect("pkey");
        let mut builder = X509ReqBuilder::new().expect("req");
        builder.set_pubkey(&public).expect("pubkey");
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "e1.internal").expect("cn");
        builder.set_subject_name(&name.build()).expect("subject");
        builder
            .sign(&signer, MessageDigest::sha256())
            .expect("sign");
        builder.build().to_der().expect("der")
    };
    cases.push(case("RSA exponent 1", e1_der, 400, &["weak_key"]));
    let small = PKey::from_rsa(Rsa::generate(1024).expect("rsa")).expect("pkey");
    cases.push(case(
        "RSA-1024",
        build_csr(&small, &small, &[("CN", "small.internal")], &[]),
        400,
        &["weak_key"],
    ));
    // Signed by another key, or with an algorithm that does not match the key.
    let other = ec_key(Nid::X9_62_PRIME256V1);
    cases.push(case(
        "signed by another key",
        build_csr(&key, &other, &[("CN", "other.internal")], &[]),
        400,
        &["invalid_csr"],
    ));
    let ecdsa_sha256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    for (what, replacement) in [
        (
            "sha256WithRSAEncryption on an EC key",
            vec![0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
        ),
        (
            "ecdsa-with-SHA384 over a SHA-256 signature",
            vec![0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
        ),
        (
            "an unassigned arc under ecdsa-with-SHA1",
            vec![0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01, 0x00],
        ),
        (
            "unknown algorithm",
            vec![0x2a, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09],
        ),
    ] {
        let at = good
            .windows(ecdsa_sha256.len())
            .rposition(|w| w == ecdsa_sha256)
            .expect("signature algorithm OID");
        let mut bytes = good.clone();
        if replacement.len() == ecdsa_sha256.len() {
            bytes[at..at + ecdsa_sha256.len()].copy_from_slice(&replacement);
        } else {
            // Different length: rebuild is not worth it; a length mismatch must be refused too.
            bytes.splice(at..at + ecdsa_sha256.len(), replacement);
        }
        cases.push(case(what, bytes, 400, CSR_CODES));
    }

    // Client hashes that are not the grammar: Unicode, percent-encoding, traversal.
    for path in [
        "/%C3%BCnicode",
        "/%E2%82%AC",
        "/%2e%2e",
        "/abc%00",
        "/abc%20def",
        "/abc%2Fdef",
        "/%41%42%43",
        "/ab.cd",
        "/ab_cd",
        "/ab~cd",
        "/api/csr/%00",
        "/api/csr/..",
        "/abc/def",
        "/abc;def",
    ] {
        let mut c = case(
            format!("client hash {path}"),
            good.clone(),
            404,
            &["not_found"],
        );
        c.path = path.into();
        cases.push(c);
    }
    let mut c = case(
        "130-character client hash",
        good.clone(),
        404,
        &["not_found"],
    );
    c.path = format!("/{}", "a".repeat(130));
    cases.push(c);

    // Heads larger than csrgate accepts, though actix would.
    for size in [17 * 1024, 40 * 1024] {
        let mut c = case(
            format!("{size}-byte header"),
            good.clone(),
            431,
            &["headers_too_large"],
        );
        c.headers = vec![format!("X-Filler: {}", "h".repeat(size))];
        cases.push(c);
    }
    let mut c = case(
        "90 headers of 200 bytes",
        good.clone(),
        431,
        &["headers_too_large"],
    );
    c.headers = (0..90)
        .map(|i| format!("X-H{i}: {}", "v".repeat(200)))
        .collect();
    cases.push(c);

    // A rotation naming a serial that is not hex.
    let mut c = case(
        "replaces= not a serial",
        good.clone(),
        400,
        &["invalid_serial"],
    );
    c.path = "/corpus?replaces=zz%00".into();
    cases.push(c);
    cases
}

/// Request heads the HTTP layer refuses before any handler (oversized, too many headers, raw
/// non-ASCII paths): the stable code is the status itself, there is no JSON body to carry one.
fn protocol_level(daemon: &Daemon, body: &[u8]) -> Vec<(String, u16)> {
    let mut results = Vec::new();
    for raw in ["/ünïcode", "/😀", "/ab\u{7f}", "/a b"] {
        let (status, _) = daemon.request("PUT", raw, &[], body);
        results.push((format!("raw path {raw:?}"), status));
    }
    // Past actix's own limit: refused before csrgate's check.
    let header = format!("X-Filler: {}", "h".repeat(200 * 1024));
    let (status, _) = daemon.request("PUT", "/corpus", &[&header], body);
    results.push(("200 KiB header".into(), status));
    let many: Vec<String> = (0..200).map(|i| format!("X-H{i}: v")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let (status, _) = daemon.request("PUT", "/corpus", &many, body);
    results.push(("200 headers".into(), status));
    let long_path = format!("/{}", "p".repeat(100 * 1024));
    let (status, _) = daemon.request("PUT", &long_path, &[], body);
    results.push(("100 KiB path".into(), status));
    results
}

/// Sends the head and half a body, then nothing: the daemon must answer 408 body_timeout.
fn slow_body(daemon: &Daemon, body: &[u8]) -> (u16, String, Duration) {
    use std::io::{Read as _, Write as _};
    let started = Instant::now();
    let mut stream = std::net::TcpStream::connect(daemon.address()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .expect("timeout");
    let head = format!(
        "PUT /corpus HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("head");
    stream.write_all(&body[..body.len() / 2]).expect("half");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body, started.elapsed())
}

/// The error code of a JSON error body, or "" for anything else.
fn code_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[test]
fn hostile_requests_are_refused_with_stable_codes_and_write_nothing() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Corpus CA", None);
    let data = ws.path("data");
    let daemon = Daemon::start(&identity, &data, &[]);
    let cases = corpus();
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    for case in &cases {
        let started = Instant::now();
        let headers: Vec<&str> = case.headers.iter().map(String::as_str).collect();
        let (status, body) = daemon.request("PUT", &case.path, &headers, &case.body);
        let took = started.elapsed();
        slowest = slowest.max(took);
        let code = code_of(&body);
        if status != case.status
            || !case.codes.contains(&code.as_str())
            || took > Duration::from_secs(5)
        {
            failures.push(format!(
                "{}: got {status} {code:?} in {took:?}, want {} {:?}: {body}",
                case.what, case.status, case.codes
            ));
        }
    }
    let good = ws.csr("probe", P256, "/CN=probe", &["-outform", "DER"]);
    let good = std::fs::read(good).expect("csr");
    let heads = protocol_level(&daemon, &good);
    for (what, status) in &heads {
        if !(400..500).contains(status) {
            failures.push(format!("{what}: got {status}, want 4xx"));
        }
    }
    let (status, body, took) = slow_body(&daemon, &good);
    if status != 408 || code_of(&body) != "body_timeout" || took > Duration::from_secs(20) {
        failures.push(format!("slow body: got {status} in {took:?}: {body}"));
    }
    // Still serving, and nothing above left a record.
    let (status, body) = daemon.request("GET", "/health", &[], b"");
    assert_eq!(status, 200, "{body}");
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(daemon.stop().success());
    let total = cases.len() + heads.len() + 1;
    println!(
        "malformed corpus: {total} cases, {} refused as expected, slowest answer {slowest:?} (the slow body took {took:?})",
        total - failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total >= 200, "the corpus has {total} cases");
    assert_eq!(
        stored_certificates(&data),
        0,
        "a refused request left a record"
    );
}
