//! End-to-end: the passphrase prompt on a real pseudo-terminal (driven by Python's `pty`,
//! `tests/support/pty_drive.py`). Whatever is typed (two different entries, nothing, Ctrl-D,
//! bytes that are not UTF-8), the binary answers with a sentence and an exit code, never a
//! panic (exit 101): exit 77 (sysexits' NOPERM, the passphrase's code) with a sentence, and
//! `identity create` writes nothing unless both entries agree. What is typed is never echoed.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// Runs `csrgate ARGS` on a pseudo-terminal, answering its prompts with `answers`; with `until`,
/// SIGTERM once the output contains it. Returns (exit code, everything the terminal showed).
fn on_terminal(args: &[&str], answers: &[&[u8]], until: Option<&str>) -> (i32, String) {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/support/pty_drive.py");
    let answers: Vec<Vec<u8>> = answers.iter().map(|a| a.to_vec()).collect();
    let mut command = Command::new(python());
    command
        .arg(driver)
        .arg(serde_json::to_string(&answers).expect("json"));
    if let Some(until) = until {
        command.args(["--until", until]);
    }
    let output = command
        .arg("--")
        .arg(BIN)
        .args(args)
        .env_remove("CA_PASSPHRASE")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("RUST_LOG", "info")
        .env("CSRGATE_OPEN_ISSUANCE", "true")
        .output()
        .expect("run the pty driver");
    assert!(output.status.success(), "driver: {}", text(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("report");
    (
        report["exit"].as_i64().expect("exit") as i32,
        report["output"].as_str().expect("output").to_owned(),
    )
}

/// What was typed (without its newline) never shows on the terminal.
fn assert_not_echoed(name: &str, answers: &[&[u8]], output: &str) {
    for answer in answers.iter().filter(|a| a.len() > 2) {
        let typed = String::from_utf8_lossy(&answer[..answer.len() - 1]).into_owned();
        assert!(
            !output.contains(&typed),
            "{name}: the passphrase was echoed: {output}"
        );
    }
}

#[test]
fn identity_create_asks_twice_and_never_panics() {
    let ws = Workspace::new();
    // (name, the two entries, exit code, what the terminal must show)
    let cases: [(&str, &[&[u8]], i32, &str); 6] = [
        (
            "different lengths",
            &[b"a-long-passphrase\n", b"short\n"],
            77,
            "the two passphrases differ",
        ),
        (
            "same length, different",
            &[b"passphrase-one\n", b"passphrase-two\n"],
            77,
            "the two passphrases differ",
        ),
        ("empty", &[b"\n"], 77, "the passphrase is empty"),
        ("Ctrl-D", &[b"\x04"], 77, "unexpected end of file"),
        ("not UTF-8", &[b"\xff\xfe\xfd\n"], 77, "not UTF-8"),
        (
            "the same twice",
            &[b"correct horse\n", b"correct horse\n"],
            0,
            "",
        ),
    ];
    for (name, answers, code, shown) in cases {
        let dir = ws.path(&name.replace(' ', "-"));
        let dir_arg = dir.to_str().expect("utf8");
        let (exit, output) = on_terminal(
            &[
                "identity", "create", "--dir", dir_arg, "-f", "CN", "Pty CA", "-v", "1y", "--key",
                "ec:p256",
            ],
            answers,
            None,
        );
        assert_ne!(exit, 101, "{name}: panicked: {output}");
        assert_eq!(exit, code, "{name}: {output}");
        assert!(output.contains(shown), "{name}: {output:?} lacks {shown:?}");
        assert!(!output.contains("panicked"), "{name}: {output}");
        assert_not_echoed(name, answers, &output);
        assert_eq!(
            dir.join("ca.cert.pem").exists(),
            code == 0,
            "{name}: identity files written: {output}"
        );
    }
}

#[test]
fn serve_asks_once_and_never_panics() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Pty Root", None);
    let identity_arg = identity.to_str().expect("utf8");
    let data = ws.path("data");
    let serve = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--identity",
        identity_arg,
        "--data",
        data.to_str().expect("utf8"),
    ];
    // (name, the entry, exit code, what the terminal must show)
    let cases: [(&str, &[u8], i32, &str); 4] = [
        ("wrong", b"not the passphrase\n", 77, "does not decrypt"),
        ("Ctrl-D", b"\x04", 77, "unexpected end of file"),
        ("not UTF-8", b"\xff\xfe\n", 77, "not UTF-8"),
        ("right", b"correct horse battery staple\n", 0, "stopped"),
    ];
    for (name, answer, code, shown) in cases {
        let (exit, output) = on_terminal(&serve, &[answer], Some(" listening "));
        assert_ne!(exit, 101, "{name}: panicked: {output}");
        assert_eq!(exit, code, "{name}: {output}");
        assert!(output.contains(shown), "{name}: {output:?} lacks {shown:?}");
        assert_not_echoed(name, &[answer], &output);
    }
}
