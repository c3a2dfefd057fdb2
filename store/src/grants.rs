//! OAuth grants: the newest refresh token of each target, sealed by the
//! daemon before it is handed here (the store never sees it in clear), and
//! what `status` shows about it. See migration 0010.
//!
//! A refresh token rotates at each use, so two instances refreshing with
//! the same one would lock each other out: [`Store::refresh_guard`] hands
//! it to one instance at a time (a lease on PostgreSQL) until the rotated
//! token is saved. The scopes each grant was given are kept beside it.

use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

use crate::{Backend, Store, StoreError, instant, parse_instant, read_instant};

/// What `connect` (or a refresh) learned about a target's grant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantInfo {
    /// When the newest access token expires.
    pub access_expires_at: Option<DateTime<Utc>>,
    /// The scopes it grants, space-separated, as the token answer said.
    pub scopes: Option<String>,
    /// The organisation, realm or site chosen (Xero tenantId, QuickBooks
    /// realmId, Atlassian cloudid).
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
}

/// The scopes a target's newest token granted (see [`Store::record_scopes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantedScopes {
    /// Space-separated, as the token answer said.
    pub scopes: String,
    /// When the token that granted them was stored.
    pub granted_at: DateTime<Utc>,
}

/// A target's grant as stored, without its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    pub target: String,
    pub info: GrantInfo,
    /// When `connect` stored it; none: it came from the configuration.
    pub connected_at: Option<DateTime<Utc>>,
    /// Why the system refused it (revoked or expired); none: it works.
    pub revoked: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    /// A refresh token is stored.
    pub has_token: bool,
}

const COLUMNS: &str = "target, access_expires_at, scopes, tenant_id, tenant_name, connected_at, revoked, updated_at, refresh_sealed";

fn record(r: &sqlx::any::AnyRow) -> GrantRecord {
    let sealed: String = r.get(8);
    GrantRecord {
        target: r.get(0),
        info: GrantInfo {
            access_expires_at: parse_instant(r.get(1)),
            scopes: r.get(2),
            tenant_id: r.get(3),
            tenant_name: r.get(4),
        },
        connected_at: parse_instant(r.get(5)),
        revoked: r.get(6),
        updated_at: parse_instant(r.get(7)),
        has_token: !sealed.is_empty(),
    }
}

impl Store {
    /// Stores the grant `connect` obtained: its sealed refresh token
    /// replaces any other (and any plaintext one of migration 0004), in one
    /// transaction; a revocation recorded before is cleared.
    pub async fn connect_grant(
        &self,
        target: &str,
        refresh_sealed: &str,
        info: &GrantInfo,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO oauth_grants (target, refresh_sealed, access_expires_at, scopes, tenant_id, tenant_name, connected_at, revoked, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $7) \
             ON CONFLICT (target) DO UPDATE SET refresh_sealed = excluded.refresh_sealed, \
             access_expires_at = excluded.access_expires_at, scopes = excluded.scopes, \
             tenant_id = excluded.tenant_id, tenant_name = excluded.tenant_name, \
             connected_at = excluded.connected_at, revoked = NULL, updated_at = excluded.updated_at",
        )
        .bind(target)
        .bind(refresh_sealed)
        .bind(info.access_expires_at.map(instant))
        .bind(info.scopes.clone())
        .bind(info.tenant_id.clone())
        .bind(info.tenant_name.clone())
        .bind(instant(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM oauth_tokens WHERE target = $1")
            .bind(target)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records what the newest access token grants and until when.
    pub async fn record_access(
        &self,
        target: &str,
        expires_at: DateTime<Utc>,
        scopes: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_grants (target, refresh_sealed, access_expires_at, scopes, updated_at) \
             VALUES ($1, '', $2, $3, $4) \
             ON CONFLICT (target) DO UPDATE SET access_expires_at = excluded.access_expires_at, \
             scopes = COALESCE(excluded.scopes, oauth_grants.scopes), revoked = NULL, updated_at = excluded.updated_at",
        )
        .bind(target)
        .bind(instant(expires_at))
        .bind(scopes.map(str::to_owned))
        .bind(instant(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that the system refused the grant (`invalid_grant`): `status`
    /// shows `why` until `connect` stores a new one.
    pub async fn mark_revoked(
        &self,
        target: &str,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_grants (target, refresh_sealed, revoked, updated_at) VALUES ($1, '', $2, $3) \
             ON CONFLICT (target) DO UPDATE SET revoked = excluded.revoked, updated_at = excluded.updated_at",
        )
        .bind(target)
        .bind(crate::scrub(why))
        .bind(instant(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The stored grant of `target`, if any.
    pub async fn grant(&self, target: &str) -> Result<Option<GrantRecord>, StoreError> {
        Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM oauth_grants WHERE target = $1"
        )))
        .bind(target)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(record))
    }

    /// Every stored grant, by target.
    pub async fn grants(&self) -> Result<Vec<GrantRecord>, StoreError> {
        Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM oauth_grants ORDER BY target"
        )))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(record)
        .collect())
    }
}

