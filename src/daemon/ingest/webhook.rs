//! What `POST /webhooks/{source}` means: a helpdesk tells us a ticket
//! changed. The HTTP server's `webhooks` routes read the request and
//! answers; this module checks the delivery and stores what it announces.
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

use chrono::{DateTime, Utc};
use connectors::helpdesk::header;
use hmac::{KeyInit, Mac};

use crate::daemon::{Bridge, CycleReport};

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

/// Why a delivery is refused; the server answers each with its status.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No such source or target, or it takes no webhooks.
    #[error("{0}")]
    NotFound(String),
    /// Unsigned, badly signed, or outside the replay window.
    #[error("{0}")]
    Refused(String),
    /// The body is not what the sender's format says.
    #[error("{0}")]
    Malformed(String),
    /// The store, the helpdesk or the mapping is not available now: the
    /// delivery was not kept, and may be sent again.
    #[error("{0}")]
    Unavailable(String),
}

impl WebhookError {
    /// Unavailable, with `e` scrubbed of secrets (it may name a helpdesk URL).
    pub fn unavailable(e: impl std::fmt::Display) -> WebhookError {
        WebhookError::Unavailable(crate::redact(&e.to_string()))
    }
}

impl From<connectors::helpdesk::WebhookRefusal> for WebhookError {
    fn from(r: connectors::helpdesk::WebhookRefusal) -> WebhookError {
        use connectors::helpdesk::WebhookRefusal;
        match r {
            WebhookRefusal::Unsigned => WebhookError::Refused("unsigned".into()),
            // Empty: Xero's intent-to-receive handshake wants an empty 401.
            WebhookRefusal::BadSignature => WebhookError::Refused(String::new()),
            WebhookRefusal::Malformed(m) => WebhookError::Malformed(m),
            WebhookRefusal::NotTaken(m) => WebhookError::NotFound(m),
        }
    }
}

/// A delivery taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Claimed before: nothing new (the sender may stop sending it).
    Duplicate,
    /// Its tickets stored and their notes queued.
    Stored(Stored),
}

/// What an accepted delivery changed.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct Stored {
    pub tickets: usize,
    pub changed: usize,
    /// Tickets the helpdesk says are gone (helpdesk webhooks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<usize>,
    pub notes: usize,
}

impl Bridge {
    /// A delivery to `POST /webhooks/{source}`, checked and stored.
    pub async fn receive_webhook(
        &self,
        source: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Accepted, WebhookError> {
        handle(self, source, headers, body).await
    }
}

#[tracing::instrument(name = "webhook", skip_all, fields(source))]
async fn handle(
    bridge: &Bridge,
    source: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Accepted, WebhookError> {
    // The handler's clock read: the replay window is about wall-clock time.
    let now = Utc::now();
    let settings = bridge
        .settings
        .sources
        .get(source)
        .ok_or_else(|| WebhookError::NotFound(format!("no source named `{source}`")))?;
    let secret = settings.webhook_secret.as_ref().ok_or_else(|| {
        WebhookError::NotFound(format!(
            "source `{source}` takes no webhooks (it has no webhook_secret)"
        ))
    })?;
    if settings.connector.is_helpdesk() {
        let mapping = bridge
            .mapping()
            .ok_or_else(|| WebhookError::Unavailable("no mapping is in force yet".into()))?;
        let api = bridge
            .helpdesk_api(source, &mapping)
            .map_err(WebhookError::unavailable)?;
        return helpdesk_webhook(
            bridge,
            source,
            api.as_ref(),
            secret.expose(),
            headers,
            body,
            now,
        )
        .await;
    }
    let header = |name: &str| header(headers, name);
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
            return Err(WebhookError::Refused(format!(
                "unsigned: send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}"
            )));
        }
        Err(Refusal::BadSignature) => {
            return Err(WebhookError::Refused("bad signature".into()));
        }
        Err(Refusal::OutsideWindow) => {
            return Err(WebhookError::Refused(format!(
                "timestamp outside the replay window of {window} s"
            )));
        }
    }
    let snapshots = match settings.connector.parse_webhook(body) {
        None => {
            return Err(WebhookError::NotFound(format!(
                "source `{source}` takes no webhooks"
            )));
        }
        Some(Err(e)) => return Err(WebhookError::Malformed(crate::redact(&e.to_string()))),
        Some(Ok(s)) => s,
    };
    let mut errors = Vec::new();
    for t in &snapshots {
        if let Err(e) = crate::daemon::parse_snapshot("webhook body", &t.json) {
            errors.push(format!("ticket {}: {e}", t.id));
        }
    }
    if !errors.is_empty() {
        return Err(WebhookError::Malformed(errors.join("\n")));
    }
    // Hex case does not make a new delivery.
    let signature = header(SIGNATURE_HEADER)
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    // The first of identical deliveries claims it; the others, however
    // close behind, are duplicates.
    let forget = now - chrono::Duration::seconds(3 * window);
    if !bridge
        .store
        .remember_delivery(source, &signature, now, forget)
        .await
        .map_err(WebhookError::unavailable)?
    {
        return Ok(Accepted::Duplicate);
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
            return Err(WebhookError::unavailable(e));
        }
    };
    let count = changed.len();
    if bridge.mapping().is_some()
        && let Err(e) = bridge.note_tickets(changed, now, &mut report).await
    {
        // The tickets are stored; the SLA tick will note them.
        tracing::warn!("webhook {source}: {}", crate::redact(&e.to_string()));
    }
    Ok(Accepted::Stored(Stored {
        tickets: snapshots.len(),
        changed: count,
        deleted: None,
        notes: report.notes_queued,
    }))
}

/// A helpdesk's own webhook (Zammad's Trigger, …): its signature scheme,
/// its delivery id for replays; the announced tickets are read again from
/// the helpdesk, stored, and noted.
async fn helpdesk_webhook(
    bridge: &Bridge,
    source: &str,
    api: &dyn connectors::helpdesk::HelpdeskApi,
    secret: &str,
    headers: &[(String, String)],
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Accepted, WebhookError> {
    let announced = api.webhook(headers, body, secret)?;
    let forget = now - chrono::Duration::days(7);
    if !bridge
        .store
        .remember_delivery(source, &announced.delivery, now, forget)
        .await
        .map_err(WebhookError::unavailable)?
    {
        return Ok(Accepted::Duplicate);
    }
    let answer = read_announced(bridge, source, api, &announced, now).await;
    if answer.is_err() {
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
) -> Result<Accepted, WebhookError> {
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
            Err(e) => return Err(WebhookError::unavailable(e)),
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
            Err(e) => return Err(WebhookError::unavailable(e)),
        }
    }
    let mut report = CycleReport::default();
    let mut unread = Vec::new();
    let changed = bridge
        .store_raw(source, api, &batch, now, &mut report, &mut unread)
        .await
        .map_err(WebhookError::unavailable)?;
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
        rewound.map_err(WebhookError::unavailable)?;
        failed.map_err(WebhookError::unavailable)?;
    }
    Ok(Accepted::Stored(Stored {
        tickets: batch.len(),
        changed,
        deleted: Some(deleted),
        notes: report.notes_queued,
    }))
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
