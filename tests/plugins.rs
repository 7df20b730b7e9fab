//! End-to-end: the daemon with real WebAssembly plugins, driven with curl and checked with
//! openssl. Example plugins do their jobs, hostile ones fail closed without hurting the daemon,
//! and SIGHUP swaps plugin sets under load without a failed request.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use csrgate_test_plugins::component;

/// A compiled-plugin cache shared by every test of this run, so each component compiles once.
fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")
}

fn plugin_toml(name: &str, wasm: &Path, hooks: &str, extra: &str, config: &str) -> String {
    format!(
        "[[plugins]]\nname = \"{name}\"\npath = \"{}\"\nhooks = [{hooks}]\n{extra}\n[plugins.config]\n{config}\n",
        wasm.display()
    )
}

fn config_file(ws: &Workspace, name: &str, plugins: &[String]) -> PathBuf {
    let mut text = format!("plugin_cache = \"{}\"\n", shared_cache().display());
    for plugin in plugins {
        text.push_str(plugin);
    }
    ws.write(name, text.as_bytes())
}

fn start_with(ws: &Workspace, identity: &Path, config: &Path) -> Daemon {
    Daemon::start(
        identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
    )
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

fn message(body: &str) -> String {
    json(body)["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn example_plugins_authorize_extend_and_record() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Plugin CA", None);
    let config = config_file(
        &ws,
        "csrgate.toml",
        &[
            plugin_toml(
                "allow",
                &component("allow_clients"),
                "\"authorize\"",
                "",
                "clients = [\"abc123\", \"short7\"]",
            ),
            plugin_toml(
                "sans",
                &component("san_policy"),
                "\"authorize\"",
                "",
                "dns_suffixes = [\"internal\"]\nip_networks = [\"10.0.0.0/8\"]",
            ),
            plugin_toml(
                "cdp",
                &component("cdp_aia"),
                "\"presign\"",
                "",
                "crl_url = \"http://ca.example.internal/crl\"\nocsp_url = \"http://ocsp.example.internal\"\n\
                 ca_issuers_url = \"http://ca.example.internal/ca.pem\"\nvalidity_days = { short7 = 7 }",
            ),
            plugin_toml(
                "ledger",
                &component("fingerprint_ledger"),
                "\"postsign\"",
                "",
                "",
            ),
        ],
    );
    let daemon = start_with(&ws, &identity, &config);
    let good = ws.csr(
        "good",
        P256,
        "/CN=app.internal",
        &["-addext", "subjectAltName=DNS:app.internal,IP:10.0.0.7"],
    );
    let foreign = ws.csr(
        "foreign",
        P256,
        "/CN=evil",
        &["-addext", "subjectAltName=DNS:app.internal,DNS:evil.com"],
    );

    let (status, body) = daemon.put_file("/abc123", &good, &[]);
    assert_eq!(status, 200, "{body}");
    let issued = json(&body);
    let leaf = ws.write(
        "leaf.pem",
        issued["signed_x509_pem"].as_str().expect("pem").as_bytes(),
    );
    assert!(
        openssl_verify(&identity.join("ca.cert.pem"), None, &leaf)
            .status
            .success()
    );
    let dump = openssl_x509(&leaf, &["-text"]);
    assert!(dump.contains("X509v3 CRL Distribution Points"), "{dump}");
    assert!(
        dump.contains("URI:http://ca.example.internal/crl"),
        "{dump}"
    );
    assert!(
        dump.contains("OCSP - URI:http://ocsp.example.internal"),
        "{dump}"
    );
    assert!(
        dump.contains("CA Issuers - URI:http://ca.example.internal/ca.pem"),
        "{dump}"
    );

    let (status, body) = daemon.put_file("/zzz", &good, &[]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "denied"),
        "{body}"
    );
    assert_eq!(message(&body), "client zzz is not on the allowlist");

    let (status, body) = daemon.put_file("/abc123", &foreign, &[]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "denied"),
        "{body}"
    );
    assert_eq!(
        message(&body),
        "SAN DNS:evil.com is outside the allowed names"
    );

    let (status, body) = daemon.put_file("/short7", &good, &[]);
    assert_eq!(status, 200, "{body}");
    let short = ws.write(
        "short.pem",
        json(&body)["signed_x509_pem"]
            .as_str()
            .expect("pem")
            .as_bytes(),
    );
    let seconds = |flag: &str| {
        let out = Command::new("date")
            .args([
                "-u",
                "-d",
                openssl_x509(&short, &[flag])
                    .split('=')
                    .nth(1)
                    .expect("date")
                    .trim(),
                "+%s",
            ])
            .output()
            .expect("date");
        text(&out.stdout).trim().parse::<i64>().expect("seconds")
    };
    assert_eq!(seconds("-enddate") - seconds("-startdate"), 7 * 86_400);

    assert!(!daemon.log().contains("panicked"));
    assert!(daemon.stop().success());
    let kv = csrgate()
        .args(["store", "kv"])
        .args(store_args(&ws.path("data")))
        .arg("ledger")
        .output()
        .expect("kv");
    assert!(kv.status.success(), "{}", text(&kv.stderr));
    let ledger = json(&text(&kv.stdout));
    let fingerprint = openssl_x509(&leaf, &["-fingerprint", "-sha256"])
        .trim()
        .rsplit('=')
        .next()
        .expect("fp")
        .replace(':', "")
        .to_lowercase();
    let serial = issued["serial"].as_str().expect("serial");
    assert_eq!(
        ledger[format!("serial:{serial}")],
        fingerprint.as_str(),
        "{ledger}"
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn hostile_plugins_fail_closed_and_the_daemon_carries_on() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Hostile CA", None);
    let hostile = [
        ("loop", "infinite_loop"),
        ("bomb", "memory_bomb"),
        ("trap", "trap"),
        ("flood", "stderr_flood"),
        ("probe", "file_env_probe"),
    ];
    let plugins: Vec<String> = hostile
        .iter()
        .map(|(trigger, wasm)| {
            // The flood's and the bomb's megabytes take longer than 50 ms in a debug build on a
            // busy machine; their point is that output is harmless and memory is capped, which a
            // deadline hit first would hide.
            let deadline = if matches!(*trigger, "flood" | "bomb") {
                "2s"
            } else {
                "50ms"
            };
            plugin_toml(
                wasm,
                &component(wasm),
                "\"authorize\"",
                &format!("deadline = \"{deadline}\"\nmemory = \"32MiB\""),
                &format!("only_for = \"{trigger}\""),
            )
        })
        .collect();
    let config = config_file(&ws, "hostile.toml", &plugins);
    let daemon = start_with(&ws, &identity, &config);
    let csr = ws.csr("leaf", P256, "/CN=victim", &[]);

    let (status, body) = daemon.put_file("/calm", &csr, &[]);
    assert_eq!(status, 200, "{body}");
    let baseline_rss = rss_kib(daemon.pid());

    for round in 0..10 {
        for (trigger, plugin, status_code, code, text_part) in [
            (
                "loop",
                "infinite_loop",
                503,
                "plugin_failed",
                "deadline of 50 ms exceeded",
            ),
            (
                "bomb",
                "memory_bomb",
                503,
                "plugin_failed",
                "memory limit of 32 MiB reached",
            ),
            ("trap", "trap", 503, "plugin_failed", "trapped"),
        ] {
            let started = Instant::now();
            let (status, body) = daemon.put_file(&format!("/{trigger}"), &csr, &[]);
            let elapsed = started.elapsed();
            assert_eq!(
                (status, error_code(&body).as_str()),
                (status_code, code),
                "{trigger}: {body}"
            );
            let said = message(&body);
            assert!(
                said.contains(plugin) && said.contains(text_part),
                "{trigger}: {said}"
            );
            // 50 ms deadline; curl, CSR checks and a busy 2-core machine get the rest.
            assert!(
                elapsed < Duration::from_millis(1500),
                "{trigger} took {elapsed:?} (round {round})"
            );
            // The very next normal request is served.
            let (status, body) = daemon.put_file("/calm", &csr, &[]);
            assert_eq!(status, 200, "after {trigger}: {body}");
        }
    }
    let (status, body) = daemon.put_file("/flood", &csr, &[]);
    assert_eq!(status, 200, "writing to stderr is harmless: {body}");
    let (status, body) = daemon.put_file("/probe", &csr, &[]);
    assert_eq!(
        (status, message(&body).as_str()),
        (403, "probe: file=error; dir=error; env=0; args=0"),
        "{body}"
    );

    let grown = rss_kib(daemon.pid()).saturating_sub(baseline_rss);
    assert!(
        grown < 64 * 1024,
        "RSS grew by {grown} KiB over 10 memory bombs"
    );
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        !log.contains("xxxxxxxxxxxxxxxx"),
        "plugin stderr reached the daemon's log"
    );
}

