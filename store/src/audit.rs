//! The audit trail: an append-only log of what changed money-relevant state
//! (a mapping version loaded or held, a draft created, reviewed, pushed or
//! corrected), who did it and when. Rows are only ever inserted; `audit`
//! reads them back with filters.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError, instant};

/// One entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// The OS user, the review credential's name, or `daemon`.
    pub actor: String,
    /// What happened, in snake_case: `mapping_loaded`, `draft_approved`, …
    pub action: String,
    /// What it happened to: a mapping path, `CUSTOMER/PERIOD`, a draft key.
    pub subject: String,
    /// The rest, as JSON (hash, amounts, reason).
    pub detail: serde_json::Value,
}

/// A stored entry: the appended one with its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    /// Fixed-width RFC 3339 UTC, as stored.
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: serde_json::Value,
}

/// Which entries to read; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    /// Entries whose subject starts with this (a customer, `acme/2026-10`).
    pub subject_prefix: Option<String>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// At most this many, newest last.
    pub limit: Option<i64>,
}

impl Store {
    /// Appends one entry to the audit trail.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(instant(entry.at))
        .bind(entry.actor.clone())
        .bind(entry.action.clone())
        .bind(entry.subject.clone())
        .bind(entry.detail.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get(0))
    }

    /// The entries matching `filter`, oldest first.
    pub async fn audit_entries(
        &self,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // Every condition is always present and disabled by a NULL check, so
        // the query text is fixed and every value is bound.
        let rows = sqlx::query(
            "SELECT id, at, actor, action, subject, detail FROM ( \
               SELECT id, at, actor, action, subject, detail FROM audit_log \
               WHERE ($1 IS NULL OR action = $1) \
                 AND ($2 IS NULL OR substr(subject, 1, length($2)) = $2) \
                 AND ($3 IS NULL OR actor = $3) \
                 AND ($4 IS NULL OR at >= $4) \
                 AND ($5 IS NULL OR at < $5) \
               ORDER BY id DESC LIMIT $6) AS newest ORDER BY id",
        )
        .bind(filter.action.clone())
        .bind(filter.subject_prefix.clone())
        .bind(filter.actor.clone())
        .bind(filter.since.map(instant))
        .bind(filter.until.map(instant))
        .bind(filter.limit.unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let detail: String = r.get(5);
                Ok(AuditRecord {
                    id: r.get(0),
                    at: r.get(1),
                    actor: r.get(2),
                    action: r.get(3),
                    subject: r.get(4),
                    detail: serde_json::from_str(&detail).map_err(|e| {
                        StoreError::Corrupt(format!("audit entry detail is not JSON: {e}"))
                    })?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{postgres_store, temp_store};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn entry(at_: &str, actor: &str, action: &str, subject: &str) -> AuditEntry {
        AuditEntry {
            at: at(at_),
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            detail: serde_json::json!({ "total": "10.00" }),
        }
    }

    async fn filters_select_by_action_subject_actor_and_time(store: &Store) {
        for e in [
            entry(
                "2026-11-01T00:00:00Z",
                "daemon",
                "draft_created",
                "acme/2026-10",
            ),
            entry(
                "2026-11-02T00:00:00Z",
                "anna",
                "draft_approved",
                "acme/2026-10",
            ),
            entry(
                "2026-11-03T00:00:00Z",
                "daemon",
                "draft_created",
                "globex/2026-10",
            ),
            entry(
                "2026-11-04T00:00:00Z",
                "root",
                "mapping_loaded",
                "mappings/acme.yaml",
            ),
        ] {
            store.audit(&e).await.unwrap();
        }
        let subjects = |r: Vec<AuditRecord>| r.into_iter().map(|r| r.subject).collect::<Vec<_>>();
        let all = store.audit_entries(&AuditFilter::default()).await.unwrap();
        assert_eq!(all.len(), 4);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
        assert_eq!(all[0].detail, serde_json::json!({ "total": "10.00" }));
        let acme = AuditFilter {
            subject_prefix: Some("acme/".into()),
            ..Default::default()
        };
        assert_eq!(
            subjects(store.audit_entries(&acme).await.unwrap()),
            ["acme/2026-10"; 2]
        );
        let created = AuditFilter {
            action: Some("draft_created".into()),
            ..Default::default()
        };
        assert_eq!(
            subjects(store.audit_entries(&created).await.unwrap()),
            ["acme/2026-10", "globex/2026-10"]
        );
        let anna = AuditFilter {
            actor: Some("anna".into()),
            ..Default::default()
        };
        assert_eq!(
            store.audit_entries(&anna).await.unwrap()[0].action,
            "draft_approved"
        );
        let window = AuditFilter {
            since: Some(at("2026-11-02T00:00:00Z")),
            until: Some(at("2026-11-04T00:00:00Z")),
            ..Default::default()
        };
        assert_eq!(store.audit_entries(&window).await.unwrap().len(), 2);
        let newest = AuditFilter {
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(
            subjects(store.audit_entries(&newest).await.unwrap()),
            ["mappings/acme.yaml"]
        );
    }

    #[tokio::test]
    async fn the_audit_trail_filters_on_sqlite() {
        let (_dir, store) = temp_store().await;
        filters_select_by_action_subject_actor_and_time(&store).await;
    }

    #[tokio::test]
    async fn the_audit_trail_filters_on_postgres() {
        filters_select_by_action_subject_actor_and_time(&postgres_store().await).await;
    }
}
