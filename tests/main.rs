//! The end-to-end tests, one binary (ripgrep's layout: the harness is compiled once). Each module
//! starts the real `csrgate` binary and talks to it with real clients; `support` is the harness.
//! They are a target of the `csrgate` package so that cargo builds the binary first and passes
//! its path in `CARGO_BIN_EXE_csrgate`.

mod support;

mod acme;
mod adopt;
mod bad_input;
mod crl_chain;
mod durability;
mod est;
mod examples;
mod generate;
mod identity_cli;
mod inspect;
mod intake;
mod issuance;
mod lifecycle;
mod malformed_corpus;
mod ocsp;
mod plugins;
mod reliability;
mod replicas;
mod resource_faults;
mod signing;
mod startup;
mod systemd;
mod terminal;
mod tls;
mod zoo;
