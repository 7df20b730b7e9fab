//! Distinguished names as plain data: a sequence of relative distinguished names (RDNs), each one
//! or more (OID, text) attributes, checked against RFC 5280 Appendix A and written as DER by
//! csrgate itself so that a request's RDN structure reaches the certificate unchanged
//! (docs/decisions/0003-name-der.md).

use std::fmt;

use openssl::x509::X509Name;

use crate::PkiError;
use crate::der_writer::{self, push_tlv};

/// How RFC 5280 (Appendix A) wants an attribute's value encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StringKind {
    /// DirectoryString: written as UTF8String (RFC 5280 4.1.2.4, "MUST use ... UTF8String").
    Directory,
    /// PrintableString only (countryName, serialNumber, dnQualifier).
    Printable,
    /// IA5String only (emailAddress, domainComponent).
    Ia5,
}

/// What csrgate knows of one attribute type: its short name, length bounds in characters, the
/// standard the bound comes from, and its string type.
struct AttributeRule {
    label: &'static str,
    oid: &'static str,
    min_chars: usize,
    max_chars: usize,
    source: &'static str,
    kind: StringKind,
}

/// ub-name (RFC 5280 Appendix A): the bound of X520name (surname, givenName, ...).
const UB_NAME: usize = 32768;
/// Bounds that are csrgate's own, where no standard sets one.
const CSRGATE: &str = "csrgate";

const fn rule(
    label: &'static str,
    oid: &'static str,
    (min_chars, max_chars): (usize, usize),
    source: &'static str,
    kind: StringKind,
) -> AttributeRule {
    AttributeRule {
        label,
        oid,
        min_chars,
        max_chars,
        source,
        kind,
    }
}

/// The attribute types csrgate knows, one row each: RFC 5280 Appendix A's `ub-*` bounds, X.520's
/// where 5280 has none. Others are carried by dotted OID as DirectoryStrings of at most
/// [`MAX_ATTRIBUTE_BYTES`] bytes.
#[rustfmt::skip]
const RULES: &[AttributeRule] = &[
    rule("CN", "2.5.4.3", (1, 64), "RFC 5280", StringKind::Directory),
    rule("SN", "2.5.4.4", (1, UB_NAME), "RFC 5280", StringKind::Directory),
    rule("serialNumber", "2.5.4.5", (1, 64), "RFC 5280", StringKind::Printable),
    rule("C", "2.5.4.6", (2, 2), "RFC 5280", StringKind::Printable),
    rule("L", "2.5.4.7", (1, 128), "RFC 5280", StringKind::Directory),
    rule("ST", "2.5.4.8", (1, 128), "RFC 5280", StringKind::Directory),
    rule("street", "2.5.4.9", (1, 128), "X.520", StringKind::Directory),
    rule("O", "2.5.4.10", (1, 64), "RFC 5280", StringKind::Directory),
    rule("OU", "2.5.4.11", (1, 64), "RFC 5280", StringKind::Directory),
    rule("title", "2.5.4.12", (1, 64), "RFC 5280", StringKind::Directory),
    rule("businessCategory", "2.5.4.15", (1, 128), "X.520", StringKind::Directory),
    rule("postalCode", "2.5.4.17", (1, 40), "X.520", StringKind::Directory),
    rule("name", "2.5.4.41", (1, UB_NAME), "RFC 5280", StringKind::Directory),
    rule("GN", "2.5.4.42", (1, UB_NAME), "RFC 5280", StringKind::Directory),
    rule("initials", "2.5.4.43", (1, UB_NAME), "RFC 5280", StringKind::Directory),
    rule("generationQualifier", "2.5.4.44", (1, UB_NAME), "RFC 5280", StringKind::Directory),
    rule("dnQualifier", "2.5.4.46", (1, MAX_ATTRIBUTE_BYTES), CSRGATE, StringKind::Printable),
    rule("pseudonym", "2.5.4.65", (1, 128), "RFC 5280", StringKind::Directory),
    rule("organizationIdentifier", "2.5.4.97", (1, 64), "X.520", StringKind::Directory),
    rule("emailAddress", "1.2.840.113549.1.9.1", (1, 255), "RFC 5280", StringKind::Ia5),
    rule("unstructuredName", "1.2.840.113549.1.9.2", (1, 255), "PKCS#9", StringKind::Directory),
    rule("unstructuredAddress", "1.2.840.113549.1.9.8", (1, 255), "PKCS#9", StringKind::Directory),
    rule("UID", "0.9.2342.19200300.100.1.1", (1, 256), CSRGATE, StringKind::Directory),
    rule("DC", "0.9.2342.19200300.100.1.25", (1, 63), "RFC 1035 (a DNS label)", StringKind::Ia5),
    // EV Guidelines 9.2.4, jurisdiction of incorporation: the country is ISO 3166 alpha-2.
    rule("jurisdictionL", "1.3.6.1.4.1.311.60.2.1.1", (1, 128), "EV Guidelines", StringKind::Directory),
    rule("jurisdictionST", "1.3.6.1.4.1.311.60.2.1.2", (1, 128), "EV Guidelines", StringKind::Directory),
    rule("jurisdictionC", "1.3.6.1.4.1.311.60.2.1.3", (2, 2), "EV Guidelines", StringKind::Printable),
];

