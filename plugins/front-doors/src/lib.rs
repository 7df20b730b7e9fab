//! front-doors: an authorize plugin that lets requests through only when they came in by one of
//! the configured ways (contract 0.2's `via`): e.g. only ACME, whose names were validated by a
//! challenge, or only EST, whose devices hold credentials, and no anonymous `PUT`.
//!
//! Configuration: `allow = ["acme", "est"]` (of `put`, `est`, `acme`, `generate`).

use csrgate_hook_sdk::{Decision, Plugin, RequestVia, SigningRequest};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontDoors {
    allow: Vec<String>,
}

fn name(via: RequestVia) -> &'static str {
    match via {
        RequestVia::Put => "put",
        RequestVia::Est => "est",
        RequestVia::Acme => "acme",
        RequestVia::Generate => "generate",
        RequestVia::Renew => "renew",
        RequestVia::Cosign => "cosign",
    }
}

impl Plugin for FrontDoors {
    fn init(config: &str) -> Result<Self, String> {
        let doors: FrontDoors = csrgate_hook_sdk::parse_config(config)?;
        for door in &doors.allow {
            if !["put", "est", "acme", "generate"].contains(&door.as_str()) {
                return Err(format!(
                    "allow: {door:?} is not a front door (put, est, acme, generate)"
                ));
            }
        }
        Ok(doors)
    }

    fn authorize(&self, request: &SigningRequest) -> Decision {
        let via = name(request.via);
        if self.allow.iter().any(|door| door == via) {
            Decision::Allow
        } else {
            Decision::Deny(format!(
                "requests via {via} are not accepted here; use {}",
                self.allow.join(" or ")
            ))
        }
    }
}

csrgate_hook_sdk::export_plugin!(FrontDoors);
