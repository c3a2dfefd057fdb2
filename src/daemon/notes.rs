//! SLA notes: a clock warned or breached at `now` becomes a note for the
//! ticket's helpdesk (the source's `notes` target), queued in the outbox
//! under `sla:{source}:{ticket}:{metric}:{warning|breach}`. The key is the
//! record that the note was sent: the SLA tick may look at the same clock a
//! thousand times, the note is queued once. A breach found without an
//! earlier warning is noted as a breach only; a breach first seen after the
//! ticket was answered late (a sync catching up) is noted too.

use chrono::{DateTime, Utc};
use connectors::{Note, NoteEvent, Push};
use engine::document::SlaRow;
use engine::ticket::Ticket;

use super::{Bridge, CycleError, CycleReport};

/// The outbox key of a note: the clock and the event, nothing else.
pub fn note_key(source: &str, ticket: &str, metric: &str, event: NoteEvent) -> String {
    let event = match event {
        NoteEvent::Warning => "warning",
        NoteEvent::Breach => "breach",
    };
    format!("sla:{source}:{ticket}:{metric}:{event}")
}

impl Bridge {
    /// The SLA tick at `now`, incremental (issue 19): only the tickets that
    /// changed since their last look, or whose next deadline (stored in the
    /// store's deadline index) is at or before `now`, are read and judged;
    /// each gets its next deadline back ([`engine::sla_next_look`]). The
    /// notes queued are those a judgement of every stored ticket would
    /// queue: between two deadlines a ticket's judgement does not change, and
    /// a note's outbox key is queued once.
    pub async fn note_sla(
        &self,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        if self.settings.sources.values().all(|s| s.notes.is_none()) {
            return Ok(());
        }
        let mapping = self.mapping_in_force()?;
        let due = self
            .store
            .sla_due_tickets(now, &self.sla_basis(&mapping.hash))
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        let rows: Vec<store::StoredTicket> = due
            .iter()
            .map(|d| store::StoredTicket {
                source: d.source.clone(),
                id: d.id.clone(),
                snapshot: d.snapshot.clone(),
            })
            .collect();
        // One ticket per due row, in order; those without a contract are
        // judged by nobody (their next look is when they or the mapping change).
        let tickets: Vec<Option<Ticket>> = super::parse_rows(&rows)?
            .into_iter()
            .map(|t| super::with_contract(&t, &mapping.book, &mut report.warnings).then_some(t))
            .collect();
        let book_owner = mapping.clone();
        let (rows, next) = tokio::task::spawn_blocking(move || {
            let judged: Vec<Ticket> = tickets.iter().flatten().cloned().collect();
            let rows = engine::sla_clocks(&book_owner.book, &judged, now)?;
            // Rows come sorted by ticket key: each key's rows are one range.
            let mut ranges: std::collections::HashMap<&str, std::ops::Range<usize>> =
                std::collections::HashMap::new();
            for (i, r) in rows.iter().enumerate() {
                ranges
                    .entry(r.ticket.as_str())
                    .and_modify(|range| range.end = i + 1)
                    .or_insert(i..i + 1);
            }
            let next: Vec<Option<DateTime<Utc>>> = tickets
                .iter()
                .map(|t| {
                    let t = t.as_ref()?;
                    let range = ranges.get(t.id.as_str()).cloned().unwrap_or(0..0);
                    engine::sla_next_look(t, &rows[range], now)
                })
                .collect();
            Ok::<_, engine::BillError>((rows, next))
        })
        .await
        .map_err(|e| CycleError::Tickets(e.to_string()))?
        .map_err(|e| CycleError::Tickets(e.to_string()))?;
        self.note_rows(&mapping, &rows, now, report).await?;
        let looked: Vec<store::NextLook> = due
            .iter()
            .zip(next)
            .map(|(ticket, next_due)| store::NextLook { ticket, next_due })
            .collect();
        self.store.set_sla_due(&looked).await?;
        Ok(())
    }

