//! The `http` target: each push is POSTed as JSON (`{"kind": "draft", …}` or
//! `{"kind": "note", …}`) to `url`, with its idempotency key in the
//! `Idempotency-Key` header and an optional bearer token. It suits a small
//! in-house service, an automation platform, or a test double; the named
//! accounting and helpdesk connectors speak their own APIs.
//!
//! Answers: 2xx is done; 429 is retried after `Retry-After`; 408 and 5xx are
//! retried with backoff; any other status is permanent (a payload the system
//! refuses will not improve by retrying).

use crate::Result;
use std::time::Duration;

use serde::Deserialize;

use crate::{ConnectorError, HttpMethod, HttpRequest, HttpResponse, Push, Secret};

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTargetConfig {
    pub url: String,
    /// Sent as `Authorization: Bearer …` (`env:NAME`, `file:PATH` or literal).
    #[serde(default)]
    pub token: Option<Secret>,
    #[serde(default = "crate::defaults::timeout_ms::<10_000>")]
    pub timeout_ms: u64,
    #[serde(default = "crate::defaults::per_second::<10>")]
    pub requests_per_second: u32,
}

/// When the system throttles without saying for how long.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

pub fn request(c: &HttpTargetConfig, key: &str, push: &Push) -> Result<HttpRequest> {
    let body = serde_json::to_vec(push).map_err(|e| ConnectorError::Permanent(e.to_string()))?;
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("idempotency-key".to_owned(), key.to_owned()),
    ];
    if let Some(token) = &c.token {
        headers.push((
            "authorization".to_owned(),
            format!("Bearer {}", token.expose()),
        ));
    }
    Ok(HttpRequest {
        method: HttpMethod::Post,
        url: c.url.clone(),
        headers,
        body,
        timeout: Duration::from_millis(c.timeout_ms),
    })
}

pub fn accept(r: &HttpResponse) -> Result<()> {
    let said = || {
        let snippet: String = r.body.chars().take(200).collect();
        format!("HTTP {}: {snippet}", r.status)
    };
    match r.status {
        200..=299 => Ok(()),
        429 => Err(ConnectorError::Throttled {
            message: said(),
            retry_after: r.retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        }),
        408 | 500..=599 => Err(ConnectorError::Transient(said())),
        _ => Err(ConnectorError::Permanent(said())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Note, NoteEvent};

    fn response(status: u16, retry_after: Option<u64>) -> HttpResponse {
        HttpResponse {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            body: "nope".into(),
        }
    }

    #[test]
    fn answers_are_done_retried_throttled_or_permanent() {
        assert!(accept(&response(201, None)).is_ok());
        assert!(matches!(
            accept(&response(429, Some(7))),
            Err(ConnectorError::Throttled { retry_after, .. }) if retry_after == Duration::from_secs(7)
        ));
        assert!(matches!(
            accept(&response(503, None)),
            Err(ConnectorError::Transient(_))
        ));
        assert!(
            matches!(accept(&response(422, None)), Err(ConnectorError::Permanent(m)) if m.contains("422"))
        );
    }

    #[test]
    fn a_request_carries_the_key_and_the_token() {
        let c = HttpTargetConfig {
            url: "http://127.0.0.1:9/notes".into(),
            token: Some(Secret::new("t0k")),
            timeout_ms: 500,
            requests_per_second: 1,
        };
        let note = Push::Note(Note {
            source: "desk".into(),
            ticket: "T-1".into(),
            customer: "acme".into(),
            metric: "response".into(),
            event: NoteEvent::Breach,
            due_at: None,
            tag: "sla-breach".into(),
            text: "missed".into(),
            subject: None,
        });
        let r = request(&c, "sla:T-1:response:breach", &note).unwrap();
        assert!(
            r.headers
                .contains(&("idempotency-key".into(), "sla:T-1:response:breach".into()))
        );
        assert!(
            r.headers
                .contains(&("authorization".into(), "Bearer t0k".into()))
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["kind"], "note");
        assert!(!format!("{c:?}").contains("t0k"), "the token never prints");
    }
}
