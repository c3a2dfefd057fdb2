//! What `contract-bridge status` reads in one call: counts of tickets,
//! periods, reports and outbox items by state, and the rows a person must
//! see (failing and dead items, differences a target showed, held periods,
//! sources and their completeness, drafts and sales).

use sqlx::Row;

use crate::{
    FailingItem, HeldPeriod, PushedDraft, RemoteDifference, Sale, SourceCursor, SourceHealth,
    Store, StoreError, read_instant, scrub,
};

/// What `status` prints.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// Where each source's next sync starts, by source.
    pub cursors: Vec<SourceCursor>,
    /// How complete each source is, and how its last pass ended.
    pub sources: Vec<SourceHealth>,
    /// Customer periods due to close but waiting for their sources.
    pub held: Vec<HeldPeriod>,
    pub tickets: i64,
    pub closed_periods: i64,
    /// Work reports stored with closed periods, and those with a PDF.
    pub reports: i64,
    pub report_pdfs: i64,
    pub outbox_pending: i64,
    pub outbox_sent: i64,
    pub outbox_dead: i64,
    /// Drafts waiting for finance's review (held ones included), and
    /// drafts finance rejected (never pushed).
    pub awaiting_review: i64,
    pub rejected: i64,
    /// Items that failed at least once and are not sent.
    pub failing: Vec<FailingItem>,
    /// Sent items whose target showed something other than what we sent.
    pub differences: Vec<RemoteDifference>,
    /// Every pushed draft, oldest first.
    pub drafts: Vec<PushedDraft>,
    /// Cards and banks sold through accounting systems.
    pub sales: Vec<Sale>,
}

impl Store {
    pub async fn status(&self) -> Result<Status, StoreError> {
        let mut s = Status::default();
        for r in sqlx::query("SELECT source, cursor, updated_at FROM cursors ORDER BY source")
            .fetch_all(&self.pool)
            .await?
        {
            s.cursors.push(SourceCursor {
                source: r.get(0),
                cursor: r.get(1),
                synced_at: read_instant(&r.get::<String, _>(2))?,
            });
        }
        s.tickets = sqlx::query("SELECT COUNT(*) FROM tickets")
            .fetch_one(&self.pool)
            .await?
            .get(0);
        s.closed_periods = sqlx::query("SELECT COUNT(*) FROM periods")
            .fetch_one(&self.pool)
            .await?
            .get(0);
        let reports = sqlx::query("SELECT COUNT(*), COUNT(pdf) FROM reports")
            .fetch_one(&self.pool)
            .await?;
        (s.reports, s.report_pdfs) = (reports.get(0), reports.get(1));
        for r in sqlx::query("SELECT state, COUNT(*) FROM outbox GROUP BY state")
            .fetch_all(&self.pool)
            .await?
        {
            let (state, n): (String, i64) = (r.get(0), r.get(1));
            match state.as_str() {
                "pending" => s.outbox_pending = n,
                "sent" => s.outbox_sent = n,
                "dead" => s.outbox_dead = n,
                "awaiting_review" => s.awaiting_review = n,
                "rejected" => s.rejected = n,
                _ => {}
            }
        }
        for r in sqlx::query(
            "SELECT target, key, attempts, last_error FROM outbox WHERE last_error IS NOT NULL AND state <> 'sent' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let error: String = r.get(3);
            s.failing.push(FailingItem {
                target: r.get(0),
                key: r.get(1),
                attempts: r.get(2),
                last_error: scrub(&error),
            });
        }
        for r in sqlx::query(
            "SELECT target, key, COALESCE(remote_id, ''), remote_note FROM outbox WHERE remote_note IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            s.differences.push(RemoteDifference {
                target: r.get(0),
                key: r.get(1),
                remote_id: r.get(2),
                note: r.get(3),
            });
        }
        s.drafts = self.pushed_drafts(false).await?;
        s.sales = self.sales().await?;
        s.sources = self.source_health().await?;
        s.held = self.held_periods().await?;
        Ok(s)
    }
}
