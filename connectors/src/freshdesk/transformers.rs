//! Freshdesk's payloads as types, and their conversion to the canonical
//! ticket (the offline format's ticket object).
//!
//! Every answer the connector reads is parsed into one of the structs
//! below before anything is taken from it, and every body it writes is
//! serialized from one. A field the connector reads is required unless
//! Freshdesk leaves it null (a ticket without a company, a stopped clock
//! never started); a missing or renamed one is an error that names it
//! (`[0].time_spent: missing field ...`), never a zero. Freshdesk adds
//! fields, so no shape refuses unknown ones. A ticket's custom fields
//! (`cf_...`) are whatever the mapping names: those stay JSON.
//!
//! Where the shapes come from (Freshdesk API v2, developers.freshdesk.com):
//!
//! - `GET /api/v2/tickets?include=requester,stats` and `GET
//!   /api/v2/tickets/{id}`: the ticket, its `requester` and `stats`;
//! - `GET /api/v2/tickets/{id}/time_entries`: `time_spent` as `hh:mm`,
//!   `billable`, `timer_running`, `agent_id`, `executed_at`;
//! - `GET /api/v2/companies/{id}`, `GET /api/v2/agents` (`contact.name`);
//! - `GET /api/v2/tickets/{id}/conversations`: `body_text`, `private`;
//! - `POST /api/v2/tickets/{id}/notes` `{body, private}` and `PUT
//!   /api/v2/tickets/{id}` `{tags}`, each answered with the written record;
//! - errors: `{description, errors: [{field, message, code}]}` for a
//!   validation error, `{code, message}` for the others.

use crate::Result;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::accounting::status_error;
use crate::helpdesk::{Converted, Mapped, RawTicket, SourceMap, canonical_ticket};
use crate::{ConnectorError, HttpResponse};
use mapping::Place;

use super::{FreshdeskConfig, SYSTEM};

/// How freshdesk's answers are read: see [`crate::documented`].
const SHAPE: crate::documented::Shape = crate::documented::Shape {
    system: None,
    shape: "as Freshdesk documents it",
};

/// `body` as `T`, or why not, naming the field by its path.
pub fn parse<T: DeserializeOwned>(body: &str, what: &str) -> Result<T, String> {
    SHAPE.read_str(body, what)
}

/// The answer's body as `T`, or why not: a refusal by its status, a body
/// not as documented naming the field (the daemon reports and retries).
pub fn read<T: DeserializeOwned>(r: &HttpResponse, what: &str) -> Result<T> {
    if !(200..300).contains(&r.status) {
        let m = error_message(&r.body);
        // A refused key will not get better by itself: no retry storm.
        if r.status == 401 || r.status == 403 {
            return Err(ConnectorError::Permanent(format!(
                "{SYSTEM}: HTTP {}: {m} (check the source's api_key and the agent's permissions)",
                r.status
            )));
        }
        return Err(status_error(SYSTEM, r, &m));
    }
    parse(&r.body, what)
        .map_err(|e| ConnectorError::Transient(format!("{SYSTEM}: HTTP {}: {e}", r.status)))
}

