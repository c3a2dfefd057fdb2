//! Helpdesk APIs (Zammad, …): the daemon's side of
//! [`connectors::helpdesk::HelpdeskApi`]. A sync sweeps the pages of
//! tickets changed since the source's cursor, fetches what the batch needs
//! besides in as few requests as the API allows, stores the canonical
//! tickets, and moves the cursor to the latest change it saw. A note is
//! looked for on the ticket before it is added: helpdesks take no
//! idempotency key, the note's marker stands in for one.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use connectors::helpdesk::{HelpdeskApi, NoteLookup, NotePart, RawTicket};
use connectors::{ConnectorError, HttpRequest, HttpResponse, NewTicket, Note};

use crate::daemon::{Bridge, CycleError, CycleReport};
use crate::transport::Safety;

impl Bridge {
    /// Sends one request to a helpdesk with its credentials, at its rate.
    pub(in crate::daemon) async fn helpdesk_call(
        &self,
        source: &str,
        api: &dyn HelpdeskApi,
        safety: Safety,
        request: HttpRequest,
    ) -> Result<HttpResponse, ConnectorError> {
        // An OAuth token is cached under the source's name; one refused is
        // fetched again and the call repeated, once.
        let token_key = format!("source:{source}");
        let mut renewed = false;
        loop {
            let token = match api.grant() {
                Some(grant) => self.token(&token_key, grant).await?,
                None => None,
            };
            let mut sent = request.clone();
            api.authorize(&mut sent, token.as_deref());
            self.metrics
                .helpdesk_requests
                .fetch_add(1, Ordering::Relaxed);
            let answer = self
                .outbox
                .transport()
                .exchange(source, safety, sent)
                .await?;
            if answer.status == 401 && token.is_some() && !renewed {
                renewed = true;
                self.forget_token(&token_key);
                continue;
            }
            return Ok(answer);
        }
    }

    /// Reads the tickets of one helpdesk changed since its cursor. The
    /// cursor moves only past what was stored; the source's watermark moves
    /// to `now` only when every page was read and every ticket converted
    /// (see `completeness`).
    pub(in crate::daemon) async fn sync_helpdesk(
        &self,
        name: &str,
        api: &dyn HelpdeskApi,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        self.upgrade_keys(name, api).await?;
        let cursor = self.store.cursor(name).await?;
        let batch = match self.sweep(name, api, cursor.as_deref()).await {
            Ok(batch) => batch,
            Err(e) => return self.source_failed(name, &e.to_string(), now, report).await,
        };
        let mut unread = Vec::new();
        let stored = self
            .store_raw(name, api, &batch, now, report, &mut unread)
            .await;
        let changed = match stored {
            Ok(n) => n,
            Err(e) => return self.source_failed(name, &e.to_string(), now, report).await,
        };
        report.tickets_changed += changed;
        // The cursor moves past what was stored; a ticket that could not be
        // read is read again next time: the cursor stops before it.
        let unread_from = unread.iter().map(|(at, _)| at.clone()).min();
        let latest = match &unread_from {
            Some(first_unread) => batch
                .iter()
                .map(|t| t.updated_at.clone())
                .filter(|at| at < first_unread)
                .max()
                .or_else(|| Some(first_unread.clone())),
            None => batch.iter().map(|t| t.updated_at.clone()).max(),
        };
        if let Some(latest) = latest.filter(|l| Some(l) > cursor.as_ref()) {
            self.store.set_cursor(name, &latest, now).await?;
        }
        if !unread.is_empty() {
            let first = unread
                .iter()
                .map(|(_, e)| e.as_str())
                .next()
                .unwrap_or_default();
            let message = format!(
                "{} ticket(s) could not be read, the first: {first}",
                unread.len()
            );
            return self.source_failed(name, &message, now, report).await;
        }
        self.store.source_succeeded(name, now, changed, now).await?;
        Ok(())
    }

