//! The offline ticket export (`spec/offline-format.md`) → engine tickets.
//!
//! Parsing is strict where billing depends on it (timestamps, minutes, work
//! kinds) and lenient elsewhere: unknown fields are ignored, since helpdesks
//! add their own. Every error names the file, line, column and field.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use engine::minutes::Minutes;
use engine::ticket::{
    CustomerKey, FieldValue, StateChange, Ticket, TicketId, WorkEntry, WorkId, WorkKind,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A problem with the export file.
#[derive(Debug, thiserror::Error)]
pub struct ExportError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// e.g. `tickets[3].work[0].minutes`
    pub field: String,
    pub message: String,
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Deserialize)]
struct RawExport<'a> {
    #[serde(default, borrow)]
    #[allow(dead_code)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tickets: Vec<RawTicket<'a>>,
}

#[derive(Deserialize)]
struct RawTicket<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    customer: Cow<'a, str>,
    #[serde(default)]
    requester: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default, borrow)]
    priority: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    category: Option<Cow<'a, str>>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    fields: BTreeMap<String, JsonValue>,
    #[serde(deserialize_with = "instant")]
    created_at: DateTime<Utc>,
    #[serde(default, deserialize_with = "opt_instant")]
    first_response_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "opt_instant")]
    resolved_at: Option<DateTime<Utc>>,
    #[serde(default, borrow)]
    states: Vec<RawState<'a>>,
    #[serde(default, borrow)]
    work: Vec<RawWork<'a>>,
}

#[derive(Deserialize)]
struct RawState<'a> {
    #[serde(deserialize_with = "instant")]
    at: DateTime<Utc>,
    #[serde(borrow)]
    state: Cow<'a, str>,
}

#[derive(Deserialize)]
struct RawWork<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(deserialize_with = "instant")]
    at: DateTime<Utc>,
    #[serde(deserialize_with = "minutes")]
    minutes: Minutes,
    #[serde(default, borrow)]
    agent: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "kind")]
    kind: WorkKind,
}

/// Custom field values as JSON gives them.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<JsonValue>),
    Map(BTreeMap<String, JsonValue>),
}

impl From<JsonValue> for FieldValue {
    fn from(v: JsonValue) -> FieldValue {
        match v {
            JsonValue::Null => FieldValue::Null,
            JsonValue::Bool(b) => FieldValue::Bool(b),
            JsonValue::Int(i) => FieldValue::Int(i),
            JsonValue::Float(f) => FieldValue::Float(f),
            JsonValue::Text(s) => FieldValue::Text(s),
            JsonValue::List(l) => FieldValue::List(l.into_iter().map(Into::into).collect()),
            JsonValue::Map(m) => {
                FieldValue::Map(m.into_iter().map(|(k, v)| (k, v.into())).collect())
            }
        }
    }
}

fn instant<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = <Cow<'de, str>>::deserialize(d)?;
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| de::Error::custom(format!("`{s}` is not an RFC 3339 timestamp with an offset, such as 2026-10-01T08:30:00+03:00")))
}

fn opt_instant<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "instant")] DateTime<Utc>);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

fn minutes<'de, D: Deserializer<'de>>(d: D) -> Result<Minutes, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    let value = if let Some(i) = n.as_i64() {
        Decimal::from(i)
    } else if let Some(u) = n.as_u64() {
        Decimal::from(u)
    } else {
        // The shortest decimal that reads back as the same double: what the file says.
        let f = n.as_f64().unwrap_or(f64::NAN);
        format!("{f}")
            .parse::<Decimal>()
            .map_err(|_| de::Error::custom(format!("{n} minutes is out of range")))?
    };
    Minutes::new(value)
        .map_err(|_| de::Error::custom(format!("minutes must be zero or more, got {n}")))
}

fn kind<'de, D: Deserializer<'de>>(d: D) -> Result<WorkKind, D::Error> {
    let s = <Cow<'de, str>>::deserialize(d)?;
    WorkKind::parse(&s).ok_or_else(|| {
        de::Error::custom(format!(
            "`{s}` is not a work kind: use remote, onsite or phone"
        ))
    })
}

/// Reads and parses an export file.
pub fn read(path: &Path) -> Result<(Vec<Ticket>, String), ExportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ExportError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("cannot read the ticket export: {e}"),
    })?;
    let tickets = parse(path, &text)?;
    Ok((tickets, text))
}

