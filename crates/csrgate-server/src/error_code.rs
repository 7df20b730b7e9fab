//! The stable error codes of the HTTP API, one table: code string, HTTP status, and when it is
//! answered. README.md's error table is checked against it (`the_readme_table_is_this_table`),
//! so the two cannot disagree.

/// Declares [`ErrorCode`] from `Variant = ("code", status, "when")` rows.
macro_rules! error_codes {
    ($($(#[$attr:meta])* $variant:ident = ($code:literal, $status:literal, $when:literal),)*) => {
        /// Every error code csrgate answers with, in the README's order. The JSON body is
        /// `{"error": {"code": "<code>", "message": "..."}}`; the message says what to change.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum ErrorCode {
            $(#[doc = $when] $(#[$attr])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the README's order.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable code, e.g. `invalid_csr`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status answered with it.
            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }

            /// When it is answered, as README.md says.
            pub fn when(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $when,)*
                }
            }
        }
    };
}

error_codes! {
    InvalidCsr = ("invalid_csr", 400, "not a CSR, bad signature, a refused signature algorithm or version, a subject attribute over its bound or of the wrong character set, a refused SAN, an empty body, more than 32 subject attributes or 100 SANs, an extension asked for twice"),
    WeakKey = ("weak_key", 400, "key type or size not accepted"),
    InvalidRequest = ("invalid_request", 400, "a bad admin request body (an `invalidity_date` in the future, an unknown field), or a renewal the current signing policy refuses"),
    InvalidSerial = ("invalid_serial", 400, "a serial that is not hex"),
    InvalidCursor = ("invalid_cursor", 400, "a listing cursor this server did not hand out"),
    InvalidValidity = ("invalid_validity", 400, "a renewal validity past the configured maximum or the CA's own"),
    BodyUnreadable = ("body_unreadable", 400, "the request body broke off or could not be decoded"),
    Unauthorized = ("unauthorized", 401, "an admin endpoint without a bearer token; EST enrollment without valid HTTP Basic credentials (answered with `WWW-Authenticate: Basic`)"),
    Forbidden = ("forbidden", 403, "an admin endpoint with a wrong token; EST credentials or a client certificate used for another client hash's label; re-enrollment without a TLS client certificate, or with one this CA did not issue or that is revoked, deleted or expired"),
    Denied = ("denied", 403, "an `[[issuance]]` rule refused (the message names the rule and the offending name or key) or an authorize plugin did (the message is its reason)"),
    ReplaceForbidden = ("replace_forbidden", 403, "`?replaces=` names another client's certificate"),
    NotFound = ("not_found", 404, "a bad client hash, an unknown serial or an unknown path (EST paths on a listener without TLS, or on a server without EST credentials)"),
    BodyTimeout = ("body_timeout", 408, "the body did not arrive within `request_timeout` (10 s); a slow head is cut off too"),
    AlreadyRevoked = ("already_revoked", 409, "revoking, renewing or rotating a revoked certificate"),
    AlreadyReplaced = ("already_replaced", 409, "renewing or rotating a certificate that was renewed or rotated already (one successor each)"),
    BodyTooLarge = ("body_too_large", 413, "a body over `max_body_bytes` (64 KiB), announced (also before the upload, for `Expect: 100-continue`) or read"),
    HeadersTooLarge = ("headers_too_large", 431, "request headers over 16 KiB"),
    Internal = ("internal", 500, "anything else; details only in the server log"),
    InvalidTemplate = ("invalid_template", 500, "the CA refused the certificate template it made itself (a bug: the request passed intake)"),
    PluginInvalidTemplate = ("plugin_invalid_template", 500, "a presign plugin returned a template the CA refuses (named)"),
    PluginPresignRefused = ("plugin_presign_refused", 500, "a presign plugin returned an error instead of a template (named)"),
    PluginFailed = ("plugin_failed", 503, "a plugin trapped, ran past its deadline or memory limit (named in the message)"),
    StoreUnavailable = ("store_unavailable", 503, "the record could not be written durably (disk full, read-only, failing); nothing was issued. The store reopens itself once the disk recovers"),
    CrlUnavailable = ("crl_unavailable", 503, "no CRL has been published yet"),
}

impl ErrorCode {
    /// README.md's error table, generated from [`ErrorCode::ALL`].
    pub fn readme_table() -> String {
        let mut table = String::from("| status | code | when |\n| --- | --- | --- |\n");
        for code in ErrorCode::ALL {
            table.push_str(&format!(
                "| {} | `{}` | {} |\n",
                code.status(),
                code.as_str(),
                code.when()
            ));
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
            assert!((400..600).contains(&code.status()), "{code:?}");
        }
    }

    /// README.md's error table is exactly the one this module generates; on a mismatch, paste
    /// the printed table into the README.
    #[test]
    fn the_readme_table_is_this_table() {
        let readme = include_str!("../../../README.md");
        let table = ErrorCode::readme_table();
        assert!(
            readme.contains(&table),
            "README.md's error table differs from ErrorCode; it should read:\n\n{table}"
        );
        let rows = readme
            .lines()
            .filter(|line| line.starts_with("| 4") || line.starts_with("| 5"))
            .count();
        assert_eq!(rows, ErrorCode::ALL.len(), "README.md has other error rows");
    }
}
