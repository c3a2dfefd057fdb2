//! One error type for every route: what went wrong, and so which status
//! the client gets. A handler returns `Result<_, ApiError>`; the body is
//! the message and a newline (empty where the protocol wants it empty, as
//! Xero's webhook handshake does).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::daemon::ingest::webhook::WebhookError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is not what this route reads.
    #[error("{0}")]
    BadRequest(String),
    /// 401: unsigned or badly signed.
    #[error("{0}")]
    Unauthorized(String),
    /// 401 asking a browser to log in (basic auth, the review pages).
    #[error("{0}")]
    LoginRequired(String),
    /// 403: understood and refused (a stale form, a bad link).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such source, target, customer or period.
    #[error("{0}")]
    NotFound(String),
    /// 409: the thing changed under the request.
    #[error("{0}")]
    Conflict(String),
    /// 415: webhook bodies are JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: a form without what the action needs.
    #[error("{0}")]
    Unprocessable(String),
    /// 503: the store, a helpdesk or the mapping is not available now; the
    /// sender may try again. The message is redacted of secrets.
    #[error("{0}")]
    Unavailable(String),
    /// 500: our fault (a page template that does not render).
    #[error("{0}")]
    Internal(String),
    /// An extractor's own refusal (a body over the limit: 413; cut short: 400).
    #[error("{1}")]
    Rejected(StatusCode, String),
}

impl ApiError {
    /// 503 with `e`, scrubbed of secrets (it may name a URL with a password).
    pub fn unavailable(e: impl std::fmt::Display) -> ApiError {
        ApiError::Unavailable(crate::redact(&e.to_string()))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::LoginRequired(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Rejected(status, _) => *status,
        }
    }

    /// The status and body as sent.
    pub fn answer(&self) -> (StatusCode, String) {
        let text = self.to_string();
        let body = if text.is_empty() || text.ends_with('\n') {
            text
        } else {
            format!("{text}\n")
        };
        (self.status(), body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use axum::http::{HeaderValue, header};
        let login = matches!(self, ApiError::LoginRequired(_));
        let mut r = self.answer().into_response();
        let h = r.headers_mut();
        // An error is about this moment: never kept by a cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if login {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Basic realm=\"contract-bridge review\", charset=\"UTF-8\"",
                ),
            );
        }
        r
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> ApiError {
        ApiError::Rejected(r.status(), r.body_text())
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> ApiError {
        match e {
            WebhookError::NotFound(m) => ApiError::NotFound(m),
            WebhookError::Refused(m) => ApiError::Unauthorized(m),
            WebhookError::Malformed(m) => ApiError::BadRequest(m),
            WebhookError::Unavailable(m) => ApiError::Unavailable(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_answers_its_status_with_its_message_on_one_line() {
        let e = ApiError::NotFound("no source named `x`".into());
        assert_eq!(
            e.answer(),
            (StatusCode::NOT_FOUND, "no source named `x`\n".into())
        );
        // Xero's handshake wants a 401 with an empty body.
        assert_eq!(
            ApiError::Unauthorized(String::new()).answer(),
            (StatusCode::UNAUTHORIZED, String::new())
        );
        assert_eq!(
            ApiError::from(WebhookError::Malformed("bad\n".into())).answer(),
            (StatusCode::BAD_REQUEST, "bad\n".into())
        );
    }

    #[test]
    fn an_unavailable_store_is_answered_without_its_password() {
        let e = ApiError::unavailable("connect postgres://bridge:hunter2@db/bridge: refused");
        let (status, body) = e.answer();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body.contains("hunter2"), "{body}");
    }
}
