//! `csrgate store import-openssl`: adopt the history of a CA run with `openssl ca`. Its database
//! (`index.txt`, one tab-separated line per certificate) says each certificate's status and
//! revocation; `newcerts/<SERIAL>.pem` holds the certificate itself. Each becomes a csrgate
//! record (listed, revocable, in the CRL and OCSP); the `crlnumber` file continues the CRL
//! Numbers. The format is OpenSSL's own (apps/ca.c, `openssl-ca(1)` "FILES"); no crate reads it,
//! and it is six fields of text.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use csrgate_pki::{CertificateFacts, IdentityFiles, RevocationReason};
use csrgate_store::{CertificateRecord, CertificateStatus, Imported, Revocation};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::exit::{Failure, code};

/// Who the audit chain names for imported records.
const ACTOR: &str = "import-openssl";

/// Records between flushes: an interrupted import loses at most these, and is run again.
const FLUSH_EVERY: usize = 1000;

/// One line of `index.txt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// `V`, `R` or `E` (expired: csrgate computes that from notAfter).
    pub(crate) revoked: Option<IndexRevocation>,
    /// The serial as written (upper-case hex).
    pub(crate) serial: String,
    /// The file name column (`unknown` unless `openssl ca -preserveDN`… wrote one).
    pub(crate) file: String,
}

/// The revocation column of a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexRevocation {
    pub(crate) revoked_at: OffsetDateTime,
    pub(crate) reason: RevocationReason,
    pub(crate) invalidity_date: Option<OffsetDateTime>,
}

/// Parses one line of `index.txt` (without its newline). Errors say which field is wrong.
pub(crate) fn parse_index_line(line: &str) -> anyhow::Result<IndexEntry> {
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() != 6 {
        bail!(
            "{} tab-separated fields, openssl ca writes 6 (status, expiry, revocation, serial, file, subject)",
            fields.len()
        );
    }
    let revoked = match fields[0] {
        "V" | "E" => None,
        "R" => Some(parse_revocation(fields[2])?),
        other => bail!("status {other:?} is not V, R or E"),
    };
    if fields[0] != "R" && !fields[2].is_empty() {
        bail!("a revocation date on a certificate marked {}", fields[0]);
    }
    parse_time(fields[1]).context("expiry date")?;
    let serial = fields[3].trim();
    if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("serial {serial:?} is not hex");
    }
    Ok(IndexEntry {
        revoked,
        serial: serial.to_owned(),
        file: fields[4].to_owned(),
    })
}

/// `TIME[,reason[,argument]]` as apps/ca.c writes it: `keyTime`/`CAkeyTime` carry the compromise
/// time (the invalidityDate), `holdInstruction` an OID (the hold is kept as certificateHold).
fn parse_revocation(text: &str) -> anyhow::Result<IndexRevocation> {
    let mut parts = text.split(',');
    let revoked_at = parse_time(parts.next().unwrap_or_default()).context("revocation date")?;
    let reason_text = parts.next();
    let argument = parts.next();
    let mut invalidity_date = None;
    let reason = match reason_text {
        None => RevocationReason::Unspecified,
        Some(name) => match name.to_ascii_lowercase().as_str() {
            "unspecified" => RevocationReason::Unspecified,
            "keycompromise" => RevocationReason::KeyCompromise,
            "cacompromise" => RevocationReason::CaCompromise,
            "affiliationchanged" => RevocationReason::AffiliationChanged,
            "superseded" => RevocationReason::Superseded,
            "cessationofoperation" => RevocationReason::CessationOfOperation,
            "certificatehold" | "holdinstruction" => RevocationReason::CertificateHold,
            "keytime" | "cakeytime" => {
                let when = argument.context("keyTime without the compromise time")?;
                invalidity_date = Some(parse_time(when).context("compromise time")?);
                if name.eq_ignore_ascii_case("keytime") {
                    RevocationReason::KeyCompromise
                } else {
                    RevocationReason::CaCompromise
                }
            }
            "removefromcrl" => {
                bail!("removeFromCRL is a delta-CRL instruction, not a revocation; mark the line V")
            }
            _ => bail!("revocation reason {name:?} is not one openssl ca writes"),
        },
    };
    Ok(IndexRevocation {
        revoked_at,
        reason,
        invalidity_date,
    })
}