/// At most this many bytes per subject attribute of a type csrgate has no bound for.
pub(crate) const MAX_ATTRIBUTE_BYTES: usize = 256;
/// At most this many attributes in a subject: real subjects have a handful, and every one is
/// copied into the certificate and the record.
pub(crate) const MAX_SUBJECT_ATTRIBUTES: usize = 32;

/// The fields `identity create -f KEY VALUE` accepts.
pub(crate) const IDENTITY_FIELDS: &[&str] = &["C", "ST", "L", "O", "OU", "CN", "emailAddress"];

fn rule_for(oid: &str) -> Option<&'static AttributeRule> {
    RULES.iter().find(|r| r.oid == oid)
}

/// One attribute of a distinguished name (RFC 5280 `AttributeTypeAndValue`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAttribute {
    /// The attribute type as a dotted OID, e.g. `2.5.4.3` for commonName.
    pub oid: String,
    /// The value as UTF-8 text, whatever string type the request used.
    pub value: String,
}

impl NameAttribute {
    /// The short name (`CN`, `O`, ...) when csrgate knows one, else the dotted OID.
    pub fn label(&self) -> &str {
        rule_for(&self.oid).map_or(self.oid.as_str(), |r| r.label)
    }

    /// Checks the value against RFC 5280 Appendix A: length in characters, and the character
    /// set of PrintableString and IA5String types. The error names the attribute and the limit.
    fn check(&self) -> Result<(), String> {
        let label = self.label();
        if self.value.is_empty() {
            return Err(format!("subject attribute {label} is empty"));
        }
        if self.value.contains('\0') {
            return Err(format!(
                "subject attribute {label} contains a NUL character"
            ));
        }
        let Some(rule) = rule_for(&self.oid) else {
            if der_writer::oid(&self.oid).is_none() {
                return Err(format!(
                    "subject attribute type {:?} is not an OID",
                    self.oid
                ));
            }
            if self.value.len() > MAX_ATTRIBUTE_BYTES {
                return Err(format!(
                    "subject attribute {label} is {} bytes long; at most {MAX_ATTRIBUTE_BYTES} are accepted",
                    self.value.len()
                ));
            }
            return Ok(());
        };
        let chars = self.value.chars().count();
        if chars > rule.max_chars || chars < rule.min_chars {
            let limit = if rule.min_chars == rule.max_chars {
                format!("exactly {}", rule.max_chars)
            } else {
                format!("at most {}", rule.max_chars)
            };
            return Err(format!(
                "subject attribute {label} is {chars} characters long; {} allows {limit} \
                 (value {:?})",
                rule.source, self.value
            ));
        }
        match rule.kind {
            StringKind::Directory => Ok(()),
            StringKind::Printable => match self.value.chars().find(|&c| !is_printable_char(c)) {
                None => Ok(()),
                Some(c) => Err(format!(
                    "subject attribute {label} must be a PrintableString (letters, digits, space \
                     and '()+,-./:=?); {c:?} is not allowed"
                )),
            },
            StringKind::Ia5 => match self.value.chars().find(|c| !c.is_ascii()) {
                None => Ok(()),
                Some(c) => Err(format!(
                    "subject attribute {label} must be ASCII (IA5String); {c:?} is not"
                )),
            },
        }
    }

