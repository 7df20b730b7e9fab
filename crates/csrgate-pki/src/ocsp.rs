//! OCSP (RFC 6960): requests are parsed by RustCrypto's `x509-ocsp` (attacker input goes through a
//! maintained DER decoder, not ours; docs/decisions/0028-ocsp-responder.md), responses are written
//! by our DER writer and signed through [`CaSignature`] like certificates and CRLs, either by the
//! CA itself or by a delegated responder certificate (RFC 6960 4.2.2.2) issued by the CA.

use std::fmt;
use std::path::Path;

use der::{Decode as _, Encode as _, Tagged as _};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::symm::Cipher;
use openssl::x509::{X509, X509NameBuilder, X509ReqBuilder};
use time::OffsetDateTime;

use crate::ca_signature::{CaSignature, public_key_bits};
use crate::der_writer::{push_extension, push_generalized_time, push_tlv, sequence};
use crate::identity::replace_file;
use crate::oid;
use crate::{
    ExtendedKeyUsage, Identity, KeyUsage, PkiError, RevocationReason, Serial, SigningPolicy,
    ValidatedCsr, ValidityPeriod,
};

/// CertIDs per request at most. openssl sends one per `-cert`; more is not a status check.
pub const MAX_REQUESTS_PER_OCSP_REQUEST: usize = 16;

/// The hash a CertID was made with (RFC 6960 4.1.1 `hashAlgorithm`). SHA-1 is what most clients
/// send (RFC 5019 2.1.1); the SHA-2 family is accepted too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// id-sha1 (1.3.14.3.2.26).
    Sha1,
    /// id-sha256 (2.16.840.1.101.3.4.2.1).
    Sha256,
    /// id-sha384 (2.16.840.1.101.3.4.2.2).
    Sha384,
    /// id-sha512 (2.16.840.1.101.3.4.2.3).
    Sha512,
}

/// Each hash with its OID's content octets (DER without tag and length).
const CERT_ID_HASHES: [(CertIdHash, &[u8]); 4] = [
    (CertIdHash::Sha1, &[0x2b, 0x0e, 0x03, 0x02, 0x1a]),
    (
        CertIdHash::Sha256,
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
    ),
    (
        CertIdHash::Sha384,
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02],
    ),
    (
        CertIdHash::Sha512,
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03],
    ),
];

impl CertIdHash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            CertIdHash::Sha1 => openssl::sha::sha1(data).to_vec(),
            CertIdHash::Sha256 => openssl::sha::sha256(data).to_vec(),
            CertIdHash::Sha384 => openssl::sha::sha384(data).to_vec(),
            CertIdHash::Sha512 => openssl::sha::sha512(data).to_vec(),
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The name openssl prints, e.g. `sha1`.
    pub fn name(self) -> &'static str {
        match self {
            CertIdHash::Sha1 => "sha1",
            CertIdHash::Sha256 => "sha256",
            CertIdHash::Sha384 => "sha384",
            CertIdHash::Sha512 => "sha512",
        }
    }
}

/// One CertID of a request (RFC 6960 4.1.1): which issuer (by the hashes of its name and key)
/// and which serial. The DER as received is kept: the response repeats it byte for byte.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CertId {
    /// The hash of both issuer hashes.
    pub hash: CertIdHash,
    /// `issuerNameHash`: hash of the issuer's subject Name DER.
    pub issuer_name_hash: Vec<u8>,
    /// `issuerKeyHash`: hash of the issuer's subjectPublicKey BIT STRING contents.
    pub issuer_key_hash: Vec<u8>,
    /// `serialNumber`.
    pub serial: Serial,
    der: Vec<u8>,
}

impl fmt::Debug for CertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertId({} {})", self.hash.name(), self.serial)
    }
}

