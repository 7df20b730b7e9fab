//! End-to-end: revocation, the CRL and the audit chain, checked with openssl's own CRL and chain
//! verification. Admin endpoints need a bearer token; public ones do not.

use std::process::Command;

use crate::support::*;

const TOKEN: &str = "0123456789abcdef-operator-token";

fn crl_number(crl_pem: &std::path::Path) -> u64 {
    let out = Command::new("openssl")
        .args(["crl", "-noout", "-crlnumber", "-in"])
        .arg(crl_pem)
        .output()
        .expect("openssl crl");
    let text = text(&out.stdout);
    let hex = text
        .trim()
        .trim_start_matches("crlNumber=")
        .trim_start_matches("0x");
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("crlNumber in {text:?}"))
}

fn fetch_crl(ws: &Workspace, daemon: &Daemon, name: &str) -> std::path::PathBuf {
    let (status, body) = daemon.curl("/crl.pem", &[]);
    assert_eq!(status, 200, "{body}");
    ws.write(name, body.as_bytes())
}

fn issue(ws: &Workspace, daemon: &Daemon, name: &str) -> (String, std::path::PathBuf) {
    issue_json(ws, daemon, "client1", name)
}

fn admin(
    daemon: &Daemon,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut args: Vec<String> = vec!["-X".into(), method.into()];
    if let Some(token) = token {
        args.push("-H".into());
        args.push(format!("Authorization: Bearer {token}"));
    }
    if let Some(body) = body {
        args.extend([
            "-H".into(),
            "Content-Type: application/json".into(),
            "--data".into(),
            body.into(),
        ]);
    }
    daemon.curl(path, &args)
}