    /// `AttributeTypeAndValue ::= SEQUENCE { type OID, value }`, with the string type of
    /// [`StringKind`]. Call [`Self::check`] first.
    fn push_der(&self, out: &mut Vec<u8>) -> Result<(), String> {
        let mut content = der_writer::oid(&self.oid)
            .ok_or_else(|| format!("subject attribute type {:?} is not an OID", self.oid))?;
        let tag = match rule_for(&self.oid).map_or(StringKind::Directory, |r| r.kind) {
            StringKind::Directory => 0x0c,
            StringKind::Printable => 0x13,
            StringKind::Ia5 => 0x16,
        };
        push_tlv(&mut content, tag, self.value.as_bytes());
        push_tlv(out, 0x30, &content);
        Ok(())
    }
}

/// X.680 PrintableString: letters, digits, space and `'()+,-./:=?`.
fn is_printable_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c)
}

/// A distinguished name: its RDNs in the order they appear in the certificate, each with one
/// attribute or, for a multi-valued RDN (`OU=x + CN=y`), several.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DistinguishedName {
    /// Never holds an empty RDN.
    rdns: Vec<Vec<NameAttribute>>,
}

impl DistinguishedName {
    /// Builds a name from `(short name, value)` pairs, e.g. `[("CN", "Example CA")]`, one RDN
    /// each. Only the fields `identity create` documents are accepted, so a typo is an error and
    /// not an odd OID.
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
            let oid = RULES
                .iter()
                .find(|r| r.label == *canonical)
                .map(|r| r.oid.to_owned())
                .ok_or_else(|| PkiError::InvalidParameter(format!("no OID for {canonical}")))?;
            attributes.push(NameAttribute {
                oid,
                value: value.as_ref().to_owned(),
            });
        }
        Ok(Self::from_attributes(attributes))
    }

    /// A name with one attribute per RDN, in the given order: what a subject rewritten by a
    /// plugin (which sees a flat list) becomes.
    pub fn from_attributes(attributes: Vec<NameAttribute>) -> Self {
        DistinguishedName {
            rdns: attributes.into_iter().map(|a| vec![a]).collect(),
        }
    }

    /// A name with the given RDN structure. An empty RDN is an error (RFC 5280 `SET SIZE (1..MAX)`).
    pub fn from_rdns(rdns: Vec<Vec<NameAttribute>>) -> Result<Self, PkiError> {
        if rdns.iter().any(Vec::is_empty) {
            return Err(PkiError::InvalidParameter(
                "a relative distinguished name needs at least one attribute".into(),
            ));
        }
        Ok(DistinguishedName { rdns })
    }

    /// The RDNs, outermost first; each holds at least one attribute.
    pub fn rdns(&self) -> &[Vec<NameAttribute>] {
        &self.rdns
    }

    /// Every attribute, RDN by RDN: the flat list plugins see.
    pub fn attributes(&self) -> impl Iterator<Item = &NameAttribute> {
        self.rdns.iter().flatten()
    }

    /// True when the two names hold the same attributes in the same order, whatever their RDN
    /// structure (a plugin that returns the subject it was given leaves it as requested).
    pub fn same_attributes(&self, other: &DistinguishedName) -> bool {
        self.attributes().eq(other.attributes())
    }

    /// True when the name has no attributes (allowed for leaf certificates that carry SANs).
    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }

    /// The first commonName, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.attributes()
            .find(|a| a.oid == "2.5.4.3")
            .map(|a| a.value.as_str())
    }

    /// [`Self::check`] for callers outside this crate (a subject built from a request body):
    /// `InvalidParameter` naming the first attribute at fault.
    pub fn check_bounds(&self) -> Result<(), PkiError> {
        self.check()
            .map_err(|why| PkiError::InvalidParameter(format!("subject: {why}")))
    }

    /// Checks every attribute against RFC 5280 (see [`NameAttribute`]); the message names the
    /// first attribute at fault.
    pub(crate) fn check(&self) -> Result<(), String> {
        let count = self.attributes().count();
        if count > MAX_SUBJECT_ATTRIBUTES {
            return Err(format!(
                "the subject has {count} attributes; at most {MAX_SUBJECT_ATTRIBUTES} are accepted"
            ));
        }
        self.attributes().try_for_each(NameAttribute::check)
    }

    /// The `Name` DER (RFC 5280 4.1.2.4): a SEQUENCE of RDNs, each a DER `SET OF` (its
    /// attributes sorted by encoding, X.690 11.6). Checks the name first.
    pub(crate) fn to_der(&self) -> Result<Vec<u8>, String> {
        self.check()?;
        let mut rdns = Vec::with_capacity(64 * self.rdns.len());
        for rdn in &self.rdns {
            let mut encoded = Vec::with_capacity(rdn.len());
            for attribute in rdn {
                let mut one = Vec::new();
                attribute.push_der(&mut one)?;
                encoded.push(one);
            }
            encoded.sort_by(|a, b| der_set_order(a, b));
            push_tlv(&mut rdns, 0x31, &encoded.concat());
        }
        Ok(der_writer::sequence(&rdns))
    }

    /// The name as openssl's type, from [`Self::to_der`] (CA creation only).
    pub(crate) fn to_x509_name(&self) -> Result<X509Name, PkiError> {
        let der = self.to_der().map_err(PkiError::InvalidParameter)?;
        Ok(X509Name::from_der(&der)?)
    }

    /// Reads a parsed `Name`, keeping its RDN structure and decoding every DirectoryString
    /// choice (UTF8String, PrintableString, TeletexString as Latin-1, UniversalString,
    /// BMPString) and IA5String to text. Errors name the attribute; limits are not checked here.
    pub(crate) fn from_parsed(name: &x509_parser::x509::X509Name<'_>) -> Result<Self, String> {
        let mut rdns = Vec::new();
        let mut count = 0;
        for rdn in name.iter() {
            let mut attributes = Vec::new();
            for attribute in rdn.iter() {
                count += 1;
                if count > MAX_SUBJECT_ATTRIBUTES {
                    return Err(format!(
                        "the subject has more than {MAX_SUBJECT_ATTRIBUTES} attributes"
                    ));
                }
                let oid = attribute.attr_type().to_id_string();
                let value = attribute.attr_value();
                let universal_primitive = value.header.class()
                    == x509_parser::asn1_rs::Class::Universal
                    && !value.header.is_constructed();
                let text = universal_primitive
                    .then(|| decode_string(value.header.tag().0, value.data))
                    .flatten()
                    .ok_or_else(|| {
                        let label = rule_for(&oid).map_or(oid.as_str(), |r| r.label);
                        format!(
                            "subject attribute {label} is not a text string (use UTF8String or \
                         PrintableString)"
                        )
                    })?;
                attributes.push(NameAttribute { oid, value: text });
            }
            if attributes.is_empty() {
                return Err("the subject has an empty relative distinguished name".into());
            }
            rdns.push(attributes);
        }
        Ok(DistinguishedName { rdns })
    }
}

