//! The running daemon (`contract-bridge run` without `--once`): tasks and
//! their shutdown, around one [`Bridge`].
//!
//! - the **leader** fires the cron schedules: each source's poll, the SLA
//!   tick, the period close and the status poll of accounting targets. On start it runs all of them once, to catch
//!   up on what fell due while it was down. Only the holder of the store's
//!   leader lock runs them (one instance of several on PostgreSQL);
//! - one **outbox worker** per target, woken when something is queued for
//!   it and otherwise looking every second (another instance may have queued
//!   it) or when the next retry is due;
//! - the **mapping watcher** checks the files every
//!   `schedule.mapping_check_secs` and on SIGHUP;
//! - the **HTTP server**: health, readiness, metrics and webhooks.
//!
//! A stop (Ctrl-C, SIGTERM) is broadcast on a watch channel; a worker
//! finishes the push in hand, records it, and exits.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::daemon::{Bridge, CycleError, CycleReport, log_report};

/// The clock of the running daemon: read at the edge, handed down as values.
fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{file}store.url: {source}")]
    Store {
        file: String,
        source: store::StoreError,
    },
    #[error("{0}")]
    Bridge(#[from] CycleError),
    #[error("{0}")]
    Listen(std::io::Error),
}

/// The daemon as one value, shared by `main` and the tests: built from
/// settings (the store opened as its writer, the tenants of stored grants
/// adopted), then, for the running daemon, bound to `http.listen` (port 0
/// picks a free one, see [`App::port`]) and run until a stop.
pub struct App {
    bridge: Arc<Bridge>,
    listener: Option<tokio::net::TcpListener>,
}

impl App {
    pub async fn build(settings: crate::settings::Settings) -> Result<App, AppError> {
        let file = settings
            .file
            .as_ref()
            .map_or(String::new(), |f| format!("{}: ", f.display()));
        let store = store::Store::open_writer(&settings.store.url)
            .await
            .map_err(|source| AppError::Store {
                file: file.clone(),
                source,
            })?;
        let mut settings = settings;
        crate::oauth::adopt_tenants(&mut settings, &store)
            .await
            .map_err(|source| AppError::Store { file, source })?;
        let bridge = Bridge::new(settings, Arc::new(store))?;
        Ok(App {
            bridge: Arc::new(bridge),
            listener: None,
        })
    }

    pub fn bridge(&self) -> &Arc<Bridge> {
        &self.bridge
    }

    /// Binds `http.listen` (when the settings have an `[http]` table).
    pub async fn listen(mut self) -> Result<App, AppError> {
        if let Some(http) = &self.bridge.settings.http {
            let listener = crate::server::listen(&http.listen).await.map_err(|e| {
                AppError::Listen(std::io::Error::new(
                    e.kind(),
                    format!(
                        "{}http.listen: cannot listen on `{}`: {e} (write address:port, e.g. 127.0.0.1:8080, free and allowed to this user)",
                        self.bridge
                            .settings
                            .file
                            .as_ref()
                            .map_or(String::new(), |f| format!("{}: ", f.display())),
                        http.listen
                    ),
                ))
            })?;
            self.listener = Some(listener);
        }
        Ok(self)
    }

    /// The port the server listens on, once [`App::listen`] bound one.
    pub fn port(&self) -> Option<u16> {
        self.listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    }

    /// Runs the daemon's tasks until `shutdown` completes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), std::io::Error> {
        run(self.bridge, self.listener, shutdown).await
    }
}

async fn run(
    bridge: Arc<Bridge>,
    listener: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), std::io::Error> {
    let (stop_tx, stop_rx) = watch::channel(false);
    store::set_redaction(crate::redact);
    if let Err(e) = bridge.reload_mapping(now()).await {
        tracing::error!("{}", crate::redact(&e.to_string()));
    }
    let mut tasks = tokio::task::JoinSet::new();
    if let (Some(http), Some(listener)) = (&bridge.settings.http, listener) {
        tracing::info!(address = %listener.local_addr()?, "listening on http://{}", listener.local_addr()?);
        let app = crate::server::router(bridge.clone());
        tasks.spawn(crate::server::serve(
            listener,
            app,
            crate::server::Limits::of(http),
            bridge.metrics.connections.clone(),
            stop_rx.clone(),
        ));
    }
    for target in bridge.push_targets() {
        tasks.spawn(worker(bridge.clone(), target.clone(), stop_rx.clone()));
    }
    tasks.spawn(watch_mapping(bridge.clone(), stop_rx.clone()));
    tasks.spawn(lead(bridge.clone(), stop_rx));
    shutdown.await;
    let _ = stop_tx.send(true);
    // A push in hand is finished and recorded; a stuck task does not keep
    // the process alive past the grace period.
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("tasks still running 30 s after the stop; exiting anyway");
        tasks.abort_all();
    }
    Ok(())
}

