//! The outbox worker: claims due items of one target, carries them out
//! through the target's connector, and records how each ended.
//!
//! The one HTTP client of the process lives here; connectors only build
//! requests and read answers. Each target has a rate limiter (`governor`)
//! from the requests per second its connector allows. A failure is retried
//! with exponential backoff and jitter; a 429 waits at least its
//! `Retry-After` and pauses the whole target for that long; after
//! `outbox.max_attempts` (or a permanent refusal) the item is dead: `status`
//! shows it and the metrics count it.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::time::Instant;

use connectors::accounting::{AccountingApi, TokenGrant};
use connectors::{ConnectorError, Delivery, Draft, HttpMethod, HttpRequest, HttpResponse, Push};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rust_decimal::Decimal;
use store::Outcome;
use tokio::sync::Notify;

use super::{Bridge, CycleError, CycleReport};
use crate::settings::{OutboxSettings, Settings};

/// Per-target rate limiters and wake-ups, and the HTTP client.
pub(super) struct Workers {
    client: reqwest::Client,
    limiters: BTreeMap<String, DefaultDirectRateLimiter>,
    wake: BTreeMap<String, Arc<Notify>>,
    /// Access tokens of accounting targets, with when to fetch a new one.
    tokens: Mutex<BTreeMap<String, (String, Instant)>>,
}

impl Workers {
    pub fn new(settings: &Settings) -> Result<Workers, CycleError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("contract-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CycleError::Mapping(format!("HTTP client: {e}")))?;
        let mut limiters = BTreeMap::new();
        let mut wake = BTreeMap::new();
        for (name, target) in &settings.targets {
            if let Some(rate) = target.requests_per_second().and_then(NonZeroU32::new) {
                limiters.insert(name.clone(), RateLimiter::direct(Quota::per_second(rate)));
            }
            wake.insert(name.clone(), Arc::new(Notify::new()));
        }
        // A helpdesk is read and written under one limit; notes to it are
        // queued under its source name.
        for (name, source) in &settings.sources {
            if let Some(rate) = source.connector.helpdesk_rate() {
                if let Some(rate) = NonZeroU32::new(rate) {
                    limiters.insert(name.clone(), RateLimiter::direct(Quota::per_second(rate)));
                }
                wake.insert(name.clone(), Arc::new(Notify::new()));
            }
        }
        Ok(Workers {
            client,
            limiters,
            wake,
            tokens: Mutex::new(BTreeMap::new()),
        })
    }

    /// Something was queued for `target`: its worker looks now.
    pub fn wake(&self, target: &str) {
        if let Some(n) = self.wake.get(target) {
            n.notify_one();
        }
    }

    pub fn waker(&self, target: &str) -> Option<Arc<Notify>> {
        self.wake.get(target).cloned()
    }

    /// Every name pushes go to: targets, and helpdesks that take notes.
    pub fn push_targets(&self) -> impl Iterator<Item = &String> {
        self.wake.keys()
    }

