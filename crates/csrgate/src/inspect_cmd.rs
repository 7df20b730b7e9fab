//! `csrgate inspect FILE`: what a certificate, chain, CSR, CRL, key or PKCS#12 bundle holds, and
//! with `--url` each certificate's status from a running csrgate's OCSP responder.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use csrgate_pki::{Report, ReportKind};
use serde_json::{Map, Value};

use crate::exit::{Failure, code};

/// `csrgate inspect` arguments.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The file: certificate(s), certificate request or CRL (PEM or DER), private key (PEM), or
    /// a PKCS#12 bundle (its password from --password-file, CA_BUNDLE_PASSWORD or a prompt).
    file: PathBuf,
    /// Print a JSON array, one object per part, for scripts.
    #[arg(long)]
    json: bool,
    /// A running csrgate (http://HOST:PORT): each certificate's status from its OCSP
    /// responder (the issuer from the file's chain, else URL/ca.pem).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The CA certificate(s) an https --url is checked against.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// A PKCS#12 bundle's password: the first line of FILE.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

pub fn run(args: InspectArgs) -> Result<(), Failure> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))
        .map_err(|e| Failure::new(code::NO_INPUT, e))?;
    let password = if csrgate_pki::is_pkcs12(&bytes) {
        Some(
            password(args.password_file.as_ref())
                .map_err(|e| Failure::new(code::NO_PERMISSION, e))?,
        )
    } else {
        None
    };
    let reports = csrgate_pki::inspect(&bytes, password.as_deref().map(String::as_str))
        .with_context(|| args.file.display().to_string())
        .map_err(|e| Failure::new(code::DATA_ERROR, e))?;
    let statuses = match &args.url {
        Some(url) => statuses(url, args.cacert.as_ref(), &reports)
            .map_err(|e| Failure::new(code::UNAVAILABLE, e))?,
        None => vec![None; reports.len()],
    };
    if args.json {
        let parts: Vec<Value> = reports
            .iter()
            .zip(&statuses)
            .map(|(report, status)| to_json(report, status.as_deref()))
            .collect();
        println!("{}", Value::Array(parts));
        return Ok(());
    }
    for (i, (report, status)) in reports.iter().zip(&statuses).enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", report.kind.name());
        for (name, value) in &report.fields {
            println!("  {:<20} {value}", name.replace('_', " "));
        }
        if let Some(status) = status {
            println!("  {:<20} {status}", "status (OCSP)");
        }
        for (name, values) in &report.lists {
            if values.is_empty() {
                continue;
            }
            println!("  {}:", name.replace('_', " "));
            for value in values {
                println!("    {value}");
            }
        }
    }
    Ok(())
}

fn to_json(report: &Report, status: Option<&str>) -> Value {
    let mut object = Map::new();
    object.insert("kind".into(), Value::from(report.kind.name()));
    for (name, value) in &report.fields {
        object.insert((*name).into(), Value::from(value.as_str()));
    }
    for (name, values) in &report.lists {
        object.insert((*name).into(), Value::from(values.clone()));
    }
    if let Some(status) = status {
        object.insert("status".into(), Value::from(status));
    }
    Value::Object(object)
}

/// Each report's status (certificates only), from `url`'s OCSP responder.
fn statuses(
    url: &str,
    cacert: Option<&PathBuf>,
    reports: &[Report],
) -> anyhow::Result<Vec<Option<String>>> {
    let base = url.trim_end_matches('/');
    let agent = crate::cert_cmd::public_agent(cacert)?;
    let field = |report: &Report, name: &str| {
        report
            .fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut served_ca: Option<Vec<u8>> = None;
    let mut out = Vec::with_capacity(reports.len());
    for report in reports {
        if report.kind != ReportKind::Certificate {
            out.push(None);
            continue;
        }
        let issuer_name = field(report, "issuer");
        if issuer_name == field(report, "subject") {
            out.push(Some("self-signed: no issuer to ask".into()));
            continue;
        }
        let in_file = reports.iter().find(|other| {
            other.kind == ReportKind::Certificate && field(other, "subject") == issuer_name
        });
        let issuer_der = match in_file {
            Some(issuer) => issuer.der.clone(),
            None => {
                if served_ca.is_none() {
                    let pem = agent
                        .get(format!("{base}/ca.pem"))
                        .call()
                        .with_context(|| format!("cannot reach {base}/ca.pem"))?
                        .body_mut()
                        .read_to_vec()?;
                    let first = csrgate_pki::inspect(&pem, None)
                        .context("the daemon's /ca.pem")?
                        .into_iter()
                        .next()
                        .ok_or_else(|| anyhow!("{base}/ca.pem holds no certificate"))?;
                    served_ca = Some(first.der);
                }
                served_ca.clone().unwrap_or_default()
            }
        };
        if !csrgate_pki::signed_by(&report.der, &issuer_der) {
            out.push(Some(format!(
                "not asked: {} did not sign it",
                if in_file.is_some() {
                    "the issuer in the file"
                } else {
                    "the daemon's CA"
                }
            )));
            continue;
        }
        let request = csrgate_pki::ocsp_request_for(&report.der, &issuer_der)?;
        let mut response = agent
            .post(format!("{base}/ocsp"))
            .content_type("application/ocsp-request")
            .send(request)
            .with_context(|| format!("cannot reach {base}/ocsp"))?;
        let answer = response.body_mut().read_to_vec()?;
        out.push(Some(
            csrgate_pki::ocsp_status_in(&answer, &report.der, &issuer_der)
                .unwrap_or_else(|e| format!("no status: {e}")),
        ));
    }
    Ok(out)
}

/// The bundle password: given (`--password-file`, `CA_BUNDLE_PASSWORD`), else a prompt.
fn password(file: Option<&PathBuf>) -> anyhow::Result<zeroize::Zeroizing<String>> {
    if let Some(given) = crate::passphrase::bundle_password_given(file.map(PathBuf::as_path))? {
        return Ok(given);
    }
    Ok(zeroize::Zeroizing::new(
        rpassword::prompt_password("PKCS#12 password: ")
            .context("a PKCS#12 bundle: give --password-file, CA_BUNDLE_PASSWORD or a terminal")?,
    ))
}
