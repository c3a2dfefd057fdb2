//! The daemon: sync the sources, note SLA warnings and breaches on tickets,
//! close the periods that are due, and drain the outbox.
//!
//! `run --once` does each of these once at one instant and exits. `run`
//! keeps going: a leader task fires the cron schedules (poll per source, the
//! SLA tick, the period close), one worker per target drains its outbox,
//! the HTTP server takes webhooks and serves health and metrics, and the
//! mapping files are watched. On PostgreSQL several instances may run: one
//! leads the schedules (an advisory lock), and all of them push, each item
//! claimed by one (`FOR UPDATE SKIP LOCKED`).
//!
//! Every external effect goes through the store first: a closed period and
//! its draft's outbox item are written in one transaction, a note is queued
//! under a key naming the clock it is about, and an item is marked sent only
//! after its target accepted it under that idempotency key. A crash between
//! the two leaves the item pending; the next push carries the same key,
//! which the target treats as the same draft or note.

mod close;
mod completeness;
mod feedback;
pub mod ingest;
mod notes;
mod outbox;
pub mod plan;
mod reports;
pub mod whatif;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use store::Store;

pub use close::{Gate, draft_key};
pub(crate) use ingest::{parse_rows, parse_snapshot, parse_stored, with_contract};
pub use outbox::backoff;

use crate::metrics::Metrics;
use crate::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    /// The mapping files do not make contracts; the text is `check`'s
    /// (file, line, key and what would be valid).
    #[error("{0}")]
    MappingInvalid(String),
    #[error("{}: no {} section: the helpdesk source(s) of the configuration need one each, saying which organisation is which customer (mappings/README.md, `sources`)", path.display(), sources.join(", "))]
    MissingSourceSections {
        path: std::path::PathBuf,
        sources: Vec<String>,
    },
    #[error("{}: no customer has a contract any more (an empty or truncated file?); the {before} customer(s) of the mapping in force would no longer be billed. To drop every customer, stop the daemon first", path.display())]
    ContractsEmptied {
        path: std::path::PathBuf,
        before: usize,
    },
    #[error("{}: the new mapping cannot bill the stored tickets: {reason}", path.display())]
    CannotBillStored {
        path: std::path::PathBuf,
        reason: Box<CycleError>,
    },
    #[error("the mapping change is refused{}:\n{reason}", if *.kept { "; the last good mapping stays in force" } else { "" })]
    ChangeRefused { kept: bool, reason: Box<CycleError> },
    #[error("the mapping version in force ({hash}) no longer loads: {reason}")]
    StoredMappingUnloadable { hash: String, reason: String },
    #[error("no contract for customer `{customer}` in {}", path.display())]
    NoContract {
        customer: String,
        path: std::path::PathBuf,
    },
    #[error("no source named `{0}`")]
    UnknownSource(String),
    #[error("the mapping has no `sources.{0}` section")]
    NoSourceSection(String),
    #[error("source `{0}` is not a helpdesk")]
    NotAHelpdesk(String),
    /// A setting that does not parse; the text names its key.
    #[error("{0}")]
    Setting(String),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("HTTP client: {0}")]
    HttpClient(String),
    /// A blocking job (loading or billing) panicked or was cancelled.
    #[error("a background job failed: {0}")]
    Job(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("stored tickets do not parse: {0}")]
    Tickets(String),
    /// A closed period's stored draft does not read: its late changes
    /// cannot be told from what was billed, so nothing closes over it.
    #[error("the stored draft of {period} does not read: {reason}")]
    StoredDraft { period: String, reason: String },
    #[error("billing {period}: {message}")]
    Bill {
        period: engine::period::Month,
        message: String,
    },
    #[error("no mapping is in force yet")]
    NoMapping,
    /// An accounting system's answer, or a request about a draft refused.
    #[error("{0}")]
    Accounting(String),
}

