//! The outbox: every push to a target (a draft to an accounting system, an
//! SLA note to a helpdesk) is a row written *before* anything is sent.
//!
//! This is what makes pushes exactly-once. A closed period's draft and its
//! outbox item are written in one transaction (see `drafts`); the worker
//! claims an item, pushes it, and marks it sent only *after* the target
//! confirmed it ([`Claim::finish`]). Every item carries an idempotency key
//! derived from what it represents (`draft:{customer}:{period}:r{revision}`,
//! `sla:{source}:{ticket}:{metric}:{kind}`), unique per target, so a crash
//! at any instant neither loses a push nor makes a second one.
//!
//! An item is `pending` until it is sent, or `dead` after too many failed
//! attempts (`status` shows it, nothing retries it); a draft that waits for
//! finance is `awaiting_review` (see `review`), which a claim never takes.

use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

use crate::{Backend, Store, StoreError, instant, scrub};

/// Where an outbox item is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxState {
    Pending,
    Sent,
    /// Gave up after too many attempts: `status` shows it, nothing retries it.
    Dead,
}

impl OutboxState {
    fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sent => "sent",
            OutboxState::Dead => "dead",
        }
    }
}

/// A push to queue: what to send (`payload`), to which target, under
/// which idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOutboxItem {
    pub target: String,
    pub key: String,
    pub payload: String,
}

/// An item queued for a target, as [`Store::queued`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedItem {
    pub key: String,
    pub payload: String,
}

/// What waits to be pushed to one target, as the push plan counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitingTarget {
    pub target: String,
    /// Pending items keyed `draft:…`.
    pub drafts: i64,
    /// Every other pending item (SLA notes, …).
    pub others: i64,
}

/// An item whose last attempt failed and that is not sent (pending again
/// or dead), as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailingItem {
    pub target: String,
    pub key: String,
    /// Failed attempts so far.
    pub attempts: i64,
    /// The last attempt's error, redacted.
    pub last_error: String,
}

/// A sent item whose target showed something other than what we sent
/// (kept for `status`, never "fixed").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteDifference {
    pub target: String,
    pub key: String,
    /// What the target calls it; empty when it said nothing.
    pub remote_id: String,
    pub note: String,
}

/// One push waiting or done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub target: String,
    pub key: String,
    pub payload: String,
    pub attempts: i64,
}

/// The one outbox INSERT: `payload` queued for `target` under `key`, due at
/// `now`; `false` when the key was queued before (it is left as it is).
pub(crate) async fn queue_push<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    target: &str,
    key: &str,
    payload: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    queue_push_in(db, target, key, payload, false, now).await
}

/// Queues one push, `pending`, or `awaiting_review` when finance approves
/// it first (claim takes only `pending`).
pub(crate) async fn queue_push_in<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    target: &str,
    key: &str,
    payload: &str,
    awaiting_review: bool,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO outbox (target, key, payload, state, attempts, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $5, 0, $4, $4, $4) ON CONFLICT (target, key) DO NOTHING",
    )
    .bind(target)
    .bind(key)
    .bind(payload)
    .bind(instant(now))
    .bind(if awaiting_review {
        "awaiting_review"
    } else {
        OutboxState::Pending.as_str()
    })
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// An outbox item being pushed; see [`Store::claim`].
pub struct Claim {
    pub item: OutboxItem,
    pool: AnyPool,
}

/// How a push ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; `remote_id` is what the target calls it, `note` a
    /// difference it showed (kept for `status`, never "fixed").
    Sent {
        remote_id: Option<String>,
        note: Option<String>,
    },
    /// Retry at `next`, or never (`dead`).
    Failed {
        error: String,
        next: DateTime<Utc>,
        dead: bool,
    },
}

impl Outcome {
    /// Accepted, with nothing more to say.
    pub const SENT: Outcome = Outcome::Sent {
        remote_id: None,
        note: None,
    };
}

