//! The object identifiers csrgate writes or compares, in one place: each as its DER OBJECT
//! IDENTIFIER TLV (what the writers paste) or, where parsed values are compared, as dotted text.
//! Tables that pair OIDs with a policy (request signature algorithms in `csr.rs`, subject
//! attribute bounds in `name.rs`) keep their OIDs in their rows.

/// basicConstraints (RFC 5280 4.2.1.9).
pub(crate) const BASIC_CONSTRAINTS: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x13];
/// keyUsage (RFC 5280 4.2.1.3).
pub(crate) const KEY_USAGE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0f];
/// extKeyUsage (RFC 5280 4.2.1.12).
pub(crate) const EXTENDED_KEY_USAGE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x25];
/// subjectAltName (RFC 5280 4.2.1.6).
pub(crate) const SUBJECT_ALT_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x11];
/// subjectAltName, dotted, for comparing parsed extensions.
pub(crate) const SUBJECT_ALT_NAME_DOTTED: &str = "2.5.29.17";
/// cRLDistributionPoints (RFC 5280 4.2.1.13).
pub(crate) const CRL_DISTRIBUTION_POINTS: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x1f];
/// authorityInfoAccess (RFC 5280 4.2.2.1).
pub(crate) const AUTHORITY_INFO_ACCESS: &[u8] =
    &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
/// id-ad-ocsp (RFC 5280 4.2.2.1).
pub(crate) const AD_OCSP: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
/// id-ad-caIssuers (RFC 5280 4.2.2.1).
pub(crate) const AD_CA_ISSUERS: &[u8] =
    &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
/// id-pkix-ocsp-basic (RFC 6960 4.2.1): the responseType of a BasicOCSPResponse.
pub(crate) const OCSP_BASIC: &[u8] = &[
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01,
];
/// id-pkix-ocsp-nonce (RFC 6960 4.4.1, RFC 8954).
pub(crate) const OCSP_NONCE: &[u8] = &[
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02,
];
/// id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1), dotted: an extra extension of the delegated
/// responder's certificate.
pub(crate) const OCSP_NOCHECK_DOTTED: &str = "1.3.6.1.5.5.7.48.1.5";
/// subjectKeyIdentifier (RFC 5280 4.2.1.2).
pub(crate) const SUBJECT_KEY_ID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0e];
/// authorityKeyIdentifier (RFC 5280 4.2.1.1).
pub(crate) const AUTHORITY_KEY_ID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x23];
/// cRLNumber (RFC 5280 5.2.3).
pub(crate) const CRL_NUMBER: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x14];
/// reasonCode (RFC 5280 5.3.1).
pub(crate) const REASON_CODE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x15];
/// invalidityDate (RFC 5280 5.3.2).
pub(crate) const INVALIDITY_DATE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x18];
/// id-ecPublicKey (RFC 5480 2.1.1).
pub(crate) const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// secp256r1 (RFC 5480 2.1.1.1).
pub(crate) const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1 (RFC 5480 2.1.1.1).
pub(crate) const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// secp521r1 (RFC 5480 2.1.1.1).
pub(crate) const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
/// Microsoft's legacy attribute for requested extensions (certreq, older Windows and devices):
/// the same `Extensions` as PKCS#9 extensionRequest (1.2.840.113549.1.9.14).
pub(crate) const MS_EXTENSION_REQUEST_DOTTED: &str = "1.3.6.1.4.1.311.2.1.14";

#[cfg(test)]
mod tests {
    use super::*;

    /// Every TLV here is what our encoder writes for its dotted form.
    #[test]
    fn every_oid_is_its_dotted_form() {
        let cases: [(&[u8], &str); 20] = [
            (BASIC_CONSTRAINTS, "2.5.29.19"),
            (KEY_USAGE, "2.5.29.15"),
            (EXTENDED_KEY_USAGE, "2.5.29.37"),
            (SUBJECT_ALT_NAME, SUBJECT_ALT_NAME_DOTTED),
            (CRL_DISTRIBUTION_POINTS, "2.5.29.31"),
            (AUTHORITY_INFO_ACCESS, "1.3.6.1.5.5.7.1.1"),
            (AD_OCSP, "1.3.6.1.5.5.7.48.1"),
            (AD_CA_ISSUERS, "1.3.6.1.5.5.7.48.2"),
            (OCSP_BASIC, "1.3.6.1.5.5.7.48.1.1"),
            (OCSP_NONCE, "1.3.6.1.5.5.7.48.1.2"),
            (SUBJECT_KEY_ID, "2.5.29.14"),
            (AUTHORITY_KEY_ID, "2.5.29.35"),
            (CRL_NUMBER, "2.5.29.20"),
            (REASON_CODE, "2.5.29.21"),
            (INVALIDITY_DATE, "2.5.29.24"),
            (EC_PUBLIC_KEY, "1.2.840.10045.2.1"),
            (P256, "1.2.840.10045.3.1.7"),
            (P384, "1.3.132.0.34"),
            (P521, "1.3.132.0.35"),
            (
                &[
                    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x0e,
                ],
                MS_EXTENSION_REQUEST_DOTTED,
            ),
        ];
        for (der, dotted) in cases {
            assert_eq!(
                crate::der_writer::oid(dotted).as_deref(),
                Some(der),
                "{dotted}"
            );
        }
    }
}