    /// What the stored SLA deadlines depend on beside the tickets: the
    /// mapping, the first billed period and which sources take notes.
    fn sla_basis(&self, mapping_hash: &str) -> String {
        let noted: Vec<String> = self
            .settings
            .sources
            .iter()
            .filter_map(|(name, s)| s.notes.as_ref().map(|t| format!("{name}>{t}")))
            .collect();
        format!(
            "{mapping_hash};{};{}",
            self.settings.billing.first_period,
            noted.join(",")
        )
    }

    /// Notes for these tickets' clocks at `now` (a webhook's tickets).
    pub async fn note_tickets(
        &self,
        tickets: Vec<Ticket>,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        let mapping = self.mapping_in_force()?;
        let book_owner = mapping.clone();
        let tickets: Vec<Ticket> = tickets
            .into_iter()
            .filter(|t| mapping.book.contracts.contains_key(t.customer.as_str()))
            .collect();
        if tickets.is_empty() {
            return Ok(());
        }
        let rows = tokio::task::spawn_blocking(move || {
            engine::sla_clocks(&book_owner.book, &tickets, now)
        })
        .await
        .map_err(|e| CycleError::Tickets(e.to_string()))?
        .map_err(|e| CycleError::Tickets(e.to_string()))?;
        self.note_rows(&mapping, &rows, now, report).await
    }

    /// Queues the notes `rows` (clocks judged at `now`) call for.
    async fn note_rows(
        &self,
        mapping: &super::GoodMapping,
        rows: &[SlaRow],
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        let first = self.first_period()?;
        for row in rows {
            let Some(source) = row.source.as_ref().map(|s| s.as_str()) else {
                continue;
            };
            let Some(target) = self
                .settings
                .sources
                .get(source)
                .and_then(|s| s.notes.as_deref())
            else {
                continue;
            };
            let tz = mapping
                .book
                .contracts
                .get(row.customer.as_str())
                .map_or(chrono_tz::UTC, |c| c.tz);
            let Some(note) = note_for(row, source, now, first.start(tz)) else {
                continue;
            };
            let key = note_key(source, &note.ticket, &note.metric, note.event);
            let breach = note.event == NoteEvent::Breach;
            let payload = serde_json::to_string(&Push::Note(note)).unwrap_or_default();
            if self.store.enqueue(target, &key, &payload, now).await? {
                report.notes_queued += 1;
                report.breaches_noted += usize::from(breach);
                self.metrics.add_note(breach);
                self.outbox.wake(target);
            }
        }
        Ok(())
    }
}

/// The note a clock calls for at `now`, if any. Clocks due before
/// `since` (the first billed period) are history, not news.
fn note_for(row: &SlaRow, source: &str, now: DateTime<Utc>, since: DateTime<Utc>) -> Option<Note> {
    if row.excluded {
        return None;
    }
    // A breach stays a fact once the target is met late; a warning is news
    // only while the clock runs.
    let met = row.met_at.is_some_and(|m| m.utc() <= now);
    if met && !row.breached {
        return None;
    }
    if row.due_at.is_some_and(|d| d.utc() < since) {
        return None;
    }
    let metric = row.metric.as_str();
    let due = row.due_at.map(|d| d.0.to_rfc3339());
    let (event, tag, text) = if row.breached {
        (
            NoteEvent::Breach,
            "sla-breach",
            format!(
                "SLA {metric} target missed: it was due {} ({} min on the {} calendar; the clock was stopped {} min).",
                due.as_deref().unwrap_or("?"),
                row.target_minutes,
                row.calendar,
                row.stopped_minutes
            ),
        )
    } else if row.warn_at.is_some_and(|w| w.utc() <= now) {
        (
            NoteEvent::Warning,
            "sla-warning",
            format!(
                "SLA {metric} target at risk: due {} ({} min on the {} calendar, {} min used).",
                due.as_deref()
                    .unwrap_or("when the ticket is no longer paused"),
                row.target_minutes,
                row.calendar,
                row.elapsed_minutes
            ),
        )
    } else {
        return None;
    };
    Some(Note {
        source: source.to_owned(),
        ticket: row.ticket.to_string(),
        customer: row.customer.to_string(),
        metric: metric.to_owned(),
        event,
        due_at: due,
        tag: tag.to_owned(),
        text,
        subject: None,
    })
}
