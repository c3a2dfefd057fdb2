//! Ticket snapshots, one row per `(source, id)`: the canonical ticket as a
//! helpdesk last showed it, and the customer it belongs to.
//!
//! A snapshot is written only when it changed, and every change marks the
//! ticket due for the SLA tick (see `sla`). Reads count the snapshots they
//! hand out ([`Store::tickets_read`]): what a tick or a close cost.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::sla::mark_sla_due;
use crate::{Store, StoreError, instant};

/// A ticket snapshot to store (see [`Store::upsert_tickets`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TicketToStore<'a> {
    /// The ticket's id in its source.
    pub id: &'a str,
    pub customer: &'a str,
    /// The canonical ticket, as JSON.
    pub snapshot: &'a str,
}

/// A stored ticket snapshot and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTicket {
    pub source: String,
    /// The ticket's id in its source.
    pub id: String,
    /// The canonical ticket, as JSON.
    pub snapshot: String,
}

/// A source that holds tickets of a customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceCustomer {
    pub source: String,
    pub customer: String,
}

impl Store {
    /// Stores a ticket snapshot; `true` when it is new or changed.
    pub async fn upsert_ticket(
        &self,
        source: &str,
        id: &str,
        customer: &str,
        snapshot: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let ticket = TicketToStore {
            id,
            customer,
            snapshot,
        };
        let changed = self.upsert_tickets(source, &[ticket], now).await?;
        Ok(changed[0])
    }

