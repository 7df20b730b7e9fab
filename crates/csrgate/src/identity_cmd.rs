//! `csrgate identity create|ocsp-signer|revoke|crl|show`: make a CA identity on disk, issue its
//! delegated OCSP responder, revoke what it issued by hand and sign its own CRL, or print what an
//! identity holds.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use csrgate_pki::{
    DistinguishedName, Identity, IdentityFiles, IdentityRequest, IdentitySummary, KeySpec,
    PkiError, ValidityPeriod,
};

use crate::PassphraseArgs;
use crate::exit::{Failure, code};
use crate::passphrase::{self, Prompt};

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Create a CA identity: ca.cert.pem, ca.csr.pem, ca.public_key.pem, and ca.private_key.pem
    /// (PKCS#8 encrypted with AES-256 under the passphrase, mode 0600); with --issuer also
    /// ca.chain.pem. Refuses to overwrite an existing identity.
    ///
    /// Example: csrgate identity create --dir identity -f CN "Example CA" -f O Example -v 10y
    Create {
        /// Directory to write the identity into (created if missing, mode 0700).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// A subject field, repeatable: C, ST, L, O, OU, CN, emailAddress.
        #[arg(short = 'f', long = "field", num_args = 2, value_names = ["KEY", "VALUE"], required = true)]
        field: Vec<String>,
        /// Validity of the CA certificate: a number and a unit, y (365 days), d, h.
        #[arg(short = 'v', long, default_value = "10y", value_name = "PERIOD")]
        validity: ValidityPeriod,
        /// Key type: rsa:2048, rsa:3072, rsa:4096, ec:p256, ec:p384, ed25519.
        #[arg(long, default_value = "ec:p256", value_name = "TYPE")]
        key: KeySpec,
        /// Make an intermediate CA signed by the identity in this directory.
        #[arg(long, value_name = "DIR")]
        issuer: Option<PathBuf>,
        /// Passphrase file of the --issuer identity (else CA_ISSUER_PASSPHRASE, else a prompt).
        #[arg(long, value_name = "FILE", requires = "issuer")]
        issuer_passphrase_file: Option<PathBuf>,
        /// BasicConstraints pathLenConstraint of the new CA.
        #[arg(long, value_name = "N")]
        path_len: Option<u32>,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Issue (or replace) the delegated OCSP responder certificate: a fresh P-256 key and a
    /// certificate from the CA with id-kp-OCSPSigning and id-pkix-ocsp-nocheck (RFC 6960
    /// 4.2.2.2), written to ocsp-signer.crt and ocsp-signer.key (0600, encrypted with the CA
    /// passphrase when the CA key is encrypted). `serve` with ocsp_responder = "delegated"
    /// signs OCSP responses with it and renews it itself when a third of its validity is left.
    ///
    /// Example: csrgate identity ocsp-signer --dir identity --validity 7d
    OcspSigner {
        /// The CA identity directory (the files are written into it).
        #[arg(long, value_name = "DIR", default_value = "identity")]
        dir: PathBuf,
        /// Validity of the responder certificate: short, since nobody checks its revocation.
        #[arg(short = 'v', long, default_value = "7d", value_name = "PERIOD")]
        validity: ValidityPeriod,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Record that this CA revoked a certificate it issued by hand (a root revoking an
    /// intermediate), in <DIR>/ca.revoked.txt; no passphrase needed. `identity crl` then signs
    /// it into the CA's own CRL.
    ///
    /// Example: csrgate identity revoke --dir root --cert old-intermediate/ca.cert.pem --reason keyCompromise
    Revoke {
        /// The issuing CA's identity directory (a root, usually kept offline).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The certificate it issued, PEM.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// RFC 5280 reason: keyCompromise, cACompromise, superseded, cessationOfOperation, ...
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// Sign the CA's own CRL (a root's: its revoked intermediates) into <DIR>/ca.crl.pem, with a
    /// CRL Number of its own (<DIR>/ca.crlnumber). Run it again before the previous one's
    /// nextUpdate; `serve` serves the file given as root_crl at /crl/root.pem and, after its own
    /// CRL, at /crl-chain.pem (gunicorn-equivalent-systemd/csrgate-crl-refresh.timer fetches
    /// that for nginx's ssl_crl).
    ///
    /// Example: csrgate identity crl --dir root --validity 30d
    Crl {
        /// The CA's identity directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// nextUpdate − thisUpdate.
        #[arg(short = 'v', long, default_value = "30d", value_name = "PERIOD")]
        validity: ValidityPeriod,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Print an identity's subject, issuer, key type, validity and fingerprint (no passphrase needed).
    Show {
        /// The identity directory.
        #[arg(long, value_name = "DIR", default_value = "identity")]
        dir: PathBuf,
    },
}

pub fn run(command: IdentityCommand) -> Result<(), Failure> {
    match command {
        IdentityCommand::Create {
            dir,
            field,
            validity,
            key,
            issuer,
            issuer_passphrase_file,
            path_len,
            passphrase,
        } => {
            let pairs: Vec<(&String, &String)> = field
                .chunks_exact(2)
                .map(|pair| (&pair[0], &pair[1]))
                .collect();
            let subject = DistinguishedName::from_fields(&pairs)
                .map_err(|e| Failure::new(code::CONFIG, e))?;
            let request = IdentityRequest {
                subject,
                validity,
                key,
                path_len,
            };
            let issuer = issuer
                .map(|dir| unlock_issuer(&dir, issuer_passphrase_file.as_deref()))
                .transpose()?;
            if IdentityFiles::exists(&dir) {
                return Err(Failure::new(
                    code::CANT_CREATE,
                    PkiError::IdentityExists(dir),
                ));
            }
            let secret = passphrase::resolve(
                passphrase
                    .passphrase_file
                    .as_deref()
                    .map(|path| (path, "--passphrase-file")),
                None,
                Prompt::Twice,
            )
            .map_err(|e| Failure::new(code::NO_PERMISSION, e))?;
            let identity = Identity::create(&dir, &request, &secret, issuer.as_ref())
                .map_err(|e| Failure::new(code::CANT_CREATE, e))?;
            println!("created identity in {}", dir.display());
            print_summary(identity.summary());
            Ok(())
        }
        IdentityCommand::Revoke { dir, cert, reason } => {
            let files = IdentityFiles::open(&dir).map_err(|e| Failure::new(code::NO_INPUT, e))?;
            let reason: csrgate_pki::RevocationReason =
                reason.parse().map_err(|e| Failure::new(code::CONFIG, e))?;
            let pem = std::fs::read(&cert)
                .with_context(|| format!("cannot read {}", cert.display()))
                .map_err(|e| Failure::new(code::NO_INPUT, e))?;
            let facts = csrgate_pki::CertificateFacts::from_pem(&pem)
                .map_err(|e| Failure::new(code::DATA_ERROR, e))?;
            let serial = files
                .record_revocation(&facts.der, reason, time::OffsetDateTime::now_utc())
                .map_err(|e| Failure::new(code::DATA_ERROR, e))?;
            println!(
                "recorded the revocation of {serial} ({reason}) in {}; sign the CRL with `csrgate identity crl --dir {}`",
                dir.join(csrgate_pki::REVOKED_FILE).display(),
                dir.display()
            );
            Ok(())
        }
        IdentityCommand::Crl {
            dir,
            validity,
            passphrase,
        } => {
            let (_, identity) = unlock(&dir, &passphrase)?;
            let crl = identity
                .sign_own_crl(&dir, validity)
                .map_err(|e| Failure::new(code::CANT_CREATE, e))?;
            println!(
                "wrote {}: CRL Number {}, {} entries, nextUpdate {}",
                dir.join(csrgate_pki::CRL_FILE).display(),
                crl.number,
                crl.entries,
                crl.next_update
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            );
            Ok(())
        }
        IdentityCommand::OcspSigner {
            dir,
            validity,
            passphrase,
        } => {
            let (secret, identity) = unlock(&dir, &passphrase)?;
            let signer = identity
                .issue_ocsp_signer(&dir, secret.as_ref(), validity)
                .map_err(|e| Failure::new(code::CANT_CREATE, e))?;
            let when = |t: time::OffsetDateTime| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| t.to_string())
            };
            if let Some(responder) = signer.delegated_responder() {
                println!(
                    "wrote {} and {} in {}",
                    csrgate_pki::OCSP_SIGNER_CERT_FILE,
                    csrgate_pki::OCSP_SIGNER_KEY_FILE,
                    dir.display()
                );
                println!("serial:      {}", responder.serial);
                println!("not after:   {}", when(responder.not_after));
            }
            Ok(())
        }
        IdentityCommand::Show { dir } => {
            let files = IdentityFiles::open(&dir).map_err(|e| Failure::new(code::NO_INPUT, e))?;
            let summary = files
                .summary()
                .map_err(|e| Failure::new(code::NO_INPUT, e))?;
            print_summary(&summary);
            println!(
                "key encrypted: {}",
                if files.key_is_encrypted() {
                    "yes"
                } else {
                    "NO"
                }
            );
            Ok(())
        }
    }
}

/// Opens and unlocks the identity in `dir` with the passphrase from `args` (or a prompt) when
/// its key is encrypted: (the passphrase, the identity).
fn unlock(
    dir: &Path,
    args: &PassphraseArgs,
) -> Result<(Option<csrgate_pki::Passphrase>, Identity), Failure> {
    let files = IdentityFiles::open(dir).map_err(|e| Failure::new(code::NO_INPUT, e))?;
    let secret = if files.key_is_encrypted() {
        Some(
            passphrase::resolve(
                args.passphrase_file
                    .as_deref()
                    .map(|path| (path, "--passphrase-file")),
                None,
                Prompt::Once,
            )
            .map_err(|e| Failure::new(code::NO_PERMISSION, e))?,
        )
    } else {
        None
    };
    let identity = files
        .unlock(secret.as_ref())
        .map_err(|e| Failure::new(code::NO_PERMISSION, e))?;
    Ok((secret, identity))
}

fn unlock_issuer(dir: &Path, passphrase_file: Option<&Path>) -> Result<Identity, Failure> {
    let files = IdentityFiles::open(dir).map_err(|e| Failure::new(code::NO_INPUT, e))?;
    let secret = if files.key_is_encrypted() {
        let from_env = std::env::var("CA_ISSUER_PASSPHRASE").ok();
        let secret = match (passphrase_file, from_env) {
            (Some(file), _) => std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))
                .and_then(|text| Ok(csrgate_pki::Passphrase::new(text)?)),
            (None, Some(text)) => csrgate_pki::Passphrase::new(text).map_err(anyhow::Error::from),
            (None, None) => crate::passphrase::read_from_terminal("issuer CA passphrase: ")
                .context("no issuer passphrase: use --issuer-passphrase-file, CA_ISSUER_PASSPHRASE or a terminal"),
        };
        Some(secret.map_err(|e| Failure::new(code::NO_PERMISSION, e))?)
    } else {
        None
    };
    files
        .unlock(secret.as_ref())
        .map_err(|e| Failure::new(code::NO_PERMISSION, e))
}

fn print_summary(summary: &IdentitySummary) {
    let when = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    println!("subject:     {}", summary.subject);
    println!("issuer:      {}", summary.issuer);
    println!("key:         {}", summary.key);
    println!("serial:      {}", summary.serial);
    println!("not before:  {}", when(summary.not_before));
    println!("not after:   {}", when(summary.not_after));
    println!("sha256:      {}", summary.sha256_fingerprint);
    println!("chain:       {} certificate(s)", summary.chain_length);
}
