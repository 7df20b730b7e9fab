//! `csrgate plugin check|run`: what a plugin author runs before deploying. Both use the daemon's
//! own loading code (`PluginLoader`) and, for `run`, its own pre-signing stages (`prepare`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Subcommand;
use csrgate_hooks::{DEFAULT_DEADLINE, DEFAULT_MEMORY_BYTES, Hook, MemoryKv, PluginSpec};
use csrgate_pki::{
    DistinguishedName, Identity, IdentityFiles, IdentityRequest, IdentitySummary, KeySpec,
    Passphrase, ValidityPeriod,
};
use csrgate_server::{
    AdminTokens, ClientHash, GenerationParts, Generations, PluginLoader, ServerConfig,
    SettingsSources,
};

use crate::exit::{Failure, code};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Load a component as the daemon would: compile it, link it against csrgate:hooks@0.2.0 (or 0.1.0)
    /// (nothing else is importable: no files, environment or network), and call its init with
    /// the given configuration. Also says whether init grows linear memory, which every request
    /// would then pay for again (each runs init in a fresh instance).
    Check {
        /// The component (.wasm) to check.
        wasm: PathBuf,
        /// The plugin's configuration table as JSON, as it would appear under [plugins.config].
        #[arg(long, value_name = "JSON", default_value = "{}")]
        plugin_config: String,
        /// Memory limit to check with, in MiB.
        #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MEMORY_BYTES >> 20)]
        memory_mib: usize,
    },
    /// Run a CSR through the issuance rules and plugins of a configuration offline: prints the
    /// rules' decision, each authorize plugin's decision and the final template as JSON. Signs
    /// nothing and does not touch the daemon's store (plugin key-value writes go to memory).
    /// Needs the CA certificate, not its key; without an identity a throw-away CA is used.
    /// Compiled plugins are kept in the daemon's plugin cache when it exists, else in
    /// ~/.cache/csrgate/plugin-cache. Exits 65 when the request would be refused.
    Run {
        /// The daemon's configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The client hash the request would be PUT to.
        #[arg(long, value_name = "HASH")]
        client_hash: String,
        /// Identity directory (overrides the configuration).
        #[arg(long, value_name = "DIR")]
        identity: Option<PathBuf>,
        /// The CSR, PEM or DER.
        csr: PathBuf,
    },
}

pub fn run(command: PluginCommand) -> Result<(), Failure> {
    match command {
        PluginCommand::Check {
            wasm,
            plugin_config,
            memory_mib,
        } => check(wasm, plugin_config, memory_mib),
        PluginCommand::Run {
            config,
            client_hash,
            identity,
            csr,
        } => dry_run(config, client_hash, identity, csr),
    }
}

fn check(wasm: PathBuf, plugin_config: String, memory_mib: usize) -> Result<(), Failure> {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&plugin_config)
        .context("--plugin-config must be a JSON object")
        .map_err(|e| Failure::new(code::CONFIG, e))?;
    let name = wasm
        .file_stem()
        .map_or_else(|| "plugin".to_owned(), |s| s.to_string_lossy().into_owned());
    let spec = PluginSpec {
        name,
        path: wasm,
        hooks: vec![Hook::Authorize, Hook::Presign, Hook::Postsign],
        config_json: plugin_config,
        deadline: DEFAULT_DEADLINE,
        memory_bytes: memory_mib << 20,
        kv_quota_bytes: csrgate_hooks::DEFAULT_KV_QUOTA_BYTES,
    };
    let loader = PluginLoader::new(None, Arc::new(MemoryKv::default()));
    let started = Instant::now();
    let set = loader
        .load_blocking(std::slice::from_ref(&spec))
        .map_err(|e| Failure::new(code::CONFIG, e))?;
    for info in set.plugins() {
        println!("plugin:    {}", info.name);
        println!("file:      {}", info.path.display());
        println!("sha256:    {}", info.sha256);
        println!(
            "contract:  csrgate:hooks@{} (init, authorize, presign, postsign)",
            info.contract
        );
        println!("init:      accepted the configuration");
        if info.init_grows_memory {
            println!(
                "memory:    init grows linear memory, and every request runs init in a fresh \
                 instance: each pays for the grow again; {}",
                csrgate_hooks::INIT_GROWS_MEMORY_ADVICE
            );
        } else {
            println!("memory:    init fits in the initial linear memory");
        }
        println!("load time: {} ms", started.elapsed().as_millis());
    }
    println!("ok");
    Ok(())
}

