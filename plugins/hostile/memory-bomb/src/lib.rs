//! Hostile fixture: authorize allocates without bound. The host's memory limit must stop it.

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};

struct MemoryBomb;

impl Plugin for MemoryBomb {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(MemoryBomb)
    }

    fn authorize(&self, _request: &SigningRequest) -> Decision {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xA5; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

csrgate_hook_sdk::export_plugin!(MemoryBomb);
