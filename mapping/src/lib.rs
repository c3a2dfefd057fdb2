//! # contract-bridge mapping
//!
//! Mapping files are how admins express contracts without code: calendars,
//! value maps, contract templates and customers bound to them, in YAML, with
//! conditions in CEL. This crate parses them (rejecting unknown keys), checks
//! every reference, and compiles them into [`engine::contract::Contract`]s.
//! Every problem is a [`Diagnostic`] naming the file, line, column and key
//! path and saying what would be valid. `mappings/README.md` is the reference
//! of every key.

pub mod accounts;
mod cel;
mod compile;
pub mod diag;
mod duration;
mod ical;
pub mod raw;
pub mod review;
mod sources;

pub use accounts::{LineAccount, TargetAccounts};
pub use compile::{Loaded, load, parse_text};
pub use diag::{At, did_you_mean};
pub use diag::{Diagnostic, Diagnostics, Severity};
pub use duration::parse_duration;
pub use engine::ticket::WorkKind;
pub use review::Review;
pub use sources::{Place, SourceMap};
