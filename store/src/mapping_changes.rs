//! Mapping changes: edits of the mapping files held because they would move
//! money in a closed period, until accepted (`apply-mapping`, the review
//! page); and the mapping versions that came into force, with their files.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError, instant};

/// The mapping files of one version: `(file name, content)`, sorted by name.
pub type MappingFiles = Vec<(String, String)>;

/// One row of `mapping_changes`.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingChange {
    pub id: i64,
    /// The mapping path of the configuration (a file or a folder).
    pub path: String,
    pub hash: String,
    /// `held`, `accepted`, `applied` or `superseded`.
    pub status: String,
    pub files: MappingFiles,
    /// The what-if diff's summary (JSON).
    pub summary: serde_json::Value,
    /// Fixed-width RFC 3339 UTC, as stored.
    pub created_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
}

/// The columns every read selects, in the order [`change`] reads them.
macro_rules! columns {
    () => {
        "id, path, hash, status, files, summary, created_at, decided_at, decided_by"
    };
}

/// `SELECT` of every column of the changes matching `tail` (a `WHERE …`).
macro_rules! select {
    ($tail:literal) => {
        concat!("SELECT ", columns!(), " FROM mapping_changes ", $tail)
    };
}

fn change(r: &sqlx::any::AnyRow) -> Result<MappingChange, StoreError> {
    let files: String = r.get(4);
    let summary: String = r.get(5);
    Ok(MappingChange {
        id: r.get(0),
        path: r.get(1),
        hash: r.get(2),
        status: r.get(3),
        files: serde_json::from_str(&files)
            .map_err(|e| StoreError::Corrupt(format!("mapping change files are not JSON: {e}")))?,
        summary: serde_json::from_str(&summary)
            .map_err(|e| StoreError::Corrupt(format!("mapping change summary is not JSON: {e}")))?,
        created_at: r.get(6),
        decided_at: r.get(7),
        decided_by: r.get(8),
    })
}

/// A version of the mapping as a change stores it: where it was read, its
/// hash, its files and what changing to it moves (`status` shows it).
#[derive(Clone, Debug)]
pub struct MappingVersion {
    pub path: String,
    pub hash: String,
    pub files: MappingFiles,
    pub summary: serde_json::Value,
}

/// How a new row of `mapping_changes` starts.
#[derive(Clone, Copy)]
enum NewChange {
    /// Waiting for someone to accept it.
    Held,
    /// Put in force by the daemon itself (it moved no money).
    Applied,
}

async fn insert_change(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    how: NewChange,
    version: &MappingVersion,
    now: DateTime<Utc>,
) -> Result<sqlx::any::AnyRow, StoreError> {
    let files = serde_json::to_string(&version.files)
        .map_err(|e| StoreError::Corrupt(format!("mapping files: {e}")))?;
    let (status, decided_at, decided_by) = match how {
        NewChange::Held => ("held", None, None),
        NewChange::Applied => ("applied", Some(instant(now)), Some("daemon")),
    };
    Ok(sqlx::query(concat!(
        "INSERT INTO mapping_changes (path, hash, status, files, summary, created_at, decided_at, decided_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
        columns!()
    ))
    .bind(&version.path)
    .bind(&version.hash)
    .bind(status)
    .bind(files)
    .bind(version.summary.to_string())
    .bind(instant(now))
    .bind(decided_at)
    .bind(decided_by)
    .fetch_one(&mut **tx)
    .await?)
}

impl Store {
    /// Holds a mapping change. The same files held again keep their row
    /// (and its id); a different edit held while one waits supersedes it.
    pub async fn hold_mapping_change(
        &self,
        version: &MappingVersion,
        now: DateTime<Utc>,
    ) -> Result<MappingChange, StoreError> {
        let mut tx = self.pool.begin().await?;
        let existing = sqlx::query(select!(
            "WHERE hash = $1 AND status IN ('held', 'accepted') ORDER BY id DESC LIMIT 1"
        ))
        .bind(&version.hash)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = existing {
            tx.commit().await?;
            return change(&r);
        }
        sqlx::query(
            "UPDATE mapping_changes SET status = 'superseded', decided_at = $1 WHERE status = 'held'",
        )
        .bind(instant(now))
        .execute(&mut *tx)
        .await?;
        let row = insert_change(&mut tx, NewChange::Held, version, now).await?;
        tx.commit().await?;
        change(&row)
    }