    /// Tickets stored under the key an earlier version of the connector gave
    /// them (Zammad: its internal id, now the ticket number customers see)
    /// move to their key, with their SLA notes: nothing billed or noted
    /// twice. Looked at once per process and source.
    async fn upgrade_keys(&self, name: &str, api: &dyn HelpdeskApi) -> Result<(), CycleError> {
        if !self
            .upgraded
            .lock()
            .map(|mut u| u.insert(name.to_owned()))
            .unwrap_or(false)
        {
            return Ok(());
        }
        let mut moved = 0;
        for store::StoredTicket { id, snapshot, .. } in self.store.source_tickets(name).await? {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&snapshot) else {
                continue;
            };
            if let Some((key, current)) = api.legacy_key(&id, &value) {
                self.store
                    .rekey_ticket(name, &id, &key, &current.to_string())
                    .await?;
                moved += 1;
            }
        }
        if moved > 0 {
            tracing::info!(source = name, moved, "tickets moved to their current keys");
        }
        Ok(())
    }

    /// A pass of `name` failed: its watermark stays, `status`, the log and
    /// the metrics say why, and `run --once` exits non-zero.
    pub(in crate::daemon) async fn source_failed(
        &self,
        name: &str,
        error: &str,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        let error = crate::redact(error);
        tracing::debug!(source = name, "source {name} is incomplete: {error}");
        report.source_errors.push(format!("source {name}: {error}"));
        report.failed_sources.insert(name.to_owned());
        self.metrics.add_source_failure();
        self.store.source_failed(name, &error, now).await?;
        Ok(())
    }

    /// Every page of changed tickets, until the helpdesk says there is no more.
    async fn sweep(
        &self,
        name: &str,
        api: &dyn HelpdeskApi,
        cursor: Option<&str>,
    ) -> Result<Vec<RawTicket>, ConnectorError> {
        let mut batch = Vec::new();
        let mut page: Option<String> = None;
        // A helpdesk that never ends its pages is cut off rather than followed forever.
        for _ in 0..10_000 {
            let request = api.changed(cursor, page.as_deref())?;
            let answer = self.helpdesk_call(name, api, Safety::Read, request).await?;
            let p = api.read_changed(page.as_deref(), &answer)?;
            let empty = p.tickets.is_empty();
            batch.extend(p.tickets);
            match p.next {
                Some(next) if !empty => page = Some(next),
                _ => break,
            }
        }
        Ok(batch)
    }

    /// Fetches a batch's details, converts it, and stores the tickets that
    /// convert; returns how many were new or changed.
    pub(in crate::daemon) async fn store_raw(
        &self,
        name: &str,
        api: &dyn HelpdeskApi,
        batch: &[RawTicket],
        now: DateTime<Utc>,
        report: &mut CycleReport,
        unread: &mut Vec<(String, String)>,
    ) -> Result<usize, ConnectorError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let mut answers = Vec::new();
        for request in api.details(batch)? {
            answers.push(self.helpdesk_call(name, api, Safety::Read, request).await?);
        }
        let mut snapshots = Vec::new();
        let converted = api.convert(batch, &answers)?;
        if converted.len() != batch.len() {
            return Err(ConnectorError::Permanent(format!(
                "{} tickets listed but {} converted",
                batch.len(),
                converted.len()
            )));
        }
        for (raw, converted) in batch.iter().zip(converted) {
            match converted {
                Ok(s) => snapshots.push(s),
                Err(e) => unread.push((raw.updated_at.clone(), format!("ticket {}: {e}", raw.id))),
            }
        }
        let mut errors = Vec::new();
        let changed = self
            .store_tickets(name, &snapshots, now, &mut errors)
            .await
            .map_err(|e| ConnectorError::Transient(e.to_string()))?;
        // A snapshot the engine cannot read is as unread as one not
        // converted; which raw ticket it was is not known here, so the
        // cursor goes back to the batch's start.
        if !errors.is_empty() {
            let first = batch
                .iter()
                .map(|t| t.updated_at.clone())
                .min()
                .unwrap_or_default();
            unread.extend(errors.into_iter().map(|e| (first.clone(), e)));
        }
        let count = changed.len();
        if self.mapping().is_some()
            && let Err(e) = self.note_tickets(changed, now, report).await
        {
            report.warnings.push(format!("source {name}: notes: {e}"));
        }
        Ok(count)
    }

    /// A note on a helpdesk ticket, unless an earlier attempt put it there:
    /// only the parts still missing are added. Once the comment is on the
    /// ticket the note is delivered; a failed tag is retried on its own
    /// (the next attempt finds the comment and adds only the tag), never
    /// dead.
    pub(in crate::daemon) async fn push_note_to_helpdesk(
        &self,
        source: &str,
        api: &dyn HelpdeskApi,
        key: &str,
        note: &Note,
    ) -> Result<(), ConnectorError> {
        let mut answers = Vec::new();
        let mut requests = api.find_note(note)?;
        // A lookup takes a few rounds at most (Zammad: number, then id).
        let mut rounds = 0;
        let found = loop {
            for request in requests {
                answers.push(
                    self.helpdesk_call(source, api, Safety::Read, request)
                        .await?,
                );
            }
            match api.read_found_note(key, note, &answers)? {
                NoteLookup::Found(found) => break found,
                NoteLookup::More(next) if rounds < 3 => {
                    rounds += 1;
                    requests = next;
                }
                NoteLookup::More(_) => {
                    return Err(ConnectorError::Transient(format!(
                        "{}: the note lookup did not end",
                        api.system()
                    )));
                }
            }
        };
        for (part, request) in api.add_note(key, note, &found)? {
            let added = match self
                .helpdesk_call(source, api, Safety::Write, request)
                .await
            {
                Ok(answer) => api.read_added(&answer),
                Err(e) => Err(e),
            };
            match (part, added) {
                (_, Ok(())) => {}
                (NotePart::Tag, Err(ConnectorError::Permanent(m))) => {
                    return Err(ConnectorError::Transient(format!(
                        "the note is on the ticket, its tag is not yet: {m}"
                    )));
                }
                (_, Err(e)) => return Err(e),
            }
        }
        Ok(())
    }

    /// A ticket of the bridge's own, unless an earlier attempt created it
    /// (its answer lost): looked for by the marker in its title first.
    /// Returns the ticket's id.
    pub(in crate::daemon) async fn push_ticket_to_helpdesk(
        &self,
        source: &str,
        api: &dyn HelpdeskApi,
        key: &str,
        ticket: &NewTicket,
    ) -> Result<String, ConnectorError> {
        let found = self
            .helpdesk_call(source, api, Safety::Read, api.find_ticket(key, ticket)?)
            .await?;
        if let Some(id) = api.read_found_ticket(key, &found)? {
            return Ok(id);
        }
        let created = self
            .helpdesk_call(source, api, Safety::Write, api.create_ticket(key, ticket)?)
            .await?;
        api.read_created_ticket(&created)
    }
}
