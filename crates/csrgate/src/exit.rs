//! Exit codes (sysexits.h) and the one place failures are printed.

use std::io::Write as _;

use std::process::ExitCode;

/// A failed command: what to print and which code to exit with.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

/// Exit codes, documented in `csrgate serve --help` and the systemd README.
pub mod code {
    /// The input was refused (a dry run whose request would not be signed).
    pub const DATA_ERROR: u8 = 65;
    /// A required input (the identity) is missing.
    pub const NO_INPUT: u8 = 66;
    /// Binding a socket failed.
    pub const UNAVAILABLE: u8 = 69;
    /// An internal error.
    pub const SOFTWARE: u8 = 70;
    /// The data directory cannot be opened or written (store unusable).
    pub const CANT_CREATE: u8 = 73;
    /// Writing an output file failed.
    pub const IO: u8 = 74;
    /// The CA passphrase is missing or wrong.
    pub const NO_PERMISSION: u8 = 77;
    /// The configuration or a command-line value is invalid.
    pub const CONFIG: u8 = 78;
}

impl Failure {
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code,
            error: error.into(),
        }
    }

    pub fn report(self) -> ExitCode {
        // Not eprintln!: it panics when stderr is gone, and the exit code must stay ours.
        let _ = writeln!(std::io::stderr(), "csrgate: error: {:#}", self.error);
        ExitCode::from(self.code)
    }
}
