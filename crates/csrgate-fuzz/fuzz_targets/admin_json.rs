//! Fuzz target: the admin API's JSON bodies (revoke, renew, generate), parsed as the handlers
//! parse them.
//! A body is either a checked value or a 400 `invalid_request`, never a panic.

#![no_main]

use csrgate_server::admin_bodies::{GenerateRequest, RenewRequest, RevokeRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(error) = RevokeRequest::parse(data, 1_767_323_045) {
        assert_eq!(error.code(), "invalid_request");
    }
    if let Err(error) = RenewRequest::parse(data) {
        assert_eq!(error.code(), "invalid_request");
    }
    if let Err(error) = GenerateRequest::parse(data) {
        assert_eq!(error.code(), "invalid_request");
    }
});
