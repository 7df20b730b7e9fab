//! Hostile fixture: authorize panics (a trap in WebAssembly).

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};

struct Trap;

impl Plugin for Trap {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(Trap)
    }

    fn authorize(&self, request: &SigningRequest) -> Decision {
        panic!("deliberate panic for client {}", request.client_hash)
    }
}

csrgate_hook_sdk::export_plugin!(Trap);
