//! Certificate revocation lists (RFC 5280 section 5): v2, CRL Number, AKI, reasonCode and
//! invalidity date per entry. The TBSCertList is written by csrgate's own DER writer (openssl's
//! builder cannot add entry extensions, and allocating an openssl object per entry does not scale
//! to 100,000 entries) and signed with the CA key through openssl.

use time::OffsetDateTime;

use crate::ca_signature::pem;
use crate::der_writer::{
    push_extension, push_generalized_time, push_time, push_tlv, push_unsigned_integer, sequence,
    trim_leading_zeros,
};
use crate::oid;
use crate::{Identity, PkiError, RevocationReason, Serial};

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
        let ca = self.ca_signature();
        let mut tbs = Vec::with_capacity(64 + entries.len() * 64);
        push_tlv(&mut tbs, 0x02, &[0x01]); // version v2
        tbs.extend_from_slice(ca.algorithm());
        tbs.extend_from_slice(ca.issuer());
        push_time(&mut tbs, this_update);
        push_time(&mut tbs, next_update);
        if !entries.is_empty() {
            let mut list = Vec::with_capacity(entries.len() * 64);
            for entry in entries {
                let mut revoked = Vec::with_capacity(64);
                push_unsigned_integer(&mut revoked, entry.serial.magnitude());
                push_time(&mut revoked, entry.revoked_at);
                let mut extensions = Vec::new();
                if entry.reason != RevocationReason::Unspecified {
                    // RFC 5280 5.3.1: omit reasonCode rather than say unspecified.
                    push_extension(
                        &mut extensions,
                        oid::REASON_CODE,
                        false,
                        &[0x0a, 0x01, entry.reason.code()],
                    );
                }
                if let Some(when) = entry.invalidity_date {
                    let mut value = Vec::new();
                    push_generalized_time(&mut value, when.to_offset(time::UtcOffset::UTC));
                    push_extension(&mut extensions, oid::INVALIDITY_DATE, false, &value);
                }
                if !extensions.is_empty() {
                    push_tlv(&mut revoked, 0x30, &extensions);
                }
                push_tlv(&mut list, 0x30, &revoked);
            }
            push_tlv(&mut tbs, 0x30, &list);
        }
        let mut crl_extensions = Vec::new();
        let mut aki = Vec::new();
        push_tlv(&mut aki, 0x80, ca.key_identifier());
        push_extension(
            &mut crl_extensions,
            oid::AUTHORITY_KEY_ID,
            false,
            &sequence(&aki),
        );
        let mut crl_number = Vec::new();
        push_unsigned_integer(&mut crl_number, trim_leading_zeros(&number.to_be_bytes()));
        push_extension(&mut crl_extensions, oid::CRL_NUMBER, false, &crl_number);
        push_tlv(&mut tbs, 0xa0, &sequence(&crl_extensions));
        let tbs = sequence(&tbs);

        let der = ca.sign(tbs)?;
        let pem = pem("X509 CRL", &der);
        Ok(Crl {
            der,
            pem,
            number,
            this_update,
            next_update,
            entries: entries.len(),
        })
    }
}
