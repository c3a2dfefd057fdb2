//! The daemon's HTTP server: one axum router made of one small router per
//! concern, over a listener that keeps a flood of clients from starving the
//! health check.
//!
//! | route | module | who calls it |
//! |---|---|---|
//! | `GET /healthz`, `/readyz`, `/metrics` | [`health`] | load balancers, Prometheus |
//! | `GET /statement/{customer}` | [`statement`] | a customer, from the signed link on a draft |
//! | `GET /review…`, `POST /review/{customer}/{period}/{action}` | [`review`] | finance |
//! | `POST /webhooks/{source}` | [`webhooks`] | a helpdesk: tickets changed |
//! | `POST /webhooks/accounting/{target}` | [`webhooks`] | a ledger: invoices changed |
//!
//! Handlers only read the request and write the answer; what a request
//! means (store these tickets, open this card) is the daemon's
//! ([`crate::daemon`]). Every refusal is an [`ApiError`], whose variant
//! decides the status code.

mod error;
pub mod health;
pub mod listener;
pub mod review;
pub mod statement;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;

use crate::daemon::Bridge;

pub use error::ApiError;
pub use listener::{Limits, listen, serve};

/// Every route, sharing the bridge.
pub fn router(bridge: Arc<Bridge>) -> Router {
    let webhook_limit = bridge
        .settings
        .http
        .as_ref()
        .map_or(1 << 20, |h| h.webhook_max_bytes);
    Router::new()
        .merge(health::routes())
        .merge(statement::routes())
        .merge(review::routes())
        .merge(webhooks::routes(webhook_limit))
        .with_state(bridge)
}

/// Headers of a page meant for one reader: never cached, never indexed,
/// with the page's own referrer policy.
fn private_page(h: &mut axum::http::HeaderMap, referrer: &'static str) {
    use axum::http::{HeaderValue, header};
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static(referrer));
    h.insert("x-robots-tag", HeaderValue::from_static("noindex"));
}