/// A parsed OCSPRequest (RFC 6960 4.1.1). The optional requestor signature is not checked:
/// csrgate answers anyone (status is public, as the CRL is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspRequest {
    /// The certificates asked about, 1 to [`MAX_REQUESTS_PER_OCSP_REQUEST`].
    pub cert_ids: Vec<CertId>,
    /// The nonce extension's `extnValue` contents as received (an OCTET STRING of 1 to 32
    /// octets, RFC 8954 2.1), echoed in the response.
    pub nonce: Option<Vec<u8>>,
}

/// Why a request gets `malformedRequest`: a sentence for the log, never shown to the client
/// (an OCSP error response carries only its status).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed OCSP request: {0}")]
pub struct MalformedOcspRequest(pub String);

impl OcspRequest {
    /// Parses a DER OCSPRequest. Errors say what is wrong: not DER, no or too many CertIDs, a
    /// hash other than SHA-1/SHA-2, a serial that is not a positive integer of at most 20
    /// octets, a nonce outside 1..=32 octets, or a critical extension csrgate does not know.
    pub fn parse(der: &[u8]) -> Result<OcspRequest, MalformedOcspRequest> {
        let bad = |why: String| MalformedOcspRequest(why);
        let request = x509_ocsp::OcspRequest::from_der(der).map_err(|e| bad(e.to_string()))?;
        let tbs = request.tbs_request;
        if tbs.request_list.is_empty() {
            return Err(bad("the request lists no certificate".into()));
        }
        if tbs.request_list.len() > MAX_REQUESTS_PER_OCSP_REQUEST {
            return Err(bad(format!(
                "{} certificates in one request (at most {MAX_REQUESTS_PER_OCSP_REQUEST})",
                tbs.request_list.len()
            )));
        }
        let mut cert_ids = Vec::with_capacity(tbs.request_list.len());
        for single in &tbs.request_list {
            if let Some(extension) = single
                .single_request_extensions
                .iter()
                .flatten()
                .find(|e| e.critical)
            {
                return Err(bad(format!(
                    "critical single request extension {} is not supported",
                    extension.extn_id
                )));
            }
            cert_ids.push(cert_id(&single.req_cert)?);
        }
        let mut nonce = None;
        for extension in tbs.request_extensions.iter().flatten() {
            if extension.extn_id.as_bytes() == &oid::OCSP_NONCE[2..] {
                let value = extension.extn_value.as_bytes();
                let inner = der::asn1::OctetString::from_der(value)
                    .map_err(|e| bad(format!("the nonce is not an OCTET STRING: {e}")))?;
                if !(1..=32).contains(&inner.as_bytes().len()) {
                    return Err(bad(format!(
                        "a nonce of {} octets (RFC 8954: 1 to 32)",
                        inner.as_bytes().len()
                    )));
                }
                nonce = Some(value.to_vec());
            } else if extension.critical {
                return Err(bad(format!(
                    "critical request extension {} is not supported",
                    extension.extn_id
                )));
            }
        }
        Ok(OcspRequest { cert_ids, nonce })
    }
}

fn cert_id(id: &x509_ocsp::CertId) -> Result<CertId, MalformedOcspRequest> {
    let bad = |why: String| MalformedOcspRequest(why);
    let algorithm = id.hash_algorithm.oid.as_bytes();
    let hash = CERT_ID_HASHES
        .iter()
        .find(|(_, content)| *content == algorithm)
        .map(|(hash, _)| *hash)
        .ok_or_else(|| {
            bad(format!(
                "CertID hash {} is not SHA-1 or SHA-2",
                id.hash_algorithm.oid
            ))
        })?;
    // The CertID is echoed into the response: its parameters must be what a hash has (absent,
    // or NULL as SHA-1 is usually sent; RFC 5754 3), or the answer would not parse for clients.
    if let Some(parameters) = &id.hash_algorithm.parameters
        && !(parameters.tag() == der::Tag::Null && parameters.value().is_empty())
    {
        return Err(bad("CertID hash parameters other than NULL".into()));
    }
    let magnitude = id.serial_number.as_bytes();
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(bad("negative serial number".into()));
    }
    let serial: Serial = hex::encode(magnitude)
        .parse()
        .map_err(|_| bad("the serial number is zero or longer than 20 octets".into()))?;
    let der = id
        .to_der()
        .map_err(|e| bad(format!("the CertID does not re-encode: {e}")))?;
    Ok(CertId {
        hash,
        issuer_name_hash: id.issuer_name_hash.as_bytes().to_vec(),
        issuer_key_hash: id.issuer_key_hash.as_bytes().to_vec(),
        serial,
        der,
    })
}

