//! csrgate: the command line. Parses arguments, sets up logging and hands each subcommand to its
//! module; every failure leaves with a sysexits code that says which part is at fault.

#![forbid(unsafe_code)]

mod cert_cmd;
mod dev_identity;
mod exit;
mod identity_cmd;
mod import_openssl;
mod inspect_cmd;
mod passphrase;
mod plugin_cmd;
mod serve_cmd;
mod store_cmd;
mod store_location;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use csrgate_server::LogFormat;

/// csrgate: a certificate authority gateway. Clients PUT a CSR to /<client_hash>; csrgate checks
/// it, runs the authorize/presign/postsign hooks, signs it with the CA identity and records it
/// durably before answering.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or inspect a CA identity (certificate + encrypted private key).
    #[command(subcommand)]
    Identity(identity_cmd::IdentityCommand),
    /// Run the signing daemon.
    ///
    /// Every flag can also be set in the config file or as CSRGATE_<KEY> (nested keys with "__",
    /// e.g. CSRGATE_SIGNING__DEFAULT_VALIDITY=30d; lists comma-separated, e.g.
    /// CSRGATE_LISTEN=127.0.0.1:8080,[::1]:8080). Precedence: flag > environment > file > default.
    ///
    /// Plugins are listed in the config file ([[plugins]], see plugins/README.md). SIGHUP re-reads
    /// the file and swaps in the new signing policy, issuance rules, admin tokens and plugins as
    /// one generation without dropping requests (a request runs wholly on the generation it
    /// started with); a configuration that fails to load is refused and the running one stays.
    /// Listeners, identity, data directory, store and plugin cache change at the next restart.
    /// With store = "postgres", several replicas share one database: each reloads its own
    /// configuration on its own SIGHUP (send it to every replica).
    ///
    /// Configuration keys (`serve --print-example-config` prints examples/csrgate.toml, which
    /// documents each): listen, listen_unix,
    /// listen_unix_mode, listen_tls, tls_certificate, tls_private_key, tls_key_passphrase_file,
    /// tls_client_ca, est_credentials_file, acme, acme_client_hashes, acme_eab_file,
    /// acme_http01_port, acme_tls_alpn01_port, acme_validation_address, acme_dns_resolver,
    /// admin_listen,
    /// identity, data, dev, passphrase_file,
    /// admin_tokens_file, max_body_bytes,
    /// max_connections, request_timeout, strict_permissions, plugin_cache, open_issuance,
    /// log_level, log_format, ocsp_url, crl_url, ocsp_responder, root_crl, retention, store,
    /// postgres_url, postgres_password_file, postgres_pool_size, postgres_ca_file;
    /// [signing] default_validity, max_validity, backdate, extended_key_usage,
    /// allow_sha1_requests, allow_single_label_wildcards; [crl] validity; [[issuance]] name,
    /// clients, dns, wildcards, ip, email_domains, uri_prefixes, key_types, min_rsa_bits,
    /// max_validity; [[plugins]] name, path, hooks, deadline, memory, kv_quota, config.
    ///
    /// The store: store = "sled" (default: in the data directory) or "postgres", shared by
    /// several replicas, with postgres_url (a libpq URL without a password; add
    /// ?sslmode=require over a network, verified against postgres_ca_file), the password from
    /// the credential postgres-password or postgres_password_file, postgres_pool_size
    /// connections (16). retention = "400d" removes certificates expired for longer (audited).
    ///
    /// ACME (acme = true, on listen_tls): /acme/directory and /acme/<client_hash>/directory for
    /// each of acme_client_hashes (default "acme"), which then issue through ACME only (PUT and
    /// EST refuse them); acme_eab_file (or the credential acme-eab) makes External Account
    /// Binding required. See README "Certificates over ACME".
    ///
    /// Closed by default: without an [[issuance]] rule or an authorize plugin, serve refuses to
    /// start (exit 78) unless open_issuance = true or --dev.
    ///
    /// Exit codes: 66 identity missing, 69 cannot bind or reach PostgreSQL, 73 data directory
    /// unusable, 77 passphrase
    /// missing or wrong, 78 invalid configuration or plugins that do not load, 70 anything else.
    Serve(serve_cmd::ServeArgs),
    /// List, show, revoke and renew certificates through a running daemon's admin API.
    Cert {
        #[command(flatten)]
        connection: cert_cmd::Connection,
        #[command(subcommand)]
        command: cert_cmd::CertCommand,
    },
    /// Show what a certificate, chain, certificate request or CRL (PEM or DER), private key
    /// (PEM) or PKCS#12 bundle holds (subject, issuer, serial, validity, SANs, key, extensions,
    /// fingerprints); with --url, each certificate's status from a running csrgate's OCSP responder;
    /// --json for scripts.
    ///
    /// Example: csrgate inspect app.pem --url http://127.0.0.1:8080
    Inspect(inspect_cmd::InspectArgs),
    /// Check a plugin component, or run a CSR through the configured plugins offline.
    #[command(subcommand)]
    Plugin(plugin_cmd::PluginCommand),
    /// Inspect a stopped daemon's data directory offline.
    #[command(subcommand)]
    Store(store_cmd::StoreCommand),
    /// The audit chain of a stopped daemon's data directory.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the chain: exit 0 when intact, 65 naming the first broken entry otherwise.
    Verify {
        #[command(flatten)]
        store: store_location::StoreArgs,
    },
}

