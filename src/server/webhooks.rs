//! `POST /webhooks/{source}` (a helpdesk: tickets changed) and
//! `POST /webhooks/accounting/{target}` (a ledger: invoices changed).
//!
//! The HTTP side only: a body over `http.webhook_max_bytes` (413) or cut
//! short (400) and a content type that is not JSON (415) are refused here;
//! the signature, the replay and what the delivery means are the daemon's
//! ([`crate::daemon::ingest::webhook`], [`crate::daemon::Bridge::accounting_webhook`]).
//! Every answer, refusals included, is counted in
//! `contract_bridge_webhooks_total` by status.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use super::ApiError;
use crate::daemon::Bridge;
use crate::daemon::ingest::webhook::Accepted;

pub fn routes(body_limit: usize) -> Router<Arc<Bridge>> {
    Router::new()
        .route(
            "/webhooks/accounting/{target}",
            post(accounting).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route(
            "/webhooks/{source}",
            post(helpdesk).layer(DefaultBodyLimit::max(body_limit)),
        )
}

/// The body, when the request may carry JSON: its content type says so
/// (`application/json`, `application/…+json`, any parameters) or is not
/// given. The extractor's refusal is taken as a value, not answered by
/// axum, so that it is counted like the rest.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    if let Some(given) = headers.get(axum::http::header::CONTENT_TYPE) {
        let essence = given
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        let json = essence.is_some_and(|e| {
            e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
        });
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "webhook bodies are JSON: send Content-Type: application/json".into(),
            ));
        }
    }
    Ok(body?)
}

/// The headers as name and value pairs, as connectors read them.
fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// Counts the answer, by status, and sends it.
fn counted(
    bridge: &Bridge,
    answer: Result<(StatusCode, String), ApiError>,
) -> (StatusCode, String) {
    let answer = answer.unwrap_or_else(|e| e.answer());
    bridge.metrics.add_webhook(answer.0.as_u16());
    answer
}

/// `POST /webhooks/{source}`: 202 with what was stored, 200 for a
/// delivery accepted before.
async fn helpdesk(
    State(bridge): State<Arc<Bridge>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> (StatusCode, String) {
    let answer = async {
        let body = json_body(&headers, body)?;
        Ok(
            match bridge
                .receive_webhook(&source, &pairs(&headers), &body)
                .await?
            {
                Accepted::Duplicate => (
                    StatusCode::OK,
                    "duplicate: this delivery was already accepted\n".into(),
                ),
                Accepted::Stored(stored) => (
                    StatusCode::ACCEPTED,
                    format!("{}\n", serde_json::json!(stored)),
                ),
            },
        )
    };
    counted(&bridge, answer.await)
}

/// `POST /webhooks/accounting/{target}`: 200 with an empty body, as
/// Xero's intent-to-receive handshake requires.
async fn accounting(
    State(bridge): State<Arc<Bridge>>,
    Path(target): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> (StatusCode, String) {
    let answer = async {
        let body = json_body(&headers, body)?;
        bridge
            .accounting_webhook(&target, &pairs(&headers), &body)
            .await?;
        Ok((StatusCode::OK, String::new()))
    };
    counted(&bridge, answer.await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn typed(t: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static(t),
        );
        h
    }

    #[test]
    fn a_json_content_type_or_none_is_read_and_another_is_refused_with_415() {
        let body = || Ok(Bytes::from_static(b"{}"));
        for ok in [
            "application/json",
            "application/vnd.api+json; charset=utf-8",
        ] {
            assert!(json_body(&typed(ok), body()).is_ok(), "{ok}");
        }
        assert!(json_body(&HeaderMap::new(), body()).is_ok());
        let refused = json_body(&typed("text/plain"), body()).unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