/// Parses export text. The fast path does not track field paths; only a
/// failing file is parsed again to name the field.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Ticket>, ExportError> {
    let raw: RawExport<'_> = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(_) => {
            let mut de = serde_json::Deserializer::from_str(text);
            let err = match serde_path_to_error::deserialize::<_, RawExport<'_>>(&mut de) {
                Ok(_) => unreachable_parse(),
                Err(e) => e,
            };
            let field = err.path().to_string();
            let inner = err.into_inner();
            let msg = inner.to_string();
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m)
                .to_owned();
            return Err(ExportError {
                file: path.to_path_buf(),
                line: inner.line(),
                column: inner.column(),
                field: if field == "." { String::new() } else { field },
                message: msg,
            });
        }
    };
    Ok(raw.tickets.into_iter().map(into_ticket).collect())
}

/// serde_json rejected the text once; the path-tracking parse must too.
fn unreachable_parse() -> serde_path_to_error::Error<serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str("");
    match serde_path_to_error::deserialize::<_, RawExport<'_>>(&mut de) {
        Err(e) => e,
        Ok(_) => panic!("an empty document never parses"),
    }
}

fn into_ticket(t: RawTicket<'_>) -> Ticket {
    Ticket {
        id: TicketId::new(t.id.into_owned()),
        customer: CustomerKey::new(t.customer.into_owned()),
        requester: t.requester,
        title: t.title,
        priority: t.priority.map(|p| p.into_owned().into_boxed_str()),
        category: t.category.map(|c| c.into_owned().into_boxed_str()),
        tags: t.tags,
        fields: t.fields.into_iter().map(|(k, v)| (k, v.into())).collect(),
        created_at: t.created_at,
        first_response_at: t.first_response_at,
        resolved_at: t.resolved_at,
        states: t
            .states
            .into_iter()
            .map(|s| StateChange {
                at: s.at,
                state: s.state.into_owned().into_boxed_str(),
            })
            .collect(),
        work: t
            .work
            .into_iter()
            .map(|w| WorkEntry {
                id: WorkId::new(w.id.into_owned()),
                at: w.at,
                minutes: w.minutes,
                kind: w.kind,
                agent: w.agent.map(|a| a.into_owned().into_boxed_str()),
            })
            .collect(),
    }
}

/// Line and column of ticket `id`'s `"id"` field in the export text, for messages.
pub fn locate_ticket(text: &str, id: &str) -> Option<(usize, usize)> {
    let needle = serde_json::to_string(id).ok()?;
    let mut from = 0;
    while let Some(pos) = text[from..].find(&needle) {
        let at = from + pos;
        let before = text[..at].trim_end();
        if before.ends_with(':') && before[..before.len() - 1].trim_end().ends_with("\"id\"") {
            let line = text[..at].matches('\n').count() + 1;
            let column = at - text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
            return Some((line, column));
        }
        from = at + needle.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ExportError {
        parse(Path::new("t.json"), text).unwrap_err()
    }

    const OK: &str = r#"{"tickets":[{"id":"T-1","customer":"c","requester":"a@b","title":"x","priority":"2 normal","category":null,"tags":[],"fields":{"n":1},"created_at":"2026-10-01T08:30:00+03:00","first_response_at":null,"resolved_at":null,"states":[],"work":[{"id":"W-1","at":"2026-10-01T09:10:00+03:00","minutes":37.5,"agent":"j","kind":"remote","note":"x"}]}]}"#;

    #[test]
    fn parses_fractions_of_minutes_exactly() {
        let t = parse(Path::new("t.json"), OK).unwrap();
        assert_eq!(t[0].work[0].minutes.to_string(), "37.5");
        assert_eq!(t[0].category, None);
    }

    #[test]
    fn negative_minutes_name_the_field_and_line() {
        let e = err(&OK.replace("37.5", "-5"));
        assert_eq!(e.field, "tickets[0].work[0].minutes");
        assert_eq!(e.line, 1);
        assert!(e.message.contains("zero or more"), "{e}");
    }

    #[test]
    fn bad_timestamps_and_kinds_are_refused() {
        assert_eq!(
            err(&OK.replace("2026-10-01T08:30:00+03:00", "yesterday")).field,
            "tickets[0].created_at"
        );
        assert_eq!(
            err(&OK.replace("\"remote\"", "\"teleport\"")).field,
            "tickets[0].work[0].kind"
        );
    }

    #[test]
    fn malformed_json_names_the_line() {
        let e = err("{\n\"tickets\": [\n{\"id\": }\n]}");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn locates_a_ticket_by_id() {
        let text = "{\n \"tickets\": [\n  {\"customer\": \"T-9\", \"id\": \"T-9\"}]}";
        assert_eq!(locate_ticket(text, "T-9"), Some((3, 29)));
    }
}