fn dry_run(
    config_file: PathBuf,
    client_hash: String,
    identity: Option<PathBuf>,
    csr: PathBuf,
) -> Result<(), Failure> {
    let sources = SettingsSources {
        config_file: Some(config_file),
        identity,
        ..SettingsSources::default()
    };
    let config = ServerConfig::load(&sources).map_err(|e| Failure::new(code::CONFIG, e))?;
    let client_hash = ClientHash::parse(&client_hash).ok_or_else(|| {
        Failure::new(
            code::CONFIG,
            anyhow::anyhow!("the client hash must be 1 to 128 ASCII letters or digits"),
        )
    })?;
    let body = std::fs::read(&csr)
        .with_context(|| format!("cannot read {}", csr.display()))
        .map_err(|e| Failure::new(code::NO_INPUT, e))?;
    let (ca, _throw_away) = ca_summary(&config.identity_dir)?;
    let loader = PluginLoader::new(
        compile_cache_dir(&config.plugin_cache),
        Arc::new(MemoryKv::default()),
    );
    let plugins = loader
        .load_blocking(&config.plugins)
        .map_err(|e| Failure::new(code::CONFIG, e))?;
    for info in plugins.plugins() {
        let origin = if info.from_cache {
            "compiled code from cache"
        } else {
            "compiled now"
        };
        eprintln!("loaded {} for {:?} ({origin})", info.name, info.hooks);
    }
    let generations = Generations::new(
        GenerationParts {
            signing: config.policy.clone(),
            issuance: config.issuance.clone(),
            admin: AdminTokens::default(),
            est: csrgate_server::EstCredentials::default(),
            acme: csrgate_server::AcmeConfig::default(),
            plugins,
            open_issuance: config.open_issuance,
            tls: None,
        },
        None,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(code::SOFTWARE, e))?;
    let report = runtime.block_on(csrgate_server::dry_run(
        &ca,
        &generations.current(),
        &client_hash,
        &body,
    ));
    let issuance = match &report.issuance {
        None => {
            serde_json::json!({ "decision": "allow", "rule": null, "note": "no [[issuance]] rules configured" })
        }
        Some(Ok(rule)) => serde_json::json!({ "decision": "allow", "rule": rule }),
        Some(Err(refusal)) => serde_json::json!({
            "decision": "deny",
            "rule": refusal.rule,
            "denied_by": refusal.denied_by(),
            "reason": refusal.reason,
        }),
    };
    let authorize: Vec<serde_json::Value> = report
        .authorize
        .iter()
        .map(|(plugin, decision)| match decision {
            Ok(None) => serde_json::json!({ "plugin": plugin, "decision": "allow" }),
            Ok(Some(reason)) => {
                serde_json::json!({ "plugin": plugin, "decision": "deny", "reason": reason })
            }
            Err(error) => serde_json::json!({ "plugin": plugin, "decision": "failed", "error": error.to_string() }),
        })
        .collect();
    let mut summary = serde_json::json!({ "issuance": issuance, "authorize": authorize });
    // plugin run issues nothing, so it does not refuse an open configuration; it says so.
    if let Err(error) = config.refuse_open_issuance() {
        summary["warning"] =
            format!("csrgate serve would refuse this configuration: {error}").into();
        eprintln!("warning: csrgate serve would refuse this configuration (exit 78): {error}");
    }
    let outcome = match report.outcome {
        Ok(prepared) => {
            let mut template = csrgate_server::template_json(&prepared.template);
            // People read this: validity as RFC 3339, not Unix seconds.
            for (key, time) in [
                ("not_before", prepared.template.not_before),
                ("not_after", prepared.template.not_after),
            ] {
                template[key] = serde_json::Value::String(
                    time.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                );
            }
            summary["decision"] = "allow".into();
            summary["template"] = template;
            Ok(())
        }
        Err(error) => {
            summary["decision"] = "refused".into();
            summary["code"] = error.code().into();
            summary["message"] = error.message().into();
            summary["denied_by"] = error.denied_by().into();
            Err(Failure::new(code::DATA_ERROR, anyhow::anyhow!("{error}")))
        }
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    outcome
}

/// The CA to run against: the configured identity's certificate (its key is not needed), or,
/// when there is none, a throw-away CA made in a temporary directory (returned, so it lives as
/// long as the run).
fn ca_summary(
    identity_dir: &Path,
) -> Result<(IdentitySummary, Option<tempfile::TempDir>), Failure> {
    if IdentityFiles::exists(identity_dir) {
        let summary = IdentityFiles::open(identity_dir)
            .and_then(|files| files.summary())
            .map_err(|e| Failure::new(code::NO_INPUT, e))?;
        return Ok((summary, None));
    }
    eprintln!(
        "no identity in {}: using a throw-away CA for this run",
        identity_dir.display()
    );
    let fail = |e: anyhow::Error| Failure::new(code::CANT_CREATE, e);
    let dir = tempfile::tempdir()
        .context("cannot make a temporary directory")
        .map_err(fail)?;
    let request = IdentityRequest {
        subject: DistinguishedName::from_fields(&[("CN", "csrgate plugin run (throw-away)")])
            .map_err(|e| fail(e.into()))?,
        validity: ValidityPeriod::days(3650),
        key: KeySpec::EcP256,
        path_len: Some(0),
    };
    let passphrase = Passphrase::generate().map_err(|e| fail(e.into()))?;
    let identity =
        Identity::create(dir.path(), &request, &passphrase, None).map_err(|e| fail(e.into()))?;
    Ok((identity.summary().clone(), Some(dir)))
}

/// Where `plugin run` keeps compiled plugins: the daemon's cache when it exists (so a run after
/// the daemon compiled a plugin is fast; the cache loads only files owned by the user running
/// it), else the user's cache directory, so that a dry run never creates the daemon's data
/// directory. Without either, plugins are compiled every time.
fn compile_cache_dir(daemon_cache: &Path) -> Option<PathBuf> {
    if csrgate_hooks::cache_dir_is_ours(daemon_cache) {
        return Some(daemon_cache.to_owned());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("csrgate").join("plugin-cache"))
}
