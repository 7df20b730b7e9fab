//! The CA passphrase: zeroized on drop, redacted from `Debug`, never displayed.

use std::fmt;

use zeroize::Zeroizing;

use crate::PkiError;

/// A secret that unlocks the CA private key.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Reads a passphrase file (UTF-8; one trailing newline removed, as [`Passphrase::new`]).
    /// The bytes read are zeroized. Errors name the file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, PkiError> {
        let bad = |why: String| {
            PkiError::InvalidParameter(format!("passphrase file {}: {why}", path.display()))
        };
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| bad(e.to_string()))?);
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8 text".into()))?;
        Passphrase::new(text.to_owned()).map_err(|e| bad(e.to_string()))
    }

    /// Wraps a passphrase. One trailing newline (as left by `echo` or an editor) is removed; an empty
    /// passphrase is refused because it would encrypt the key with nothing.
    pub fn new(mut text: String) -> Result<Self, PkiError> {
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        let text = Zeroizing::new(text);
        if text.is_empty() {
            return Err(PkiError::InvalidParameter("the passphrase is empty".into()));
        }
        Ok(Passphrase(text))
    }

    /// A fresh random passphrase (256 bits, URL-safe base64), for development identities.
    pub fn generate() -> Result<Self, PkiError> {
        use base64::Engine as _;
        let mut bytes = Zeroizing::new([0u8; 32]);
        openssl::rand::rand_bytes(bytes.as_mut())?;
        Ok(Passphrase(Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()),
        )))
    }

    /// The secret itself, for writing it where the operator asked (a dev passphrase file).
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl PartialEq for Passphrase {
    fn eq(&self, other: &Self) -> bool {
        // `memcmp::eq` panics on slices of different lengths, so the length is compared first
        // (a passphrase's length is no secret worth a panic; its bytes are compared in constant
        // time).
        self.0.len() == other.0.len() && openssl::memcmp::eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_of_any_length_compare_without_panicking() {
        let cases = [
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("abc", "abcd", false),
            ("a-much-longer-passphrase", "short", false),
        ];
        for (a, b, equal) in cases {
            let (a, b) = (
                Passphrase::new(a.into()).expect("a"),
                Passphrase::new(b.into()).expect("b"),
            );
            assert_eq!(a == b, equal);
            assert_eq!(b == a, equal);
        }
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let p = Passphrase::new("hunter2-very-secret".into()).expect("valid");
        let shown = format!("{p:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn one_trailing_newline_is_dropped_and_empty_is_refused() {
        assert_eq!(
            Passphrase::new("abc\n".into())
                .expect("valid")
                .expose_secret(),
            "abc"
        );
        assert_eq!(
            Passphrase::new("abc\r\n".into())
                .expect("valid")
                .expose_secret(),
            "abc"
        );
        assert_eq!(
            Passphrase::new("abc\n\n".into())
                .expect("valid")
                .expose_secret(),
            "abc\n"
        );
        assert!(Passphrase::new("\n".into()).is_err());
        assert!(Passphrase::new(String::new()).is_err());
    }

    #[test]
    fn generated_passphrases_differ() {
        let a = Passphrase::generate().expect("rng");
        let b = Passphrase::generate().expect("rng");
        assert_ne!(a, b);
        assert_eq!(a.expose_secret().len(), 43);
    }
}
