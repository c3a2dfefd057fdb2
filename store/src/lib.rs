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

mod audit;
mod grants;
mod mapping_changes;
mod review;
pub use audit::{AuditEntry, AuditFilter, AuditRecord};
pub use grants::{GrantInfo, GrantRecord};
pub use mapping_changes::{MappingChange, MappingFiles};
pub use review::{DecideError, Decision, Review, ReviewRequest, ReviewState};

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
    /// A stored value that does not read back as what was written.
    #[error("store: {0}")]
    Corrupt(String),
    #[error("store URL `{0}` is not supported: use sqlite://PATH or postgres://…")]
    Url(String),
    #[error(
        "store {url}: no connection within {secs} s: is the server at {host} running and reachable?"
    )]
    Unreachable {
        url: String,
        host: String,
        secs: u64,
    },
    /// Another process writes to this SQLite file.
    #[error(
        "store {url}: another contract-bridge process ({holder}) is writing to this database; it holds the lock file {lock}. \
         Stop it first: only one process may write to a SQLite store (`status`, `report` and `statement-link` may run beside it)"
    )]
    Locked {
        url: String,
        holder: String,
        lock: String,
    },
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
    /// The work report rendered for the period, stored with it.
    pub report: Option<StoredReport>,
    /// The draft waits for finance's approval before it is pushed.
    pub review: Option<ReviewRequest>,
}

/// A rendered work report of a closed period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReport {
    pub language: String,
    pub html: String,
    /// None when no Chromium was configured to print it.
    pub pdf: Option<Vec<u8>>,
}

/// What `status` prints.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub cursors: Vec<(String, String, String)>,
    /// How complete each source is, and how its last pass ended.
    pub sources: Vec<SourceHealth>,
    /// Customer periods due to close but waiting for their sources.
    pub held: Vec<HeldPeriod>,
    pub tickets: i64,
    pub closed_periods: i64,
    /// Work reports stored with closed periods, and those with a PDF.
    pub reports: i64,
    pub report_pdfs: i64,
    pub outbox_pending: i64,
    pub outbox_sent: i64,
    pub outbox_dead: i64,
    /// Drafts waiting for finance's review (held ones included), and
    /// drafts finance rejected (never pushed).
    pub awaiting_review: i64,
    pub rejected: i64,
    /// `(target, key, attempts, last error)` of items that failed at least once.
    pub failing: Vec<(String, String, i64, String)>,
    /// `(target, key, remote id, difference)` of sent items whose target
    /// showed something other than what we sent.
    pub differences: Vec<(String, String, String, String)>,
    /// Every pushed draft, oldest first.
    pub drafts: Vec<PushedDraft>,
    /// Cards and banks sold through accounting systems.
    pub sales: Vec<Sale>,
}

/// A source's completeness: its watermark and its last pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceHealth {
    pub source: String,
    /// Every change up to this instant is stored (RFC 3339, UTC); none: no
    /// pass has completed yet.
    pub complete_through: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The last pass's error, when it failed (already redacted).
    pub last_error: Option<String>,
    /// When the source started failing, while it fails.
    pub failing_since: Option<DateTime<Utc>>,
    /// Tickets stored by its successful passes, in all.
    pub tickets_synced: i64,
}

/// A customer's period that was due to close and waits for its sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldPeriod {
    pub customer: String,
    pub period: String,
    /// The sources it waits for, comma-separated.
    pub sources: String,
    pub reason: String,
    pub held_since: DateTime<Utc>,
}