/// ASN.1 UTCTime `YYMMDDHHMMSSZ` (years 1950–2049, RFC 5280 4.1.2.5.1) or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`, as `openssl ca` writes dates into its database.
pub(crate) fn parse_time(text: &str) -> anyhow::Result<OffsetDateTime> {
    let digits = text
        .strip_suffix('Z')
        .with_context(|| format!("{text:?} does not end in Z"))?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("{text:?} is not a time");
    }
    let number = |range: std::ops::Range<usize>| -> anyhow::Result<u32> {
        digits
            .get(range)
            .and_then(|d| d.parse().ok())
            .with_context(|| format!("{text:?} is not a time"))
    };
    let (year, rest) = match digits.len() {
        12 => {
            let yy = number(0..2)? as i32;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        14 => (number(0..4)? as i32, 4),
        _ => bail!("{text:?} is neither YYMMDDHHMMSSZ nor YYYYMMDDHHMMSSZ"),
    };
    let month = Month::try_from(number(rest..rest + 2)? as u8)?;
    let date = Date::from_calendar_date(year, month, number(rest + 2..rest + 4)? as u8)?;
    let time = Time::from_hms(
        number(rest + 4..rest + 6)? as u8,
        number(rest + 6..rest + 8)? as u8,
        number(rest + 8..rest + 10)? as u8,
    )?;
    Ok(PrimitiveDateTime::new(date, time).assume_utc())
}

/// The certificate file of an entry: the file column when it names one, else
/// `<certs>/<SERIAL>.pem` (the serial as written, then in lower case).
fn certificate_file(certs: &Path, entry: &IndexEntry) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if entry.file != "unknown" && !entry.file.is_empty() {
        candidates.push(certs.join(&entry.file));
    }
    candidates.push(certs.join(format!("{}.pem", entry.serial)));
    candidates.push(certs.join(format!("{}.pem", entry.serial.to_ascii_lowercase())));
    candidates.into_iter().find(|path| path.is_file())
}

/// What one import did.
#[derive(Debug, Default)]
struct Summary {
    added: u64,
    revoked: u64,
    expired: u64,
    present: u64,
    newly_revoked: u64,
}

