//! Hostile fixture: authorize writes a lot to stdout and stderr, then allows. Writing must
//! neither crash the host nor reach its terminal unbounded.

use std::io::Write as _;

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};

/// Configuration: `only_for = "<client hash>"` limits the misbehaviour to that client (others
/// are allowed), so one daemon can host every fixture; without it, every request is hit.
#[derive(serde::Deserialize)]
struct StderrFlood {
    only_for: Option<String>,
}

impl Plugin for StderrFlood {
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
        let line = [b'x'; 1024];
        for _ in 0..1024 {
            let _ = std::io::stderr().write_all(&line);
            let _ = std::io::stdout().write_all(&line);
        }
        eprintln!("stderr-flood done");
        Decision::Allow
    }
}

csrgate_hook_sdk::export_plugin!(StderrFlood);