/// What one cycle (or one job) did, for logs, metrics and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CycleReport {
    pub tickets_changed: usize,
    /// Why a source is incomplete this cycle (it failed, or a ticket of it
    /// could not be read): the periods it feeds do not close.
    pub source_errors: Vec<String>,
    /// The sources that failed this cycle.
    pub failed_sources: std::collections::BTreeSet<String>,
    /// What a person should see but that holds nothing up (a ticket of a
    /// customer without a contract).
    pub warnings: Vec<String>,
    /// Customer periods due to close but held for an incomplete source.
    pub periods_held: usize,
    /// Why each was held.
    pub held: Vec<String>,
    pub notes_queued: usize,
    pub breaches_noted: usize,
    pub periods_closed: usize,
    pub drafts_queued: usize,
    /// Drafts stored to wait for finance's review (mapping `review:`).
    pub drafts_awaiting_review: usize,
    pub corrections: usize,
    pub pushed: usize,
    pub retried: usize,
    pub dead: usize,
    /// Work reports stored with closed periods, and how many have a PDF.
    pub reports: usize,
    pub report_pdfs: usize,
    /// Why a report or its PDF was not made.
    pub report_notes: Vec<String>,
    /// Requests asking accounting systems about drafts and sales.
    pub status_requests: usize,
    /// Drafts whose status changed.
    pub status_changes: usize,
    /// Cards and banks opened from sales.
    pub sales_recorded: usize,
}

/// A mapping that passed `check`, with the fingerprint of its files.
pub struct GoodMapping {
    pub book: engine::ContractBook,
    /// `sources.<name>`: how each helpdesk source's fields are read.
    pub sources: BTreeMap<String, mapping::SourceMap>,
    /// `accounts.<target>`: account, item and tax per line kind.
    pub accounts: BTreeMap<String, mapping::TargetAccounts>,
    pub hash: String,
    /// SHA-256 of the mapping files (names and contents), for the audit trail.
    pub sha256: String,
    /// Each customer's `review:` policy (absent: none).
    pub review: BTreeMap<engine::ticket::CustomerKey, mapping::Review>,
}

/// Loads the mapping files; an invalid mapping gives the messages of `check`.
pub async fn load_mapping(settings: &Settings) -> Result<GoodMapping, CycleError> {
    let path = settings.mapping.path.clone();
    let helpdesks: Vec<String> = settings
        .sources
        .iter()
        .filter(|(_, s)| s.connector.is_helpdesk())
        .map(|(name, _)| name.clone())
        .collect();
    tokio::task::spawn_blocking(move || {
        let hash = mapping_hash(&path);
        let sha256 = crate::review::mapping_sha256(&path);
        let loaded = mapping::load(&path).map_err(|d| CycleError::MappingInvalid(d.to_string()))?;
        // A helpdesk read without its section would store no ticket at all.
        let missing: Vec<String> = helpdesks
            .iter()
            .filter(|name| !loaded.sources.contains_key(*name))
            .map(|name| format!("sources.{name}"))
            .collect();
        if !missing.is_empty() {
            return Err(CycleError::MissingSourceSections {
                path: path.clone(),
                sources: missing,
            });
        }
        Ok(GoodMapping {
            book: loaded.book,
            sources: loaded.sources,
            accounts: loaded.accounts,
            hash,
            sha256,
            review: loaded.review,
        })
    })
    .await?
}

/// What the tasks of one daemon process share.
pub struct Bridge {
    pub settings: Settings,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    mapping: RwLock<Option<Arc<GoodMapping>>>,
    /// The fingerprint of the last mapping refused, so it is reported once.
    refused: RwLock<Option<String>>,
    /// The fingerprint of the mapping change held, so it is diffed once.
    held: RwLock<Option<String>>,
    outbox: outbox::Workers,
    /// Sources whose stored keys were brought up to date this process.
    upgraded: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Bills behind report and statement pages, by data version.
    report_cache: reports::ReportCache,
    /// Prints report PDFs when `report.chromium` names a browser.
    pdf: Option<Arc<crate::pdf::PdfPool>>,
}

