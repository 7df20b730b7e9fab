//! Hostile fixture: authorize panics (a trap in WebAssembly).

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};

/// Configuration: `only_for = "<client hash>"` limits the misbehaviour to that client (others
/// are allowed), so one daemon can host every fixture; without it, every request is hit.
#[derive(serde::Deserialize)]
struct Trap {
    only_for: Option<String>,
}

impl Plugin for Trap {
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
        panic!("deliberate panic for client {}", request.client_hash)
    }
}

csrgate_hook_sdk::export_plugin!(Trap);
