//! noop: implements no hook (every default applies). Used as the per-call cost baseline.

use csrgate_hook_sdk::Plugin;

struct Noop;

impl Plugin for Noop {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(Noop)
    }
}

csrgate_hook_sdk::export_plugin!(Noop);