/// The status of one certificate in a response (RFC 6960 4.2.1 `CertStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued by this CA and not revoked.
    Good,
    /// Revoked at `revocation_time` for `reason` (`unspecified` is left out of the response as
    /// RFC 5280 5.3.1 asks of CRLs).
    Revoked {
        /// revocationTime.
        revocation_time: OffsetDateTime,
        /// revocationReason.
        reason: RevocationReason,
    },
    /// The serial is not one this CA issued (as far as its store knows).
    Unknown,
}

/// `OCSPResponseStatus` values other than `successful` (RFC 6960 4.2.1): an error response is
/// unsigned and carries nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcspErrorStatus {
    /// malformedRequest (1): the request does not parse or asks what csrgate does not answer.
    MalformedRequest,
    /// internalError (2): the responder could not answer (store or signature failure).
    InternalError,
    /// tryLater (3): the responder is not ready yet.
    TryLater,
    /// unauthorized (6): the request names another issuer (RFC 5019 2.2.3).
    Unauthorized,
}

impl OcspErrorStatus {
    /// The whole DER OCSPResponse: `SEQUENCE { ENUMERATED status }`.
    pub fn response_der(self) -> Vec<u8> {
        let code = match self {
            OcspErrorStatus::MalformedRequest => 1,
            OcspErrorStatus::InternalError => 2,
            OcspErrorStatus::TryLater => 3,
            OcspErrorStatus::Unauthorized => 6,
        };
        vec![0x30, 0x03, 0x0a, 0x01, code]
    }
}

/// A signer of OCSP responses for one CA: the CA's own key, or a delegated responder
/// certificate the CA issued with id-kp-OCSPSigning (RFC 6960 4.2.2.2), which the response
/// carries in `certs` so that clients can check it.
pub struct OcspSigner {
    signature: CaSignature,
    /// `[2] EXPLICIT KeyHash`: the SHA-1 of the signer's public key (RFC 6960 4.2.2.3).
    responder_id: Vec<u8>,
    /// `[0] EXPLICIT SEQUENCE OF Certificate`, empty when the CA signs itself.
    certs: Vec<u8>,
    /// The CA's name and key hashes per [`CertIdHash`], to recognise its CertIDs.
    issuer_name_hashes: [Vec<u8>; 4],
    issuer_key_hashes: [Vec<u8>; 4],
    delegated: Option<DelegatedResponder>,
}

/// The facts about a delegated responder certificate that renewal needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegatedResponder {
    /// The responder certificate's serial.
    pub serial: Serial,
    /// Its notBefore.
    pub not_before: OffsetDateTime,
    /// Its notAfter.
    pub not_after: OffsetDateTime,
}

impl fmt::Debug for OcspSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OcspSigner")
            .field("delegated", &self.delegated)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The delegated responder's files in the identity directory.
pub const OCSP_SIGNER_CERT_FILE: &str = "ocsp-signer.crt";
/// Its private key (encrypted PKCS#8 under the CA passphrase when the CA key is encrypted), 0600.
pub const OCSP_SIGNER_KEY_FILE: &str = "ocsp-signer.key";

