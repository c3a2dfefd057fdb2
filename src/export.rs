//! The offline ticket export (`docs/offline-format.md`) → engine tickets.
//!
//! Parsing is strict: a key the format does not define is an error with a
//! did-you-mean, since a misspelt `work` would otherwise bill nothing.
//! Helpdesk-specific data belongs in `fields`, which takes any key. Every
//! error names the file, line, column and field. The daemon parses the
//! snapshots helpdesk connectors store through this too, so every key a
//! connector writes must be one of the keys below.

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
#[serde(deny_unknown_fields)]
struct RawExport<'a> {
    /// Which helpdesk the export came from (informational).
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
    #[serde(borrow)]
    tickets: Vec<RawTicket<'a>>,
}

/// The keys of each object, for did-you-mean hints.
const EXPORT_KEYS: &[&str] = &["source", "tickets"];
const TICKET_KEYS: &[&str] = &[
    "id",
    "customer",
    "source",
    "requester",
    "title",
    "priority",
    "category",
    "tags",
    "fields",
    "created_at",
    "first_response_at",
    "resolved_at",
    "states",
    "work",
];
const STATE_KEYS: &[&str] = &["at", "state"];
const WORK_KEYS: &[&str] = &["id", "at", "minutes", "agent", "kind", "note", "activity"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTicket<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    customer: Cow<'a, str>,
    /// The helpdesk source the ticket came from, when an export mixes several.
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
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
#[serde(deny_unknown_fields)]
struct RawState<'a> {
    #[serde(deserialize_with = "instant")]
    at: DateTime<Utc>,
    #[serde(borrow)]
    state: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// What was done, for people; billing does not read it.
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<Cow<'a, str>>,
    /// The helpdesk's own name for the kind of work (a Zammad time
    /// accounting type), as read; billing reads `kind`, which the mapping
    /// derived from it.
    #[serde(default)]
    #[allow(dead_code)]
    activity: Option<Cow<'a, str>>,
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

/// Runs `f` on a JSON string without copying it (`Cow<str>` would allocate).
fn with_str<'de, D, T>(d: D, f: impl FnOnce(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Visit<F>(F);
    impl<T, F: FnOnce(&str) -> Result<T, String>> de::Visitor<'_> for Visit<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(Visit(f))
}

fn instant<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    with_str(d, |s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| format!("`{s}` is not an RFC 3339 timestamp with an offset, such as 2026-10-01T08:30:00+03:00"))
    })
}

fn opt_instant<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "instant")] DateTime<Utc>);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

fn minutes<'de, D: Deserializer<'de>>(d: D) -> Result<Minutes, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    let f = n.as_f64().unwrap_or(f64::NAN);
    if n.as_i64().is_some_and(|i| i < 0) || f < 0.0 {
        return Err(de::Error::custom(format!(
            "minutes must be zero or more, got {n}"
        )));
    }
    if n.as_u64()
        .map_or(f > f64::from(MAX_MINUTES), |u| u > u64::from(MAX_MINUTES))
    {
        return Err(de::Error::custom(format!(
            "{n} minutes is more than one work entry can log: at most {MAX_MINUTES} (about 694 days)"
        )));
    }
    let value = if let Some(u) = n.as_u64() {
        Decimal::from(u)
    } else {
        // The shortest decimal that reads back as the same double: what the file says
        // (beyond 28 decimal places, the nearest such decimal).
        format!("{f}")
            .parse::<Decimal>()
            .ok()
            .or_else(|| Decimal::from_f64_retain(f))
            .ok_or_else(|| de::Error::custom(format!("{n} is not a number of minutes")))?
    };
    Minutes::new(value)
        .map_err(|_| de::Error::custom(format!("minutes must be zero or more, got {n}")))
}

/// The most minutes one work entry may log. Far beyond any real entry, and
/// low enough that sums and prices over a whole export stay exact.
pub const MAX_MINUTES: u32 = 1_000_000;

