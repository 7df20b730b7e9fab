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
use x509_parser::asn1_rs::{Any, Oid};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::{ExtensionRequest, ParsedCriAttribute};
use x509_parser::extensions::{GeneralName, SubjectAlternativeName};
use x509_parser::prelude::FromDer;
use x509_parser::signature_algorithm::RsaSsaPssParams;

use crate::ca_signature::Hash;
use crate::der_writer::{push_tlv, sequence};
use crate::key::classify_public_key;
use crate::oid;
use crate::san::check_wildcards;
use crate::{DistinguishedName, PkiError, PublicKeyInfo, SigningPolicy, SubjectAltName};

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
    /// Parses a CSR in PEM or DER (detected from the bytes, whatever a Content-Type said) under
    /// the default [`SigningPolicy`]: SHA-1 signatures and one-label wildcards refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, PkiError> {
        Self::parse_under(bytes, &SigningPolicy::default())
    }

    /// Parses a CSR in PEM (RFC 7468: text before the block, a byte-order mark, CRLF) or DER,
    /// detected from the bytes; checks its version (0, RFC 2986 4.1), its signature algorithm
    /// against the allow-list, the key policy, the subject (RFC 5280 Appendix A), the SANs, and
    /// verifies the self-signature. Requested extensions are read from PKCS#9 extensionRequest
    /// and from Microsoft's 1.3.6.1.4.1.311.2.1.14. A request without SANs whose CN is a DNS
    /// name or an IP address gets it as its SAN. Every refusal is
    /// [`PkiError::InvalidCsr`] or [`PkiError::WeakKey`] with a message naming what to change.
    pub fn parse_under(bytes: &[u8], policy: &SigningPolicy) -> Result<Self, PkiError> {
        let der = csr_der(bytes)?;
        let (rest, parsed) = X509CertificationRequest::from_der(&der)
            .map_err(|e| PkiError::InvalidCsr(format!("not a PKCS#10 request: {e}")))?;
        if !rest.is_empty() {
            return Err(PkiError::InvalidCsr(format!(
                "{} bytes of trailing data after the request",
                rest.len()
            )));
        }
        let info = &parsed.certification_request_info;
        if info.version.0 != 0 {
            return Err(PkiError::InvalidCsr(format!(
                "the request's version field is {}; PKCS#10 (RFC 2986 4.1) requires 0 (v1)",
                info.version.0
            )));
        }
        check_signature_algorithm(&parsed, policy)?;
        let (public_key, spki_der) = match verify_ecdsa_self_signature(&parsed)? {
            Some(verified) => verified,
            None => verify_with_x509_req(&der)?,
        };
        let public_key_info = classify_public_key(&public_key)?;
        let public_key_sha1 = hex::encode(Sha1::digest(info.subject_pki.raw));
        let key_identifier = openssl::sha::sha1(&info.subject_pki.subject_public_key.data);
        let subject =
            DistinguishedName::from_parsed(&info.subject).map_err(PkiError::InvalidCsr)?;
        subject.check().map_err(PkiError::InvalidCsr)?;
        let requested_extensions = requested_extensions(&parsed)?;
        let mut subject_alt_names = Vec::new();
        for extension in &requested_extensions {
            if extension.oid != oid::SUBJECT_ALT_NAME_DOTTED {
                continue;
            }
            let malformed =
                || PkiError::InvalidCsr("the subjectAltName extension is malformed".into());
            let (rest, san) =
                SubjectAlternativeName::from_der(&extension.value).map_err(|_| malformed())?;
            if !rest.is_empty() {
                return Err(malformed());
            }
            for name in &san.general_names {
                subject_alt_names.push(san_of(name)?);
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
        check_wildcards(&subject_alt_names, policy).map_err(PkiError::InvalidCsr)?;
        if subject_alt_names.is_empty()
            && let Some(common_name) = subject.common_name()
            && let Some(san) = SubjectAltName::from_common_name(common_name)?
        {
            // Names live in the SAN (RFC 6125, 2818): Go and Python refuse a CN-only certificate.
            // The CN gets the SAN's rules, so a client that still reads the CN matches nothing
            // a SAN could not name.
            check_wildcards(std::slice::from_ref(&san), policy).map_err(|e| {
                PkiError::InvalidCsr(format!("the CN becomes the SAN of this request: {e}"))
            })?;
            subject_alt_names.push(san);
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
    /// SANs, read from the certificate and held to today's `policy` as a request would be (a
    /// certificate issued under older rules is refused with [`PkiError::InvalidCsr`] saying
    /// what no longer passes). `der()` then returns the certificate's DER (there is no CSR);
    /// hooks see it as `csr-der`, and [`Self::requested_extensions`] is empty.
    ///
    /// Errors: `InvalidCsr` (today's rules refuse a name), `WeakKey` (today's key policy
    /// refuses the key), `InvalidParameter` (the stored DER does not parse).
    pub fn from_certificate(der: &[u8], policy: &SigningPolicy) -> Result<Self, PkiError> {
        let certificate = openssl::x509::X509::from_der(der)
            .map_err(|_| PkiError::InvalidParameter("stored certificate does not parse".into()))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(der)
            .map_err(|_| PkiError::InvalidParameter("stored certificate does not parse".into()))?;
        let public_key = certificate.public_key()?;
        let public_key_info = classify_public_key(&public_key)?;
        let subject = DistinguishedName::from_parsed(parsed.subject())
            .map_err(|e| PkiError::InvalidParameter(format!("stored certificate: {e}")))?;
        subject.check().map_err(PkiError::InvalidCsr)?;
        let mut subject_alt_names = Vec::new();
        if let Ok(Some(san)) = parsed.subject_alternative_name() {
            for name in &san.value.general_names {
                subject_alt_names.push(san_of(name)?);
            }
        }
        check_wildcards(&subject_alt_names, policy).map_err(PkiError::InvalidCsr)?;
        Ok(ValidatedCsr {
            der: der.to_vec(),
            spki_der: parsed.public_key().raw.to_vec(),
            key_identifier: openssl::sha::sha1(&parsed.public_key().subject_public_key.data),
            public_key_info,
            public_key_sha1: hex::encode(Sha1::digest(parsed.public_key().raw)),
            subject,
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

    /// Every extension the request asks for, from PKCS#9 extensionRequest or Microsoft's
    /// 1.3.6.1.4.1.311.2.1.14 (which must agree), each once; empty for a renewal.
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
        "1.2.840.10045.3.1.7" => (Nid::X9_62_PRIME256V1, oid::P256, 32),
        "1.3.132.0.34" => (Nid::SECP384R1, oid::P384, 48),
        "1.3.132.0.35" => (Nid::SECP521R1, oid::P521, 66),
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

/// The SubjectPublicKeyInfo DER that openssl writes for an EC key on a named curve with an
/// uncompressed point: a request carrying exactly these bytes is canonical. Written here rather
/// than by `EcKey::public_key_to_der`, whose provider encoder converted the point to affine
/// coordinates three times (docs/decisions/0005-canonical-key-check.md).
fn canonical_ec_spki(curve_oid: &[u8], uncompressed_point: &[u8]) -> Vec<u8> {
    let mut algorithm = Vec::with_capacity(oid::EC_PUBLIC_KEY.len() + curve_oid.len());
    algorithm.extend_from_slice(oid::EC_PUBLIC_KEY);
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

/// Finds the DER of the request. A body that starts with a SEQUENCE tag is DER; otherwise the
/// first `-----BEGIN ` starts a PEM block (RFC 7468 section 2: explanatory text may precede it, as
/// `openssl req -text` writes; a UTF-8 byte-order mark is skipped). The base64 body is decoded
/// leniently about whitespace (CRLF, and none at all: `curl -d @req.csr` strips newlines). After
/// the END line only whitespace may follow: one request per body.
///
/// Written here rather than with a PEM crate: the crates in the tree read PEM line by line and
/// refuse the newline-stripped form curl sends (docs/decisions/0001-pem-framing.md).
fn csr_der(bytes: &[u8]) -> Result<Vec<u8>, PkiError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let trimmed = bytes.trim_ascii_start();
    if trimmed.is_empty() {
        return Err(PkiError::InvalidCsr("the body is empty".into()));
    }
    // DER starts with a SEQUENCE tag, which is also the character '0': text that starts with it
    // and holds a PEM block is PEM unless the bytes are one whole DER SEQUENCE. The whole-DER
    // test (a header read) comes first, so a DER body is never scanned for a PEM line.
    let whole_der = || Any::from_der(trimmed).is_ok_and(|(rest, _)| rest.is_empty());
    if trimmed[0] == 0x30 && whole_der() {
        return Ok(trimmed.to_vec());
    }
    let begin = find(trimmed, PEM_BEGIN);
    if trimmed[0] == 0x30 && begin.is_none() {
        // Not one whole SEQUENCE either: the parser says what is wrong with it.
        return Ok(trimmed.to_vec());
    }
    let Some(begin) = begin else {
        return Err(PkiError::InvalidCsr(
            "the body is neither a PEM CERTIFICATE REQUEST nor DER".into(),
        ));
    };
    let text = std::str::from_utf8(&trimmed[begin..])
        .map_err(|_| PkiError::InvalidCsr("the PEM block is not ASCII text".into()))?;
    let after_begin = &text[PEM_BEGIN.len()..];
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
    if after_end.contains("-----BEGIN ") {
        return Err(PkiError::InvalidCsr(
            "the body holds a second PEM block: send one request per PUT".into(),
        ));
    }
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

const PEM_BEGIN: &[u8] = b"-----BEGIN ";

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The extensions a request asks for, from PKCS#9 extensionRequest and Microsoft's legacy
/// attribute. Each extension at most once (RFC 5280 4.2); when several attributes carry
/// extensions they must agree, since a CA that read only one of them would drop the others.
fn requested_extensions(
    parsed: &X509CertificationRequest<'_>,
) -> Result<Vec<RequestedExtension>, PkiError> {
    let mut lists: Vec<(String, Vec<RequestedExtension>)> = Vec::new();
    for attribute in parsed.certification_request_info.iter_attributes() {
        let oid = attribute.oid.to_id_string();
        let legacy;
        let request = match attribute.parsed_attribute() {
            ParsedCriAttribute::ExtensionRequest(request) => request,
            _ if oid == oid::MS_EXTENSION_REQUEST_DOTTED => {
                // x509-parser keeps no bytes of an attribute it does not know: read ours again.
                legacy = ms_extension_request(parsed.certification_request_info.raw)?;
                &legacy
            }
            _ => continue,
        };
        if lists.iter().any(|(seen, _)| *seen == oid) {
            // Two of one kind: a CA that read one of them would drop the other's extensions.
            return Err(PkiError::InvalidCsr(format!(
                "the request carries attribute {oid} twice; send its extensions in one"
            )));
        }
        let mut extensions: Vec<RequestedExtension> = Vec::new();
        for extension in &request.extensions {
            let oid = extension.oid.to_id_string();
            if extensions.iter().any(|seen| seen.oid == oid) {
                return Err(PkiError::InvalidCsr(format!(
                    "the request asks for extension {oid} twice"
                )));
            }
            extensions.push(RequestedExtension {
                oid,
                critical: extension.critical,
                value: extension.value.to_vec(),
            });
        }
        lists.push((oid, extensions));
    }
    let Some((first_oid, first)) = lists.first() else {
        return Ok(Vec::new());
    };
    if let Some((other_oid, _)) = lists.iter().find(|(_, list)| list != first) {
        return Err(PkiError::InvalidCsr(format!(
            "the request asks for different extensions under {first_oid} and {other_oid}; \
             send them in one extensionRequest attribute"
        )));
    }
    Ok(first.clone())
}

/// The `Extensions` under Microsoft's attribute, read from the CertificationRequestInfo DER
/// (`SEQUENCE { version, subject, subjectPKInfo, [0] attributes }`), whose attributes are
/// `SEQUENCE { type OID, values SET { Extensions } }`.
fn ms_extension_request(info: &[u8]) -> Result<ExtensionRequest<'_>, PkiError> {
    let malformed = || {
        PkiError::InvalidCsr(format!(
            "the extension request under {} is malformed",
            oid::MS_EXTENSION_REQUEST_DOTTED
        ))
    };
    let (_, info) = Any::from_der(info).map_err(|_| malformed())?;
    let mut rest = info.data;
    for _ in 0..3 {
        (rest, _) = Any::from_der(rest).map_err(|_| malformed())?;
    }
    let (_, attributes) = Any::from_der(rest).map_err(|_| malformed())?;
    let mut rest = attributes.data;
    while !rest.is_empty() {
        let attribute;
        (rest, attribute) = Any::from_der(rest).map_err(|_| malformed())?;
        let (values, oid) = Oid::from_der(attribute.data).map_err(|_| malformed())?;
        if oid.to_id_string() != oid::MS_EXTENSION_REQUEST_DOTTED {
            continue;
        }
        let (_, set) = Any::from_der(values).map_err(|_| malformed())?;
        let (trailing, request) = ExtensionRequest::from_der(set.data).map_err(|_| malformed())?;
        if !trailing.is_empty() {
            return Err(malformed());
        }
        return Ok(request);
    }
    Err(malformed())
}

/// How csrgate treats a request's signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// SHA-2 or Ed25519: accepted.
    Accepted,
    /// SHA-1: accepted only with `signing.allow_sha1_requests` (legacy devices).
    Sha1,
    /// MD2, MD4, MD5: a signature with a broken hash proves nothing; always refused.
    Broken,
}

/// The request signature algorithms csrgate knows (OID, name, verdict). RSASSA-PSS is judged by
/// the hash in its parameters ([`check_signature_algorithm`]).
const SIGNATURE_ALGORITHMS: &[(&str, &str, Verdict)] = &[
    (
        "1.2.840.113549.1.1.11",
        "sha256WithRSAEncryption",
        Verdict::Accepted,
    ),
    (
        "1.2.840.113549.1.1.12",
        "sha384WithRSAEncryption",
        Verdict::Accepted,
    ),
    (
        "1.2.840.113549.1.1.13",
        "sha512WithRSAEncryption",
        Verdict::Accepted,
    ),
    (
        "1.2.840.10045.4.3.2",
        "ecdsa-with-SHA256",
        Verdict::Accepted,
    ),
    (
        "1.2.840.10045.4.3.3",
        "ecdsa-with-SHA384",
        Verdict::Accepted,
    ),
    (
        "1.2.840.10045.4.3.4",
        "ecdsa-with-SHA512",
        Verdict::Accepted,
    ),
    ("1.3.101.112", "Ed25519", Verdict::Accepted),
    (
        "1.2.840.113549.1.1.5",
        "sha1WithRSAEncryption",
        Verdict::Sha1,
    ),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1", Verdict::Sha1),
    (
        "1.2.840.113549.1.1.2",
        "md2WithRSAEncryption",
        Verdict::Broken,
    ),
    (
        "1.2.840.113549.1.1.3",
        "md4WithRSAEncryption",
        Verdict::Broken,
    ),
    (
        "1.2.840.113549.1.1.4",
        "md5WithRSAEncryption",
        Verdict::Broken,
    ),
];

/// The hashes RSASSA-PSS may name (RFC 4055): SHA-256/384/512 accepted, SHA-1 as above.
const PSS_HASHES: &[(&str, &str, Verdict)] = &[
    (
        "2.16.840.1.101.3.4.2.1",
        "RSASSA-PSS with SHA-256",
        Verdict::Accepted,
    ),
    (
        "2.16.840.1.101.3.4.2.2",
        "RSASSA-PSS with SHA-384",
        Verdict::Accepted,
    ),
    (
        "2.16.840.1.101.3.4.2.3",
        "RSASSA-PSS with SHA-512",
        Verdict::Accepted,
    ),
    ("1.3.14.3.2.26", "RSASSA-PSS with SHA-1", Verdict::Sha1),
];

const ACCEPTED_SIGNATURES: &str =
    "sign it with RSA (PKCS#1 v1.5 or PSS) or ECDSA with SHA-256, SHA-384 or SHA-512, or Ed25519";

/// Refuses a request signed with an algorithm off the allow-list, naming the algorithm: proof
/// of possession with a broken hash is no proof.
fn check_signature_algorithm(
    parsed: &X509CertificationRequest<'_>,
    policy: &SigningPolicy,
) -> Result<(), PkiError> {
    let algorithm = &parsed.signature_algorithm;
    let oid = algorithm.algorithm.to_id_string();
    let known = if oid == "1.2.840.113549.1.1.10" {
        let hash = algorithm
            .parameters
            .as_ref()
            .and_then(|p| RsaSsaPssParams::try_from(p).ok())
            .map(|p| p.hash_algorithm_oid().to_id_string())
            .ok_or_else(|| {
                PkiError::InvalidCsr("the RSASSA-PSS signature parameters are malformed".into())
            })?;
        PSS_HASHES.iter().find(|(h, _, _)| *h == hash)
    } else {
        SIGNATURE_ALGORITHMS.iter().find(|(o, _, _)| *o == oid)
    };
    match known {
        Some((_, _, Verdict::Accepted)) => Ok(()),
        Some((_, _, Verdict::Sha1)) if policy.allow_sha1_requests => Ok(()),
        Some((_, name, Verdict::Sha1)) => Err(PkiError::InvalidCsr(format!(
            "the request is signed with {name}; SHA-1 is refused (an operator can allow it for \
             legacy devices with signing.allow_sha1_requests): {ACCEPTED_SIGNATURES}"
        ))),
        Some((_, name, Verdict::Broken)) => Err(PkiError::InvalidCsr(format!(
            "the request is signed with {name}, a broken hash that proves nothing: \
             {ACCEPTED_SIGNATURES}"
        ))),
        None => Err(PkiError::InvalidCsr(format!(
            "the request's signature algorithm {oid} is not accepted: {ACCEPTED_SIGNATURES}"
        ))),
    }
}

/// At most this many subject alternative names.
pub(crate) const MAX_SUBJECT_ALT_NAMES: usize = 100;

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
            (Nid::X9_62_PRIME256V1, oid::P256),
            (Nid::SECP384R1, oid::P384),
            (Nid::SECP521R1, oid::P521),
        ] {
            let (key, point) = key_and_point(nid, PointConversionForm::UNCOMPRESSED);
            assert_eq!(
                canonical_ec_spki(oid, &point),
                key.public_key_to_der().expect("der"),
                "{nid:?}"
            );
        }
    }

    /// A request assembled byte by byte, for shapes openssl's builder cannot make: `version`,
    /// `subject` (Name DER), `spki` (SubjectPublicKeyInfo DER), `attributes` (the content of
    /// the `[0]` attributes), self-signed with `key` (SHA-256, or pure Ed25519).
    fn assemble(
        version: u8,
        subject: &[u8],
        spki: &[u8],
        attributes: &[u8],
        key: &PKey<Private>,
    ) -> Vec<u8> {
        let mut info = vec![0x02, 0x01, version];
        info.extend_from_slice(subject);
        info.extend_from_slice(spki);
        push_tlv(&mut info, 0xa0, attributes);
        let info = sequence(&info);
        let (algorithm, signature): (&[u8], Vec<u8>) = match key.id() {
            openssl::pkey::Id::ED25519 => {
                let mut signer = openssl::sign::Signer::new_without_digest(key).expect("signer");
                (
                    &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70],
                    signer.sign_oneshot_to_vec(&info).expect("sign"),
                )
            }
            openssl::pkey::Id::RSA => {
                let mut signer =
                    openssl::sign::Signer::new(MessageDigest::sha256(), key).expect("signer");
                signer.update(&info).expect("update");
                (
                    &[
                        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
                        0x0b, 0x05, 0x00,
                    ],
                    signer.sign_to_vec().expect("sign"),
                )
            }
            _ => {
                let mut signer =
                    openssl::sign::Signer::new(MessageDigest::sha256(), key).expect("signer");
                signer.update(&info).expect("update");
                (
                    &[
                        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
                    ],
                    signer.sign_to_vec().expect("sign"),
                )
            }
        };
        let mut signature_bits = vec![0];
        signature_bits.extend_from_slice(&signature);
        let mut request = info;
        request.extend_from_slice(algorithm);
        push_tlv(&mut request, 0x03, &signature_bits);
        sequence(&request)
    }

    fn name_der(cn: &str) -> Vec<u8> {
        DistinguishedName::from_fields(&[("CN", cn)])
            .expect("name")
            .to_der()
            .expect("name der")
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
        let mut algorithm = oid::EC_PUBLIC_KEY.to_vec();
        algorithm.extend_from_slice(oid::P256);
        let mut spki = Vec::new();
        push_tlv(&mut spki, 0x30, &algorithm);
        push_tlv(&mut spki, 0x03, &bits);
        let key = PKey::from_ec_key(key).expect("pkey");
        let der = assemble(0, &name_der("compressed"), &sequence(&spki), &[], &key);
        let csr = ValidatedCsr::parse(&der).expect("a compressed key is valid");
        let by_openssl = X509Req::from_der(&der)
            .expect("openssl parses it")
            .public_key()
            .expect("key")
            .public_key_to_der()
            .expect("der");
        assert_eq!(csr.spki_der(), by_openssl);
    }

    /// RFC 2986 4.1: version 0. Any other value is refused with the same message whatever the
    /// key (the check runs before the key-specific verification paths).
    #[test]
    fn only_version_0_is_accepted_for_every_key_type() {
        for spec in [KeySpec::EcP256, KeySpec::Rsa(2048), KeySpec::Ed25519] {
            let key = spec.generate().expect("key");
            let spki = key.public_key_to_der().expect("spki");
            let good = assemble(0, &name_der("v"), &spki, &[], &key);
            ValidatedCsr::parse(&good).unwrap_or_else(|e| panic!("{spec:?} version 0: {e}"));
            for version in [1, 2] {
                let bad = assemble(version, &name_der("v"), &spki, &[], &key);
                let error = ValidatedCsr::parse(&bad).expect_err("refused");
                assert_eq!(
                    error.to_string(),
                    format!(
                        "invalid CSR: the request's version field is {version}; PKCS#10 (RFC 2986 \
                         4.1) requires 0 (v1)"
                    ),
                    "{spec:?}"
                );
            }
        }
    }

    /// An `Attribute` whose single value is `Extensions` holding one SAN extension.
    fn extension_attribute(oid: &[u8], sans: &[SubjectAltName]) -> Vec<u8> {
        extension_attribute_raw(oid, &general_names_der(sans))
    }

    /// The same with the SAN extension's value given as bytes.
    fn extension_attribute_raw(oid: &[u8], san_value: &[u8]) -> Vec<u8> {
        let mut extension = Vec::new();
        extension.extend_from_slice(&[0x06, 0x03, 0x55, 0x1d, 0x11]);
        push_tlv(&mut extension, 0x04, san_value);
        let extensions = sequence(&sequence(&extension));
        let mut attribute = oid.to_vec();
        push_tlv(&mut attribute, 0x31, &extensions);
        sequence(&attribute)
    }

    /// Extensions are read from PKCS#9 extensionRequest and from Microsoft's legacy attribute;
    /// both present must agree, or the request is refused (a SAN is never dropped silently).
    #[test]
    fn extension_requests_under_either_attribute() {
        let pkcs9 = crate::der_writer::oid("1.2.840.113549.1.9.14").expect("oid");
        let microsoft = crate::der_writer::oid(oid::MS_EXTENSION_REQUEST_DOTTED).expect("oid");
        let a = [SubjectAltName::dns("a.example.com").expect("dns")];
        let b = [SubjectAltName::dns("b.example.com").expect("dns")];
        let key = KeySpec::EcP256.generate().expect("key");
        let spki = key.public_key_to_der().expect("spki");
        /// The SANs the request must get, or the refusal's text.
        type Want<'a> = Result<&'a [SubjectAltName], &'a str>;
        let cases: Vec<(Vec<u8>, Want<'_>)> = vec![
            (extension_attribute(&pkcs9, &a), Ok(&a)),
            (extension_attribute(&microsoft, &a), Ok(&a)),
            (
                [
                    extension_attribute(&pkcs9, &a),
                    extension_attribute(&microsoft, &a),
                ]
                .concat(),
                Ok(&a),
            ),
            (
                [
                    extension_attribute(&pkcs9, &a),
                    extension_attribute(&microsoft, &b),
                ]
                .concat(),
                Err("different extensions under 1.2.840.113549.1.9.14 and 1.3.6.1.4.1.311.2.1.14"),
            ),
            (
                [
                    extension_attribute(&pkcs9, &a),
                    extension_attribute(&pkcs9, &b),
                ]
                .concat(),
                Err("carries attribute 1.2.840.113549.1.9.14 twice"),
            ),
            (
                [
                    extension_attribute(&microsoft, &a),
                    extension_attribute(&microsoft, &b),
                ]
                .concat(),
                Err("carries attribute 1.3.6.1.4.1.311.2.1.14 twice"),
            ),
            (
                extension_attribute_raw(&pkcs9, &[general_names_der(&a), vec![0]].concat()),
                Err("subjectAltName extension is malformed"),
            ),
        ];
        for (attributes, want) in cases {
            let der = assemble(0, &name_der("x"), &spki, &attributes, &key);
            match (ValidatedCsr::parse(&der), want) {
                (Ok(csr), Ok(sans)) => assert_eq!(csr.subject_alt_names(), sans),
                (Err(error), Err(text)) => assert!(error.to_string().contains(text), "{error}"),
                (got, want) => panic!("got {got:?}, want {want:?}"),
            }
        }
    }

    /// The signature algorithm allow-list: (digest, accepted by default, with SHA-1 allowed,
    /// text of the refusal).
    #[test]
    fn signature_algorithms_of_requests() {
        let strict = SigningPolicy::default();
        let legacy = SigningPolicy {
            allow_sha1_requests: true,
            ..SigningPolicy::default()
        };
        let cases = [
            (MessageDigest::sha256(), true, true, ""),
            (MessageDigest::sha384(), true, true, ""),
            (MessageDigest::sha512(), true, true, ""),
            (MessageDigest::sha1(), false, true, "sha1WithRSAEncryption"),
            (
                MessageDigest::md5(),
                false,
                false,
                "md5WithRSAEncryption, a broken hash",
            ),
            (
                MessageDigest::sha224(),
                false,
                false,
                "1.2.840.113549.1.1.14 is not accepted",
            ),
        ];
        let key = KeySpec::Rsa(2048).generate().expect("key");
        for (digest, by_default, with_sha1, text) in cases {
            let mut builder = X509ReqBuilder::new().expect("builder");
            builder.set_pubkey(&key).expect("pubkey");
            builder
                .set_subject_name(
                    &DistinguishedName::from_fields(&[("CN", "alg")])
                        .expect("name")
                        .to_x509_name()
                        .expect("name"),
                )
                .expect("subject");
            builder.sign(&key, digest).expect("sign");
            let der = builder.build().to_der().expect("der");
            let strict_result = ValidatedCsr::parse_under(&der, &strict);
            assert_eq!(
                strict_result.is_ok(),
                by_default,
                "{text}: {strict_result:?}"
            );
            assert_eq!(
                ValidatedCsr::parse_under(&der, &legacy).is_ok(),
                with_sha1,
                "{text}"
            );
            if let Err(error) = strict_result {
                assert!(error.to_string().contains(text), "{error}");
            }
        }
    }

    /// PEM framing as RFC 7468 allows it; one request per body.
    #[test]
    fn pem_framing() {
        let req = request(KeySpec::EcP256, "pem", &[]);
        let pem = String::from_utf8(req.to_pem().expect("pem")).expect("ascii");
        let new_label = pem.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
        // (body, accepted, text of the refusal)
        let cases: Vec<(Vec<u8>, bool, &str)> = vec![
            (pem.clone().into_bytes(), true, ""),
            (
                format!("Certificate Request:\n    Data: ...\n{pem}").into_bytes(),
                true,
                "",
            ),
            // Text that starts with '0', the DER SEQUENCE tag.
            (
                format!("0 notes before the block\n{pem}").into_bytes(),
                true,
                "",
            ),
            (
                [b"\xEF\xBB\xBF".as_slice(), pem.as_bytes()].concat(),
                true,
                "",
            ),
            (pem.replace('\n', "\r\n").into_bytes(), true, ""),
            (new_label.into_bytes(), true, ""),
            (format!("{pem}\n\n").into_bytes(), true, ""),
            (
                format!("{pem}{pem}").into_bytes(),
                false,
                "second PEM block",
            ),
            (
                format!("{pem}trailing words").into_bytes(),
                false,
                "after the PEM block",
            ),
            (
                pem.replace("END CERTIFICATE REQUEST", "END CERTIFICATE")
                    .into_bytes(),
                false,
                "missing -----END CERTIFICATE REQUEST-----",
            ),
            (b"notes only, no block".to_vec(), false, "neither"),
        ];
        for (body, accepted, text) in cases {
            let result = ValidatedCsr::parse(&body);
            assert_eq!(
                result.is_ok(),
                accepted,
                "{:?}: {result:?}",
                String::from_utf8_lossy(&body)
            );
            if let Err(error) = result {
                assert!(error.to_string().contains(text), "{error}");
            }
        }
    }

    /// A request without SANs whose CN is a DNS name or an IP address gets it as a SAN.
    #[test]
    fn a_common_name_becomes_the_san_when_there_is_none() {
        let cases: [(&str, &[SubjectAltName], Vec<SubjectAltName>); 4] = [
            (
                "localhost",
                &[],
                vec![SubjectAltName::Dns("localhost".into())],
            ),
            (
                "10.0.0.7",
                &[],
                vec![SubjectAltName::Ip([10, 0, 0, 7].into())],
            ),
            ("Jane Doe", &[], vec![]),
            (
                "app.example.com",
                &[SubjectAltName::Dns("other.example.com".into())],
                vec![SubjectAltName::Dns("other.example.com".into())],
            ),
        ];
        for (cn, sans, want) in cases {
            let der = request(KeySpec::EcP256, cn, sans).to_der().expect("der");
            let csr = ValidatedCsr::parse(&der).expect(cn);
            assert_eq!(csr.subject_alt_names(), want, "{cn}");
        }
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
