//! csrgate-types: the values csrgate-pki, csrgate-store and the server all speak in, so a serial
//! read from a request, signed into a certificate, stored, and listed in a CRL is one type from
//! end to end (rustls-pki-types plays the same part between rustls and webpki).
//!
//! Nothing here does I/O or cryptography: parsing, printing, and the stored form (serde) only.

#![forbid(unsafe_code)]

mod reason;
mod serial;

pub use reason::RevocationReason;
pub use serial::Serial;

/// Text that is not a value of the type it was parsed as; the message says what to send instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);