    /// Waits for the rate limit of `name`, if it has one.
    pub async fn pace(&self, name: &str) {
        if let Some(limiter) = self.limiters.get(name) {
            limiter.until_ready().await;
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// What a target said of an accepted push.
#[derive(Debug, Default)]
struct Pushed {
    remote_id: Option<String>,
    note: Option<String>,
}

/// How long the target asked us to leave it alone, if it did.
pub(super) type Pause = Option<Duration>;

impl Bridge {
    /// Pushes the items of `target` due at `now()` until none is left or the
    /// target throttles us.
    pub async fn drain(
        &self,
        target: &str,
        now: impl Fn() -> DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<Pause, CycleError> {
        self.drain_until(target, now, report, || false).await
    }

    pub(super) async fn drain_until(
        &self,
        target: &str,
        now: impl Fn() -> DateTime<Utc>,
        report: &mut CycleReport,
        stop: impl Fn() -> bool,
    ) -> Result<Pause, CycleError> {
        while !stop() {
            let Some(claim) = self.store.claim(target, now()).await? else {
                return Ok(None);
            };
            let result = self
                .push(target, &claim.item.key, &claim.item.payload)
                .await;
            let at = now();
            let (outcome, pause) = match result {
                Ok(pushed) => {
                    report.pushed += 1;
                    self.metrics.add_push("sent");
                    if let Some(note) = &pushed.note {
                        eprintln!("warning: {target} {}: {note}", claim.item.key);
                    }
                    (
                        Outcome::Sent {
                            remote_id: pushed.remote_id,
                            note: pushed.note,
                        },
                        None,
                    )
                }
                Err(e) => {
                    let attempts = claim.item.attempts + 1;
                    let dead = matches!(e, ConnectorError::Permanent(_))
                        || attempts >= self.settings.outbox.max_attempts;
                    let mut wait = backoff(&self.settings.outbox, attempts, claim.item.id);
                    let pause = match &e {
                        ConnectorError::Throttled { retry_after, .. } => {
                            // Honoured, up to the longest delay we would wait anyway.
                            let cap = Duration::from_secs_f64(
                                self.settings.outbox.max_delay_secs.max(1.0),
                            );
                            let after = (*retry_after).min(cap);
                            wait = wait.max(after);
                            Some(after)
                        }
                        _ => None,
                    };
                    if dead {
                        report.dead += 1;
                        self.metrics.add_push("dead");
                        eprintln!(
                            "error: {target} {}: gave up: {}",
                            claim.item.key,
                            crate::redact(&e.to_string())
                        );
                    } else {
                        report.retried += 1;
                        self.metrics.add_push("retry");
                    }
                    let next = at + chrono::Duration::from_std(wait).unwrap_or_default();
                    let error = e.to_string();
                    (Outcome::Failed { error, next, dead }, pause)
                }
            };
            claim.finish(outcome, at).await?;
            if pause.is_some() {
                return Ok(pause);
            }
        }
        Ok(None)
    }

    async fn push(&self, target: &str, key: &str, payload: &str) -> Result<Pushed, ConnectorError> {
        let push: Push = serde_json::from_str(payload)
            .map_err(|e| ConnectorError::Permanent(format!("unreadable payload: {e}")))?;
        if self
            .settings
            .sources
            .get(target)
            .is_some_and(|s| s.connector.is_helpdesk())
        {
            // Without a mapping in force the item waits: it is retried.
            let mapping = self
                .mapping()
                .ok_or_else(|| ConnectorError::Transient("no mapping is in force yet".into()))?;
            let api = self
                .helpdesk_api(target, &mapping)
                .map_err(|e| ConnectorError::Transient(e.to_string()))?;
            return match &push {
                Push::Ticket(ticket) => self
                    .push_ticket_to_helpdesk(target, api.as_ref(), key, ticket)
                    .await
                    .map(|id| Pushed {
                        remote_id: Some(id),
                        note: None,
                    }),
                Push::Note(note) => self
                    .push_note_to_helpdesk(target, api.as_ref(), key, note)
                    .await
                    .map(|()| Pushed::default()),
                Push::Draft(_) => Err(ConnectorError::Permanent(format!(
                    "`{target}` is a helpdesk: it takes notes and tickets, not drafts"
                ))),
            };
        }
        let connector = self
            .settings
            .targets
            .get(target)
            .ok_or_else(|| {
                ConnectorError::Permanent(format!("target `{target}` is no longer configured"))
            })?
            .clone();
        if let Some(api) = connector.accounting() {
            let Push::Draft(draft) = &push else {
                return Err(ConnectorError::Permanent(format!(
                    "target `{target}` is an accounting system: it takes drafts, not notes or tickets"
                )));
            };
            return self.push_to_accounting(target, api, key, draft).await;
        }
        let key_owned = key.to_owned();
        let delivery = tokio::task::spawn_blocking(move || {
            let d = connector.deliver(&key_owned, &push);
            (connector, d)
        })
        .await
        .map_err(|e| ConnectorError::Transient(e.to_string()))?;
        let (connector, delivery) = delivery;
        match delivery? {
            Delivery::Done => Ok(Pushed::default()),
            Delivery::Http(request) => {
                if let Some(limiter) = self.outbox.limiters.get(target) {
                    limiter.until_ready().await;
                }
                let response = send(&self.outbox.client, request).await?;
                connector.accept(&response).map(|()| Pushed::default())
            }
        }
    }

    /// A draft into an accounting system: looked up by our reference first,
    /// so a draft created by an attempt whose answer was lost is found, not
    /// created again; created otherwise; read back, and its total compared.
    async fn push_to_accounting(
        &self,
        target: &str,
        api: &dyn AccountingApi,
        key: &str,
        draft: &Draft,
    ) -> Result<Pushed, ConnectorError> {
        let reference = api.reference(key);
        let found = api.read_found(&self.call(target, api, api.find_draft(&reference)?).await?);
        let id = match self.forget_token_on_401(target, found)? {
            Some(existing) => existing.id,
            None => {
                let request = api.create_draft(key, &reference, draft)?;
                let created = api.read_created(&self.call(target, api, request).await?);
                self.forget_token_on_401(target, created)?.id
            }
        };
        // Read back, whether found or created: what the system holds is what we compare.
        let fetched = api.read_fetched(&self.call(target, api, api.fetch_draft(&id)?).await?);
        let remote = self.forget_token_on_401(target, fetched)?;
        self.attach_report(target, api, &remote.id, draft).await?;
        let ours: Decimal = draft.total_net.parse().unwrap_or_default();
        let note = remote
            .total_net
            .filter(|theirs| *theirs != ours)
            .map(|theirs| {
                format!(
                    "{} holds {} {} without tax for {}, we billed {}",
                    api.system(),
                    theirs,
                    draft.currency,
                    remote.id,
                    ours
                )
            });
        Ok(Pushed {
            remote_id: Some(remote.id),
            note,
        })
    }

    /// The period's work report PDF on the draft, where the system takes
    /// attachments: listed first, uploaded only when its name is missing, so
    /// a retry of the push never attaches it twice.
    async fn attach_report(
        &self,
        target: &str,
        api: &dyn AccountingApi,
        id: &str,
        draft: &Draft,
    ) -> Result<(), ConnectorError> {
        let Some(list) = api.list_attachments(id) else {
            return Ok(());
        };
        let pdf = self
            .store
            .report(&draft.customer, &draft.period)
            .await
            .map_err(|e| ConnectorError::Transient(e.to_string()))?
            .and_then(|r| r.pdf);
        let Some(pdf) = pdf else {
            return Ok(());
        };
        let name = format!(
            "report-{}-{}-r{}.pdf",
            draft.customer, draft.period, draft.revision
        );
        let names = api.read_attachments(&self.call(target, api, list).await?);
        if self.forget_token_on_401(target, names)?.contains(&name) {
            return Ok(());
        }
        if let Some(upload) = api.attach(id, &name, "application/pdf", &pdf) {
            let done = api.read_attached(&self.call(target, api, upload).await?, &name);
            self.forget_token_on_401(target, done)?;
        }
        Ok(())
    }

    /// Sends one request to an accounting system with a valid token, at its rate.
    pub(super) async fn call(
        &self,
        target: &str,
        api: &dyn AccountingApi,
        request: HttpRequest,
    ) -> Result<HttpResponse, ConnectorError> {
        // A token can expire between two calls: on a 401 it is fetched
        // again and the call repeated once.
        let mut renewed = false;
        loop {
            let token = self.token(target, api).await?;
            let mut sent = request.clone();
            api.authorize(&mut sent, token.as_deref());
            if let Some(limiter) = self.outbox.limiters.get(target) {
                limiter.until_ready().await;
            }
            let response = send(&self.outbox.client, sent).await?;
            if response.status == 401 && token.is_some() && !renewed {
                renewed = true;
                if let Ok(mut tokens) = self.outbox.tokens.lock() {
                    tokens.remove(target);
                }
                continue;
            }
            return Ok(response);
        }
    }

    /// Drops a cached access token that the system refused.
    pub(super) fn forget_token(&self, name: &str) {
        if let Ok(mut tokens) = self.outbox.tokens.lock() {
            tokens.remove(name);
        }
    }

    pub(super) fn forget_token_on_401<T>(
        &self,
        target: &str,
        r: Result<T, ConnectorError>,
    ) -> Result<T, ConnectorError> {
        if matches!(r, Err(ConnectorError::Unauthorized(_)))
            && let Ok(mut tokens) = self.outbox.tokens.lock()
        {
            tokens.remove(target);
        }
        r
    }

    /// The target's access token, fetched again a minute before it expires.
    pub(super) async fn token<G: TokenGrant + ?Sized>(
        &self,
        target: &str,
        api: &G,
    ) -> Result<Option<String>, ConnectorError> {
        if let Ok(tokens) = self.outbox.tokens.lock()
            && let Some((token, until)) = tokens.get(target)
            && Instant::now() < *until
        {
            return Ok(Some(token.clone()));
        }
        let fresh = if api.rotates() {
            // The refresh token rotates: read the newest under a lock, and
            // store its successor before the access token is used.
            let transient = |e: store::StoreError| ConnectorError::Transient(e.to_string());
            let guard = self
                .store
                .refresh_guard(target, Utc::now())
                .await
                .map_err(transient)?;
            let Some(request) = api.grant_request(guard.current())? else {
                return Ok(None);
            };
            let fresh = api.read_grant(&send(&self.outbox.client, request).await?)?;
            if let Some(next) = &fresh.refresh_token {
                guard.save(next, Utc::now()).await.map_err(transient)?;
            }
            fresh
        } else {
            let Some(request) = api.grant_request(None)? else {
                return Ok(None);
            };
            api.read_grant(&send(&self.outbox.client, request).await?)?
        };
        let until = Instant::now() + fresh.expires_in.saturating_sub(Duration::from_secs(60));
        if let Ok(mut tokens) = self.outbox.tokens.lock() {
            tokens.insert(target.to_owned(), (fresh.token.clone(), until));
        }
        Ok(Some(fresh.token))
    }
}

/// Sends one request; a connection failure or a timeout is transient.
pub(super) async fn send(
    client: &reqwest::Client,
    r: HttpRequest,
) -> Result<HttpResponse, ConnectorError> {
    let method = match r.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
    };
    let mut request = client
        .request(method, &r.url)
        .timeout(r.timeout)
        .body(r.body);
    for (name, value) in &r.headers {
        request = request.header(name, value);
    }
    // Redacted: the URL may hold `user:password@`, reqwest's error repeats it.
    let response = request.send().await.map_err(|e| {
        ConnectorError::Transient(crate::redact(&if e.is_timeout() {
            format!("{}: no answer within {} ms", r.url, r.timeout.as_millis())
        } else {
            format!("{}: {e}", r.url)
        }))
    })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let body = response.text().await.map_err(|e| {
        ConnectorError::Transient(crate::redact(&format!(
            "{}: reading the answer: {e}",
            r.url
        )))
    })?;
    Ok(HttpResponse {
        status,
        retry_after,
        body,
    })
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value.trim()).ok()?;
    // Reading the clock here is the edge: the header names a wall-clock instant.
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

/// Exponential backoff with jitter: `base × 2^(attempts−1)`, capped, plus up
/// to one `base` spread by item so that retries of many items do not align.
pub fn backoff(o: &OutboxSettings, attempts: i64, id: i64) -> Duration {
    let base = o.base_delay_secs.max(0.0);
    let exp = (base * f64::from(1u32 << (attempts - 1).clamp(0, 30) as u32)).min(o.max_delay_secs);
    let mut x = (id as u64) ^ ((attempts as u64) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let jitter = (x % 1_000_000) as f64 / 1_000_000.0 * base;
    Duration::from_secs_f64((exp + jitter).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_at_most_one_base_of_jitter() {
        let o = OutboxSettings {
            max_attempts: 8,
            base_delay_secs: 30.0,
            max_delay_secs: 3600.0,
        };
        for (attempts, exp) in [(1, 30.0), (2, 60.0), (3, 120.0), (10, 3600.0)] {
            for id in 0..50 {
                let d = backoff(&o, attempts, id).as_secs_f64();
                assert!(d >= exp && d < exp + 30.0, "attempt {attempts}: {d}");
            }
        }
        let spread: std::collections::BTreeSet<u64> = (0..50)
            .map(|id| backoff(&o, 1, id).as_millis() as u64)
            .collect();
        assert!(spread.len() > 40, "jitter spreads retries");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            None,
            "a past date"
        );
        assert_eq!(retry_after("soon"), None);
    }
}
