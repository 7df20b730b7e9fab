//! `csrgate store stats|kv|verify-audit|show|import-openssl|copy`: read (or fill) a store
//! offline. A sled data directory is one process's at a time, so these refuse to run beside a
//! live daemon on it; a PostgreSQL store (`--postgres URL`) can be read while replicas serve.

use std::path::PathBuf;

use clap::Subcommand;

use crate::exit::{Failure, code};
use crate::store_location::{StoreArgs, open, runtime};

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Print record and index counts as JSON.
    Stats {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print a plugin's key-value entries as JSON (values as UTF-8 text where they are).
    Kv {
        #[command(flatten)]
        store: StoreArgs,
        /// The plugin name from the configuration.
        plugin: String,
    },
    /// Verify the audit chain: every entry links to the one before and none was edited or removed.
    VerifyAudit {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Adopt a CA run with `openssl ca`: record every certificate in its index.txt (valid,
    /// revoked with date and reason, expired) from the PEM files in its newcerts/ directory, so
    /// they are listed, can be revoked, and appear in the CRL and OCSP. Every line is read and
    /// every certificate checked against --identity before anything is written. With
    /// --crlnumber the CRL Numbers continue from OpenSSL's. Importing again changes nothing but
    /// revocations made with `openssl ca` since (recorded, audited); safe to interrupt (run it
    /// again to finish). Run it with the daemon stopped.
    ///
    /// Example: csrgate store import-openssl --data data --identity identity --index ca/index.txt --certs ca/newcerts --crlnumber ca/crlnumber
    ImportOpenssl {
        /// The store to fill (a sled data directory is created when absent).
        #[command(flatten)]
        store: StoreArgs,
        /// The csrgate identity directory holding the adopted CA's certificate and key.
        #[arg(long, value_name = "DIR", default_value = "identity")]
        identity: PathBuf,
        /// OpenSSL's database (`database` in its openssl.cnf).
        #[arg(long, value_name = "FILE")]
        index: PathBuf,
        /// The directory of issued certificates (`new_certs_dir`), <SERIAL>.pem each.
        #[arg(long, value_name = "DIR")]
        certs: PathBuf,
        /// OpenSSL's `crlnumber` file: the next CRL gets at least that number.
        #[arg(long, value_name = "FILE")]
        crlnumber: Option<PathBuf>,
        /// The client hash the imported certificates are listed under.
        #[arg(long, value_name = "NAME", default_value = "openssl")]
        client_hash: String,
    },
    /// Copy a whole store into another, e.g. from sled to PostgreSQL when one machine is
    /// outgrown, or back: every certificate (in issuance order), the CRL's entries, the audit
    /// chain (same entries, same hashes), the plugins' key-value entries and the CRL Number;
    /// then verified (certificate counts, the destination's chain intact with the source's
    /// head). Idempotent: an interrupted copy is finished by running it again. Stop the daemon
    /// on the source first; the destination must be empty or an earlier copy of the source.
    ///
    /// Example: csrgate store copy --from sled:/var/lib/csrgate --to postgres://csrgate@db/csrgate
    Copy {
        /// The store to read: sled:DIR or postgres://USER@HOST/DATABASE.
        #[arg(long, value_name = "STORE")]
        from: crate::store_location::StoreLocation,
        /// The store to write (a sled directory is created when absent).
        #[arg(long, value_name = "STORE")]
        to: crate::store_location::StoreLocation,
        /// For whichever side is PostgreSQL.
        #[command(flatten)]
        postgres: crate::store_location::PostgresFileArgs,
    },
    /// Back up a running daemon's store: a consistent snapshot (sled pauses writes for one
    /// pass over the store; PostgreSQL reads one transaction) through the admin API, written to
    /// FILE (0600, never over an existing file) and checked to be complete.
    ///
    /// Example: csrgate store backup --url http://127.0.0.1:8080 --token-file identity/dev-admin-token --to csrgate.snapshot
    Backup {
        #[command(flatten)]
        connection: crate::cert_cmd::Connection,
        /// Where to write the snapshot.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Restore a snapshot (`store backup`) into an empty store: sled:DIR (created) or a
    /// PostgreSQL URL; verified (counts, the audit chain). An interrupted restore is finished
    /// by running it again; CRL Numbers continue far past the snapshot's (CRLs published after
    /// it was taken are never numbered twice).
    ///
    /// Example: csrgate store restore --from csrgate.snapshot --to sled:/var/lib/csrgate/data
    Restore {
        /// The snapshot file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The store to fill: sled:DIR or postgres://USER@HOST/DATABASE.
        #[arg(long, value_name = "STORE")]
        to: crate::store_location::StoreLocation,
        #[command(flatten)]
        postgres: crate::store_location::PostgresFileArgs,
    },
    /// Print one certificate record as JSON.
    Show {
        #[command(flatten)]
        store: StoreArgs,
        /// Serial number in hex.
        serial: String,
    },
}

pub fn run(command: StoreCommand) -> Result<(), Failure> {
    match command {
        StoreCommand::Stats { store } => {
            let runtime = runtime()?;
            let store = open_existing(&runtime, &store)?;
            let stats = runtime
                .block_on(store.stats())
                .map_err(|e| Failure::new(code::IO, e))?;
            println!(
                "{}",
                serde_json::json!({
                    "certificates": stats.certificates,
                    "client_index_entries": stats.client_index_entries,
                    "expiry_index_entries": stats.expiry_index_entries,
                })
            );
            Ok(())
        }
        StoreCommand::Kv { store, plugin } => {
            let runtime = runtime()?;
            let store = open_existing(&runtime, &store)?;
            let entries = runtime
                .block_on(store.plugin_kv_entries(&plugin))
                .map_err(|e| Failure::new(code::CANT_CREATE, e))?;
            let map: serde_json::Map<String, serde_json::Value> = entries
                .into_iter()
                .map(|(k, v)| {
                    let value = match String::from_utf8(v) {
                        Ok(text) => serde_json::Value::String(text),
                        Err(e) => serde_json::Value::from(e.into_bytes()),
                    };
                    (k, value)
                })
                .collect();
            println!("{}", serde_json::Value::Object(map));
            Ok(())
        }
        StoreCommand::VerifyAudit { store } => {
            let runtime = runtime()?;
            let store = open_existing(&runtime, &store)?;
            let count = runtime
                .block_on(store.verify_audit())
                .map_err(|e| Failure::new(code::DATA_ERROR, e))?;
            println!("audit chain intact: {count} entries");
            Ok(())
        }
        StoreCommand::ImportOpenssl {
            store,
            identity,
            index,
            certs,
            crlnumber,
            client_hash,
        } => crate::import_openssl::run(
            &store,
            &index,
            &certs,
            crlnumber.as_deref(),
            &identity,
            &client_hash,
        ),
        StoreCommand::Copy { from, to, postgres } => copy(&from, &to, &postgres.files()),
        StoreCommand::Backup { connection, to } => backup(&connection, &to),
        StoreCommand::Restore { from, to, postgres } => restore(&from, &to, &postgres.files()),
        StoreCommand::Show { store, serial } => {
            let serial: csrgate_pki::Serial =
                serial.parse().map_err(|e| Failure::new(code::CONFIG, e))?;
            let runtime = runtime()?;
            let store = open_existing(&runtime, &store)?;
            let record = runtime
                .block_on(store.certificate(&serial))
                .map_err(|e| Failure::new(code::CANT_CREATE, e))?
                .ok_or_else(|| {
                    Failure::new(
                        code::NO_INPUT,
                        anyhow::anyhow!("no certificate with serial {serial}"),
                    )
                })?;
            let text = serde_json::to_string_pretty(&record)
                .map_err(|e| Failure::new(code::SOFTWARE, e))?;
            println!("{text}");
            Ok(())
        }
    }
}

/// The store `args` names, which must exist already (a sled directory is not created).
fn open_existing(
    runtime: &tokio::runtime::Runtime,
    args: &StoreArgs,
) -> Result<csrgate_store::Store, Failure> {
    open(runtime, &args.location(), &args.postgres_files(), false)
}

/// `store copy`: the copy with a progress bar per stage, and its report.
fn copy(
    from: &crate::store_location::StoreLocation,
    to: &crate::store_location::StoreLocation,
    postgres: &crate::store_location::PostgresFiles<'_>,
) -> Result<(), Failure> {
    if from == to {
        return Err(Failure::new(
            code::CONFIG,
            anyhow::anyhow!("--from and --to name the same store"),
        ));
    }
    let runtime = runtime()?;
    let source = open(&runtime, from, postgres, false)?;
    let destination = open(&runtime, to, postgres, true)?;
    let progress = Progress::default();
    let report = runtime
        .block_on(source.copy_to(&destination, &progress))
        .map_err(|e| Failure::new(code::DATA_ERROR, e))?;
    progress.finish();
    println!(
        "copied {from} to {to}: {}; CRL Numbers continue after {}",
        contents(&report),
        report.crl_number
    );
    Ok(())
}

/// One indicatif bar per copy stage.
#[derive(Default)]
struct Progress {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl Progress {
    fn finish(&self) {
        if let Ok(mut bar) = self.bar.lock()
            && let Some(bar) = bar.take()
        {
            bar.finish();
        }
    }
}

impl csrgate_store::CopyProgress for Progress {
    fn stage(&self, name: &'static str, total: Option<u64>) {
        self.finish();
        let bar = match total {
            Some(total) => indicatif::ProgressBar::new(total).with_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            ),
            None => indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template("{spinner} {pos} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            ),
        };
        bar.set_message(name);
        if let Ok(mut current) = self.bar.lock() {
            *current = Some(bar);
        }
    }

    fn advance(&self, items: u64) {
        if let Ok(bar) = self.bar.lock()
            && let Some(bar) = bar.as_ref()
        {
            bar.inc(items);
        }
    }
}

/// `store backup`: the snapshot into a new 0600 file, then checked to end with its end line.
fn backup(connection: &crate::cert_cmd::Connection, to: &std::path::Path) -> Result<(), Failure> {
    use std::io::{BufRead as _, Write as _};
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| {
            Failure::new(
                code::CANT_CREATE,
                anyhow::anyhow!(
                    "{}: {e} (an existing file is never overwritten)",
                    to.display()
                ),
            )
        })?;
    let written = crate::cert_cmd::download(connection, "/store/snapshot", &mut file);
    let written = match written {
        Ok(bytes) => bytes,
        Err(error) => {
            let _ = std::fs::remove_file(to);
            return Err(Failure::new(code::UNAVAILABLE, error));
        }
    };
    file.flush()
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure::new(code::IO, e))?;
    // Complete: the last line is the end line.
    let last =
        std::io::BufReader::new(std::fs::File::open(to).map_err(|e| Failure::new(code::IO, e))?)
            .lines()
            .last()
            .transpose()
            .map_err(|e| Failure::new(code::IO, e))?
            .unwrap_or_default();
    if !last.starts_with("{\"end\":") {
        return Err(Failure::new(
            code::DATA_ERROR,
            anyhow::anyhow!("{}: the snapshot is incomplete (no end line)", to.display()),
        ));
    }
    println!(
        "wrote {} ({written} bytes): a consistent snapshot of the store",
        to.display()
    );
    Ok(())
}

/// `store restore`: a snapshot replayed into a store, with a progress bar per stage.
fn restore(
    from: &std::path::Path,
    to: &crate::store_location::StoreLocation,
    postgres: &crate::store_location::PostgresFiles<'_>,
) -> Result<(), Failure> {
    let file = std::fs::File::open(from)
        .map_err(|e| Failure::new(code::NO_INPUT, anyhow::anyhow!("{}: {e}", from.display())))?;
    let runtime = runtime()?;
    let destination = open(&runtime, to, postgres, true)?;
    let progress = Progress::default();
    let report = runtime
        .block_on(destination.restore_snapshot(&mut std::io::BufReader::new(file), &progress))
        .map_err(|e| Failure::new(code::DATA_ERROR, e))?;
    progress.finish();
    println!(
        "restored {} into {to}: {}; CRL Numbers continue past {}",
        from.display(),
        contents(&report),
        report.crl_number + csrgate_store::RESTORED_CRL_NUMBER_GAP
    );
    Ok(())
}

/// What a copy or a restore holds, for its last line.
fn contents(report: &csrgate_store::CopyReport) -> String {
    format!(
        "{} certificates ({} written now), {} revocations, {} audit entries ({} written now, \
         chain verified), {} plugin entries, {} ACME objects",
        report.certificates,
        report.certificates_written,
        report.revocations,
        report.audit_entries,
        report.audit_written,
        report.plugin_entries,
        report.acme_objects
    )
}
