//! `POST /webhooks/{source}`: a helpdesk tells us a ticket changed.
//!
//! A request is signed with the source's `webhook_secret`:
//! `X-Bridge-Timestamp` holds Unix seconds and `X-Bridge-Signature` holds
//! `sha256=` and the hex HMAC-SHA256 of `{timestamp}.{body}`. It is refused,
//! changing nothing, when the source takes no webhooks (404), the body is
//! over `http.webhook_max_bytes` (413), it is unsigned or badly signed or
//! its timestamp is outside `http.webhook_replay_window_secs` (401), its
//! content type is not JSON (415), or the body is not a ticket export (400).
//! The same delivery sent again, even at the same instant, is answered 200
//! `duplicate` and changes nothing: the first to claim its id in the store
//! wins (an INSERT … ON CONFLICT DO NOTHING), never two. An accepted request
//! stores its tickets, queues the notes their SLA clocks call for, and
//! answers 202; the outbox pushes the notes. A claimed delivery whose
//! tickets could not be stored is given back (503), so it can be sent again.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};

use super::{Bridge, CycleReport};

pub const TIMESTAMP_HEADER: &str = "x-bridge-timestamp";
pub const SIGNATURE_HEADER: &str = "x-bridge-signature";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The signature header's value for a body sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a request's signature is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Unsigned,
    BadSignature,
    OutsideWindow,
}

/// Checks the signature in constant time and the timestamp against `now`.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    window_secs: i64,
) -> Result<(), Refusal> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(Refusal::Unsigned);
    };
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refusal::BadSignature)?;
    let given = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(Refusal::BadSignature)?;
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).map_err(|_| Refusal::BadSignature)?;
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| Refusal::BadSignature)?;
    // Checked after the signature, so an unsigned caller learns nothing of our clock.
    if (now.timestamp() - ts).abs() > window_secs {
        return Err(Refusal::OutsideWindow);
    }
    Ok(())
}

/// 503 with the error, scrubbed of secrets (it may name a helpdesk URL).
fn unavailable(e: impl std::fmt::Display) -> (StatusCode, String) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{}\n", crate::redact(&e.to_string())),
    )
}

/// The answer to a delivery claimed before: 200, so that the sender stops
/// sending it, and not 202: nothing new was accepted.
pub fn duplicate() -> (StatusCode, String) {
    (
        StatusCode::OK,
        "duplicate: this delivery was already accepted\n".into(),
    )
}

/// `None` when the body may be JSON: the content type says so
/// (`application/json`, `application/…+json`, any parameters) or is not
/// given; otherwise the 415 answer.
pub fn refuse_content_type(headers: &HeaderMap) -> Option<(StatusCode, String)> {
    let given = headers.get(axum::http::header::CONTENT_TYPE)?;
    let essence = given
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    (!json).then(|| {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "webhook bodies are JSON: send Content-Type: application/json\n".into(),
        )
    })
}