impl OcspSigner {
    /// Responses signed by the CA key itself.
    pub fn for_ca(identity: &Identity) -> Result<OcspSigner, PkiError> {
        let signature = CaSignature::new(identity.key(), identity.certificate())?;
        OcspSigner::assemble(
            identity,
            signature,
            identity.certificate(),
            Vec::new(),
            None,
        )
    }

    /// Responses signed by the delegated responder in `dir` ([`OCSP_SIGNER_CERT_FILE`],
    /// [`OCSP_SIGNER_KEY_FILE`]). Errors when the files are missing or unreadable, when the
    /// passphrase does not open the key, or when the certificate was not issued by `identity`
    /// for OCSP signing or does not match the key.
    pub fn load_delegated(
        identity: &Identity,
        dir: &Path,
        passphrase: Option<&crate::Passphrase>,
    ) -> Result<OcspSigner, PkiError> {
        let cert_path = dir.join(OCSP_SIGNER_CERT_FILE);
        let key_path = dir.join(OCSP_SIGNER_KEY_FILE);
        let cert_pem = std::fs::read(&cert_path).map_err(|e| PkiError::io(&cert_path, e))?;
        let key_pem = zeroize::Zeroizing::new(
            std::fs::read(&key_path).map_err(|e| PkiError::io(&key_path, e))?,
        );
        let certificate = X509::from_pem(&cert_pem).map_err(|_| {
            PkiError::identity(
                dir,
                format!("{OCSP_SIGNER_CERT_FILE} is not a PEM certificate"),
            )
        })?;
        let key = crate::identity::read_private_key(&key_pem, &key_path, dir, passphrase)?;
        OcspSigner::delegated(identity, &certificate, &key)
            .map_err(|why| PkiError::identity(dir, format!("{OCSP_SIGNER_CERT_FILE}: {why}")))
    }

