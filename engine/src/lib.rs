//! # contract-bridge engine
//!
//! The pure core of contract-bridge: domain types, contracts, business
//! calendars, SLA clocks and billing. No I/O, no async, no clock reads: every
//! instant it needs (the period, `as_of`) is a parameter, so the same input
//! always gives the same bill.
//!
//! ## Layout
//! - [`money`], [`minutes`], [`period`], [`values`], [`ticket`]: newtypes that
//!   make invalid amounts, durations, months and priorities unrepresentable.
//! - [`contract`]: compiled contracts (terms by date, rules, rounding, banks,
//!   cards, add-ons, SLA terms), built by the `mapping` crate.
//! - [`calendar`]: business hours on the local wall clock, holidays,
//!   maintenance windows, DST; [`holidays`]: public holidays by country.
//! - [`sla`]: clocks computed from ticket history.
//! - [`billing`]: the month-by-month ledger of one customer.
//! - [`bill`]: the whole bill document for a period.
//! - [`document`]: the output types (`docs/offline-format.md`).
//! - [`condition`]: the trait mapping conditions (CEL) implement.
//! - [`whatif`]: the lines two bills of the same tickets differ by (a
//!   mapping edit's what-if).
//! - [`draft`]: a bill's invoice lines as drafts carry them to a ledger.
//! - [`corrections`]: what a late change to a closed period comes to.
//! - [`prepaid`]: a paid (or issued) invoice line opens a card or bank;
//!   sold cards and banks join the contract; renewals.

pub mod bill;
pub mod billing;
pub mod calendar;
pub mod condition;
pub mod contract;
pub mod corrections;
pub mod document;
pub mod draft;
pub mod holidays;
pub mod minutes;
pub mod money;
pub mod period;
pub mod prepaid;
pub mod sla;
pub mod ticket;
pub mod values;
pub mod whatif;

pub use bill::{bill, sla_clocks, sla_next_look};
pub use billing::{BillError, ContractBook};
pub use draft::DraftLine;
