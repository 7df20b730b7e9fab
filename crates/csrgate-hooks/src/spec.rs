//! Plugin specifications: what the configuration says about each plugin.

use std::path::PathBuf;
use std::time::Duration;

/// A hook a plugin can be attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// authorize: allow or deny.
    Authorize,
    /// presign: change the template.
    Presign,
    /// postsign: observe the certificate.
    Postsign,
}

impl std::str::FromStr for Hook {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "authorize" => Ok(Hook::Authorize),
            "presign" => Ok(Hook::Presign),
            "postsign" => Ok(Hook::Postsign),
            _ => Err(format!(
                "unknown hook {text:?}: use authorize, presign or postsign"
            )),
        }
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Hook::Authorize => "authorize",
            Hook::Presign => "presign",
            Hook::Postsign => "postsign",
        })
    }
}

/// One plugin as configured.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    /// A name for logs, errors and the KV namespace (unique within the set).
    pub name: String,
    /// Path of the `.wasm` component.
    pub path: PathBuf,
    /// The hooks it is attached to, in no particular order (order between plugins is list order).
    pub hooks: Vec<Hook>,
    /// The configuration table, as JSON text, passed to `init`.
    pub config_json: String,
    /// Wall-clock budget for one call (instantiation, `init` and the hook together).
    pub deadline: Duration,
    /// Largest linear memory the plugin may grow to.
    pub memory_bytes: usize,
    /// Bytes (keys and values) its key-value store may hold in all.
    pub kv_quota_bytes: u64,
}

/// Default per-call deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(50);
/// Default memory limit.
pub const DEFAULT_MEMORY_BYTES: usize = 32 << 20;
/// Largest memory limit a plugin may be given (the pool's slot size).
pub const MAX_MEMORY_BYTES: usize = 512 << 20;