/// `csrgate store import-openssl`.
pub(crate) fn run(
    target: &crate::store_location::StoreArgs,
    index: &Path,
    certs: &Path,
    crlnumber: Option<&Path>,
    identity: &Path,
    client_hash: &str,
) -> Result<(), Failure> {
    let input = |e: anyhow::Error| Failure::new(code::DATA_ERROR, e);
    if csrgate_server::ClientHash::parse(client_hash).is_none() {
        return Err(Failure::new(
            code::CONFIG,
            anyhow::anyhow!("--client-hash must be 1 to 128 ASCII letters or digits"),
        ));
    }
    let ca = IdentityFiles::open(identity).map_err(|e| Failure::new(code::NO_INPUT, e))?;
    let text = std::fs::read_to_string(index)
        .with_context(|| format!("cannot read {}", index.display()))
        .map_err(|e| Failure::new(code::NO_INPUT, e))?;
    // Everything is read and checked before the store is touched: a bad line writes nothing.
    let mut records = Vec::new();
    let now = OffsetDateTime::now_utc();
    for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let at = || format!("{}:{}", index.display(), number + 1);
        let entry = parse_index_line(line).with_context(at).map_err(input)?;
        let file = certificate_file(certs, &entry)
            .with_context(|| format!("{}: no {}.pem in {}", at(), entry.serial, certs.display()))
            .map_err(input)?;
        let pem = std::fs::read(&file)
            .with_context(|| format!("cannot read {}", file.display()))
            .map_err(input)?;
        let facts = CertificateFacts::from_pem(&pem)
            .with_context(|| file.display().to_string())
            .map_err(input)?;
        let expected: csrgate_pki::Serial = entry.serial.parse().with_context(at).map_err(input)?;
        if facts.serial != expected {
            return Err(input(anyhow::anyhow!(
                "{}: the certificate in {} has serial {}, the index says {}",
                at(),
                file.display(),
                facts.serial,
                expected
            )));
        }
        if !ca.issued(&facts.der) {
            return Err(input(anyhow::anyhow!(
                "{}: {} was not issued by the CA in {} (wrong --identity, or another CA's index)",
                at(),
                file.display(),
                identity.display()
            )));
        }
        records.push(record(facts, entry.revoked, client_hash));
    }
    let next_crl_number = match crlnumber {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))
                .map_err(|e| Failure::new(code::NO_INPUT, e))?;
            Some(
                u64::from_str_radix(text.trim(), 16)
                    .with_context(|| {
                        format!(
                            "{}: {:?} is not a hex CRL number",
                            path.display(),
                            text.trim()
                        )
                    })
                    .map_err(input)?,
            )
        }
    };

    let runtime = crate::store_location::runtime()?;
    let store =
        crate::store_location::open(&runtime, &target.location(), &target.postgres_files(), true)?;
    let progress = indicatif::ProgressBar::new(records.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} certificates {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut summary = Summary::default();
    let unix = now.unix_timestamp();
    for (i, record) in records.iter().enumerate() {
        let imported = runtime
            .block_on(store.import_certificate(record, ACTOR, unix))
            .map_err(|e| Failure::new(code::CANT_CREATE, e))?;
        match imported {
            Imported::Added => {
                summary.added += 1;
                if record.revocation.is_some() {
                    summary.revoked += 1;
                } else if record.not_after <= unix {
                    summary.expired += 1;
                }
            }
            Imported::AlreadyPresent => summary.present += 1,
            Imported::Revoked => summary.newly_revoked += 1,
        }
        if (i + 1) % FLUSH_EVERY == 0 {
            runtime
                .block_on(store.flush())
                .map_err(|e| Failure::new(code::IO, e))?;
        }
        progress.inc(1);
    }
    if let Some(next) = next_crl_number {
        runtime
            .block_on(store.continue_crl_numbers_from(next))
            .map_err(|e| Failure::new(code::CANT_CREATE, e))?;
    }
    runtime
        .block_on(store.flush())
        .map_err(|e| Failure::new(code::IO, e))?;
    progress.finish_and_clear();
    println!(
        "imported {} certificates ({} revoked, {} expired); {} were stored already; {} stored as valid are now revoked",
        summary.added, summary.revoked, summary.expired, summary.present, summary.newly_revoked
    );
    if let Some(next) = next_crl_number {
        println!("the next CRL Number is at least {next} ({next:#x})");
    }
    Ok(())
}

