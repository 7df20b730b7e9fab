//! The identity directory on disk: ssl_api's file names, reading and checking what is there,
//! writing new files (synced, with their directory) and unlocking the key.

use super::*;

pub(super) const CERT_FILE: &str = "ca.cert.pem";
/// tiny-ca and some hand-made identities name the certificate this way; accepted on load.
pub(super) const CERT_FILE_ALT: &str = "ca.crt.pem";
pub(super) const CSR_FILE: &str = "ca.csr.pem";
pub(super) const KEY_FILE: &str = "ca.private_key.pem";
pub(super) const PUBLIC_KEY_FILE: &str = "ca.public_key.pem";
pub(super) const CHAIN_FILE: &str = "ca.chain.pem";

impl IdentityFiles {
    /// True when `dir` holds an identity certificate (under either accepted name).
    pub fn exists(dir: &Path) -> bool {
        dir.join(CERT_FILE).exists() || dir.join(CERT_FILE_ALT).exists()
    }

    /// Reads the certificate, chain and (still encrypted) key of the identity in `dir`.
    pub fn open(dir: &Path) -> Result<Self, PkiError> {
        let (certificate, certificate_pem) = read_certificate(dir)?;
        let chain_path = dir.join(CHAIN_FILE);
        let chain_pem = if chain_path.exists() {
            let chain =
                fs::read_to_string(&chain_path).map_err(|e| PkiError::io(&chain_path, e))?;
            let first = X509::stack_from_pem(chain.as_bytes()).map_err(|_| {
                PkiError::identity(dir, format!("{CHAIN_FILE} is not PEM certificates"))
            })?;
            let first_der = first.first().map(|c| c.to_der()).transpose()?;
            if first_der != Some(certificate.to_der()?) {
                return Err(PkiError::identity(
                    dir,
                    format!("{CHAIN_FILE} must start with the CA certificate"),
                ));
            }
            chain
        } else {
            certificate_pem
        };
        let key_path = dir.join(KEY_FILE);
        let key_pem = Zeroizing::new(fs::read(&key_path).map_err(|e| PkiError::io(&key_path, e))?);
        let key_mode = fs::metadata(&key_path)
            .map_err(|e| PkiError::io(&key_path, e))?
            .permissions()
            .mode()
            & 0o777;
        if key_mode & 0o077 != 0 {
            tracing::warn!(
                path = %key_path.display(),
                mode = format!("{key_mode:o}"),
                "SECURITY: the CA private key file is accessible to group or others; chmod 600 it (strict_permissions = true refuses to start)"
            );
        }
        Ok(IdentityFiles {
            dir: dir.to_owned(),
            certificate,
            chain_pem,
            key_path,
            key_pem,
            key_mode,
        })
    }

    /// The key file's permission bits when group or others have any access to it.
    pub fn key_exposed(&self) -> Option<u32> {
        (self.key_mode & 0o077 != 0).then_some(self.key_mode)
    }

    /// True when the key file is encrypted ([`pem_key_is_encrypted`]), i.e. a passphrase is
    /// needed.
    pub fn key_is_encrypted(&self) -> bool {
        pem_key_is_encrypted(&self.key_pem)
    }

    /// Decrypts the key and checks that it belongs to the certificate.
    pub fn unlock(self, passphrase: Option<&Passphrase>) -> Result<Identity, PkiError> {
        if !self.key_is_encrypted() {
            tracing::warn!(
                path = %self.key_path.display(),
                "THE CA PRIVATE KEY IS NOT ENCRYPTED: anyone who can read this file can issue certificates; \
                 re-create the identity or encrypt the key with a passphrase"
            );
        }
        let key = read_private_key(&self.key_pem, &self.key_path, &self.dir, passphrase)?;
        if !self.certificate.public_key()?.public_eq(&key) {
            return Err(PkiError::identity(
                &self.dir,
                format!("{KEY_FILE} does not belong to the CA certificate"),
            ));
        }
        Identity::assemble(self.certificate, key, self.chain_pem)
    }