async fn worker(bridge: Arc<Bridge>, target: String, mut stop: watch::Receiver<bool>) {
    let Some(wake) = bridge.outbox_waker(&target) else {
        return;
    };
    while !*stop.borrow() {
        let mut report = CycleReport::default();
        let drained = {
            let stop = stop.clone();
            bridge
                .drain_until(&target, now, &mut report, move || *stop.borrow())
                .await
        };
        let pause = match drained {
            Ok(pause) => pause,
            Err(e) => {
                tracing::error!(target = %target, "outbox {target}: {}", crate::redact(&e.to_string()));
                Some(Duration::from_secs(1))
            }
        };
        if let Some(pause) = pause {
            // Throttled: the whole target waits, whatever is queued meanwhile.
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        // Due now but not claimable means another instance is pushing it:
        // look again shortly rather than spin.
        let next = match bridge.store.next_due(&target).await {
            Ok(Some(at)) => DateTime::parse_from_rfc3339(&at)
                .ok()
                .and_then(|at| (at.with_timezone(&Utc) - now()).to_std().ok())
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_millis(250)),
            _ => Duration::from_secs(1),
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(next.min(Duration::from_secs(1))) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn watch_mapping(bridge: Arc<Bridge>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs_f64(bridge.settings.schedule.mapping_check_secs.max(0.1));
    let mut hangup = Hangup::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = hangup.recv() => tracing::info!("SIGHUP: reloading the mapping"),
            _ = stop.changed() => return,
        }
        if let Err(e) = bridge.reload_mapping(now()).await {
            tracing::error!("{}", crate::redact(&e.to_string()));
        }
    }
}

/// One scheduled job.
enum Job {
    Poll(String, cron::Schedule),
    Sla(cron::Schedule),
    Close(cron::Schedule),
    /// Draft statuses and prepaid sales in the accounting targets.
    Ledger(cron::Schedule),
}

impl Job {
    /// The next firing after `after`; the close fires in every contract's zone.
    fn next(&self, bridge: &Bridge, after: DateTime<Utc>) -> DateTime<Utc> {
        let far = after + chrono::Duration::days(366);
        match self {
            Job::Poll(_, s) | Job::Sla(s) | Job::Ledger(s) => s.after(&after).next().unwrap_or(far),
            Job::Close(s) => {
                let zones: Vec<chrono_tz::Tz> = bridge
                    .mapping()
                    .map(|m| m.book.contracts.values().map(|c| c.tz).collect())
                    .unwrap_or_default();
                zones
                    .into_iter()
                    .chain([chrono_tz::UTC])
                    .filter_map(|tz| s.after(&after.with_timezone(&tz)).next())
                    .map(|t| t.with_timezone(&Utc))
                    .min()
                    .unwrap_or(far)
            }
        }
    }

    async fn run(&self, bridge: &Bridge, at: DateTime<Utc>) -> Result<CycleReport, CycleError> {
        let mut report = CycleReport::default();
        match self {
            Job::Poll(source, _) => bridge.sync_source(source, at, &mut report).await?,
            Job::Sla(_) => bridge.note_sla(at, &mut report).await?,
            Job::Close(_) => bridge.close_due(at, &mut report).await?,
            Job::Ledger(_) => bridge.poll_ledger(at, &mut report, true).await?,
        }
        Ok(report)
    }
}

fn jobs(bridge: &Bridge) -> Vec<Job> {
    let s = &bridge.settings;
    let cron = |field: &str, expr: &str| crate::settings::cron(field, expr).ok();
    let mut jobs = Vec::new();
    for (name, source) in &s.sources {
        let expr = source.poll.as_deref().unwrap_or(&s.schedule.poll);
        if let Some(c) = cron(&format!("sources.{name}.poll"), expr) {
            jobs.push(Job::Poll(name.clone(), c));
        }
    }
    jobs.extend(cron("schedule.sla", &s.schedule.sla).map(Job::Sla));
    jobs.extend(cron("schedule.close", &s.schedule.close).map(Job::Close));
    if s.targets.values().any(|t| t.accounting().is_some()) {
        jobs.extend(cron("schedule.status", &s.schedule.status).map(Job::Ledger));
    }
    jobs
}

async fn lead(bridge: Arc<Bridge>, mut stop: watch::Receiver<bool>) {
    let jobs = jobs(&bridge);
    loop {
        let mut leadership = loop {
            match bridge.store.try_lead().await {
                Ok(Some(l)) => break l,
                Ok(None) => {}
                Err(e) => tracing::error!("leader lock: {}", crate::redact(&e.to_string())),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stop.changed() => return,
            }
        };
        // Catch up first: everything once, in order.
        let start = now();
        let mut next: Vec<DateTime<Utc>> = jobs.iter().map(|_| start).collect();
        loop {
            let Some((i, at)) = next.iter().copied().enumerate().min_by_key(|(_, at)| *at) else {
                // No schedule at all: nothing to lead.
                let _ = stop.changed().await;
                return;
            };
            let wait = (at - now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            let holds = tokio::time::timeout(Duration::from_secs(10), leadership.holds()).await;
            if !holds.unwrap_or(false) {
                tracing::warn!("lost the leader lock; waiting to lead again");
                break;
            }
            // A job that failed or could not run (no valid mapping yet) is
            // tried again in a minute, not at its next firing: a close that
            // failed at 06:00 on the 1st must not wait a month.
            // A close that held a period for an incomplete source looks
            // again in five minutes: the period closes once the source reads.
            let mut held = false;
            let done = bridge.mapping().is_some()
                && match jobs[i].run(&bridge, now()).await {
                    Ok(r) => {
                        if r != CycleReport::default() {
                            log_report(&r);
                        }
                        held = r.periods_held > 0;
                        true
                    }
                    Err(e) => {
                        bridge.metrics.add_cycle_error();
                        tracing::error!("{}", crate::redact(&e.to_string()));
                        false
                    }
                };
            next[i] = if held {
                now() + chrono::Duration::minutes(5)
            } else if done {
                jobs[i].next(&bridge, now())
            } else {
                now() + chrono::Duration::seconds(60)
            };
        }
    }
}

/// SIGHUP asks for an immediate mapping reload.
struct Hangup(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangup {
    fn new() -> Hangup {
        #[cfg(unix)]
        {
            Hangup(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok())
        }
        #[cfg(not(unix))]
        {
            Hangup()
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.0 {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    }
}