    /// Stores a batch of ticket snapshots in one transaction; for each, `true`
    /// when it is new or changed. One transaction per batch, not per ticket:
    /// a first sync of thousands of tickets costs a few fsyncs, not thousands.
    pub async fn upsert_tickets(
        &self,
        source: &str,
        tickets: &[TicketToStore<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut changed = Vec::with_capacity(tickets.len());
        for &TicketToStore {
            id,
            customer,
            snapshot,
        } in tickets
        {
            let current: Option<String> =
                sqlx::query("SELECT snapshot FROM tickets WHERE source = $1 AND id = $2")
                    .bind(source)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.get(0));
            if current.as_deref() == Some(snapshot) {
                changed.push(false);
                continue;
            }
            sqlx::query(
                "INSERT INTO tickets (source, id, customer, snapshot, synced_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (source, id) DO UPDATE SET customer = excluded.customer, snapshot = excluded.snapshot, synced_at = excluded.synced_at",
            )
            .bind(source)
            .bind(id)
            .bind(customer)
            .bind(snapshot)
            .bind(instant(now))
            .execute(&mut *tx)
            .await?;
            mark_sla_due(&mut *tx, source, id).await?;
            changed.push(true);
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Forgets a ticket the helpdesk deleted; `true` when one was stored.
    /// A month already billed with it is corrected at the next close.
    pub async fn delete_ticket(&self, source: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tickets WHERE source = $1 AND id = $2")
            .bind(source)
            .bind(id)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM sla_due WHERE source = $1 AND id = $2")
            .bind(source)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Moves a ticket of `source` from key `old` to key `new` (a connector
    /// changed how it keys tickets), with the SLA notes queued or sent for
    /// it, in one transaction: a note already on the ticket is not queued
    /// again under the new key.
    pub async fn rekey_ticket(
        &self,
        source: &str,
        old: &str,
        new: &str,
        snapshot: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let taken: Option<i64> = sqlx::query("SELECT 1 FROM tickets WHERE source = $1 AND id = $2")
            .bind(source)
            .bind(new)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get::<i32, _>(0).into());
        if taken.is_some() {
            sqlx::query("DELETE FROM tickets WHERE source = $1 AND id = $2")
                .bind(source)
                .bind(old)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("UPDATE tickets SET id = $3, snapshot = $4 WHERE source = $1 AND id = $2")
                .bind(source)
                .bind(old)
                .bind(new)
                .bind(snapshot)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM sla_due WHERE source = $1 AND id = $2")
            .bind(source)
            .bind(old)
            .execute(&mut *tx)
            .await?;
        mark_sla_due(&mut *tx, source, new).await?;
        let (old_prefix, new_prefix) = (
            format!("sla:{source}:{old}:"),
            format!("sla:{source}:{new}:"),
        );
        let items = sqlx::query("SELECT id, key, payload FROM outbox WHERE key LIKE $1")
            .bind(format!("{old_prefix}%"))
            .fetch_all(&mut *tx)
            .await?;
        for r in items {
            let (id, key, payload): (i64, String, String) = (r.get(0), r.get(1), r.get(2));
            let Some(rest) = key.strip_prefix(&old_prefix) else {
                continue;
            };
            let payload = payload.replace(
                &format!("\"ticket\":\"{old}\""),
                &format!("\"ticket\":\"{new}\""),
            );
            sqlx::query("UPDATE outbox SET key = $2, payload = $3 WHERE id = $1")
                .bind(id)
                .bind(format!("{new_prefix}{rest}"))
                .bind(payload)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every ticket snapshot, ordered by source and id.
    pub async fn ticket_snapshots(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT snapshot FROM tickets ORDER BY source, id")
            .fetch_all(&self.pool)
            .await?;
        self.count_read(rows.len());
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    /// Every ticket of `source`, by id.
    pub async fn source_tickets(&self, source: &str) -> Result<Vec<StoredTicket>, StoreError> {
        let rows = sqlx::query("SELECT id, snapshot FROM tickets WHERE source = $1 ORDER BY id")
            .bind(source)
            .fetch_all(&self.pool)
            .await?;
        self.count_read(rows.len());
        Ok(rows
            .into_iter()
            .map(|r| StoredTicket {
                source: source.to_owned(),
                id: r.get(0),
                snapshot: r.get(1),
            })
            .collect())
    }

    /// Every ticket snapshot with its source, ordered by source and id.
    pub async fn tickets_with_source(&self) -> Result<Vec<StoredTicket>, StoreError> {
        let rows = sqlx::query("SELECT source, id, snapshot FROM tickets ORDER BY source, id")
            .fetch_all(&self.pool)
            .await?;
        Ok(self.stored_tickets(rows))
    }

    /// The ticket snapshots of one customer with their source, ordered by
    /// source and id (a statement or a report reads no other customer's).
    pub async fn customer_tickets(&self, customer: &str) -> Result<Vec<StoredTicket>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, id, snapshot FROM tickets WHERE customer = $1 ORDER BY source, id",
        )
        .bind(customer)
        .fetch_all(&self.pool)
        .await?;
        Ok(self.stored_tickets(rows))
    }

    /// Rows of `source, id, snapshot`, counted as read.
    fn stored_tickets(&self, rows: Vec<sqlx::any::AnyRow>) -> Vec<StoredTicket> {
        self.count_read(rows.len());
        rows.into_iter()
            .map(|r| StoredTicket {
                source: r.get(0),
                id: r.get(1),
                snapshot: r.get(2),
            })
            .collect()
    }

    /// Which sources hold tickets of which customers.
    pub async fn ticket_sources(&self) -> Result<Vec<SourceCustomer>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT source, customer FROM tickets ORDER BY source, customer")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|r| SourceCustomer {
                source: r.get(0),
                customer: r.get(1),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{t, temp_store};

    #[tokio::test]
    async fn a_ticket_moved_to_a_new_key_takes_its_notes_along() {
        let (_dir, store) = temp_store().await;
        let now = t("2026-11-01T00:00:00Z");
        store
            .upsert_tickets(
                "desk",
                &[TicketToStore {
                    id: "1",
                    customer: "acme",
                    snapshot: "{\"id\":\"1\"}",
                }],
                now,
            )
            .await
            .unwrap();
        let note = "{\"kind\":\"note\",\"source\":\"desk\",\"ticket\":\"1\"}";
        assert!(
            store
                .enqueue("desk", "sla:desk:1:response:breach", note, now)
                .await
                .unwrap()
        );
        assert!(
            store
                .enqueue("desk", "sla:desk:10:response:breach", note, now)
                .await
                .unwrap()
        );
        store
            .rekey_ticket("desk", "1", "T-1001", "{\"id\":\"T-1001\"}")
            .await
            .unwrap();
        assert_eq!(
            store.source_tickets("desk").await.unwrap(),
            [StoredTicket {
                source: "desk".into(),
                id: "T-1001".into(),
                snapshot: "{\"id\":\"T-1001\"}".into(),
            }]
        );
        // Queued under the new key already: not queued again.
        assert!(
            !store
                .enqueue("desk", "sla:desk:T-1001:response:breach", "{}", now)
                .await
                .unwrap()
        );
        // Another ticket's note (ticket 10) did not move.
        assert!(
            !store
                .enqueue("desk", "sla:desk:10:response:breach", "{}", now)
                .await
                .unwrap()
        );
        assert!(
            store
                .enqueue("desk", "sla:desk:1:response:breach", "{}", now)
                .await
                .unwrap()
        );
    }
}
