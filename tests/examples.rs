//! End-to-end: the shipped examples work as documented. The daemon runs with
//! `examples/csrgate.toml` (flags override its paths) and `examples/put-csrs.sh` issues and
//! verifies one certificate per key type against it.

use std::path::PathBuf;
use std::process::Command;

use crate::support::*;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn example_config_and_script_work() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p384", "Examples CA", None);
    let config = examples_dir().join("csrgate.toml");
    let daemon = Daemon::start(
        &identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
    );
    let output = Command::new("bash")
        .arg(examples_dir().join("put-csrs.sh"))
        .arg(&daemon.base_url)
        .arg("examples1")
        .output()
        .expect("run put-csrs.sh");
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert_eq!(stdout.matches(", verified").count(), 4, "{stdout}");
}

/// An installed binary has no source tree: `serve --print-example-config` prints the documented
/// example, which is the shipped file, and it is a configuration the daemon accepts.
#[test]
fn the_example_configuration_ships_inside_the_binary() {
    let ws = Workspace::new();
    let printed = csrgate()
        .args(["serve", "--print-example-config"])
        .output()
        .expect("run");
    assert!(printed.status.success(), "{}", text(&printed.stderr));
    let shipped = std::fs::read_to_string(examples_dir().join("csrgate.toml")).expect("example");
    assert_eq!(text(&printed.stdout), shipped);
    let identity = ws.create_identity("ca", "ec:p256", "Printed CA", None);
    let config = ws.write("printed.toml", &printed.stdout);
    let daemon = Daemon::start(
        &identity,
        &ws.path("data"),
        &["--config", config.to_str().expect("utf8")],
    );
    daemon.stop();
}
