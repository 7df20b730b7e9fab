//! Certs-only CMS SignedData, the "degenerate PKCS#7" of RFC 5652 section 5 with no signer: how
//! EST answers (RFC 7030 4.1.3 `cacerts`, 4.2.3 enrollment). Encoded by RustCrypto's `cms`
//! (decision 0031), with openssl (`pkcs7 -print_certs`) as the referee in the tests.

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use der::asn1::{ObjectIdentifier, SetOfVec};
use der::{Any, Decode as _, Encode as _};

use crate::PkiError;

/// id-signedData (RFC 5652 5.1).
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-data (RFC 5652 4): the (absent) content's type in a certs-only SignedData.
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");

/// A certs-only CMS SignedData, as ContentInfo DER, carrying `certificates` (each DER X.509):
/// version 1, no digest algorithms, no encapsulated content, no signers (RFC 5652 5.1, RFC 7030
/// 4.1.3). The certificates are in DER `SET OF` order, not the order given: readers find the
/// chain by names, as RFC 7030 says clients do.
///
/// # Errors
/// [`PkiError::InvalidParameter`] when a certificate is not DER X.509.
pub fn certs_only_pkcs7(certificates: &[&[u8]]) -> Result<Vec<u8>, PkiError> {
    let invalid = |e: der::Error| PkiError::InvalidParameter(format!("certs-only PKCS#7: {e}"));
    let mut set = SetOfVec::new();
    for der in certificates {
        let certificate = x509_cert::Certificate::from_der(der).map_err(invalid)?;
        set.insert(CertificateChoices::Certificate(certificate))
            .map_err(invalid)?;
    }
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(set)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed_data).map_err(invalid)?,
    }
    .to_der()
    .map_err(invalid)
}

#[cfg(test)]
mod tests {
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509, X509NameBuilder};

    use super::*;

    fn self_signed(common_name: &str) -> Vec<u8> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)
            .expect("cn");
        let name = name.build();
        let mut builder = X509::builder().expect("builder");
        builder.set_version(2).expect("v3");
        builder.set_subject_name(&name).expect("subject");
        builder.set_issuer_name(&name).expect("issuer");
        builder.set_pubkey(&key).expect("key");
        builder
            .set_not_before(&Asn1Time::days_from_now(0).expect("time"))
            .expect("nb");
        builder
            .set_not_after(&Asn1Time::days_from_now(1).expect("time"))
            .expect("na");
        builder.sign(&key, MessageDigest::sha256()).expect("sign");
        builder.build().to_der().expect("der")
    }

    /// openssl reads what we write as a SignedData with exactly the certificates given, no
    /// signer and no content (what `openssl pkcs7 -print_certs` shows EST clients).
    #[test]
    fn openssl_reads_the_certificates_back() {
        for count in [1, 2, 3] {
            let certificates: Vec<Vec<u8>> =
                (0..count).map(|i| self_signed(&format!("c{i}"))).collect();
            let refs: Vec<&[u8]> = certificates.iter().map(Vec::as_slice).collect();
            let der = certs_only_pkcs7(&refs).expect("pkcs7");
            let parsed = openssl::pkcs7::Pkcs7::from_der(&der).expect("openssl parses it");
            assert_eq!(
                parsed.to_der().expect("re-encode"),
                der,
                "openssl re-encodes it alike"
            );
            let signed = parsed.signed().expect("a SignedData");
            let mut found: Vec<Vec<u8>> = signed
                .certificates()
                .expect("certificates")
                .iter()
                .map(|c| c.to_der().expect("der"))
                .collect();
            found.sort();
            let mut expected = certificates.clone();
            expected.sort();
            assert_eq!(found, expected);
            let info = ContentInfo::from_der(&der).expect("ContentInfo");
            assert_eq!(info.content_type, ID_SIGNED_DATA);
            let signed_data: SignedData = info.content.decode_as().expect("SignedData");
            assert!(signed_data.signer_infos.0.is_empty(), "no signer");
            assert!(
                signed_data.encap_content_info.econtent.is_none(),
                "no content"
            );
            assert_eq!(signed_data.version, CmsVersion::V1);
        }
    }

    #[test]
    fn refuses_what_is_not_a_certificate() {
        for bad in [&b""[..], b"\x30\x00", b"not der"] {
            assert!(certs_only_pkcs7(&[bad]).is_err(), "{bad:?}");
        }
    }
}
