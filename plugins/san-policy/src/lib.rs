//! san-policy: an authorize plugin that allows DNS SANs only under configured suffixes and IP
//! SANs only inside configured networks. E-mail and URI SANs are refused unless `allow_other`.
//!
//! Configuration: `dns_suffixes = ["internal", "example.org"]`, `ip_networks = ["10.0.0.0/8"]`,
//! `allow_other = false`.

use csrgate_hook_sdk::{Decision, Plugin, SigningRequest, SubjectAltName};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SanPolicy {
    #[serde(default)]
    dns_suffixes: Vec<String>,
    #[serde(default)]
    ip_networks: Vec<String>,
    #[serde(default)]
    allow_other: bool,
}

impl Plugin for SanPolicy {
    fn init(config: &str) -> Result<Self, String> {
        csrgate_hook_sdk::parse_config(config)
    }

    fn authorize(&self, request: &SigningRequest) -> Decision {
        for san in &request.subject_alt_names {
            let allowed = match san {
                SubjectAltName::Dns(name) => self
                    .dns_suffixes
                    .iter()
                    .any(|suffix| csrgate_hook_sdk::dns_name_under(name, suffix)),
                SubjectAltName::Ip(ip) => self
                    .ip_networks
                    .iter()
                    .any(|net| csrgate_hook_sdk::ip_in_network(ip, net)),
                SubjectAltName::Email(_) | SubjectAltName::Uri(_) => self.allow_other,
            };
            if !allowed {
                return Decision::Deny(format!("SAN {} is outside the allowed names", show(san)));
            }
        }
        Decision::Allow
    }
}

fn show(san: &SubjectAltName) -> String {
    match san {
        SubjectAltName::Dns(v) => format!("DNS:{v}"),
        SubjectAltName::Ip(v) => format!("IP:{v}"),
        SubjectAltName::Email(v) => format!("email:{v}"),
        SubjectAltName::Uri(v) => format!("URI:{v}"),
    }
}

csrgate_hook_sdk::export_plugin!(SanPolicy);
