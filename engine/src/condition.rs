//! Conditions that mapping files write over the canonical ticket.
//!
//! The engine only knows the trait: the mapping layer implements it with CEL.
//! An evaluation error means "does not apply" and is reported as a warning,
//! never as a panic or a silent `true`.

use std::fmt;

use crate::minutes::Minutes;
use crate::ticket::Ticket;
use crate::values::{ClockState, Priority};

/// What a condition may look at.
#[derive(Clone, Copy, Debug)]
pub struct TicketFacts<'a> {
    pub ticket: &'a Ticket,
    pub priority: Option<Priority>,
    /// Canonical billing category, `None` while uncategorised.
    pub category: Option<&'a str>,
    /// The state at the ticket's latest known change.
    pub state: Option<ClockState>,
    /// Ticket time in the period being billed (zero when judging SLA).
    pub period_minutes: Minutes,
    /// `onsite` work entries in the period being billed.
    pub onsite_visits: u32,
}

/// A compiled predicate over [`TicketFacts`].
pub trait Condition: Send + Sync + fmt::Debug {
    /// The expression as the admin wrote it, for explanations.
    fn source(&self) -> &str;
    /// `Err` carries a human-readable reason; the caller treats it as "does not apply".
    fn eval(&self, facts: &TicketFacts<'_>) -> Result<bool, String>;
}