/// Freshdesk's error body: `{"description", "errors": [{field, message,
/// code}]}` for a validation error, `{"code", "message"}` for the others.
/// Each part may be absent: whatever is there is reported.
#[derive(Deserialize)]
pub struct ErrorBody {
    pub description: Option<String>,
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

#[derive(Deserialize)]
pub struct FieldError {
    pub field: Option<String>,
    pub message: Option<String>,
}

/// What an error answer says; its first 200 characters when it is not
/// Freshdesk's error body.
pub fn error_message(body: &str) -> String {
    let Ok(e) = serde_json::from_str::<ErrorBody>(body) else {
        return body.chars().take(200).collect();
    };
    let mut m: Vec<String> = e.description.into_iter().chain(e.message).collect();
    for f in e.errors {
        m.push(format!(
            "{}: {}",
            f.field.as_deref().unwrap_or("?"),
            f.message.as_deref().unwrap_or("?")
        ));
    }
    if m.is_empty() {
        body.chars().take(200).collect()
    } else {
        m.join("; ")
    }
}

/// A ticket as `GET /api/v2/tickets?include=requester,stats` lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct Ticket {
    pub id: u64,
    pub subject: Option<String>,
    pub status: u32,
    pub priority: u32,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub due_by: Option<String>,
    pub fr_due_by: Option<String>,
    pub company_id: Option<u64>,
    pub tags: Vec<String>,
    pub custom_fields: serde_json::Map<String, Value>,
    pub requester: Option<Requester>,
    pub stats: Stats,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Requester {
    pub email: Option<String>,
}

/// `include=stats`.
#[derive(Clone, Debug, Deserialize)]
pub struct Stats {
    pub first_responded_at: Option<String>,
    pub resolved_at: Option<String>,
    pub closed_at: Option<String>,
    pub status_updated_at: Option<String>,
}

/// `GET /api/v2/tickets/{id}/time_entries`.
#[derive(Clone, Debug, Deserialize)]
pub struct TimeEntry {
    pub id: u64,
    pub billable: bool,
    pub note: Option<String>,
    pub time_spent: String,
    pub agent_id: u64,
    pub executed_at: String,
    pub timer_running: bool,
}

/// `GET /api/v2/companies/{id}`.
#[derive(Clone, Debug, Deserialize)]
pub struct Company {
    pub id: u64,
    pub name: String,
}

/// `GET /api/v2/agents`.
#[derive(Clone, Debug, Deserialize)]
pub struct Agent {
    pub id: u64,
    pub contact: AgentContact,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AgentContact {
    pub name: String,
}

/// `GET /api/v2/tickets/{id}/conversations`.
#[derive(Clone, Debug, Deserialize)]
pub struct Conversation {
    pub body_text: String,
    pub private: bool,
}

/// A ticket's company, for the batch's company requests.
#[derive(Deserialize)]
pub struct CompanyOf {
    pub company_id: Option<u64>,
}

/// A ticket's tags (`GET /api/v2/tickets/{id}`), for a note's tag.
#[derive(Deserialize)]
pub struct Tagged {
    pub tags: Vec<String>,
}

/// `POST /api/v2/tickets/{id}/notes`: a private note.
#[derive(Serialize)]
pub struct NewNote {
    pub body: String,
    pub private: bool,
}

impl NewNote {
    /// A private note: its subject in bold, its text, and the marker it is
    /// found again by, each a paragraph of HTML.
    pub fn private(subject: &str, text: &str, marker: &str) -> Self {
        NewNote {
            body: format!(
                "<p><b>{}</b></p><p>{}</p><p>{}</p>",
                html(subject),
                html(text),
                html(marker)
            ),
            private: true,
        }
    }
}

/// `PUT /api/v2/tickets/{id}`: the ticket's whole tag list.
#[derive(Serialize)]
pub struct TagsUpdate {
    pub tags: Vec<String>,
}

/// The answer to a write: the note or the ticket written, by its id.
#[derive(Deserialize)]
pub struct Written {
    // Only its presence is checked: nothing reads it after.
    #[allow(dead_code)]
    pub id: u64,
}

/// Minutes of a `time_spent` of `hh:mm`.
pub fn minutes(time_spent: &str) -> Result<u64, String> {
    let bad = || format!("time_spent `{time_spent}` is not hh:mm");
    let (h, m) = time_spent.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return Err(bad());
    }
    let (h, m): (u64, u64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// The status's name (2 open … 5 closed); a custom status by its number.
pub fn status_name(status: u32) -> String {
    match status {
        2 => "open".into(),
        3 => "pending".into(),
        4 => "resolved".into(),
        5 => "closed".into(),
        n => n.to_string(),
    }
}

/// The priority's name (1 low … 4 urgent).
pub fn priority_name(priority: u32) -> Result<&'static str, String> {
    match priority {
        1 => Ok("low"),
        2 => Ok("medium"),
        3 => Ok("high"),
        4 => Ok("urgent"),
        n => Err(format!("priority {n} is not one of Freshdesk's (1 to 4)")),
    }
}

/// A value of the ticket by its field name: an attribute (`type`,
/// `group_id`…), else a custom field (`cf_…`); text as it is, a number as
/// its digits.
pub fn field_text(ticket: &Value, name: &str) -> Option<String> {
    let v = match ticket.get(name) {
        Some(v) if !v.is_null() => v,
        _ => ticket["custom_fields"].get(name)?,
    };
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A field's value as JSON, for the ticket's `fields`.
pub fn field_value(ticket: &Value, name: &str) -> Value {
    match ticket.get(name) {
        Some(v) if !v.is_null() => v.clone(),
        _ => ticket["custom_fields"]
            .get(name)
            .cloned()
            .unwrap_or(Value::Null),
    }
}

/// Text for a note's HTML body.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', "<br>")
}

pub fn raw_ticket(value: Value) -> Result<RawTicket> {
    let t: Ticket = serde_json::from_value(value.clone()).map_err(|e| {
        ConnectorError::Transient(format!(
            "{SYSTEM}: a ticket is not as Freshdesk documents it ({e})"
        ))
    })?;
    Ok(RawTicket {
        id: t.id.to_string(),
        updated_at: t.updated_at,
        value,
    })
}

impl Mapped<'_, FreshdeskConfig> {
    /// A value read from a [`Place`] of the ticket (a field or its tags).
    fn ticket_place(&self, place: &Place, value: &Value, tags: &[String]) -> Option<String> {
        match place {
            Place::Field(f) => field_text(value, f),
            Place::LabelPrefix(p) => {
                SourceMap::label_value(tags.iter().map(String::as_str), p).map(str::to_owned)
            }
            _ => None,
        }
    }