impl Bridge {
    pub fn new(settings: Settings, store: Arc<Store>) -> Result<Bridge, CycleError> {
        let outbox = outbox::Workers::new(&settings)?;
        Ok(Bridge {
            store,
            metrics: Arc::new(Metrics::default()),
            mapping: RwLock::new(None),
            refused: RwLock::new(None),
            held: RwLock::new(None),
            outbox,
            upgraded: std::sync::Mutex::new(std::collections::BTreeSet::new()),
            report_cache: reports::ReportCache::default(),
            pdf: crate::report::chromium(settings.report.chromium.as_deref())
                .map(|c| Arc::new(crate::pdf::PdfPool::new(c, settings.report.pdf_pages))),
            settings,
        })
    }

    /// The targets drafts and notes are pushed to, one outbox worker each.
    pub(crate) fn push_targets(&self) -> impl Iterator<Item = &String> {
        self.outbox.push_targets()
    }

    /// What wakes `target`'s outbox worker when something is queued for it.
    pub(crate) fn outbox_waker(&self, target: &str) -> Option<Arc<tokio::sync::Notify>> {
        self.outbox.waker(target)
    }

    /// `billing.first_period`: no month before it is billed or noted.
    pub(crate) fn first_period(&self) -> Result<engine::period::Month, CycleError> {
        self.settings
            .billing
            .first_period
            .parse()
            .map_err(|e| CycleError::Setting(format!("billing.first_period: {e}")))
    }

    /// The mapping in force, if one was ever valid.
    pub fn mapping(&self) -> Option<Arc<GoodMapping>> {
        self.mapping.read().ok().and_then(|m| m.clone())
    }

    /// Loads the mapping files when they changed. An invalid change is
    /// refused with the messages of `check` and the last good mapping stays
    /// in force. `Ok(true)` when a new mapping came into force.
    pub async fn reload_mapping(&self, now: DateTime<Utc>) -> Result<bool, CycleError> {
        let path = self.settings.mapping.path.clone();
        let hash = tokio::task::spawn_blocking(move || mapping_hash(&path)).await?;
        let current = self.mapping().map(|m| m.hash.clone());
        let refused = self.refused.read().ok().and_then(|r| r.clone());
        if current.as_deref() == Some(hash.as_str()) {
            // Back to the files in force (a broken change undone, or a held one).
            if self.held.read().ok().and_then(|h| h.clone()).is_some() {
                self.store.supersede_mapping_changes(now).await?;
                self.metrics.set_mapping_changes_held(0);
                if let Ok(mut h) = self.held.write() {
                    *h = None;
                }
            }
            self.metrics.set_mapping_valid(true);
            if let Ok(mut r) = self.refused.write() {
                *r = None;
            }
            return Ok(false);
        }
        if refused.as_deref() == Some(hash.as_str()) {
            return Ok(false);
        }
        // A held change stays held until accepted.
        let held = self.held.read().ok().and_then(|h| h.clone());
        if held.as_deref() == Some(hash.as_str()) && !self.store.mapping_accepted(&hash).await? {
            return Ok(false);
        }
        // Hardening (issue 15): a change that leaves no customer with a
        // contract (an emptied or truncated file) would stop billing all of
        // them; it is refused like an invalid one.
        let loaded = load_mapping(&self.settings).await.and_then(|m| {
            let before = self.mapping().map_or(0, |old| old.book.contracts.len());
            if m.book.contracts.is_empty() && before > 0 {
                return Err(CycleError::ContractsEmptied {
                    path: self.settings.mapping.path.clone(),
                    before,
                });
            }
            Ok(m)
        });
        // Issue 17: a valid change is billed against the mapping in force
        // first; one that moves money in a closed period is held.
        let live = match &loaded {
            Ok(_) => match self.live_mapping().await {
                Ok(l) => l,
                Err(CycleError::Store(e)) => return Err(CycleError::Store(e)),
                // A stored version this build no longer loads: nothing to compare with.
                Err(e) => {
                    tracing::warn!("{e}; the mapping files are taken as they are");
                    None
                }
            },
            Err(_) => None,
        };
        if let (Ok(m), Some(l)) = (&loaded, &live)
            && l.hash == m.hash
        {
            // The files are the version in force (a restart, or a held change undone).
            self.store.supersede_mapping_changes(now).await?;
        }
        let verdict = match &loaded {
            Ok(m) if live.as_ref().is_some_and(|l| l.hash == m.hash) => Ok(None),
            Ok(m) => match self.mapping_verdict(m, live.as_deref(), now).await {
                Ok(v) => Ok(Some(v)),
                Err(CycleError::Store(e)) => return Err(CycleError::Store(e)),
                Err(e) => Err(CycleError::CannotBillStored {
                    path: self.settings.mapping.path.clone(),
                    reason: Box::new(e),
                }),
            },
            Err(_) => Ok(None),
        };
        let loaded = match (loaded, verdict) {
            (Ok(_), Err(e)) => Err(e),
            (Ok(m), Ok(v)) => Ok((m, v)),
            (Err(e), _) => Err(e),
        };
        if let Ok((m, Some(whatif::Verdict::Hold(held)))) = &loaded {
            self.mapping_held(m, held, live, now).await?;
            return Ok(false);
        }
        match loaded {
            Ok((m, verdict)) => {
                self.store.record_mapping(&m.hash, now).await?;
                if let Some(whatif::Verdict::Apply {
                    summary,
                    open_delta,
                    accepted,
                }) = verdict
                {
                    self.mapping_in_force_now(&m, summary, open_delta, accepted, now)
                        .await?;
                }
                self.audit_mapping(&m, now).await?;
                if current.is_some() {
                    tracing::info!(hash = %m.hash, "mapping reloaded ({})", m.hash);
                }
                if let Ok(mut h) = self.held.write() {
                    *h = None;
                }
                self.metrics.set_mapping_valid(true);
                if let Ok(mut r) = self.refused.write() {
                    *r = None;
                }
                if let Ok(mut slot) = self.mapping.write() {
                    *slot = Some(Arc::new(m));
                }
                Ok(true)
            }
            Err(e) => {
                self.metrics.set_mapping_valid(false);
                if let Ok(mut r) = self.refused.write() {
                    *r = Some(hash);
                }
                Err(CycleError::ChangeRefused {
                    kept: current.is_some(),
                    reason: Box::new(e),
                })
            }
        }
    }

