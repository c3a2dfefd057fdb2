//! What became of the drafts pushed to accounting systems, and the cards
//! and banks sold through them: the remote status of each sent draft
//! (paid, voided, deleted), with the history of the statuses it was seen
//! in, and the prepaid sales read from the ledgers' invoices.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError, instant};

/// A draft an accounting system accepted, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedDraft {
    pub target: String,
    pub key: String,
    pub remote_id: String,
    /// As last seen; none: not asked yet.
    pub status: Option<String>,
    pub checked_at: Option<String>,
}

/// A punch card or hour bank sold as an invoice line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sale {
    pub target: String,
    pub invoice: String,
    pub line: String,
    /// 1..quantity of the line.
    pub unit: i64,
    pub customer: String,
    pub item: String,
    /// `card` or `bank`.
    pub kind: String,
    /// Punches of a card, minutes of a bank.
    pub size: i64,
    /// `YYYY-MM-DD`.
    pub bought: String,
    pub price: String,
    pub currency: Option<String>,
    pub discount: Option<String>,
    pub valid_until: Option<String>,
}

/// The remote status stored for the item `key` of `target`: `None` when
/// there is no such item, `Some(None)` when nothing was seen yet.
async fn stored_remote_status<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    target: &str,
    key: &str,
) -> Result<Option<Option<String>>, sqlx::Error> {
    Ok(
        sqlx::query("SELECT remote_status FROM outbox WHERE target = $1 AND key = $2")
            .bind(target)
            .bind(key)
            .fetch_optional(db)
            .await?
            .map(|r| r.get(0)),
    )
}

