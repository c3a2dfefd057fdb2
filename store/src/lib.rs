//! # contract-bridge store
//!
//! Durable state behind the daemon, on SQLite (the default, one file created
//! with mode 0600) or PostgreSQL (several instances). One [`Store`] serves
//! every aggregate; each module adds its own `impl Store` block, its row
//! types and the rules that keep its rows honest:
//!
//! - `tickets`: ticket snapshots by `(source, id)`, and which sources hold
//!   which customers' tickets;
//! - `sources`: sync cursors, watermarks (complete through) and the periods
//!   held for an incomplete source;
//! - `sla`: the SLA deadline index, so a tick reads only the due tickets;
//! - `drafts`: closed periods, their revisions, documents and reports;
//! - `outbox`: every push, written before it is made, claimed and finished
//!   exactly once (the module docs say how);
//! - `ledger`: what became of pushed drafts (remote statuses) and the cards
//!   and banks sold;
//! - `webhooks`: signed deliveries accepted, against replays;
//! - `grants`: OAuth grants, refresh tokens and scopes;
//! - `review`, `audit`, `mapping_changes`, `leader`, `status`: the review
//!   gate, the audit trail, held mapping changes, the schedule leader and
//!   what `status` prints.
//!
//! This file opens the store (URL, file mode, the single-writer lock of a
//! SQLite file) and migrates it. One query layer serves both databases
//! (sqlx's `any` driver, `$N` placeholders); instants are stored as
//! fixed-width RFC 3339 UTC text ([`instant`]), which sorts like the
//! instants it names, and money as decimal text.