/// How long a PostgreSQL instance may hold a target's refresh token
/// (the token request, with its retries, takes less).
pub const REFRESH_LEASE: std::time::Duration = std::time::Duration::from_secs(120);

/// This process and a number no other guard of it has: a lease's owner.
fn lease_owner() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}:{nanos}:{n}", std::process::id())
}

/// A target's refresh token, held while it is used; see [`Store::refresh_guard`].
pub struct RefreshGuard {
    target: String,
    current: Option<String>,
    legacy: Option<String>,
    /// PostgreSQL: the lease this guard holds.
    owner: Option<String>,
    pool: AnyPool,
}

impl RefreshGuard {
    /// The newest stored refresh token (as the daemon sealed it), if one was ever stored.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// A plaintext refresh token stored before grants were sealed
    /// (migration 0004), when no sealed one is stored.
    pub fn legacy(&self) -> Option<&str> {
        self.legacy.as_deref()
    }

    /// Stores the (sealed) refresh token that replaces it, durably (one
    /// committed transaction), and lets go; a plaintext one of migration
    /// 0004 is removed in the same transaction.
    pub async fn save(mut self, refresh_token: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO oauth_grants (target, refresh_sealed, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (target) DO UPDATE SET refresh_sealed = excluded.refresh_sealed, revoked = NULL, updated_at = excluded.updated_at",
        )
        .bind(self.target.clone())
        .bind(refresh_token.to_owned())
        .bind(instant(now))
        .execute(&mut *tx)
        .await?;
        if let Some(owner) = self.owner.take() {
            sqlx::query(
                "UPDATE oauth_grants SET lease_owner = NULL, lease_until = NULL WHERE target = $1 AND lease_owner = $2",
            )
            .bind(self.target.clone())
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM oauth_tokens WHERE target = $1")
            .bind(self.target.clone())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Drop for RefreshGuard {
    /// Given back unsaved (the refresh failed): the lease is released
    /// without waiting for it to run out, when a runtime is there to do it.
    fn drop(&mut self) {
        let Some(owner) = self.owner.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.pool.clone();
        let target = self.target.clone();
        rt.spawn(async move {
            let _ = sqlx::query(
                "UPDATE oauth_grants SET lease_owner = NULL, lease_until = NULL WHERE target = $1 AND lease_owner = $2",
            )
            .bind(target)
            .bind(owner)
            .execute(&pool)
            .await;
        });
    }
}

impl Store {
    /// The newest stored refresh token of `target` (as sealed by the
    /// daemon), held so that no other instance refreshes with it until
    /// [`RefreshGuard::save`] or the guard is dropped. PostgreSQL: a lease
    /// row (`lease_owner`, `lease_until`, [`REFRESH_LEASE`] long), waited
    /// for while another instance holds it, so no pooled connection is held
    /// across the token request; a dead holder's lease runs out. SQLite has
    /// one writing process. A plaintext token kept by migration 0004's
    /// `oauth_tokens` is offered as [`RefreshGuard::legacy`].
    pub async fn refresh_guard(
        &self,
        target: &str,
        now: DateTime<Utc>,
    ) -> Result<RefreshGuard, StoreError> {
        const SELECT: &str = "SELECT refresh_sealed FROM oauth_grants WHERE target = $1";
        const LEGACY: &str = "SELECT refresh_token FROM oauth_tokens WHERE target = $1";
        let owner = match self.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                sqlx::query(
                    "INSERT INTO oauth_grants (target, refresh_sealed, updated_at) VALUES ($1, '', $2) \
                     ON CONFLICT (target) DO NOTHING",
                )
                .bind(target)
                .bind(instant(now))
                .execute(&self.pool)
                .await?;
                let owner = lease_owner();
                let started = std::time::Instant::now();
                loop {
                    let at =
                        now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
                    let until = at + chrono::Duration::from_std(REFRESH_LEASE).unwrap_or_default();
                    let taken = sqlx::query(
                        "UPDATE oauth_grants SET lease_owner = $2, lease_until = $3 \
                         WHERE target = $1 AND (lease_until IS NULL OR lease_until < $4)",
                    )
                    .bind(target)
                    .bind(owner.clone())
                    .bind(instant(until))
                    .bind(instant(at))
                    .execute(&self.pool)
                    .await?;
                    if taken.rows_affected() == 1 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Some(owner)
            }
        };
        let current: Option<String> = sqlx::query(SELECT)
            .bind(target)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0));
        let current = current.filter(|c| !c.is_empty());
        let legacy = match current {
            Some(_) => None,
            None => sqlx::query(LEGACY)
                .bind(target)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.get::<String, _>(0))
                .filter(|c| !c.is_empty()),
        };
        Ok(RefreshGuard {
            target: target.to_owned(),
            current,
            legacy,
            owner,
            pool: self.pool.clone(),
        })
    }

    /// Records the scopes `target`'s newest token grants (space-separated).
    pub async fn record_scopes(
        &self,
        target: &str,
        scopes: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.keep_newest(("granted_scopes", "target", "scopes"), target, scopes, now)
            .await
    }

    /// The scopes each target's newest token granted, and when, by target.
    pub async fn granted_scopes(
        &self,
    ) -> Result<std::collections::BTreeMap<String, GrantedScopes>, StoreError> {
        sqlx::query("SELECT target, scopes, updated_at FROM granted_scopes")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| {
                let scopes = GrantedScopes {
                    scopes: r.get(1),
                    granted_at: read_instant(&r.get::<String, _>(2))?,
                };
                Ok((r.get(0), scopes))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{postgres_url, t, temp_store};

    #[tokio::test]
    async fn the_newest_refresh_token_is_kept_and_one_instance_refreshes_at_a_time() {
        let url = postgres_url().await;
        let store = Store::open(&url).await.unwrap();
        let now = t("2026-11-01T06:00:00Z");
        let first = store.refresh_guard("qbo", now).await.unwrap();
        assert_eq!(first.current(), None);
        // A second instance waits for the first to store the rotated token.
        let waiting = tokio::spawn({
            async move {
                let other = Store::open(&url).await.unwrap();
                let g = other.refresh_guard("qbo", now).await.unwrap();
                g.current().map(str::to_owned)
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !waiting.is_finished(),
            "the row is locked while a refresh runs"
        );
        first.save("rt-2", now).await.unwrap();
        assert_eq!(waiting.await.unwrap().as_deref(), Some("rt-2"));
        // No connection is held while a token request runs: the pool serves
        // other work beside a held guard.
        let held = store.refresh_guard("qbo", now).await.unwrap();
        assert_eq!(
            store.grant("qbo").await.unwrap().map(|g| g.has_token),
            Some(true)
        );
        // A holder that died (its guard never dropped nor saved) holds the
        // lease until it runs out; a guard dropped unsaved lets go at once.
        std::mem::forget(held);
        let later =
            now + chrono::Duration::from_std(REFRESH_LEASE).unwrap() + chrono::Duration::seconds(1);
        let after_death = store.refresh_guard("qbo", later).await.unwrap();
        assert_eq!(after_death.current(), Some("rt-2"));
        drop(after_death);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        // (Bounded well below the lease, which would otherwise end the wait.)
        let again = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            store.refresh_guard("qbo", later),
        )
        .await
        .expect("a dropped guard released its lease");
        again.unwrap().save("rt-3", later).await.unwrap();
        let (_dir, sqlite) = temp_store().await;
        sqlite
            .refresh_guard("qbo", now)
            .await
            .unwrap()
            .save("rt-9", now)
            .await
            .unwrap();
        assert_eq!(
            sqlite.refresh_guard("qbo", now).await.unwrap().current(),
            Some("rt-9")
        );
    }
}