    fn delegated(
        identity: &Identity,
        certificate: &X509,
        key: &PKey<Private>,
    ) -> Result<OcspSigner, String> {
        let ca_key = identity
            .certificate()
            .public_key()
            .map_err(|e| e.to_string())?;
        if !certificate.verify(&ca_key).unwrap_or(false) {
            return Err("not issued by this CA".into());
        }
        if !certificate
            .public_key()
            .map_err(|e| e.to_string())?
            .public_eq(key)
        {
            return Err(format!("{OCSP_SIGNER_KEY_FILE} does not belong to it"));
        }
        let der = certificate.to_der().map_err(|e| e.to_string())?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|_| "the certificate does not parse".to_string())?;
        let ocsp_signing = parsed
            .extended_key_usage()
            .ok()
            .flatten()
            .is_some_and(|eku| eku.value.ocsp_signing);
        if !ocsp_signing {
            return Err("no id-kp-OCSPSigning extended key usage".into());
        }
        let validity = parsed.validity();
        let time = |t: x509_parser::time::ASN1Time| {
            OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|e| e.to_string())
        };
        let delegated = DelegatedResponder {
            serial: hex::encode(parsed.raw_serial())
                .parse()
                .map_err(|_| "its serial is not a positive integer".to_string())?,
            not_before: time(validity.not_before)?,
            not_after: time(validity.not_after)?,
        };
        let signature = CaSignature::new(key, certificate).map_err(|e| e.to_string())?;
        let mut certs = Vec::with_capacity(der.len() + 8);
        push_tlv(&mut certs, 0xa0, &sequence(&der));
        OcspSigner::assemble(identity, signature, certificate, certs, Some(delegated))
            .map_err(|e| e.to_string())
    }

    fn assemble(
        identity: &Identity,
        signature: CaSignature,
        signer_certificate: &X509,
        certs: Vec<u8>,
        delegated: Option<DelegatedResponder>,
    ) -> Result<OcspSigner, PkiError> {
        let signer_key = public_key_bits(&signer_certificate.public_key()?.public_key_to_der()?)?;
        let mut key_hash = Vec::with_capacity(22);
        push_tlv(&mut key_hash, 0x04, &openssl::sha::sha1(&signer_key));
        let mut responder_id = Vec::with_capacity(24);
        push_tlv(&mut responder_id, 0xa2, &key_hash);
        let issuer_name = identity.certificate().subject_name().to_der()?;
        let issuer_key =
            public_key_bits(&identity.certificate().public_key()?.public_key_to_der()?)?;
        let per_hash = |data: &[u8]| CERT_ID_HASHES.map(|(hash, _)| hash.digest(data));
        Ok(OcspSigner {
            signature,
            responder_id,
            certs,
            issuer_name_hashes: per_hash(&issuer_name),
            issuer_key_hashes: per_hash(&issuer_key),
            delegated,
        })
    }

    /// The delegated responder certificate, `None` when the CA signs itself.
    pub fn delegated_responder(&self) -> Option<&DelegatedResponder> {
        self.delegated.as_ref()
    }

    /// True when `id` names this signer's CA (both issuer hashes match; RFC 6960 4.1.1).
    pub fn answers_for(&self, id: &CertId) -> bool {
        let index = id.hash.index();
        self.issuer_name_hashes[index] == id.issuer_name_hash
            && self.issuer_key_hashes[index] == id.issuer_key_hash
    }

    /// A signed, successful OCSPResponse (DER) with one SingleResponse per entry, produced at
    /// `this_update`, valid until `next_update`, echoing `nonce` (the request's extnValue) when
    /// given. Errors: `InvalidParameter` when nextUpdate does not follow thisUpdate, `Crypto`
    /// when signing fails.
    pub fn sign_response(
        &self,
        entries: &[(&CertId, CertStatus)],
        nonce: Option<&[u8]>,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        if next_update <= this_update {
            return Err(PkiError::InvalidParameter(
                "nextUpdate must follow thisUpdate".into(),
            ));
        }
        let mut responses = Vec::with_capacity(entries.len() * 120);
        for (id, status) in entries {
            let mut single = Vec::with_capacity(120);
            single.extend_from_slice(&id.der);
            match status {
                CertStatus::Good => single.extend_from_slice(&[0x80, 0x00]),
                CertStatus::Unknown => single.extend_from_slice(&[0x82, 0x00]),
                CertStatus::Revoked {
                    revocation_time,
                    reason,
                } => {
                    let mut info = Vec::with_capacity(24);
                    push_generalized_time(&mut info, *revocation_time);
                    if *reason != RevocationReason::Unspecified {
                        push_tlv(&mut info, 0xa0, &[0x0a, 0x01, reason.code()]);
                    }
                    push_tlv(&mut single, 0xa1, &info);
                }
            }
            push_generalized_time(&mut single, this_update);
            let mut next = Vec::with_capacity(17);
            push_generalized_time(&mut next, next_update);
            push_tlv(&mut single, 0xa0, &next);
            push_tlv(&mut responses, 0x30, &single);
        }
        let mut tbs = Vec::with_capacity(responses.len() + 96);
        tbs.extend_from_slice(&self.responder_id);
        push_generalized_time(&mut tbs, this_update);
        push_tlv(&mut tbs, 0x30, &responses);
        if let Some(nonce) = nonce {
            let mut extensions = Vec::with_capacity(nonce.len() + 16);
            push_extension(&mut extensions, oid::OCSP_NONCE, false, nonce);
            push_tlv(&mut tbs, 0xa1, &sequence(&extensions));
        }
        let mut basic = self.signature.sign_unwrapped(sequence(&tbs))?;
        basic.extend_from_slice(&self.certs);
        let basic = sequence(&basic);

        let mut response_bytes = Vec::with_capacity(basic.len() + 20);
        response_bytes.extend_from_slice(oid::OCSP_BASIC);
        push_tlv(&mut response_bytes, 0x04, &basic);
        let mut response = Vec::with_capacity(basic.len() + 32);
        response.extend_from_slice(&[0x0a, 0x01, 0x00]); // successful
        push_tlv(&mut response, 0xa0, &sequence(&response_bytes));
        Ok(sequence(&response))
    }
}