mod audit;
mod drafts;
mod grants;
mod leader;
mod ledger;
mod mapping_changes;
mod outbox;
mod review;
mod sla;
mod sources;
mod status;
mod tickets;
mod webhooks;
pub use audit::{AuditEntry, AuditFilter, AuditRecord};
pub use drafts::{ClosedPeriod, ClosedRevision, PeriodDocument, StoredReport};
pub use grants::{GrantInfo, GrantRecord, GrantedScopes, REFRESH_LEASE, RefreshGuard};
pub use leader::Leadership;
pub use ledger::{PushedDraft, Sale};
pub use mapping_changes::{MappingChange, MappingFiles, MappingVersion};
pub use outbox::{
    Claim, FailingItem, NewOutboxItem, OutboxItem, OutboxState, Outcome, QueuedItem,
    RemoteDifference, WaitingTarget,
};
pub use review::{DecideError, Decision, Review, ReviewRequest, ReviewState};
pub use sla::{DueTicket, NextLook};
pub use sources::{HeldPeriod, SourceCursor, SourceHealth};
pub use status::Status;
pub use tickets::{SourceCustomer, StoredTicket, TicketToStore};

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};

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

    /// Keeps one value a key in `table(key, value, updated_at)`, the newest
    /// written winning (a source's cursor, a target's granted scopes).
    /// `table`, `key` and `value` are our own constant names, never input.
    async fn keep_newest(
        &self,
        (table, key, value): (&'static str, &'static str, &'static str),
        id: &str,
        newest: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {table} ({key}, {value}, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT ({key}) DO UPDATE SET {value} = excluded.{value}, updated_at = excluded.updated_at"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(newest)
            .bind(instant(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Pool connections checked out right now (not idle): what a test of
    /// "no connection held across a network call" looks at.
    pub fn connections_in_use(&self) -> u32 {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        self.pool.size().saturating_sub(idle)
    }
}

/// Rows of two text columns, each made into a `T` (a period and its
/// document, an outbox key and its payload).
pub(crate) fn pairs<T>(rows: Vec<sqlx::any::AnyRow>, make: impl Fn(String, String) -> T) -> Vec<T> {
    use sqlx::Row;
    rows.into_iter().map(|r| make(r.get(0), r.get(1))).collect()
}

/// Fixed-width UTC text: sorts as the instants sort.
pub fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An instant the store wrote (with [`instant`]); anything else is corrupt.
fn read_instant(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("instant `{text}`: {e}")))
}

fn parse_instant(s: Option<String>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
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

/// The migrations, embedded in the binary (sqlx's `migrate!` would need its
/// `macros` feature, which builds the SQLite C code a second time).
/// `migrations/common/` holds those both dialects run as written, once;
/// `postgres/` and `sqlite/` those whose SQL differs.
fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
    use sqlx::SqlStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    // A dialect's own migrations: the same versions and names, in its folder.
    macro_rules! dialect {
        ($dir:literal) => {
            [
                (
                    1,
                    "initial",
                    include_str!(concat!("../migrations/", $dir, "/0001_initial.sql")),
                ),
                (
                    6,
                    "reports",
                    include_str!(concat!("../migrations/", $dir, "/0006_reports.sql")),
                ),
                (
                    9,
                    "audit",
                    include_str!(concat!("../migrations/", $dir, "/0009_audit.sql")),
                ),
                (
                    12,
                    "mapping_changes",
                    include_str!(concat!("../migrations/", $dir, "/0012_mapping_changes.sql")),
                ),
                (
                    13,
                    "sla_index",
                    include_str!(concat!("../migrations/", $dir, "/0013_sla_index.sql")),
                ),
            ]
        };
    }
    const COMMON: [(i64, &str, &str); 8] = [
        (
            2,
            "webhooks",
            include_str!("../migrations/common/0002_webhooks.sql"),
        ),
        (
            3,
            "remote",
            include_str!("../migrations/common/0003_remote.sql"),
        ),
        (
            4,
            "oauth",
            include_str!("../migrations/common/0004_oauth.sql"),
        ),
        (
            5,
            "ledger",
            include_str!("../migrations/common/0005_ledger.sql"),
        ),
        (
            7,
            "sources",
            include_str!("../migrations/common/0007_sources.sql"),
        ),
        (
            8,
            "scopes",
            include_str!("../migrations/common/0008_scopes.sql"),
        ),
        (
            10,
            "review",
            include_str!("../migrations/common/0010_review.sql"),
        ),
        (
            11,
            "connect",
            include_str!("../migrations/common/0011_connect.sql"),
        ),
    ];
    let own: [(i64, &str, &'static str); 5] = match backend {
        Backend::Sqlite => dialect!("sqlite"),
        Backend::Postgres => dialect!("postgres"),
    };
    let mut files: Vec<(i64, &str, &'static str)> = COMMON.into_iter().chain(own).collect();
    files.sort_by_key(|(version, _, _)| *version);
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

    pub(crate) fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// acme's October, closed with one draft to push under `key`.
    pub(crate) fn closed_acme_october(key: &str) -> ClosedPeriod {
        ClosedPeriod {
            customer: "acme".into(),
            period: "2026-10".into(),
            revision: 1,
            total_net: Some("10.00".into()),
            currency: Some("EUR".into()),
            document: "{}".into(),
            push: Some(NewOutboxItem {
                target: "drafts".into(),
                key: key.into(),
                payload: "{}".into(),
            }),
            review: None,
            report: Some(StoredReport {
                language: "lv".into(),
                html: "<h1>Darba atskaite: oktobris 2026</h1>".into(),
                // Bytes that are not UTF-8: the PDF is stored as bytes.
                pdf: Some(b"%PDF-1.7\n\x00\xff\xfe".to_vec()),
            }),
        }
    }

    /// Closes acme's October twice on `store`: one period, its report
    /// stored once, one push queued, which is claimed and sent.
    pub(crate) async fn close_october_twice_and_send(store: &Store, now: DateTime<Utc>) {
        let closed = closed_acme_october("draft:acme:2026-10:r1");
        assert!(store.close_period(&closed, now).await.unwrap());
        assert!(!store.close_period(&closed, now).await.unwrap());
        assert_eq!(
            store.report("acme", "2026-10").await.unwrap(),
            closed.report
        );
        assert_eq!(store.report("acme", "2026-09").await.unwrap(), None);
        let claim = store.claim("drafts", now).await.unwrap().unwrap();
        assert_eq!(claim.item.key, "draft:acme:2026-10:r1");
        claim.finish(Outcome::SENT, now).await.unwrap();
        assert!(store.claim("drafts", now).await.unwrap().is_none());
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
    pub(crate) async fn postgres_url() -> String {
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

    #[test]
    fn a_store_url_is_named_without_its_password() {
        assert_eq!(
            redacted("postgres://bridge:s3cret@db.example:5432/bridge"),
            "postgres://bridge:***@db.example:5432/bridge"
        );
        assert_eq!(redacted("sqlite://state.db"), "sqlite://state.db");
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
