//! CSR intake: PEM or DER bytes become a [`ValidatedCsr`] only after the structure parses, the key
//! passes the policy and the self-signature verifies. ssl_api never checked that signature.

use std::fmt;

use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::x509::X509Req;
use sha1::{Digest, Sha1};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::ca_signature::Hash;
use crate::der_writer::{push_tlv, sequence};
use crate::key::classify_public_key;
use crate::{DistinguishedName, NameAttribute, PkiError, PublicKeyInfo, SubjectAltName};

/// One extension the CSR asked for, as raw DER for hooks that want to look at it. Only the SANs
/// are carried into the certificate by default; everything else the CA decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedExtension {
    /// The extension OID, dotted.
    pub oid: String,
    /// The critical flag the CSR set.
    pub critical: bool,
    /// The extension value (the content of the OCTET STRING).
    pub value: Vec<u8>,
}

/// A CSR whose structure, key and self-signature have been checked.
pub struct ValidatedCsr {
    der: Vec<u8>,
    /// The SubjectPublicKeyInfo DER, canonical: copied into the certificate as is.
    spki_der: Vec<u8>,
    /// SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2 method 1).
    key_identifier: [u8; 20],
    public_key_info: PublicKeyInfo,
    public_key_sha1: String,
    subject: DistinguishedName,
    subject_alt_names: Vec<SubjectAltName>,
    requested_extensions: Vec<RequestedExtension>,
}

/// PEM labels that hold a PKCS#10 request (the second is what old Netscape-era tools write).
const CSR_PEM_LABELS: &[&str] = &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];

impl ValidatedCsr {
    /// Parses a CSR in PEM or DER (detected from the bytes, whatever a Content-Type said), checks
    /// the key policy and verifies the self-signature.
    pub fn parse(bytes: &[u8]) -> Result<Self, PkiError> {
        let der = csr_der(bytes)?;
        let (rest, parsed) = X509CertificationRequest::from_der(&der)
            .map_err(|e| PkiError::InvalidCsr(format!("not a PKCS#10 request: {e}")))?;
        if !rest.is_empty() {
            return Err(PkiError::InvalidCsr(format!(
                "{} bytes of trailing data after the request",
                rest.len()
            )));
        }
        let (public_key, spki_der) = match verify_ecdsa_self_signature(&parsed)? {
            Some(verified) => verified,
            None => verify_with_x509_req(&der)?,
        };
        let public_key_info = classify_public_key(&public_key)?;
        let info = &parsed.certification_request_info;
        let public_key_sha1 = hex::encode(Sha1::digest(info.subject_pki.raw));
        let key_identifier = openssl::sha::sha1(&info.subject_pki.subject_public_key.data);
        let subject = subject_of(&parsed)?;
        let mut subject_alt_names = Vec::new();
        let mut requested_extensions = Vec::new();
        for attribute in info.iter_attributes() {
            let ParsedCriAttribute::ExtensionRequest(request) = attribute.parsed_attribute() else {
                continue;
            };
            for extension in &request.extensions {
                let oid = extension.oid.to_id_string();
                if requested_extensions
                    .iter()
                    .any(|seen: &RequestedExtension| seen.oid == oid)
                {
                    // RFC 5280 4.2: an extension appears at most once.
                    return Err(PkiError::InvalidCsr(format!(
                        "the request asks for extension {oid} twice"
                    )));
                }
                if let ParsedExtension::SubjectAlternativeName(san) = extension.parsed_extension() {
                    for name in &san.general_names {
                        subject_alt_names.push(san_of(name)?);
                    }
                } else if let ParsedExtension::UnsupportedExtension { .. }
                | ParsedExtension::ParseError { .. } = extension.parsed_extension()
                    && extension.oid.to_id_string() == "2.5.29.17"
                {
                    return Err(PkiError::InvalidCsr(
                        "the subjectAltName extension is malformed".into(),
                    ));
                }
                requested_extensions.push(RequestedExtension {
                    oid,
                    critical: extension.critical,
                    value: extension.value.to_vec(),
                });
            }
        }
        let mut seen = std::collections::HashSet::new();
        subject_alt_names.retain(|san| seen.insert(san.clone()));
        if subject_alt_names.len() > MAX_SUBJECT_ALT_NAMES {
            return Err(PkiError::InvalidCsr(format!(
                "the request names {} subject alternative names; at most {MAX_SUBJECT_ALT_NAMES} are accepted",
                subject_alt_names.len()
            )));
        }
        if subject.is_empty() && subject_alt_names.is_empty() {
            return Err(PkiError::InvalidCsr(
                "the request has neither a subject nor subject alternative names".into(),
            ));
        }

        Ok(ValidatedCsr {
            der,
            spki_der,
            key_identifier,
            public_key_info,
            public_key_sha1,
            subject,
            subject_alt_names,
            requested_extensions,
        })
    }

