//! The balance statement at a signed, expiring link, with no login system:
//! `GET /statement/{customer}?expires=UNIX&sig=HEX`, where `sig` is
//! HMAC-SHA256 (key `report.statement_secret`) over the customer and the
//! expiry. Anything else (no secret configured, no or a malformed
//! signature, a wrong one, an expired link, a customer without a contract)
//! gets the same 403 with an empty body: the answer tells nothing.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;

use super::ApiError;
use crate::daemon::Bridge;

pub fn routes() -> Router<Arc<Bridge>> {
    Router::new().route("/statement/{customer}", get(serve))
}

/// The one refusal: 403 with an empty body (errors are never cached).
fn refused() -> ApiError {
    ApiError::Forbidden(String::new())
}

/// `GET /statement/{customer}`.
pub async fn serve(
    State(bridge): State<Arc<Bridge>>,
    Path(customer): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Some(secret) = &bridge.settings.report.statement_secret else {
        return Err(refused());
    };
    let now = Utc::now();
    if !crate::links::verify(secret, &customer, query.as_deref(), now.timestamp()) {
        return Err(refused());
    }
    let Some(tz) = bridge.mapping().and_then(|m| {
        m.book
            .contracts
            .get(&engine::ticket::CustomerKey::new(customer.as_str()))
            .map(|c| c.tz)
    }) else {
        return Err(refused());
    };
    let month = engine::period::Month::containing(now, tz);
    match bridge
        .report_page(&customer, month, None, Some(now), true)
        .await
    {
        Ok(page) => {
            let mut r = page.html.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            super::private_page(h, "no-referrer");
            Ok(r)
        }
        Err(e) => {
            tracing::error!(
                customer = %customer,
                "statement for {customer}: {}",
                crate::redact(&e.to_string())
            );
            Err(ApiError::Unavailable(
                "the statement cannot be made right now".into(),
            ))
        }
    }
}