/// Flags shared by every command that needs the CA passphrase.
#[derive(Debug, clap::Args)]
struct PassphraseArgs {
    /// Read the CA passphrase from FILE (first line). Sources, first found wins:
    /// $CREDENTIALS_DIRECTORY/ca-passphrase (systemd LoadCredential=), this flag, the
    /// CA_PASSPHRASE environment variable, a prompt on the terminal.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // serve sets up logging once its configuration (log_level, log_format) is read.
    if !matches!(cli.command, Command::Serve(_))
        && let Err(error) = init_logging("info", LogFormat::Text)
    {
        eprintln!("csrgate: error: {error}");
        return ExitCode::from(exit::code::CONFIG);
    }
    let result = match cli.command {
        Command::Identity(command) => identity_cmd::run(command),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Cert {
            connection,
            command,
        } => cert_cmd::run(connection, command),
        Command::Inspect(args) => inspect_cmd::run(args),
        Command::Plugin(command) => plugin_cmd::run(command),
        Command::Store(command) => store_cmd::run(command),
        Command::Audit(AuditCommand::Verify { store }) => {
            store_cmd::run(store_cmd::StoreCommand::VerifyAudit { store })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Logs go to stderr, as text lines or one JSON object per line (timestamp, level, target,
/// fields). `RUST_LOG` wins over `level`. Under systemd (JOURNAL_STREAM set) text lines carry no
/// time: the journal adds its own.
pub(crate) fn init_logging(level: &str, format: LogFormat) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(&directives)
            .map_err(|e| anyhow::anyhow!("RUST_LOG {directives:?}: {e}"))?,
        _ => EnvFilter::try_new(level).map_err(|e| {
            anyhow::anyhow!(
                "configuration key `log_level`: {level:?}: {e} (use e.g. info or warn,csrgate_hooks=debug)"
            )
        })?,
    };
    // log_internal_errors(false): on a failed write (journald restarted, the reading end of a
    // pipe gone) tracing-subscriber would report it with eprintln!, which panics on that same
    // broken stderr, in whatever task logged: the SIGTERM handler among them.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(false)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => {
            let builder = builder
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false);
            if std::env::var_os("JOURNAL_STREAM").is_some() {
                builder.without_time().with_ansi(false).try_init()
            } else {
                builder.try_init()
            }
        }
    };
    installed.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
