//! # contract-bridge store
//!
//! Durable state behind the daemon, on SQLite (the default, one file created
//! with mode 0600) or PostgreSQL (several instances): ticket snapshots, sync
//! cursors, the mapping versions in force, closed periods with their drafts,
//! and the **outbox**.
//!
//! The outbox is what makes pushes exactly-once: a closed period's draft and
//! its outbox item are written in one transaction *before* anything is
//! pushed; the worker marks an item sent only *after* the target confirmed
//! it, and every item carries an idempotency key derived from what it
//! represents (`draft:{customer}:{period}:r{revision}`), so a crash at any
//! instant neither loses a push nor makes a second one.
//!
//! One query layer serves both databases (sqlx's `any` driver, `$N`
//! placeholders); instants are stored as fixed-width RFC 3339 UTC text, which
//! sorts like the instants it names, and money as decimal text.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("store migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store: {0}")]
    Query(#[from] sqlx::Error),
    #[error("store {url}: {message}")]
    File { url: String, message: String },
    #[error("store URL `{0}` is not supported: use sqlite://PATH or postgres://…")]
    Url(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

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

/// One push waiting or done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub target: String,
    pub key: String,
    pub payload: String,
    pub attempts: i64,
}

/// A period closed for one customer, and the draft to push if it owes anything.
#[derive(Clone, Debug)]
pub struct ClosedPeriod {
    pub customer: String,
    pub period: String,
    pub revision: i64,
    pub total_net: Option<String>,
    pub currency: Option<String>,
    /// The customer's part of the bill document (invoice, report rows, balances).
    pub document: String,
    /// The push to make: target name, idempotency key, payload.
    pub push: Option<(String, String, String)>,
}

/// What `status` prints.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub cursors: Vec<(String, String, String)>,
    pub tickets: i64,
    pub closed_periods: i64,
    pub outbox_pending: i64,
    pub outbox_sent: i64,
    pub outbox_dead: i64,
    /// `(target, key, attempts, last error)` of items that failed at least once.
    pub failing: Vec<(String, String, i64, String)>,
}