impl Claim {
    /// Writes how the push ended and releases the claim.
    pub async fn finish(self, outcome: Outcome, now: DateTime<Utc>) -> Result<(), StoreError> {
        let (remote_id, note) = match &outcome {
            Outcome::Sent { remote_id, note } => (remote_id.clone(), note.clone()),
            Outcome::Failed { .. } => (None, None),
        };
        let (state, error, next, attempts) = match &outcome {
            Outcome::Sent { .. } => (OutboxState::Sent, None, now, 0),
            Outcome::Failed { error, next, dead } => (
                if *dead {
                    OutboxState::Dead
                } else {
                    OutboxState::Pending
                },
                Some(scrub(error)),
                *next,
                1,
            ),
        };
        let q = sqlx::query(
            "UPDATE outbox SET state = $1, attempts = attempts + $2, last_error = COALESCE($3, last_error), \
             next_attempt_at = $4, updated_at = $5, remote_id = COALESCE($7, remote_id), remote_note = $8 \
             WHERE id = $6 AND state = 'pending'",
        )
        .bind(state.as_str())
        .bind(attempts)
        .bind(error)
        .bind(instant(next))
        .bind(instant(now))
        .bind(self.item.id)
        .bind(remote_id)
        .bind(note);
        q.execute(&self.pool).await?;
        Ok(())
    }
}

impl Store {
    /// Queues one push (a note, a draft outside a period close); `false`
    /// when the same key was queued before: the key is what makes it once.
    pub async fn enqueue(
        &self,
        target: &str,
        key: &str,
        payload: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(queue_push(&self.pool, target, key, payload, now).await?)
    }

    /// Claims the first item of `target` due at `now` under the default
    /// lease of ten minutes (see [`Store::claim_many`]).
    pub async fn claim(
        &self,
        target: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>, StoreError> {
        Ok(self
            .claim_many(target, now, 1, std::time::Duration::from_secs(600))
            .await?
            .pop())
    }

    /// Claims up to `limit` items of `target` due at `now`, oldest first.
    ///
    /// On PostgreSQL a claim is a lease, not a held transaction (issue 19):
    /// the items' next attempt moves to `now + lease` in one short
    /// statement, so no other instance takes them meanwhile, and no pool
    /// connection is held while the push waits on the network. Should the
    /// instance die mid-push, the items are due again when the lease runs
    /// out; the push looks the draft up before creating it, so a second
    /// attempt does not duplicate it. On SQLite (one process, one worker
    /// per target) the items are only read.
    pub async fn claim_many(
        &self,
        target: &str,
        now: DateTime<Utc>,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<Claim>, StoreError> {
        let until =
            now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(10));
        const DUE: &str = "SELECT id FROM outbox WHERE target = $1 AND state = 'pending' \
             AND next_attempt_at <= $2 ORDER BY id LIMIT $4";
        let sql = match self.backend {
            // One process owns a SQLite file (the writer lock) and one
            // worker per target claims: nobody else could take the items,
            // and a crash leaves them due at once for the restarted process.
            Backend::Sqlite => format!(
                "SELECT id, target, key, payload, attempts FROM outbox WHERE id IN ({DUE}) AND $3 = $3"
            ),
            Backend::Postgres => format!(
                "UPDATE outbox SET next_attempt_at = $3 WHERE id IN ({DUE} FOR UPDATE SKIP LOCKED) \
                 RETURNING id, target, key, payload, attempts"
            ),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(target)
            .bind(instant(now))
            .bind(instant(until))
            .bind(i64::try_from(limit.max(1)).unwrap_or(1))
            .fetch_all(&self.pool)
            .await?;
        let mut claims: Vec<Claim> = rows
            .into_iter()
            .map(|r| Claim {
                item: OutboxItem {
                    id: r.get(0),
                    target: r.get(1),
                    key: r.get(2),
                    payload: r.get(3),
                    attempts: r.get(4),
                },
                pool: self.pool.clone(),
            })
            .collect();
        claims.sort_by_key(|c| c.item.id);
        Ok(claims)
    }

    /// The earliest next attempt of a pending item of `target`, to sleep until.
    pub async fn next_due(&self, target: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE target = $1 AND state = 'pending'",
        )
        .bind(target)
        .fetch_one(&self.pool)
        .await?
        .get(0))
    }