/// Plugins cannot fill the disk: a call's key-value writes land only when it returns (a flood
/// cut by the deadline leaves nothing), each call is capped, the plugin's namespace stays within
/// its kv_quota, log floods are cut at the per-call cap, every refusal is counted, and the
/// daemon keeps serving.
#[test]
fn plugins_cannot_fill_the_disk() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Flood CA", None);
    let token = "flood-token-0123456789";
    let tokens = ws.write("tokens", format!("ops {token}\n").as_bytes());
    let quota = 1024 * 1024;
    let plugins = [
        plugin_toml(
            "kvdeadline",
            &component("kv_flood"),
            "\"authorize\"",
            "deadline = \"50ms\"",
            "only_for = \"deadline\"\nmode = \"until_deadline\"",
        ),
        plugin_toml(
            "kvquota",
            &component("kv_flood"),
            "\"authorize\"",
            "deadline = \"2s\"\nkv_quota = \"1MiB\"",
            "only_for = \"quota\"\nmode = \"until_refused\"",
        ),
        plugin_toml(
            "logs",
            &component("log_flood"),
            "\"authorize\"",
            "deadline = \"2s\"",
            "only_for = \"logs\"",
        ),
    ];
    let config = ws.write(
        "flood.toml",
        format!(
            "admin_tokens_file = \"{}\"\nplugin_cache = \"{}\"\n{}",
            tokens.display(),
            shared_cache().display(),
            plugins.concat()
        )
        .as_bytes(),
    );
    let data = ws.path("data");
    let daemon = start_with(&ws, &identity, &config);
    let csr = ws.csr("leaf", P256, "/CN=flood", &[]);
    for _ in 0..5 {
        let (status, body) = daemon.put_file("/deadline", &csr, &[]);
        assert_eq!(
            (status, error_code(&body).as_str()),
            (503, "plugin_failed"),
            "{body}"
        );
        assert!(message(&body).contains("deadline"), "{body}");
    }
    // 1 MiB of quota, 3 values of 64 KiB per call (the 256 KiB cap refuses the 4th): the quota
    // runs out after about 5 requests; the plugin sees the refusals and allows anyway.
    for _ in 0..12 {
        let (status, body) = daemon.put_file("/quota", &csr, &[]);
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = daemon.put_file("/logs", &csr, &[]);
    assert_eq!(status, 200, "{body}");
    let (status, body) = daemon.put_file("/calm", &csr, &[]);
    assert_eq!(status, 200, "the daemon keeps serving: {body}");

    let (status, metrics) = daemon.curl(
        "/metrics",
        &["-H".into(), format!("Authorization: Bearer {token}")],
    );
    assert_eq!(status, 200);
    let refused = sample(
        &metrics,
        "csrgate_plugin_kv_refused_total{plugin=\"kvquota\"}",
    );
    assert!(refused.is_some_and(|n| n >= 12.0), "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "csrgate_plugin_log_lines_dropped_total{plugin=\"logs\"}"
        ),
        Some((10_000 - csrgate_hooks::MAX_LOG_LINES_PER_CALL) as f64),
        "{metrics}"
    );
    let log = daemon.log();
    let kept = log.matches("log-flood line").count();
    assert_eq!(
        kept,
        csrgate_hooks::MAX_LOG_LINES_PER_CALL,
        "log lines kept"
    );
    assert!(log.contains("were dropped"), "{log}");
    daemon.stop();

    let entries = |plugin: &str| -> serde_json::Map<String, serde_json::Value> {
        let output = csrgate()
            .args(["store", "kv"])
            .args(store_args(&data))
            .arg(plugin)
            .output()
            .expect("store kv");
        assert!(output.status.success(), "{}", text(&output.stderr));
        json(&text(&output.stdout))
            .as_object()
            .cloned()
            .expect("an object")
    };
    assert!(
        entries("kvdeadline").is_empty(),
        "a call cut by its deadline wrote nothing"
    );
    let stored: usize = entries("kvquota")
        .iter()
        .map(|(key, value)| key.len() + value.as_str().map_or(0, str::len))
        .sum();
    assert!(
        stored > quota / 2 && stored <= quota,
        "the namespace holds {stored} bytes; the quota is {quota}"
    );
}

