//! The daemon's HTTP endpoints: `/healthz` (the process answers), `/readyz`
//! (the mapping in force is valid and the store answers) and `/metrics`
//! (Prometheus text format), and `/statement/{customer}` (the balance
//! statement at a signed link, see `statement.rs`). They read shared state
//! and never block a cycle.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::daemon::Bridge;

/// Counters since the process started, and the readiness of the mapping.
#[derive(Default)]
pub struct Metrics {
    mapping_valid: AtomicBool,
    cycle_errors: AtomicU64,
    tickets_changed: AtomicU64,
    periods_closed: AtomicU64,
    pushes_sent: AtomicU64,
    pushes_retried: AtomicU64,
    pushes_dead: AtomicU64,
    notes_queued: AtomicU64,
    sla_breaches: AtomicU64,
    /// Webhook answers by status code.
    webhooks: Mutex<BTreeMap<u16, u64>>,
    /// Requests sent to helpdesk APIs.
    pub helpdesk_requests: AtomicU64,
}

impl Metrics {
    pub fn set_mapping_valid(&self, valid: bool) {
        self.mapping_valid.store(valid, Ordering::Relaxed);
    }
    pub fn add_cycle_error(&self) {
        self.cycle_errors.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add_tickets(&self, n: usize) {
        self.tickets_changed.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn add_periods_closed(&self, n: usize) {
        self.periods_closed.fetch_add(n as u64, Ordering::Relaxed);
    }
    /// `result`: `sent`, `retry` or `dead`.
    pub fn add_push(&self, result: &str) {
        let counter = match result {
            "sent" => &self.pushes_sent,
            "retry" => &self.pushes_retried,
            _ => &self.pushes_dead,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add_note(&self, breach: bool) {
        self.notes_queued.fetch_add(1, Ordering::Relaxed);
        if breach {
            self.sla_breaches.fetch_add(1, Ordering::Relaxed);
        }
    }
    pub fn add_webhook(&self, status: u16) {
        if let Ok(mut w) = self.webhooks.lock() {
            *w.entry(status).or_default() += 1;
        }
    }
}

pub fn router(bridge: Arc<Bridge>) -> Router {
    let limit = bridge
        .settings
        .http
        .as_ref()
        .map_or(1 << 20, |h| h.webhook_max_bytes);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/statement/{customer}", get(crate::statement::serve))
        .route(
            "/webhooks/accounting/{target}",
            post(crate::daemon::accounting_webhook).layer(DefaultBodyLimit::max(limit)),
        )
        .route(
            "/webhooks/{source}",
            post(crate::daemon::webhook::receive).layer(DefaultBodyLimit::max(limit)),
        )
        .with_state(bridge)
}

async fn readyz(State(s): State<Arc<Bridge>>) -> (StatusCode, String) {
    if !s.metrics.mapping_valid.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the mapping is not valid (see `contract-bridge check`)\n".into(),
        );
    }
    match s.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", crate::redact(&e.to_string())),
        ),
    }
}

async fn metrics(State(s): State<Arc<Bridge>>) -> (StatusCode, String) {
    let m = &s.metrics;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    counter(
        "contract_bridge_cycle_errors_total",
        "Scheduled jobs that failed.",
        m.cycle_errors.load(Ordering::Relaxed),
    );
    counter(
        "contract_bridge_tickets_synced_total",
        "Ticket snapshots stored new or changed.",
        m.tickets_changed.load(Ordering::Relaxed),
    );
    counter(
        "contract_bridge_periods_closed_total",
        "Customer periods closed.",
        m.periods_closed.load(Ordering::Relaxed),
    );
    counter(
        "contract_bridge_helpdesk_requests_total",
        "Requests sent to helpdesk APIs.",
        m.helpdesk_requests.load(Ordering::Relaxed),
    );
    counter(
        "contract_bridge_notes_queued_total",
        "SLA warning and breach notes queued for helpdesks.",
        m.notes_queued.load(Ordering::Relaxed),
    );
    counter(
        "contract_bridge_sla_breaches_total",
        "SLA breaches found (each clock once).",
        m.sla_breaches.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP contract_bridge_webhooks_total Webhook requests by answer.\n# TYPE contract_bridge_webhooks_total counter"
    );
    if let Ok(w) = m.webhooks.lock() {
        for (status, n) in w.iter() {
            let _ = writeln!(
                out,
                "contract_bridge_webhooks_total{{status=\"{status}\"}} {n}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP contract_bridge_pushes_total Outbox pushes by result.\n# TYPE contract_bridge_pushes_total counter"
    );
    for (result, v) in [
        ("sent", &m.pushes_sent),
        ("retry", &m.pushes_retried),
        ("dead", &m.pushes_dead),
    ] {
        let _ = writeln!(
            out,
            "contract_bridge_pushes_total{{result=\"{result}\"}} {}",
            v.load(Ordering::Relaxed)
        );
    }
    match s.store.status().await {
        Ok(st) => {
            let _ = writeln!(
                out,
                "# HELP contract_bridge_outbox_depth Outbox items by state.\n# TYPE contract_bridge_outbox_depth gauge"
            );
            for (state, v) in [
                ("pending", st.outbox_pending),
                ("sent", st.outbox_sent),
                ("dead", st.outbox_dead),
            ] {
                let _ = writeln!(out, "contract_bridge_outbox_depth{{state=\"{state}\"}} {v}");
            }
            let _ = writeln!(
                out,
                "# HELP contract_bridge_tickets Ticket snapshots stored.\n# TYPE contract_bridge_tickets gauge\ncontract_bridge_tickets {}",
                st.tickets
            );
            (StatusCode::OK, out)
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{out}# store unavailable: {}\n",
                crate::redact(&e.to_string())
            ),
        ),
    }
}
