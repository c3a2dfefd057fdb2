//! What the daemon counts for `/metrics` and `status`: counters since the
//! process started, the readiness of the mapping, and the listener's
//! connections. Written by the flows, read by the HTTP server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Counters since the process started, and the readiness of the mapping.
#[derive(Default)]
pub struct Metrics {
    pub(crate) mapping_valid: AtomicBool,
    pub(crate) cycle_errors: AtomicU64,
    pub(crate) tickets_changed: AtomicU64,
    pub(crate) periods_closed: AtomicU64,
    pub(crate) pushes_sent: AtomicU64,
    pub(crate) pushes_retried: AtomicU64,
    pub(crate) pushes_dead: AtomicU64,
    /// Report PDFs given up on (their own outbox items; the drafts went).
    pub(crate) attachments_failed: AtomicU64,
    /// Token refreshes refused with `invalid_grant` (a consent to redo).
    pub(crate) grants_revoked: AtomicU64,
    pub(crate) notes_queued: AtomicU64,
    pub(crate) sla_breaches: AtomicU64,
    /// Webhook answers by status code.
    pub(crate) webhooks: Mutex<BTreeMap<u16, u64>>,
    /// Requests sent to helpdesk APIs.
    pub helpdesk_requests: AtomicU64,
    /// A period has been held longer than `billing.hold_alert_minutes`.
    pub(crate) held_alert: AtomicBool,
    /// Mapping changes held because they move money in a closed period.
    pub(crate) mapping_changes_held: AtomicU64,
    /// Passes of a source that failed or left a ticket unread.
    pub(crate) source_failures: AtomicU64,
    /// Months a report or statement billed, and months it took from the
    /// cache of bills made from the same data (issue 19).
    pub report_months_billed: AtomicU64,
    pub report_months_cached: AtomicU64,
    /// The listener's connections.
    pub connections: Arc<Connections>,
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
    pub fn add_attachment_failed(&self) {
        self.attachments_failed.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add_grant_revoked(&self) {
        self.grants_revoked.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add_note(&self, breach: bool) {
        self.notes_queued.fetch_add(1, Ordering::Relaxed);
        if breach {
            self.sla_breaches.fetch_add(1, Ordering::Relaxed);
        }
    }
    pub fn set_held_alert(&self, alert: bool) {
        self.held_alert.store(alert, Ordering::Relaxed);
    }
    pub fn set_mapping_changes_held(&self, n: usize) {
        self.mapping_changes_held.store(n as u64, Ordering::Relaxed);
    }
    pub fn add_source_failure(&self) {
        self.source_failures.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add_webhook(&self, status: u16) {
        if let Ok(mut w) = self.webhooks.lock() {
            *w.entry(status).or_default() += 1;
        }
    }
}

/// Connections held now, and those shed or closed at once since the start.
#[derive(Default)]
pub struct Connections {
    pub open: AtomicU64,
    /// The most served at once.
    pub peak: AtomicU64,
    pub shed: AtomicU64,
    pub refused: AtomicU64,
}