    /// Per target with pending items: how many drafts and other items wait.
    pub async fn waiting(&self) -> Result<Vec<WaitingTarget>, StoreError> {
        let rows = sqlx::query(
            "SELECT target, SUM(CASE WHEN key LIKE 'draft:%' THEN 1 ELSE 0 END), COUNT(*) \
             FROM outbox WHERE state = 'pending' GROUP BY target ORDER BY target",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let (target, drafts, all): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
                WaitingTarget {
                    target,
                    drafts,
                    others: all - drafts,
                }
            })
            .collect())
    }

    /// Every item queued for `target`, in queue order.
    pub async fn queued(&self, target: &str) -> Result<Vec<QueuedItem>, StoreError> {
        let rows = sqlx::query("SELECT key, payload FROM outbox WHERE target = $1 ORDER BY id")
            .bind(target)
            .fetch_all(&self.pool)
            .await?;
        Ok(crate::pairs(rows, |key, payload| QueuedItem {
            key,
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{
        close_october_twice_and_send, closed_acme_october, postgres_store, t, temp_store,
    };

    #[tokio::test]
    async fn the_outbox_works_the_same_on_postgres() {
        let store = postgres_store().await;
        assert_eq!(store.backend(), Backend::Postgres);
        let now = t("2026-11-01T06:00:00Z");
        close_october_twice_and_send(&store, now).await;
        assert!(
            store
                .upsert_ticket("s", "T-1", "acme", "{}", now)
                .await
                .unwrap()
        );
        assert!(
            !store
                .upsert_ticket("s", "T-1", "acme", "{}", now)
                .await
                .unwrap()
        );
        let status = store.status().await.unwrap();
        assert_eq!(
            (status.tickets, status.closed_periods, status.outbox_sent),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn on_postgres_a_claimed_item_is_skipped_and_one_instance_leads() {
        let store = postgres_store().await;
        let now = t("2026-11-01T06:00:00Z");
        for key in ["a", "b"] {
            assert!(store.enqueue("drafts", key, "{}", now).await.unwrap());
        }
        assert!(!store.enqueue("drafts", "a", "{}", now).await.unwrap());
        let first = store.claim("drafts", now).await.unwrap().unwrap();
        let second = store.claim("drafts", now).await.unwrap().unwrap();
        assert_eq!(
            (first.item.key.as_str(), second.item.key.as_str()),
            ("a", "b")
        );
        assert!(store.claim("drafts", now).await.unwrap().is_none());
        // A claim dropped without finishing (a crash) is a lease that runs
        // out: the item is due again ten minutes later, not before.
        drop(second);
        first.finish(Outcome::SENT, now).await.unwrap();
        assert!(store.claim("drafts", now).await.unwrap().is_none());
        let later = now + chrono::Duration::minutes(10);
        let again = store.claim("drafts", later).await.unwrap().unwrap();
        assert_eq!(again.item.key, "b");
        again.finish(Outcome::SENT, later).await.unwrap();

        let mut leader = store
            .try_lead()
            .await
            .unwrap()
            .expect("the first instance leads");
        assert!(store.try_lead().await.unwrap().is_none(), "only one leads");
        assert!(leader.holds().await);
        drop(leader);
        // The lock goes with the leader's connection.
        let mut next = None;
        for _ in 0..50 {
            next = store.try_lead().await.unwrap();
            if next.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(next.is_some(), "a successor takes over");
    }

    #[tokio::test]
    async fn a_failed_push_waits_for_its_next_attempt_and_can_die() {
        let (_dir, store) = temp_store().await;
        let now = t("2026-11-01T06:00:00Z");
        let closed = closed_acme_october("k");
        store.close_period(&closed, now).await.unwrap();
        let failed = |next: &str, dead: bool| Outcome::Failed {
            error: "HTTP 503".into(),
            next: t(next),
            dead,
        };
        let claim = store.claim("drafts", now).await.unwrap().unwrap();
        claim
            .finish(failed("2026-11-01T06:05:00Z", false), now)
            .await
            .unwrap();
        assert!(store.claim("drafts", now).await.unwrap().is_none());
        let later = t("2026-11-01T06:05:00Z");
        let claim = store.claim("drafts", later).await.unwrap().unwrap();
        assert_eq!(claim.item.attempts, 1);
        claim
            .finish(failed("2026-11-01T06:10:00Z", true), later)
            .await
            .unwrap();
        let status = store.status().await.unwrap();
        assert_eq!((status.outbox_pending, status.outbox_dead), (0, 1));
        assert_eq!(
            status.failing[0].attempts, 2,
            "two failed attempts are counted"
        );
        assert!(
            store
                .claim("drafts", t("2027-01-01T00:00:00Z"))
                .await
                .unwrap()
                .is_none()
        );
    }
}
