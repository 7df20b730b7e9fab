//! Hostile fixture: authorize allocates without bound. The host's memory limit must stop it.

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};

/// Configuration: `only_for = "<client hash>"` limits the misbehaviour to that client (others
/// are allowed), so one daemon can host every fixture; without it, every request is hit.
#[derive(serde::Deserialize)]
struct MemoryBomb {
    only_for: Option<String>,
}

impl Plugin for MemoryBomb {
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
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xA5; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

csrgate_hook_sdk::export_plugin!(MemoryBomb);
