//! End-to-end: EST (RFC 7030) with curl and openssl as the client, the command lines the README
//! shows: `cacerts` read with `openssl pkcs7 -print_certs`, `simpleenroll` of a base64 DER
//! request with HTTP Basic credentials, the answer verified with `openssl verify` and listed
//! under its client hash; refusals (no or wrong credentials, another client's label, an
//! issuance rule, a body that is not base64, a plain-HTTP listener) answered with their codes
//! and nothing stored.

use std::path::Path;
use std::process::Command;

use crate::support::tls::*;
use crate::support::*;

const TOKEN: &str = "est-admin-token-0123456789";
const PASSWORD: &str = "device-secret-0123456789";

/// `sh -c script` in the workspace (the README's pipelines, verbatim but for the paths):
/// (exit code, stdout, stderr).
fn shell(ws: &Workspace, script: &str) -> (i32, String, String) {
    let output = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(ws.path(""))
        .output()
        .expect("sh");
    (
        output.status.code().unwrap_or(-1),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// An EST daemon of [`est_daemon`] with its CAs: `ca` is csrgate's certificate, `tls_root` the
/// TLS listener's CA (as `--cacert` takes it).
struct Est {
    tls_ca: TestCa,
    /// The CA of admin client certificates (`tls_client_ca`), when the daemon has one.
    admin_ca: Option<TestCa>,
    port: u16,
    daemon: Daemon,
    ca: std::path::PathBuf,
    tls_root: String,
}

impl Est {
    /// With admin client certificates (`tls_client_ca`) beside EST, or without (then the TLS
    /// listener verifies client certificates against nothing).
    fn start(ws: &Workspace, with_admin_ca: bool) -> Est {
        let identity = ws.create_identity("ca", "ec:p256", "EST CA", None);
        let tls_ca = TestCa::new(ws, "tls-root");
        let admin_ca = with_admin_ca.then(|| TestCa::new(ws, "admin-root"));
        let port = free_port();
        let daemon = est_daemon(ws, &identity, &tls_ca, admin_ca.as_ref(), port);
        let tls_root = tls_ca.certificate.display().to_string();
        Est {
            tls_ca,
            admin_ca,
            port,
            daemon,
            ca: identity.join("ca.cert.pem"),
            tls_root,
        }
    }
}

/// A daemon with a TLS listener, EST credentials for `device1` (client hash `estclient`), an
/// admin token, admin client certificates from `admin_ca` if given (mTLS beside EST) and an issuance
/// rule for `estclient` (names under `.est.internal`).
fn est_daemon(
    ws: &Workspace,
    identity: &Path,
    tls_ca: &TestCa,
    admin_ca: Option<&TestCa>,
    port: u16,
) -> Daemon {
    let (chain, key) = tls_ca.server(ws, "server", "csrgate.test", PASSPHRASE);
    let credentials = ws.write(
        "est-credentials",
        format!("# CLIENT_HASH USERNAME PASSWORD\nestclient device1 {PASSWORD}\n").as_bytes(),
    );
    let tokens = ws.write("admin-tokens", format!("ops {TOKEN}\n").as_bytes());
    start_with_config(
        ws,
        identity,
        &format!(
            "listen_tls = [\"127.0.0.1:{port}\"]\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\n\
             {}est_credentials_file = \"{}\"\nadmin_tokens_file = \"{}\"\n\
             [[issuance]]\nname = \"devices\"\nclients = [\"estclient\"]\ndns = [\".est.internal\"]\n",
            chain.display(),
            key.display(),
            admin_ca.map_or(String::new(), |ca| format!(
                "tls_client_ca = \"{}\"\n",
                ca.certificate.display()
            )),
            credentials.display(),
            tokens.display(),
        ),
    )
}

/// A P-256 request for `CN=<cn>` with that DNS SAN, as base64 DER (`<name>.b64`), made as the
/// README says.
fn base64_request(ws: &Workspace, name: &str, cn: &str) {
    let (exit, _, stderr) = shell(
        ws,
        &format!(
            "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
             -keyout {name}.key -subj /CN={cn} -addext subjectAltName=DNS:{cn} -outform DER \
             | base64 > {name}.b64"
        ),
    );
    assert_eq!(exit, 0, "{stderr}");
}

#[test]
fn curl_and_openssl_enroll_over_est_through_the_pipeline() {
    let ws = Workspace::new();
    let Est {
        tls_ca,
        admin_ca: _,
        port,
        daemon,
        ca,
        tls_root,
    } = Est::start(&ws, false);

    // cacerts: no credentials needed; the CA certificate comes back as certs-only PKCS#7.
    let (exit, printed, stderr) = shell(
        &ws,
        &format!(
            "curl -sS --fail --cacert {tls_root} https://127.0.0.1:{port}/.well-known/est/cacerts \
             | base64 -d | openssl pkcs7 -inform DER -print_certs -out cacerts.pem"
        ),
    );
    assert_eq!(exit, 0, "{printed}{stderr}");
    assert_eq!(
        std::fs::read_to_string(ws.path("cacerts.pem"))
            .expect("cacerts")
            .lines()
            .filter(|l| l.starts_with("-----BEGIN CERTIFICATE"))
            .count(),
        1
    );
    assert!(
        openssl_verify(&ca, None, &ws.path("cacerts.pem"))
            .status
            .success(),
        "cacerts is the CA certificate"
    );
    let (_, status, _) = curl_tls(
        &tls_ca.certificate,
        &https(port, "/.well-known/est/estclient/csrattrs"),
        &[],
    );
    assert_eq!(status, 204, "no particular attributes asked for");

    // simpleenroll, with and without the label.
    for (name, path) in [
        ("device1", "/.well-known/est/estclient/simpleenroll"),
        ("device2", "/.well-known/est/simpleenroll"),
    ] {
        base64_request(&ws, name, &format!("{name}.est.internal"));
        let (exit, printed, stderr) = shell(
            &ws,
            &format!(
                "curl -sS --fail --cacert {tls_root} -u device1:{PASSWORD} \
                 -H 'Content-Type: application/pkcs10' --data-binary @{name}.b64 \
                 https://127.0.0.1:{port}{path} \
                 | base64 -d | openssl pkcs7 -inform DER -print_certs -out {name}.pem"
            ),
        );
        assert_eq!(exit, 0, "{path}: {printed}{stderr}");
        let verified = openssl_verify(&ca, None, &ws.path(&format!("{name}.pem")));
        assert!(verified.status.success(), "{}", text(&verified.stdout));
        let shown = openssl_x509(
            &ws.path(&format!("{name}.pem")),
            &["-ext", "subjectAltName"],
        );
        assert!(
            shown.contains(&format!("DNS:{name}.est.internal")),
            "{shown}"
        );
    }
    // Both went through the pipeline and the store, under the credential's client hash.
    let (status, body) = daemon.curl(
        "/certificates?client_hash=estclient",
        &["-H".into(), format!("Authorization: Bearer {TOKEN}")],
    );
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).expect("json");
    let subjects: Vec<&str> = listed["certificates"]
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["subject"].as_str().expect("subject"))
        .collect();
    assert_eq!(subjects.len(), 2, "{body}");
    assert!(subjects.iter().any(|s| s.contains("device1.est.internal")));
    let stored = stored_certificates_via(&daemon);
    assert_eq!(stored, 2);
    // Without tls_client_ca, no client certificate is an admin, the ones csrgate issued included.
    let (exit, status, answer) = curl_tls(
        &tls_ca.certificate,
        &https(port, "/certificates"),
        &[
            "--cert",
            &ws.path("device1.pem").display().to_string(),
            "--key",
            &ws.path("device1.key").display().to_string(),
        ],
    );
    assert_eq!(
        (exit, status),
        (0, 401),
        "an EST device is not an admin: {answer}"
    );

    // Refusals: each answered with its code, a challenge where credentials are missing, and
    // nothing stored.
    base64_request(&ws, "evil", "evil.example.com");
    let request = ws.path("device1.b64").display().to_string();
    let evil = ws.path("evil.b64").display().to_string();
    let not_base64 = ws.write("garbage.b64", b"this is not base64 DER!");
    let enroll = https(port, "/.well-known/est/estclient/simpleenroll");
    let cases: Vec<(&str, Vec<String>, String, u16, &str)> = vec![
        (
            "no credentials",
            vec![],
            request.clone(),
            401,
            "unauthorized",
        ),
        (
            "a wrong password",
            vec!["-u".into(), "device1:wrong-password-0123456789".into()],
            request.clone(),
            401,
            "unauthorized",
        ),
        (
            "an unknown user",
            vec!["-u".into(), format!("nobody:{PASSWORD}")],
            request.clone(),
            401,
            "unauthorized",
        ),
        (
            "a name the issuance rule refuses",
            vec!["-u".into(), format!("device1:{PASSWORD}")],
            evil,
            403,
            "denied",
        ),
        (
            "a body that is not base64 DER",
            vec!["-u".into(), format!("device1:{PASSWORD}")],
            not_base64.display().to_string(),
            400,
            "invalid_csr",
        ),
    ];
    for (what, auth, file, expected, code) in cases {
        let mut extra: Vec<String> = auth;
        extra.extend([
            "-D".into(),
            "-".into(),
            "--data-binary".into(),
            format!("@{file}"),
        ]);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (_, status, body) = curl_tls(&tls_ca.certificate, &enroll, &extra);
        assert_eq!(status, expected, "{what}: {body}");
        assert!(
            body.contains(&format!("\"code\":\"{code}\"")),
            "{what}: {body}"
        );
        if expected == 401 {
            assert!(
                body.to_ascii_lowercase()
                    .contains("www-authenticate: basic realm=\"csrgate est\""),
                "{what}: a 401 carries the challenge: {body}"
            );
        }
    }
    // The credential enrolls for its own client hash only.
    let (_, status, body) = curl_tls(
        &tls_ca.certificate,
        &https(port, "/.well-known/est/otherclient/simpleenroll"),
        &[
            "-u",
            &format!("device1:{PASSWORD}"),
            "--data-binary",
            &format!("@{request}"),
        ],
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), "forbidden");
    assert!(
        body.contains("estclient"),
        "the message names its client hash: {body}"
    );
    // EST is not served on the plain listener: no password crosses it in clear.
    let (status, body) = daemon.curl("/.well-known/est/cacerts", &[]);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("TLS"), "{body}");
    assert_eq!(
        stored_certificates_via(&daemon),
        2,
        "no refusal stored anything"
    );
}

