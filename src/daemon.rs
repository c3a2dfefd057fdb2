//! The daemon's cycle: sync the sources, close the periods that are due,
//! drain the outbox. `run --once` runs one cycle; `run` repeats it until
//! Ctrl-C or SIGTERM.
//!
//! Every external effect goes through the store first: a closed period and
//! its draft's outbox item are written in one transaction, and an item is
//! marked sent only after its target accepted it under its idempotency key.
//! A crash between the two leaves the item pending; the next cycle pushes
//! the same key again, which the target treats as the same draft.

use std::path::Path;

use chrono::{DateTime, Utc};
use connectors::{ConnectorError, Draft, DraftLine};
use engine::document::BillDocument;
use engine::period::Month;
use store::{ClosedPeriod, Store};

use crate::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("{0}")]
    Mapping(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("stored tickets do not parse: {0}")]
    Tickets(String),
    #[error("billing {period}: {message}")]
    Bill { period: Month, message: String },
}

/// What one cycle did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CycleReport {
    pub tickets_changed: usize,
    pub source_errors: Vec<String>,
    pub periods_closed: usize,
    pub drafts_queued: usize,
    pub pushed: usize,
    pub retried: usize,
    pub dead: usize,
}

/// One full cycle at instant `now`.
pub async fn run_cycle(
    settings: &Settings,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<CycleReport, CycleError> {
    let mapping = load_mapping(settings).await?;
    run_cycle_with(settings, store, &mapping, now).await
}

/// A mapping that passed `check`, with the fingerprint of its files.
pub struct GoodMapping {
    pub book: engine::ContractBook,
    pub hash: String,
}

/// Loads the mapping files; an invalid mapping gives the messages of `check`.
pub async fn load_mapping(settings: &Settings) -> Result<GoodMapping, CycleError> {
    let path = settings.mapping.path.clone();
    tokio::task::spawn_blocking(move || {
        let hash = mapping_hash(&path);
        mapping::load(&path)
            .map(|l| GoodMapping { book: l.book, hash })
            .map_err(|d| CycleError::Mapping(d.to_string()))
    })
    .await
    .map_err(|e| CycleError::Mapping(e.to_string()))?
}

/// One cycle with the mapping in force.
pub async fn run_cycle_with(
    settings: &Settings,
    store: &Store,
    mapping: &GoodMapping,
    now: DateTime<Utc>,
) -> Result<CycleReport, CycleError> {
    let mut report = CycleReport::default();
    store.record_mapping(&mapping.hash, now).await?;
    sync(settings, store, now, &mut report).await?;
    close_due_periods(settings, store, &mapping.book, now, &mut report).await?;
    drain(settings, store, now, &mut report).await?;
    Ok(report)
}

async fn sync(
    settings: &Settings,
    store: &Store,
    now: DateTime<Utc>,
    report: &mut CycleReport,
) -> Result<(), CycleError> {
    for (name, source) in &settings.sources {
        let cursor = store.cursor(name).await?;
        let source = source.clone();
        let batch = tokio::task::spawn_blocking(move || source.sync(cursor.as_deref()))
            .await
            .map_err(|e| CycleError::Tickets(e.to_string()))?;
        match batch {
            Ok(batch) => {
                for t in &batch.tickets {
                    if store
                        .upsert_ticket(name, &t.id, &t.customer, &t.json, now)
                        .await?
                    {
                        report.tickets_changed += 1;
                    }
                }
                // The cursor moves only after every ticket of the batch is stored.
                store.set_cursor(name, &batch.cursor, now).await?;
            }
            Err(e) => report.source_errors.push(format!("source {name}: {e}")),
        }
    }
    Ok(())
}

/// Bills each month from `first_period` that has ended in a customer's time
/// zone and is not closed yet, and queues its draft.
async fn close_due_periods(
    settings: &Settings,
    store: &Store,
    book: &engine::ContractBook,
    now: DateTime<Utc>,
    report: &mut CycleReport,
) -> Result<(), CycleError> {
    let first: Month = settings
        .billing
        .first_period
        .parse()
        .map_err(|e| CycleError::Mapping(format!("{e}")))?;
    let last = Month::containing(now, chrono_tz::UTC);
    let mut tickets = None;
    for month in first.through(last) {
        let mut due = Vec::new();
        for (key, c) in &book.contracts {
            if now >= month.end(c.tz) && !store.is_closed(key.as_str(), &month.to_string()).await? {
                due.push(key.clone());
            }
        }
        if due.is_empty() {
            continue;
        }
        if tickets.is_none() {
            let snapshots = store.ticket_snapshots().await?;
            let text = format!("{{\"tickets\":[{}]}}", snapshots.join(","));
            let parsed = crate::export::parse(Path::new("<store>"), &text)
                .map_err(|e| CycleError::Tickets(e.to_string()))?;
            tickets = Some(parsed);
        }
        let doc = engine::bill(book, tickets.as_deref().unwrap_or_default(), month, None).map_err(
            |e| CycleError::Bill {
                period: month,
                message: e.to_string(),
            },
        )?;
        for customer in due {
            let closed = closed_period(settings, &doc, &customer, month, now, book);
            if store.close_period(&closed, now).await? {
                report.periods_closed += 1;
                report.drafts_queued += usize::from(closed.push.is_some());
            }
        }
    }
    Ok(())
}

fn closed_period(
    settings: &Settings,
    doc: &BillDocument,
    customer: &engine::ticket::CustomerKey,
    month: Month,
    now: DateTime<Utc>,
    book: &engine::ContractBook,
) -> ClosedPeriod {
    let invoice = doc.invoices.iter().find(|i| &i.customer == customer);
    let part = serde_json::json!({
        "invoice": invoice,
        "report": doc.report.iter().filter(|r| &r.customer == customer).collect::<Vec<_>>(),
        "balances": doc.balances.iter().filter(|b| &b.customer == customer).collect::<Vec<_>>(),
    });
    let revision = 1;
    let tz = book
        .contracts
        .get(customer)
        .map_or(chrono_tz::UTC, |c| c.tz);
    let push = invoice.map(|inv| {
        let draft = Draft {
            customer: customer.to_string(),
            period: month.to_string(),
            revision,
            currency: inv.currency.to_string(),
            total_net: inv.total_net.to_string(),
            date: now.with_timezone(&tz).date_naive().to_string(),
            lines: inv
                .lines
                .iter()
                .map(|l| DraftLine {
                    kind: serde_json::to_value(l.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    description: l.description.clone(),
                    quantity: l.quantity.to_string(),
                    unit_price: l.unit_price.to_string(),
                    amount: l.amount.to_string(),
                    tickets: l.tickets.iter().map(ToString::to_string).collect(),
                })
                .collect(),
        };
        (
            settings.billing.target.clone(),
            draft_key(customer.as_str(), month, revision),
            serde_json::to_string(&draft).unwrap_or_default(),
        )
    });
    ClosedPeriod {
        customer: customer.to_string(),
        period: month.to_string(),
        revision,
        total_net: invoice.map(|i| i.total_net.to_string()),
        currency: invoice.map(|i| i.currency.to_string()),
        document: part.to_string(),
        push,
    }
}

/// The idempotency key of a draft: what it represents, nothing else.
pub fn draft_key(customer: &str, period: Month, revision: i64) -> String {
    format!("draft:{customer}:{period}:r{revision}")
}

async fn drain(
    settings: &Settings,
    store: &Store,
    now: DateTime<Utc>,
    report: &mut CycleReport,
) -> Result<(), CycleError> {
    for (name, target) in &settings.targets {
        loop {
            let items = store.due(name, now, 100).await?;
            if items.is_empty() {
                break;
            }
            for item in items {
                let result = match serde_json::from_str::<Draft>(&item.payload) {
                    Ok(draft) => {
                        let (target, key) = (target.clone(), item.key.clone());
                        tokio::task::spawn_blocking(move || target.push_draft(&key, &draft))
                            .await
                            .unwrap_or_else(|e| Err(ConnectorError::Transient(e.to_string())))
                    }
                    Err(e) => Err(ConnectorError::Permanent(format!(
                        "unreadable payload: {e}"
                    ))),
                };
                match result {
                    Ok(()) => {
                        store.mark_sent(item.id, now).await?;
                        report.pushed += 1;
                    }
                    Err(e) => {
                        let attempts = item.attempts + 1;
                        let dead = matches!(e, ConnectorError::Permanent(_))
                            || attempts >= settings.outbox.max_attempts;
                        let next = now
                            + chrono::Duration::seconds(backoff(
                                &settings.outbox,
                                attempts,
                                item.id,
                            ));
                        store
                            .mark_failed(item.id, &e.to_string(), next, dead, now)
                            .await?;
                        if dead {
                            report.dead += 1;
                        } else {
                            report.retried += 1;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Exponential backoff with jitter: `base × 2^(attempts−1)`, capped, plus up
/// to one `base` spread by item so that retries of many items do not align.
pub fn backoff(o: &crate::settings::OutboxSettings, attempts: i64, id: i64) -> i64 {
    let exp = o
        .base_delay_secs
        .saturating_mul(1i64 << (attempts - 1).clamp(0, 30));
    let mut x = (id as u64) ^ ((attempts as u64) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let jitter = (x % (o.base_delay_secs.max(1) as u64)) as i64;
    exp.min(o.max_delay_secs) + jitter
}

/// A stable fingerprint of the mapping files (FNV-1a over names and contents).
fn mapping_hash(path: &Path) -> String {
    let mut files: Vec<_> = if path.is_dir() {
        std::fs::read_dir(path)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default()
    } else {
        vec![path.to_path_buf()]
    };
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
    {
        let bytes = std::fs::read(f).unwrap_or_default();
        for b in f.display().to_string().bytes().chain(bytes) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// What `status` shows.
pub async fn status_text(store: &Store) -> Result<String, CycleError> {
    let s = store.status().await?;
    let mut out = String::new();
    use std::fmt::Write;
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
    for (source, cursor, at) in &s.cursors {
        let short: String = cursor.chars().take(60).collect();
        let _ = writeln!(out, "cursor {source}: {short} (updated {at})");
    }
    for (target, key, attempts, error) in &s.failing {
        let _ = writeln!(
            out,
            "failing {target} {key}: {attempts} attempt(s), last error: {error}"
        );
    }
    Ok(out)
}

/// Runs cycles every `poll_interval_secs`, with the HTTP endpoints beside
/// them when configured, until `shutdown` completes. A failed cycle is
/// logged and counted; the next one tries again.
pub async fn serve(
    settings: &Settings,
    store: std::sync::Arc<Store>,
    clock: impl Fn() -> DateTime<Utc>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), std::io::Error> {
    use std::sync::Arc;
    let metrics = Arc::new(crate::http::Metrics::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = match &settings.http {
        Some(http) => {
            let listener = tokio::net::TcpListener::bind(&http.listen).await?;
            eprintln!("listening on http://{}", listener.local_addr()?);
            let app = crate::http::router(Arc::new(crate::http::AppState {
                store: store.clone(),
                metrics: metrics.clone(),
            }));
            let mut rx = stop_rx.clone();
            Some(tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.wait_for(|stop| *stop).await;
                    })
                    .await
            }))
        }
        None => None,
    };
    tokio::pin!(shutdown);
    let mut reload = reload_signal();
    // An invalid change is refused and the last good mapping stays in force.
    let mut in_force: Option<GoodMapping> = None;
    loop {
        match load_mapping(settings).await {
            Ok(m) => {
                if in_force.as_ref().is_some_and(|old| old.hash != m.hash) {
                    eprintln!("mapping reloaded ({})", m.hash);
                }
                metrics
                    .mapping_valid
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                in_force = Some(m);
            }
            Err(e) => {
                metrics.record_error(true);
                let kept = if in_force.is_some() {
                    "; the last good mapping stays in force"
                } else {
                    ""
                };
                eprintln!("error: the mapping change is refused{kept}:\n{e}");
            }
        }
        if let Some(mapping) = &in_force {
            match run_cycle_with(settings, &store, mapping, clock()).await {
                Ok(r) => {
                    metrics.record(&r);
                    log_report(&r);
                }
                Err(e) => {
                    metrics.record_error(false);
                    eprintln!("error: {e}");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(settings.poll_interval_secs)) => {}
            _ = reload.recv() => eprintln!("SIGHUP: reloading the mapping"),
            _ = &mut shutdown => break,
        }
    }
    let _ = stop_tx.send(true);
    if let Some(server) = server {
        server.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}

pub fn log_report(r: &CycleReport) {
    eprintln!(
        "cycle: {} ticket(s) changed, {} period(s) closed, {} draft(s) queued, {} pushed, {} to retry, {} dead",
        r.tickets_changed, r.periods_closed, r.drafts_queued, r.pushed, r.retried, r.dead
    );
    for e in &r.source_errors {
        eprintln!("warning: {e}");
    }
}

/// SIGHUP asks for an immediate reload and cycle.
struct Reload(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

fn reload_signal() -> Reload {
    #[cfg(unix)]
    {
        Reload(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok())
    }
    #[cfg(not(unix))]
    {
        Reload()
    }
}

impl Reload {
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.0 {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    }
}
