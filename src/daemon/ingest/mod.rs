//! Ingest: tickets from the sources into the store. A poll reads what
//! changed since a source's cursor (a folder pass at once, a helpdesk API
//! page by page in [`helpdesk`]); a webhook stores what a helpdesk or the
//! bridge's own signed format announces ([`webhook`]). A ticket that cannot
//! be read or converted makes its source incomplete: its cursor and
//! watermark stay, and the periods it feeds do not close.

mod helpdesk;
pub mod webhook;

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{Bridge, CycleError, CycleReport};

impl Bridge {
    /// Reads what changed in one source and stores it. A ticket the engine
    /// cannot read is reported and not stored; the others are.
    #[tracing::instrument(name = "sync", skip_all, fields(source = name))]
    pub async fn sync_source(
        &self,
        name: &str,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        let Some(source) = self.settings.sources.get(name) else {
            return Ok(());
        };
        self.outbox.transport().new_pass(name);
        if source.connector.is_helpdesk() {
            let mapping = self.mapping_in_force()?;
            let api = self.helpdesk_api(name, &mapping)?;
            return self.sync_helpdesk(name, api.as_ref(), now, report).await;
        }
        let cursor = self.store.cursor(name).await?;
        let connector = source.connector.clone();
        let batch = tokio::task::spawn_blocking(move || connector.sync(cursor.as_deref()))
            .await
            .map_err(|e| CycleError::Tickets(e.to_string()))?;
        match batch {
            Ok(batch) => {
                self.store_pass(name, &batch.tickets, &batch.cursor, now, report)
                    .await?
            }
            Err(e) => {
                self.source_failed(name, &e.to_string(), now, report)
                    .await?
            }
        }
        Ok(())
    }

    /// Reads a source again from scratch and stores the tickets created or
    /// worked on since `since` (a day, UTC); older ones stay as they were.
    pub async fn backfill(
        &self,
        name: &str,
        since: chrono::NaiveDate,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        let Some(source) = self.settings.sources.get(name) else {
            return Ok(());
        };
        let connector = source.connector.clone();
        let batch = tokio::task::spawn_blocking(move || connector.sync(None))
            .await
            .map_err(|e| CycleError::Tickets(e.to_string()))?
            .map_err(|e| CycleError::Tickets(format!("source {name}: {e}")))?;
        let from = since.and_time(chrono::NaiveTime::MIN).and_utc();
        let recent: Vec<connectors::TicketSnapshot> = batch
            .tickets
            .into_iter()
            .filter(|t| {
                parse_snapshot(name, &t.json).map_or(true, |p| {
                    p.iter()
                        .any(|t| t.created_at >= from || t.work.iter().any(|w| w.at >= from))
                })
            })
            .collect();
        self.store_pass(name, &recent, &batch.cursor, now, report)
            .await
    }

    /// Stores one whole pass of a source read at once (a folder): the
    /// cursor and the watermark move only when every ticket was stored;
    /// otherwise the files are read again next time and the source is
    /// incomplete.
    async fn store_pass(
        &self,
        name: &str,
        tickets: &[connectors::TicketSnapshot],
        cursor: &str,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        let mut unread = Vec::new();
        let changed = self
            .store_tickets(name, tickets, now, &mut unread)
            .await?
            .len();
        report.tickets_changed += changed;
        if let Some(first) = unread.first() {
            let message = format!(
                "{} ticket(s) could not be read, the first: {first}",
                unread.len()
            );
            return self.source_failed(name, &message, now, report).await;
        }
        self.store.set_cursor(name, cursor, now).await?;
        self.store.source_succeeded(name, now, changed, now).await?;
        Ok(())
    }

    /// Stores the snapshots that parse as offline-format tickets; returns
    /// the ones that were new or changed.
    pub async fn store_tickets(
        &self,
        source: &str,
        tickets: &[connectors::TicketSnapshot],
        now: DateTime<Utc>,
        errors: &mut Vec<String>,
    ) -> Result<Vec<engine::ticket::Ticket>, CycleError> {
        let mut parsed = Vec::with_capacity(tickets.len());
        for t in tickets {
            match parse_snapshot(source, &t.json) {
                Ok(Some(mut p)) => {
                    p.source = Some(engine::ticket::SourceName::new(source));
                    parsed.push((t, p));
                }
                Ok(None) => {}
                Err(e) => errors.push(format!("source {source}: ticket {}: {e}", t.id)),
            }
        }
        // A few hundred tickets per transaction: a first sync of thousands
        // costs a few fsyncs, not several per ticket.
        let mut changed = Vec::new();
        for chunk in parsed.chunks(500) {
            let rows: Vec<store::TicketToStore> = chunk
                .iter()
                .map(|(t, _)| store::TicketToStore {
                    id: t.id.as_str(),
                    customer: t.customer.as_str(),
                    snapshot: t.json.as_str(),
                })
                .collect();
            let fresh = self.store.upsert_tickets(source, &rows, now).await?;
            changed.extend(
                chunk
                    .iter()
                    .zip(fresh)
                    .filter(|(_, fresh)| *fresh)
                    .map(|((_, p), _)| p.clone()),
            );
        }
        self.metrics.add_tickets(changed.len());
        Ok(changed)
    }