    /// The request that renewing an issued certificate amounts to: its public key, subject and
    /// SANs, read from the certificate. `der()` then returns the certificate's DER (there is no
    /// CSR); hooks see it as `csr-der`.
    pub fn from_certificate(der: &[u8]) -> Result<Self, PkiError> {
        let certificate = openssl::x509::X509::from_der(der)
            .map_err(|_| PkiError::InvalidParameter("stored certificate does not parse".into()))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(der)
            .map_err(|_| PkiError::InvalidParameter("stored certificate does not parse".into()))?;
        let public_key = certificate.public_key()?;
        let public_key_info = classify_public_key(&public_key)?;
        let mut attributes = Vec::new();
        for attribute in parsed.subject().iter_attributes() {
            attributes.push(NameAttribute {
                oid: attribute.attr_type().to_id_string(),
                value: attribute
                    .as_str()
                    .map_err(|_| PkiError::InvalidParameter("subject is not text".into()))?
                    .to_owned(),
            });
        }
        let mut subject_alt_names = Vec::new();
        if let Ok(Some(san)) = parsed.subject_alternative_name() {
            for name in &san.value.general_names {
                subject_alt_names.push(san_of(name)?);
            }
        }
        Ok(ValidatedCsr {
            der: der.to_vec(),
            spki_der: parsed.public_key().raw.to_vec(),
            key_identifier: openssl::sha::sha1(&parsed.public_key().subject_public_key.data),
            public_key_info,
            public_key_sha1: hex::encode(Sha1::digest(parsed.public_key().raw)),
            subject: DistinguishedName { attributes },
            subject_alt_names,
            requested_extensions: Vec::new(),
        })
    }

    /// The request as DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Algorithm and size of the requested public key.
    pub fn public_key_info(&self) -> PublicKeyInfo {
        self.public_key_info
    }

    /// ssl_api's `public_key_hash`: lower-case hex SHA-1 of the SubjectPublicKeyInfo DER.
    pub fn public_key_sha1(&self) -> &str {
        &self.public_key_sha1
    }

    /// The requested subject.
    pub fn subject(&self) -> &DistinguishedName {
        &self.subject
    }

    /// The requested subject alternative names, duplicates removed, in request order.
    pub fn subject_alt_names(&self) -> &[SubjectAltName] {
        &self.subject_alt_names
    }

    /// Every extension in the request's extensionRequest attribute.
    pub fn requested_extensions(&self) -> &[RequestedExtension] {
        &self.requested_extensions
    }

    /// True when the request asked for BasicConstraints CA:TRUE (it never gets it).
    pub fn requests_ca(&self) -> bool {
        self.requested_extensions.iter().any(|e| {
            e.oid == "2.5.29.19"
                && x509_parser::extensions::BasicConstraints::from_der(&e.value)
                    .map(|(_, bc)| bc.ca)
                    .unwrap_or(false)
        })
    }

    /// The SubjectPublicKeyInfo DER that goes into the certificate.
    pub(crate) fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The subject key identifier the certificate gets.
    pub(crate) fn key_identifier(&self) -> &[u8] {
        &self.key_identifier
    }
}

impl fmt::Debug for ValidatedCsr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatedCsr")
            .field("subject", &self.subject.to_string())
            .field("key", &self.public_key_info)
            .field("public_key_sha1", &self.public_key_sha1)
            .field("subject_alt_names", &self.subject_alt_names)
            .finish_non_exhaustive()
    }
}

/// The request's public key, once its self-signature verified, and its canonical SPKI DER.
type VerifiedKey = (PKey<Public>, Vec<u8>);

const BAD_SIGNATURE: &str = "the request's signature does not verify with its own public key";

