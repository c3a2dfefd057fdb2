//! The ticket as every helpdesk connector and the offline export deliver it.
//!
//! Priority, category and states keep the helpdesk's **raw** values here; each
//! contract's value map translates them (see [`crate::values`]), because the
//! same raw value can mean different things for different helpdesks.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::minutes::Minutes;

macro_rules! string_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(Box<str>);

        impl $name {
            pub fn new(s: impl Into<Box<str>>) -> Self {
                $name(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

string_key!(
    /// The helpdesk's ticket id, unique in one export.
    TicketId
);
string_key!(
    /// The source (a configured helpdesk or folder) a ticket was read from.
    /// A ticket's identity is its source and its id: two helpdesks may both
    /// have a ticket "1001".
    SourceName
);
string_key!(
    /// The customer (organization) key that mapping files name.
    CustomerKey
);
string_key!(
    /// The helpdesk's id of one work (time) entry.
    WorkId
);

/// How a piece of work was done. An `onsite` entry is one visit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkKind {
    Remote,
    Onsite,
    Phone,
}

impl WorkKind {
    pub fn parse(s: &str) -> Option<WorkKind> {
        match s {
            "remote" => Some(WorkKind::Remote),
            "onsite" => Some(WorkKind::Onsite),
            "phone" => Some(WorkKind::Phone),
            _ => None,
        }
    }
}

/// One logged time entry.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkEntry {
    pub id: WorkId,
    pub at: DateTime<Utc>,
    pub minutes: Minutes,
    pub kind: WorkKind,
    pub agent: Option<Box<str>>,
}

/// A state change in the ticket's history (raw state value).
#[derive(Clone, Debug, PartialEq)]
pub struct StateChange {
    pub at: DateTime<Utc>,
    pub state: Box<str>,
}

/// A custom field's value, for mapping conditions.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<FieldValue>),
    Map(BTreeMap<String, FieldValue>),
}

/// A ticket's identity: its source and the key customers see. Two
/// helpdesks may both hold a ticket "1001"; they are two tickets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TicketRef<'a> {
    pub source: Option<&'a SourceName>,
    pub key: &'a TicketId,
}

impl fmt::Display for TicketRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            Some(source) => write!(f, "{source}:{}", self.key),
            None => f.write_str(self.key.as_str()),
        }
    }
}

/// A ticket with its history and logged work.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticket {
    /// Where it was read from; none in an offline export (one source).
    pub source: Option<SourceName>,
    /// The key customers see (a Zammad ticket number, a Jira issue key).
    pub id: TicketId,
    pub customer: CustomerKey,
    pub requester: Option<String>,
    pub title: String,
    pub priority: Option<Box<str>>,
    pub category: Option<Box<str>>,
    pub tags: Vec<String>,
    pub fields: BTreeMap<String, FieldValue>,
    pub created_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub states: Vec<StateChange>,
    pub work: Vec<WorkEntry>,
}

impl Ticket {
    /// Its identity: source and key.
    pub fn reference(&self) -> TicketRef<'_> {
        TicketRef {
            source: self.source.as_ref(),
            key: &self.id,
        }
    }
}
