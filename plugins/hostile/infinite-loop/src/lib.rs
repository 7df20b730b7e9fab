//! Hostile fixture: authorize never returns. The host must cut it off at the deadline.

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};

struct InfiniteLoop;

impl Plugin for InfiniteLoop {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(InfiniteLoop)
    }

    fn authorize(&self, request: &SigningRequest) -> Decision {
        let mut spins: u64 = 0;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(request.key_bits as u64));
        }
    }
}

csrgate_hook_sdk::export_plugin!(InfiniteLoop);