/// The common case, without OpenSSL 3's provider decoders (the largest cost of a request before
/// this path existed): an EC key on P-256, P-384 or P-521 in canonical uncompressed form, and an
/// ECDSA signature with SHA-2 in canonical DER, verified with `ECDSA_do_verify`. `None` hands
/// anything else, including every malformed variant, to [`verify_with_x509_req`], so errors
/// stay those of the general path.
fn verify_ecdsa_self_signature(
    parsed: &X509CertificationRequest<'_>,
) -> Result<Option<VerifiedKey>, PkiError> {
    let spki = &parsed.certification_request_info.subject_pki;
    if spki.algorithm.algorithm.to_id_string() != "1.2.840.10045.2.1" {
        return Ok(None);
    }
    let Some(curve) = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
    else {
        return Ok(None);
    };
    let (nid, curve_oid, coordinate_len) = match curve.to_id_string().as_str() {
        "1.2.840.10045.3.1.7" => (Nid::X9_62_PRIME256V1, OID_P256, 32),
        "1.3.132.0.34" => (Nid::SECP384R1, OID_P384, 48),
        "1.3.132.0.35" => (Nid::SECP521R1, OID_P521, 66),
        _ => return Ok(None),
    };
    let hash = match parsed.signature_algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.10045.4.3.2" => Hash::Sha256,
        "1.2.840.10045.4.3.3" => Hash::Sha384,
        "1.2.840.10045.4.3.4" => Hash::Sha512,
        _ => return Ok(None),
    };
    if parsed.signature_algorithm.parameters.is_some() {
        return Ok(None);
    }
    let point_bytes: &[u8] = &spki.subject_public_key.data;
    if point_bytes.len() != 1 + 2 * coordinate_len || point_bytes[0] != 0x04 {
        return Ok(None); // compressed or hybrid: openssl re-encodes it on the general path
    }
    let canonical = canonical_ec_spki(curve_oid, point_bytes);
    if canonical != spki.raw {
        return Ok(None);
    }
    let group = named_group(nid)?;
    let mut context = BigNumContext::new()?;
    // EC_POINT_oct2point refuses points that are not on the curve, and coordinates >= p.
    let Ok(point) = EcPoint::from_bytes(group, point_bytes, &mut context) else {
        return Ok(None);
    };
    let key = EcKey::from_public_key(group, &point)?;
    let Ok(signature) = EcdsaSig::from_der(&parsed.signature_value.data) else {
        return Ok(None);
    };
    if signature.to_der()? != parsed.signature_value.data.as_ref() {
        return Ok(None);
    }
    let digest = hash.digest(parsed.certification_request_info.raw);
    if !signature.verify(&digest, &key).unwrap_or(false) {
        return Err(PkiError::InvalidCsr(BAD_SIGNATURE.into()));
    }
    Ok(Some((PKey::from_ec_key(key)?, canonical)))
}

/// `id-ecPublicKey` and the named curves of the fast path, as OBJECT IDENTIFIER TLVs.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];

/// The SubjectPublicKeyInfo DER that openssl writes for an EC key on a named curve with an
/// uncompressed point: a request carrying exactly these bytes is canonical. Written here rather
/// than by `EcKey::public_key_to_der`, whose provider encoder converted the point to affine
/// coordinates three times (~110,000 instructions, 6 % of a request; callgrind).
fn canonical_ec_spki(curve_oid: &[u8], uncompressed_point: &[u8]) -> Vec<u8> {
    let mut algorithm = Vec::with_capacity(OID_EC_PUBLIC_KEY.len() + curve_oid.len());
    algorithm.extend_from_slice(OID_EC_PUBLIC_KEY);
    algorithm.extend_from_slice(curve_oid);
    let mut bits = Vec::with_capacity(uncompressed_point.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(uncompressed_point);
    let mut content = Vec::with_capacity(algorithm.len() + bits.len() + 8);
    push_tlv(&mut content, 0x30, &algorithm);
    push_tlv(&mut content, 0x03, &bits);
    sequence(&content)
}

/// The curve's group, built once per process (building one costs more than a hash of the CSR).
fn named_group(nid: Nid) -> Result<&'static EcGroup, PkiError> {
    static GROUPS: [std::sync::OnceLock<EcGroup>; 3] = [const { std::sync::OnceLock::new() }; 3];
    let slot = match nid {
        Nid::X9_62_PRIME256V1 => &GROUPS[0],
        Nid::SECP384R1 => &GROUPS[1],
        _ => &GROUPS[2],
    };
    if let Some(group) = slot.get() {
        return Ok(group);
    }
    let group = EcGroup::from_curve_name(nid)?;
    Ok(slot.get_or_init(|| group))
}