/// `simpleenroll` of `<name>.b64` as `device1`, printed to `<name>.pem`.
fn enroll(ws: &Workspace, tls_root: &str, port: u16, name: &str) {
    let (exit, printed, stderr) = shell(
        ws,
        &format!(
            "curl -sS --fail --cacert {tls_root} -u device1:{PASSWORD} \
             --data-binary @{name}.b64 https://127.0.0.1:{port}/.well-known/est/simpleenroll \
             | base64 -d | openssl pkcs7 -inform DER -print_certs -out {name}.pem"
        ),
    );
    assert_eq!(exit, 0, "{printed}{stderr}");
}

/// The serial `openssl x509 -serial` shows for a PEM file.
fn serial_of(ws: &Workspace, name: &str) -> String {
    openssl_x509(&ws.path(&format!("{name}.pem")), &["-serial"])
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .expect("serial")
        .to_ascii_lowercase()
}

/// The admin view of one certificate.
fn admin_view(daemon: &Daemon, serial: &str) -> serde_json::Value {
    let (status, body) = daemon.curl(
        &format!("/certificates/{serial}"),
        &["-H".into(), format!("Authorization: Bearer {TOKEN}")],
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

#[test]
fn reenrollment_authenticates_with_the_certificate_it_renews() {
    let ws = Workspace::new();
    let Est {
        tls_ca,
        admin_ca,
        port,
        daemon,
        ca,
        tls_root,
    } = Est::start(&ws, true);
    base64_request(&ws, "device", "device.est.internal");
    enroll(&ws, &tls_root, port, "device");
    let old = serial_of(&ws, "device");

    // The README's re-enrollment: a new key, the current certificate as the TLS client one.
    base64_request(&ws, "renewed", "device.est.internal");
    let (exit, printed, stderr) = shell(
        &ws,
        &format!(
            "curl -sS --fail --cacert {tls_root} --cert device.pem --key device.key \
             --data-binary @renewed.b64 https://127.0.0.1:{port}/.well-known/est/simplereenroll \
             | base64 -d | openssl pkcs7 -inform DER -print_certs -out renewed.pem"
        ),
    );
    assert_eq!(exit, 0, "{printed}{stderr}");
    assert!(
        openssl_verify(&ca, None, &ws.path("renewed.pem"))
            .status
            .success()
    );
    let new = serial_of(&ws, "renewed");
    assert_ne!(new, old);
    let renewed = admin_view(&daemon, &new);
    assert_eq!(renewed["client_hash"], "estclient");
    assert_eq!(renewed["replaces"], old.as_str());
    let previous = admin_view(&daemon, &old);
    assert_eq!(previous["replaced_by"], new.as_str());
    assert_eq!(
        previous["revocation"]["reason"], "superseded",
        "rotated: {previous}"
    );

    // Refusals, nothing stored by any of them.
    let before = stored_certificates_via(&daemon);
    let (foreign, foreign_key) = tls_ca.issue(
        &ws,
        "foreign",
        "/CN=device.est.internal",
        "extendedKeyUsage=clientAuth\n",
    );
    let body = format!("@{}", ws.path("renewed.b64").display());
    let body_file = body.clone();
    let reenroll = https(port, "/.well-known/est/simplereenroll");
    let with_cert = |cert: &Path, key: &Path| -> Vec<String> {
        vec![
            "--cert".into(),
            cert.display().to_string(),
            "--key".into(),
            key.display().to_string(),
        ]
    };
    let cases: Vec<(&str, Vec<String>, &str, u16, &str)> = vec![
        (
            "no client certificate (no password either: this endpoint takes none)",
            vec![],
            "/.well-known/est/simplereenroll",
            403,
            "TLS client certificate",
        ),
        (
            "a certificate another CA issued",
            with_cert(&foreign, &foreign_key),
            "/.well-known/est/simplereenroll",
            403,
            "did not issue",
        ),
        (
            "another client's label",
            with_cert(&ws.path("renewed.pem"), &ws.path("renewed.key")),
            "/.well-known/est/otherclient/simplereenroll",
            403,
            "estclient",
        ),
    ];
    for (what, mut extra, path, expected, says) in cases {
        extra.extend(["--data-binary".into(), body.clone()]);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (exit, status, answer) = curl_tls(&tls_ca.certificate, &https(port, path), &extra);
        assert_eq!((exit, status), (0, expected), "{what}: {answer}");
        assert!(answer.contains(says), "{what}: {answer}");
    }
    assert_eq!(stored_certificates_via(&daemon), before);

    // A device whose answer was lost retries with its old certificate: it gets its successor
    // again, nothing new is issued.
    let (exit, printed, stderr) = shell(
        &ws,
        &format!(
            "curl -sS --fail --cacert {tls_root} --cert device.pem --key device.key \
             --data-binary @renewed.b64 https://127.0.0.1:{port}/.well-known/est/simplereenroll \
             | base64 -d | openssl pkcs7 -inform DER -print_certs -out again.pem"
        ),
    );
    assert_eq!(exit, 0, "{printed}{stderr}");
    assert_eq!(
        serial_of(&ws, "again"),
        new,
        "the successor, answered again"
    );
    assert_eq!(stored_certificates_via(&daemon), before);
    // A certificate an operator revoked cannot re-enroll, nor can its predecessor get it back.
    let (status, body) = daemon.revoke(&new, "keyCompromise", TOKEN);
    assert_eq!(status, 200, "{body}");
    for (what, cert, key) in [
        ("the revoked certificate", "renewed.pem", "renewed.key"),
        ("its predecessor", "device.pem", "device.key"),
    ] {
        let mut extra = with_cert(&ws.path(cert), &ws.path(key));
        extra.extend(["--data-binary".into(), body_file.clone()]);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (_, status, answer) = curl_tls(&tls_ca.certificate, &reenroll, &extra);
        assert_eq!(status, 403, "{what}: {answer}");
        assert_eq!(error_code(&answer), "forbidden", "{what}: {answer}");
    }
    assert_eq!(stored_certificates_via(&daemon), before);

    // A certificate csrgate issued is never an admin on the TLS listener; the admin CA's is.
    let (_, status, answer) = curl_tls(
        &tls_ca.certificate,
        &https(port, "/certificates"),
        &with_cert(&ws.path("renewed.pem"), &ws.path("renewed.key"))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(status, 401, "an EST device is not an admin: {answer}");
    let (admin_cert, admin_key) = admin_ca.expect("an admin CA").issue(
        &ws,
        "ops",
        "/CN=ops",
        "extendedKeyUsage=clientAuth\n",
    );
    let (_, status, answer) = curl_tls(
        &tls_ca.certificate,
        &https(port, "/certificates"),
        &with_cert(&admin_cert, &admin_key)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(status, 200, "the admin CA's certificate still is: {answer}");
}

/// Certificates in the store, through the admin API (the daemon holds the store open).
fn stored_certificates_via(daemon: &Daemon) -> usize {
    let (status, body) = daemon.curl(
        "/certificates?limit=1000",
        &["-H".into(), format!("Authorization: Bearer {TOKEN}")],
    );
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).expect("json");
    listed["certificates"].as_array().expect("list").len()
}

#[test]
fn est_credentials_are_checked_before_the_daemon_starts() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "EST CA", None);
    // `serve` with `config`: it must refuse to start, exit 78, with a log that says `expected`.
    let refused = |config: &str, expected: &str| {
        let config = ws.write("csrgate.toml", config.as_bytes());
        let failure = Daemon::try_start(
            &identity,
            &ws.path("data"),
            &["--config", config.to_str().expect("utf8")],
            &[("CA_PASSPHRASE", PASSPHRASE)],
        )
        .err()
        .expect(expected);
        assert_eq!(
            failure.status.code(),
            Some(78),
            "{expected}: {}",
            failure.log
        );
        assert!(
            failure.log.contains(expected),
            "{expected}: {}",
            failure.log
        );
    };
    let cases = [
        ("estclient device1 short\n", "at least 16 characters"),
        ("estclient device1\n", "CLIENT_HASH USERNAME PASSWORD"),
        ("est/client device1 0123456789abcdef\n", "client hash"),
        ("estclient dev:ice 0123456789abcdef\n", "cannot contain ':'"),
        (
            "a u 0123456789abcdef\nb u 0123456789abcdef\n",
            "listed twice",
        ),
    ];
    let tls_ca = TestCa::new(&ws, "tls-root");
    let (chain, key) = tls_ca.server(&ws, "server", "csrgate.test", PASSPHRASE);
    let credentials = ws.path("est-credentials");
    for (contents, expected) in cases {
        ws.write("est-credentials", contents.as_bytes());
        refused(
            &format!(
                "listen_tls = [\"127.0.0.1:{}\"]\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\nest_credentials_file = \"{}\"\n",
                free_port(),
                chain.display(),
                key.display(),
                credentials.display()
            ),
            expected,
        );
    }
    // Without a TLS listener, EST credentials are a configuration error, not a silent no-op,
    // whether they come from the file or from the systemd credential alone.
    ws.write("est-credentials", b"estclient device1 0123456789abcdef\n");
    refused(
        &format!("est_credentials_file = \"{}\"\n", credentials.display()),
        "listen_tls",
    );
    let credentials_directory = ws.path("credentials");
    std::fs::create_dir_all(&credentials_directory).expect("mkdir");
    std::fs::copy(&credentials, credentials_directory.join("est-credentials")).expect("copy");
    let config = ws.write("csrgate.toml", b"");
    let failure = Daemon::try_start(
        &identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
        &[
            ("CA_PASSPHRASE", PASSPHRASE),
            (
                "CREDENTIALS_DIRECTORY",
                credentials_directory.to_str().expect("utf8"),
            ),
        ],
    )
    .err()
    .expect("the credential alone turns EST on");
    assert_eq!(failure.status.code(), Some(78), "{}", failure.log);
    assert!(
        failure.log.contains("est-credentials credential"),
        "{}",
        failure.log
    );
}