    /// Every stored ticket whose customer has a contract, each with its
    /// source: a ticket is (source, key), so two helpdesks holding a "1001"
    /// each bill theirs. A ticket for a customer without a contract is
    /// skipped with a warning, so it cannot hold up everyone else's bill.
    pub(in crate::daemon) async fn stored_tickets(
        &self,
        book: &engine::ContractBook,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<engine::ticket::Ticket>, CycleError> {
        let (parsed, sources) = self.all_stored_tickets().await?;
        let mut tickets = Vec::with_capacity(parsed.len());
        for (t, source) in parsed.into_iter().zip(&sources) {
            if book.contracts.contains_key(t.customer.as_str()) {
                tickets.push(t);
            } else {
                warnings.push(format!(
                    "ticket {} (source {source}): customer `{}` has no contract in the mapping; not billed",
                    t.id, t.customer
                ));
            }
        }
        Ok(tickets)
    }

    /// Every stored ticket, each with its source, and the source names in
    /// the same order.
    pub(crate) async fn all_stored_tickets(
        &self,
    ) -> Result<(Vec<engine::ticket::Ticket>, Vec<String>), CycleError> {
        let rows = self.store.tickets_with_source().await?;
        let tickets = parse_rows(&rows)?;
        let sources = rows.into_iter().map(|row| row.source).collect();
        Ok((tickets, sources))
    }
}

/// Stored tickets read as tickets, in one parse; tickets of customers
/// without a contract are left out with a warning.
pub(crate) fn parse_stored(
    rows: Vec<store::StoredTicket>,
    book: &engine::ContractBook,
    warnings: &mut Vec<String>,
) -> Result<Vec<engine::ticket::Ticket>, CycleError> {
    Ok(parse_rows(&rows)?
        .into_iter()
        .filter(|t| with_contract(t, book, warnings))
        .collect())
}

/// Whether `t`'s customer has a contract; a warning when not.
pub(crate) fn with_contract(
    t: &engine::ticket::Ticket,
    book: &engine::ContractBook,
    warnings: &mut Vec<String>,
) -> bool {
    if book.contracts.contains_key(t.customer.as_str()) {
        return true;
    }
    warnings.push(format!(
        "ticket {} (source {}): customer `{}` has no contract in the mapping; not billed",
        t.id,
        t.source.as_ref().map_or("?", |s| s.as_str()),
        t.customer
    ));
    false
}

/// Stored tickets read as tickets in one parse, one ticket per row in the
/// same order, each with its source.
pub(crate) fn parse_rows(
    rows: &[store::StoredTicket],
) -> Result<Vec<engine::ticket::Ticket>, CycleError> {
    let mut text =
        String::with_capacity(rows.iter().map(|r| r.snapshot.len() + 1).sum::<usize>() + 16);
    text.push_str("{\"tickets\":[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&row.snapshot);
    }
    text.push_str("]}");
    let parsed = crate::export::parse(Path::new("<store>"), &text)
        .map_err(|e| CycleError::Tickets(e.to_string()))?;
    if parsed.len() != rows.len() {
        return Err(CycleError::Tickets(format!(
            "{} stored ticket rows read as {} tickets",
            rows.len(),
            parsed.len()
        )));
    }
    Ok(parsed
        .into_iter()
        .zip(rows)
        .map(|(mut t, row)| {
            t.source = Some(engine::ticket::SourceName::new(row.source.as_str()));
            t
        })
        .collect())
}

/// One ticket snapshot (the offline format's ticket object) read as the
/// engine reads it; `origin` names where it came from in errors.
pub(crate) fn parse_snapshot(
    origin: &str,
    json: &str,
) -> Result<Option<engine::ticket::Ticket>, crate::export::ExportError> {
    let text = format!("{{\"tickets\":[{json}]}}");
    Ok(crate::export::parse(Path::new(origin), &text)?.pop())
}
