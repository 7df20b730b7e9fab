//! The issuer's CRL (`root_crl`): the CRL an intermediate's root signs offline (`csrgate
//! identity crl`), served at `/crl/root.pem` and after csrgate's own at `/crl-chain.pem`, so a
//! relying party that wants a CRL for every level of the chain (nginx `ssl_crl`, Java PKIX) can
//! fetch both. The file is re-read when it changes on disk, and only a CRL the issuer signed is
//! ever served.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use openssl::x509::{X509, X509Crl};

/// When a file was read: its modification time and length.
type Stamp = (SystemTime, u64);

/// The issuer's CRL file and the last good PEM read from it.
#[derive(Debug)]
pub struct IssuerCrl {
    path: PathBuf,
    issuer: X509,
    /// The last good PEM and when its file was read.
    cached: Mutex<Option<(Stamp, Arc<String>)>>,
}

impl IssuerCrl {
    /// Checks `path` against the CA chain `chain_pem` (the CA certificate, then its issuer):
    /// it must be a PEM CRL whose issuer is the CA's issuer and whose signature that issuer's
    /// key verifies. Errors are sentences naming the file.
    pub fn load(path: &Path, chain_pem: &str) -> Result<IssuerCrl, String> {
        let chain = X509::stack_from_pem(chain_pem.as_bytes()).map_err(|e| e.to_string())?;
        let issuer = chain.get(1).cloned().ok_or_else(|| {
            format!(
                "root_crl {}: this CA is a root (its chain has no issuer); its own CRL is /crl",
                path.display()
            )
        })?;
        let loaded = IssuerCrl {
            path: path.to_owned(),
            issuer,
            cached: Mutex::new(None),
        };
        loaded.pem()?;
        Ok(loaded)
    }

    /// The CRL as PEM, re-read and re-checked when the file's modification time or length
    /// changed. A file that no longer checks out keeps the last good CRL served (logged).
    pub fn pem(&self) -> Result<Arc<String>, String> {
        let stamp = std::fs::metadata(&self.path)
            .and_then(|m| Ok((m.modified()?, m.len())))
            .map_err(|e| format!("root_crl {}: {e}", self.path.display()))?;
        let mut cached = match self.cached.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((seen, pem)) = cached.as_ref()
            && *seen == stamp
        {
            return Ok(Arc::clone(pem));
        }
        match self.read() {
            Ok(pem) => {
                let pem = Arc::new(pem);
                *cached = Some((stamp, Arc::clone(&pem)));
                Ok(pem)
            }
            Err(why) => match cached.as_ref() {
                Some((_, pem)) => {
                    tracing::error!(%why, "root_crl changed but does not check out; serving the last good one");
                    Ok(Arc::clone(pem))
                }
                None => Err(why),
            },
        }
    }

    fn read(&self) -> Result<String, String> {
        let path = self.path.display();
        let text =
            std::fs::read_to_string(&self.path).map_err(|e| format!("root_crl {path}: {e}"))?;
        // One CRL, and only what was checked is served (the PEM written again from it).
        if text.matches("-----BEGIN ").count() != 1 {
            return Err(format!(
                "root_crl {path}: must hold exactly one PEM block, the CRL"
            ));
        }
        let crl = X509Crl::from_pem(text.as_bytes())
            .map_err(|_| format!("root_crl {path}: not a PEM CRL"))?;
        let same_issuer = match (
            crl.issuer_name().to_der(),
            self.issuer.subject_name().to_der(),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        let signed = self
            .issuer
            .public_key()
            .and_then(|key| crl.verify(&key))
            .unwrap_or(false);
        if !same_issuer || !signed {
            return Err(format!(
                "root_crl {path}: not a CRL signed by this CA's issuer"
            ));
        }
        let expired = match (crl.next_update(), openssl::asn1::Asn1Time::days_from_now(0)) {
            (Some(next), Ok(now)) => now.diff(next).is_ok_and(|d| d.days < 0 || d.secs < 0),
            _ => false,
        };
        if expired {
            tracing::warn!(path = %path, "root_crl's nextUpdate has passed: relying parties refuse it; sign a new one with `csrgate identity crl`");
        }
        let pem = crl.to_pem().map_err(|e| format!("root_crl {path}: {e}"))?;
        String::from_utf8(pem).map_err(|e| format!("root_crl {path}: {e}"))
    }
}
