//! `Expect: 100-continue` (RFC 9110 10.1.1): a request that announces a body larger than
//! `max_body_bytes` gets its 413 at once, instead of `100 Continue` and an upload it would then
//! refuse. Everything else is let through, and actix-http sends `100 Continue`.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_http::{HttpMessage as _, Request};
use actix_service::{Service, ServiceFactory};
use actix_web::http::header::{self, HeaderMap, HeaderValue};

use crate::api_error::ApiError;
use crate::error_code::ErrorCode;
use crate::metrics::Metrics;

/// The expect service of every connection: refuses, before any body is sent, a request whose
/// `Content-Length` is over `max_body_bytes` (bytes), with the same 413 `body_too_large` the
/// handlers give a body they have read, counted in the request metric under the route
/// `expect` (no route has been matched yet).
#[derive(Clone, Debug)]
pub(crate) struct ExpectContinue {
    pub(crate) max_body_bytes: usize,
    pub(crate) metrics: Arc<Metrics>,
}

impl ServiceFactory<Request> for ExpectContinue {
    type Response = Request;
    type Error = actix_web::Error;
    type Config = ();
    type Service = ExpectContinue;
    type InitError = ();
    type Future = Ready<Result<ExpectContinue, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        ready(Ok(self.clone()))
    }
}

impl Service<Request> for ExpectContinue {
    type Response = Request;
    type Error = actix_web::Error;
    type Future = Ready<Result<Request, actix_web::Error>>;

    actix_service::always_ready!();

    fn call(&self, request: Request) -> Self::Future {
        match declared_length(request.headers()) {
            Some(length) if length > self.max_body_bytes as u64 => {
                self.metrics.count_request("expect", 413);
                ready(Err(body_too_large(self.max_body_bytes).into()))
            }
            _ => ready(Ok(request)),
        }
    }
}

/// The body length a request announces (`Content-Length`), if it announces a readable one.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// 413 `body_too_large`: what a body over the limit gets, announced or read.
pub(crate) fn body_too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::BodyTooLarge,
        format!("the request body exceeds {limit} bytes; a CSR is a few KiB"),
    )
}
