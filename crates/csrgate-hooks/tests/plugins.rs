//! Crate integration tests: real components from plugins/ (built by csrgate-test-plugins'
//! build script) loaded in the real host, hostile ones included.

use std::sync::Arc;
use std::time::{Duration, Instant};

use csrgate_hooks::model::{
    CertificateTemplate, ExtendedKeyUsage, KeyAlgorithm, KeyUsage, NameAttribute,
    SignedCertificate, SigningRequest, SubjectAltName,
};
use csrgate_hooks::{
    AuthorizeOutcome, Hook, HookEngine, HookError, MemoryKv, PluginSet, PluginSpec,
};
use csrgate_test_plugins::{allowlist_config, component};

fn spec(name: &str, wasm: &str, hooks: &[Hook], config: &str) -> PluginSpec {
    PluginSpec {
        name: name.into(),
        path: component(wasm),
        hooks: hooks.to_vec(),
        config_json: config.into(),
        deadline: Duration::from_millis(50),
        memory_bytes: 32 << 20,
        kv_quota_bytes: csrgate_hooks::DEFAULT_KV_QUOTA_BYTES,
    }
}

fn request(client: &str, sans: Vec<SubjectAltName>) -> SigningRequest {
    SigningRequest {
        client_hash: client.into(),
        public_key_sha1: "00".repeat(20),
        key_algorithm: KeyAlgorithm::EcP256,
        key_bits: 256,
        subject: vec![NameAttribute {
            oid: "2.5.4.3".into(),
            value: "app.internal".into(),
        }],
        subject_alt_names: sans,
        requested_extensions: Vec::new(),
        csr_der: vec![0x30, 0x00],
        via: csrgate_hooks::model::Via::Put,
    }
}

fn template() -> CertificateTemplate {
    CertificateTemplate {
        subject: vec![NameAttribute {
            oid: "2.5.4.3".into(),
            value: "app.internal".into(),
        }],
        subject_alt_names: vec![SubjectAltName::Dns("app.internal".into())],
        not_before: 1_700_000_000,
        not_after: 1_700_000_000 + 90 * 86_400,
        key_usage: vec![KeyUsage::DigitalSignature],
        extended_key_usage: vec![ExtendedKeyUsage::ServerAuth],
        crl_distribution_points: Vec::new(),
        ocsp_urls: Vec::new(),
        ca_issuer_urls: Vec::new(),
        extra_extensions: Vec::new(),
    }
}

fn no_check(_: &CertificateTemplate) -> Result<(), String> {
    Ok(())
}

async fn load(specs: &[PluginSpec]) -> Result<PluginSet, HookError> {
    let engine = HookEngine::new(None).expect("engine");
    PluginSet::load(&engine, specs, Arc::new(MemoryKv::default())).await
}

#[tokio::test]
async fn allowlist_allows_listed_clients_only() {
    let set = load(&[spec(
        "allow",
        "allow_clients",
        &[Hook::Authorize],
        r#"{"clients":["abc123"]}"#,
    )])
    .await
    .expect("load");
    assert_eq!(
        set.authorize(&request("abc123", vec![]))
            .await
            .expect("call"),
        AuthorizeOutcome::Allowed
    );
    let denied = set.authorize(&request("zzz", vec![])).await.expect("call");
    assert_eq!(
        denied,
        AuthorizeOutcome::Denied {
            plugin: "allow".into(),
            reason: "client zzz is not on the allowlist".into()
        }
    );
}

#[tokio::test]
async fn a_bad_config_refuses_the_set_at_load() {
    let error = load(&[spec(
        "allow",
        "allow_clients",
        &[Hook::Authorize],
        r#"{"clientz":[]}"#,
    )])
    .await
    .expect_err("bad config");
    assert!(
        matches!(error, HookError::Load { ref plugin, .. } if plugin == "allow"),
        "{error}"
    );
    assert!(error.to_string().contains("clientz"), "{error}");
}

#[tokio::test]
async fn an_init_that_grows_memory_is_reported_at_load() {
    let set = load(&[
        spec(
            "small",
            "allow_clients",
            &[Hook::Authorize],
            &allowlist_config(3),
        ),
        // ~70 KB of configuration: more than the heap left in the initial memory.
        spec(
            "large",
            "allow_clients",
            &[Hook::Authorize],
            &allowlist_config(2_000),
        ),
        spec("noop", "noop", &[Hook::Authorize], "{}"),
    ])
    .await
    .expect("load");
    let grows: Vec<(String, bool)> = set
        .plugins()
        .into_iter()
        .map(|info| (info.name, info.init_grows_memory))
        .collect();
    assert_eq!(
        grows,
        [
            ("small".to_owned(), false),
            ("large".to_owned(), true),
            ("noop".to_owned(), false)
        ]
    );
    // Growing is only reported, never refused: every plugin of the set still runs and allows.
    assert_eq!(
        set.authorize(&request("client00001-0123456789abcdef", vec![]))
            .await
            .expect("call"),
        AuthorizeOutcome::Allowed
    );
}