pub async fn receive(
    State(bridge): State<Arc<Bridge>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> (StatusCode, String) {
    let answer = match (refuse_content_type(&headers), body) {
        (Some(refused), _) => refused,
        // Over `http.webhook_max_bytes` (413) or cut short: answered here,
        // not by the extractor, so that /metrics counts it.
        (None, Err(rejected)) => (rejected.status(), format!("{}\n", rejected.body_text())),
        (None, Ok(body)) => handle(&bridge, &source, &headers, &body).await,
    };
    bridge.metrics.add_webhook(answer.0.as_u16());
    answer
}

#[tracing::instrument(name = "webhook", skip_all, fields(source))]
async fn handle(
    bridge: &Bridge,
    source: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, String) {
    // The handler's clock read: the replay window is about wall-clock time.
    let now = Utc::now();
    let Some(settings) = bridge.settings.sources.get(source) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no source named `{source}`\n"),
        );
    };
    let Some(secret) = &settings.webhook_secret else {
        return (
            StatusCode::NOT_FOUND,
            format!("source `{source}` takes no webhooks (it has no webhook_secret)\n"),
        );
    };
    if settings.connector.is_helpdesk() {
        let Some(mapping) = bridge.mapping() else {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "no mapping is in force yet\n".into(),
            );
        };
        return match bridge.helpdesk_api(source, &mapping) {
            Ok(api) => {
                helpdesk_webhook(
                    bridge,
                    source,
                    api.as_ref(),
                    secret.expose(),
                    headers,
                    body,
                    now,
                )
                .await
            }
            Err(e) => unavailable(e),
        };
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let window = bridge
        .settings
        .http
        .as_ref()
        .map_or(300, |h| h.webhook_replay_window_secs);
    match verify(
        secret.expose(),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        body,
        now,
        window,
    ) {
        Ok(()) => {}
        Err(Refusal::Unsigned) => {
            return (
                StatusCode::UNAUTHORIZED,
                format!("unsigned: send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}\n"),
            );
        }
        Err(Refusal::BadSignature) => {
            return (StatusCode::UNAUTHORIZED, "bad signature\n".into());
        }
        Err(Refusal::OutsideWindow) => {
            return (
                StatusCode::UNAUTHORIZED,
                format!("timestamp outside the replay window of {window} s\n"),
            );
        }
    }
    let snapshots = match settings.connector.parse_webhook(body) {
        None => {
            return (
                StatusCode::NOT_FOUND,
                format!("source `{source}` takes no webhooks\n"),
            );
        }
        Some(Err(e)) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("{}\n", crate::redact(&e.to_string())),
            );
        }
        Some(Ok(s)) => s,
    };
    let mut errors = Vec::new();
    for t in &snapshots {
        if let Err(e) = super::parse_snapshot("webhook body", &t.json) {
            errors.push(format!("ticket {}: {e}", t.id));
        }
    }
    if !errors.is_empty() {
        return (StatusCode::BAD_REQUEST, errors.join("\n") + "\n");
    }
    // Hex case does not make a new delivery.
    let signature = header(SIGNATURE_HEADER)
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    // The first of identical deliveries claims it; the others, however
    // close behind, are duplicates.
    let forget = now - chrono::Duration::seconds(3 * window);
    match bridge
        .store
        .remember_delivery(source, &signature, now, forget)
        .await
    {
        Ok(true) => {}
        Ok(false) => return duplicate(),
        Err(e) => return unavailable(e),
    }
    let mut report = CycleReport::default();
    let changed = match bridge
        .store_tickets(source, &snapshots, now, &mut errors)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            // Not stored: the sender may deliver it again.
            let _ = bridge.store.forget_delivery(source, &signature).await;
            return unavailable(e);
        }
    };
    let count = changed.len();
    if bridge.mapping().is_some()
        && let Err(e) = bridge.note_tickets(changed, now, &mut report).await
    {
        // The tickets are stored; the SLA tick will note them.
        tracing::warn!("webhook {source}: {}", crate::redact(&e.to_string()));
    }
    (
        StatusCode::ACCEPTED,
        format!(
            "{{\"tickets\":{},\"changed\":{count},\"notes\":{}}}\n",
            snapshots.len(),
            report.notes_queued
        ),
    )
}