#[test]
fn revoke_publishes_a_crl_that_openssl_enforces() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Lifecycle CA", None);
    let ca = identity.join("ca.cert.pem");
    let tokens = ws.write(
        "admin-tokens",
        format!("# name token\nops {TOKEN}\n").as_bytes(),
    );
    let config = ws.write(
        "csrgate.toml",
        format!("admin_tokens_file = \"{}\"\n", tokens.display()).as_bytes(),
    );
    let data = ws.path("data");
    let daemon = Daemon::start(
        &identity,
        &data,
        &["--config", config.to_str().expect("utf8")],
    );

    let (serial_a, pem_a) = issue(&ws, &daemon, "a");
    let (serial_b, pem_b) = issue(&ws, &daemon, "b");

    let first = fetch_crl(&ws, &daemon, "crl0.pem");
    let check = Command::new("openssl")
        .args(["crl", "-noout", "-CAfile"])
        .arg(&ca)
        .arg("-in")
        .arg(&first)
        .output()
        .expect("openssl crl");
    assert!(
        check.status.success() && text(&check.stderr).contains("verify OK"),
        "{}",
        text(&check.stderr)
    );
    let n0 = crl_number(&first);

    // Authentication: none → 401, wrong → 403, right → 200.
    let path = format!("/certificates/{serial_a}");
    assert_eq!(admin(&daemon, "GET", &path, None, None).0, 401);
    let (status, body) = admin(&daemon, "GET", &path, Some("wrong-token-wrong-token"), None);
    assert_eq!((status, error_code(&body).as_str()), (403, "forbidden"));
    let (status, body) = admin(&daemon, "GET", &path, Some(TOKEN), None);
    assert_eq!(status, 200, "{body}");
    let shown: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(shown["status"], "valid");
    assert_eq!(shown["client_hash"], "client1");
    // Public endpoints need no token.
    assert_eq!(daemon.curl("/crl", &[]).0, 200);
    let (status, body) = daemon.curl("/openapi.json", &[]);
    assert_eq!(status, 200);
    let document: serde_json::Value = serde_json::from_str(&body).expect("OpenAPI JSON");
    assert!(document["paths"]["/certificates/{serial}/revoke"]["post"].is_object());

    // Revoke A.
    let revoke = format!("/certificates/{serial_a}/revoke");
    let (status, body) = admin(
        &daemon,
        "POST",
        &revoke,
        Some(TOKEN),
        Some(r#"{"reason":"keyCompromise","invalidity_date":"2026-01-02T03:04:05Z"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let revoked: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revocation"]["actor"], "ops");
    let (status, body) = admin(
        &daemon,
        "POST",
        &revoke,
        Some(TOKEN),
        Some(r#"{"reason":"superseded"}"#),
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (409, "already_revoked")
    );
    let (status, body) = admin(
        &daemon,
        "POST",
        &format!("/certificates/{serial_b}/revoke"),
        Some(TOKEN),
        Some(r#"{"reason":"removeFromCRL"}"#),
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, "invalid_request"),
        "{body}"
    );

    let after = fetch_crl(&ws, &daemon, "crl1.pem");
    let n1 = crl_number(&after);
    assert!(n1 > n0, "CRL number must grow: {n0} -> {n1}");
    let dump = Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(&after)
        .output()
        .expect("crl");
    let dump = text(&dump.stdout);
    assert!(dump.contains(&serial_a.to_uppercase()), "{dump}");
    assert!(dump.contains("Key Compromise"), "{dump}");
    assert!(dump.contains("Invalidity Date"), "{dump}");
    assert!(
        dump.contains("X509v3 CRL Number") && dump.contains("X509v3 Authority Key Identifier"),
        "{dump}"
    );

    let with_crl = |leaf: &std::path::Path| {
        Command::new("openssl")
            .args(["verify", "-crl_check", "-CAfile"])
            .arg(&ca)
            .arg("-CRLfile")
            .arg(&after)
            .arg(leaf)
            .output()
            .expect("openssl verify")
    };
    let rejected = with_crl(&pem_a);
    assert!(!rejected.status.success());
    assert!(
        text(&rejected.stdout).contains("revoked") || text(&rejected.stderr).contains("revoked")
    );
    assert!(with_crl(&pem_b).status.success(), "B is not revoked");

    // Conditional GET.
    let etag = {
        let out = Command::new("curl")
            .args(["-sS", "-D", "-", "-o", "/dev/null"])
            .arg(format!("{}/crl", daemon.base_url))
            .output()
            .expect("curl");
        text(&out.stdout)
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("etag:")
                    .then(|| l[5..].trim().to_owned())
            })
            .expect("ETag header")
    };
    // RFC 9110 13.1.2: If-None-Match compares weakly, in lists, and `*` matches any.
    for if_none_match in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        let (status, _) = daemon.curl(
            "/crl",
            &["-H".into(), format!("If-None-Match: {if_none_match}")],
        );
        assert_eq!(status, 304, "If-None-Match: {if_none_match}");
    }
    let (status, _) = daemon.curl("/crl", &["-H".into(), "If-None-Match: \"crl-0\"".into()]);
    assert_eq!(status, 200, "another CRL's tag");

    // Delete A: gone from view, still in the CRL (revoke B forces a new CRL).
    assert_eq!(admin(&daemon, "DELETE", &path, Some(TOKEN), None).0, 200);
    let (status, _) = admin(
        &daemon,
        "POST",
        &format!("/certificates/{serial_b}/revoke"),
        Some(TOKEN),
        Some(r#"{"reason":"superseded"}"#),
    );
    assert_eq!(status, 200);
    let latest = fetch_crl(&ws, &daemon, "crl2.pem");
    let n2 = crl_number(&latest);
    assert!(n2 > n1);
    let dump = text(
        &Command::new("openssl")
            .args(["crl", "-noout", "-text", "-in"])
            .arg(&latest)
            .output()
            .expect("crl")
            .stdout,
    );
    assert!(
        dump.contains(&serial_a.to_uppercase()),
        "deleted but revoked stays listed:\n{dump}"
    );
    assert!(
        dump.contains(&serial_b.to_uppercase()) && dump.contains("Superseded"),
        "{dump}"
    );

    assert!(daemon.stop().success());
    let verify = csrgate()
        .args(["audit", "verify"])
        .args(store_args(&data))
        .output()
        .expect("audit");
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    assert!(
        text(&verify.stdout).contains("intact: 5 entries"),
        "{}",
        text(&verify.stdout)
    );

    // CRL numbers keep growing across restarts.
    let daemon = Daemon::start(
        &identity,
        &data,
        &["--config", config.to_str().expect("utf8")],
    );
    let restarted = fetch_crl(&ws, &daemon, "crl3.pem");
    if on_postgres() {
        // A replica starting beside others serves the CRL one of them built moments ago
        // rather than building one more; the number never goes back.
        assert!(crl_number(&restarted) >= n2);
    } else {
        assert!(crl_number(&restarted) > n2);
    }
}

fn start_admin_daemon(
    ws: &Workspace,
    extra_config: &str,
) -> (Daemon, std::path::PathBuf, std::path::PathBuf) {
    let identity = ws.create_identity("ca", "ec:p256", "Lifecycle CA", None);
    let tokens = ws.write("admin-tokens", format!("ops {TOKEN}\n").as_bytes());
    let config = ws.write(
        "csrgate.toml",
        format!(
            "admin_tokens_file = \"{}\"\n{extra_config}",
            tokens.display()
        )
        .as_bytes(),
    );
    let data = ws.path("data");
    let daemon = Daemon::start(
        &identity,
        &data,
        &["--config", config.to_str().expect("utf8")],
    );
    (daemon, identity, data)
}