#[tokio::test]
async fn san_policy_checks_every_san() {
    let config = r#"{"dns_suffixes":["internal"],"ip_networks":["10.0.0.0/8"]}"#;
    let set = load(&[spec("sans", "san_policy", &[Hook::Authorize], config)])
        .await
        .expect("load");
    let ok = request(
        "c",
        vec![
            SubjectAltName::Dns("a.internal".into()),
            SubjectAltName::Ip("10.1.2.3".into()),
        ],
    );
    assert_eq!(
        set.authorize(&ok).await.expect("call"),
        AuthorizeOutcome::Allowed
    );
    let foreign = request(
        "c",
        vec![
            SubjectAltName::Dns("a.internal".into()),
            SubjectAltName::Dns("evil.com".into()),
        ],
    );
    match set.authorize(&foreign).await.expect("call") {
        AuthorizeOutcome::Denied { reason, .. } => {
            assert!(reason.contains("DNS:evil.com"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cdp_aia_threads_the_template_and_the_check_sees_each_result() {
    let config = r#"{"crl_url":"http://ca.example/crl","ocsp_url":"http://ocsp.example","ca_issuers_url":"http://ca.example/ca.pem","validity_days":{"short":7}}"#;
    let set = load(&[
        spec("noop", "noop", &[Hook::Presign], "{}"),
        spec("cdp", "cdp_aia", &[Hook::Presign], config),
    ])
    .await
    .expect("load");
    let out = set
        .presign(&request("short", vec![]), template(), &no_check)
        .await
        .expect("presign");
    assert_eq!(
        out.crl_distribution_points,
        vec!["http://ca.example/crl".to_owned()]
    );
    assert_eq!(out.ocsp_urls, vec!["http://ocsp.example".to_owned()]);
    assert_eq!(
        out.ca_issuer_urls,
        vec!["http://ca.example/ca.pem".to_owned()]
    );
    assert_eq!(out.not_after - out.not_before, 7 * 86_400);
    let refuse_urls = |t: &CertificateTemplate| {
        if t.crl_distribution_points.is_empty() {
            Ok(())
        } else {
            Err("no CDPs here".to_owned())
        }
    };
    let error = set
        .presign(&request("x", vec![]), template(), &refuse_urls)
        .await
        .expect_err("checked");
    assert!(
        matches!(error, HookError::InvalidTemplate { ref plugin, .. } if plugin == "cdp"),
        "{error}"
    );
}

#[tokio::test]
async fn the_ledger_writes_its_own_namespace() {
    let kv = Arc::new(MemoryKv::default());
    let engine = HookEngine::new(None).expect("engine");
    let set = PluginSet::load(
        &engine,
        &[spec(
            "ledger",
            "fingerprint_ledger",
            &[Hook::Postsign],
            "{}",
        )],
        kv.clone(),
    )
    .await
    .expect("load");
    let certificate = SignedCertificate {
        client_hash: "abc".into(),
        serial: "0a0b".into(),
        sha256_fingerprint: "ff".repeat(32),
        not_before: 1,
        not_after: 2,
        der: vec![0x30, 0x00],
    };
    assert!(set.postsign(&certificate).await.is_empty());
    let entries = kv.entries_of("ledger");
    assert_eq!(
        entries.get("serial:0a0b").map(Vec::as_slice),
        Some("ff".repeat(32).as_bytes())
    );
    assert_eq!(
        entries.get("client:abc").map(Vec::as_slice),
        Some(&b"0a0b"[..])
    );
    assert!(kv.entries_of("other").is_empty());
}

async fn assert_fails_closed(wasm: &str, expected: &str) -> Duration {
    let mut hostile = spec("hostile", wasm, &[Hook::Authorize], "{}");
    if wasm == "memory_bomb" {
        // Filling 32 MiB can take longer than 50 ms in a debug build on a busy machine; the
        // point here is the memory limit, so let the deadline stand back.
        hostile.deadline = Duration::from_secs(2);
    }
    let set = load(&[hostile]).await.expect("load");
    let started = Instant::now();
    let error = set
        .authorize(&request("abc", vec![]))
        .await
        .expect_err("must fail");
    let elapsed = started.elapsed();
    assert!(
        matches!(error, HookError::Failed { ref plugin, .. } if plugin == "hostile"),
        "{error}"
    );
    assert!(error.to_string().contains(expected), "{wasm}: {error}");
    // The same set keeps working for the next call (fresh instance), and fails the same way.
    let again = set
        .authorize(&request("abc", vec![]))
        .await
        .expect_err("still fails");
    assert!(again.to_string().contains(expected));
    elapsed
}

#[tokio::test]
async fn an_infinite_loop_is_cut_at_the_deadline() {
    let elapsed = assert_fails_closed("infinite_loop", "deadline of 50 ms exceeded").await;
    // 50 ms deadline plus a margin for a loaded 2-core machine.
    assert!(elapsed < Duration::from_millis(1000), "took {elapsed:?}");
}

#[tokio::test]
async fn a_memory_bomb_hits_the_limit() {
    assert_fails_closed("memory_bomb", "memory limit of 32 MiB reached").await;
}

#[tokio::test]
async fn a_panic_is_a_trap() {
    assert_fails_closed("trap", "trapped").await;
}

#[tokio::test]
async fn writing_to_stdout_and_stderr_is_harmless() {
    let mut flood = spec("flood", "stderr_flood", &[Hook::Authorize], "{}");
    // Megabytes of output take longer than 50 ms in a debug build on a busy machine.
    flood.deadline = Duration::from_secs(2);
    let set = load(&[flood]).await.expect("load");
    assert_eq!(
        set.authorize(&request("abc", vec![])).await.expect("call"),
        AuthorizeOutcome::Allowed
    );
}

#[tokio::test]
async fn files_and_environment_are_out_of_reach() {
    let set = load(&[spec("probe", "file_env_probe", &[Hook::Authorize], "{}")])
        .await
        .expect("load");
    match set.authorize(&request("abc", vec![])).await.expect("call") {
        AuthorizeOutcome::Denied { reason, .. } => {
            assert_eq!(reason, "probe: file=error; dir=error; env=0; args=0");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_module_that_is_not_a_component_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0").expect("write");
    let mut bad = spec("junk", "noop", &[Hook::Authorize], "{}");
    bad.path = junk;
    let error = load(&[bad]).await.expect_err("not a component");
    assert!(matches!(error, HookError::Load { .. }), "{error}");
}

#[tokio::test]
async fn compiled_code_is_cached_and_reused() {
    let dir = tempfile::tempdir().expect("tmp");
    let cache = dir.path().join("cache");
    let specs = [spec("noop", "noop", &[Hook::Authorize], "{}")];
    let engine = HookEngine::new(Some(cache.clone())).expect("engine");
    let first = PluginSet::load(&engine, &specs, Arc::new(MemoryKv::default()))
        .await
        .expect("load");
    assert!(!first.plugins()[0].from_cache);
    let second = PluginSet::load(&engine, &specs, Arc::new(MemoryKv::default()))
        .await
        .expect("load");
    assert!(second.plugins()[0].from_cache);
    assert_eq!(
        second.authorize(&request("a", vec![])).await.expect("call"),
        AuthorizeOutcome::Allowed
    );

    // A cache directory others can write to is not trusted.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let engine = HookEngine::new(Some(cache.clone())).expect("engine");
    let third = PluginSet::load(&engine, &specs, Arc::new(MemoryKv::default()))
        .await
        .expect("load");
    assert!(!third.plugins()[0].from_cache);
}

/// The Python allowlist is built against `wit/v0.1.0` (before `via`): a 0.1 plugin keeps
/// loading and behaves as before, beside 0.2 plugins in the same set.
#[tokio::test]
async fn python_allowlist_behaves_like_the_rust_one() {
    let mut python = spec(
        "py",
        "noop",
        &[Hook::Authorize],
        r#"{"clients":["abc123"]}"#,
    );
    python.path = csrgate_test_plugins::python_allowlist();
    python.memory_bytes = 128 << 20;
    python.deadline = Duration::from_millis(2000);
    let set = load(&[python, spec("rust", "noop", &[Hook::Authorize], "{}")])
        .await
        .expect("load python");
    let contracts: Vec<&str> = set.plugins().iter().map(|p| p.contract).collect();
    assert_eq!(contracts, ["0.1.0", "0.2.0"]);
    assert_eq!(
        set.authorize(&request("abc123", vec![]))
            .await
            .expect("call"),
        AuthorizeOutcome::Allowed
    );
    match set.authorize(&request("nope", vec![])).await.expect("call") {
        AuthorizeOutcome::Denied { plugin, reason } => {
            assert_eq!(plugin, "py");
            assert_eq!(reason, "client nope is not on the allowlist");
        }
        other => panic!("{other:?}"),
    }
}

/// Contract 0.2's `via` reaches plugins: front-doors admits ACME requests only.
#[tokio::test]
async fn plugins_see_which_front_door_a_request_came_through() {
    let set = load(&[spec(
        "doors",
        "front_doors",
        &[Hook::Authorize],
        r#"{"allow":["acme"]}"#,
    )])
    .await
    .expect("load");
    let mut acme = request("abc123", vec![]);
    acme.via = csrgate_hooks::model::Via::Acme;
    assert_eq!(
        set.authorize(&acme).await.expect("call"),
        AuthorizeOutcome::Allowed
    );
    let put = request("abc123", vec![]);
    match set.authorize(&put).await.expect("call") {
        AuthorizeOutcome::Denied { reason, .. } => {
            assert_eq!(reason, "requests via put are not accepted here; use acme");
        }
        other => panic!("{other:?}"),
    }
    let refused = load(&[spec(
        "doors",
        "front_doors",
        &[Hook::Authorize],
        r#"{"allow":["backdoor"]}"#,
    )])
    .await;
    assert!(refused.is_err(), "an unknown door is refused at load");
}
