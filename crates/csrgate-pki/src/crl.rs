//! Certificate revocation lists (RFC 5280 section 5): v2, CRL Number, AKI, reasonCode and
//! invalidity date per entry. The TBSCertList is written by csrgate's own DER writer (openssl's
//! builder cannot add entry extensions, and allocating an openssl object per entry does not scale
//! to 100,000 entries) and signed with the CA key through openssl.

use std::fmt;
use std::str::FromStr;

use openssl::hash::MessageDigest;
use openssl::pkey::Id;
use openssl::sign::Signer;
use time::OffsetDateTime;

use crate::der_writer::{push_tlv, sequence};
use crate::{Identity, PkiError, Serial};

/// RFC 5280 CRLReason. `removeFromCRL` (8) only makes sense in delta CRLs and is not offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationReason {
    /// unspecified (0)
    Unspecified,
    /// keyCompromise (1)
    KeyCompromise,
    /// cACompromise (2)
    CaCompromise,
    /// affiliationChanged (3)
    AffiliationChanged,
    /// superseded (4)
    Superseded,
    /// cessationOfOperation (5)
    CessationOfOperation,
    /// certificateHold (6)
    CertificateHold,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn,
    /// aACompromise (10)
    AaCompromise,
}

const REASONS: &[(RevocationReason, &str, u8)] = &[
    (RevocationReason::Unspecified, "unspecified", 0),
    (RevocationReason::KeyCompromise, "keyCompromise", 1),
    (RevocationReason::CaCompromise, "cACompromise", 2),
    (
        RevocationReason::AffiliationChanged,
        "affiliationChanged",
        3,
    ),
    (RevocationReason::Superseded, "superseded", 4),
    (
        RevocationReason::CessationOfOperation,
        "cessationOfOperation",
        5,
    ),
    (RevocationReason::CertificateHold, "certificateHold", 6),
    (
        RevocationReason::PrivilegeWithdrawn,
        "privilegeWithdrawn",
        9,
    ),
    (RevocationReason::AaCompromise, "aACompromise", 10),
];

impl RevocationReason {
    fn code(self) -> u8 {
        REASONS
            .iter()
            .find(|(r, _, _)| *r == self)
            .map_or(0, |(_, _, c)| *c)
    }

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub fn name(self) -> &'static str {
        REASONS
            .iter()
            .find(|(r, _, _)| *r == self)
            .map_or("unspecified", |(_, n, _)| n)
    }
}

impl FromStr for RevocationReason {
    type Err = PkiError;

    fn from_str(text: &str) -> Result<Self, PkiError> {
        if text == "removeFromCRL" {
            return Err(PkiError::InvalidParameter(
                "removeFromCRL is for delta CRLs and cannot be used to revoke".into(),
            ));
        }
        REASONS
            .iter()
            .find(|(_, name, _)| *name == text)
            .map(|(r, _, _)| *r)
            .ok_or_else(|| {
                let names: Vec<&str> = REASONS.iter().map(|(_, n, _)| *n).collect();
                PkiError::InvalidParameter(format!(
                    "unknown revocation reason {text:?}: use one of {}",
                    names.join(", ")
                ))
            })
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlEntry {
    /// Its serial.
    pub serial: Serial,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
    /// When the key is known or suspected to have been compromised.
    pub invalidity_date: Option<OffsetDateTime>,
}

/// A signed CRL.
#[derive(Clone, Debug)]
pub struct Crl {
    /// DER (`application/pkix-crl`).
    pub der: Vec<u8>,
    /// PEM (`X509 CRL`).
    pub pem: String,
    /// Its CRL Number.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// How many entries it lists.
    pub entries: usize,
}

fn push_time(out: &mut Vec<u8>, time: OffsetDateTime) {
    // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    let t = time.to_offset(time::UtcOffset::UTC);
    if (1950..2050).contains(&t.year()) {
        let text = format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}Z",
            t.year() % 100,
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        push_tlv(out, 0x17, text.as_bytes());
    } else {
        push_generalized_time(out, t);
    }
}

fn push_generalized_time(out: &mut Vec<u8>, t: OffsetDateTime) {
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    push_tlv(out, 0x18, text.as_bytes());
}

fn push_unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let mut content = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(magnitude);
    push_tlv(out, 0x02, &content);
}

/// Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }
fn push_extension(out: &mut Vec<u8>, oid_der: &[u8], value: &[u8]) {
    let mut content = oid_der.to_vec();
    push_tlv(&mut content, 0x04, value);
    push_tlv(out, 0x30, &content);
}

const OID_REASON_CODE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x15];
const OID_INVALIDITY_DATE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x18];
const OID_CRL_NUMBER: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x14];
const OID_AUTHORITY_KEY_ID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x23];