impl Store {
    /// Drafts accepted by a target (items keyed `draft:…` with a remote id);
    /// `open_only`: those not yet paid, voided or deleted.
    pub async fn pushed_drafts(&self, open_only: bool) -> Result<Vec<PushedDraft>, StoreError> {
        let mut q = String::from(
            "SELECT target, key, remote_id, remote_status, status_checked_at FROM outbox \
             WHERE state = 'sent' AND remote_id IS NOT NULL AND key LIKE 'draft:%'",
        );
        if open_only {
            q.push_str(
                " AND (remote_status IS NULL OR remote_status NOT IN ('paid', 'voided', 'deleted'))",
            );
        }
        q.push_str(" ORDER BY id");
        Ok(sqlx::query(sqlx::AssertSqlSafe(q))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| PushedDraft {
                target: r.get(0),
                key: r.get(1),
                remote_id: r.get(2),
                status: r.get(3),
                checked_at: r.get(4),
            })
            .collect())
    }

    /// Records what a target says became of a pushed draft; `true` when
    /// that is a change.
    pub async fn set_remote_status(
        &self,
        target: &str,
        key: &str,
        status: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let before = stored_remote_status(&mut *tx, target, key).await?;
        let Some(before) = before else {
            tx.rollback().await?;
            return Ok(false);
        };
        sqlx::query(
            "UPDATE outbox SET remote_status = $1, status_checked_at = $2 WHERE target = $3 AND key = $4",
        )
        .bind(status)
        .bind(instant(now))
        .bind(target)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        let changed = before.as_deref() != Some(status);
        if changed {
            sqlx::query(
                "INSERT INTO remote_status_changes (target, key, status, seen_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (target, key, status) DO NOTHING",
            )
            .bind(target)
            .bind(key)
            .bind(status)
            .bind(instant(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// The statuses a draft was seen in, in the order first seen.
    pub async fn status_history(&self, target: &str, key: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query(
            "SELECT status FROM remote_status_changes WHERE target = $1 AND key = $2 ORDER BY seen_at, status",
        )
        .bind(target)
        .bind(key)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect())
    }

    /// The last seen status of the item `key` of `target`.
    pub async fn remote_status(
        &self,
        target: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(stored_remote_status(&self.pool, target, key)
            .await?
            .flatten())
    }

    /// The key of the draft `target` calls `remote_id`, if we pushed it.
    pub async fn draft_by_remote(
        &self,
        target: &str,
        remote_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query(
            "SELECT key FROM outbox WHERE target = $1 AND remote_id = $2 AND key LIKE 'draft:%' ORDER BY id DESC LIMIT 1",
        )
        .bind(target)
        .bind(remote_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.get(0)))
    }

    /// Records a card or bank sold; `false` when this unit of this line was
    /// recorded before (a sale seen again, a webhook delivered twice).
    pub async fn record_sale(&self, sale: &Sale, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO prepaid_sales (target, invoice, line, unit, customer, item, kind, size, bought, price, currency, discount, valid_until, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (target, invoice, line, unit) DO NOTHING",
        )
        .bind(&sale.target)
        .bind(&sale.invoice)
        .bind(&sale.line)
        .bind(sale.unit)
        .bind(&sale.customer)
        .bind(&sale.item)
        .bind(&sale.kind)
        .bind(sale.size)
        .bind(&sale.bought)
        .bind(&sale.price)
        .bind(sale.currency.clone())
        .bind(sale.discount.clone())
        .bind(sale.valid_until.clone())
        .bind(instant(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every card and bank sold, in the order they were bought.
    pub async fn sales(&self) -> Result<Vec<Sale>, StoreError> {
        Ok(sqlx::query(
            "SELECT target, invoice, line, unit, customer, item, kind, size, bought, price, currency, discount, valid_until \
             FROM prepaid_sales ORDER BY bought, target, invoice, line, unit",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| Sale {
            target: r.get(0),
            invoice: r.get(1),
            line: r.get(2),
            unit: r.get(3),
            customer: r.get(4),
            item: r.get(5),
            kind: r.get(6),
            size: r.get(7),
            bought: r.get(8),
            price: r.get(9),
            currency: r.get(10),
            discount: r.get(11),
            valid_until: r.get(12),
        })
        .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{closed_acme_october, postgres_store, t, temp_store};
    use crate::{NewOutboxItem, Outcome};

    #[tokio::test]
    async fn sales_are_kept_once_and_a_repush_moves_the_revision_on_both_databases() {
        let (_dir, sqlite) = temp_store().await;
        for store in [sqlite, postgres_store().await] {
            let now = t("2026-11-01T06:00:00Z");
            let sale = Sale {
                target: "xero".into(),
                invoice: "inv-1".into(),
                line: "l-1".into(),
                unit: 1,
                customer: "acme".into(),
                item: "KLIPPEKORT-20".into(),
                kind: "card".into(),
                size: 20,
                bought: "2026-10-05".into(),
                price: "18000.00".into(),
                currency: Some("DKK".into()),
                discount: Some("10".into()),
                valid_until: None,
            };
            assert!(store.record_sale(&sale, now).await.unwrap());
            assert!(!store.record_sale(&sale, now).await.unwrap(), "seen again");
            let second = Sale {
                invoice: "inv-2".into(),
                ..sale.clone()
            };
            assert!(store.record_sale(&second, now).await.unwrap());
            assert_eq!(store.sales().await.unwrap().len(), 2);

            let key = "draft:acme:2026-10:r1";
            store
                .close_period(&closed_acme_october(key), now)
                .await
                .unwrap();
            let claim = store.claim("drafts", now).await.unwrap().unwrap();
            claim
                .finish(
                    Outcome::Sent {
                        remote_id: Some("r-1".into()),
                        note: None,
                    },
                    now,
                )
                .await
                .unwrap();
            assert_eq!(store.pushed_drafts(true).await.unwrap().len(), 1);
            assert!(
                store
                    .set_remote_status("drafts", key, "draft", now)
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .set_remote_status("drafts", key, "draft", now)
                    .await
                    .unwrap()
            );
            assert!(
                store
                    .set_remote_status("drafts", key, "deleted", t("2026-11-02T06:00:00Z"))
                    .await
                    .unwrap()
            );
            assert!(store.pushed_drafts(true).await.unwrap().is_empty(), "final");
            assert_eq!(
                store.status_history("drafts", key).await.unwrap(),
                vec!["draft".to_owned(), "deleted".to_owned()]
            );
            assert_eq!(
                store
                    .draft_by_remote("drafts", "r-1")
                    .await
                    .unwrap()
                    .as_deref(),
                Some(key)
            );
            let push = &NewOutboxItem {
                target: "drafts".into(),
                key: "draft:acme:2026-10:r2".into(),
                payload: "{}".into(),
            };
            assert!(
                store
                    .repush("acme", "2026-10", 1, "{}", push, now)
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .repush("acme", "2026-10", 1, "{}", push, now)
                    .await
                    .unwrap(),
                "already at r2"
            );
            assert_eq!(
                store
                    .closed_period("acme", "2026-10")
                    .await
                    .unwrap()
                    .unwrap()
                    .revision,
                2
            );
            let claim = store.claim("drafts", now).await.unwrap().unwrap();
            assert_eq!(claim.item.key, "draft:acme:2026-10:r2");
        }
    }
}
