//! Signed webhook deliveries already accepted, by `(source, signature)`: a
//! replayed delivery is refused, however many copies arrive at once, and
//! the rows older than the replay window are purged as new ones come.

use chrono::{DateTime, Utc};

use crate::{Store, StoreError, instant};

impl Store {
    /// Was this signed webhook delivery accepted before (a replay)?
    pub async fn delivery_seen(&self, source: &str, signature: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 FROM webhook_deliveries WHERE source = $1 AND signature = $2")
                .bind(source)
                .bind(signature)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Claims a webhook delivery: `true` for the first caller, `false` for
    /// every later one (a replay), however many arrive at once: the
    /// INSERT … ON CONFLICT DO NOTHING decides, in one transaction with
    /// the purge. Deliveries older than `forget_before` are dropped: the
    /// replay window refuses them by their timestamp anyway. A claim whose
    /// work then fails is given back with [`Store::forget_delivery`].
    pub async fn remember_delivery(
        &self,
        source: &str,
        signature: &str,
        now: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
            .bind(instant(forget_before))
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (source, signature, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (source, signature) DO NOTHING",
        )
        .bind(source)
        .bind(signature)
        .bind(instant(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives back a claimed delivery whose work failed: it may be sent again.
    pub async fn forget_delivery(&self, source: &str, signature: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM webhook_deliveries WHERE source = $1 AND signature = $2")
            .bind(source)
            .bind(signature)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::{postgres_store, t, temp_store};

    #[tokio::test]
    async fn a_webhook_delivery_is_accepted_once() {
        let (_dir, store) = temp_store().await;
        let now = t("2026-11-01T06:00:00Z");
        let old = t("2026-11-01T05:50:00Z");
        assert!(
            store
                .remember_delivery("desk", "sig", now, old)
                .await
                .unwrap()
        );
        assert!(
            !store
                .remember_delivery("desk", "sig", now, old)
                .await
                .unwrap()
        );
        assert!(
            store
                .remember_delivery("other", "sig", now, old)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn parallel_identical_deliveries_are_claimed_once_on_both_databases() {
        let (_dir, sqlite) = temp_store().await;
        for store in [sqlite, postgres_store().await] {
            let store = std::sync::Arc::new(store);
            let now = t("2026-11-01T06:00:00Z");
            let old = t("2026-11-01T05:50:00Z");
            let claims: Vec<_> = (0..20)
                .map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store
                            .remember_delivery("desk", "d-1", now, old)
                            .await
                            .unwrap()
                    })
                })
                .collect();
            let mut won = 0;
            for c in claims {
                won += usize::from(c.await.unwrap());
            }
            assert_eq!(won, 1, "{:?}", store.backend());
            // A claim given back (its work failed) can be claimed again.
            store.forget_delivery("desk", "d-1").await.unwrap();
            assert!(
                store
                    .remember_delivery("desk", "d-1", now, old)
                    .await
                    .unwrap()
            );
        }
    }
}