/// Every other key type (RSA, Ed25519, unusual encodings): openssl parses and verifies the
/// request as a whole, and the key is re-encoded canonically for the certificate.
fn verify_with_x509_req(der: &[u8]) -> Result<VerifiedKey, PkiError> {
    let request =
        X509Req::from_der(der).map_err(|_| PkiError::InvalidCsr("not a PKCS#10 request".into()))?;
    let public_key = request.public_key().map_err(|_| {
        PkiError::WeakKey("the public key's algorithm or parameters are not supported".into())
    })?;
    classify_public_key(&public_key)?;
    if !request.verify(&public_key).unwrap_or(false) {
        return Err(PkiError::InvalidCsr(BAD_SIGNATURE.into()));
    }
    let spki_der = public_key.public_key_to_der()?;
    Ok((public_key, spki_der))
}

/// Finds the DER of the request: PEM is recognised by its armour, anything else must be DER.
/// The PEM body is decoded leniently about whitespace because `curl -d @req.csr` strips newlines.
fn csr_der(bytes: &[u8]) -> Result<Vec<u8>, PkiError> {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.is_empty() {
        return Err(PkiError::InvalidCsr("the body is empty".into()));
    }
    if !trimmed.starts_with(b"-----BEGIN ") {
        if trimmed[0] != 0x30 {
            return Err(PkiError::InvalidCsr(
                "the body is neither a PEM CERTIFICATE REQUEST nor DER".into(),
            ));
        }
        return Ok(trimmed.to_vec());
    }
    let text = std::str::from_utf8(trimmed)
        .map_err(|_| PkiError::InvalidCsr("PEM text is not ASCII".into()))?;
    let after_begin = &text["-----BEGIN ".len()..];
    let (label, rest) = after_begin
        .split_once("-----")
        .ok_or_else(|| PkiError::InvalidCsr("unterminated PEM BEGIN line".into()))?;
    if !CSR_PEM_LABELS.contains(&label) {
        return Err(PkiError::InvalidCsr(format!(
            "PEM block is {label:?}, expected \"CERTIFICATE REQUEST\""
        )));
    }
    let end_marker = format!("-----END {label}-----");
    let (body, after_end) = rest
        .split_once(&end_marker)
        .ok_or_else(|| PkiError::InvalidCsr(format!("missing {end_marker}")))?;
    if !after_end.trim().is_empty() {
        return Err(PkiError::InvalidCsr(
            "unexpected data after the PEM block (send one request per PUT)".into(),
        ));
    }
    let base64_text: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(base64_text)
        .map_err(|_| PkiError::InvalidCsr("PEM body is not valid base64".into()))
}

/// At most this many subject attributes: real subjects have a handful, and every one is copied
/// into the certificate and the record.
pub(crate) const MAX_SUBJECT_ATTRIBUTES: usize = 32;
/// At most this many bytes per subject attribute (RFC 5280's upper bounds are 64 to 128).
pub(crate) const MAX_ATTRIBUTE_BYTES: usize = 256;
/// At most this many subject alternative names.
pub(crate) const MAX_SUBJECT_ALT_NAMES: usize = 100;

fn subject_of(parsed: &X509CertificationRequest<'_>) -> Result<DistinguishedName, PkiError> {
    let mut attributes = Vec::new();
    for attribute in parsed.certification_request_info.subject.iter_attributes() {
        if attributes.len() == MAX_SUBJECT_ATTRIBUTES {
            return Err(PkiError::InvalidCsr(format!(
                "the subject has more than {MAX_SUBJECT_ATTRIBUTES} attributes"
            )));
        }
        let oid = attribute.attr_type().to_id_string();
        let value = attribute.as_str().map_err(|_| {
            PkiError::InvalidCsr(format!("subject attribute {oid} is not a text string"))
        })?;
        if value.contains('\0') {
            return Err(PkiError::InvalidCsr(format!(
                "subject attribute {oid} contains a NUL character"
            )));
        }
        if value.len() > MAX_ATTRIBUTE_BYTES {
            return Err(PkiError::InvalidCsr(format!(
                "subject attribute {oid} is {} bytes long; at most {MAX_ATTRIBUTE_BYTES} are accepted",
                value.len()
            )));
        }
        attributes.push(NameAttribute {
            oid,
            value: value.to_owned(),
        });
    }
    Ok(DistinguishedName { attributes })
}