    /// Records `mapping_loaded` when the version coming into force is not
    /// the one last recorded for the mapping path (a restart on the same
    /// files records nothing; going back to an older version does).
    async fn audit_mapping(&self, m: &GoodMapping, now: DateTime<Utc>) -> Result<(), CycleError> {
        let subject = self.settings.mapping.path.display().to_string();
        let last = self
            .store
            .audit_entries(&store::AuditFilter {
                action: Some("mapping_loaded".into()),
                subject_prefix: Some(subject.clone()),
                limit: Some(1),
                ..Default::default()
            })
            .await?;
        if last
            .last()
            .is_some_and(|e| e.subject == subject && e.detail["sha256"] == m.sha256.as_str())
        {
            return Ok(());
        }
        self.store
            .audit(&store::AuditEntry {
                at: now,
                actor: crate::review::os_user(),
                action: "mapping_loaded".into(),
                subject,
                detail: serde_json::json!({
                    "sha256": m.sha256,
                    "version": m.hash,
                    "customers": m.book.contracts.len(),
                }),
            })
            .await?;
        Ok(())
    }

    /// Wakes the outbox worker of `target` (a draft was approved).
    pub fn wake_outbox(&self, target: &str) {
        self.outbox.wake(target);
    }

    /// Requests the transport repeated, for `/metrics`.
    pub fn transport_retries(&self) -> u64 {
        self.outbox
            .transport()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The helpdesk API of source `name`, read with the mapping's `sources.<name>`.
    pub(crate) fn helpdesk_api<'a>(
        &'a self,
        name: &str,
        mapping: &'a GoodMapping,
    ) -> Result<Box<dyn connectors::helpdesk::HelpdeskApi + 'a>, CycleError> {
        let source = self
            .settings
            .sources
            .get(name)
            .ok_or_else(|| CycleError::UnknownSource(name.to_owned()))?;
        let map = mapping
            .sources
            .get(name)
            .ok_or_else(|| CycleError::NoSourceSection(name.to_owned()))?;
        source
            .connector
            .helpdesk(map)
            .ok_or_else(|| CycleError::NotAHelpdesk(name.to_owned()))
    }

    fn mapping_in_force(&self) -> Result<Arc<GoodMapping>, CycleError> {
        self.mapping().ok_or(CycleError::NoMapping)
    }

    /// One full cycle at instant `now`: every source, the SLA notes, the
    /// periods due, and every outbox until nothing is due at `now`.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<CycleReport, CycleError> {
        self.reload_mapping(now).await?;
        let mut report = CycleReport::default();
        for name in self.settings.sources.keys() {
            self.sync_source(name, now, &mut report).await?;
        }
        self.note_sla(now, &mut report).await?;
        // Sales first: a card paid for before the close is drawn from in its bill.
        self.poll_ledger(now, &mut report, true).await?;
        self.close_due(now, &mut report).await?;
        let targets: Vec<String> = self.outbox.push_targets().cloned().collect();
        for name in &targets {
            // A throttled target is waited for when it asks for a short
            // pause; the throttled item itself waits for the next run.
            self.outbox.transport().new_pass(name);
            while let Some(pause) = self.drain(name, || now, &mut report).await? {
                if pause > std::time::Duration::from_secs(60) {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
        }
        if report.pushed > 0 {
            // The drafts just pushed: `status` shows what the targets hold.
            self.poll_ledger(now, &mut report, false).await?;
        }
        Ok(report)
    }
}

