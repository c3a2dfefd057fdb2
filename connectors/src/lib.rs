//! # contract-bridge connectors
//!
//! One module per external system. A connector turns the system's wire
//! format into canonical ticket snapshots (the offline export's ticket
//! object) or pushes a draft; retries, backoff and rate limits belong to the
//! daemon's outbox worker, not here.
//!
//! The connector set is closed: [`SourceConfig`] and [`TargetConfig`] are
//! the enums a configuration file names with `type = "…"`.
//!
//! - [`folder`]: the embedded defaults that need no external account: a
//!   source reading ticket exports dropped in a folder, and a target writing
//!   each draft as JSON, CSV and an hledger journal entry.

pub mod folder;

use serde::Deserialize;

/// A ticket as a source delivers it: the offline-format ticket object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketSnapshot {
    pub id: String,
    pub customer: String,
    /// The ticket object as JSON text.
    pub json: String,
}

/// What one sync of a source returns.
#[derive(Clone, Debug, Default)]
pub struct SyncBatch {
    pub tickets: Vec<TicketSnapshot>,
    /// Stored after the batch is saved; handed back on the next sync.
    pub cursor: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Worth retrying later (a file being written, a 5xx, a timeout).
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help until someone fixes something.
    #[error("{0}")]
    Permanent(String),
}

/// Helpdesk sources, by `type`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    Folder(folder::FolderSourceConfig),
}

/// Accounting targets, by `type`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetConfig {
    Folder(folder::FolderTargetConfig),
}

impl SourceConfig {
    /// Tickets changed since `cursor`.
    pub fn sync(&self, cursor: Option<&str>) -> Result<SyncBatch, ConnectorError> {
        match self {
            SourceConfig::Folder(c) => folder::sync(c, cursor),
        }
    }
}

impl TargetConfig {
    /// Pushes one draft under its idempotency key; pushing the same key
    /// again is harmless.
    pub fn push_draft(&self, key: &str, draft: &Draft) -> Result<(), ConnectorError> {
        match self {
            TargetConfig::Folder(c) => folder::push_draft(c, key, draft),
        }
    }
}

/// An invoice draft as every accounting target receives it.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
pub struct Draft {
    pub customer: String,
    pub period: String,
    pub revision: i64,
    pub currency: String,
    pub total_net: String,
    pub lines: Vec<DraftLine>,
    /// Issue date of the draft (`YYYY-MM-DD`, the day the period closed).
    pub date: String,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
pub struct DraftLine {
    pub kind: String,
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    pub amount: String,
    pub tickets: Vec<String>,
}