#[test]
fn presign_results_are_rechecked_by_the_host() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Check CA", None);
    let csr = ws.csr("leaf", P256, "/CN=escalate", &[]);
    for (mode, expected) in [
        ("ca", "basicConstraints is set by the CA"),
        ("validity", "later than the CA's"),
        ("garbage", "not well-formed DER"),
    ] {
        let config = config_file(
            &ws,
            &format!("{mode}.toml"),
            &[plugin_toml(
                "escalate",
                &component("ca_escalation"),
                "\"presign\"",
                "",
                &format!("mode = \"{mode}\""),
            )],
        );
        let data = ws.path(&format!("data-{mode}"));
        let daemon = Daemon::start(
            &identity,
            &data,
            &["--config", config.to_str().expect("utf8")],
        );
        let (status, body) = daemon.put_file("/abc", &csr, &[]);
        assert_eq!(
            (status, error_code(&body).as_str()),
            (500, "plugin_invalid_template"),
            "{mode}: {body}"
        );
        let said = message(&body);
        assert!(
            said.contains("escalate") && said.contains(expected),
            "{mode}: {said}"
        );
        assert!(daemon.stop().success());
        assert_eq!(
            stored_certificates(&data),
            0,
            "{mode}: a refused template must not be signed"
        );
    }
}