/// Fixed-width UTC text: sorts as the instants sort.
pub fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `url`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if let Some(path) = url.strip_prefix("sqlite://") {
            create_private_file(url, path.split('?').next().unwrap_or(path))?;
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(url.to_owned()));
        };
        let connect_url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            // SQLite allows one writer; a single connection avoids "database is locked".
            .max_connections(if backend == Backend::Sqlite { 1 } else { 5 })
            .connect(&connect_url)
            .await
            .map_err(|source| StoreError::Connect {
                url: url.to_owned(),
                source,
            })?;
        migrator(backend).run(&pool).await?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Is the database answering?
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Stores a ticket snapshot; `true` when it is new or changed.
    pub async fn upsert_ticket(
        &self,
        source: &str,
        id: &str,
        customer: &str,
        snapshot: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let current: Option<String> =
            sqlx::query("SELECT snapshot FROM tickets WHERE source = $1 AND id = $2")
                .bind(source)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.get(0));
        if current.as_deref() == Some(snapshot) {
            return Ok(false);
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
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    /// Every ticket snapshot, ordered by source and id.
    pub async fn ticket_snapshots(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT snapshot FROM tickets ORDER BY source, id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

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
        sqlx::query(
            "INSERT INTO cursors (source, cursor, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
        )
        .bind(source)
        .bind(cursor)
        .bind(instant(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Remembers that a mapping version (by content hash) was in force.
    pub async fn record_mapping(&self, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO mapping_versions (hash, first_used) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING")
            .bind(hash)
            .bind(instant(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn is_closed(&self, customer: &str, period: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 FROM periods WHERE customer = $1 AND period = $2")
                .bind(customer)
                .bind(period)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Records a closed period and queues its push, in one transaction:
    /// either both are stored or neither. A period already closed is left
    /// as it is (`false`): a pushed draft is never changed silently.
    pub async fn close_period(
        &self,
        closed: &ClosedPeriod,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO periods (customer, period, revision, total_net, currency, document, closed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (customer, period) DO NOTHING",
        )
        .bind(&closed.customer)
        .bind(&closed.period)
        .bind(closed.revision)
        .bind(closed.total_net.clone())
        .bind(closed.currency.clone())
        .bind(&closed.document)
        .bind(instant(now))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some((target, key, payload)) = &closed.push {
            sqlx::query(
                "INSERT INTO outbox (target, key, payload, state, attempts, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) ON CONFLICT (target, key) DO NOTHING",
            )
            .bind(target)
            .bind(key)
            .bind(payload)
            .bind(instant(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Pending items of `target` whose next attempt is due at `now`, oldest first.
    pub async fn due(
        &self,
        target: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, target, key, payload, attempts FROM outbox \
             WHERE target = $1 AND state = 'pending' AND next_attempt_at <= $2 ORDER BY id LIMIT $3",
        )
        .bind(target)
        .bind(instant(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| OutboxItem {
                id: r.get(0),
                target: r.get(1),
                key: r.get(2),
                payload: r.get(3),
                attempts: r.get(4),
            })
            .collect())
    }

    /// The target confirmed the push.
    pub async fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.set_state(id, OutboxState::Sent, None, now, now).await
    }

    /// The push failed: retry at `next`, or give up (`dead`).
    pub async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        next: DateTime<Utc>,
        dead: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let state = if dead {
            OutboxState::Dead
        } else {
            OutboxState::Pending
        };
        self.set_state(id, state, Some(error), next, now).await
    }

    async fn set_state(
        &self,
        id: i64,
        state: OutboxState,
        error: Option<&str>,
        next: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let attempts = i64::from(error.is_some());
        sqlx::query(
            "UPDATE outbox SET state = $1, attempts = attempts + $2, last_error = COALESCE($3, last_error), \
             next_attempt_at = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(state.as_str())
        .bind(attempts)
        .bind(error.map(str::to_owned))
        .bind(instant(next))
        .bind(instant(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn status(&self) -> Result<Status, StoreError> {
        let mut s = Status::default();
        for r in sqlx::query("SELECT source, cursor, updated_at FROM cursors ORDER BY source")
            .fetch_all(&self.pool)
            .await?
        {
            s.cursors.push((r.get(0), r.get(1), r.get(2)));
        }
        s.tickets = sqlx::query("SELECT COUNT(*) FROM tickets")
            .fetch_one(&self.pool)
            .await?
            .get(0);
        s.closed_periods = sqlx::query("SELECT COUNT(*) FROM periods")
            .fetch_one(&self.pool)
            .await?
            .get(0);
        for r in sqlx::query("SELECT state, COUNT(*) FROM outbox GROUP BY state")
            .fetch_all(&self.pool)
            .await?
        {
            let (state, n): (String, i64) = (r.get(0), r.get(1));
            match state.as_str() {
                "pending" => s.outbox_pending = n,
                "sent" => s.outbox_sent = n,
                "dead" => s.outbox_dead = n,
                _ => {}
            }
        }
        for r in sqlx::query(
            "SELECT target, key, attempts, last_error FROM outbox WHERE last_error IS NOT NULL AND state <> 'sent' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            s.failing.push((r.get(0), r.get(1), r.get(2), r.get(3)));
        }
        Ok(s)
    }
}

/// The migrations, embedded in the binary (sqlx's `migrate!` would need its
/// `macros` feature, which builds the SQLite C code a second time).
fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
    use sqlx::SqlStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let initial = match backend {
        Backend::Sqlite => include_str!("../migrations/sqlite/0001_initial.sql"),
        Backend::Postgres => include_str!("../migrations/postgres/0001_initial.sql"),
    };
    Migrator::with_migrations(vec![Migration::new(
        1,
        "initial".into(),
        MigrationType::Simple,
        SqlStr::from_static(initial),
        false,
    )])
}

/// Creates the SQLite file readable by its owner only (it holds customer data).
fn create_private_file(url: &str, path: &str) -> Result<(), StoreError> {
    let path = std::path::Path::new(path);
    let err = |e: std::io::Error| StoreError::File {
        url: url.to_owned(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if !path.exists() {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        opts.open(path).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// acme's October, closed with one draft to push under `key`.
    fn closed_acme_october(key: &str) -> ClosedPeriod {
        ClosedPeriod {
            customer: "acme".into(),
            period: "2026-10".into(),
            revision: 1,
            total_net: Some("10.00".into()),
            currency: Some("EUR".into()),
            document: "{}".into(),
            push: Some(("drafts".into(), key.into(), "{}".into())),
        }
    }

    async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/state.db", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        (dir, store)
    }

    /// A fresh database on the local PostgreSQL (`.ci/run` starts it);
    /// `CONTRACT_BRIDGE_TEST_POSTGRES` points elsewhere.
    async fn postgres_store() -> Store {
        use sqlx::Connection;
        let admin = std::env::var("CONTRACT_BRIDGE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test: {e}"));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("cb_test_{}_{nanos}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Store::open(&format!("{base}/{name}")).await.unwrap()
    }

    #[tokio::test]
    async fn the_outbox_works_the_same_on_postgres() {
        let store = postgres_store().await;
        assert_eq!(store.backend(), Backend::Postgres);
        let now = t("2026-11-01T06:00:00Z");
        let closed = closed_acme_october("draft:acme:2026-10:r1");
        assert!(store.close_period(&closed, now).await.unwrap());
        assert!(!store.close_period(&closed, now).await.unwrap());
        let item = store.due("drafts", now, 10).await.unwrap().remove(0);
        store.mark_sent(item.id, now).await.unwrap();
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
    async fn the_sqlite_file_is_private() {
        let (dir, _store) = temp_store().await;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("state.db"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn closing_a_period_twice_queues_one_push() {
        let (_dir, store) = temp_store().await;
        let now = t("2026-11-01T06:00:00Z");
        let closed = closed_acme_october("draft:acme:2026-10:r1");
        assert!(store.close_period(&closed, now).await.unwrap());
        assert!(!store.close_period(&closed, now).await.unwrap());
        let due = store.due("drafts", now, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].key, "draft:acme:2026-10:r1");
    }

    #[tokio::test]
    async fn a_failed_push_waits_for_its_next_attempt_and_can_die() {
        let (_dir, store) = temp_store().await;
        let now = t("2026-11-01T06:00:00Z");
        let closed = closed_acme_october("k");
        store.close_period(&closed, now).await.unwrap();
        let item = store.due("drafts", now, 10).await.unwrap().remove(0);
        store
            .mark_failed(item.id, "HTTP 503", t("2026-11-01T06:05:00Z"), false, now)
            .await
            .unwrap();
        assert!(store.due("drafts", now, 10).await.unwrap().is_empty());
        let later = store
            .due("drafts", t("2026-11-01T06:05:00Z"), 10)
            .await
            .unwrap();
        assert_eq!(later[0].attempts, 1);
        store
            .mark_failed(item.id, "HTTP 503", now, true, now)
            .await
            .unwrap();
        let status = store.status().await.unwrap();
        assert_eq!((status.outbox_pending, status.outbox_dead), (0, 1));
        assert_eq!(status.failing[0].2, 2, "two failed attempts are counted");
        assert!(
            store
                .due("drafts", t("2027-01-01T00:00:00Z"), 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
