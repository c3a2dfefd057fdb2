//! The daemon's HTTP endpoints: `/healthz` (the process answers), `/readyz`
//! (the mapping in force is valid and the store answers) and `/metrics`
//! (Prometheus text format). They read shared state and never block a cycle.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::daemon::CycleReport;

/// Counters since the process started, and the readiness of the mapping.
#[derive(Default)]
pub struct Metrics {
    pub mapping_valid: AtomicBool,
    pub cycles: AtomicU64,
    pub cycle_errors: AtomicU64,
    pub tickets_changed: AtomicU64,
    pub periods_closed: AtomicU64,
    pub pushes_sent: AtomicU64,
    pub pushes_retried: AtomicU64,
    pub pushes_dead: AtomicU64,
}

impl Metrics {
    pub fn record(&self, report: &CycleReport) {
        self.cycles.fetch_add(1, Ordering::Relaxed);
        self.tickets_changed
            .fetch_add(report.tickets_changed as u64, Ordering::Relaxed);
        self.periods_closed
            .fetch_add(report.periods_closed as u64, Ordering::Relaxed);
        self.pushes_sent
            .fetch_add(report.pushed as u64, Ordering::Relaxed);
        self.pushes_retried
            .fetch_add(report.retried as u64, Ordering::Relaxed);
        self.pushes_dead
            .fetch_add(report.dead as u64, Ordering::Relaxed);
    }

    /// A failed cycle; a mapping error also makes the daemon not ready.
    pub fn record_error(&self, mapping_invalid: bool) {
        self.cycle_errors.fetch_add(1, Ordering::Relaxed);
        if mapping_invalid {
            self.mapping_valid.store(false, Ordering::Relaxed);
        }
    }
}

pub struct AppState {
    pub store: Arc<store::Store>,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(s): State<Arc<AppState>>) -> (StatusCode, String) {
    if !s.metrics.mapping_valid.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the mapping is not valid (see `contract-bridge check`)\n".into(),
        );
    }
    match s.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
    }
}

async fn metrics(State(s): State<Arc<AppState>>) -> (StatusCode, String) {
    let m = &s.metrics;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    counter(
        "contract_bridge_cycles_total",
        "Cycles run.",
        m.cycles.load(Ordering::Relaxed),
    );
    counter(
        "contract_bridge_cycle_errors_total",
        "Cycles that failed.",
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
            format!("{out}# store unavailable: {e}\n"),
        ),
    }
}
