//! The CRL a CA signs for the certificates it issued by hand: a root's revoked intermediates.
//! A root's key stays offline, so this is a file workflow in the root's identity directory, in
//! OpenSSL's manner: `ca.revoked.txt` (one revocation per line), `ca.crlnumber` (the next CRL
//! Number, hex, as `openssl ca` keeps it) and the signed `ca.crl.pem`. Relying parties such as
//! nginx's `ssl_crl` and Java's PKIX checker want a CRL for every level of the chain.

use super::*;

/// One revocation per line: `SERIAL_HEX REVOKED_AT NOT_AFTER REASON` (Unix seconds).
pub const REVOKED_FILE: &str = "ca.revoked.txt";
/// The next CRL Number, hex (like OpenSSL's `crlnumber` file).
pub const CRL_NUMBER_FILE: &str = "ca.crlnumber";
/// The latest signed CRL, PEM.
pub const CRL_FILE: &str = "ca.crl.pem";

/// One line of [`REVOKED_FILE`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct OwnRevocation {
    serial: Serial,
    revoked_at: i64,
    not_after: i64,
    reason: crate::RevocationReason,
}

fn read_revocations(dir: &Path) -> Result<Vec<OwnRevocation>, PkiError> {
    let path = dir.join(REVOKED_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PkiError::io(&path, e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|(number, line)| {
            let bad = || {
                PkiError::identity(
                    dir,
                    format!(
                        "{REVOKED_FILE} line {}: expected SERIAL REVOKED_AT NOT_AFTER REASON",
                        number + 1
                    ),
                )
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [serial, revoked_at, not_after, reason] = fields.as_slice() else {
                return Err(bad());
            };
            Ok(OwnRevocation {
                serial: serial.parse().map_err(|_| bad())?,
                revoked_at: revoked_at.parse().map_err(|_| bad())?,
                not_after: not_after.parse().map_err(|_| bad())?,
                reason: reason.parse().map_err(|_| bad())?,
            })
        })
        .collect()
}

impl IdentityFiles {
    /// Records that this CA revoked `certificate_der` (a certificate it issued: an intermediate,
    /// or anything it signed by hand) at `revoked_at` for `reason`, in [`REVOKED_FILE`]; no
    /// passphrase is needed. The next [`Identity::sign_own_crl`] lists it. Errors:
    /// `InvalidParameter` when this CA did not issue it or it is recorded already.
    pub fn record_revocation(
        &self,
        certificate_der: &[u8],
        reason: crate::RevocationReason,
        revoked_at: OffsetDateTime,
    ) -> Result<Serial, PkiError> {
        if !self.issued(certificate_der) {
            return Err(PkiError::InvalidParameter(format!(
                "the certificate was not issued by the CA in {}",
                self.dir.display()
            )));
        }
        let facts = crate::CertificateFacts::from_der(certificate_der)?;
        let mut revocations = read_revocations(&self.dir)?;
        if revocations.iter().any(|r| r.serial == facts.serial) {
            return Err(PkiError::InvalidParameter(format!(
                "serial {} is revoked already",
                facts.serial
            )));
        }
        revocations.push(OwnRevocation {
            serial: facts.serial.clone(),
            revoked_at: revoked_at.unix_timestamp(),
            not_after: facts.not_after.unix_timestamp(),
            reason,
        });
        let mut text = String::from("# serial revoked_at not_after reason (Unix seconds)\n");
        for r in &revocations {
            text.push_str(&format!(
                "{} {} {} {}\n",
                r.serial, r.revoked_at, r.not_after, r.reason
            ));
        }
        replace_file(&self.dir.join(REVOKED_FILE), text.as_bytes(), 0o644)?;
        Ok(facts.serial)
    }
}

impl Identity {
    /// Signs this CA's own CRL from the revocations recorded in `dir` (those not yet expired),
    /// numbered from [`CRL_NUMBER_FILE`] (1 when absent; then incremented and saved before the
    /// CRL is written, so a number is never used twice), valid for `validity` from now (never
    /// past the CA), and writes it to [`CRL_FILE`]. Errors: `Io`, `Identity` for a damaged
    /// file.
    pub fn sign_own_crl(
        &self,
        dir: &Path,
        validity: ValidityPeriod,
    ) -> Result<crate::Crl, PkiError> {
        let now = OffsetDateTime::now_utc();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let entries = read_revocations(dir)?
            .into_iter()
            .filter(|r| r.not_after > now.unix_timestamp())
            .map(|r| {
                Ok(crate::CrlEntry {
                    serial: r.serial,
                    revoked_at: OffsetDateTime::from_unix_timestamp(r.revoked_at).map_err(|e| {
                        PkiError::identity(dir, format!("{REVOKED_FILE}: revocation time: {e}"))
                    })?,
                    reason: r.reason,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let number_path = dir.join(CRL_NUMBER_FILE);
        let number = match fs::read_to_string(&number_path) {
            Ok(text) => u64::from_str_radix(text.trim(), 16).map_err(|_| {
                PkiError::identity(dir, format!("{CRL_NUMBER_FILE} is not a hex number"))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => return Err(PkiError::io(&number_path, e)),
        };
        replace_file(
            &number_path,
            format!("{:02X}\n", number + 1).as_bytes(),
            0o644,
        )?;
        let next_update = (now + validity.as_duration()).min(self.summary.not_after);
        let crl = self.sign_crl(&entries, number, now, next_update)?;
        replace_file(&dir.join(CRL_FILE), crl.pem.as_bytes(), 0o644)?;
        Ok(crl)
    }
}