impl Identity {
    /// Signs a CRL listing `entries`, numbered `number`, valid from `this_update` to `next_update`.
    pub fn sign_crl(
        &self,
        entries: &[CrlEntry],
        number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Crl, PkiError> {
        if next_update <= this_update {
            return Err(PkiError::InvalidParameter(
                "nextUpdate must follow thisUpdate".into(),
            ));
        }
        let (algorithm, digest) = self.signature_algorithm()?;
        let mut tbs = Vec::with_capacity(64 + entries.len() * 64);
        push_tlv(&mut tbs, 0x02, &[0x01]); // version v2
        tbs.extend_from_slice(&algorithm);
        tbs.extend_from_slice(&self.certificate_ref().subject_name().to_der()?);
        push_time(&mut tbs, this_update);
        push_time(&mut tbs, next_update);
        if !entries.is_empty() {
            let mut list = Vec::with_capacity(entries.len() * 64);
            for entry in entries {
                let mut revoked = Vec::with_capacity(64);
                push_unsigned_integer(&mut revoked, entry.serial.as_bytes());
                push_time(&mut revoked, entry.revoked_at);
                let mut extensions = Vec::new();
                if entry.reason != RevocationReason::Unspecified {
                    // RFC 5280 5.3.1: omit reasonCode rather than say unspecified.
                    push_extension(
                        &mut extensions,
                        OID_REASON_CODE,
                        &[0x0a, 0x01, entry.reason.code()],
                    );
                }
                if let Some(when) = entry.invalidity_date {
                    let mut value = Vec::new();
                    push_generalized_time(&mut value, when.to_offset(time::UtcOffset::UTC));
                    push_extension(&mut extensions, OID_INVALIDITY_DATE, &value);
                }
                if !extensions.is_empty() {
                    push_tlv(&mut revoked, 0x30, &extensions);
                }
                push_tlv(&mut list, 0x30, &revoked);
            }
            push_tlv(&mut tbs, 0x30, &list);
        }
        let mut crl_extensions = Vec::new();
        if let Some(key_id) = self.certificate_ref().subject_key_id() {
            let mut aki = Vec::new();
            push_tlv(&mut aki, 0x80, key_id.as_slice());
            push_extension(&mut crl_extensions, OID_AUTHORITY_KEY_ID, &sequence(&aki));
        }
        let mut crl_number = Vec::new();
        push_unsigned_integer(&mut crl_number, trim_leading_zeros(&number.to_be_bytes()));
        push_extension(&mut crl_extensions, OID_CRL_NUMBER, &crl_number);
        push_tlv(&mut tbs, 0xa0, &sequence(&crl_extensions));
        let tbs = sequence(&tbs);

        let signature = match digest {
            Some(digest) => {
                let mut signer = Signer::new(digest, self.key_ref())?;
                signer.update(&tbs)?;
                signer.sign_to_vec()?
            }
            None => Signer::new_without_digest(self.key_ref())?.sign_oneshot_to_vec(&tbs)?,
        };
        let mut bit_string = vec![0u8];
        bit_string.extend_from_slice(&signature);
        let mut certificate_list = tbs;
        certificate_list.extend_from_slice(&algorithm);
        push_tlv(&mut certificate_list, 0x03, &bit_string);
        let der = sequence(&certificate_list);
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&der);
        let mut pem = String::with_capacity(encoded.len() + encoded.len() / 64 + 40);
        pem.push_str("-----BEGIN X509 CRL-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END X509 CRL-----\n");
        Ok(Crl {
            der,
            pem,
            number,
            this_update,
            next_update,
            entries: entries.len(),
        })
    }

    /// The AlgorithmIdentifier DER and digest of this CA's signatures (same choice as
    /// certificates: SHA-256, SHA-384 for P-384, SHA-512 for P-521, pure Ed25519).
    fn signature_algorithm(&self) -> Result<(Vec<u8>, Option<MessageDigest>), PkiError> {
        let key = self.key_ref();
        let ecdsa = |last: u8| {
            vec![
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, last,
            ]
        };
        Ok(match key.id() {
            Id::ED25519 => (vec![0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70], None),
            Id::EC => {
                let digest = crate::key::signing_digest(key);
                if digest.type_() == MessageDigest::sha384().type_() {
                    (ecdsa(0x03), Some(digest))
                } else if digest.type_() == MessageDigest::sha512().type_() {
                    (ecdsa(0x04), Some(digest))
                } else {
                    (ecdsa(0x02), Some(MessageDigest::sha256()))
                }
            }
            Id::RSA => (
                vec![
                    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
                    0x05, 0x00,
                ],
                Some(MessageDigest::sha256()),
            ),
            _ => return Err(PkiError::Crypto("unsupported CA key type for CRLs".into())),
        })
    }
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    &bytes[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_parse_by_rfc_name_and_refuse_remove_from_crl() {
        for (reason, name, _) in REASONS {
            assert_eq!(name.parse::<RevocationReason>().expect(name), *reason);
            assert_eq!(reason.to_string(), *name);
        }
        assert!("removeFromCRL".parse::<RevocationReason>().is_err());
        assert!("KeyCompromise".parse::<RevocationReason>().is_err());
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        let mut out = Vec::new();
        push_time(&mut out, time::macros::datetime!(2049-12-31 23:59:59 UTC));
        assert_eq!(out[0], 0x17);
        assert_eq!(&out[2..], b"491231235959Z");
        out.clear();
        push_time(&mut out, time::macros::datetime!(2050-01-01 00:00:00 UTC));
        assert_eq!(out[0], 0x18);
        assert_eq!(&out[2..], b"20500101000000Z");
    }

    #[test]
    fn integers_stay_positive() {
        let mut out = Vec::new();
        push_unsigned_integer(&mut out, &[0x80]);
        assert_eq!(out, vec![0x02, 0x02, 0x00, 0x80]);
        out.clear();
        push_unsigned_integer(&mut out, trim_leading_zeros(&1u64.to_be_bytes()));
        assert_eq!(out, vec![0x02, 0x01, 0x01]);
    }
}