fn parse_instant(s: Option<String>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

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

/// Fixed-width UTC text: sorts as the instants sort.
pub fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The one outbox INSERT: `payload` queued for `target` under `key`, due at
/// `now`; `false` when the key was queued before (it is left as it is).
async fn queue_push<'e>(
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

/// Stores a closed period's work report under its revision.
pub(crate) async fn store_report(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    closed: &ClosedPeriod,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if let Some(r) = &closed.report {
        sqlx::query(
            "INSERT INTO reports (customer, period, revision, language, html, pdf, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&closed.customer)
        .bind(&closed.period)
        .bind(closed.revision)
        .bind(&r.language)
        .bind(&r.html)
        .bind(r.pdf.clone())
        .bind(instant(now))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
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

/// A ticket changed (or appeared): its SLA clocks are due for a look at
/// the next tick, and a tick that read the older version will not
/// overwrite this mark (the stamp moves).
async fn mark_sla_due<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    source: &str,
    id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sla_due (source, id, next_due, stamp) VALUES ($1, $2, '', 1) \
         ON CONFLICT (source, id) DO UPDATE SET next_due = '', stamp = sla_due.stamp + 1",
    )
    .bind(source)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// A stored ticket the SLA tick must look at (see [`Store::sla_due_tickets`]).
#[derive(Clone, Debug)]
pub struct DueTicket {
    pub source: String,
    pub id: String,
    pub snapshot: String,
    /// The change stamp read with it, handed back to [`Store::set_sla_due`].
    pub stamp: i64,
}

pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Ticket snapshots read so far (see [`Store::tickets_read`]).
    tickets_read: std::sync::atomic::AtomicU64,
    /// The single-writer lock of a SQLite store opened to write.
    _writer: Option<WriterLock>,
}

/// How long opening a store waits for a connection before it says why not.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Store {
    /// Opens (creating if needed) and migrates the store at `url`, to read
    /// (`status`, reports): it takes no writer lock.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, None).await
    }

    /// Opens the store to write (the daemon, `close`, `backfill`). A SQLite
    /// store takes its single-writer lock first, and is refused at once
    /// with [`StoreError::Locked`] while another process holds it; PostgreSQL
    /// takes several instances and needs no lock.
    pub async fn open_writer(url: &str) -> Result<Store, StoreError> {
        let lock = lock_writer(url)?;
        Store::open_with(url, lock).await
    }

    async fn open_with(url: &str, writer: Option<WriterLock>) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if let Some(path) = url.strip_prefix("sqlite://") {
            create_private_file(url, sqlite_path(path))?;
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(redacted(url)));
        };
        let connect_url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let connect_error = |source: sqlx::Error| StoreError::Connect {
            url: redacted(url),
            source,
        };
        let pool = AnyPoolOptions::new()
            // SQLite allows one writer; a single connection avoids "database is locked".
            // On PostgreSQL an outbox worker holds a connection for the length
            // of a push; leave room for the schedules, webhooks and /readyz.
            .max_connections(if backend == Backend::Sqlite { 1 } else { 16 })
            // An unreachable server is reported within seconds, not after
            // sqlx's default 30 s of silence.
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect(&connect_url)
            .await
            .map_err(|source| match source {
                sqlx::Error::PoolTimedOut => StoreError::Unreachable {
                    url: redacted(url),
                    host: host_of(url),
                    secs: CONNECT_TIMEOUT.as_secs(),
                },
                source => connect_error(source),
            })?;
        match backend {
            Backend::Sqlite => {
                // Two processes opening a new file at once (the daemon and a
                // `status` beside it) would both apply the migrations: the
                // second waits for the first, then finds nothing to do.
                let path = sqlite_path(url.strip_prefix("sqlite://").unwrap_or(url));
                let lock = format!("{path}.migrate.lock");
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock)
                    .and_then(|f| f.lock().map(|()| f))
                    .map_err(|e| StoreError::File {
                        url: url.to_owned(),
                        message: format!("lock file {lock}: {e}"),
                    })?;
                let migrated = migrator(backend).run(&pool).await;
                drop(file);
                migrated?;
            }
            Backend::Postgres => {
                // sqlx creates its migrations table before it takes its own
                // lock: two instances starting at once would race on it.
                // The whole migration runs under our advisory lock instead;
                // the second instance waits, then finds nothing to do.
                use sqlx::Connection;
                let mut conn = pool.acquire().await.map_err(connect_error)?.detach();
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut conn)
                    .await?;
                // `run_direct`: `run(&mut conn)` makes this future's `Send`
                // "not general enough" (sqlx says so at run_direct).
                let migrated = migrator(backend).run_direct(None, &mut conn, false).await;
                let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
                migrated?;
                unlocked?;
            }
        }
        Ok(Store {
            pool,
            backend,
            tickets_read: std::sync::atomic::AtomicU64::new(0),
            _writer: writer,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Is the database answering?
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// How many ticket snapshots this store handed out since it was opened
    /// (every read of `tickets.snapshot`): what a tick or a close cost.
    pub fn tickets_read(&self) -> u64 {
        self.tickets_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count_read(&self, n: usize) {
        self.tickets_read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// The tickets the SLA tick must look at, at `now`: those changed since
    /// their last look and those whose next deadline is at or before `now`,
    /// found through the deadline index. When `basis` (what the stored
    /// deadlines were computed with) is not the stored one, every ticket is
    /// due once and `basis` is stored.
    pub async fn sla_due_tickets(
        &self,
        now: DateTime<Utc>,
        basis: &str,
    ) -> Result<Vec<DueTicket>, StoreError> {
        let stored: Option<String> = sqlx::query("SELECT basis FROM sla_basis WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0));
        if stored.as_deref() != Some(basis) {
            let mut tx = self.pool.begin().await?;
            sqlx::query("UPDATE sla_due SET next_due = ''")
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO sla_basis (id, basis) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET basis = excluded.basis",
            )
            .bind(basis)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        let rows = sqlx::query(
            "SELECT d.source, d.id, t.snapshot, d.stamp FROM sla_due d \
             JOIN tickets t ON t.source = d.source AND t.id = d.id \
             WHERE d.next_due <= $1 ORDER BY d.source, d.id",
        )
        .bind(instant(now))
        .fetch_all(&self.pool)
        .await?;
        self.count_read(rows.len());
        Ok(rows
            .into_iter()
            .map(|r| DueTicket {
                source: r.get(0),
                id: r.get(1),
                snapshot: r.get(2),
                stamp: r.get(3),
            })
            .collect())
    }

    /// Records when each looked-at ticket next needs a look (`None`: not
    /// until it changes), in one transaction. A ticket changed since it was
    /// read (its stamp moved) keeps its mark.
    pub async fn set_sla_due(
        &self,
        looked: &[(&DueTicket, Option<DateTime<Utc>>)],
    ) -> Result<(), StoreError> {
        // Several hundred rows a statement: a first tick (or one after a
        // mapping change) writes every ticket's deadline.
        const ROWS: usize = 500;
        let mut tx = self.pool.begin().await?;
        for chunk in looked.chunks(ROWS) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = 4 * i;
                    format!("(${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4)
                })
                .collect();
            // VALUES columns are column1… on both databases.
            let sql = format!(
                "UPDATE sla_due SET next_due = v.column3 FROM (VALUES {}) AS v \
                 WHERE sla_due.source = v.column1 AND sla_due.id = v.column2 AND sla_due.stamp = v.column4",
                values.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (t, next) in chunk {
                q = q
                    .bind(t.source.clone())
                    .bind(t.id.clone())
                    .bind(next.map(instant))
                    .bind(t.stamp);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Pool connections checked out right now (not idle): what a test of
    /// "no connection held across a network call" looks at.
    pub fn connections_in_use(&self) -> u32 {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        self.pool.size().saturating_sub(idle)
    }

    /// Per target with pending items: `(target, drafts, other items)`.
    pub async fn waiting(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
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
                (target, drafts, all - drafts)
            })
            .collect())
    }

    /// Every item queued for `target`, `(key, payload)`, in queue order.
    pub async fn queued(&self, target: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT key, payload FROM outbox WHERE target = $1 ORDER BY id")
            .bind(target)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
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
        mark_sla_due(&self.pool, source, id).await?;
        Ok(true)
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

    /// Every ticket snapshot, ordered by source and id.
    pub async fn ticket_snapshots(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT snapshot FROM tickets ORDER BY source, id")
            .fetch_all(&self.pool)
            .await?;
        self.count_read(rows.len());
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

    /// Stores a batch of ticket snapshots in one transaction; for each, `true`
    /// when it is new or changed. One transaction per batch, not per ticket:
    /// a first sync of thousands of tickets costs a few fsyncs, not thousands.
    pub async fn upsert_tickets(
        &self,
        source: &str,
        tickets: &[(&str, &str, &str)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut changed = Vec::with_capacity(tickets.len());
        for (id, customer, snapshot) in tickets {
            let current: Option<String> =
                sqlx::query("SELECT snapshot FROM tickets WHERE source = $1 AND id = $2")
                    .bind(source)
                    .bind(*id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.get(0));
            if current.as_deref() == Some(*snapshot) {
                changed.push(false);
                continue;
            }
            sqlx::query(
                "INSERT INTO tickets (source, id, customer, snapshot, synced_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (source, id) DO UPDATE SET customer = excluded.customer, snapshot = excluded.snapshot, synced_at = excluded.synced_at",
            )
            .bind(source)
            .bind(*id)
            .bind(*customer)
            .bind(*snapshot)
            .bind(instant(now))
            .execute(&mut *tx)
            .await?;
            mark_sla_due(&mut *tx, source, id).await?;
            changed.push(true);
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// A pass of `source` read everything up to `complete_through`: the
    /// watermark moves there (never back), and the failure is over.
    pub async fn source_succeeded(
        &self,
        source: &str,
        complete_through: DateTime<Utc>,
        tickets: usize,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let through = instant(complete_through);
        sqlx::query(
            "INSERT INTO source_health (source, complete_through, last_success_at, last_attempt_at, last_error, failing_since, tickets_synced) \
             VALUES ($1, $2, $3, $3, NULL, NULL, $4) \
             ON CONFLICT (source) DO UPDATE SET \
               complete_through = CASE WHEN source_health.complete_through IS NULL OR source_health.complete_through < excluded.complete_through \
                                       THEN excluded.complete_through ELSE source_health.complete_through END, \
               last_success_at = excluded.last_success_at, last_attempt_at = excluded.last_attempt_at, \
               last_error = NULL, failing_since = NULL, \
               tickets_synced = source_health.tickets_synced + excluded.tickets_synced",
        )
        .bind(source)
        .bind(through)
        .bind(instant(now))
        .bind(tickets as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A pass of `source` failed or left a ticket unread: its watermark
    /// stays where it was, and `status` shows why and since when.
    pub async fn source_failed(
        &self,
        source: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO source_health (source, complete_through, last_success_at, last_attempt_at, last_error, failing_since, tickets_synced) \
             VALUES ($1, NULL, NULL, $2, $3, $2, 0) \
             ON CONFLICT (source) DO UPDATE SET last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error, \
               failing_since = COALESCE(source_health.failing_since, excluded.failing_since)",
        )
        .bind(source)
        .bind(instant(now))
        .bind(scrub(error))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every source's completeness, by name.
    pub async fn source_health(&self) -> Result<Vec<SourceHealth>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, complete_through, last_success_at, last_attempt_at, last_error, failing_since, tickets_synced \
             FROM source_health ORDER BY source",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SourceHealth {
                source: r.get(0),
                complete_through: parse_instant(r.get(1)),
                last_success_at: parse_instant(r.get(2)),
                last_attempt_at: parse_instant(r.get(3)),
                last_error: r.get(4),
                failing_since: parse_instant(r.get(5)),
                tickets_synced: r.get(6),
            })
            .collect())
    }

    /// Records that `customer`'s `period` waits for `sources`; keeps the
    /// first instant it was held.
    pub async fn hold_period(
        &self,
        customer: &str,
        period: &str,
        sources: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<HeldPeriod, StoreError> {
        sqlx::query(
            "INSERT INTO held_periods (customer, period, sources, reason, held_since, checked_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (customer, period) DO UPDATE SET sources = excluded.sources, reason = excluded.reason, checked_at = excluded.checked_at",
        )
        .bind(customer)
        .bind(period)
        .bind(sources)
        .bind(reason)
        .bind(instant(now))
        .execute(&self.pool)
        .await?;
        let since: String =
            sqlx::query("SELECT held_since FROM held_periods WHERE customer = $1 AND period = $2")
                .bind(customer)
                .bind(period)
                .fetch_one(&self.pool)
                .await?
                .get(0);
        Ok(HeldPeriod {
            customer: customer.to_owned(),
            period: period.to_owned(),
            sources: sources.to_owned(),
            reason: reason.to_owned(),
            held_since: parse_instant(Some(since)).unwrap_or(now),
        })
    }

    /// The period is no longer held (it closed).
    pub async fn release_period(&self, customer: &str, period: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM held_periods WHERE customer = $1 AND period = $2")
            .bind(customer)
            .bind(period)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every ticket of `source`: `(id, snapshot)`.
    pub async fn source_tickets(&self, source: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT id, snapshot FROM tickets WHERE source = $1 ORDER BY id")
            .bind(source)
            .fetch_all(&self.pool)
            .await?;
        self.count_read(rows.len());
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
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

    /// Which sources hold tickets of which customers.
    pub async fn ticket_sources(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT source, customer FROM tickets ORDER BY source, customer")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Every held period, oldest first.
    pub async fn held_periods(&self) -> Result<Vec<HeldPeriod>, StoreError> {
        let rows = sqlx::query(
            "SELECT customer, period, sources, reason, held_since FROM held_periods ORDER BY held_since, customer, period",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| HeldPeriod {
                customer: r.get(0),
                period: r.get(1),
                sources: r.get(2),
                reason: r.get(3),
                held_since: parse_instant(r.get(4)).unwrap_or_default(),
            })
            .collect())
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
        store_report(&mut tx, closed, now).await?;
        if let Some((target, key, payload)) = &closed.push {
            queue_push_in(&mut *tx, target, key, payload, closed.review.is_some(), now).await?;
            if let Some(request) = &closed.review {
                review::open_review(&mut *tx, closed, target, key, request, now).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

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

    /// Every ticket snapshot with its source, ordered by source and id.
    pub async fn tickets_with_source(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = sqlx::query("SELECT source, id, snapshot FROM tickets ORDER BY source, id")
            .fetch_all(&self.pool)
            .await?;
        self.count_read(rows.len());
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// The ticket snapshots of one customer with their source, ordered by
    /// source and id (a statement or a report reads no other customer's).
    pub async fn customer_tickets(
        &self,
        customer: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, id, snapshot FROM tickets WHERE customer = $1 ORDER BY source, id",
        )
        .bind(customer)
        .fetch_all(&self.pool)
        .await?;
        self.count_read(rows.len());
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// The documents of a customer's closed periods, oldest first.
    pub async fn closed_documents(
        &self,
        customer: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT period, document FROM periods WHERE customer = $1 ORDER BY period")
                .bind(customer)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The latest revision of a closed period's work report.
    pub async fn report(
        &self,
        customer: &str,
        period: &str,
    ) -> Result<Option<StoredReport>, StoreError> {
        let row = sqlx::query(
            "SELECT language, html, pdf FROM reports WHERE customer = $1 AND period = $2 \
             ORDER BY revision DESC LIMIT 1",
        )
        .bind(customer)
        .bind(period)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| StoredReport {
            language: r.get(0),
            html: r.get(1),
            pdf: r.get(2),
        }))
    }

    /// Forgets where a source's sync got to: the next sync reads everything.
    pub async fn reset_cursor(&self, source: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM cursors WHERE source = $1")
            .bind(source)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

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

    /// Tries to become the instance that runs the schedules. On PostgreSQL
    /// that is a session advisory lock held on a connection of its own; it
    /// is released when the connection closes, so a dead leader's successor
    /// takes over. On SQLite the one instance always leads.
    pub async fn try_lead(&self) -> Result<Option<Leadership>, StoreError> {
        use sqlx::Connection;
        match self.backend {
            Backend::Sqlite => Ok(Some(Leadership(None))),
            Backend::Postgres => {
                let mut conn = self.pool.acquire().await?.detach();
                let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
                    .bind(LEADER_LOCK)
                    .fetch_one(&mut conn)
                    .await?
                    .get(0);
                if got {
                    Ok(Some(Leadership(Some(conn))))
                } else {
                    conn.close().await?;
                    Ok(None)
                }
            }
        }
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
        let reports = sqlx::query("SELECT COUNT(*), COUNT(pdf) FROM reports")
            .fetch_one(&self.pool)
            .await?;
        (s.reports, s.report_pdfs) = (reports.get(0), reports.get(1));
        for r in sqlx::query("SELECT state, COUNT(*) FROM outbox GROUP BY state")
            .fetch_all(&self.pool)
            .await?
        {
            let (state, n): (String, i64) = (r.get(0), r.get(1));
            match state.as_str() {
                "pending" => s.outbox_pending = n,
                "sent" => s.outbox_sent = n,
                "dead" => s.outbox_dead = n,
                "awaiting_review" => s.awaiting_review = n,
                "rejected" => s.rejected = n,
                _ => {}
            }
        }
        for r in sqlx::query(
            "SELECT target, key, attempts, last_error FROM outbox WHERE last_error IS NOT NULL AND state <> 'sent' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let error: String = r.get(3);
            s.failing
                .push((r.get(0), r.get(1), r.get(2), scrub(&error)));
        }
        for r in sqlx::query(
            "SELECT target, key, COALESCE(remote_id, ''), remote_note FROM outbox WHERE remote_note IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            s.differences.push((r.get(0), r.get(1), r.get(2), r.get(3)));
        }
        s.drafts = self.pushed_drafts(false).await?;
        s.sales = self.sales().await?;
        s.sources = self.source_health().await?;
        s.held = self.held_periods().await?;
        Ok(s)
    }

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

    /// A closed period's revision and document.
    pub async fn closed_period(
        &self,
        customer: &str,
        period: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        Ok(sqlx::query(
            "SELECT revision, document FROM periods WHERE customer = $1 AND period = $2",
        )
        .bind(customer)
        .bind(period)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| (r.get(0), r.get(1))))
    }

    /// Re-creates a closed period's draft on purpose: the period moves from
    /// revision `from` to `from + 1` with `document`, and the push (under
    /// the new revision's key) is queued, in one transaction. `false` when
    /// the period is no longer at `from` (someone else re-pushed it).
    pub async fn repush(
        &self,
        customer: &str,
        period: &str,
        from: i64,
        document: &str,
        push: (&str, &str, &str),
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE periods SET revision = $1, document = $2 WHERE customer = $3 AND period = $4 AND revision = $5",
        )
        .bind(from + 1)
        .bind(document)
        .bind(customer)
        .bind(period)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let (target, key, payload) = push;
        queue_push(&mut *tx, target, key, payload, now).await?;
        tx.commit().await?;
        Ok(true)
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

    /// Records the scopes `target`'s newest token grants (space-separated).
    pub async fn record_scopes(
        &self,
        target: &str,
        scopes: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO granted_scopes (target, scopes, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (target) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
        )
        .bind(target)
        .bind(scopes)
        .bind(instant(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The scopes each target's newest token granted, and when: `(scopes, updated at)` by target.
    pub async fn granted_scopes(
        &self,
    ) -> Result<std::collections::BTreeMap<String, (String, String)>, StoreError> {
        Ok(
            sqlx::query("SELECT target, scopes, updated_at FROM granted_scopes")
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2))))
                .collect(),
        )
    }
}

/// How error text is scrubbed of secrets before it is stored or shown;
/// set once by the daemon at start (its one redaction function,
/// `connectors::secret::redact`). Unset: the text as it is.
static REDACTION: std::sync::OnceLock<fn(&str) -> String> = std::sync::OnceLock::new();

/// Sets the redaction applied to every outbox error written (dead letters
/// included) and read back for `status`.
pub fn set_redaction(redact: fn(&str) -> String) {
    let _ = REDACTION.set(redact);
}

fn scrub(text: &str) -> String {
    match REDACTION.get() {
        Some(redact) => redact(text),
        None => text.to_owned(),
    }
}

/// The URL with its password, if any, replaced by `***`: errors name the
/// store without leaking the credential.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The host (and port) a store URL names, without its credentials.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}

/// The file of a `sqlite://PATH[?options]` URL's path part.
fn sqlite_path(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// The single-writer lock of a SQLite store: an OS advisory lock
/// (`flock`) on `PATH.lock` beside the database, holding the holder's PID.
/// The OS drops it when the process ends, however it ends (kill -9
/// included), so a stale file never blocks the next start.
pub struct WriterLock {
    _file: std::fs::File,
}

/// Takes the writer lock of `url` when it is a SQLite store (`None` for
/// PostgreSQL, whose instances coordinate in the database).
pub fn lock_writer(url: &str) -> Result<Option<WriterLock>, StoreError> {
    use std::io::{Read, Seek, Write};
    let Some(path) = url.strip_prefix("sqlite://") else {
        return Ok(None);
    };
    let db = sqlite_path(path);
    let lock = format!("{db}.lock");
    let err = |e: std::io::Error| StoreError::File {
        url: url.to_owned(),
        message: format!("lock file {lock}: {e}"),
    };
    if let Some(dir) = std::path::Path::new(db)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(&lock).map_err(err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(StoreError::Locked {
                url: url.to_owned(),
                holder: if pid.is_empty() {
                    "PID not written yet".to_owned()
                } else {
                    format!("PID {pid}")
                },
                lock,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
    }
    file.set_len(0).map_err(err)?;
    file.rewind().map_err(err)?;
    writeln!(file, "{}", std::process::id()).map_err(err)?;
    file.flush().map_err(err)?;
    Ok(Some(WriterLock { _file: file }))
}

/// The advisory lock key around migrations ("cbmigrat" in ASCII).
const MIGRATION_LOCK: i64 = 0x6362_6d69_6772_6174;

/// The advisory lock key of the schedule leader ("cbridge1" in ASCII).
const LEADER_LOCK: i64 = 0x6362_7269_6467_6531;

/// Held by the instance that runs the schedules.
pub struct Leadership(Option<sqlx::AnyConnection>);

impl Leadership {
    /// Is the lock still held? A broken connection has lost it.
    pub async fn holds(&mut self) -> bool {
        match &mut self.0 {
            None => true,
            Some(conn) => sqlx::query("SELECT 1").execute(conn).await.is_ok(),
        }
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

/// The migrations, embedded in the binary (sqlx's `migrate!` would need its
/// `macros` feature, which builds the SQLite C code a second time).
fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
    use sqlx::SqlStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let files: [(i64, &str, &'static str); 13] = match backend {
        Backend::Sqlite => [
            (
                1,
                "initial",
                include_str!("../migrations/sqlite/0001_initial.sql"),
            ),
            (
                2,
                "webhooks",
                include_str!("../migrations/sqlite/0002_webhooks.sql"),
            ),
            (
                3,
                "remote",
                include_str!("../migrations/sqlite/0003_remote.sql"),
            ),
            (
                4,
                "oauth",
                include_str!("../migrations/sqlite/0004_oauth.sql"),
            ),
            (
                5,
                "ledger",
                include_str!("../migrations/sqlite/0005_ledger.sql"),
            ),
            (
                6,
                "reports",
                include_str!("../migrations/sqlite/0006_reports.sql"),
            ),
            (
                7,
                "sources",
                include_str!("../migrations/sqlite/0007_sources.sql"),
            ),
            (
                8,
                "scopes",
                include_str!("../migrations/sqlite/0008_scopes.sql"),
            ),
            (
                9,
                "audit",
                include_str!("../migrations/sqlite/0009_audit.sql"),
            ),
            (
                10,
                "review",
                include_str!("../migrations/sqlite/0010_review.sql"),
            ),
            (
                11,
                "connect",
                include_str!("../migrations/sqlite/0011_connect.sql"),
            ),
            (
                12,
                "mapping_changes",
                include_str!("../migrations/sqlite/0012_mapping_changes.sql"),
            ),
            (
                13,
                "sla_index",
                include_str!("../migrations/sqlite/0013_sla_index.sql"),
            ),
        ],
        Backend::Postgres => [
            (
                1,
                "initial",
                include_str!("../migrations/postgres/0001_initial.sql"),
            ),
            (
                2,
                "webhooks",
                include_str!("../migrations/postgres/0002_webhooks.sql"),
            ),
            (
                3,
                "remote",
                include_str!("../migrations/postgres/0003_remote.sql"),
            ),
            (
                4,
                "oauth",
                include_str!("../migrations/postgres/0004_oauth.sql"),
            ),
            (
                5,
                "ledger",
                include_str!("../migrations/postgres/0005_ledger.sql"),
            ),
            (
                6,
                "reports",
                include_str!("../migrations/postgres/0006_reports.sql"),
            ),
            (
                7,
                "sources",
                include_str!("../migrations/postgres/0007_sources.sql"),
            ),
            (
                8,
                "scopes",
                include_str!("../migrations/postgres/0008_scopes.sql"),
            ),
            (
                9,
                "audit",
                include_str!("../migrations/postgres/0009_audit.sql"),
            ),
            (
                10,
                "review",
                include_str!("../migrations/postgres/0010_review.sql"),
            ),
            (
                11,
                "connect",
                include_str!("../migrations/postgres/0011_connect.sql"),
            ),
            (
                12,
                "mapping_changes",
                include_str!("../migrations/postgres/0012_mapping_changes.sql"),
            ),
            (
                13,
                "sla_index",
                include_str!("../migrations/postgres/0013_sla_index.sql"),
            ),
        ],
    };
    Migrator::with_migrations(
        files
            .into_iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    version,
                    name.into(),
                    MigrationType::Simple,
                    SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    )
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
    // A database created before (by hand, by an older version, under a
    // loose umask) is tightened too. Not its owner: left to the owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
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
            review: None,
            report: Some(StoredReport {
                language: "lv".into(),
                html: "<h1>Darba atskaite: oktobris 2026</h1>".into(),
                // Bytes that are not UTF-8: the PDF is stored as bytes.
                pdf: Some(b"%PDF-1.7\n\x00\xff\xfe".to_vec()),
            }),
        }
    }

    #[tokio::test]
    async fn a_watermark_moves_only_forward_and_a_failure_keeps_it() {
        let (_dir, store) = temp_store().await;
        let (a, b, c) = (
            t("2026-11-01T00:00:00Z"),
            t("2026-11-02T00:00:00Z"),
            t("2026-11-03T00:00:00Z"),
        );
        store.source_succeeded("zammad", b, 3, b).await.unwrap();
        store.source_succeeded("zammad", a, 2, c).await.unwrap();
        store
            .source_failed("zammad", "https://u:pw@z.example: 503", c)
            .await
            .unwrap();
        store
            .source_failed("zammad", "again", c + chrono::Duration::hours(1))
            .await
            .unwrap();
        let h = &store.source_health().await.unwrap()[0];
        assert_eq!(
            h.complete_through,
            Some(b),
            "never moves back, kept on failure"
        );
        assert_eq!(h.tickets_synced, 5);
        assert_eq!(h.failing_since, Some(c), "since the first failure");
        assert_eq!(h.last_error.as_deref(), Some("again"));
        store.source_succeeded("zammad", c, 0, c).await.unwrap();
        let h = &store.source_health().await.unwrap()[0];
        assert_eq!(
            (h.complete_through, h.failing_since, h.last_error.clone()),
            (Some(c), None, None)
        );
    }

    #[tokio::test]
    async fn a_ticket_moved_to_a_new_key_takes_its_notes_along() {
        let (_dir, store) = temp_store().await;
        let now = t("2026-11-01T00:00:00Z");
        store
            .upsert_tickets("desk", &[("1", "acme", "{\"id\":\"1\"}")], now)
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
            [("T-1001".to_owned(), "{\"id\":\"T-1001\"}".to_owned())]
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

    #[tokio::test]
    async fn a_held_period_keeps_its_first_instant_until_released() {
        let (_dir, store) = temp_store().await;
        let (a, b) = (t("2026-11-01T06:00:00Z"), t("2026-11-01T07:00:00Z"));
        store
            .hold_period("acme", "2026-10", "zammad", "failing", a)
            .await
            .unwrap();
        let h = store
            .hold_period("acme", "2026-10", "zammad, rt", "x", b)
            .await
            .unwrap();
        assert_eq!((h.held_since, h.sources.as_str()), (a, "zammad, rt"));
        assert_eq!(store.status().await.unwrap().held.len(), 1);
        store.release_period("acme", "2026-10").await.unwrap();
        assert!(store.held_periods().await.unwrap().is_empty());
    }

    pub(crate) async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/state.db", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        (dir, store)
    }

    /// A fresh database on the local PostgreSQL (`.ci/run` starts it);
    /// `CONTRACT_BRIDGE_TEST_POSTGRES` points elsewhere.
    pub(crate) async fn postgres_store() -> Store {
        Store::open(&postgres_url().await).await.unwrap()
    }

    /// The URL of a fresh database on the local PostgreSQL.
    async fn postgres_url() -> String {
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
        format!("{base}/{name}")
    }

    #[tokio::test]
    async fn the_outbox_works_the_same_on_postgres() {
        let store = postgres_store().await;
        assert_eq!(store.backend(), Backend::Postgres);
        let now = t("2026-11-01T06:00:00Z");
        let closed = closed_acme_october("draft:acme:2026-10:r1");
        assert!(store.close_period(&closed, now).await.unwrap());
        assert!(!store.close_period(&closed, now).await.unwrap());
        assert_eq!(
            store.report("acme", "2026-10").await.unwrap(),
            closed.report
        );
        assert_eq!(store.report("acme", "2026-09").await.unwrap(), None);
        let claim = store.claim("drafts", now).await.unwrap().unwrap();
        claim.finish(Outcome::SENT, now).await.unwrap();
        assert!(store.claim("drafts", now).await.unwrap().is_none());
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

    #[test]
    fn a_store_url_is_named_without_its_password() {
        assert_eq!(
            redacted("postgres://bridge:s3cret@db.example:5432/bridge"),
            "postgres://bridge:***@db.example:5432/bridge"
        );
        assert_eq!(redacted("sqlite://state.db"), "sqlite://state.db");
    }

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
            let push = ("drafts", "draft:acme:2026-10:r2", "{}");
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
                    .0,
                2
            );
            let claim = store.claim("drafts", now).await.unwrap().unwrap();
            assert_eq!(claim.item.key, "draft:acme:2026-10:r2");
        }
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
        // The report is stored with the period, once.
        assert_eq!(
            store.report("acme", "2026-10").await.unwrap(),
            closed.report
        );
        let claim = store.claim("drafts", now).await.unwrap().unwrap();
        assert_eq!(claim.item.key, "draft:acme:2026-10:r1");
        claim.finish(Outcome::SENT, now).await.unwrap();
        assert!(store.claim("drafts", now).await.unwrap().is_none());
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
        assert_eq!(status.failing[0].2, 2, "two failed attempts are counted");
        assert!(
            store
                .claim("drafts", t("2027-01-01T00:00:00Z"))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_second_writer_of_a_sqlite_file_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/state.db", dir.path().display());
        let first = Store::open_writer(&url).await.unwrap();
        let lock = format!("{}/state.db.lock", dir.path().display());
        assert_eq!(
            std::fs::read_to_string(&lock).unwrap().trim(),
            std::process::id().to_string()
        );
        match Store::open_writer(&url).await {
            Err(e @ StoreError::Locked { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("PID {}", std::process::id())),
                    "{msg}"
                );
                assert!(msg.contains(&lock), "{msg}");
            }
            Err(e) => panic!("not refused as locked: {e}"),
            Ok(_) => panic!("a second writer was let in"),
        }
        // Readers are not locked out.
        Store::open(&url).await.unwrap().status().await.unwrap();
        drop(first);
        // The lock goes with its holder; the file left behind blocks nothing.
        Store::open_writer(&url).await.unwrap();
        // PostgreSQL takes several instances: no lock.
        assert!(lock_writer("postgres://u@127.0.0.1/db").unwrap().is_none());
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

    #[cfg(unix)]
    #[tokio::test]
    async fn an_existing_loose_database_is_tightened_to_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let url = format!("sqlite://{}", path.display());
        Store::open(&url).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[tokio::test]
    async fn two_instances_migrating_one_new_postgres_database_at_once_both_open() {
        let url = postgres_url().await;
        let (a, b) = tokio::join!(Store::open(&url), Store::open(&url));
        a.unwrap();
        b.unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_postgres_is_named_without_its_password_within_seconds() {
        // Nothing listens on port 1 of the loopback: refused at once, and
        // the pool keeps trying until its acquire timeout.
        let started = std::time::Instant::now();
        let err = match Store::open("postgres://bridge:hunter2@127.0.0.1:1/bridge").await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("connected to nothing"),
        };
        eprintln!(
            "unreachable store reported after {:?}: {err}",
            started.elapsed()
        );
        assert!(err.contains("127.0.0.1:1"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
