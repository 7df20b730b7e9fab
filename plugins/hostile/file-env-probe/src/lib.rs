//! Hostile fixture: authorize tries to read a file, list a directory and read the environment,
//! then denies with a report of what it got. The sandbox must make every attempt come back empty.

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest};

struct FileEnvProbe;

impl Plugin for FileEnvProbe {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(FileEnvProbe)
    }

    fn authorize(&self, _request: &SigningRequest) -> Decision {
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