impl Identity {
    /// Issues a delegated OCSP responder certificate (RFC 6960 4.2.2.2) for a fresh P-256 key:
    /// CN "<CA CN> OCSP responder", digitalSignature, id-kp-OCSPSigning and id-pkix-ocsp-nocheck,
    /// valid for `validity` from now (within the CA's validity). Writes [`OCSP_SIGNER_KEY_FILE`]
    /// (0600, PKCS#8 encrypted with `passphrase` when given) and [`OCSP_SIGNER_CERT_FILE`] into
    /// `dir`, each replaced atomically, and returns the signer. Errors: `Io` for the files,
    /// `InvalidTemplate` when the CA expires before the certificate could start.
    pub fn issue_ocsp_signer(
        &self,
        dir: &Path,
        passphrase: Option<&crate::Passphrase>,
        validity: ValidityPeriod,
    ) -> Result<OcspSigner, PkiError> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
        let ca_name = self.summary().subject.common_name().unwrap_or("csrgate CA");
        // CN is at most 64 characters (RFC 5280 ub-common-name).
        let common_name: String = format!("{ca_name} OCSP responder")
            .chars()
            .take(64)
            .collect();
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, &common_name)?;
        let mut request = X509ReqBuilder::new()?;
        request.set_subject_name(&name.build())?;
        request.set_pubkey(&key)?;
        request.sign(&key, MessageDigest::sha256())?;
        let csr = ValidatedCsr::parse(&request.build().to_der()?)?;
        let policy = SigningPolicy {
            default_validity: validity,
            max_validity: validity,
            extended_key_usage: vec![ExtendedKeyUsage::OcspSigning],
            ..SigningPolicy::default()
        };
        let mut template = self
            .summary()
            .template_for(&csr, &policy, OffsetDateTime::now_utc());
        template.key_usage = vec![KeyUsage::DigitalSignature];
        let issued = self.sign(&csr, &template, &policy)?;
        let certificate = X509::from_der(&issued.der)?;

        let key_pem = zeroize::Zeroizing::new(match passphrase {
            Some(passphrase) => key.private_key_to_pem_pkcs8_passphrase(
                Cipher::aes_256_cbc(),
                passphrase.as_bytes(),
            )?,
            None => key.private_key_to_pem_pkcs8()?,
        });
        replace_file(&dir.join(OCSP_SIGNER_KEY_FILE), &key_pem, 0o600)?;
        replace_file(
            &dir.join(OCSP_SIGNER_CERT_FILE),
            issued.pem.as_bytes(),
            0o644,
        )?;
        OcspSigner::delegated(self, &certificate, &key).map_err(|why| {
            PkiError::Crypto(format!("the responder just issued is unusable: {why}"))
        })
    }
}

/// A status request (RFC 6960 4.1, SHA-1 CertID, no nonce) for `certificate_der`, issued by
/// `issuer_der`: what `csrgate inspect --url` sends.
pub fn ocsp_request_for(certificate_der: &[u8], issuer_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let certificate = X509::from_der(certificate_der)?;
    let issuer = X509::from_der(issuer_der)?;
    let id = openssl::ocsp::OcspCertId::from_cert(MessageDigest::sha1(), &certificate, &issuer)?;
    let mut request = openssl::ocsp::OcspRequest::new()?;
    request.add_id(id)?;
    Ok(request.to_der()?)
}