    /// The changes waiting: held, or accepted and not applied yet; oldest first.
    pub async fn pending_mapping_changes(&self) -> Result<Vec<MappingChange>, StoreError> {
        let rows = sqlx::query(select!("WHERE status IN ('held', 'accepted') ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(change).collect()
    }

    /// One change by id.
    pub async fn mapping_change(&self, id: i64) -> Result<Option<MappingChange>, StoreError> {
        let row = sqlx::query(select!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(change).transpose()
    }

    /// Accepts a held change (`id`, or the newest held one): the daemon
    /// applies it at its next reload check. `None` when no such change is held.
    pub async fn accept_mapping_change(
        &self,
        id: Option<i64>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<MappingChange>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE mapping_changes SET status = 'accepted', decided_at = $1, decided_by = $2 \
             WHERE id = (SELECT id FROM mapping_changes WHERE status = 'held' AND ($3 IS NULL OR id = $3) ORDER BY id DESC LIMIT 1) \
             RETURNING ",
            columns!()
        ))
        .bind(instant(now))
        .bind(by)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(change).transpose()
    }

    /// Whether the files of `hash` were accepted and wait to be applied.
    pub async fn mapping_accepted(&self, hash: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT 1 FROM mapping_changes WHERE hash = $1 AND status = 'accepted' LIMIT 1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    /// Records that the files of `hash` came into force: an accepted change
    /// of them becomes `applied`, a held one of other files stays held.
    pub async fn mapping_applied(
        &self,
        version: &MappingVersion,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE mapping_changes SET status = 'applied' WHERE hash = $1 AND status IN ('accepted', 'held')",
        )
        .bind(&version.hash)
        .execute(&mut *tx)
        .await?;
        // A change held or accepted for other files is moot now.
        sqlx::query(
            "UPDATE mapping_changes SET status = 'superseded', decided_at = $1 WHERE hash <> $2 AND status IN ('held', 'accepted')",
        )
        .bind(instant(now))
        .bind(&version.hash)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            insert_change(&mut tx, NewChange::Applied, version, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The files went back to the version in force: what waits is moot.
    pub async fn supersede_mapping_changes(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE mapping_changes SET status = 'superseded', decided_at = $1 WHERE status IN ('held', 'accepted')",
        )
        .bind(instant(now))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The mapping version last in force, with its files.
    pub async fn mapping_in_force(&self) -> Result<Option<MappingChange>, StoreError> {
        let row = sqlx::query(select!("WHERE status = 'applied' ORDER BY id DESC LIMIT 1"))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(change).transpose()
    }
}

impl Store {
    /// Remembers that a mapping version (by content hash) was in force.
    pub async fn record_mapping(&self, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO mapping_versions (hash, first_used) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING")
            .bind(hash)
            .bind(instant(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{postgres_store, temp_store};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The one-file mapping `a.yaml` as version `hash`, moving `summary`.
    fn version(hash: &str, summary: &serde_json::Value) -> MappingVersion {
        MappingVersion {
            path: "m".into(),
            hash: hash.into(),
            files: vec![("a.yaml".to_owned(), "customers: {}".to_owned())],
            summary: summary.clone(),
        }
    }

    async fn held_changes_wait_for_acceptance(store: &Store) {
        let files = version("h0", &serde_json::Value::Null).files;
        let sum = serde_json::json!({"total_delta": "12.50"});
        let now = at("2026-11-05T10:00:00Z");
        assert_eq!(store.mapping_in_force().await.unwrap(), None);
        store
            .mapping_applied(&version("h0", &serde_json::json!({})), now)
            .await
            .unwrap();
        let first = store
            .hold_mapping_change(&version("h1", &sum), now)
            .await
            .unwrap();
        assert_eq!(first.status, "held");
        // Seen again at the next reload check: the same row.
        let again = store
            .hold_mapping_change(&version("h1", &sum), now)
            .await
            .unwrap();
        assert_eq!(again.id, first.id);
        // A newer edit while held supersedes it.
        let second = store
            .hold_mapping_change(&version("h2", &sum), now)
            .await
            .unwrap();
        let pending = store.pending_mapping_changes().await.unwrap();
        assert_eq!(
            pending.iter().map(|c| c.hash.as_str()).collect::<Vec<_>>(),
            ["h2"]
        );
        assert_eq!(pending[0].summary, sum);
        assert!(!store.mapping_accepted("h2").await.unwrap());
        // Accepting a superseded one does nothing.
        assert_eq!(
            store
                .accept_mapping_change(Some(first.id), "anna", now)
                .await
                .unwrap(),
            None
        );
        let accepted = store
            .accept_mapping_change(None, "anna", now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (accepted.id, accepted.status.as_str()),
            (second.id, "accepted")
        );
        assert_eq!(accepted.decided_by.as_deref(), Some("anna"));
        assert!(store.mapping_accepted("h2").await.unwrap());
        store
            .mapping_applied(&version("h2", &sum), now)
            .await
            .unwrap();
        let live = store.mapping_in_force().await.unwrap().unwrap();
        assert_eq!((live.hash.as_str(), live.id), ("h2", second.id));
        assert_eq!(live.files, files);
        assert!(store.pending_mapping_changes().await.unwrap().is_empty());
        // Held, then other files applied (an open-only edit): moot.
        store
            .hold_mapping_change(&version("h3", &sum), now)
            .await
            .unwrap();
        store
            .mapping_applied(&version("h4", &sum), now)
            .await
            .unwrap();
        assert!(store.pending_mapping_changes().await.unwrap().is_empty());
        // Held, then the files went back: moot too.
        store
            .hold_mapping_change(&version("h5", &sum), now)
            .await
            .unwrap();
        assert_eq!(store.supersede_mapping_changes(now).await.unwrap(), 1);
        assert!(store.pending_mapping_changes().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn held_mapping_changes_on_sqlite() {
        let (_dir, store) = temp_store().await;
        held_changes_wait_for_acceptance(&store).await;
    }

    #[tokio::test]
    async fn held_mapping_changes_on_postgres() {
        held_changes_wait_for_acceptance(&postgres_store().await).await;
    }
}
