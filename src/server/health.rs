//! `/healthz` (the process answers), `/readyz` (the mapping in force is
//! valid, no period waits too long on an incomplete source, and the store
//! answers) and `/metrics` (Prometheus text format). They read shared
//! state and never block a cycle.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::daemon::Bridge;

pub fn routes() -> Router<Arc<Bridge>> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn readyz(State(s): State<Arc<Bridge>>) -> (StatusCode, String) {
    if !s.metrics.mapping_valid.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the mapping is not valid (see `contract-bridge check`)\n".into(),
        );
    }
    if s.metrics.held_alert.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "degraded: a period has waited longer than billing.hold_alert_minutes for an incomplete source (see `contract-bridge status`)\n".into(),
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
        family(&mut out, name, help, "counter");
        let _ = writeln!(out, "{name} {v}");
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
        "contract_bridge_report_months_billed_total",
        "Months billed to make a report or statement page.",
        m.report_months_billed.load(Ordering::Relaxed),
    );
    counter(
        "contract_bridge_report_months_cached_total",
        "Months a report or statement page took from bills made from the same tickets and mapping.",
        m.report_months_cached.load(Ordering::Relaxed),
    );
    counter(
        "contract_bridge_source_failures_total",
        "Source passes that failed or left a ticket unread (the source stays incomplete).",
        m.source_failures.load(Ordering::Relaxed),
    );
    counter(
        "contract_bridge_http_retries_total",
        "Outbound requests repeated after a timeout, a 429 or a 5xx.",
        s.transport_retries(),
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
    counter(
        "contract_bridge_attachments_failed_total",
        "Report PDFs given up on (the drafts were pushed without them).",
        m.attachments_failed.load(Ordering::Relaxed),
    );
    counter(
        "contract_bridge_oauth_grants_revoked_total",
        "Token refreshes refused as revoked or expired (`invalid_grant`): run `contract-bridge connect TARGET`.",
        m.grants_revoked.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "contract_bridge_mapping_changes_held",
        "Mapping changes held (not applied) because they move money in a closed period; `contract-bridge apply-mapping` accepts one.",
        m.mapping_changes_held.load(Ordering::Relaxed),
    );
    family(
        &mut out,
        "contract_bridge_webhooks_total",
        "Webhook requests by answer.",
        "counter",
    );
    if let Ok(w) = m.webhooks.lock() {
        for (status, n) in w.iter() {
            let _ = writeln!(
                out,
                "contract_bridge_webhooks_total{{status=\"{status}\"}} {n}"
            );
        }
    }
    // Read from the store at each scrape: a decision made by `review` on
    // the command line (another process) shows at once.
    if let Ok(waiting) = s.store.reviews_waiting().await {
        gauge(
            &mut out,
            "contract_bridge_drafts_awaiting_review",
            "Drafts waiting for finance's review (held ones included).",
            waiting,
        );
    }
    let c = &m.connections;
    gauge(
        &mut out,
        "contract_bridge_http_connections",
        "HTTP connections being served.",
        c.open.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "contract_bridge_http_connections_peak",
        "The most HTTP connections served at once.",
        c.peak.load(Ordering::Relaxed),
    );
    family(
        &mut out,
        "contract_bridge_http_connections_limited_total",
        "HTTP connections past http.max_connections: shed (answered /healthz or 503), and of those closed early for newer ones.",
        "counter",
    );
    for (how, v) in [("shed", &c.shed), ("closed", &c.refused)] {
        let _ = writeln!(
            out,
            "contract_bridge_http_connections_limited_total{{how=\"{how}\"}} {}",
            v.load(Ordering::Relaxed)
        );
    }
    family(
        &mut out,
        "contract_bridge_pushes_total",
        "Outbox pushes by result.",
        "counter",
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
            family(
                &mut out,
                "contract_bridge_outbox_depth",
                "Outbox items by state.",
                "gauge",
            );
            for (state, v) in [
                ("pending", st.outbox_pending),
                ("sent", st.outbox_sent),
                ("dead", st.outbox_dead),
            ] {
                let _ = writeln!(out, "contract_bridge_outbox_depth{{state=\"{state}\"}} {v}");
            }
            gauge(
                &mut out,
                "contract_bridge_tickets",
                "Ticket snapshots stored.",
                st.tickets,
            );
            gauge(
                &mut out,
                "contract_bridge_periods_held",
                "Customer periods due to close but waiting for an incomplete source.",
                st.held.len(),
            );
            family(
                &mut out,
                "contract_bridge_source_complete_through_seconds",
                "Each source's watermark: every change before it is stored (Unix time).",
                "gauge",
            );
            for h in &st.sources {
                let _ = writeln!(
                    out,
                    "contract_bridge_source_complete_through_seconds{{source=\"{}\"}} {}",
                    h.source,
                    h.complete_through.map_or(0, |t| t.timestamp())
                );
            }
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

/// `# HELP` and `# TYPE` of a metric family; its samples follow.
fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A gauge of one sample.
fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    family(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {value}");
}