fn san_of(name: &GeneralName<'_>) -> Result<SubjectAltName, PkiError> {
    match name {
        GeneralName::DNSName(v) => SubjectAltName::dns(v),
        GeneralName::IPAddress(v) => SubjectAltName::ip_from_octets(v),
        GeneralName::RFC822Name(v) => SubjectAltName::email(v),
        GeneralName::URI(v) => SubjectAltName::uri(v),
        other => Err(PkiError::InvalidCsr(format!(
            "SAN type {} is not supported: use DNS, IP, email or URI",
            general_name_kind(other)
        ))),
    }
}

fn general_name_kind(name: &GeneralName<'_>) -> &'static str {
    match name {
        GeneralName::OtherName(..) => "otherName",
        GeneralName::X400Address(_) => "x400Address",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EDIPartyName(_) => "ediPartyName",
        GeneralName::RegisteredID(_) => "registeredID",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeySpec;
    use crate::san::general_names_der;
    use openssl::asn1::{Asn1Object, Asn1OctetString};
    use openssl::ec::PointConversionForm;
    use openssl::hash::MessageDigest;
    use openssl::pkey::Private;
    use openssl::stack::Stack;
    use openssl::x509::{X509Extension, X509ReqBuilder};

    fn request(spec: KeySpec, cn: &str, sans: &[SubjectAltName]) -> X509Req {
        let key = spec.generate().expect("keygen");
        let mut builder = X509ReqBuilder::new().expect("builder");
        builder.set_pubkey(&key).expect("pubkey");
        let name = DistinguishedName::from_fields(&[("CN", cn)]).expect("name");
        builder
            .set_subject_name(&name.to_x509_name().expect("x509 name"))
            .expect("subject");
        if !sans.is_empty() {
            let mut extensions = Stack::new().expect("stack");
            let oid = Asn1Object::from_str("2.5.29.17").expect("oid");
            let value = Asn1OctetString::new_from_bytes(&general_names_der(sans)).expect("octets");
            extensions
                .push(X509Extension::new_from_der(&oid, false, &value).expect("ext"))
                .expect("push");
            builder.add_extensions(&extensions).expect("extensions");
        }
        let digest = if spec == KeySpec::Ed25519 {
            MessageDigest::null()
        } else {
            MessageDigest::sha256()
        };
        builder.sign(&key, digest).expect("sign");
        builder.build()
    }

    #[test]
    fn pem_and_der_give_the_same_request() {
        let sans = [
            SubjectAltName::dns("app.internal").expect("dns"),
            SubjectAltName::ip_from_octets(&[10, 0, 0, 7]).expect("ip"),
        ];
        let req = request(KeySpec::EcP256, "app.internal", &sans);
        let from_pem = ValidatedCsr::parse(&req.to_pem().expect("pem")).expect("pem parses");
        let from_der = ValidatedCsr::parse(&req.to_der().expect("der")).expect("der parses");
        assert_eq!(from_pem.der(), from_der.der());
        assert_eq!(from_pem.subject_alt_names(), &sans);
        assert_eq!(from_pem.subject().common_name(), Some("app.internal"));
        assert_eq!(from_pem.public_key_sha1().len(), 40);
        assert!(!from_pem.requests_ca());
    }

    #[test]
    fn pem_with_newlines_stripped_still_parses() {
        let req = request(KeySpec::Ed25519, "flat", &[]);
        let pem = String::from_utf8(req.to_pem().expect("pem")).expect("ascii");
        let flat = pem.replace('\n', "");
        ValidatedCsr::parse(flat.as_bytes()).expect("flattened PEM parses");
    }

    #[test]
    fn rejects_garbage_wrong_labels_and_trailing_data() {
        let req = request(KeySpec::EcP256, "x", &[]);
        let pem = String::from_utf8(req.to_pem().expect("pem")).expect("ascii");
        let mut der = req.to_der().expect("der");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "empty"),
            (b"   \n".to_vec(), "blank"),
            (b"hello".to_vec(), "text"),
            (
                pem.replace("CERTIFICATE REQUEST", "CERTIFICATE")
                    .into_bytes(),
                "label",
            ),
            (format!("{pem}{pem}").into_bytes(), "two blocks"),
            (pem.as_bytes()[..pem.len() / 2].to_vec(), "truncated pem"),
            (der[..der.len() - 3].to_vec(), "truncated der"),
            (
                {
                    der.push(0);
                    der.clone()
                },
                "trailing",
            ),
        ];
        for (bytes, what) in cases {
            assert!(
                matches!(ValidatedCsr::parse(&bytes), Err(PkiError::InvalidCsr(_))),
                "{what} was not refused as invalid"
            );
        }
    }

    #[test]
    fn rejects_a_tampered_signature() {
        let req = request(KeySpec::EcP256, "tamper-me", &[]);
        let mut der = req.to_der().expect("der");
        let at = der
            .windows(9)
            .position(|w| w == b"tamper-me")
            .expect("CN bytes");
        der[at] = b'T';
        let error = ValidatedCsr::parse(&der).expect_err("tampered");
        assert!(
            matches!(error, PkiError::InvalidCsr(ref m) if m.contains("signature")),
            "{error}"
        );
    }

    /// A fresh key on `nid` and its public point encoded in `form`.
    fn key_and_point(nid: Nid, form: PointConversionForm) -> (EcKey<Private>, Vec<u8>) {
        let group = EcGroup::from_curve_name(nid).expect("group");
        let key = EcKey::generate(&group).expect("key");
        let mut context = BigNumContext::new().expect("ctx");
        let point = key
            .public_key()
            .to_bytes(&group, form, &mut context)
            .expect("point");
        (key, point)
    }

    /// The fast path's own SPKI encoding is openssl's, byte for byte, on every curve it takes.
    #[test]
    fn the_canonical_ec_spki_is_what_openssl_writes() {
        for (nid, oid) in [
            (Nid::X9_62_PRIME256V1, OID_P256),
            (Nid::SECP384R1, OID_P384),
            (Nid::SECP521R1, OID_P521),
        ] {
            let (key, point) = key_and_point(nid, PointConversionForm::UNCOMPRESSED);
            assert_eq!(
                canonical_ec_spki(oid, &point),
                key.public_key_to_der().expect("der"),
                "{nid:?}"
            );
        }
    }

    /// A request whose key is a compressed point is valid, and off the fast path: the
    /// certificate gets the key as openssl's own decoder and encoder give it (OpenSSL 3 keeps
    /// the compressed form).
    #[test]
    fn a_compressed_key_is_accepted_and_re_encoded() {
        let (key, compressed) =
            key_and_point(Nid::X9_62_PRIME256V1, PointConversionForm::COMPRESSED);
        let mut bits = vec![0];
        bits.extend_from_slice(&compressed);
        let mut algorithm = OID_EC_PUBLIC_KEY.to_vec();
        algorithm.extend_from_slice(OID_P256);
        let mut spki = Vec::new();
        push_tlv(&mut spki, 0x30, &algorithm);
        push_tlv(&mut spki, 0x03, &bits);
        let name = DistinguishedName::from_fields(&[("CN", "compressed")])
            .expect("name")
            .to_x509_name()
            .expect("x509 name")
            .to_der()
            .expect("name der");
        let mut info = vec![0x02, 0x01, 0x00]; // version 1
        info.extend_from_slice(&name);
        info.extend_from_slice(&sequence(&spki));
        info.extend_from_slice(&[0xa0, 0x00]); // no attributes
        let info = sequence(&info);
        let signature = EcdsaSig::sign(&Hash::Sha256.digest(&info), &key)
            .expect("sign")
            .to_der()
            .expect("sig der");
        let ecdsa_with_sha256 = [
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
        ];
        let mut signature_bits = vec![0];
        signature_bits.extend_from_slice(&signature);
        let mut request = info.clone();
        request.extend_from_slice(&ecdsa_with_sha256);
        push_tlv(&mut request, 0x03, &signature_bits);
        let der = sequence(&request);
        let csr = ValidatedCsr::parse(&der).expect("a compressed key is valid");
        let by_openssl = X509Req::from_der(&der)
            .expect("openssl parses it")
            .public_key()
            .expect("key")
            .public_key_to_der()
            .expect("der");
        assert_eq!(csr.spki_der(), by_openssl);
    }

    #[test]
    fn rejects_a_small_rsa_key() {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).expect("rsa")).expect("pkey");
        let mut builder = X509ReqBuilder::new().expect("builder");
        builder.set_pubkey(&key).expect("pubkey");
        builder.sign(&key, MessageDigest::sha256()).expect("sign");
        let der = builder.build().to_der().expect("der");
        assert!(matches!(
            ValidatedCsr::parse(&der),
            Err(PkiError::WeakKey(_))
        ));
    }
}