/// X.690 11.6: a SET OF's encodings in ascending order, the shorter padded with zero octets.
fn der_set_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    fn padded(v: &[u8], len: usize) -> impl Iterator<Item = u8> + '_ {
        v.iter().copied().chain(std::iter::repeat(0)).take(len)
    }
    let len = a.len().max(b.len());
    padded(a, len).cmp(padded(b, len))
}

/// Decodes the content of a string of universal tag `tag` to text, or `None` when the tag is not
/// a string type or the bytes do not decode.
fn decode_string(tag: u32, data: &[u8]) -> Option<String> {
    match tag {
        // UTF8String
        12 => String::from_utf8(data.to_vec()).ok(),
        // NumericString, PrintableString, IA5String, VisibleString: ASCII subsets
        18 | 19 | 22 | 26 => std::str::from_utf8(data)
            .ok()
            .filter(|text| text.is_ascii())
            .map(str::to_owned),
        // TeletexString: in practice Latin-1 (what Go and most CAs read it as)
        20 => Some(data.iter().map(|&b| char::from(b)).collect()),
        // UniversalString: UCS-4 big-endian
        28 => data
            .len()
            .is_multiple_of(4)
            .then(|| {
                data.chunks_exact(4)
                    .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                    .collect()
            })
            .flatten(),
        // BMPString: UTF-16 big-endian
        30 => data
            .len()
            .is_multiple_of(2)
            .then(|| {
                let units: Vec<u16> = data
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16(&units).ok()
            })
            .flatten(),
        _ => None,
    }
}