/// A stable fingerprint of the mapping files (FNV-1a over names and contents).
fn mapping_hash(path: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in crate::review::mapping_file_paths(path) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for b in f.display().to_string().bytes().chain(bytes) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// `status --json`: the same facts as [`status_text`], for machines.
pub async fn status_json(store: &Store) -> Result<serde_json::Value, CycleError> {
    let s = store.status().await?;
    let changes = store.pending_mapping_changes().await?;
    let at = |t: &Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
    Ok(serde_json::json!({
        "mapping_changes": changes.iter().map(|c| serde_json::json!({
            "id": c.id,
            "status": c.status,
            "path": c.path,
            "hash": c.hash,
            "held_at": c.created_at,
            "closed_total_delta": c.summary["closed_total_delta"],
            "open_total_delta": c.summary["open_total_delta"],
            "closed": c.summary["closed"],
        })).collect::<Vec<_>>(),
        "tickets": s.tickets,
        "closed_periods": s.closed_periods,
        "outbox": {"pending": s.outbox_pending, "sent": s.outbox_sent, "dead": s.outbox_dead,
            "awaiting_review": s.awaiting_review, "rejected": s.rejected},
        "reports": {"stored": s.reports, "with_pdf": s.report_pdfs},
        "sources": s.sources.iter().map(|h| serde_json::json!({
            "source": h.source,
            "complete_through": at(&h.complete_through),
            "last_success_at": at(&h.last_success_at),
            "last_attempt_at": at(&h.last_attempt_at),
            "failing_since": at(&h.failing_since),
            "last_error": h.last_error.as_deref().map(crate::redact),
            "tickets_synced": h.tickets_synced,
            "cursor": s.cursors.iter().find(|c| c.source == h.source).map(|c| c.cursor.clone()),
        })).collect::<Vec<_>>(),
        "held": s.held.iter().map(|h| serde_json::json!({
            "customer": h.customer,
            "period": h.period,
            "sources": h.sources.split(", ").collect::<Vec<_>>(),
            "reason": h.reason,
            "held_since": h.held_since.to_rfc3339(),
        })).collect::<Vec<_>>(),
        "failing": s.failing.iter().map(|f| serde_json::json!({
            "target": f.target, "key": f.key, "attempts": f.attempts, "last_error": crate::redact(&f.last_error),
        })).collect::<Vec<_>>(),
        "drafts": s.drafts.iter().map(|d| serde_json::json!({
            "target": d.target, "key": d.key, "remote_id": d.remote_id, "status": d.status,
        })).collect::<Vec<_>>(),
        "grants": store.grants().await?.iter().map(|g| serde_json::json!({
            "target": g.target,
            "access_expires_at": at(&g.info.access_expires_at),
            "scopes": g.info.scopes.as_deref().map(|s| s.split_whitespace().collect::<Vec<_>>()),
            "tenant_id": g.info.tenant_id,
            "tenant_name": g.info.tenant_name,
            "connected_at": at(&g.connected_at),
            "refresh_token_stored": g.has_token,
            "revoked": g.revoked.as_deref().map(crate::redact),
        })).collect::<Vec<_>>(),
    }))
}

/// One line of `status` (and `refresh`) about a target's OAuth grant.
pub fn grant_line(g: &store::GrantRecord) -> String {
    let at = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let mut parts = vec![format!("grant {}:", g.target)];
    if let Some(id) = &g.info.tenant_id {
        parts.push(match &g.info.tenant_name {
            Some(n) => format!("organisation {n} ({id});"),
            None => format!("organisation {id};"),
        });
    }
    parts.push(match &g.info.access_expires_at {
        Some(t) => format!("access token until {};", at(t)),
        None => "no access token yet;".to_owned(),
    });
    parts.push(format!(
        "scopes {};",
        g.info.scopes.as_deref().unwrap_or("(not said)")
    ));
    parts.push(match &g.connected_at {
        Some(t) => format!("connected {}", at(t)),
        None => "from the configuration's refresh token".to_owned(),
    });
    let mut line = parts.join(" ");
    if let Some(why) = &g.revoked {
        line.push_str(&format!("; REVOKED: {}", crate::redact(why)));
    }
    line
}

/// What `status` shows.
pub async fn status_text(store: &Store) -> Result<String, CycleError> {
    let s = store.status().await?;
    let mut out = String::new();
    use std::fmt::Write;
    for c in store.pending_mapping_changes().await? {
        let _ = writeln!(
            out,
            "mapping change {} {} since {}: {} (hash {}) moves {} in closed periods, {} in open ones; {}",
            c.id,
            c.status.to_uppercase(),
            c.created_at.chars().take(19).collect::<String>(),
            c.path,
            c.hash,
            c.summary["closed_total_delta"].as_str().unwrap_or("?"),
            c.summary["open_total_delta"].as_str().unwrap_or("?"),
            if c.status == "held" {
                format!(
                    "see `contract-bridge diff --live`, accept with `contract-bridge apply-mapping --id {}`",
                    c.id
                )
            } else {
                "applies at the daemon's next mapping check".to_owned()
            }
        );
    }
    let _ = writeln!(
        out,
        "tickets stored: {}; periods closed: {}",
        s.tickets, s.closed_periods
    );
    let _ = writeln!(
        out,
        "outbox: {} pending, {} sent, {} dead",
        s.outbox_pending, s.outbox_sent, s.outbox_dead
    );
    let _ = writeln!(
        out,
        "reports: {} stored, {} with a PDF",
        s.reports, s.report_pdfs
    );
    if s.awaiting_review + s.rejected > 0 {
        let _ = writeln!(
            out,
            "review: {} draft(s) awaiting review, {} rejected (`contract-bridge review list`)",
            s.awaiting_review, s.rejected
        );
    }
    if !s.cursors.is_empty() {
        // One row per source; a folder's cursor (every file's position) is cut short.
        let rows: Vec<Vec<String>> = s
            .cursors
            .iter()
            .map(|c| {
                let mut short: String = c.cursor.chars().take(40).collect();
                if c.cursor.chars().count() > 40 {
                    short.push('…');
                }
                let synced_at = c.synced_at.format("%Y-%m-%dT%H:%M:%S").to_string();
                vec![c.source.clone(), synced_at, short]
            })
            .collect();
        out.push_str(&crate::render::table(
            &["source", "synced at (UTC)", "cursor"],
            &rows,
        ));
    }
    if !s.sources.is_empty() {
        // Per source: how far it is known complete, and how its last pass ended.
        let at = |t: &Option<DateTime<Utc>>| {
            t.map_or("never".to_owned(), |t| {
                t.format("%Y-%m-%d %H:%M:%S").to_string()
            })
        };
        let rows: Vec<Vec<String>> = s
            .sources
            .iter()
            .map(|h| {
                vec![
                    h.source.clone(),
                    at(&h.last_success_at),
                    at(&h.complete_through),
                    h.tickets_synced.to_string(),
                    match (&h.failing_since, &h.last_error) {
                        (Some(since), Some(e)) => format!(
                            "FAILING since {}: {}",
                            since.format("%Y-%m-%d %H:%M:%S"),
                            crate::redact(e)
                        ),
                        _ => "ok".to_owned(),
                    },
                ]
            })
            .collect();
        out.push_str(&crate::render::table(
            &[
                "source",
                "last good pass (UTC)",
                "complete through (UTC)",
                "tickets",
                "state",
            ],
            &rows,
        ));
    }
    for h in &s.held {
        let _ = writeln!(
            out,
            "held {} {} since {}: waits for {} ({})",
            h.customer,
            h.period,
            h.held_since.format("%Y-%m-%d %H:%M:%S UTC"),
            h.sources,
            h.reason
        );
    }
    for d in &s.differences {
        let _ = writeln!(
            out,
            "difference {} {} ({}): {}",
            d.target, d.key, d.remote_id, d.note
        );
    }
    for f in &s.failing {
        let _ = writeln!(
            out,
            "failing {} {}: {} attempt(s), last error: {}",
            f.target, f.key, f.attempts, f.last_error
        );
    }
    for line in feedback::ledger_lines(&s) {
        let _ = writeln!(out, "{line}");
    }
    for g in store.grants().await? {
        let _ = writeln!(out, "{}", grant_line(&g));
    }
    Ok(out)
}

pub fn log_report(r: &CycleReport) {
    tracing::info!(
        tickets_changed = r.tickets_changed,
        periods_closed = r.periods_closed,
        drafts_queued = r.drafts_queued,
        pushed = r.pushed,
        dead = r.dead,
        "cycle: {} ticket(s) changed, {} note(s) queued, {} period(s) closed, {} draft(s) queued ({} correction line(s)), {} pushed, {} to retry, {} dead",
        r.tickets_changed,
        r.notes_queued,
        r.periods_closed,
        r.drafts_queued,
        r.corrections,
        r.pushed,
        r.retried,
        r.dead
    );
    if r.drafts_awaiting_review > 0 {
        tracing::info!(
            "review: {} draft(s) wait for finance's approval (`contract-bridge review list`)",
            r.drafts_awaiting_review
        );
    }
    if r.reports > 0 {
        tracing::info!(
            "reports: {} work report(s) stored, {} with a PDF{}",
            r.reports,
            r.report_pdfs,
            if r.report_pdfs < r.reports {
                " (PDFs need report.chromium: a Chromium binary)"
            } else {
                ""
            }
        );
    }
    if r.status_requests > 0 {
        tracing::info!(
            "ledger: {} request(s) to accounting systems, {} draft status change(s), {} card(s)/bank(s) opened from sales",
            r.status_requests,
            r.status_changes,
            r.sales_recorded
        );
    }
    for e in &r.source_errors {
        tracing::error!("{}", crate::redact(e));
    }
    for h in &r.held {
        tracing::warn!("held: {}", crate::redact(h));
    }
    for w in &r.warnings {
        tracing::warn!("{}", crate::redact(w));
    }
    for n in &r.report_notes {
        tracing::warn!("{n}");
    }
}
