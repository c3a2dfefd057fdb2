//! # contract-bridge
//!
//! The binary's library half: reading ticket exports and rendering bills.
//! The rules live in `engine` (billing, SLA) and `mapping` (mapping files);
//! this crate only moves data between files, the terminal and them.

pub mod app;
pub mod daemon;
pub mod export;
pub mod links;
pub mod metrics;
pub mod oauth;
pub mod pdf;
pub mod render;
pub mod report;
pub mod review;
pub mod server;
pub mod settings;
pub mod transport;

/// The one redaction of secrets in text: see [`connectors::secret::redact`].
pub use connectors::secret::redact;
