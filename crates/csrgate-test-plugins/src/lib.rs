//! Test support: where the plugin components built by this crate's build script are, and
//! configurations for them. Used by csrgate-hooks' and csrgate's tests only.

#![forbid(unsafe_code)]

use std::path::PathBuf;

/// Path of the component built from `plugins/<crate>`, e.g. `component("allow_clients")`.
pub fn component(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CSRGATE_TEST_PLUGINS_DIR")).join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// An `allow_clients` configuration (JSON) listing `count` distinct client hashes
/// `client00000-0123456789abcdef`, `client00001-…`: about 35 bytes each, so 2,000 of them are
/// more than the heap left in the component's initial memory.
pub fn allowlist_config(count: usize) -> String {
    let clients: Vec<String> = (0..count)
        .map(|i| format!("\"client{i:05}-0123456789abcdef\""))
        .collect();
    format!(r#"{{"clients":[{}]}}"#, clients.join(","))
}

/// Path of the Python allowlist component. Panics with the reason when componentize-py was not
/// available at build time: a missing tool is a failure, not a skipped test.
pub fn python_allowlist() -> PathBuf {
    let path = env!("CSRGATE_TEST_PYTHON_PLUGIN");
    assert!(
        !path.is_empty(),
        "the Python plugin was not built: {}",
        env!("CSRGATE_TEST_PYTHON_ERROR")
    );
    PathBuf::from(path)
}
