//! How far each helpdesk source has been read: its sync cursor (where the
//! next pass starts), its watermark (every change up to this instant is
//! stored) with how its last pass ended, and the customer periods held
//! because a source feeding them is not complete past their end.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError, instant, parse_instant, scrub};

/// Where a source's next sync starts, and when it was last moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceCursor {
    pub source: String,
    /// The connector's own position (a timestamp, a page token, a folder's
    /// file positions): opaque here.
    pub cursor: String,
    pub synced_at: DateTime<Utc>,
}

/// A source's completeness: its watermark and its last pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceHealth {
    pub source: String,
    /// Every change up to this instant is stored (RFC 3339, UTC); none: no
    /// pass has completed yet.
    pub complete_through: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The last pass's error, when it failed (already redacted).
    pub last_error: Option<String>,
    /// When the source started failing, while it fails.
    pub failing_since: Option<DateTime<Utc>>,
    /// Tickets stored by its successful passes, in all.
    pub tickets_synced: i64,
}

/// A customer's period that was due to close and waits for its sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldPeriod {
    pub customer: String,
    pub period: String,
    /// The sources it waits for, comma-separated.
    pub sources: String,
    pub reason: String,
    pub held_since: DateTime<Utc>,
}

impl Store {
    pub async fn cursor(&self, source: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT cursor FROM cursors WHERE source = $1")
            .bind(source)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0)))
    }

    pub async fn set_cursor(
        &self,
        source: &str,
        cursor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.keep_newest(("cursors", "source", "cursor"), source, cursor, now)
            .await
    }

    /// Forgets where a source's sync got to: the next sync reads everything.
    pub async fn reset_cursor(&self, source: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM cursors WHERE source = $1")
            .bind(source)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A pass of `source` read everything up to `complete_through`: the
    /// watermark moves there (never back), and the failure is over.
    pub async fn source_succeeded(
        &self,
        source: &str,
        complete_through: DateTime<Utc>,
        tickets: usize,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let through = instant(complete_through);
        sqlx::query(
            "INSERT INTO source_health (source, complete_through, last_success_at, last_attempt_at, last_error, failing_since, tickets_synced) \
             VALUES ($1, $2, $3, $3, NULL, NULL, $4) \
             ON CONFLICT (source) DO UPDATE SET \
               complete_through = CASE WHEN source_health.complete_through IS NULL OR source_health.complete_through < excluded.complete_through \
                                       THEN excluded.complete_through ELSE source_health.complete_through END, \
               last_success_at = excluded.last_success_at, last_attempt_at = excluded.last_attempt_at, \
               last_error = NULL, failing_since = NULL, \
               tickets_synced = source_health.tickets_synced + excluded.tickets_synced",
        )
        .bind(source)
        .bind(through)
        .bind(instant(now))
        .bind(tickets as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A pass of `source` failed or left a ticket unread: its watermark
    /// stays where it was, and `status` shows why and since when.
    pub async fn source_failed(
        &self,
        source: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO source_health (source, complete_through, last_success_at, last_attempt_at, last_error, failing_since, tickets_synced) \
             VALUES ($1, NULL, NULL, $2, $3, $2, 0) \
             ON CONFLICT (source) DO UPDATE SET last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error, \
               failing_since = COALESCE(source_health.failing_since, excluded.failing_since)",
        )
        .bind(source)
        .bind(instant(now))
        .bind(scrub(error))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every source's completeness, by name.
    pub async fn source_health(&self) -> Result<Vec<SourceHealth>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, complete_through, last_success_at, last_attempt_at, last_error, failing_since, tickets_synced \
             FROM source_health ORDER BY source",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SourceHealth {
                source: r.get(0),
                complete_through: parse_instant(r.get(1)),
                last_success_at: parse_instant(r.get(2)),
                last_attempt_at: parse_instant(r.get(3)),
                last_error: r.get(4),
                failing_since: parse_instant(r.get(5)),
                tickets_synced: r.get(6),
            })
            .collect())
    }

    /// Records that `customer`'s `period` waits for `sources`; keeps the
    /// first instant it was held.
    pub async fn hold_period(
        &self,
        customer: &str,
        period: &str,
        sources: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<HeldPeriod, StoreError> {
        sqlx::query(
            "INSERT INTO held_periods (customer, period, sources, reason, held_since, checked_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (customer, period) DO UPDATE SET sources = excluded.sources, reason = excluded.reason, checked_at = excluded.checked_at",
        )
        .bind(customer)
        .bind(period)
        .bind(sources)
        .bind(reason)
        .bind(instant(now))
        .execute(&self.pool)
        .await?;
        let since: String =
            sqlx::query("SELECT held_since FROM held_periods WHERE customer = $1 AND period = $2")
                .bind(customer)
                .bind(period)
                .fetch_one(&self.pool)
                .await?
                .get(0);
        Ok(HeldPeriod {
            customer: customer.to_owned(),
            period: period.to_owned(),
            sources: sources.to_owned(),
            reason: reason.to_owned(),
            held_since: parse_instant(Some(since)).unwrap_or(now),
        })
    }

    /// The period is no longer held (it closed).
    pub async fn release_period(&self, customer: &str, period: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM held_periods WHERE customer = $1 AND period = $2")
            .bind(customer)
            .bind(period)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every held period, oldest first.
    pub async fn held_periods(&self) -> Result<Vec<HeldPeriod>, StoreError> {
        let rows = sqlx::query(
            "SELECT customer, period, sources, reason, held_since FROM held_periods ORDER BY held_since, customer, period",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| HeldPeriod {
                customer: r.get(0),
                period: r.get(1),
                sources: r.get(2),
                reason: r.get(3),
                held_since: parse_instant(r.get(4)).unwrap_or_default(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::{t, temp_store};

    #[tokio::test]
    async fn a_watermark_moves_only_forward_and_a_failure_keeps_it() {
        let (_dir, store) = temp_store().await;
        let (a, b, c) = (
            t("2026-11-01T00:00:00Z"),
            t("2026-11-02T00:00:00Z"),
            t("2026-11-03T00:00:00Z"),
        );
        store.source_succeeded("zammad", b, 3, b).await.unwrap();
        store.source_succeeded("zammad", a, 2, c).await.unwrap();
        store
            .source_failed("zammad", "https://u:pw@z.example: 503", c)
            .await
            .unwrap();
        store
            .source_failed("zammad", "again", c + chrono::Duration::hours(1))
            .await
            .unwrap();
        let h = &store.source_health().await.unwrap()[0];
        assert_eq!(
            h.complete_through,
            Some(b),
            "never moves back, kept on failure"
        );
        assert_eq!(h.tickets_synced, 5);
        assert_eq!(h.failing_since, Some(c), "since the first failure");
        assert_eq!(h.last_error.as_deref(), Some("again"));
        store.source_succeeded("zammad", c, 0, c).await.unwrap();
        let h = &store.source_health().await.unwrap()[0];
        assert_eq!(
            (h.complete_through, h.failing_since, h.last_error.clone()),
            (Some(c), None, None)
        );
    }

    #[tokio::test]
    async fn a_held_period_keeps_its_first_instant_until_released() {
        let (_dir, store) = temp_store().await;
        let (a, b) = (t("2026-11-01T06:00:00Z"), t("2026-11-01T07:00:00Z"));
        store
            .hold_period("acme", "2026-10", "zammad", "failing", a)
            .await
            .unwrap();
        let h = store
            .hold_period("acme", "2026-10", "zammad, rt", "x", b)
            .await
            .unwrap();
        assert_eq!((h.held_since, h.sources.as_str()), (a, "zammad, rt"));
        assert_eq!(store.status().await.unwrap().held.len(), 1);
        store.release_period("acme", "2026-10").await.unwrap();
        assert!(store.held_periods().await.unwrap().is_empty());
    }
}
