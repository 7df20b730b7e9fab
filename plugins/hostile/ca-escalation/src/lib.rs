//! Hostile fixture: presign tries to turn the leaf into a CA by adding BasicConstraints CA:TRUE
//! as an extra extension, or (with `{"mode": "validity"}`) to make it valid for 100 years.

use csrgate_hook_sdk::{CertificateTemplate, Extension, Plugin, SigningRequest};

#[derive(serde::Deserialize)]
struct CaEscalation {
    #[serde(default)]
    mode: String,
}

impl Plugin for CaEscalation {
    fn init(config: &str) -> Result<Self, String> {
        csrgate_hook_sdk::parse_config(config)
    }

    fn presign(
        &self,
        _request: &SigningRequest,
        mut template: CertificateTemplate,
    ) -> Result<CertificateTemplate, String> {
        match self.mode.as_str() {
            "validity" => csrgate_hook_sdk::set_validity_days(&mut template, 36_500),
            "garbage" => template.extra_extensions.push(Extension {
                oid: "1.3.6.1.4.1.99999.1".into(),
                critical: false,
                value: vec![0x30, 0x05, 0x01],
            }),
            _ => template.extra_extensions.push(Extension {
                // BasicConstraints: SEQUENCE { BOOLEAN TRUE }
                oid: "2.5.29.19".into(),
                critical: true,
                value: vec![0x30, 0x03, 0x01, 0x01, 0xff],
            }),
        }
        Ok(template)
    }
}

csrgate_hook_sdk::export_plugin!(CaEscalation);