    pub(super) fn canonical(
        &self,
        raw: &RawTicket,
        entries: &[TimeEntry],
        companies: &BTreeMap<u64, String>,
        agents: &BTreeMap<u64, String>,
    ) -> Converted {
        let id = &raw.id;
        let v = &raw.value;
        let t: Ticket =
            serde_json::from_value(v.clone()).map_err(|e| format!("ticket {id}: {e}"))?;
        // Places Freshdesk does not have are refused, not read as nothing.
        let refuse = |what: &str, place: &Place| {
            Err(format!(
                "ticket {id}: Freshdesk has no {place:?} for the {what}: read it from a ticket field (`type`, `cf_…`), a tag prefix (`label:`){}",
                if what == "kind" {
                    " or the time entry's note (`comment`)"
                } else {
                    ""
                }
            ))
        };
        if let Some(p) = &self.map.kind_from
            && !matches!(p, Place::Field(_) | Place::LabelPrefix(_) | Place::Comment)
        {
            return refuse("kind", p);
        }
        let category_place = self
            .map
            .category_place()
            .unwrap_or_else(|| Place::Field("type".into()));
        if !matches!(category_place, Place::Field(_) | Place::LabelPrefix(_)) {
            return refuse("category", &category_place);
        }
        let organization = match self.customer_field() {
            Some(f) => field_text(v, f)
                .ok_or_else(|| format!("ticket {id}: the customer field `{f}` is empty"))?,
            None => {
                let company = t.company_id.ok_or_else(|| {
                    format!("ticket {id}: no company (set the requester's company in Freshdesk)")
                })?;
                companies
                    .get(&company)
                    .cloned()
                    .ok_or_else(|| format!("ticket {id}: company {company} was not read"))?
            }
        };
        let customer = self.map.customers.get(&organization).ok_or_else(|| {
            format!(
                "ticket {id}: company `{organization}` has no customer key (add it under the source's `customers`)"
            )
        })?;
        let requester = match self.map.fields.get("requester") {
            Some(f) => field_value(v, f),
            None => t
                .requester
                .as_ref()
                .and_then(|r| r.email.clone())
                .map_or(Value::Null, Value::String),
        };
        let priority = priority_name(t.priority).map_err(|e| format!("ticket {id}: {e}"))?;
        let state = status_name(t.status);
        let mut states = vec![json!({"at": t.created_at, "state": "open"})];
        if t.status != 2 {
            let at = t
                .stats
                .status_updated_at
                .clone()
                .unwrap_or_else(|| t.updated_at.clone());
            states.push(json!({"at": at, "state": state}));
        }
        let resolved = match t.status {
            4 | 5 => t
                .stats
                .resolved_at
                .clone()
                .or_else(|| t.stats.closed_at.clone())
                .map_or(Value::Null, Value::String),
            _ => Value::Null,
        };
        let mut work = Vec::new();
        let mut unbilled = 0;
        let mut running = 0;
        let mut sorted: Vec<&TimeEntry> = entries.iter().collect();
        sorted.sort_by(|a, b| (&a.executed_at, a.id).cmp(&(&b.executed_at, b.id)));
        for e in sorted {
            let m = minutes(&e.time_spent)
                .map_err(|err| format!("ticket {id}: time entry {}: {err}", e.id))?;
            if e.timer_running {
                running += 1;
                continue;
            }
            if !e.billable {
                unbilled += m;
                continue;
            }
            if m == 0 {
                continue;
            }
            let note = e.note.as_deref().unwrap_or_default().trim();
            let kind = match &self.map.kind_from {
                None | Some(Place::Comment) => self.map.kind_of(note),
                Some(place) => self
                    .ticket_place(place, v, &t.tags)
                    .and_then(|k| self.map.kind_named(&k))
                    .unwrap_or_else(|| self.map.kind_of(note)),
            };
            let agent = agents
                .get(&e.agent_id)
                .cloned()
                .unwrap_or_else(|| format!("agent {}", e.agent_id));
            let mut entry = json!({
                "id": format!("FD-{id}-{}", e.id),
                "at": e.executed_at,
                "minutes": m,
                "agent": agent,
                "kind": kind,
            });
            if !note.is_empty() {
                entry["note"] = json!(note);
            }
            work.push(entry);
        }
        let category = self
            .ticket_place(&category_place, v, &t.tags)
            .map_or(Value::Null, Value::String);
        let mut own = json!({
            "freshdesk_status": t.status,
            "freshdesk_type": t.kind,
            "freshdesk_due_by": t.due_by,
            "freshdesk_fr_due_by": t.fr_due_by,
            "freshdesk_non_billable_minutes": unbilled,
            "freshdesk_running_timers": running,
        });
        for (name, value) in &t.custom_fields {
            own[name] = value.clone();
        }
        Ok(canonical_ticket(
            id,
            customer,
            json!({
                "requester": requester,
                "title": t.subject,
                "priority": priority,
                "category": category,
                "tags": t.tags,
                "fields": self.extra_fields(own, |f| field_value(v, f)),
                "created_at": t.created_at,
                "first_response_at": t.stats.first_responded_at,
                "resolved_at": resolved,
                "states": states,
                "work": work,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{answer, assert_missing, ok, rename};

    fn fixture(name: &str) -> Value {
        crate::fixture("freshdesk", name)
    }

    #[test]
    fn time_spent_is_hours_and_minutes() {
        assert_eq!(minutes("00:20"), Ok(20));
        assert_eq!(minutes("01:30"), Ok(90));
        assert_eq!(minutes("12:05"), Ok(725));
        for bad in ["1.5", "01:60", ":30", "01:", "ab:cd", "90", "-1:00"] {
            assert!(minutes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_and_priorities_have_their_names() {
        assert_eq!(
            [2, 3, 4, 5, 6].map(status_name),
            ["open", "pending", "resolved", "closed", "6"].map(String::from)
        );
        assert_eq!(priority_name(1), Ok("low"));
        assert_eq!(priority_name(2), Ok("medium"));
        assert_eq!(priority_name(3), Ok("high"));
        assert_eq!(priority_name(4), Ok("urgent"));
        assert!(priority_name(5).is_err());
    }

    #[test]
    fn the_fixtures_read_as_their_types() {
        let tickets: Vec<Ticket> = read(&ok(fixture("tickets.json")), "tickets").unwrap();
        assert_eq!((tickets[0].id, tickets[0].company_id), (101, Some(9001)));
        let entries: Vec<TimeEntry> =
            read(&ok(fixture("time_entries.json")), "time entries").unwrap();
        assert_eq!(entries[0].time_spent, "00:20");
        assert!(!entries[2].billable);
        let agents: Vec<Agent> = read(&ok(fixture("agents.json")), "agents").unwrap();
        assert!(!agents[0].contact.name.is_empty());
    }

    #[test]
    fn a_renamed_time_spent_is_an_error_naming_it_not_zero_minutes() {
        let mut v = fixture("time_entries.json");
        rename(&mut v[1], "time_spent", "time_spent_in_seconds");
        let err = read::<Vec<TimeEntry>>(&ok(v), "a ticket's time entries")
            .err()
            .unwrap()
            .to_string();
        assert_missing(&err, "[1]", "time_spent");
    }

    #[test]
    fn a_ticket_without_stats_or_a_company_without_a_name_is_refused_naming_it() {
        let mut v = fixture("tickets.json");
        v[0].as_object_mut().unwrap().remove("stats");
        let err = read::<Vec<Ticket>>(&ok(v), "the ticket list")
            .err()
            .unwrap()
            .to_string();
        assert_missing(&err, "[0]", "stats");
        let err = read::<Company>(
            &ok(json!({"id": 9001, "title": "Riga Bakery SIA"})),
            "a company",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("missing field `name`"), "{err}");
        let err = read::<Vec<Conversation>>(&ok(json!([{"body": "x", "private": true}])), "notes")
            .err()
            .unwrap()
            .to_string();
        assert_missing(&err, "[0]", "body_text");
    }

    #[test]
    fn an_error_body_is_reported_by_its_parts() {
        let body = json!({"description": "Validation failed",
            "errors": [{"field": "tags", "message": "must be a list", "code": "invalid_value"}]});
        assert_eq!(
            error_message(&body.to_string()),
            "Validation failed; tags: must be a list"
        );
        assert_eq!(
            error_message(r#"{"code": "access_denied", "message": "No access"}"#),
            "No access"
        );
        assert_eq!(error_message("<html>busy</html>"), "<html>busy</html>");
        let err = read::<Written>(&answer(404, json!({"message": "gone"})), "a write")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("gone"), "{err}");
    }

    #[test]
    fn the_writes_serialize_as_freshdesk_documents_them() {
        let note = NewNote::private("SLA <breach>", "a\nb", "[cb:k]");
        assert_eq!(
            serde_json::to_value(note).unwrap(),
            json!({"body": "<p><b>SLA &lt;breach&gt;</b></p><p>a<br>b</p><p>[cb:k]</p>",
                "private": true})
        );
        let tags = TagsUpdate {
            tags: vec!["printer".into(), "sla-breach".into()],
        };
        assert_eq!(
            serde_json::to_value(tags).unwrap(),
            json!({"tags": ["printer", "sla-breach"]})
        );
    }
}
