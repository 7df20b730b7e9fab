//! Fuzz target: the ACME JWS intake (RFC 8555 6.2), bytes -> flattened JWS -> protected header
//! -> JWK -> signature check, as the ACME server will run it on every POST.
//! Every input is a parsed request or a typed refusal (malformed, badSignatureAlgorithm,
//! badPublicKey, unauthorized), never a panic; a request carrying its own key is verified with
//! it, and a thumbprint is always 43 base64url characters.

#![no_main]

use csrgate_pki::{JwsKey, JwsRequest, Jwk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = JwsRequest::parse(data)
        && let JwsKey::Jwk(jwk) = &request.key
    {
        let _ = request.verify(jwk);
        assert_eq!(jwk.thumbprint().len(), 43);
    }
    if let Ok(jwk) = Jwk::parse(data) {
        assert_eq!(jwk.thumbprint().len(), 43);
    }
});