impl fmt::Display for DistinguishedName {
    /// `CN=app.internal, O=Example`, a multi-valued RDN as `OU=a + CN=b`: for logs and listings,
    /// not for parsing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            for (j, attribute) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_str(" + ")?;
                }
                write!(
                    f,
                    "{}={}",
                    attribute.label(),
                    attribute.value.escape_debug()
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    fn attribute(oid: &str, value: &str) -> NameAttribute {
        NameAttribute {
            oid: oid.into(),
            value: value.into(),
        }
    }

    #[test]
    fn fields_map_to_oids_and_display_short_names() {
        let name = DistinguishedName::from_fields(&[
            ("CN", "Example CA"),
            ("o", "Example"),
            ("emailaddress", "ca@example.org"),
        ])
        .expect("fields");
        assert_eq!(name.rdns()[0][0].oid, "2.5.4.3");
        assert_eq!(name.common_name(), Some("Example CA"));
        assert_eq!(
            name.to_string(),
            "CN=Example CA, O=Example, emailAddress=ca@example.org"
        );
        name.to_x509_name().expect("openssl accepts it");
    }

    /// RFC 5280 Appendix A bounds and string types, one row per kind of attribute.
    #[test]
    fn attributes_are_held_to_rfc_5280() {
        let long = |n: usize| "a".repeat(n);
        // (oid, value, accepted, text the refusal must contain)
        let cases: Vec<(&str, String, bool, &str)> = vec![
            ("2.5.4.3", long(64), true, ""),
            (
                "2.5.4.3",
                long(65),
                false,
                "CN is 65 characters long; RFC 5280 allows at most 64",
            ),
            ("2.5.4.3", "é".repeat(64), true, ""), // characters, not bytes
            ("2.5.4.3", String::new(), false, "CN is empty"),
            ("2.5.4.3", "a\0b".into(), false, "NUL"),
            ("2.5.4.6", "DE".into(), true, ""),
            (
                "2.5.4.6",
                "Unknown".into(),
                false,
                "C is 7 characters long; RFC 5280 allows exactly 2",
            ),
            ("2.5.4.6", "D".into(), false, "exactly 2"),
            ("2.5.4.6", "D_".into(), false, "PrintableString"),
            ("2.5.4.5", "ABC-123".into(), true, ""),
            (
                "2.5.4.5",
                "ABC#123".into(),
                false,
                "serialNumber must be a PrintableString",
            ),
            ("2.5.4.5", long(65), false, "at most 64"),
            ("2.5.4.46", "q".into(), true, ""),
            (
                "2.5.4.46",
                "ü".into(),
                false,
                "dnQualifier must be a PrintableString",
            ),
            ("2.5.4.10", long(64), true, ""),
            ("2.5.4.10", long(65), false, "O is 65"),
            ("2.5.4.11", long(65), false, "OU is 65"),
            ("2.5.4.7", long(128), true, ""),
            ("2.5.4.7", long(129), false, "L is 129"),
            ("2.5.4.8", long(129), false, "ST is 129"),
            ("1.2.840.113549.1.9.1", "a@example.com".into(), true, ""),
            (
                "1.2.840.113549.1.9.1",
                "ü@example.com".into(),
                false,
                "must be ASCII",
            ),
            ("1.2.840.113549.1.9.1", long(256), false, "at most 255"),
            ("0.9.2342.19200300.100.1.25", "example".into(), true, ""),
            ("1.2.840.113549.1.9.8", "10.0.0.1".into(), true, ""),
            ("1.3.6.1.4.1.99999.1", long(256), true, ""),
            ("1.3.6.1.4.1.99999.1", long(257), false, "257 bytes"),
            ("not-an-oid", "x".into(), false, "not an OID"),
        ];
        for (oid, value, accepted, message) in cases {
            let result = attribute(oid, &value).check();
            assert_eq!(result.is_ok(), accepted, "{oid} {value:?}: {result:?}");
            if let Err(error) = result {
                assert!(
                    error.contains(message),
                    "{oid}: {error:?} lacks {message:?}"
                );
            }
        }
    }

    /// Our `Name` DER is what openssl writes for the same attributes, one per RDN, and a
    /// multi-valued RDN keeps its values in one DER SET (sorted), which openssl reads back as
    /// one RDN and re-encodes byte for byte.
    #[test]
    fn names_encode_as_openssl_does() {
        let name = DistinguishedName::from_attributes(vec![
            attribute("2.5.4.6", "DE"),
            attribute("2.5.4.10", "Exämple"),
            attribute("2.5.4.3", "app.example.com"),
            attribute("1.2.840.113549.1.9.1", "a@example.com"),
            attribute("0.9.2342.19200300.100.1.25", "example"),
            attribute("2.5.4.5", "1234"),
        ]);
        let mut builder = openssl::x509::X509NameBuilder::new().expect("builder");
        for a in name.attributes() {
            builder
                .append_entry_by_text(&a.oid, &a.value)
                .expect("openssl entry");
        }
        assert_eq!(
            name.to_der().expect("der"),
            builder.build().to_der().expect("openssl der")
        );

        let multi = DistinguishedName::from_rdns(vec![
            vec![attribute("2.5.4.11", "routers")],
            vec![
                attribute("1.2.840.113549.1.9.8", "10.0.0.1"),
                attribute("1.2.840.113549.1.9.2", "router1.example.com"),
            ],
        ])
        .expect("rdns");
        let der = multi.to_der().expect("der");
        let reread = X509Name::from_der(&der).expect("openssl reads it");
        assert_eq!(reread.to_der().expect("re-encoded"), der);
        let (_, parsed) = x509_parser::x509::X509Name::from_der(&der).expect("parse");
        let back = DistinguishedName::from_parsed(&parsed).expect("decode");
        assert_eq!(back.rdns().len(), 2);
        assert_eq!(back.rdns()[1].len(), 2);
        // The shorter encoding sorts first, which here is also the order given.
        assert!(back.same_attributes(&multi), "{back}");
        assert_eq!(
            back.to_string(),
            "OU=routers, unstructuredAddress=10.0.0.1 + unstructuredName=router1.example.com"
        );
    }

    /// A multi-valued RDN is one DER SET whose values are sorted by encoding (X.690 11.6), in
    /// whatever order they were given. (openssl re-encodes a name it parsed from its cached
    /// bytes, so re-encoding cannot catch a wrong order: this test checks the order itself.)
    #[test]
    fn multi_valued_rdns_are_written_in_der_set_order() {
        let longer = attribute("1.2.840.113549.1.9.2", "router1.example.com");
        let shorter = attribute("1.2.840.113549.1.9.8", "10.0.0.1");
        let encoded = |a: &NameAttribute| {
            let mut out = Vec::new();
            a.push_der(&mut out).expect("der");
            out
        };
        let mut rdn = Vec::new();
        push_tlv(
            &mut rdn,
            0x31,
            &[encoded(&shorter), encoded(&longer)].concat(),
        );
        let want = der_writer::sequence(&rdn);
        for order in [
            vec![longer.clone(), shorter.clone()],
            vec![shorter.clone(), longer.clone()],
        ] {
            let name = DistinguishedName::from_rdns(vec![order]).expect("rdn");
            assert_eq!(name.to_der().expect("der"), want);
        }
        // The shorter encoding is padded with zero octets before comparing.
        use std::cmp::Ordering::*;
        assert_eq!(der_set_order(&[1], &[1, 0]), Equal);
        assert_eq!(der_set_order(&[1], &[1, 1]), Less);
        assert_eq!(der_set_order(&[2], &[1, 0xff]), Greater);
    }

    /// Values that are not universal, primitive strings are not text, whatever their tag number.
    #[test]
    fn only_universal_primitive_strings_are_read() {
        // Name { RDN { (CN, value) } } with the value's identifier octet `tag`.
        let name_with = |tag: u8, content: &[u8]| {
            let mut atv = vec![0x06, 0x03, 0x55, 0x04, 0x03];
            push_tlv(&mut atv, tag, content);
            let mut rdn = Vec::new();
            push_tlv(&mut rdn, 0x30, &atv);
            let mut rdns = Vec::new();
            push_tlv(&mut rdns, 0x31, &rdn);
            der_writer::sequence(&rdns)
        };
        let cases: [(u8, &[u8], bool); 4] = [
            (0x0c, b"ok", true),                      // UTF8String
            (0x4c, b"ok", false),                     // [APPLICATION 12]
            (0x8c, b"ok", false),                     // [12]
            (0x2c, &[0x0c, 0x02, b'o', b'k'], false), // constructed UTF8String
        ];
        for (tag, content, text) in cases {
            let der = name_with(tag, content);
            let (_, parsed) = x509_parser::x509::X509Name::from_der(&der).expect("parse");
            assert_eq!(
                DistinguishedName::from_parsed(&parsed).is_ok(),
                text,
                "tag {tag:#x}"
            );
        }
    }

    /// Every DirectoryString choice decodes to the same text.
    #[test]
    fn directory_string_choices_decode_to_text() {
        let utf16: Vec<u8> = "Zoë".encode_utf16().flat_map(u16::to_be_bytes).collect();
        let ucs4: Vec<u8> = "Zoë"
            .chars()
            .flat_map(|c| (c as u32).to_be_bytes())
            .collect();
        let cases: [(u32, Vec<u8>, Option<&str>); 8] = [
            (12, "Zoë".as_bytes().to_vec(), Some("Zoë")),
            (19, b"Zoe".to_vec(), Some("Zoe")),
            (20, vec![b'Z', b'o', 0xeb], Some("Zoë")),
            (28, ucs4, Some("Zoë")),
            (30, utf16, Some("Zoë")),
            (30, vec![0x00], None),
            (19, vec![0xff], None),
            (4, b"octets".to_vec(), None),
        ];
        for (tag, data, want) in cases {
            assert_eq!(decode_string(tag, &data).as_deref(), want, "tag {tag}");
        }
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(DistinguishedName::from_fields(&[("XX", "y")]).is_err());
        let too_long_country = DistinguishedName::from_fields(&[("C", "USA")]).expect("parsed");
        assert!(too_long_country.to_x509_name().is_err());
        let nul = DistinguishedName::from_fields(&[("CN", "a\0b")]).expect("parsed");
        assert!(nul.to_x509_name().is_err());
        assert!(DistinguishedName::from_rdns(vec![vec![]]).is_err());
    }
}
