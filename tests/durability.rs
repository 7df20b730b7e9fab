//! A 200 means the certificate survives a power cut, not only a crash: the daemon's own system
//! calls, recorded by `strace`, show the store's file synced with `fdatasync` after the request
//! was read and before the answer was written, and every blob file sled writes for a large page
//! synced with its directory; and `identity create` syncs the CA's files, then their directory.
//! (A SIGKILL test cannot tell: the page cache survives a killed process. `sync_file_range`,
//! which sled used upstream, writes pages out but neither flushes the disk's write cache nor
//! commits the file's size.)

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// One system call in an `strace -f` log, its `<unfinished ...>` and `<... resumed>` halves
/// joined: `started` and `returned` are line numbers, so calls of different threads can be
/// ordered.
#[derive(Debug)]
struct Syscall {
    name: String,
    args: String,
    result: String,
    started: usize,
    returned: usize,
}

/// Parses `strace -f -o` output (`PID name(args) = result` lines, with interrupted calls split in
/// two); `args` is what stands between the parentheses. Signals, exits and anything else that is
/// not a call are skipped.
fn parse_strace(log: &str) -> Vec<Syscall> {
    let mut calls = Vec::new();
    let mut unfinished: HashMap<&str, (String, String, usize)> = HashMap::new();
    for (number, line) in log.lines().enumerate() {
        let Some((pid, rest)) = line.trim_start().split_once(char::is_whitespace) else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((name, tail)) = resumed.split_once(" resumed>") else {
                continue;
            };
            if let Some((started_name, args, started)) = unfinished.remove(pid)
                && started_name == name
            {
                let (more, result) = tail.rsplit_once(" = ").unwrap_or((tail, ""));
                calls.push(Syscall {
                    name: name.to_owned(),
                    args: closed(&(args + more)).to_owned(),
                    result: result.trim().to_owned(),
                    started,
                    returned: number,
                });
            }
        } else if let Some((name, args)) = rest.split_once('(') {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(args) = args.strip_suffix(" <unfinished ...>") {
                unfinished.insert(pid, (name.to_owned(), args.to_owned(), number));
            } else if let Some((args, result)) = args.rsplit_once(" = ") {
                calls.push(Syscall {
                    name: name.to_owned(),
                    args: closed(args).to_owned(),
                    result: result.trim().to_owned(),
                    started: number,
                    returned: number,
                });
            }
        }
    }
    calls
}

/// A call's arguments without the closing parenthesis and strace's alignment padding.
fn closed(args: &str) -> &str {
    let args = args.trim_end();
    args.strip_suffix(')').unwrap_or(args)
}