fn kind<'de, D: Deserializer<'de>>(d: D) -> Result<WorkKind, D::Error> {
    with_str(d, |s| {
        WorkKind::parse(s)
            .ok_or_else(|| format!("`{s}` is not a work kind: use remote, onsite or phone"))
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
    // A byte-order mark is not JSON, but editors write it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let fail = |line: usize, column: usize, message: &str| ExportError {
        file: path.to_path_buf(),
        line,
        column,
        field: String::new(),
        message: message.to_owned(),
    };
    let first = text.trim_start();
    if first.is_empty() {
        return Err(fail(
            0,
            0,
            "the file is empty: expected a ticket export, a JSON object with a `tickets` list",
        ));
    }
    if !first.starts_with('{') {
        let at = text.len() - first.len();
        let (line, column) = line_col(text, at);
        return Err(fail(
            line,
            column,
            "expected a ticket export: a JSON object such as {\"tickets\": [...]}",
        ));
    }
    let raw: RawExport<'_> = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(first) => {
            // Parse again, tracking the path, only to name the failing field.
            let mut de = serde_json::Deserializer::from_str(text);
            let (field, inner) = match serde_path_to_error::deserialize::<_, RawExport<'_>>(&mut de)
            {
                Err(e) => (e.path().to_string(), e.into_inner()),
                Ok(_) => (String::new(), first),
            };
            let msg = unknown_key_message(&field, &inner.to_string());
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m)
                .replace("struct RawExport", "a ticket export object")
                .replace("struct RawTicket", "a ticket object")
                .replace(
                    "struct RawState",
                    "a state change object {\"at\", \"state\"}",
                )
                .replace("struct RawWork", "a work entry object")
                .replace("EOF while parsing", "the file ends in the middle of");
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

/// serde's "unknown field `x`, expected one of …" as a sentence that says
/// which object it is in, the nearest valid key and every valid key.
fn unknown_key_message(path: &str, msg: &str) -> String {
    let Some(rest) = msg.strip_prefix("unknown field `") else {
        return msg.to_owned();
    };
    let Some((key, tail)) = rest.split_once('`') else {
        return msg.to_owned();
    };
    // The path ends in the unknown key: its parent says which object it is in.
    let parent = path.strip_suffix(key).unwrap_or(path).trim_end_matches('.');
    let last = parent.rsplit('.').next().unwrap_or_default();
    let (what, keys) = if parent.is_empty() {
        ("the export", EXPORT_KEYS)
    } else if last.starts_with("work[") {
        ("a work entry", WORK_KEYS)
    } else if last.starts_with("states[") {
        ("a state change", STATE_KEYS)
    } else {
        ("a ticket", TICKET_KEYS)
    };
    let at = tail.find(" at line ").map_or("", |i| &tail[i..]);
    let mut hint = mapping::did_you_mean(key, keys.iter().copied());
    if hint.is_empty()
        && let Some(k) = keys
            .iter()
            .filter(|k| key.starts_with(**k) || k.starts_with(key))
            .max_by_key(|k| k.len())
    {
        // `work_entries` is far from `work` by edits, but plainly meant it.
        hint = format!(" (did you mean `{k}`?)");
    }
    format!(
        "unknown key `{key}` in {what}{hint}; valid keys: {} (helpdesk-specific values go in `fields`){at}",
        keys.join(", ")
    )
}

fn into_ticket(t: RawTicket<'_>) -> Ticket {
    Ticket {
        // A ticket names its source when an export mixes several: two
        // tickets with one id from two sources are two tickets.
        source: t.source.map(engine::ticket::SourceName::new),
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

/// One step of a path into a JSON document.
#[derive(Clone, Copy, Debug)]
pub enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Line and column (1-based) of the value at `path` in JSON `text`, for
/// messages; `None` if the text does not hold it.
pub fn locate(text: &str, path: &[Step<'_>]) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut pos = skip_ws(b, 0);
    for step in path {
        match (*step, b.get(pos)?) {
            (Step::Key(key), b'{') => {
                pos = skip_ws(b, pos + 1);
                loop {
                    if b.get(pos)? != &b'"' {
                        return None;
                    }
                    let end = skip_value(b, pos)?;
                    let name: String = serde_json::from_str(text.get(pos..end)?).ok()?;
                    pos = skip_ws(b, end);
                    if b.get(pos)? != &b':' {
                        return None;
                    }
                    pos = skip_ws(b, pos + 1);
                    if name == key {
                        break;
                    }
                    pos = skip_ws(b, skip_value(b, pos)?);
                    if b.get(pos)? != &b',' {
                        return None;
                    }
                    pos = skip_ws(b, pos + 1);
                }
            }
            (Step::Index(n), b'[') => {
                pos = skip_ws(b, pos + 1);
                for _ in 0..n {
                    pos = skip_ws(b, skip_value(b, pos)?);
                    if b.get(pos)? != &b',' {
                        return None;
                    }
                    pos = skip_ws(b, pos + 1);
                }
                if b.get(pos)? == &b']' {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(line_col(text, pos))
}

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while b.get(pos).is_some_and(|c| c.is_ascii_whitespace()) {
        pos += 1;
    }
    pos
}

/// The end of the JSON value starting at `pos` (no recursion: exports may nest deeply).
fn skip_value(b: &[u8], mut pos: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *b.get(pos)? {
            b'"' => {
                pos += 1;
                loop {
                    match *b.get(pos)? {
                        b'\\' => pos += 2,
                        b'"' => break,
                        _ => pos += 1,
                    }
                }
                pos += 1;
            }
            b'{' | b'[' => {
                depth += 1;
                pos += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                pos += 1;
            }
            c if depth == 0 && (c == b',' || c.is_ascii_whitespace()) => return Some(pos),
            _ => pos += 1,
        }
        if depth == 0 {
            // A scalar runs on to the next delimiter; a string or container is done.
            let prev = b[pos - 1];
            if prev == b'"' || prev == b'}' || prev == b']' {
                return Some(pos);
            }
            if b.get(pos)
                .is_none_or(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())
            {
                return Some(pos);
            }
        }
    }
}

/// 1-based line and column of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    (line, at - before.rfind('\n').map_or(0, |n| n + 1) + 1)
}

/// Line and column of ticket `id`'s `"id"` field in the export text, for messages.
pub fn locate_ticket(text: &str, id: &str) -> Option<(usize, usize)> {
    let needle = serde_json::to_string(id).ok()?;
    let mut from = 0;
    while let Some(pos) = text[from..].find(&needle) {
        let at = from + pos;
        let before = text[..at].trim_end();
        if before.ends_with(':') && before[..before.len() - 1].trim_end().ends_with("\"id\"") {
            return Some(line_col(text, at));
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
    fn unknown_keys_are_errors_with_the_nearest_valid_key() {
        let at_top = err(&OK.replacen("{\"tickets\"", "{\"bogus\":1,\"tickets\"", 1));
        assert_eq!(at_top.field, "bogus");
        assert!(
            at_top.message.contains("unknown key `bogus` in the export"),
            "{at_top}"
        );
        let e = err(&OK.replace("\"work\":", "\"work_entries\":"));
        assert_eq!(e.field, "tickets[0].work_entries");
        assert_eq!(e.line, 1);
        assert!(
            e.message
                .contains("unknown key `work_entries` in a ticket (did you mean `work`?)"),
            "{e}"
        );
        let e = err(&OK.replace("\"states\":", "\"state\":"));
        assert!(e.message.contains("(did you mean `states`?)"), "{e}");
        let e = err(&OK.replace("\"minutes\":", "\"minutes\":1,\"minuets\":"));
        assert_eq!(e.field, "tickets[0].work[0].minuets");
        assert!(
            e.message
                .contains("in a work entry (did you mean `minutes`?)"),
            "{e}"
        );
        let states = OK.replace(
            "\"states\":[]",
            "\"states\":[{\"at\":\"2026-10-01T08:30:00+03:00\",\"state\":\"new\",\"by\":\"x\"}]",
        );
        let e = err(&states);
        assert_eq!(e.field, "tickets[0].states[0].by");
        assert!(e.message.contains("in a state change"), "{e}");
        // `fields` takes any key; `source` and `note` are part of the format.
        let ok = OK.replace("{\"tickets\"", "{\"source\":\"zammad\",\"tickets\"");
        let ok = ok.replace(
            "\"customer\":\"c\"",
            "\"customer\":\"c\",\"source\":\"zammad\"",
        );
        assert!(
            parse(
                Path::new("t.json"),
                &ok.replace("{\"n\":1}", "{\"anything\":1}")
            )
            .is_ok()
        );
    }

    #[test]
    fn malformed_json_names_the_line() {
        let e = err("{\n\"tickets\": [\n{\"id\": }\n]}");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn locates_values_by_path() {
        let text = "{\n \"source\": \"a}\\\"[\",\n \"tickets\": [\n  {\"id\": \"T-1\", \"fields\": {\"x\": [1, {\"y\": \"}\"}]}, \"customer\": \"c\"},\n  {\"id\": \"T-2\",\n   \"customer\": \"d\"}\n ]\n}";
        let at = |path: &[Step<'_>]| locate(text, path);
        use Step::{Index, Key};
        assert_eq!(
            at(&[Key("tickets"), Index(0), Key("customer")]),
            Some((4, 63))
        );
        assert_eq!(
            at(&[Key("tickets"), Index(1), Key("customer")]),
            Some((6, 16))
        );
        assert_eq!(at(&[Key("tickets"), Index(1), Key("id")]), Some((5, 10)));
        assert_eq!(at(&[Key("tickets"), Index(2)]), None);
        assert_eq!(at(&[Key("tickets"), Index(0), Key("nope")]), None);
        assert_eq!(at(&[Key("source"), Index(0)]), None);
    }

    #[test]
    fn empty_files_bare_lists_and_byte_order_marks() {
        assert!(err("  \n").message.contains("the file is empty"));
        let e = err("\n [1]");
        assert_eq!((e.line, e.column), (2, 2));
        assert!(e.message.contains("expected a ticket export"), "{e}");
        assert_eq!(
            parse(Path::new("t.json"), &format!("\u{feff}{OK}"))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn minutes_beyond_any_work_entry_are_refused() {
        for big in ["1000001", "1e27", "79228162514264337593543950336"] {
            let e = err(&OK.replace("37.5", big));
            assert_eq!(e.field, "tickets[0].work[0].minutes");
            assert!(
                e.message.contains("more than one work entry can log"),
                "{e}"
            );
        }
        assert!(
            err(&OK.replace("37.5", "-1e30"))
                .message
                .contains("zero or more")
        );
        assert!(parse(Path::new("t.json"), &OK.replace("37.5", "1e-300")).is_ok());
    }

    #[test]
    fn locates_a_ticket_by_id() {
        let text = "{\n \"tickets\": [\n  {\"customer\": \"T-9\", \"id\": \"T-9\"}]}";
        assert_eq!(locate_ticket(text, "T-9"), Some((3, 29)));
    }
}
