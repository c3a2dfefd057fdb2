//! The review gate between a period's close and its push (mapping
//! `review:`): a draft that needs approval is stored with its outbox item in
//! state `awaiting_review`, which [`Store::claim`] never takes. Approval
//! makes the item `pending` (pushed once, under its idempotency key); a
//! hold keeps it waiting with a reason; a rejection makes it `rejected`
//! (never pushed), and the period is billed again at a later close only
//! when its inputs' fingerprint changed ([`Store::rebill`]).

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::outbox::NewOutboxItem;
use crate::{Store, StoreError, instant};

/// A draft that waits for review: why, and the fingerprint of its inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewRequest {
    /// The mapping's policy that made it wait (`required`, `above: 1000.00`).
    pub policy: String,
    pub fingerprint: String,
}

/// Where a reviewed draft is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewState {
    Awaiting,
    Held,
    Approved,
    Rejected,
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Awaiting => "awaiting",
            ReviewState::Held => "held",
            ReviewState::Approved => "approved",
            ReviewState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Result<ReviewState, StoreError> {
        Ok(match s {
            "awaiting" => ReviewState::Awaiting,
            "held" => ReviewState::Held,
            "approved" => ReviewState::Approved,
            "rejected" => ReviewState::Rejected,
            other => return Err(StoreError::Corrupt(format!("review state `{other}`"))),
        })
    }

    /// Still waiting for a decision (held drafts too).
    pub fn waiting(self) -> bool {
        matches!(self, ReviewState::Awaiting | ReviewState::Held)
    }
}

/// What finance decides about a waiting draft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Hold,
    Reject,
}

impl Decision {
    /// The audit action it is recorded as.
    pub fn action(self) -> &'static str {
        match self {
            Decision::Approve => "draft_approved",
            Decision::Hold => "draft_held",
            Decision::Reject => "draft_rejected",
        }
    }
}

/// A draft under review, with the period's stored total and document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    pub customer: String,
    pub period: String,
    pub revision: i64,
    pub target: String,
    pub key: String,
    pub state: ReviewState,
    pub policy: String,
    pub fingerprint: String,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub created_at: String,
    pub total_net: Option<String>,
    pub currency: Option<String>,
    /// The period's stored document (invoice with explanations, report rows, draft).
    pub document: String,
}

/// Why a decision was not made.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no draft of {customer} {period} is under review")]
    NotFound { customer: String, period: String },
    #[error(
        "the draft of {customer} {period} is {state} already: only awaiting or held drafts can be decided"
    )]
    Decided {
        customer: String,
        period: String,
        state: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for DecideError {
    fn from(e: sqlx::Error) -> Self {
        DecideError::Store(e.into())
    }
}

const SELECT: &str = "SELECT r.customer, r.period, r.revision, r.target, r.key, r.state, r.policy, \
     r.fingerprint, r.reason, r.decided_by, r.decided_at, r.created_at, p.total_net, p.currency, p.document \
     FROM reviews r JOIN periods p ON p.customer = r.customer AND p.period = r.period";

fn review(r: sqlx::any::AnyRow) -> Result<Review, StoreError> {
    let state: String = r.get(5);
    Ok(Review {
        customer: r.get(0),
        period: r.get(1),
        revision: r.get(2),
        target: r.get(3),
        key: r.get(4),
        state: ReviewState::parse(&state)?,
        policy: r.get(6),
        fingerprint: r.get(7),
        reason: r.get(8),
        decided_by: r.get(9),
        decided_at: r.get(10),
        created_at: r.get(11),
        total_net: r.get(12),
        currency: r.get(13),
        document: r.get(14),
    })
}

/// Stores the review row of a draft closed (or billed again) under review:
/// `push` is its outbox item, which approval releases.
pub(crate) async fn open_review<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    customer: &str,
    period: &str,
    revision: i64,
    push: &NewOutboxItem,
    request: &ReviewRequest,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO reviews (customer, period, revision, target, key, state, policy, fingerprint, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'awaiting', $6, $7, $8) \
         ON CONFLICT (customer, period) DO UPDATE SET revision = $3, target = $4, key = $5, state = 'awaiting', \
         policy = $6, fingerprint = $7, reason = NULL, decided_by = NULL, decided_at = NULL, created_at = $8",
    )
    .bind(customer)
    .bind(period)
    .bind(revision)
    .bind(&push.target)
    .bind(&push.key)
    .bind(&request.policy)
    .bind(&request.fingerprint)
    .bind(instant(now))
    .execute(db)
    .await?;
    Ok(())
}

