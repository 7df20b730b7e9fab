//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` attributes and the
//! request/response types (nothing written by hand), served at `GET /openapi.json`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::admin_bodies::{GenerateBody, RenewBody, RevokeBody};
use crate::admin_routes::{self, AuditPage, CertificateList, CertificateView, RevocationView};
use crate::api_error::{ErrorBody, ErrorDetail};
use crate::routes::{self, IssueResponse};

#[derive(OpenApi)]
#[openapi(
    info(title = "csrgate", description = "Certificate authority gateway: PUT a CSR, get a certificate that is already recorded."),
    paths(
        routes::issue,
        routes::issue_ssl_api_path,
        routes::ca_pem,
        routes::health,
        admin_routes::crl_der,
        admin_routes::crl_pem,
        admin_routes::crl_root_pem,
        admin_routes::crl_chain_pem,
        admin_routes::list,
        admin_routes::expiring,
        admin_routes::show,
        admin_routes::chain_pem,
        admin_routes::revoke,
        admin_routes::renew,
        admin_routes::generate,
        admin_routes::cosign,
        admin_routes::delete,
        admin_routes::audit,
        admin_routes::snapshot,
        admin_routes::metrics,
    ),
    components(schemas(IssueResponse, ErrorBody, ErrorDetail, CertificateView, RevocationView, RevokeBody, RenewBody, GenerateBody, CertificateList, AuditPage)),
    modifiers(&BearerAuth),
    tags((name = "public", description = "No authentication"), (name = "admin", description = "Authorization: Bearer <token>"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn json() -> String {
    ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into())
}

pub(crate) async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_covers_public_and_admin_endpoints_and_the_error_body() {
        let document: serde_json::Value = serde_json::from_str(&super::json()).expect("JSON");
        assert!(
            document["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3."))
        );
        let paths = document["paths"].as_object().expect("paths");
        for path in [
            "/{client_hash}",
            "/api/csr/{client_hash}",
            "/ca.pem",
            "/crl",
            "/crl.pem",
            "/health",
            "/certificates",
            "/certificates/expiring",
            "/certificates/{serial}",
            "/certificates/{serial}/revoke",
            "/certificates/{serial}/renew",
            "/certificates/{serial}/chain.pem",
            "/audit",
        ] {
            assert!(paths.contains_key(path), "{path} missing");
        }
        assert!(paths["/certificates/{serial}"]["delete"].is_object());
        let schemas = document["components"]["schemas"]
            .as_object()
            .expect("schemas");
        for schema in [
            "ErrorBody",
            "IssueResponse",
            "CertificateView",
            "RevokeBody",
        ] {
            assert!(schemas.contains_key(schema), "{schema} missing");
        }
        assert!(document["components"]["securitySchemes"]["bearer"].is_object());
        assert!(paths["/certificates/{serial}/revoke"]["post"]["security"].is_array());
        assert!(
            paths["/crl"]["get"]["security"].is_null(),
            "public endpoints need no token"
        );
    }
}