fn record(
    facts: CertificateFacts,
    revoked: Option<IndexRevocation>,
    client_hash: &str,
) -> CertificateRecord {
    let revocation = revoked.map(|r| Revocation {
        revoked_at: r.revoked_at.unix_timestamp(),
        reason: r.reason,
        invalidity_date: r.invalidity_date.map(OffsetDateTime::unix_timestamp),
        actor: ACTOR.to_owned(),
    });
    CertificateRecord {
        serial: facts.serial,
        client_hash: client_hash.to_owned(),
        subject: facts.subject,
        subject_alt_names: facts.subject_alt_names,
        public_key_sha1: facts.public_key_sha1,
        sha256_fingerprint: facts.sha256_fingerprint,
        not_before: facts.not_before.unix_timestamp(),
        not_after: facts.not_after.unix_timestamp(),
        // openssl ca keeps no issuance time; notBefore is when it signed (no -startdate).
        issued_at: facts.not_before.unix_timestamp(),
        status: if revocation.is_some() {
            CertificateStatus::Revoked
        } else {
            CertificateStatus::Valid
        },
        der: facts.der,
        revocation,
        deleted: false,
        replaces: None,
        replaced_by: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        parse_time(text).expect(text)
    }

    /// Lines as openssl ca writes them, and what each must become.
    #[test]
    fn index_lines() {
        let valid =
            parse_index_line("V\t270101000000Z\t\t1000\tunknown\t/CN=a.example").expect("valid");
        assert_eq!(valid.revoked, None);
        assert_eq!(valid.serial, "1000");
        let cases: &[(&str, RevocationReason, Option<&str>)] = &[
            ("261130120000Z", RevocationReason::Unspecified, None),
            (
                "261130120000Z,keyCompromise",
                RevocationReason::KeyCompromise,
                None,
            ),
            (
                "261130120000Z,CACompromise",
                RevocationReason::CaCompromise,
                None,
            ),
            (
                "261130120000Z,superseded",
                RevocationReason::Superseded,
                None,
            ),
            (
                "261130120000Z,cessationOfOperation",
                RevocationReason::CessationOfOperation,
                None,
            ),
            (
                "261130120000Z,holdInstruction,1.2.840.10040.2.2",
                RevocationReason::CertificateHold,
                None,
            ),
            (
                "261130120000Z,keyTime,20261101000000Z",
                RevocationReason::KeyCompromise,
                Some("20261101000000Z"),
            ),
            (
                "261130120000Z,CAkeyTime,261101000000Z",
                RevocationReason::CaCompromise,
                Some("261101000000Z"),
            ),
        ];
        for (column, reason, invalidity) in cases {
            let line = format!("R\t270101000000Z\t{column}\t0A\tunknown\t/CN=b");
            let entry = parse_index_line(&line).expect(column);
            let revoked = entry.revoked.expect("revoked");
            assert_eq!(revoked.reason, *reason, "{column}");
            assert_eq!(revoked.revoked_at, at("20261130120000Z"), "{column}");
            assert_eq!(revoked.invalidity_date, invalidity.map(at), "{column}");
        }
        for (line, complaint) in [
            ("V\t270101000000Z\t\t1000\tunknown", "fields"),
            ("X\t270101000000Z\t\t1000\tunknown\t/CN=a", "status"),
            (
                "R\t270101000000Z\t\t1000\tunknown\t/CN=a",
                "revocation date",
            ),
            (
                "R\t270101000000Z\tyesterday\t1000\tunknown\t/CN=a",
                "revocation date",
            ),
            (
                "R\t270101000000Z\t261130120000Z,removeFromCRL\t10\tunknown\t/CN=a",
                "removeFromCRL",
            ),
            (
                "R\t270101000000Z\t261130120000Z,bored\t10\tunknown\t/CN=a",
                "bored",
            ),
            (
                "R\t270101000000Z\t261130120000Z,keyTime\t10\tunknown\t/CN=a",
                "compromise time",
            ),
            (
                "V\t270101000000Z\t261130120000Z\t10\tunknown\t/CN=a",
                "revocation date on",
            ),
            ("V\t2701010000Z\t\t10\tunknown\t/CN=a", "expiry"),
            ("V\t270101000000Z\t\tXYZ\tunknown\t/CN=a", "not hex"),
        ] {
            let error = format!("{:#}", parse_index_line(line).expect_err(line));
            assert!(error.contains(complaint), "{line}: {error}");
        }
    }

    #[test]
    fn utc_times_pivot_at_1950() {
        assert_eq!(at("491231235959Z").year(), 2049);
        assert_eq!(at("500101000000Z").year(), 1950);
        assert_eq!(at("20500101000000Z").year(), 2050);
        assert!(parse_time("20261301000000Z").is_err(), "month 13");
        assert!(parse_time("261130120000").is_err(), "no Z");
    }
}