/// `strace` attached to every thread of `pid` (and the threads it starts), writing to `log`.
/// Returns once the kernel reports all of them traced.
fn attach_strace(pid: u32, log: &Path) -> Child {
    let mut child = Command::new("strace")
        .args(["-f", "-qq", "-y", "-s", "48", "-o"])
        .arg(log)
        .args([
            "-e",
            "trace=read,readv,recvfrom,write,writev,sendto,sendmsg,fsync,fdatasync",
            "-p",
            &pid.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace runs (Debian package `strace`; .ci/run installs it)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !all_threads_traced(pid) {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("strace did not attach to every thread of the daemon within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// Whether the kernel names a tracer for every thread of `pid` (`TracerPid` in each task's status).
fn all_threads_traced(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("status")).is_ok_and(|status| {
            status.lines().any(|line| {
                line.strip_prefix("TracerPid:")
                    .is_some_and(|tracer| tracer.trim() != "0")
            })
        })
    })
}

fn is_sync(call: &Syscall) -> bool {
    (call.name == "fdatasync" || call.name == "fsync") && call.result == "0"
}

#[test]
fn an_answer_is_written_only_after_the_store_file_is_synced_and_blobs_are_synced_too() {
    let ws = Workspace::new();
    let identity = ws.create_identity("ca", "ec:p256", "Durability CA", None);
    let data = ws.path("data");
    let daemon = Daemon::start(&identity, &data, &[]);
    let trace_log = ws.path("strace.log");
    let mut strace = attach_strace(daemon.pid(), &trace_log);

    // An ordinary certificate: the request read, the store synced, then the 200 written.
    let small = ws.csr("small", P256, "/CN=durable.example", &[]);
    let (status, body) = daemon.put_file("/durable0001", &small, &[]);
    assert_eq!(status, 200, "{body}");

    // Certificates with 100 long names: records of ~50 KiB, whose leaves pass sled's blob
    // threshold (128 KiB) and are written to files of their own under `blobs/`.
    let label = "l".repeat(60);
    let names: Vec<String> = (0..100)
        .map(|i| format!("DNS:n{i:03}.{label}.{label}.{label}.example"))
        .collect();
    let san = format!("subjectAltName={}", names.join(","));
    let big = ws.csr("big", P256, "/CN=big.example", &["-addext", &san]);
    for i in 0..24 {
        let (status, body) = daemon.put_file(&format!("/bigclient{i:02}"), &big, &[]);
        assert_eq!(status, 200, "{body}");
    }
    let blob_dir = data.join("sled").join("blobs");
    let blobs: Vec<String> = std::fs::read_dir(&blob_dir)
        .expect("sled's blob directory")
        .map(|entry| {
            entry
                .expect("blob")
                .file_name()
                .into_string()
                .expect("utf8")
        })
        .collect();

    assert!(daemon.stop().success(), "daemon stops cleanly");
    assert!(
        strace
            .wait()
            .expect("strace ends with the daemon")
            .success()
    );
    let log = std::fs::read_to_string(&trace_log).expect("strace log");
    let calls = parse_strace(&log);

    let request = calls
        .iter()
        .find(|c| {
            ["read", "readv", "recvfrom"].contains(&c.name.as_str())
                && c.args.contains("PUT /durable0001")
        })
        .unwrap_or_else(|| panic!("the request is read in the trace:\n{log}"));
    let answer = calls
        .iter()
        .find(|c| {
            ["write", "writev", "sendto", "sendmsg"].contains(&c.name.as_str())
                && c.started > request.returned
                && c.args.contains("HTTP/1.1 200")
        })
        .unwrap_or_else(|| panic!("the answer is written in the trace:\n{log}"));
    let store_file = format!("{}>", data.join("sled").join("db").display());
    assert!(
        calls.iter().any(|c| is_sync(c)
            && c.args.contains(&store_file)
            && c.started > request.returned
            && c.returned < answer.started),
        "no fdatasync of {store_file} between reading the request (line {}) and answering it \
         (line {}):\n{log}",
        request.returned + 1,
        answer.started + 1
    );

    assert!(
        !blobs.is_empty(),
        "the large certificates made no blob files; the test no longer covers blobs"
    );
    let dir = format!("{}>", blob_dir.display());
    for blob in &blobs {
        let file = format!("{}>", blob_dir.join(blob).display());
        let synced = calls
            .iter()
            .find(|c| is_sync(c) && c.args.contains(&file))
            .unwrap_or_else(|| panic!("blob {blob} is never synced:\n{log}"));
        assert!(
            calls
                .iter()
                .any(|c| is_sync(c) && c.args.contains(&dir) && c.started > synced.returned),
            "the blob directory is not synced after blob {blob} was:\n{log}"
        );
    }
}

#[test]
fn a_new_identity_is_synced_file_by_file_then_its_directory() {
    let ws = Workspace::new();
    let dir = ws.path("ca");
    let trace_log = ws.path("strace.log");
    let output = Command::new("strace")
        .args(["-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&trace_log)
        .arg(BIN)
        // A relative directory, as README.md writes it: its parent is the working directory.
        .current_dir(ws.path(""))
        .args(["identity", "create", "--dir", "ca"])
        .args(["-f", "CN", "Durable CA", "--key", "ec:p256", "-v", "1y"])
        .env("CA_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null())
        .output()
        .expect("strace runs (Debian package `strace`; .ci/run installs it)");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let log = std::fs::read_to_string(&trace_log).expect("strace log");
    let calls = parse_strace(&log);

    let last_file_sync = std::fs::read_dir(&dir)
        .expect("identity directory")
        .map(|entry| {
            let file = format!("{}>", entry.expect("file").path().display());
            calls
                .iter()
                .find(|c| is_sync(c) && c.args.contains(&file))
                .unwrap_or_else(|| panic!("{file} is never synced:\n{log}"))
                .returned
        })
        .max()
        .expect("the identity has files");
    for directory in [dir.as_path(), ws.path("").as_path()] {
        let name = format!("{}>", directory.display().to_string().trim_end_matches('/'));
        assert!(
            calls
                .iter()
                .any(|c| is_sync(c) && c.args.ends_with(&name) && c.started > last_file_sync),
            "{name} is not synced after the identity's files:\n{log}"
        );
    }
}
