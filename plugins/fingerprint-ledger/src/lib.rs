//! fingerprint-ledger: a postsign plugin that records serial → SHA-256 fingerprint in its KV
//! store, and the last serial issued to each client hash under `client:<hash>`.

use csrgate_hook_sdk::{Plugin, SignedCertificate, kv, log};

struct FingerprintLedger;

impl Plugin for FingerprintLedger {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(FingerprintLedger)
    }

    fn postsign(&self, certificate: &SignedCertificate) {
        let entries = [
            (
                format!("serial:{}", certificate.serial),
                certificate.sha256_fingerprint.as_str(),
            ),
            (
                format!("client:{}", certificate.client_hash),
                certificate.serial.as_str(),
            ),
        ];
        for (key, value) in entries {
            if let Err(why) = kv::set(&key, value.as_bytes()) {
                log::error(&format!("cannot record {key}: {why}"));
            }
        }
    }
}

csrgate_hook_sdk::export_plugin!(FingerprintLedger);
