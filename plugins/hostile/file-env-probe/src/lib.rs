//! Hostile fixture: authorize tries to read a file, list a directory and read the environment,
//! then denies with a report of what it got. The sandbox must make every attempt come back empty.

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};

/// Configuration: `only_for = "<client hash>"` limits the misbehaviour to that client (others
/// are allowed), so one daemon can host every fixture; without it, every request is hit.
#[derive(serde::Deserialize)]
struct FileEnvProbe {
    only_for: Option<String>,
}

impl Plugin for FileEnvProbe {
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
        let file = match std::fs::read("/etc/passwd") {
            Ok(bytes) => format!("read {} bytes", bytes.len()),
            Err(_) => "error".to_owned(),
        };
        let dir = match std::fs::read_dir("/") {
            Ok(entries) => format!("{} entries", entries.count()),
            Err(_) => "error".to_owned(),
        };
        let env = std::env::vars().count();
        let args = std::env::args().count();
        Decision::Deny(format!(
            "probe: file={file}; dir={dir}; env={env}; args={args}"
        ))
    }
}

csrgate_hook_sdk::export_plugin!(FileEnvProbe);