    /// Public facts about the identity.
    pub fn summary(&self) -> Result<IdentitySummary, PkiError> {
        summarize(&self.certificate, &self.chain_pem)
    }
}

impl fmt::Debug for IdentityFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityFiles")
            .field("dir", &self.dir)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

pub(super) fn read_certificate(dir: &Path) -> Result<(X509, String), PkiError> {
    let path = [CERT_FILE, CERT_FILE_ALT]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.exists())
        .ok_or_else(|| {
            PkiError::identity(
                dir,
                format!("no {CERT_FILE} (or {CERT_FILE_ALT}); create one with `csrgate identity create --dir {}`", dir.display()),
            )
        })?;
    let pem = fs::read_to_string(&path).map_err(|e| PkiError::io(&path, e))?;
    let certificate = X509::from_pem(pem.as_bytes()).map_err(|_| {
        PkiError::identity(dir, format!("{} is not a PEM certificate", path.display()))
    })?;
    let der = certificate.to_der()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| PkiError::identity(dir, "the CA certificate does not parse"))?;
    let is_ca = parsed
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(PkiError::identity(
            dir,
            "the certificate is not a CA certificate (BasicConstraints CA:TRUE missing)",
        ));
    }
    let pem = String::from_utf8_lossy(&certificate.to_pem()?).into_owned();
    Ok((certificate, pem))
}

pub(super) fn summarize(certificate: &X509, chain_pem: &str) -> Result<IdentitySummary, PkiError> {
    let der = certificate.to_der()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| PkiError::Crypto(format!("CA certificate: {e}")))?;
    // The CA's own names are shown, never re-encoded: one that is not text is shown by type.
    let name = |n: &x509_parser::x509::X509Name<'_>| {
        DistinguishedName::from_parsed(n).unwrap_or_else(|_| {
            DistinguishedName::from_attributes(
                n.iter_attributes()
                    .map(|a| NameAttribute {
                        oid: a.attr_type().to_id_string(),
                        value: "<binary>".into(),
                    })
                    .collect(),
            )
        })
    };
    Ok(IdentitySummary {
        subject: name(parsed.subject()),
        issuer: name(parsed.issuer()),
        key: classify_public_key(&*certificate.public_key()?)?,
        not_before: asn1_to_datetime(certificate.not_before())?,
        not_after: asn1_to_datetime(certificate.not_after())?,
        sha256_fingerprint: hex::encode(certificate.digest(MessageDigest::sha256())?),
        serial: crate::serial::display_hex(certificate.serial_number())?,
        chain_length: X509::stack_from_pem(chain_pem.as_bytes())?.len(),
    })
}

pub(super) fn asn1_to_datetime(time: &Asn1TimeRef) -> Result<OffsetDateTime, PkiError> {
    let diff = Asn1Time::from_unix(0)?.diff(time)?;
    OffsetDateTime::from_unix_timestamp(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
        .map_err(|e| PkiError::Crypto(format!("time out of range: {e}")))
}

pub(super) fn asn1_time(time: OffsetDateTime) -> Result<Asn1Time, PkiError> {
    Ok(Asn1Time::from_unix(time.unix_timestamp())?)
}

pub(super) fn create_dir_private(dir: &Path) -> Result<(), PkiError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| PkiError::io(dir, e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| PkiError::io(dir, e))?;
    }
    Ok(())
}

pub(super) fn sync_directory(dir: &Path) -> Result<(), PkiError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| PkiError::io(dir, e))
}

/// Writes `contents` to a temporary file beside `path`, syncs it and renames it over `path`
/// (then syncs the directory), so a reader sees the old file or the new one, never a part.
pub(crate) fn replace_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let temporary = path.with_extension("tmp");
    let _ = fs::remove_file(&temporary);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(|e| PkiError::io(&temporary, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| PkiError::io(&temporary, e))?;
    fs::rename(&temporary, path).map_err(|e| PkiError::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_directory(dir)?;
    }
    Ok(())
}