/// A helpdesk's own webhook (Zammad's Trigger, …): its signature scheme,
/// its delivery id for replays; the announced tickets are read again from
/// the helpdesk, stored, and noted.
async fn helpdesk_webhook(
    bridge: &Bridge,
    source: &str,
    api: &dyn connectors::helpdesk::HelpdeskApi,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> (StatusCode, String) {
    use connectors::helpdesk::WebhookRefusal;
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let announced = match api.webhook(&pairs, body, secret) {
        Ok(a) => a,
        Err(WebhookRefusal::Unsigned) => return (StatusCode::UNAUTHORIZED, "unsigned\n".into()),
        Err(WebhookRefusal::BadSignature) => {
            return (StatusCode::UNAUTHORIZED, "bad signature\n".into());
        }
        Err(WebhookRefusal::Malformed(m)) => return (StatusCode::BAD_REQUEST, format!("{m}\n")),
    };
    let forget = now - chrono::Duration::days(7);
    match bridge
        .store
        .remember_delivery(source, &announced.delivery, now, forget)
        .await
    {
        Ok(true) => {}
        Ok(false) => return duplicate(),
        Err(e) => return unavailable(e),
    }
    let answer = read_announced(bridge, source, api, &announced, now).await;
    if answer.0 != StatusCode::ACCEPTED {
        // Not (fully) stored: the helpdesk may deliver it again.
        let _ = bridge
            .store
            .forget_delivery(source, &announced.delivery)
            .await;
    }
    answer
}

/// The announced tickets read again from the helpdesk, stored and noted.
async fn read_announced(
    bridge: &Bridge,
    source: &str,
    api: &dyn connectors::helpdesk::HelpdeskApi,
    announced: &connectors::helpdesk::Announcement,
    now: DateTime<Utc>,
) -> (StatusCode, String) {
    let mut batch = Vec::new();
    let mut gone = announced.deleted.clone();
    for id in &announced.tickets {
        let read = async {
            let request = api.ticket(id)?;
            let answer = bridge
                .helpdesk_call(source, api, crate::transport::Safety::Read, request)
                .await?;
            // A ticket announced and then deleted (or merged away and purged).
            if answer.status == 404 {
                return Ok(None);
            }
            api.read_ticket(&answer).map(Some)
        };
        match read.await {
            Ok(Some(t)) => batch.push(t),
            Ok(None) => gone.push(announced.keys.get(id).unwrap_or(id).clone()),
            Err(e) => return unavailable(e),
        }
    }
    let mut deleted = 0;
    for id in &gone {
        match bridge.store.delete_ticket(source, id).await {
            Ok(true) => {
                deleted += 1;
                tracing::warn!(
                    ticket = %id,
                    "source {source}: ticket {id} was deleted in the helpdesk; it is no longer billed (a month already billed with it is corrected at the next close)"
                );
            }
            Ok(false) => {}
            Err(e) => return unavailable(e),
        }
    }
    let mut report = CycleReport::default();
    let mut unread = Vec::new();
    let changed = match bridge
        .store_raw(source, api, &batch, now, &mut report, &mut unread)
        .await
    {
        Ok(n) => n,
        Err(e) => return unavailable(e),
    };
    if let Some(first) = unread.iter().map(|(at, _)| at.clone()).min() {
        // The source is incomplete until these tickets are read: the poll
        // reads again from before the first of them.
        let message = format!(
            "{} announced ticket(s) could not be read, the first: {}",
            unread.len(),
            unread[0].1
        );
        let rewound = match bridge.store.cursor(source).await {
            Ok(Some(c)) if c <= first => Ok(()),
            Ok(_) => bridge.store.set_cursor(source, &first, now).await,
            Err(e) => Err(e),
        };
        let failed = bridge
            .source_failed(source, &message, now, &mut report)
            .await;
        if let Err(e) = rewound {
            return unavailable(e);
        }
        if let Err(e) = failed {
            return unavailable(e);
        }
    }
    (
        StatusCode::ACCEPTED,
        format!(
            "{{\"tickets\":{},\"changed\":{changed},\"deleted\":{deleted},\"notes\":{}}}\n",
            batch.len(),
            report.notes_queued
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_checked_with_its_timestamp_inside_the_window() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ts = now.timestamp();
        let body = br#"{"tickets":[]}"#;
        let sig = sign("k", ts, body);
        let check = |ts: &str, sig: &str, body: &[u8], secret: &str| {
            verify(secret, Some(ts), Some(sig), body, now, 300)
        };
        assert_eq!(check(&ts.to_string(), &sig, body, "k"), Ok(()));
        assert_eq!(
            check(&ts.to_string(), &sig, body, "other"),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            check(&ts.to_string(), &sig, b"{}", "k"),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            check(&(ts + 1).to_string(), &sig, body, "k"),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            check(&ts.to_string(), "sha256=zz", body, "k"),
            Err(Refusal::BadSignature)
        );
        let old = ts - 301;
        assert_eq!(
            check(&old.to_string(), &sign("k", old, body), body, "k"),
            Err(Refusal::OutsideWindow)
        );
        assert_eq!(
            verify("k", None, Some(&sig), body, now, 300),
            Err(Refusal::Unsigned)
        );
    }
}
