//! Hostile fixture: authorize never returns. The host must cut it off at the deadline.

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};

/// Configuration: `only_for = "<client hash>"` limits the misbehaviour to that client (others
/// are allowed), so one daemon can host every fixture; without it, every request is hit.
#[derive(serde::Deserialize)]
struct InfiniteLoop {
    only_for: Option<String>,
}

impl Plugin for InfiniteLoop {
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
        let mut spins: u64 = 0;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(request.key_bits as u64));
        }
    }
}

csrgate_hook_sdk::export_plugin!(InfiniteLoop);