fn pubkey_of(pem: &std::path::Path) -> String {
    text(
        &Command::new("openssl")
            .args(["x509", "-noout", "-pubkey", "-in"])
            .arg(pem)
            .output()
            .expect("x509")
            .stdout,
    )
}

#[test]
fn renew_rotate_list_and_expiring() {
    let ws = Workspace::new();
    let (daemon, identity, data) = start_admin_daemon(&ws, "");
    let ca = identity.join("ca.cert.pem");
    let (old, old_pem) = issue(&ws, &daemon, "renewme");

    // Renew: same key and subject, new serial, stored and linked, 30 days.
    let (status, body) = admin(
        &daemon,
        "POST",
        &format!("/certificates/{old}/renew"),
        Some(TOKEN),
        Some(r#"{"validity":"30d"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let renewed: serde_json::Value = serde_json::from_str(&body).expect("json");
    let new = renewed["serial"].as_str().expect("serial").to_owned();
    assert_ne!(new, old);
    let time = |key: &str| {
        time::OffsetDateTime::parse(
            renewed[key].as_str().expect("time"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339")
    };
    let lasts = time("not_after") - time("issued_at");
    assert!(
        (lasts - time::Duration::days(30)).abs() < time::Duration::minutes(1),
        "30 days from now, as asked, not from the backdated notBefore: {lasts}"
    );
    assert_eq!(renewed["replaces"], old.as_str());
    let new_pem = ws.write(
        "renewed.pem",
        renewed["pem"].as_str().expect("pem").as_bytes(),
    );
    assert!(openssl_verify(&ca, None, &new_pem).status.success());
    assert_eq!(
        pubkey_of(&new_pem),
        pubkey_of(&old_pem),
        "renewal keeps the public key"
    );
    assert_eq!(
        openssl_x509(&new_pem, &["-subject"]),
        openssl_x509(&old_pem, &["-subject"])
    );
    let (_, body) = admin(
        &daemon,
        "GET",
        &format!("/certificates/{old}"),
        Some(TOKEN),
        None,
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("json")["replaced_by"],
        new.as_str()
    );

    // Rotation: a new key for the same client, the old one revoked as superseded.
    let csr = ws.csr("rotated", P256, "/CN=renewme.internal", &[]);
    let (status, body) = daemon.put_file(&format!("/client1?replaces={new}"), &csr, &[]);
    assert_eq!(status, 200, "{body}");
    let rotated: serde_json::Value = serde_json::from_str(&body).expect("json");
    let (_, body) = admin(
        &daemon,
        "GET",
        &format!("/certificates/{new}"),
        Some(TOKEN),
        None,
    );
    let superseded: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(superseded["status"], "revoked");
    assert_eq!(superseded["revocation"]["reason"], "superseded");
    assert_eq!(superseded["replaced_by"], rotated["serial"]);
    // Only the owner may rotate; a revoked certificate can be neither rotated nor renewed.
    let (status, body) = daemon.put_file(
        &format!(
            "/someoneelse?replaces={}",
            rotated["serial"].as_str().expect("s")
        ),
        &csr,
        &[],
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "replace_forbidden"),
        "{body}"
    );
    let (status, body) = daemon.put_file(&format!("/client1?replaces={new}"), &csr, &[]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (409, "already_revoked"),
        "{body}"
    );
    let (status, _) = admin(
        &daemon,
        "POST",
        &format!("/certificates/{new}/renew"),
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 409);
    // The superseded certificate is in the CRL.
    let crl = fetch_crl(&ws, &daemon, "rotated-crl.pem");
    let dump = text(
        &Command::new("openssl")
            .args(["crl", "-noout", "-text", "-in"])
            .arg(&crl)
            .output()
            .expect("crl")
            .stdout,
    );
    assert!(
        dump.contains(&new.to_uppercase()) && dump.contains("Superseded"),
        "{dump}"
    );

    // Listing, newest first, with filters and pagination.
    for i in 0..5 {
        issue(&ws, &daemon, &format!("bulk{i}"));
    }
    let (status, body) = admin(
        &daemon,
        "GET",
        "/certificates?limit=1000",
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let all: serde_json::Value = serde_json::from_str(&body).expect("json");
    let all: Vec<String> = all["certificates"]
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["serial"].as_str().expect("s").to_owned())
        .collect();
    assert_eq!(all.len(), 8);
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/certificates?limit=3&cursor={c}"),
            None => "/certificates?limit=3".to_owned(),
        };
        let (status, body) = admin(&daemon, "GET", &path, Some(TOKEN), None);
        assert_eq!(status, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).expect("json");
        paged.extend(
            page["certificates"]
                .as_array()
                .expect("array")
                .iter()
                .map(|c| c["serial"].as_str().expect("s").to_owned()),
        );
        // New certificates issued while paging must not disturb the walk.
        issue(&ws, &daemon, &format!("during{}", paged.len()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, all, "pages visit every certificate once, in order");
    // The chain of a listed certificate verifies.
    let (status, chain) = admin(
        &daemon,
        "GET",
        &format!("/certificates/{}/chain.pem", all[0]),
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 200);
    let chain = ws.write("listed-chain.pem", chain.as_bytes());
    assert!(openssl_verify(&ca, Some(&chain), &chain).status.success());
    let (_, body) = admin(
        &daemon,
        "GET",
        "/certificates?status=revoked",
        Some(TOKEN),
        None,
    );
    let revoked: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(revoked["certificates"].as_array().expect("array").len(), 1);
    let (status, body) = admin(
        &daemon,
        "GET",
        "/certificates?limit=5000",
        Some(TOKEN),
        None,
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, "invalid_request")
    );

    // Expiring: the 30-day renewal is the only one within 31 days.
    let (status, body) = admin(
        &daemon,
        "GET",
        "/certificates/expiring?within=31d",
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let soon: serde_json::Value = serde_json::from_str(&body).expect("json");
    let soon: Vec<&str> = soon["certificates"]
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["serial"].as_str().expect("s"))
        .collect();
    assert!(
        soon.is_empty(),
        "the renewal was revoked by the rotation: {soon:?}"
    );
    let (_, body) = admin(
        &daemon,
        "GET",
        "/certificates/expiring?within=100d",
        Some(TOKEN),
        None,
    );
    let later: serde_json::Value = serde_json::from_str(&body).expect("json");
    // old, rotated, 5 bulk and 3 issued while paging; the renewal was revoked by the rotation.
    assert_eq!(later["certificates"].as_array().expect("array").len(), 10);

    assert!(daemon.stop().success());
    let verify = csrgate()
        .args(["audit", "verify"])
        .args(store_args(&data))
        .output()
        .expect("audit");
    assert!(verify.status.success(), "{}", text(&verify.stderr));
}

#[test]
fn cert_cli_drives_the_admin_api() {
    let ws = Workspace::new();
    let (daemon, _identity, _data) = start_admin_daemon(&ws, "");
    let (first, _) = issue(&ws, &daemon, "one");
    let (second, _) = issue(&ws, &daemon, "two");
    let token_file = ws.write("token", format!("{TOKEN}\n").as_bytes());
    let cli = |args: &[&str]| {
        csrgate()
            .arg("cert")
            .args(args)
            .args(["--url", &daemon.base_url, "--token-file"])
            .arg(&token_file)
            .output()
            .expect("csrgate cert")
    };

    let table = cli(&["list"]);
    assert!(table.status.success(), "{}", text(&table.stderr));
    let table = text(&table.stdout);
    assert!(
        table.contains(&first) && table.contains(&second) && table.contains("2 certificate(s)"),
        "{table}"
    );

    let revoked = cli(&["revoke", &first, "--reason", "keyCompromise"]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert!(text(&revoked.stdout).contains("keyCompromise"));

    let json = cli(&["list", "--status", "revoked", "--json"]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["serial"], first.as_str());

    let renewed = cli(&["renew", &second, "--validity", "10d", "--json"]);
    assert!(renewed.status.success(), "{}", text(&renewed.stderr));
    let renewed: serde_json::Value = serde_json::from_slice(&renewed.stdout).expect("json");
    assert_eq!(renewed["replaces"], second.as_str());

    let shown = cli(&["show", &second]);
    assert!(
        text(&shown.stdout).contains("replaced by"),
        "{}",
        text(&shown.stdout)
    );

    // A wrong token is a clear failure, not a crash.
    let wrong = csrgate()
        .args([
            "cert",
            "list",
            "--url",
            &daemon.base_url,
            "--token",
            "not-the-token-at-all",
        ])
        .output()
        .expect("run");
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("403"),
        "{}",
        text(&wrong.stderr)
    );
}

#[test]
fn audit_verify_detects_an_edited_entry() {
    let ws = Workspace::new();
    let (daemon, _identity, data) = start_admin_daemon(&ws, "");
    let (serial, _) = issue(&ws, &daemon, "audited");
    issue(&ws, &daemon, "audited2");
    let (status, _) = admin(
        &daemon,
        "POST",
        &format!("/certificates/{serial}/revoke"),
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 200);
    assert!(daemon.stop().success());
    let verify = || {
        csrgate()
            .args(["audit", "verify"])
            .args(store_args(&data))
            .output()
            .expect("audit")
    };
    let intact = verify();
    assert!(intact.status.success(), "{}", text(&intact.stderr));
    assert!(text(&intact.stdout).contains("intact: 3 entries"));

    // Someone with access to the disk rewrites who revoked the certificate.
    {
        let db = sled::open(data.join("sled")).expect("open the stopped daemon's store");
        let audit = db.open_tree("audit").expect("audit tree");
        let key = 3u64.to_be_bytes();
        let mut entry: serde_json::Value =
            serde_json::from_slice(&audit.get(key).expect("get").expect("entry 3")).expect("json");
        assert_eq!(entry["action"], "revoke");
        entry["actor"] = serde_json::Value::String("nobody".into());
        audit
            .insert(key, serde_json::to_vec(&entry).expect("json"))
            .expect("edit");
        db.flush().expect("flush");
    }
    let broken = verify();
    assert_eq!(broken.status.code(), Some(65), "{}", text(&broken.stdout));
    assert!(
        text(&broken.stderr).contains("entry 3"),
        "{}",
        text(&broken.stderr)
    );
}

/// `retention`: certificates expired for longer are removed at start (then hourly), each
/// audited as `prune`; one still valid, or expired more recently, stays.
#[test]
fn retention_removes_long_expired_certificates_and_audits_it() {
    let ws = Workspace::new();
    let data = ws.path("data");
    let day = 86_400;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    // Written through the store's own API, as an older daemon left them: two expired 30 days
    // ago, one expired yesterday, one valid.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = match postgres_store_for(&data) {
            Some(url) => csrgate_store::Store::connect_postgres(&csrgate_store::PostgresConfig {
                url,
                password: None,
                pool_size: 2,
                ca_file: None,
            })
            .await
            .expect("postgres"),
            None => csrgate_store::Store::open(&data).expect("sled"),
        };
        for (serial, not_after) in [
            ("41", now - 30 * day),
            ("42", now - 30 * day),
            ("43", now - day / 2),
            ("44", now + 30 * day),
        ] {
            let record = csrgate_store::CertificateRecord {
                serial: serial.parse().expect("hex"),
                client_hash: "kept".into(),
                subject: format!("CN={serial}.internal"),
                subject_alt_names: vec![format!("DNS:{serial}.internal")],
                public_key_sha1: "00".repeat(20),
                sha256_fingerprint: "00".repeat(32),
                not_before: not_after - 90 * day,
                not_after,
                issued_at: not_after - 90 * day,
                status: csrgate_store::CertificateStatus::Valid,
                der: vec![0x30, 0x00],
                revocation: None,
                deleted: false,
                replaces: None,
                replaced_by: None,
            };
            store.insert_certificate(&record).await.expect("insert");
        }
        store.flush().await.expect("flush");
    });
    let (daemon, _identity, data) = start_admin_daemon(&ws, "retention = \"7d\"\n");
    daemon.wait_for_log("retention: removed");
    assert!(daemon.log().contains("pruned=2"), "{}", daemon.log());
    for (serial, kept) in [("41", false), ("42", false), ("43", true), ("44", true)] {
        let (status, _) = admin(
            &daemon,
            "GET",
            &format!("/certificates/{serial}"),
            Some(TOKEN),
            None,
        );
        assert_eq!(status == 200, kept, "{serial}");
    }
    // A client hash no certificate can have is the requester's mistake on either store (a
    // NUL is not even text to PostgreSQL).
    for bad in ["%00", "a%2Fb", "%C3%A9"] {
        let (status, body) = admin(
            &daemon,
            "GET",
            &format!("/certificates?client_hash={bad}"),
            Some(TOKEN),
            None,
        );
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, audit) = admin(&daemon, "GET", "/audit?after=0", Some(TOKEN), None);
    assert_eq!(status, 200, "{audit}");
    let audit: serde_json::Value = serde_json::from_str(&audit).expect("json");
    let pruned: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "prune")
        .map(|e| {
            assert_eq!(e["actor"], "retention");
            e["serial"].as_str().expect("serial")
        })
        .collect();
    assert_eq!(pruned, ["41", "42"]);
    assert_eq!(daemon.stop().code(), Some(0));
    let verify = csrgate()
        .args(["audit", "verify"])
        .args(store_args(&data))
        .output()
        .expect("audit verify");
    assert!(verify.status.success(), "{}", text(&verify.stderr));
}