#[test]
fn python_plugin_allows_and_denies() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Python CA", None);
    let config = config_file(
        &ws,
        "python.toml",
        &[plugin_toml(
            "python-allowlist",
            &csrgate_test_plugins::python_allowlist(),
            "\"authorize\"",
            "memory = \"128MiB\"\ndeadline = \"2s\"",
            "clients = [\"abc123\"]",
        )],
    );
    let daemon = start_with(&ws, &identity, &config);
    let csr = ws.csr("leaf", P256, "/CN=py", &[]);
    let (status, body) = daemon.put_file("/abc123", &csr, &[]);
    assert_eq!(status, 200, "{body}");
    let (status, body) = daemon.put_file("/nope", &csr, &[]);
    assert_eq!(
        (status, message(&body).as_str()),
        (403, "client nope is not on the allowlist"),
        "{body}"
    );
}

#[test]
fn sighup_swaps_plugin_sets_under_load_without_a_failure() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Reload CA", None);
    let allow = |clients: &str| {
        plugin_toml(
            "allow",
            &component("allow_clients"),
            "\"authorize\"",
            "",
            clients,
        )
    };
    let config = config_file(&ws, "csrgate.toml", &[allow("clients = [\"abc123\"]")]);
    let daemon = Arc::new(start_with(&ws, &identity, &config));
    let csr = ws.csr("leaf", P256, "/CN=reload", &[]);
    let (status, _) = daemon.put_file("/newclient", &csr, &[]);
    assert_eq!(status, 403, "not yet allowed");

    // Bounded load: 4 clients, each until told to stop or 400 requests.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (daemon, stop, done, failures, csr) = (
                Arc::clone(&daemon),
                Arc::clone(&stop),
                Arc::clone(&done),
                Arc::clone(&failures),
                csr.clone(),
            );
            std::thread::spawn(move || {
                for _ in 0..400 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let (status, body) = daemon.put_file("/abc123", &csr, &[]);
                    if status != 200 {
                        failures
                            .lock()
                            .expect("lock")
                            .push(format!("{status} {body}"));
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    let wait_for_log = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !daemon.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let hup = || {
        let status = Command::new("kill")
            .args(["-HUP", &daemon.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    };

    let wait_for_requests = |at_least: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while done.load(Ordering::SeqCst) < at_least {
            assert!(Instant::now() < deadline, "the load stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for_requests(20);

    // A broken set is refused and the old one stays.
    std::fs::write(
        &config,
        format!(
            "plugin_cache = \"{}\"\n{}",
            shared_cache().display(),
            plugin_toml(
                "allow",
                Path::new("/nonexistent/plugin.wasm"),
                "\"authorize\"",
                "",
                "clients = []"
            )
        ),
    )
    .expect("write");
    hup();
    wait_for_log("reload refused");

    // A good new set: newclient allowed, CDP added.
    std::fs::write(
        &config,
        format!(
            "plugin_cache = \"{}\"\n{}{}",
            shared_cache().display(),
            allow("clients = [\"abc123\", \"newclient\"]"),
            plugin_toml(
                "cdp",
                &component("cdp_aia"),
                "\"presign\"",
                "",
                "crl_url = \"http://new.example/crl\""
            )
        ),
    )
    .expect("write");
    hup();
    wait_for_log("generation=2");
    let at_swap = done.load(Ordering::SeqCst);
    let (status, body) = daemon.put_file("/newclient", &csr, &[]);
    assert_eq!(status, 200, "new behaviour after the swap: {body}");
    let leaf = ws.write(
        "new.pem",
        json(&body)["signed_x509_pem"]
            .as_str()
            .expect("pem")
            .as_bytes(),
    );
    assert!(openssl_x509(&leaf, &["-text"]).contains("URI:http://new.example/crl"));

    // Keep the load on well past the swap, so requests ran before, across and after it.
    wait_for_requests(at_swap + 40);
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().expect("worker");
    }
    let failures = failures.lock().expect("lock");
    let total = done.load(Ordering::SeqCst);
    println!(
        "reload under load: {total} requests ({at_swap} before the swap completed), {} failed",
        failures.len()
    );
    assert!(total > 0);
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
}

/// One snapshot per request: generation N sets the validity to N days (signing policy) and the
/// CRL distribution point to genN (a presign plugin). Reloading in a loop while requests run,
/// every certificate must carry the same N twice; a request that took the policy of one reload
/// and the plugins of another would not.
#[test]
fn reloads_in_a_loop_never_mix_generations() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Generation CA", None);
    let generation = |n: u32| {
        format!(
            "plugin_cache = \"{}\"\nopen_issuance = true\n[signing]\ndefault_validity = \"{n}d\"\n{}",
            shared_cache().display(),
            plugin_toml(
                "cdp",
                &component("cdp_aia"),
                "\"presign\"",
                "",
                &format!("crl_url = \"http://gen{n}.example/crl\""),
            )
        )
    };
    let config = ws.write("csrgate.toml", generation(1).as_bytes());
    let daemon = Arc::new(start_with(&ws, &identity, &config));
    let csr = ws.csr("leaf", P256, "/CN=generation", &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|worker| {
            let (daemon, stop, csr) = (Arc::clone(&daemon), Arc::clone(&stop), csr.clone());
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                for _ in 0..300 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    answers.push(daemon.put_file(&format!("/w{worker}"), &csr, &[]));
                }
                answers
            })
        })
        .collect();
    for n in 2..=25u32 {
        std::fs::write(&config, generation(n)).expect("write");
        let status = Command::new("kill")
            .args(["-HUP", &daemon.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !daemon.log().contains(&format!("generation={n} ")) {
            assert!(
                Instant::now() < deadline,
                "reload {n} did not finish:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut seen = std::collections::BTreeSet::new();
    let mut checked = 0;
    for (index, worker) in workers.into_iter().enumerate() {
        for (answer, (status, body)) in worker.join().expect("worker").into_iter().enumerate() {
            assert_eq!(status, 200, "{body}");
            let leaf = ws.write(
                &format!("gen-{index}-{answer}.pem"),
                json(&body)["signed_x509_pem"]
                    .as_str()
                    .expect("pem")
                    .as_bytes(),
            );
            let text = openssl_x509(&leaf, &["-text"]);
            let from_plugin: u32 = text
                .split("URI:http://gen")
                .nth(1)
                .and_then(|rest| rest.split('.').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no CRL DP in {text}"));
            let answer = json(&body);
            let parse = |key: &str| {
                time::OffsetDateTime::parse(
                    answer[key].as_str().expect("time"),
                    &time::format_description::well_known::Rfc3339,
                )
                .expect("RFC 3339")
            };
            // not_before is backdated 5 minutes: the whole days are the configured validity.
            let from_policy = (parse("not_after") - parse("not_before")).whole_days() as u32;
            assert_eq!(from_policy, from_plugin, "a request mixed two generations");
            seen.insert(from_plugin);
            checked += 1;
        }
    }
    println!("{checked} certificates from generations {seen:?}, none mixed");
    assert!(seen.len() >= 3, "the load did not span reloads: {seen:?}");
}

#[test]
fn plugin_check_and_run_work_offline() {
    let ws = Workspace::new();
    let check = csrgate()
        .args(["plugin", "check", "--plugin-config", r#"{"clients":["a"]}"#])
        .arg(component("allow_clients"))
        .output()
        .expect("run");
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("csrgate:hooks@0.2.0"));
    assert!(
        text(&check.stdout).contains("memory:    init fits in the initial linear memory"),
        "{}",
        text(&check.stdout)
    );

    // ~70 KB of configuration does not fit in the heap left in the initial memory: the check
    // passes and says that every request will grow the memory again.
    let large = csrgate()
        .args(["plugin", "check", "--plugin-config"])
        .arg(csrgate_test_plugins::allowlist_config(2_000))
        .arg(component("allow_clients"))
        .output()
        .expect("run");
    assert!(large.status.success(), "{}", text(&large.stderr));
    assert!(
        text(&large.stdout).contains("memory:    init grows linear memory"),
        "{}",
        text(&large.stdout)
    );

    let bad_config = csrgate()
        .args(["plugin", "check"])
        .arg(component("allow_clients"))
        .output()
        .expect("run");
    assert!(
        !bad_config.status.success(),
        "init must refuse a missing clients list"
    );
    assert!(
        text(&bad_config.stderr).contains("clients"),
        "{}",
        text(&bad_config.stderr)
    );
    // "plugin loaded" is said only once `init` accepted the configuration.
    assert!(
        !text(&bad_config.stderr).contains("plugin loaded"),
        "{}",
        text(&bad_config.stderr)
    );

    let junk = ws.write("junk.wasm", b"\0asm\x01\0\0\0");
    let not_component = csrgate()
        .args(["plugin", "check"])
        .arg(&junk)
        .output()
        .expect("run");
    assert!(!not_component.status.success());

    let identity = ws.create_identity("ca", "ec:p256", "Dry CA", None);
    let config = ws.write(
        "run.toml",
        format!(
            "identity = \"{}\"\n{}{}",
            identity.display(),
            plugin_toml(
                "allow",
                &component("allow_clients"),
                "\"authorize\"",
                "",
                "clients = [\"abc123\"]"
            ),
            plugin_toml(
                "cdp",
                &component("cdp_aia"),
                "\"presign\"",
                "",
                "crl_url = \"http://dry.example/crl\""
            ),
        )
        .as_bytes(),
    );
    let csr = ws.csr(
        "leaf",
        P256,
        "/CN=dry",
        &["-addext", "subjectAltName=DNS:dry.internal"],
    );
    // From the workspace, with a cache directory of its own: the configuration's default data
    // directory would be ./data, and the compiled plugins go to $XDG_CACHE_HOME/csrgate.
    let run = |client: &str| {
        csrgate()
            .current_dir(ws.path(""))
            .env("XDG_CACHE_HOME", ws.path("cache"))
            .args(["plugin", "run", "--config"])
            .arg(&config)
            .args(["--client-hash", client])
            .arg(&csr)
            .output()
            .expect("run")
    };
    let allowed = run("abc123");
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));
    assert!(
        !text(&allowed.stderr).contains("from cache"),
        "{}",
        text(&allowed.stderr)
    );
    let report = json(&text(&allowed.stdout));
    assert_eq!(report["decision"], "allow");
    assert_eq!(
        report["authorize"],
        serde_json::json!([{"plugin": "allow", "decision": "allow"}]),
        "each authorize plugin's decision"
    );
    assert_eq!(
        report["template"]["crl_distribution_points"][0],
        "http://dry.example/crl"
    );
    assert_eq!(
        report["template"]["subject_alt_names"][0]["value"],
        "dry.internal"
    );
    // Validity as RFC 3339, for people.
    for key in ["not_before", "not_after"] {
        let shown = report["template"][key].as_str().unwrap_or_default();
        time::OffsetDateTime::parse(shown, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| panic!("{key} is not RFC 3339: {}", report["template"][key]));
    }
    let denied = run("other");
    assert_eq!(denied.status.code(), Some(65));
    let report = json(&text(&denied.stdout));
    assert_eq!(report["code"], "denied");
    assert_eq!(
        report["denied_by"], "allow",
        "the report names the plugin that denied"
    );
    assert_eq!(report["authorize"][0]["decision"], "deny");
    // The second run reused the compiled plugins; nothing was written to a data directory.
    assert!(
        text(&denied.stderr).contains("from cache"),
        "{}",
        text(&denied.stderr)
    );
    assert!(ws.path("cache/csrgate/plugin-cache").is_dir());
    assert!(!ws.path("data").exists());
}

/// The value of the sample `name{labels}` (labels as printed, in order), if present.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

#[test]
fn metrics_are_prometheus_text_and_move_with_requests() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Metrics CA", None);
    let token = "metrics-token-0123456789";
    let tokens = ws.write("tokens", format!("ops {token}\n").as_bytes());
    let config = ws.write(
        "metrics.toml",
        format!(
            "admin_tokens_file = \"{}\"\nplugin_cache = \"{}\"\n{}",
            tokens.display(),
            shared_cache().display(),
            plugin_toml(
                "allow",
                &component("allow_clients"),
                "\"authorize\"",
                "",
                "clients = [\"abc123\"]"
            )
        )
        .as_bytes(),
    );
    let daemon = start_with(&ws, &identity, &config);
    let csr = ws.csr("leaf", P256, "/CN=metrics", &[]);
    assert_eq!(daemon.put_file("/abc123", &csr, &[]).0, 200);
    assert_eq!(daemon.put_file("/intruder", &csr, &[]).0, 403);

    assert_eq!(
        daemon.curl("/metrics", &[]).0,
        401,
        "metrics are admin-only"
    );
    let (status, text) = daemon.curl(
        "/metrics",
        &["-H".into(), format!("Authorization: Bearer {token}")],
    );
    assert_eq!(status, 200);
    // Exposition format: comments, samples `name{labels} value`, and the OpenMetrics terminator.
    assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        assert!(series.starts_with("csrgate_"), "{line}");
        assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
    }
    let calls = |outcome: &str| {
        sample(
            &text,
            &format!(
                "csrgate_plugin_calls_total{{plugin=\"allow\",hook=\"authorize\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(calls("ok"), Some(1.0), "{text}");
    assert_eq!(calls("denied"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "csrgate_http_requests_total{route=\"/{client_hash}\",code=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "csrgate_http_requests_total{route=\"/{client_hash}\",code=\"403\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "csrgate_issuance_seconds_count"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "csrgate_plugin_set_generation"),
        Some(1.0),
        "{text}"
    );
    // Group commits are sled's; PostgreSQL commits each transaction itself.
    assert!(
        sample(&text, "csrgate_store_flushes_total").is_some_and(|v| v >= 1.0) || on_postgres(),
        "{text}"
    );
    // The flush latency is a histogram: its count is the number of flushes.
    assert_eq!(
        sample(&text, "csrgate_store_flush_seconds_count"),
        sample(&text, "csrgate_store_flushes_total"),
        "{text}"
    );
    assert!(
        text.contains("csrgate_store_flush_seconds_bucket{le="),
        "{text}"
    );
    // Every running total is a counter named *_total (OpenMetrics TYPE counter).
    for name in [
        "csrgate_http_requests",
        "csrgate_plugin_calls",
        "csrgate_store_flushes",
        "csrgate_store_flushed_writes",
        "csrgate_postsign_failures",
        "csrgate_crl_build_failures",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} counter")),
            "{name}: {text}"
        );
    }
    assert!(
        sample(&text, "csrgate_crl_bytes").is_some_and(|v| v > 0.0),
        "{text}"
    );
}
