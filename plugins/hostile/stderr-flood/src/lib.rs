//! Hostile fixture: authorize writes a lot to stdout and stderr, then allows. Writing must
//! neither crash the host nor reach its terminal unbounded.

use std::io::Write as _;

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};

struct StderrFlood;

impl Plugin for StderrFlood {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(StderrFlood)
    }

    fn authorize(&self, _request: &SigningRequest) -> Decision {
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
