//! `csrgate store stats|show`: read a stopped daemon's data directory offline (sled allows one
//! process at a time, so these refuse to run beside a live daemon).

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
