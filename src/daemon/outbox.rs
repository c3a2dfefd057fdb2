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
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::time::Instant;

use connectors::accounting::{AccountingApi, TokenGrant};
use connectors::{
    ConnectorError, Delivery, Draft, HttpRequest, HttpResponse, Push, ReportAttachment,
};
use rust_decimal::Decimal;
use store::Outcome;
use tokio::sync::Notify;

use super::{Bridge, CycleError, CycleReport};
use crate::settings::{OutboxSettings, Settings};
use crate::transport::{Safety, Transport};

/// Per-target wake-ups and access tokens, and the one transport.
pub(super) struct Workers {
    transport: Transport,
    wake: BTreeMap<String, Arc<Notify>>,
    /// Access tokens of accounting targets, with when to fetch a new one.
    tokens: Mutex<BTreeMap<String, (String, Instant)>>,
    /// The organisation `connect` chose, by target, for targets whose
    /// configuration names none (read with the grant at each refresh).
    tenants: Mutex<BTreeMap<String, String>>,
}

impl Workers {
    pub fn new(settings: &Settings) -> Result<Workers, CycleError> {
        let mut rates = Vec::new();
        let mut wake = BTreeMap::new();
        for (name, target) in &settings.targets {
            if let Some(rate) = target.requests_per_second() {
                rates.push((name.clone(), rate));
            }
            wake.insert(name.clone(), Arc::new(Notify::new()));
        }
        // A helpdesk is read and written under one limit; notes to it are
        // queued under its source name.
        for (name, source) in &settings.sources {
            if let Some(rate) = source.connector.helpdesk_rate() {
                rates.push((name.clone(), rate));
                wake.insert(name.clone(), Arc::new(Notify::new()));
            }
        }
        let transport = Transport::new(settings.retry.clone(), rates)
            .map_err(|e| CycleError::HttpClient(e.to_string()))?;
        Ok(Workers {
            transport,
            wake,
            tokens: Mutex::new(BTreeMap::new()),
            tenants: Mutex::new(BTreeMap::new()),
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

    pub fn transport(&self) -> &Transport {
        &self.transport
    }
}

/// What a target said of an accepted push.
#[derive(Debug, Default)]
struct Pushed {
    remote_id: Option<String>,
    note: Option<String>,
    /// An item to queue once this one is sent, `(key, payload)`: a draft's report PDF.
    then: Option<(String, String)>,
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

    pub(crate) async fn drain_until(
        &self,
        target: &str,
        now: impl Fn() -> DateTime<Utc>,
        report: &mut CycleReport,
        stop: impl Fn() -> bool,
    ) -> Result<Pause, CycleError> {
        let lease = Duration::from_secs_f64(self.settings.outbox.lease_secs.max(1.0));
        let batch = self.batch_size(target);
        while !stop() {
            let claims = self.store.claim_many(target, now(), batch, lease).await?;
            if claims.is_empty() {
                return Ok(None);
            }
            let results = if claims.len() == 1 {
                let mut results = Vec::new();
                for claim in claims {
                    let r = self
                        .push(target, &claim.item.key, &claim.item.payload)
                        .await;
                    results.push((claim, r));
                }
                results
            } else {
                self.push_batch(target, claims).await
            };
            let mut pause = None;
            for (claim, result) in results {
                let at = now();
                let (outcome, p) = self.outcome(target, &claim, result, at, report).await?;
                claim.finish(outcome, at).await?;
                pause = pause.or(p);
            }
            if pause.is_some() {
                return Ok(pause);
            }
        }
        Ok(None)
    }

    /// How many items of `target` one pass claims: the batch its system
    /// takes (capped by `outbox.batch`), else one.
    fn batch_size(&self, target: &str) -> usize {
        self.settings
            .targets
            .get(target)
            .and_then(|t| t.accounting())
            .map_or(1, |api| api.batch_size().min(self.settings.outbox.batch))
            .max(1)
    }

    /// How a push ended, for the store, and how long the target asked us
    /// to pause, if it did.
    async fn outcome(
        &self,
        target: &str,
        claim: &store::Claim,
        result: Result<Pushed, ConnectorError>,
        at: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(Outcome, Pause), CycleError> {
        Ok(match result {
            Ok(pushed) => {
                // Queued before the draft is marked sent: should we stop
                // in between, the draft's retry queues the same key again.
                if let Some((key, payload)) = &pushed.then {
                    self.store.enqueue(target, key, payload, at).await?;
                }
                report.pushed += 1;
                self.metrics.add_push("sent");
                if let Some(subject) = crate::review::draft_subject(&claim.item.key) {
                    self.store
                        .audit(&store::AuditEntry {
                            at,
                            actor: "daemon".into(),
                            action: "draft_pushed".into(),
                            subject,
                            detail: serde_json::json!({
                                "key": claim.item.key,
                                "target": target,
                                "remote_id": pushed.remote_id,
                                "attempts": claim.item.attempts + 1,
                            }),
                        })
                        .await?;
                }
                if let Some(note) = &pushed.note {
                    tracing::warn!(target, key = %claim.item.key, "{target} {}: {note}", claim.item.key);
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
                // A revoked grant fails every item alike until someone
                // runs `connect`: the items wait (none is given up on)
                // and this pass stops.
                let revoked = matches!(e, ConnectorError::Permanent(_))
                    && self
                        .store
                        .grant(target)
                        .await?
                        .is_some_and(|g| g.revoked.is_some());
                let dead = !revoked
                    && (matches!(e, ConnectorError::Permanent(_))
                        || attempts >= self.settings.outbox.max_attempts);
                let mut wait = backoff(&self.settings.outbox, attempts, claim.item.id);
                if revoked {
                    wait = Duration::from_secs_f64(self.settings.outbox.max_delay_secs.max(1.0));
                    tracing::error!(target, error = %crate::redact(&e.to_string()), "grant revoked: pushes wait");
                }
                let pause = match &e {
                    ConnectorError::Throttled { retry_after, .. } => {
                        // Honoured, up to the longest delay we would wait anyway.
                        let cap =
                            Duration::from_secs_f64(self.settings.outbox.max_delay_secs.max(1.0));
                        let after = (*retry_after).min(cap);
                        wait = wait.max(after);
                        Some(after)
                    }
                    _ if revoked => Some(wait),
                    _ => None,
                };
                if dead {
                    report.dead += 1;
                    self.metrics.add_push("dead");
                    if claim.item.key.starts_with("attach:") {
                        self.metrics.add_attachment_failed();
                    }
                    tracing::error!(
                        target,
                        key = %claim.item.key,
                        "{target} {}: gave up: {}",
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
        })
    }

    /// Several claimed items of one accounting target: the drafts go in one
    /// lookup and one create request (issue 19), each draft keeping its own
    /// outcome: one the system refuses fails alone, with its message; the
    /// others are sent once. Other items (attachments) go one at a time.
    async fn push_batch(
        &self,
        target: &str,
        claims: Vec<store::Claim>,
    ) -> Vec<(store::Claim, Result<Pushed, ConnectorError>)> {
        let mut done = Vec::new();
        let mut drafts: Vec<(store::Claim, Draft)> = Vec::new();
        for claim in claims {
            match serde_json::from_str::<Push>(&claim.item.payload) {
                Ok(Push::Draft(d)) => drafts.push((claim, d)),
                _ => {
                    let r = self
                        .push(target, &claim.item.key, &claim.item.payload)
                        .await;
                    done.push((claim, r));
                }
            }
        }
        let api = self
            .settings
            .targets
            .get(target)
            .and_then(|t| t.accounting().map(|_| t.clone()));
        let Some(config) = api else {
            for (claim, _) in drafts {
                let r = self
                    .push(target, &claim.item.key, &claim.item.payload)
                    .await;
                done.push((claim, r));
            }
            return done;
        };
        let Some(api) = config.accounting() else {
            return done;
        };
        if drafts.len() == 1 {
            for (claim, d) in drafts {
                let r = self
                    .push_to_accounting(target, api, &claim.item.key, &d)
                    .await;
                done.push((claim, r));
            }
            return done;
        }
        let results = self.push_drafts(target, api, &drafts).await;
        done.extend(drafts.into_iter().map(|(c, _)| c).zip(results));
        done
    }

    /// The drafts' outcomes, in their order: looked up by reference in one
    /// request (a draft created by an attempt whose answer was lost is
    /// found, not created again), the rest created in one request.
    async fn push_drafts(
        &self,
        target: &str,
        api: &dyn AccountingApi,
        drafts: &[(store::Claim, Draft)],
    ) -> Vec<Result<Pushed, ConnectorError>> {
        let all = |e: ConnectorError| drafts.iter().map(|_| Err(e.clone())).collect();
        let references: Vec<String> = drafts
            .iter()
            .map(|(c, _)| api.reference(&c.item.key))
            .collect();
        let refs: Vec<&str> = references.iter().map(String::as_str).collect();
        let found = match api.find_drafts(&refs) {
            Ok(request) => match self.call(target, api, request).await {
                Ok(r) => self.forget_token_on_401(target, api.read_found_drafts(&r)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let found: BTreeMap<String, connectors::accounting::RemoteDraft> = match found {
            Ok(f) => f.into_iter().collect(),
            Err(e) => return all(e),
        };
        let mut outcomes: Vec<Option<Result<connectors::accounting::RemoteDraft, ConnectorError>>> =
            references
                .iter()
                .map(|r| found.get(r).cloned().map(Ok))
                .collect();
        let mut keys = Vec::new();
        let mut items = Vec::new();
        let mut sent: Vec<usize> = Vec::new();
        for (i, (claim, d)) in drafts.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            match api.batch_item(&claim.item.key, &references[i], d) {
                Ok(item) => {
                    keys.push(claim.item.key.as_str());
                    items.push(item);
                    sent.push(i);
                }
                Err(e) => outcomes[i] = Some(Err(e)),
            }
        }
        if !items.is_empty() {
            let created = match api.create_drafts(&keys, items) {
                Ok(request) => match self.call(target, api, request).await {
                    Ok(r) => self.forget_token_on_401(target, api.read_created_drafts(&r)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match created {
                Ok(created) => {
                    let created: BTreeMap<String, Result<_, String>> =
                        created.into_iter().collect();
                    for i in sent {
                        outcomes[i] = Some(match created.get(&references[i]) {
                            Some(Ok(remote)) => Ok(remote.clone()),
                            Some(Err(said)) => Err(ConnectorError::Permanent(said.clone())),
                            None => Err(ConnectorError::Transient(format!(
                                "{}: the answer to the batch does not mention reference {}",
                                api.system(),
                                references[i]
                            ))),
                        });
                    }
                }
                Err(e) => {
                    for i in sent {
                        outcomes[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        let mut results = Vec::with_capacity(drafts.len());
        for ((claim, draft), outcome) in drafts.iter().zip(outcomes) {
            let remote = match outcome {
                Some(Ok(remote)) => remote,
                Some(Err(e)) => {
                    results.push(Err(e));
                    continue;
                }
                None => {
                    results.push(Err(ConnectorError::Transient("not pushed".into())));
                    continue;
                }
            };
            results.push(self.accepted(api, &claim.item.key, draft, remote).await);
        }
        results
    }

    /// What an accepted draft leaves: its remote id, a total the system
    /// holds differently (kept as a note) and the report's attachment item.
    async fn accepted(
        &self,
        api: &dyn AccountingApi,
        key: &str,
        draft: &Draft,
        remote: connectors::accounting::RemoteDraft,
    ) -> Result<Pushed, ConnectorError> {
        let then = self.report_item(api, key, &remote.id, draft).await?;
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
            then,
        })
    }

    #[tracing::instrument(name = "push", skip_all, fields(target, key))]
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
                        ..Pushed::default()
                    }),
                Push::Note(note) => self
                    .push_note_to_helpdesk(target, api.as_ref(), key, note)
                    .await
                    .map(|()| Pushed::default()),
                Push::Draft(_) | Push::Attachment(_) => Err(ConnectorError::Permanent(format!(
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
            return match &push {
                Push::Draft(draft) => self.push_to_accounting(target, api, key, draft).await,
                Push::Attachment(a) => self
                    .attach_report(target, api, a)
                    .await
                    .map(|()| Pushed::default()),
                Push::Note(_) | Push::Ticket(_) => Err(ConnectorError::Permanent(format!(
                    "target `{target}` is an accounting system: it takes drafts, not notes or tickets"
                ))),
            };
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
                let safety = Safety::of(&request);
                let response = self
                    .outbox
                    .transport
                    .exchange(target, safety, request)
                    .await?;
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
        self.accepted(api, key, draft, remote).await
    }

    /// The outbox item `(key, payload)` that attaches the period's report
    /// PDF to the pushed draft, where the system takes attachments and a
    /// PDF was made. Its own item: a refused file (a scope the connection
    /// lacks) fails on its own, never holding back or repeating the draft.
    async fn report_item(
        &self,
        api: &dyn AccountingApi,
        key: &str,
        remote_id: &str,
        draft: &Draft,
    ) -> Result<Option<(String, String)>, ConnectorError> {
        if api.list_attachments(remote_id).is_none() {
            return Ok(None);
        }
        let has_pdf = self
            .store
            .report(&draft.customer, &draft.period)
            .await
            .map_err(|e| ConnectorError::Transient(e.to_string()))?
            .is_some_and(|r| r.pdf.is_some());
        if !has_pdf {
            return Ok(None);
        }
        let item = Push::Attachment(ReportAttachment {
            draft_key: key.to_owned(),
            remote_id: remote_id.to_owned(),
            customer: draft.customer.clone(),
            period: draft.period.clone(),
            revision: draft.revision,
        });
        let payload =
            serde_json::to_string(&item).map_err(|e| ConnectorError::Permanent(e.to_string()))?;
        Ok(Some((ReportAttachment::key(key), payload)))
    }

    /// The period's work report PDF on the draft, where the system takes
    /// attachments: listed first, uploaded only when its name is missing, so
    /// a retry of the push never attaches it twice.
    async fn attach_report(
        &self,
        target: &str,
        api: &dyn AccountingApi,
        a: &ReportAttachment,
    ) -> Result<(), ConnectorError> {
        let id = a.remote_id.as_str();
        let Some(list) = api.list_attachments(id) else {
            return Ok(());
        };
        let pdf = self
            .store
            .report(&a.customer, &a.period)
            .await
            .map_err(|e| ConnectorError::Transient(e.to_string()))?
            .and_then(|r| r.pdf);
        let Some(pdf) = pdf else {
            return Ok(());
        };
        let name = a.file_name();
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
            if let Some(header) = api.tenant_header()
                && !sent
                    .headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case(header))
                && let Some(tenant) = self
                    .outbox
                    .tenants
                    .lock()
                    .ok()
                    .and_then(|t| t.get(target).cloned())
            {
                sent.headers.push((header.to_owned(), tenant));
            }
            let safety = Safety::of(&sent);
            let response = self.outbox.transport.exchange(target, safety, sent).await?;
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

    /// A token request: a grant is a read as far as retrying goes (a
    /// repeated grant only issues another token), except where the refresh
    /// token rotates, where a lost answer must not be asked twice.
    async fn grant(
        &self,
        name: &str,
        request: HttpRequest,
    ) -> Result<HttpResponse, ConnectorError> {
        self.outbox
            .transport
            .exchange(name, Safety::Write, request)
            .await
    }

    /// Fetches target `name`'s access token now (`contract-bridge refresh`),
    /// whatever is cached.
    pub async fn refresh_grant(&self, name: &str) -> Result<(), ConnectorError> {
        let api = self
            .settings
            .targets
            .get(name)
            .and_then(|t| t.accounting())
            .ok_or_else(|| {
                ConnectorError::Permanent(format!(
                    "`{name}` is not an accounting target of this configuration"
                ))
            })?;
        self.forget_token(name);
        self.token(name, api).await.map(|_| ())
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
        let transient = |e: store::StoreError| ConnectorError::Transient(e.to_string());
        let app = match api.oauth_app() {
            // A consent's grant: configured, or stored by `connect`.
            Some(app)
                if app.refresh_token.is_some()
                    || self
                        .store
                        .grant(target)
                        .await
                        .map_err(transient)?
                        .is_some_and(|g| g.has_token) =>
            {
                Some(app)
            }
            _ => None,
        };
        let fresh = if let Some(app) = app {
            self.oauth_refresh(target, &app).await?
        } else {
            let Some(request) = api.grant_request(None)? else {
                return Ok(None);
            };
            let fresh = api.read_grant(&self.grant(target, request).await?)?;
            self.record_scopes(target, &fresh).await;
            fresh
        };
        let until = Instant::now() + fresh.expires_in.saturating_sub(Duration::from_secs(60));
        if let Ok(mut tokens) = self.outbox.tokens.lock() {
            tokens.insert(target.to_owned(), (fresh.token.clone(), until));
        }
        Ok(Some(fresh.token))
    }

    /// Refreshes a consent's grant through the `oauth2` crate: the newest
    /// refresh token is read under the guard (one instance at a time), its
    /// successor sealed and stored durably before the access token is
    /// returned. `invalid_grant` is recorded for `status` and names the
    /// `connect` command.
    async fn oauth_refresh(
        &self,
        target: &str,
        app: &connectors::oauth::OAuthApp,
    ) -> Result<connectors::accounting::AccessToken, ConnectorError> {
        use crate::oauth::seal::SealKey;
        let transient = |e: store::StoreError| ConnectorError::Transient(e.to_string());
        let permanent = |e: crate::oauth::seal::SealError| ConnectorError::Permanent(e.to_string());
        let guard = self
            .store
            .refresh_guard(target, Utc::now())
            .await
            .map_err(transient)?;
        let current = match (guard.current(), guard.legacy(), &app.refresh_token) {
            (Some(sealed), _, _) => SealKey::require(&self.settings, target)
                .and_then(|k| k.open(target, sealed))
                .map_err(permanent)?,
            (None, Some(plain), _) => plain.to_owned(),
            (None, None, Some(configured)) => configured.expose().to_owned(),
            (None, None, None) => {
                return Err(ConnectorError::Permanent(crate::oauth::revoked_message(
                    app,
                    target,
                    self.settings.file.as_deref(),
                    "no refresh token is stored",
                )));
            }
        };
        if let Some(tenant) = self
            .store
            .grant(target)
            .await
            .map_err(transient)?
            .and_then(|g| g.info.tenant_id)
            && let Ok(mut t) = self.outbox.tenants.lock()
        {
            t.insert(target.to_owned(), tenant);
        }
        let fresh = match crate::oauth::refresh(&self.outbox.transport, target, app, &current).await
        {
            Ok(fresh) => fresh,
            Err(crate::oauth::RefreshError::Revoked(said)) => {
                drop(guard);
                let message = crate::oauth::revoked_message(
                    app,
                    target,
                    self.settings.file.as_deref(),
                    &said,
                );
                self.metrics.add_grant_revoked();
                if let Err(e) = self.store.mark_revoked(target, &message, Utc::now()).await {
                    tracing::warn!(target, error = %e, "the revoked grant was not recorded");
                }
                return Err(ConnectorError::Permanent(message));
            }
            Err(crate::oauth::RefreshError::Failed(e)) => return Err(e),
        };
        if let Some(next) = &fresh.refresh_token {
            crate::oauth::pause_before_save_for_tests().await;
            let key = SealKey::load(&self.settings, true)
                .map_err(permanent)?
                .ok_or_else(|| ConnectorError::Permanent("no key to seal tokens".into()))?;
            guard
                .save(&key.seal(target, next), Utc::now())
                .await
                .map_err(transient)?;
        } else {
            drop(guard);
        }
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(fresh.expires_in).unwrap_or_default();
        if let Err(e) = self
            .store
            .record_access(target, expires, fresh.scope.as_deref(), now)
            .await
        {
            tracing::warn!(target, error = %e, "the token's expiry was not recorded");
        }
        self.record_scopes(target, &fresh).await;
        Ok(fresh)
    }
}

impl Bridge {
    /// Keeps the scopes a token answer says it grants, for `status`; a
    /// failure to store them is only logged: the token is good regardless.
    async fn record_scopes(&self, target: &str, token: &connectors::accounting::AccessToken) {
        if let Some(scope) = &token.scope
            && let Err(e) = self.store.record_scopes(target, scope, Utc::now()).await
        {
            tracing::warn!(target, "{target}: the granted scopes were not stored: {e}");
        }
    }
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
            ..OutboxSettings::default()
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
}
