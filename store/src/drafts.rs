//! Closed periods and their drafts: a customer's month, once closed, is a
//! row of `periods` (its revision and bill document), its rendered work
//! report, and the outbox item of its draft, written in one transaction.
//!
//! A closed period never changes silently: closing it again does nothing;
//! it moves to its next revision only on purpose ([`Store::repush`] after
//! finance voided or deleted the draft, [`Store::rebill`] after a rejected
//! review), each time with a new idempotency key and a new push.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::outbox::{NewOutboxItem, queue_push, queue_push_in};
use crate::review::{ReviewRequest, forget_review, open_review};
use crate::{Store, StoreError, instant};

/// A period closed for one customer, and the draft to push if it owes anything.
#[derive(Clone, Debug)]
pub struct ClosedPeriod {
    pub customer: String,
    pub period: String,
    pub revision: i64,
    pub total_net: Option<String>,
    pub currency: Option<String>,
    /// The customer's part of the bill document (invoice, report rows, balances).
    pub document: String,
    /// The draft's push, when the period owes anything.
    pub push: Option<NewOutboxItem>,
    /// The work report rendered for the period, stored with it.
    pub report: Option<StoredReport>,
    /// The draft waits for finance's approval before it is pushed.
    pub review: Option<ReviewRequest>,
}

/// A closed period as it stands: its revision and bill document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedRevision {
    pub revision: i64,
    pub document: String,
}

/// One closed period's bill document (see [`Store::closed_documents`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodDocument {
    /// `YYYY-MM`.
    pub period: String,
    pub document: String,
}

/// A rendered work report of a closed period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReport {
    pub language: String,
    pub html: String,
    /// None when no Chromium was configured to print it.
    pub pdf: Option<Vec<u8>>,
}

/// Stores a closed period's work report under its revision.
pub(crate) async fn store_report(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    closed: &ClosedPeriod,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if let Some(r) = &closed.report {
        sqlx::query(
            "INSERT INTO reports (customer, period, revision, language, html, pdf, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&closed.customer)
        .bind(&closed.period)
        .bind(closed.revision)
        .bind(&r.language)
        .bind(&r.html)
        .bind(r.pdf.clone())
        .bind(instant(now))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// After the period's row was written (`written` rows: none when it was
/// closed already, or no longer rejected): stores its report, queues its
/// push and opens its review when one is asked, and commits; a re-bill
/// (`rebilled`) that asks none forgets the rejected review it answers.
/// `false`, and nothing stored, when no row was written.
async fn file_closed(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    written: u64,
    closed: &ClosedPeriod,
    rebilled: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if written == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    store_report(&mut tx, closed, now).await?;
    let review = match &closed.push {
        Some(push) => {
            let waits = closed.review.is_some();
            queue_push_in(&mut *tx, &push.target, &push.key, &push.payload, waits, now).await?;
            closed.review.as_ref().map(|request| (push, request))
        }
        None => None,
    };
    match review {
        Some((push, request)) => {
            open_review(
                &mut *tx,
                &closed.customer,
                &closed.period,
                closed.revision,
                push,
                request,
                now,
            )
            .await?
        }
        None if rebilled => forget_review(&mut tx, &closed.customer, &closed.period).await?,
        None => {}
    }
    tx.commit().await?;
    Ok(true)
}

impl Store {
    pub async fn is_closed(&self, customer: &str, period: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 FROM periods WHERE customer = $1 AND period = $2")
                .bind(customer)
                .bind(period)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Records a closed period and queues its push, in one transaction:
    /// either both are stored or neither. A period already closed is left
    /// as it is (`false`): a pushed draft is never changed silently.
    pub async fn close_period(
        &self,
        closed: &ClosedPeriod,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO periods (customer, period, revision, total_net, currency, document, closed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (customer, period) DO NOTHING",
        )
        .bind(&closed.customer)
        .bind(&closed.period)
        .bind(closed.revision)
        .bind(closed.total_net.clone())
        .bind(closed.currency.clone())
        .bind(&closed.document)
        .bind(instant(now))
        .execute(&mut *tx)
        .await?;
        file_closed(tx, done.rows_affected(), closed, false, now).await
    }

    /// A closed period's revision and document.
    pub async fn closed_period(
        &self,
        customer: &str,
        period: &str,
    ) -> Result<Option<ClosedRevision>, StoreError> {
        Ok(sqlx::query(
            "SELECT revision, document FROM periods WHERE customer = $1 AND period = $2",
        )
        .bind(customer)
        .bind(period)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| ClosedRevision {
            revision: r.get(0),
            document: r.get(1),
        }))
    }

    /// The documents of a customer's closed periods, oldest first.
    pub async fn closed_documents(
        &self,
        customer: &str,
    ) -> Result<Vec<PeriodDocument>, StoreError> {
        let rows =
            sqlx::query("SELECT period, document FROM periods WHERE customer = $1 ORDER BY period")
                .bind(customer)
                .fetch_all(&self.pool)
                .await?;
        Ok(crate::pairs(rows, |period, document| PeriodDocument {
            period,
            document,
        }))
    }

    /// The latest revision of a closed period's work report.
    pub async fn report(
        &self,
        customer: &str,
        period: &str,
    ) -> Result<Option<StoredReport>, StoreError> {
        let row = sqlx::query(
            "SELECT language, html, pdf FROM reports WHERE customer = $1 AND period = $2 \
             ORDER BY revision DESC LIMIT 1",
        )
        .bind(customer)
        .bind(period)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| StoredReport {
            language: r.get(0),
            html: r.get(1),
            pdf: r.get(2),
        }))
    }

    /// Re-creates a closed period's draft on purpose: the period moves from
    /// revision `from` to `from + 1` with `document`, and the push (under
    /// the new revision's key) is queued, in one transaction. `false` when
    /// the period is no longer at `from` (someone else re-pushed it).
    pub async fn repush(
        &self,
        customer: &str,
        period: &str,
        from: i64,
        document: &str,
        push: &NewOutboxItem,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE periods SET revision = $1, document = $2 WHERE customer = $3 AND period = $4 AND revision = $5",
        )
        .bind(from + 1)
        .bind(document)
        .bind(customer)
        .bind(period)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        queue_push(&mut *tx, &push.target, &push.key, &push.payload, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Bills a rejected period again: the period moves from revision `from`
    /// to `closed.revision` with the new document, its push is queued
    /// (waiting for review again when `closed.review` says so), in one
    /// transaction. `false` when the period is no longer rejected at `from`.
    pub async fn rebill(
        &self,
        closed: &ClosedPeriod,
        from: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE periods SET revision = $1, document = $2, total_net = $3, currency = $4 \
             WHERE customer = $5 AND period = $6 AND revision = $7 AND EXISTS ( \
               SELECT 1 FROM reviews r WHERE r.customer = $5 AND r.period = $6 AND r.state = 'rejected')",
        )
        .bind(closed.revision)
        .bind(&closed.document)
        .bind(closed.total_net.clone())
        .bind(closed.currency.clone())
        .bind(&closed.customer)
        .bind(&closed.period)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        file_closed(tx, done.rows_affected(), closed, true, now).await
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::{close_october_twice_and_send, t, temp_store};

    #[tokio::test]
    async fn closing_a_period_twice_queues_one_push() {
        let (_dir, store) = temp_store().await;
        let now = t("2026-11-01T06:00:00Z");
        close_october_twice_and_send(&store, now).await;
    }
}
