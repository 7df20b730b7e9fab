//! `csrgate serve`: validate the configuration, unlock the identity, open the store, bind, serve.
//! Each step that can fail does so before the next starts, so a wrong passphrase binds nothing.

use std::path::PathBuf;

use clap::Args;
use csrgate_pki::IdentityFiles;
use std::sync::Arc;

use csrgate_pki::OcspSigner;
use csrgate_server::{
    AdminTokens, DelegatedRenewal, EstCredentials, Gateway, GenerationParts, Generations, Metrics,
    OcspResponder, OcspResponderKind, PluginLoader, Reload, ServerConfig, SettingsSources,
    StoreBackend, TlsMaterial,
};
use csrgate_store::Store;

use crate::exit::{Failure, code};
use crate::passphrase::{self, Prompt};
use crate::{PassphraseArgs, dev_identity};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see examples/csrgate.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, IP:PORT; repeatable [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Vec<String>,
    /// Identity directory [default: identity].
    #[arg(long, value_name = "DIR")]
    identity: Option<PathBuf>,
    /// Data directory: the sled certificate store (store = "sled", the default) and the plugin
    /// cache [default: data].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Development mode: create a throw-away CA identity (passphrase in <identity>/dev-passphrase)
    /// and the data directory when absent.
    #[arg(long)]
    dev: bool,
    /// Print the example configuration, every key with its default and what it does, and exit.
    #[arg(long)]
    print_example_config: bool,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

/// Validity of a delegated OCSP responder certificate the daemon issues (renewed with a third
/// left, so every ~4.7 days): short, as RFC 6960 4.2.2.2.1 asks of a certificate nobody checks.
const DELEGATED_RESPONDER_DAYS: i64 = 7;

/// examples/csrgate.toml, shipped inside the binary: an installed csrgate has no source tree.
const EXAMPLE_CONFIG: &str = include_str!("../../../examples/csrgate.toml");

pub fn run(args: ServeArgs) -> Result<(), Failure> {
    if args.print_example_config {
        print!("{EXAMPLE_CONFIG}");
        return Ok(());
    }
    let sources = SettingsSources {
        config_file: args.config,
        listen: args.listen,
        identity: args.identity,
        data: args.data,
        dev: args.dev,
        passphrase_file: args.passphrase.passphrase_file,
    };
    let config = ServerConfig::load(&sources)
        .and_then(|config| config.refuse_open_issuance().map(|()| config))
        .map_err(|e| Failure::new(code::CONFIG, e))?;
    crate::init_logging(&config.log_level, config.log_format)
        .map_err(|e| Failure::new(code::CONFIG, e))?;
    let passphrase_origin = if sources.passphrase_file.is_some() {
        "--passphrase-file"
    } else {
        "the passphrase_file setting"
    };
    let reload_sources = sources.clone();
    // Everything the configuration names is read and checked before anything is created on disk
    // (the development token of --dev is made below, with the development identity).
    let load_admin = || {
        AdminTokens::load(config.admin_tokens_file.as_deref())
            .map_err(|e| Failure::new(code::CONFIG, anyhow::anyhow!(e)))
    };
    let est = EstCredentials::load(config.est_credentials_file.as_deref())
        .map_err(|e| Failure::new(code::CONFIG, anyhow::anyhow!(e)))?;
    let acme = csrgate_server::AcmeConfig::load(&config.acme)
        .map_err(|e| Failure::new(code::CONFIG, anyhow::anyhow!(e)))?;
    let mut admin = match &config.dev_admin_token {
        Some(file) if !file.exists() => None,
        _ => Some(load_admin()?),
    };

    if config.dev {
        dev_identity::ensure(&config.identity_dir)
            .map_err(|e| Failure::new(code::CANT_CREATE, e))?;
    }
    if let Some(file) = &config.dev_admin_token {
        dev_identity::ensure_admin_token(file).map_err(|e| Failure::new(code::CANT_CREATE, e))?;
        admin = Some(load_admin()?);
    }
    let admin = admin.unwrap_or_default();
    if admin.is_empty() {
        tracing::warn!(
            "no admin tokens configured (admin_tokens_file or the admin-tokens credential): the admin API refuses everyone"
        );
    }
    let files =
        IdentityFiles::open(&config.identity_dir).map_err(|e| Failure::new(code::NO_INPUT, e))?;
    if config.strict_permissions
        && let Some(mode) = files.key_exposed()
    {
        return Err(Failure::new(
            code::NO_PERMISSION,
            anyhow::anyhow!(
                "the CA key file in {} has mode {mode:o}: group or others can access it; chmod 600 it (strict_permissions is on)",
                config.identity_dir.display()
            ),
        ));
    }
    let secret = if files.key_is_encrypted() {
        let dev_file = config
            .dev
            .then(|| dev_identity::passphrase_file(&config.identity_dir));
        Some(
            passphrase::resolve(
                config
                    .passphrase_file
                    .as_deref()
                    .map(|path| (path, passphrase_origin)),
                dev_file.as_deref(),
                Prompt::Once,
            )
            .map_err(|e| Failure::new(code::NO_PERMISSION, e))?,
        )
    } else {
        None
    };
    let identity = files
        .unlock(secret.as_ref())
        .map_err(|e| Failure::new(code::NO_PERMISSION, e))?;
    let secret = secret.map(Arc::new);
    if config.dev_tls
        && let Some(tls) = &config.tls
    {
        dev_identity::ensure_tls(&identity, &config.policy, tls)
            .map_err(|e| Failure::new(code::CANT_CREATE, e))?;
    }
    // The TLS key's passphrase: its own file (read again at every reload), else the CA's,
    // kept for reloads only when the TLS key is encrypted (a prompt cannot be repeated).
    let tls_key_encrypted = config.tls.as_ref().is_some_and(|files| {
        std::fs::read(&files.private_key).is_ok_and(|pem| csrgate_pki::pem_key_is_encrypted(&pem))
    });
    // The delegated OCSP responder's key is encrypted with the CA passphrase, kept for renewals.
    let ocsp = ocsp_responder(&config, &identity, secret.clone())?;
    // The issuer's CRL is checked (signed by the CA's issuer) before anything is bound.
    let issuer_crl = config
        .root_crl
        .as_deref()
        .map(|path| csrgate_server::IssuerCrl::load(path, identity.chain_pem()))
        .transpose()
        .map_err(|e| Failure::new(code::CONFIG, anyhow::anyhow!(e)))?;
    let tls_passphrase = match &config.tls_key_passphrase_file {
        Some(file) => Some(Arc::new(
            passphrase::from_file(file).map_err(|e| Failure::new(code::NO_PERMISSION, e))?,
        )),
        None if tls_key_encrypted => secret,
        None => None,
    };
    let tls = match &config.tls {
        None => None,
        Some(files) => {
            let material = TlsMaterial::load(
                files,
                tls_passphrase
                    .as_ref()
                    .map(|p| p.expose_secret().as_bytes()),
            )
            .and_then(|material| {
                material
                    .check_client_ca_apart(identity.chain_pem())
                    .map(|()| material)
            })
            .map_err(|e| Failure::new(code::CONFIG, anyhow::anyhow!(e)))?;
            tracing::info!(subject = %material.subject, not_after = %material.not_after, "TLS certificate loaded");
            Some(material)
        }
    };
    tracing::info!(subject = %identity.summary().subject, key = %identity.summary().key, "CA identity unlocked");

    if config.store == StoreBackend::Sled && !config.data_dir.exists() {
        tracing::info!(dir = %config.data_dir.display(), "creating the data directory");
    }
    let store = open_store(&config)?;
    let loader = PluginLoader::for_store(Some(config.plugin_cache.clone()), store.clone());
    let plugins = loader
        .load_blocking(&config.plugins)
        .map_err(|e| Failure::new(code::CONFIG, e))?;
    let metrics = Arc::new(Metrics::default());
    let observed = Arc::clone(&metrics);
    store.observe_flushes(Arc::new(move |writes, elapsed| {
        observed.observe_flush(writes, elapsed);
    }));
    let generations = Generations::new(
        GenerationParts {
            signing: config.policy.clone(),
            issuance: config.issuance.clone(),
            admin,
            est,
            acme,
            plugins,
            open_issuance: config.open_issuance,
            tls,
        },
        Some(metrics.clone()),
    );
    csrgate_server::warn_if_open(&generations.current());
    let listeners =
        csrgate_server::bind(&config).map_err(|e| Failure::new(code::UNAVAILABLE, e))?;
    let gateway = Gateway::new(
        identity,
        generations,
        store.clone(),
        config.crl_validity,
        metrics,
    );
    let gateway = match ocsp {
        Some(responder) => gateway.with_ocsp(responder),
        None => gateway,
    };
    let gateway = match issuer_crl {
        Some(issuer_crl) => gateway.with_issuer_crl(issuer_crl),
        None => gateway,
    };
    let gateway = match config.retention {
        Some(retention) => gateway.with_retention(retention),
        None => gateway,
    };
    let reload = Reload {
        sources: reload_sources,
        loader,
        tls_passphrase,
        tls_listeners: !config.listen_tls.is_empty()
            || config
                .admin_listen
                .iter()
                .any(|a| matches!(a, csrgate_server::AdminListen::Tls(_))),
    };
    csrgate_server::run(&config, gateway, listeners, reload)
        .map_err(|e| Failure::new(code::SOFTWARE, e))?;
    crate::store_location::runtime()?
        .block_on(store.flush())
        .map_err(|e| Failure::new(code::IO, e))
}

/// The store of record the configuration names: sled in the data directory, or PostgreSQL
/// (connected, its schema created or migrated, before anything is bound).
fn open_store(config: &ServerConfig) -> Result<Store, Failure> {
    match &config.store {
        StoreBackend::Sled => {
            Store::open(&config.data_dir).map_err(|e| Failure::new(code::CANT_CREATE, e))
        }
        StoreBackend::Postgres {
            url,
            password_file,
            pool_size,
            ca_file,
        } => {
            let password = crate::store_location::postgres_password(password_file.as_deref())
                .map_err(|e| Failure::new(code::NO_PERMISSION, e))?;
            let postgres = csrgate_store::PostgresConfig {
                url: url.clone(),
                password,
                pool_size: *pool_size,
                ca_file: ca_file.clone(),
            };
            let store = crate::store_location::runtime()?
                .block_on(Store::connect_postgres(&postgres))
                .map_err(crate::store_location::connect_failure)?;
            tracing::info!(url = %url, "PostgreSQL store connected");
            Ok(store)
        }
    }
}

/// With `ocsp_responder = "delegated"`: the responder certificate in the identity directory,
/// issued now when it is missing, unusable or has less than a third of its validity left.
fn ocsp_responder(
    config: &ServerConfig,
    identity: &csrgate_pki::Identity,
    passphrase: Option<Arc<csrgate_pki::Passphrase>>,
) -> Result<Option<OcspResponder>, Failure> {
    if config.ocsp_responder != OcspResponderKind::Delegated {
        return Ok(None);
    }
    let renewal = DelegatedRenewal {
        dir: config.identity_dir.clone(),
        passphrase: passphrase.clone(),
        validity: csrgate_pki::ValidityPeriod::days(DELEGATED_RESPONDER_DAYS),
    };
    let loaded = OcspSigner::load_delegated(identity, &config.identity_dir, passphrase.as_deref());
    let loaded = match loaded {
        Ok(signer) => Some(signer),
        Err(error) => {
            tracing::warn!(%error, "no usable OCSP responder certificate; issuing one");
            None
        }
    };
    let responder = OcspResponder::new(
        loaded,
        config.crl_validity,
        identity.summary().not_after,
        Some(renewal),
    );
    if responder.renewal_in() == Some(std::time::Duration::ZERO) {
        responder.renew(identity).map_err(|e| {
            Failure::new(
                code::CANT_CREATE,
                anyhow::anyhow!("OCSP responder certificate: {e}"),
            )
        })?;
    }
    Ok(Some(responder))
}
