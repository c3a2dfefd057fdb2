//! OAuth grants: the newest refresh token of each target, sealed by the
//! daemon before it is handed here (the store never sees it in clear), and
//! what `status` shows about it. See migration 0010.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError, instant, parse_instant};

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
