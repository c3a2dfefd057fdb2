//! Canonical values and the value maps that produce them from raw helpdesk values.

use std::collections::HashMap;
use std::fmt;

use serde::{Serialize, Serializer};

/// Canonical priority: 1 critical … 4 low.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(u8);

impl Priority {
    pub const ALL: [Priority; 4] = [Priority(1), Priority(2), Priority(3), Priority(4)];

    pub fn new(p: u8) -> Option<Priority> {
        (1..=4).contains(&p).then_some(Priority(p))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    pub(crate) fn index(self) -> usize {
        usize::from(self.0 - 1)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

/// Canonical ticket state, as far as SLA clocks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockState {
    Open,
    Paused,
    Resolved,
}

impl ClockState {
    pub fn parse(s: &str) -> Option<ClockState> {
        match s {
            "open" => Some(ClockState::Open),
            "paused" => Some(ClockState::Paused),
            "resolved" => Some(ClockState::Resolved),
            _ => None,
        }
    }
}

/// Raw helpdesk value → canonical value, per helpdesk configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueMap {
    pub name: String,
    pub priority: HashMap<String, Priority>,
    pub state: HashMap<String, ClockState>,
    /// Raw category → billing category. A raw category not listed passes
    /// through unchanged.
    pub category: HashMap<String, String>,
}

impl ValueMap {
    pub fn priority(&self, raw: &str) -> Option<Priority> {
        self.priority.get(raw).copied()
    }

    pub fn state(&self, raw: &str) -> Option<ClockState> {
        self.state.get(raw).copied()
    }

    pub fn category<'a>(&'a self, raw: &'a str) -> &'a str {
        self.category.get(raw).map_or(raw, String::as_str)
    }
}