/// The status an OCSP response gives for `certificate_der`, once its signature is checked
/// against `issuer_der` (the CA itself, or a responder certificate it issued for OCSP signing):
/// `good`, `revoked (REASON) at TIME` or `unknown`, with its nextUpdate. Errors
/// (`InvalidParameter`) for an error response, a bad signature or a response about something
/// else.
pub fn ocsp_status_in(
    response_der: &[u8],
    certificate_der: &[u8],
    issuer_der: &[u8],
) -> Result<String, PkiError> {
    use openssl::ocsp::{OcspCertStatus, OcspFlag, OcspResponse, OcspResponseStatus};
    let bad = |why: String| PkiError::InvalidParameter(why);
    let response = OcspResponse::from_der(response_der)
        .map_err(|_| bad("the answer is not an OCSP response".into()))?;
    if response.status() != OcspResponseStatus::SUCCESSFUL {
        return Err(bad(format!(
            "the responder answered {:?}",
            response.status()
        )));
    }
    let basic = response.basic()?;
    let certificate = X509::from_der(certificate_der)?;
    let issuer = X509::from_der(issuer_der)?;
    let mut trusted = openssl::x509::store::X509StoreBuilder::new()?;
    trusted.add_cert(issuer.clone())?;
    // The issuer may be an intermediate: it is the anchor here, not its root.
    trusted.set_flags(openssl::x509::verify::X509VerifyFlags::PARTIAL_CHAIN)?;
    let mut issuers = openssl::stack::Stack::new()?;
    issuers.push(issuer.clone())?;
    basic
        .verify(&issuers, &trusted.build(), OcspFlag::TRUST_OTHER)
        .map_err(|e| bad(format!("the response's signature does not verify: {e}")))?;
    let id = openssl::ocsp::OcspCertId::from_cert(MessageDigest::sha1(), &certificate, &issuer)?;
    let found = basic
        .find_status(&id)
        .ok_or_else(|| bad("the response is about another certificate".into()))?;
    // thisUpdate not in the future and nextUpdate not past (5 minutes of clock skew): a
    // replayed old answer is not a status.
    found
        .check_validity(300, None)
        .map_err(|_| bad("the answer is outside its thisUpdate..nextUpdate window".into()))?;
    let next = found
        .next_update()
        .map_or_else(String::new, |t| format!(", next update {t}"));
    Ok(match found.status {
        OcspCertStatus::GOOD => format!("good{next}"),
        OcspCertStatus::REVOKED => {
            let at = found
                .revocation_time
                .map_or_else(String::new, |t| format!(" at {t}"));
            let reason = crate::RevocationReason::from_code(found.reason.as_raw())
                .map_or("unspecified", crate::RevocationReason::name);
            format!("revoked ({reason}){at}{next}")
        }
        _ => format!("unknown to the responder{next}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_are_what_openssl_parses() {
        use openssl::ocsp::OcspResponseStatus as Status;
        for (status, expected) in [
            (OcspErrorStatus::MalformedRequest, Status::MALFORMED_REQUEST),
            (OcspErrorStatus::InternalError, Status::INTERNAL_ERROR),
            (OcspErrorStatus::TryLater, Status::TRY_LATER),
            (OcspErrorStatus::Unauthorized, Status::UNAUTHORIZED),
        ] {
            let der = status.response_der();
            let parsed = openssl::ocsp::OcspResponse::from_der(&der).expect("parses");
            assert_eq!(parsed.status(), expected, "{status:?}");
            assert_eq!(parsed.to_der().expect("der"), der);
        }
    }

    #[test]
    fn requests_that_are_not_status_checks_are_malformed() {
        let cases: &[(&str, &[u8])] = &[
            ("empty", b""),
            ("not DER", b"GET / HTTP/1.1"),
            ("a bare SEQUENCE", &[0x30, 0x00]),
            ("truncated", &[0x30, 0x10, 0x30, 0x0e]),
        ];
        for (name, der) in cases {
            assert!(OcspRequest::parse(der).is_err(), "{name}");
        }
    }

    /// DER of a one-CertID request: `hash_oid` (content octets), and a nonce extension whose
    /// OCTET STRING holds `nonce_len` octets when given.
    fn request(hash_oid: &[u8], nonce_len: Option<usize>) -> Vec<u8> {
        let tlv = |tag: u8, content: &[u8]| {
            let mut out = Vec::new();
            push_tlv(&mut out, tag, content);
            out
        };
        let mut algorithm = tlv(0x06, hash_oid);
        algorithm.extend([0x05, 0x00]);
        let mut cert_id = tlv(0x30, &algorithm);
        cert_id.extend(tlv(0x04, &[0x11; 20]));
        cert_id.extend(tlv(0x04, &[0x22; 20]));
        cert_id.extend(tlv(0x02, &[0x40, 0x01]));
        let mut tbs = tlv(0x30, &tlv(0x30, &tlv(0x30, &cert_id)));
        if let Some(len) = nonce_len {
            let mut extension = oid::OCSP_NONCE.to_vec();
            extension.extend(tlv(0x04, &tlv(0x04, &vec![0x33; len])));
            tbs.extend(tlv(0xa2, &tlv(0x30, &tlv(0x30, &extension))));
        }
        tlv(0x30, &tlv(0x30, &tbs))
    }

    /// RFC 8954 2.1 bounds the nonce to 1..=32 octets; only SHA-1 and SHA-2 CertIDs are answered.
    #[test]
    fn nonce_lengths_and_hash_algorithms() {
        let sha1 = CERT_ID_HASHES[0].1;
        let md5 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05];
        let cases: [(&[u8], Option<usize>, bool); 6] = [
            (sha1, None, true),
            (sha1, Some(1), true),
            (sha1, Some(32), true),
            (sha1, Some(33), false),
            (sha1, Some(0), false),
            (&md5, None, false),
        ];
        for (hash, nonce, accepted) in cases {
            let parsed = OcspRequest::parse(&request(hash, nonce));
            assert_eq!(
                parsed.is_ok(),
                accepted,
                "{hash:02x?} nonce {nonce:?}: {parsed:?}"
            );
            if let Ok(parsed) = parsed {
                assert_eq!(parsed.nonce.is_some(), nonce.is_some());
                assert_eq!(parsed.cert_ids[0].serial.to_string(), "4001");
            }
        }
    }

    /// Found by the `ocsp_request` fuzz target: a SHA-256 CertID whose parameters are an empty
    /// BOOLEAN. The CertID is echoed into the response, which openssl then cannot read; the
    /// request is malformed instead.
    #[test]
    fn cert_id_parameters_other_than_null_are_malformed() {
        let crash = hex::decode(
            "30820106308201023081da306b3069300d0609608648016503040201050004206a47022f2df15fe015b1\
             2e60ddcda8047aafd0be2e7dd8d000066f46d72c49eb04201fca4c3b9800619103e8b8ac6df6eec42bd8\
             3f5ad563d5741b561d01073056ff02144001a22a416e2e530a8ffb2e60c76c7fee8ea45e306b3069300d\
             0609608648016503040201010004206a47022f2df15fe015b12e60ddcda8047aafd0be2e7dd8d0ce746f\
             46d72c49eb04201fca4c3b9800619103e8b8ac6df6eec42bd83f5ad563d5741b561d01073056ff021440\
             01a22a4192d1acee8ffb2e60c76c7fee8ea45ea2233021301f06092b060105050730010204120410805a\
             07557e8f3db7bbaf9ab6bbfc4be4",
        )
        .expect("hex");
        let refused = OcspRequest::parse(&crash).expect_err("malformed");
        assert!(refused.0.contains("parameters"), "{refused}");
        // The same request with NULL parameters in both CertIDs is accepted.
        let mut fixed = crash.clone();
        fixed[137] = 0x05;
        let parsed = OcspRequest::parse(&fixed).expect("NULL parameters");
        assert_eq!(parsed.cert_ids.len(), 2);
        assert!(parsed.nonce.is_some());
    }
}
