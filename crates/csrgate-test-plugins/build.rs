//! Builds every plugin of `plugins/` for wasm32-wasip2 (in plugins/target, its own target
//! directory, so the outer build's lock is not contended) and the Python plugin with
//! componentize-py. The paths are handed to the crate as environment variables.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let repo = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("repository root");
    let plugins = repo.join("plugins");
    for watched in ["plugins", "wit", "crates/csrgate-hook-sdk"] {
        println!("cargo:rerun-if-changed={}", repo.join(watched).display());
    }
    let target_dir = plugins.join("target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags meant for the host build must not leak into the wasm build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        // Under `cargo clippy` the outer build wraps rustc; the plugins are linted by .ci/run
        // on their own, so build them plainly here.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .status()
        .expect("run cargo for the plugins workspace");
    assert!(
        status.success(),
        "building plugins/ for wasm32-wasip2 failed; is the target installed? (rustup target add wasm32-wasip2)"
    );
    println!(
        "cargo:rustc-env=CSRGATE_TEST_PLUGINS_DIR={}",
        target_dir.join("wasm32-wasip2/release").display()
    );
    build_python(&plugins, &target_dir);
}

fn build_python(plugins: &Path, target_dir: &Path) {
    let output = target_dir.join("python-allowlist.wasm");
    let result = Command::new("componentize-py")
        .current_dir(plugins)
        .args([
            "-d",
            "../wit/v0.1.0",
            "-w",
            "plugin",
            "componentize",
            "-p",
            "python-allowlist",
            "app",
            "-o",
        ])
        .arg(&output)
        .output();
    match result {
        Ok(out) if out.status.success() => {
            println!(
                "cargo:rustc-env=CSRGATE_TEST_PYTHON_PLUGIN={}",
                output.display()
            );
            println!("cargo:rustc-env=CSRGATE_TEST_PYTHON_ERROR=");
        }
        Ok(out) => {
            let why = String::from_utf8_lossy(&out.stderr).replace('\n', " ");
            println!("cargo:warning=componentize-py failed: {why}");
            println!("cargo:rustc-env=CSRGATE_TEST_PYTHON_PLUGIN=");
            println!("cargo:rustc-env=CSRGATE_TEST_PYTHON_ERROR=componentize-py failed: {why}");
        }
        Err(error) => {
            println!(
                "cargo:warning=componentize-py not found ({error}); pip install componentize-py==0.25.1"
            );
            println!("cargo:rustc-env=CSRGATE_TEST_PYTHON_PLUGIN=");
            println!(
                "cargo:rustc-env=CSRGATE_TEST_PYTHON_ERROR=componentize-py not found ({error}); pip install componentize-py==0.25.1"
            );
        }
    }
}
