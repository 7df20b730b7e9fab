//! Hostile fixture: authorize writes 64 KiB values into the plugin's key-value store in a loop.
//! Tried against an unbounded host, one request wrote ~18 MB before the deadline stopped it, and
//! the writes stayed. The host must keep a trapped call's writes out of the store, cap each call
//! and hold the plugin to its quota.

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest, kv};

/// Configuration: `only_for = "<client hash>"` limits the misbehaviour to that client; `mode`:
/// `"until_deadline"` (loop forever, ignoring errors: the deadline ends it) or
/// `"until_refused"` (write until the host refuses, then allow).
#[derive(serde::Deserialize)]
struct KvFlood {
    only_for: Option<String>,
    mode: String,
}

impl Plugin for KvFlood {
    fn init(config: &str) -> Result<Self, String> {
        let plugin: KvFlood = csrgate_hook_sdk::parse_config(config)?;
        match plugin.mode.as_str() {
            "until_deadline" | "until_refused" => Ok(plugin),
            other => Err(format!("mode {other:?}: until_deadline or until_refused")),
        }
    }

    fn authorize(&self, request: &SigningRequest) -> Decision {
        if self
            .only_for
            .as_ref()
            .is_some_and(|c| *c != request.client_hash)
        {
            return Decision::Allow;
        }
        // A counter in the store itself makes every request's keys new.
        let round = kv::get("round")
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if kv::set("round", (round + 1).to_string().as_bytes()).is_err() {
            return Decision::Deny("kv-flood: round refused".into());
        }
        let value = vec![0x5a; 64 * 1024];
        let mut written = 0u64;
        for i in 0u64.. {
            let stored = kv::set(&format!("{round}-{i}"), &value);
            if stored.is_err() && self.mode == "until_refused" {
                break;
            }
            written += u64::from(stored.is_ok());
        }
        csrgate_hook_sdk::log::info(&format!("kv-flood: {written} values written"));
        Decision::Allow
    }
}

csrgate_hook_sdk::export_plugin!(KvFlood);
