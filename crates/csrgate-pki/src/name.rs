//! Distinguished names as plain data: an ordered list of (OID, UTF-8 value) pairs.

use std::fmt;

use openssl::x509::{X509Name, X509NameBuilder};

use crate::PkiError;

/// Attribute short names csrgate knows, with their OIDs. Others are carried by dotted OID.
const KNOWN_ATTRIBUTES: &[(&str, &str)] = &[
    ("CN", "2.5.4.3"),
    ("SN", "2.5.4.4"),
    ("serialNumber", "2.5.4.5"),
    ("C", "2.5.4.6"),
    ("L", "2.5.4.7"),
    ("ST", "2.5.4.8"),
    ("street", "2.5.4.9"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("title", "2.5.4.12"),
    ("GN", "2.5.4.42"),
    ("emailAddress", "1.2.840.113549.1.9.1"),
    ("UID", "0.9.2342.19200300.100.1.1"),
    ("DC", "0.9.2342.19200300.100.1.25"),
];

/// The fields `identity create -f KEY VALUE` accepts.
pub(crate) const IDENTITY_FIELDS: &[&str] = &["C", "ST", "L", "O", "OU", "CN", "emailAddress"];

/// One attribute of a distinguished name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAttribute {
    /// The attribute type as a dotted OID, e.g. `2.5.4.3` for commonName.
    pub oid: String,
    /// The value as UTF-8 text.
    pub value: String,
}

impl NameAttribute {
    /// The short name (`CN`, `O`, ...) when csrgate knows one, else the dotted OID.
    pub fn label(&self) -> &str {
        KNOWN_ATTRIBUTES
            .iter()
            .find(|(_, oid)| *oid == self.oid)
            .map_or(self.oid.as_str(), |(name, _)| name)
    }
}

/// A distinguished name, in the order its attributes appear in the certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DistinguishedName {
    /// The attributes, outermost first.
    pub attributes: Vec<NameAttribute>,
}

impl DistinguishedName {
    /// Builds a name from `(short name, value)` pairs, e.g. `[("CN", "Example CA")]`. Only the
    /// fields `identity create` documents are accepted, so a typo is an error and not an odd OID.
    pub fn from_fields<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> Result<Self, PkiError> {
        let mut attributes = Vec::with_capacity(fields.len());
        for (key, value) in fields {
            let key = key.as_ref();
            let canonical = IDENTITY_FIELDS
                .iter()
                .find(|known| known.eq_ignore_ascii_case(key))
                .ok_or_else(|| {
                    PkiError::InvalidParameter(format!(
                        "unknown subject field {key:?}: use one of {}",
                        IDENTITY_FIELDS.join(", ")
                    ))
                })?;
            let oid = KNOWN_ATTRIBUTES
                .iter()
                .find(|(name, _)| name == canonical)
                .map(|(_, oid)| (*oid).to_owned())
                .ok_or_else(|| PkiError::InvalidParameter(format!("no OID for {canonical}")))?;
            attributes.push(NameAttribute {
                oid,
                value: value.as_ref().to_owned(),
            });
        }
        Ok(DistinguishedName { attributes })
    }

    /// True when the name has no attributes (allowed for leaf certificates that carry SANs).
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// The first commonName, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.oid == "2.5.4.3")
            .map(|a| a.value.as_str())
    }

    pub(crate) fn to_x509_name(&self) -> Result<X509Name, PkiError> {
        let mut builder = X509NameBuilder::new()?;
        for attribute in &self.attributes {
            if attribute.value.is_empty() || attribute.value.contains('\0') {
                return Err(PkiError::InvalidTemplate(format!(
                    "subject attribute {} must be non-empty text without NUL",
                    attribute.label()
                )));
            }
            builder
                .append_entry_by_text(&attribute.oid, &attribute.value)
                .map_err(|_| {
                    PkiError::InvalidTemplate(format!(
                        "subject attribute {} = {:?} is not allowed (unknown type or bad length)",
                        attribute.label(),
                        attribute.value
                    ))
                })?;
        }
        Ok(builder.build())
    }
}

impl fmt::Display for DistinguishedName {
    /// `CN=app.internal, O=Example`: for logs and listings, not for parsing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, attribute) in self.attributes.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(
                f,
                "{}={}",
                attribute.label(),
                attribute.value.escape_debug()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_map_to_oids_and_display_short_names() {
        let name = DistinguishedName::from_fields(&[
            ("CN", "Example CA"),
            ("o", "Example"),
            ("emailaddress", "ca@example.org"),
        ])
        .expect("fields");
        assert_eq!(name.attributes[0].oid, "2.5.4.3");
        assert_eq!(name.common_name(), Some("Example CA"));
        assert_eq!(
            name.to_string(),
            "CN=Example CA, O=Example, emailAddress=ca@example.org"
        );
        name.to_x509_name().expect("openssl accepts it");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(DistinguishedName::from_fields(&[("XX", "y")]).is_err());
        let too_long_country = DistinguishedName::from_fields(&[("C", "USA")]).expect("parsed");
        assert!(too_long_country.to_x509_name().is_err());
        let nul = DistinguishedName::from_fields(&[("CN", "a\0b")]).expect("parsed");
        assert!(nul.to_x509_name().is_err());
    }
}
