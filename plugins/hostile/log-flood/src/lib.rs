//! Hostile fixture: authorize logs through the host's `log` in a loop (10,000 lines), then
//! allows. The host must keep at most its per-call number of lines and count the rest.

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};

/// Configuration: `only_for = "<client hash>"` limits the misbehaviour to that client.
#[derive(serde::Deserialize)]
struct LogFlood {
    only_for: Option<String>,
}

impl Plugin for LogFlood {
    fn init(config: &str) -> Result<Self, String> {
        csrgate_hook_sdk::parse_config(config)
    }

    fn authorize(&self, request: &SigningRequest) -> Decision {
        if self
            .only_for
            .as_ref()
            .is_some_and(|c| *c != request.client_hash)
        {
            return Decision::Allow;
        }
        for i in 0..10_000 {
            csrgate_hook_sdk::log::warn(&format!("log-flood line {i}"));
        }
        Decision::Allow
    }
}

csrgate_hook_sdk::export_plugin!(LogFlood);
