//! Writing a leaf certificate: the TBSCertificate in our DER, signed with the CA key.

use super::*;

impl Identity {
    /// Signs a leaf certificate for `csr` as `template` describes it, after checking the template.
    /// The certificate is always X.509 v3, CA:FALSE, with SKI and AKI, signed with SHA-256 or
    /// stronger (never SHA-1), issued under the CA's *subject*, with a fresh serial (`0x40`, the
    /// issuance time in ms, 104 CSPRNG bits: [`crate::generate_serial`]).
    ///
    /// Errors: `InvalidTemplate` (the template breaks the CA's or the policy's rules: validity,
    /// names, URIs, extensions), `InvalidParameter` (an extra extension's OID is not an OID),
    /// `Crypto` (openssl failed to sign).
    pub fn sign(
        &self,
        csr: &ValidatedCsr,
        template: &CertificateTemplate,
        policy: &SigningPolicy,
    ) -> Result<IssuedCertificate, PkiError> {
        let subject = self
            .summary
            .check_template_encoding_subject(template, policy)?;
        let serial = crate::generate_serial()?;
        let ca = &self.signature;
        let mut tbs = Vec::with_capacity(1024);
        tbs.extend_from_slice(&[0xa0, 0x03, 0x02, 0x01, 0x02]); // [0] EXPLICIT version v3
        push_unsigned_integer(&mut tbs, serial.magnitude());
        tbs.extend_from_slice(ca.algorithm());
        tbs.extend_from_slice(ca.issuer());
        let mut validity = Vec::with_capacity(40);
        push_time(&mut validity, template.not_before);
        push_time(&mut validity, template.not_after);
        push_tlv(&mut tbs, 0x30, &validity);
        tbs.extend_from_slice(&subject);
        tbs.extend_from_slice(csr.spki_der());

        let mut extensions = Vec::with_capacity(512);
        // CA:FALSE is the DEFAULT, so the value is an empty SEQUENCE.
        push_extension(&mut extensions, oid::BASIC_CONSTRAINTS, true, &[0x30, 0x00]);
        if !template.key_usage.is_empty() {
            let value = key_usage_der(&template.key_usage);
            push_extension(&mut extensions, oid::KEY_USAGE, true, &value);
        }
        if !template.extended_key_usage.is_empty() {
            let value = extended_key_usage_der(&template.extended_key_usage);
            push_extension(&mut extensions, oid::EXTENDED_KEY_USAGE, false, &value);
        }
        if template
            .extended_key_usage
            .contains(&ExtendedKeyUsage::OcspSigning)
        {
            // RFC 6960 4.2.2.2.1: a responder certificate is not itself checked by OCSP.
            let nocheck = der_writer::oid(oid::OCSP_NOCHECK_DOTTED).unwrap_or_default();
            push_extension(&mut extensions, &nocheck, false, &[0x05, 0x00]);
        }
        if !template.subject_alt_names.is_empty() {
            // RFC 5280 4.2.1.6: the SAN extension is critical when the subject is empty.
            let value = general_names_der(&template.subject_alt_names);
            push_extension(
                &mut extensions,
                oid::SUBJECT_ALT_NAME,
                template.subject.is_empty(),
                &value,
            );
        }
        if !template.crl_distribution_points.is_empty() {
            let value = der_writer::crl_distribution_points(&template.crl_distribution_points);
            push_extension(&mut extensions, oid::CRL_DISTRIBUTION_POINTS, false, &value);
        }
        if !template.ocsp_urls.is_empty() || !template.ca_issuer_urls.is_empty() {
            let value =
                der_writer::authority_info_access(&template.ocsp_urls, &template.ca_issuer_urls);
            push_extension(&mut extensions, oid::AUTHORITY_INFO_ACCESS, false, &value);
        }
        for extension in &template.extra_extensions {
            let oid = der_writer::oid(&extension.oid).ok_or_else(|| {
                PkiError::InvalidParameter(format!(
                    "extension OID {:?} is not an OID",
                    extension.oid
                ))
            })?;
            push_extension(&mut extensions, &oid, extension.critical, &extension.value);
        }
        let mut key_id = Vec::with_capacity(22);
        push_tlv(&mut key_id, 0x04, csr.key_identifier());
        push_extension(&mut extensions, oid::SUBJECT_KEY_ID, false, &key_id);
        let mut authority_key_id = Vec::with_capacity(22);
        push_tlv(&mut authority_key_id, 0x80, ca.key_identifier());
        push_extension(
            &mut extensions,
            oid::AUTHORITY_KEY_ID,
            false,
            &sequence(&authority_key_id),
        );
        push_tlv(&mut tbs, 0xa3, &sequence(&extensions));

        let der = ca.sign(sequence(&tbs))?;
        let pem = pem("CERTIFICATE", &der);
        let sha256_fingerprint = hex::encode(openssl::sha::sha256(&der));
        Ok(IssuedCertificate {
            serial,
            der,
            pem,
            not_before: template.not_before,
            not_after: template.not_after,
            sha256_fingerprint,
            subject: template.subject.clone(),
            subject_alt_names: template.subject_alt_names.clone(),
        })
    }
}

/// KeyUsage ::= BIT STRING, DER: trailing zero bits dropped and counted as unused.
fn key_usage_der(usages: &[KeyUsage]) -> Vec<u8> {
    let mut bits = 0u8;
    for usage in usages {
        bits |= 0x80
            >> match usage {
                KeyUsage::DigitalSignature => 0,
                KeyUsage::NonRepudiation => 1,
                KeyUsage::KeyEncipherment => 2,
                KeyUsage::DataEncipherment => 3,
                KeyUsage::KeyAgreement => 4,
            };
    }
    let mut out = Vec::with_capacity(4);
    push_tlv(&mut out, 0x03, &[bits.trailing_zeros().min(7) as u8, bits]);
    out
}

/// ExtKeyUsageSyntax ::= SEQUENCE OF KeyPurposeId (id-kp arcs under 1.3.6.1.5.5.7.3).
fn extended_key_usage_der(purposes: &[ExtendedKeyUsage]) -> Vec<u8> {
    let mut content = Vec::with_capacity(purposes.len() * 10);
    for purpose in purposes {
        let arc = match purpose {
            ExtendedKeyUsage::ServerAuth => 1,
            ExtendedKeyUsage::ClientAuth => 2,
            ExtendedKeyUsage::CodeSigning => 3,
            ExtendedKeyUsage::EmailProtection => 4,
            ExtendedKeyUsage::TimeStamping => 8,
            ExtendedKeyUsage::OcspSigning => 9,
        };
        content.extend_from_slice(&[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, arc]);
    }
    sequence(&content)
}
