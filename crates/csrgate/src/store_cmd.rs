//! `csrgate store stats|kv|verify-audit|show|import-openssl`: read (or, for an import, fill) a
//! stopped daemon's data directory offline (sled allows one process at a time, so these refuse to
//! run beside a live daemon).

use std::path::PathBuf;

use clap::Subcommand;
use csrgate_store::Store;

use crate::exit::{Failure, code};

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Print record and index counts as JSON.
    Stats {
        /// The data directory.
        #[arg(long, value_name = "DIR", default_value = "data")]
        data: PathBuf,
    },
    /// Print a plugin's key-value entries as JSON (values as UTF-8 text where they are).
    Kv {
        /// The data directory.
        #[arg(long, value_name = "DIR", default_value = "data")]
        data: PathBuf,
        /// The plugin name from the configuration.
        plugin: String,
    },
    /// Verify the audit chain: every entry links to the one before and none was edited or removed.
    VerifyAudit {
        /// The data directory.
        #[arg(long, value_name = "DIR", default_value = "data")]
        data: PathBuf,
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
        /// The data directory (created when absent).
        #[arg(long, value_name = "DIR", default_value = "data")]
        data: PathBuf,
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
    /// Print one certificate record as JSON.
    Show {
        /// The data directory.
        #[arg(long, value_name = "DIR", default_value = "data")]
        data: PathBuf,
        /// Serial number in hex.
        serial: String,
    },
}

pub fn run(command: StoreCommand) -> Result<(), Failure> {
    match command {
        StoreCommand::Stats { data } => {
            let store = open(data)?;
            let stats = store.stats().map_err(|e| Failure::new(code::IO, e))?;
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
        StoreCommand::Kv { data, plugin } => {
            let store = open(data)?;
            let entries = store
                .plugin_kv_entries(&plugin)
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
        StoreCommand::VerifyAudit { data } => {
            let store = open(data)?;
            let count = store
                .verify_audit()
                .map_err(|e| Failure::new(code::DATA_ERROR, e))?;
            println!("audit chain intact: {count} entries");
            Ok(())
        }
        StoreCommand::ImportOpenssl {
            data,
            identity,
            index,
            certs,
            crlnumber,
            client_hash,
        } => crate::import_openssl::run(
            &data,
            &index,
            &certs,
            crlnumber.as_deref(),
            &identity,
            &client_hash,
        ),
        StoreCommand::Show { data, serial } => {
            let serial: csrgate_pki::Serial =
                serial.parse().map_err(|e| Failure::new(code::CONFIG, e))?;
            let store = open(data)?;
            let record = store
                .certificate(&serial.to_string())
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

fn open(data: PathBuf) -> Result<Store, Failure> {
    if !data.exists() {
        return Err(Failure::new(
            code::NO_INPUT,
            anyhow::anyhow!("{} does not exist", data.display()),
        ));
    }
    Store::open(&data).map_err(|e| Failure::new(code::CANT_CREATE, e))
}
