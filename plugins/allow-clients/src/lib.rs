//! allow-clients: an authorize plugin that lets only listed client hashes through.
//!
//! Configuration: `clients = ["abc123", ...]`.

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowClients {
    clients: Vec<String>,
}

impl Plugin for AllowClients {
    fn init(config: &str) -> Result<Self, String> {
        csrgate_hook_sdk::parse_config(config)
    }

    fn authorize(&self, request: &SigningRequest) -> Decision {
        if self.clients.contains(&request.client_hash) {
            Decision::Allow
        } else {
            Decision::Deny(format!(
                "client {} is not on the allowlist",
                request.client_hash
            ))
        }
    }
}

csrgate_hook_sdk::export_plugin!(AllowClients);
