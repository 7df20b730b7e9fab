//! cdp-aia: a presign plugin that adds the CRL distribution point and AIA (OCSP, CA issuers)
//! URLs, and sets the validity per client hash.
//!
//! Configuration: `crl_url`, `ocsp_url`, `ca_issuers_url` (each optional),
//! `validity_days = { abc123 = 30 }` (optional, per client hash).

use std::collections::BTreeMap;

use csrgate_hook_sdk::{CertificateTemplate, Plugin, SigningRequest};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CdpAia {
    crl_url: Option<String>,
    ocsp_url: Option<String>,
    ca_issuers_url: Option<String>,
    #[serde(default)]
    validity_days: BTreeMap<String, i64>,
}

impl Plugin for CdpAia {
    fn init(config: &str) -> Result<Self, String> {
        let plugin: CdpAia = csrgate_hook_sdk::parse_config(config)?;
        if let Some((client, days)) = plugin.validity_days.iter().find(|(_, d)| **d <= 0) {
            return Err(format!(
                "validity_days for {client} must be positive, not {days}"
            ));
        }
        Ok(plugin)
    }

    fn presign(
        &self,
        request: &SigningRequest,
        mut template: CertificateTemplate,
    ) -> Result<CertificateTemplate, String> {
        if let Some(url) = &self.crl_url {
            csrgate_hook_sdk::add_crl_distribution_point(&mut template, url);
        }
        if let Some(url) = &self.ocsp_url {
            template.ocsp_urls.push(url.clone());
        }
        if let Some(url) = &self.ca_issuers_url {
            template.ca_issuer_urls.push(url.clone());
        }
        if let Some(days) = self.validity_days.get(&request.client_hash) {
            csrgate_hook_sdk::set_validity_days(&mut template, *days);
        }
        Ok(template)
    }
}

csrgate_hook_sdk::export_plugin!(CdpAia);