/// The private key in `pem` (read from `path`): decrypted with `passphrase` when encrypted
/// (`PassphraseRequired` without one, `WrongPassphrase` when it does not open), else plain;
/// `Identity` naming `dir` when it is no PEM key.
pub(crate) fn read_private_key(
    pem: &[u8],
    path: &Path,
    dir: &Path,
    passphrase: Option<&Passphrase>,
) -> Result<PKey<Private>, PkiError> {
    if pem_key_is_encrypted(pem) {
        let passphrase = passphrase.ok_or_else(|| PkiError::PassphraseRequired(path.to_owned()))?;
        return PKey::private_key_from_pem_passphrase(pem, passphrase.as_bytes())
            .map_err(|_| PkiError::WrongPassphrase(path.to_owned()));
    }
    PKey::private_key_from_pem(pem).map_err(|_| {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        PkiError::identity(dir, format!("{name} is not a PEM private key"))
    })
}

pub(super) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| PkiError::io(path, e))?;
    file.write_all(contents)
        .map_err(|e| PkiError::io(path, e))?;
    file.sync_all().map_err(|e| PkiError::io(path, e))
}

/// PEM of a certificate given as DER (for records that keep DER only): RFC 7468's strict
/// form, as openssl writes it (base64 in lines of 64). The DER is not parsed again: records
/// hold what csrgate signed or checked on import; an empty one is refused.
pub fn certificate_pem_from_der(der: &[u8]) -> Result<String, PkiError> {
    if der.is_empty() {
        return Err(PkiError::InvalidParameter("an empty certificate".into()));
    }
    Ok(format!(
        "-----BEGIN CERTIFICATE-----\n{}-----END CERTIFICATE-----\n",
        base64_lines(der)
    ))
}

/// `bytes` in standard base64, in lines of 64 characters each ended by LF: PEM's body (RFC
/// 7468 strict) and EST's answers (RFC 7030 4.1.3, RFC 2045 with LF alone, which `base64 -d`
/// reads).
pub fn base64_lines(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut text = String::with_capacity(encoded.len() + encoded.len() / 64 + 1);
    for line in encoded.as_bytes().chunks(64) {
        // Base64 is ASCII: every chunk is UTF-8.
        text.push_str(std::str::from_utf8(line).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// True when a PEM private key is encrypted: PKCS#8 `ENCRYPTED PRIVATE KEY` (RFC 5958) or a
/// traditional `Proc-Type: 4,ENCRYPTED` block (RFC 1421), the forms OpenSSL writes.
pub fn pem_key_is_encrypted(pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PEM is byte for byte what openssl writes, for certificates of every length class
    /// (DER lengths that are and are not multiples of 48, the base64 line's worth).
    #[test]
    fn certificate_pem_matches_openssl() {
        for (days, cn) in [
            (1, "a"),
            (30, "a-much-longer-common-name.example.test"),
            (7, "bc"),
        ] {
            let key = openssl::pkey::PKey::ec_gen("prime256v1").expect("key");
            let mut name = openssl::x509::X509NameBuilder::new().expect("name");
            name.append_entry_by_text("CN", cn).expect("cn");
            let name = name.build();
            let mut builder = X509::builder().expect("builder");
            builder.set_subject_name(&name).expect("subject");
            builder.set_issuer_name(&name).expect("issuer");
            builder.set_pubkey(&key).expect("pubkey");
            let not_before = openssl::asn1::Asn1Time::days_from_now(0).expect("t");
            let not_after = openssl::asn1::Asn1Time::days_from_now(days).expect("t");
            builder.set_not_before(&not_before).expect("nb");
            builder.set_not_after(&not_after).expect("na");
            builder
                .sign(&key, openssl::hash::MessageDigest::sha256())
                .expect("sign");
            let certificate = builder.build();
            let der = certificate.to_der().expect("der");
            let expected = String::from_utf8(certificate.to_pem().expect("pem")).expect("utf8");
            assert_eq!(certificate_pem_from_der(&der).expect("pem"), expected);
        }
        assert!(certificate_pem_from_der(&[]).is_err());
    }
}