impl Store {
    /// Drafts under review, oldest first; `waiting_only`: awaiting and held.
    pub async fn reviews(&self, waiting_only: bool) -> Result<Vec<Review>, StoreError> {
        let q = if waiting_only {
            format!(
                "{SELECT} WHERE r.state IN ('awaiting', 'held') ORDER BY r.created_at, r.customer, r.period"
            )
        } else {
            format!("{SELECT} ORDER BY r.created_at, r.customer, r.period")
        };
        sqlx::query(sqlx::AssertSqlSafe(q))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(review)
            .collect()
    }

    /// One period's review, if its draft was reviewed.
    pub async fn review(&self, customer: &str, period: &str) -> Result<Option<Review>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE r.customer = $1 AND r.period = $2"
        )))
        .bind(customer)
        .bind(period)
        .fetch_optional(&self.pool)
        .await?
        .map(review)
        .transpose()
    }

    /// How many drafts wait for a decision (held ones included).
    pub async fn reviews_waiting(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM reviews WHERE state IN ('awaiting', 'held')")
                .fetch_one(&self.pool)
                .await?
                .get(0),
        )
    }

    /// Decides a waiting draft, in one transaction with its outbox item:
    /// approve → the item becomes pending (due since it was queued), hold → it keeps
    /// waiting with `reason`, reject → it becomes `rejected`, never pushed.
    /// The review as it is afterwards.
    pub async fn decide(
        &self,
        customer: &str,
        period: &str,
        decision: Decision,
        actor: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Review, DecideError> {
        let mut tx = self.pool.begin().await?;
        let (new_state, outbox) = match decision {
            Decision::Approve => (ReviewState::Approved, Some("pending")),
            Decision::Hold => (ReviewState::Held, None),
            Decision::Reject => (ReviewState::Rejected, Some("rejected")),
        };
        let done = sqlx::query(
            "UPDATE reviews SET state = $1, reason = $2, decided_by = $3, decided_at = $4 \
             WHERE customer = $5 AND period = $6 AND state IN ('awaiting', 'held')",
        )
        .bind(new_state.as_str())
        .bind(reason)
        .bind(actor)
        .bind(instant(now))
        .bind(customer)
        .bind(period)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(match self.review(customer, period).await? {
                None => DecideError::NotFound {
                    customer: customer.into(),
                    period: period.into(),
                },
                Some(r) => DecideError::Decided {
                    customer: customer.into(),
                    period: period.into(),
                    state: r.state.as_str(),
                },
            });
        }
        // Recorded with the decision: one is never stored without the other.
        let row = sqlx::query(
            "SELECT r.key, r.revision, p.total_net, p.currency FROM reviews r \
             JOIN periods p ON p.customer = r.customer AND p.period = r.period \
             WHERE r.customer = $1 AND r.period = $2",
        )
        .bind(customer)
        .bind(period)
        .fetch_one(&mut *tx)
        .await?;
        let (key, revision, total, currency): (String, i64, Option<String>, Option<String>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(instant(now))
        .bind(actor)
        .bind(decision.action())
        .bind(format!("{customer}/{period}"))
        .bind(
            serde_json::json!({
                "key": key,
                "revision": revision,
                "total_net": total,
                "currency": currency,
                "reason": reason,
            })
            .to_string(),
        )
        .execute(&mut *tx)
        .await?;
        if let Some(state) = outbox {
            sqlx::query(
                "UPDATE outbox SET state = $1, updated_at = $2 \
                 WHERE state = 'awaiting_review' AND EXISTS (SELECT 1 FROM reviews r \
                   WHERE r.customer = $3 AND r.period = $4 AND r.target = outbox.target AND r.key = outbox.key)",
            )
            .bind(state)
            .bind(instant(now))
            .bind(customer)
            .bind(period)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.review(customer, period)
            .await?
            .ok_or_else(|| DecideError::NotFound {
                customer: customer.into(),
                period: period.into(),
            })
    }
}

/// The rejected review of a period billed again without review: its
/// decision stays in the audit trail.
pub(crate) async fn forget_review(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    customer: &str,
    period: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM reviews WHERE customer = $1 AND period = $2")
        .bind(customer)
        .bind(period)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClosedPeriod;
    use crate::tests::{postgres_store, temp_store};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn closed(revision: i64, fingerprint: &str) -> ClosedPeriod {
        let key = format!("draft:acme:2026-10:r{revision}");
        ClosedPeriod {
            customer: "acme".into(),
            period: "2026-10".into(),
            revision,
            total_net: Some("1500.00".into()),
            currency: Some("EUR".into()),
            document: "{}".into(),
            push: Some(NewOutboxItem {
                target: "books".into(),
                key,
                payload: "{}".into(),
            }),
            report: None,
            review: Some(ReviewRequest {
                policy: "above: 1000.00".into(),
                fingerprint: fingerprint.into(),
            }),
        }
    }

    async fn a_draft_under_review_is_pushed_only_once_approved(store: &Store) {
        let now = t("2026-11-02T06:00:00Z");
        assert!(store.close_period(&closed(1, "f1"), now).await.unwrap());
        assert!(store.claim("books", now).await.unwrap().is_none(), "waits");
        assert_eq!(store.reviews_waiting().await.unwrap(), 1);
        let held = store
            .decide(
                "acme",
                "2026-10",
                Decision::Hold,
                "anna",
                Some("ask Bob"),
                now,
            )
            .await
            .unwrap();
        assert_eq!(
            (held.state, held.reason.as_deref()),
            (ReviewState::Held, Some("ask Bob"))
        );
        assert!(
            store.claim("books", now).await.unwrap().is_none(),
            "held still waits"
        );
        let approved = store
            .decide("acme", "2026-10", Decision::Approve, "anna", None, now)
            .await
            .unwrap();
        assert_eq!(approved.decided_by.as_deref(), Some("anna"));
        assert_eq!(store.reviews_waiting().await.unwrap(), 0);
        let claim = store.claim("books", now).await.unwrap().expect("due now");
        assert_eq!(claim.item.key, "draft:acme:2026-10:r1");
        claim.finish(crate::Outcome::SENT, now).await.unwrap();
        let trail = store
            .audit_entries(&crate::AuditFilter::default())
            .await
            .unwrap();
        let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["draft_held", "draft_approved"]);
        assert_eq!(trail[0].detail["reason"], "ask Bob");
        assert_eq!(
            (trail[1].actor.as_str(), trail[1].subject.as_str()),
            ("anna", "acme/2026-10")
        );
        assert!(matches!(
            store
                .decide("acme", "2026-10", Decision::Reject, "anna", None, now)
                .await,
            Err(DecideError::Decided {
                state: "approved",
                ..
            })
        ));
        assert!(matches!(
            store
                .decide("nobody", "2026-10", Decision::Approve, "anna", None, now)
                .await,
            Err(DecideError::NotFound { .. })
        ));
    }

    async fn a_rejected_draft_is_never_pushed_and_a_rebill_waits_again(store: &Store) {
        let now = t("2026-11-02T06:00:00Z");
        store.close_period(&closed(1, "f1"), now).await.unwrap();
        let r = store
            .decide(
                "acme",
                "2026-10",
                Decision::Reject,
                "anna",
                Some("wrong rate"),
                now,
            )
            .await
            .unwrap();
        assert_eq!(
            (r.state, r.fingerprint.as_str()),
            (ReviewState::Rejected, "f1")
        );
        assert!(store.claim("books", now).await.unwrap().is_none());
        assert_eq!(store.status().await.unwrap().rejected, 1);
        assert!(
            !store.rebill(&closed(2, "f2"), 7, now).await.unwrap(),
            "not at revision 7"
        );
        assert!(store.rebill(&closed(2, "f2"), 1, now).await.unwrap());
        assert!(
            !store.rebill(&closed(2, "f2"), 1, now).await.unwrap(),
            "once"
        );
        let again = store.review("acme", "2026-10").await.unwrap().unwrap();
        assert_eq!(
            (
                again.state,
                again.revision,
                again.fingerprint.as_str(),
                again.reason
            ),
            (ReviewState::Awaiting, 2, "f2", None)
        );
        assert!(store.claim("books", now).await.unwrap().is_none());
        store
            .decide("acme", "2026-10", Decision::Approve, "anna", None, now)
            .await
            .unwrap();
        let claim = store.claim("books", now).await.unwrap().unwrap();
        assert_eq!(claim.item.key, "draft:acme:2026-10:r2");
    }

    #[tokio::test]
    async fn review_gates_the_push_on_sqlite() {
        let (_dir, store) = temp_store().await;
        a_draft_under_review_is_pushed_only_once_approved(&store).await;
        let (_dir, store) = temp_store().await;
        a_rejected_draft_is_never_pushed_and_a_rebill_waits_again(&store).await;
    }

    #[tokio::test]
    async fn review_gates_the_push_on_postgres() {
        a_draft_under_review_is_pushed_only_once_approved(&postgres_store().await).await;
        a_rejected_draft_is_never_pushed_and_a_rebill_waits_again(&postgres_store().await).await;
    }
}
