//! `csrgate plugin check|run`: what a plugin author runs before deploying. Both use the daemon's
//! own loading code (`PluginLoader`) and, for `run`, its own pre-signing stages (`prepare`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Subcommand;
use csrgate_hooks::{DEFAULT_DEADLINE, DEFAULT_MEMORY_BYTES, Hook, MemoryKv, PluginSpec};
use csrgate_pki::IdentityFiles;
use csrgate_server::{ClientHash, PluginLoader, ServerConfig, SettingsSources};

use crate::exit::{Failure, code};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Load a component as the daemon would: compile it, link it against csrgate:hooks@0.1.0
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
    /// Run a CSR through the configured plugins offline: prints each hook's decision and the
    /// final template as JSON. Signs nothing and does not touch the daemon's store (plugin
    /// key-value writes go to memory). Needs the CA certificate, not its key.
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
    let ca = IdentityFiles::open(&config.identity_dir)
        .and_then(|files| files.summary())
        .map_err(|e| Failure::new(code::NO_INPUT, e))?;
    let loader = PluginLoader::new(None, Arc::new(MemoryKv::default()));
    let plugins = loader
        .load_blocking(&config.plugins)
        .map_err(|e| Failure::new(code::CONFIG, e))?;
    for info in plugins.plugins() {
        eprintln!("loaded {} for {:?}", info.name, info.hooks);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(code::SOFTWARE, e))?;
    let outcome = runtime.block_on(csrgate_server::prepare(
        &ca,
        &config.policy,
        &plugins,
        &client_hash,
        &body,
    ));
    match outcome {
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
            let report = serde_json::json!({
                "decision": "allow",
                "template": template,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            Ok(())
        }
        Err(error) => {
            let report = serde_json::json!({
                "decision": "refused",
                "code": error.code(),
                "message": error.message(),
                "denied_by": error.denied_by(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            Err(Failure::new(code::DATA_ERROR, anyhow::anyhow!("{error}")))
        }
    }
}
