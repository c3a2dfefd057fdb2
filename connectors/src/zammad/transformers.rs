//! Zammad's payloads as types, and their conversion to the canonical ticket
//! (the offline format's ticket object).
//!
//! Every answer the connector reads is parsed into one of the structs
//! below before anything is taken from it, and every body it writes is
//! serialized from one. A field the connector reads is required unless
//! Zammad itself leaves it out or null; a missing or renamed one is an
//! error that names it (`assets.Ticket.81: missing field `number``), never
//! an empty value that would bill nothing. Zammad adds attributes (custom
//! object attributes, a newer version's fields), so no shape refuses
//! unknown fields.
//!
//! Where the shapes come from (zammad/zammad and zammad-documentation):
//!
//! - the ticket search (`tickets_controller.rb#search`): `{tickets: [id],
//!   tickets_count, assets}`, the assets being what `Ticket#assets` adds
//!   (`app/models/ticket/assets.rb`): tickets, users and organizations by id;
//! - a ticket read with `expand=true`: its attributes and, beside the ids,
//!   the association names (`attributes_with_association_names`);
//! - `ticket_history/{id}`: `{history, assets}` (`HasHistory#history_get(true)`),
//!   each entry as `History.list` writes it (`type`, `attribute`, and
//!   `value_from`/`value_to` left out when both are null);
//! - the priority, state (`expand=true`: `state_type` by name) and activity
//!   type lists: the generic model index;
//! - time accountings, articles, tags and their writes: api/ticket/*.rst.

use crate::Result;
use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::de::{Error as _, IgnoredAny};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use crate::ConnectorError;
use crate::helpdesk::{Converted, Id, Mapped, RawTicket, SourceMap, canonical_ticket, id_text};
use mapping::{Place, WorkKind};

use super::{SYSTEM, ZammadConfig};

crate::documented::documented_shape!(SYSTEM, "as Zammad documents it");

/// Zammad's error body: `{"error", "error_human"}`.
#[derive(Deserialize)]
pub struct ErrorBody {
    pub error: Option<String>,
    pub error_human: Option<String>,
}

/// `GET /api/v1/tickets/search`: the matching ids, in order, and the
/// records they name. `T` is what the reader needs of each ticket, `U` and
/// `O` of each user and organization (a marker search reads neither).
#[derive(Deserialize)]
pub struct Search<T, U = IgnoredAny, O = IgnoredAny> {
    pub tickets: Vec<Id>,
    pub assets: SearchAssets<T, U, O>,
}

/// The search's assets by kind, each by id. A kind with no record is left
/// out (`{}` when nothing matched).
#[derive(Deserialize)]
pub struct SearchAssets<T, U, O> {
    #[serde(rename = "Ticket", default = "BTreeMap::new")]
    pub tickets: BTreeMap<String, T>,
    #[serde(rename = "User", default = "BTreeMap::new")]
    pub users: BTreeMap<String, U>,
    #[serde(rename = "Organization", default = "BTreeMap::new")]
    pub organizations: BTreeMap<String, O>,
}

/// The search the sync reads: the tickets, the requester's address and
/// the organization's name (the mapping's customer key).
pub type ChangedSearch = Search<Ticket, User, Organization>;

impl<T, U, O> Search<T, U, O> {
    /// The listed tickets, in order, with their assets (an id the assets
    /// lack is left out, as Zammad does with a record it cannot show).
    pub fn listed(&self) -> impl Iterator<Item = (&Id, &T)> {
        self.tickets
            .iter()
            .filter_map(|id| Some((id, self.assets.tickets.get(&id.0)?)))
    }
}

/// A user asset (search and history). Zammad keeps a user without a name
/// or an address (a customer known by phone), so each may be absent.
#[derive(Deserialize)]
pub struct User {
    pub email: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
}

#[derive(Deserialize)]
pub struct Organization {
    pub name: String,
}

/// A ticket's attributes: the ones the connector reads, typed, and all of
/// them as Zammad sent them, for the attributes a mapping names (custom
/// object attributes among them).
#[derive(Clone, Debug)]
pub struct Ticket {
    pub known: TicketAttributes,
    pub attributes: Map<String, Value>,
}

impl<'de> Deserialize<'de> for Ticket {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let attributes = Map::deserialize(d)?;
        let known = TicketAttributes::deserialize(Value::Object(attributes.clone()))
            .map_err(D::Error::custom)?;
        Ok(Ticket { known, attributes })
    }
}

impl Ticket {
    /// An attribute as Zammad sent it; null when it has none.
    pub fn attribute(&self, name: &str) -> Value {
        self.attributes.get(name).cloned().unwrap_or(Value::Null)
    }

    /// An attribute as text: text as it is, an id by its digits.
    pub fn attribute_text(&self, name: &str) -> Option<String> {
        match self.attributes.get(name)? {
            Value::String(s) => Some(s.clone()),
            v => id_text(v),
        }
    }
}

/// What the connector reads of a ticket (`Ticket` attributes).
#[derive(Clone, Debug, Deserialize)]
pub struct TicketAttributes {
    pub id: Id,
    /// The number customers see: the ticket's key.
    pub number: String,
    pub title: String,
    pub state_id: Id,
    pub priority_id: Id,
    pub customer_id: Id,
    pub organization_id: Option<Id>,
    pub created_at: String,
    pub updated_at: String,
    pub first_response_at: Option<String>,
    /// The first close.
    pub close_at: Option<String>,
    /// The latest close (Zammad ≥ 6; absent before).
    pub last_close_at: Option<String>,
    /// The accounted time's sum: null until time is accounted; absent
    /// where time accounting is off (then the records are asked anyway).
    #[serde(default, deserialize_with = "present")]
    pub time_unit: Option<Option<IgnoredAny>>,
}

/// A field that may be absent or null, told apart: `Some(None)` is null.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl TicketAttributes {
    /// Whether the ticket has accounted time, so its records are asked.
    pub fn has_time(&self) -> bool {
        !matches!(self.time_unit, Some(None))
    }
}

/// `GET /api/v1/tickets/{id}?expand=true`: the association names beside
/// the ids (a user by login, no organization as null).
#[derive(Deserialize)]
pub struct ExpandedNames {
    pub state: String,
    pub priority: String,
    pub organization: Option<String>,
    pub customer: String,
}

/// A ticket of a search for a marker: its title, and its number (our
/// fakes echo the create body with an id only, so it may be absent).
#[derive(Deserialize)]
pub struct Titled {
    pub title: String,
    pub number: Option<String>,
}

/// A ticket found by its number, for a note.
#[derive(Deserialize)]
pub struct Numbered {
    pub number: String,
}

/// `POST /api/v1/tickets`: the created ticket (see [`Titled`] for the number).
#[derive(Deserialize)]
pub struct Created {
    pub id: Id,
    pub number: Option<String>,
}

/// A listed ticket as the batch carries it ([`RawTicket::value`]): its
/// attributes as sent, and the names its answer gave beside them.
#[derive(Serialize, Deserialize)]
pub struct Listed {
    /// The internal id: what its notes, tags and details are asked with.
    pub id: String,
    pub ticket: Map<String, Value>,
    pub organization: Option<String>,
    pub requester: Option<String>,
    /// Read with `expand=true` only; else from the batch's lists.
    pub state: Option<String>,
    pub priority: Option<String>,
}

impl Listed {
    /// The raw ticket, keyed by its number (the ticket number customers see).
    pub fn raw(self, ticket: &TicketAttributes) -> Result<RawTicket> {
        let value = serde_json::to_value(&self).map_err(|e| {
            ConnectorError::Permanent(format!("{SYSTEM}: ticket {}: {e}", ticket.id))
        })?;
        Ok(RawTicket {
            id: ticket.number.clone(),
            updated_at: ticket.updated_at.clone(),
            value,
        })
    }

    /// A batch's ticket, and its attributes.
    pub fn of(t: &RawTicket) -> Result<(Listed, Ticket), String> {
        let listed: Listed = parse(t.value.clone(), "a listed ticket")?;
        let ticket = parse(Value::Object(listed.ticket.clone()), "a ticket")?;
        Ok((listed, ticket))
    }
}

/// A ticket priority, or an activity type (`time_accounting/types`).
#[derive(Deserialize)]
pub struct Named {
    pub id: Id,
    pub name: String,
}

/// `GET /api/v1/ticket_states?expand=true`.
#[derive(Deserialize)]
pub struct State {
    pub id: Id,
    pub name: String,
    /// `Ticket::StateType` by name (`expand=true`).
    pub state_type: String,
}

/// `GET /api/v1/ticket_history/{id}`.
#[derive(Default, Deserialize)]
pub struct History {
    pub history: Vec<HistoryEntry>,
    pub assets: HistoryAssets,
}

/// The users the history names (`User` left out when it names none).
#[derive(Default, Deserialize)]
pub struct HistoryAssets {
    #[serde(rename = "User", default)]
    pub users: BTreeMap<String, User>,
}

/// One history entry. `History.list` names the kind and the attribute
/// `type` and `attribute` (renamed from its columns); the integration
/// test's fake writes `history_type` and `history_attribute`, which are
/// read first, as before.
#[derive(Deserialize)]
pub struct HistoryEntry {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub history_type: Option<String>,
    /// Absent for an entry of the whole object (`created`).
    pub attribute: Option<String>,
    pub history_attribute: Option<String>,
    /// Both left out when both are null.
    pub value_from: Option<String>,
    pub value_to: Option<String>,
    pub created_at: String,
}

impl HistoryEntry {
    fn attribute(&self) -> Option<&str> {
        self.history_attribute
            .as_deref()
            .or(self.attribute.as_deref())
    }

    fn kind(&self) -> Option<&str> {
        self.history_type.as_deref().or(self.kind.as_deref())
    }
}

/// `GET /api/v1/tickets/{id}/time_accountings`.
#[derive(Deserialize)]
pub struct TimeAccounting {
    pub id: Id,
    /// The article the time was accounted with; none when accounted alone.
    pub ticket_article_id: Option<Id>,
    /// Units of the instance's choosing (a decimal, written as text).
    #[serde(deserialize_with = "units")]
    pub time_unit: Decimal,
    /// The activity type (Zammad ≥ 6.1; absent before).
    pub type_id: Option<Id>,
    pub created_by_id: Id,
    pub created_at: String,
}

/// A decimal written as text (`"15.0"`) or, by older versions, a number.
fn units<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let v = Value::deserialize(d)?;
    let n = match &v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_f64().and_then(|f| Decimal::try_from(f).ok()),
        _ => None,
    };
    n.ok_or_else(|| D::Error::custom(format!("time_unit {v} is not a decimal")))
}

/// `GET /api/v1/ticket_articles/by_ticket/{id}`: an article's text.
#[derive(Deserialize)]
pub struct Article {
    pub id: Id,
    pub body: String,
    pub content_type: String,
}

/// An article searched for a note's marker: its body only.
#[derive(Deserialize)]
pub struct ArticleBody {
    pub body: String,
}

/// `GET /api/v1/tags?object=Ticket&o_id={id}`.
#[derive(Deserialize)]
pub struct Tags {
    pub tags: Vec<String>,
}

/// What a Trigger webhook's body says of its ticket.
#[derive(Deserialize)]
pub struct Webhook {
    pub ticket: WebhookTicket,
}

#[derive(Deserialize)]
pub struct WebhookTicket {
    pub id: Id,
    pub number: Option<String>,
}

/// `POST /api/v1/ticket_articles`: an internal note, which bills nothing
/// (it carries no `time_unit`).
#[derive(Serialize)]
pub struct NewArticle<'a> {
    pub ticket_id: i64,
    #[serde(flatten)]
    pub note: NoteArticle<'a>,
}

/// An internal text note (a note's article, a new ticket's first article).
#[derive(Serialize)]
pub struct NoteArticle<'a> {
    pub subject: &'a str,
    pub body: String,
    pub content_type: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub internal: bool,
}

impl<'a> NoteArticle<'a> {
    pub fn internal(subject: &'a str, body: String) -> Self {
        NoteArticle {
            subject,
            body,
            content_type: "text/plain",
            kind: "note",
            internal: true,
        }
    }
}

/// `POST /api/v1/tags/add`.
#[derive(Serialize)]
pub struct TagAdd<'a> {
    pub item: &'a str,
    pub object: &'static str,
    pub o_id: i64,
}

/// `POST /api/v1/tickets`: the group and customer by name, the tags as a
/// comma-separated text.
#[derive(Serialize)]
pub struct TicketCreate<'a> {
    pub title: String,
    pub group: &'a str,
    pub customer: &'a str,
    pub tags: &'a str,
    pub article: NoteArticle<'a>,
}

/// The ticket's tags, replayed from its history (Zammad records every tag
/// added and removed there), so that no request per ticket is needed.
pub fn tags_from_history(history: &History) -> Vec<String> {
    let mut events: Vec<(&str, &str, &str)> = history
        .history
        .iter()
        .filter(|h| h.attribute() == Some("tag"))
        .filter_map(|h| {
            Some((
                h.created_at.as_str(),
                h.kind()?,
                h.value_to.as_deref().or(h.value_from.as_deref())?,
            ))
        })
        .collect();
    events.sort_by_key(|e| e.0);
    let mut tags: Vec<String> = Vec::new();
    for (_, kind, tag) in events {
        match kind {
            "added" if !tags.iter().any(|t| t == tag) => tags.push(tag.to_owned()),
            "removed" => tags.retain(|t| t != tag),
            _ => {}
        }
    }
    tags
}

/// Plain text of an article body (Zammad keeps HTML for most articles).
pub fn plain_text(body: &str, content_type: &str) -> String {
    if !content_type.contains("html") {
        return body.trim().to_owned();
    }
    let mut out = String::with_capacity(body.len());
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// State types whose tickets are resolved (`Ticket::StateType`).
fn closed_type(state_type: &str) -> bool {
    matches!(state_type, "closed" | "merged" | "removed")
}

/// What one batch's shared answers say.
#[derive(Default)]
pub struct Lookups {
    pub priorities: BTreeMap<Id, String>,
    /// State id → (name, state type).
    pub states: BTreeMap<Id, (String, String)>,
    /// Activity type id → name.
    pub types: BTreeMap<Id, String>,
}

/// What one ticket's own answers say.
#[derive(Default)]
pub struct Details {
    pub history: History,
    pub time: Vec<TimeAccounting>,
    pub articles: Vec<Article>,
}

impl Mapped<'_, ZammadConfig> {
    /// A value read from a [`Place`] of the ticket (its attributes or tags).
    fn ticket_place(&self, place: &Place, ticket: &Ticket, tags: &[String]) -> Option<String> {
        match place {
            Place::Field(f) => ticket.attribute_text(f),
            Place::LabelPrefix(p) => {
                SourceMap::label_value(tags.iter().map(String::as_str), p).map(str::to_owned)
            }
            _ => None,
        }
    }

    /// The canonical ticket of a listed ticket and its details.
    pub(super) fn canonical(&self, t: &RawTicket, d: &Details, l: &Lookups) -> Converted {
        // Jira's places are not Zammad's: refused, not read as nothing.
        for place in [&self.map.kind_from, &self.map.category_from]
            .into_iter()
            .flatten()
        {
            if matches!(place, Place::WorklogProperty { .. } | Place::RequestType) {
                return Err(format!(
                    "ticket {}: Zammad has no {place:?}: read the kind or category from `activity`, a ticket attribute, a tag prefix (`label:`) or the `comment`",
                    t.id
                ));
            }
        }
        let (listed, ticket) = Listed::of(t).map_err(|e| format!("ticket {}: {e}", t.id))?;
        let known = &ticket.known;
        let organization = match self
            .map
            .fields
            .get("customer")
            .or(self.map.fields.get("organization"))
        {
            Some(f) => ticket.attributes.get(f).and_then(Value::as_str),
            None => listed.organization.as_deref(),
        };
        // No organization matches no customer key: reported as the empty one.
        let organization = organization.unwrap_or("");
        let customer = self.map.customers.get(organization).ok_or_else(|| {
            format!(
                "ticket {}: organization `{organization}` has no customer key (add it under the source's `customers`)",
                t.id
            )
        })?;
        // Names by id from the batch's lists; a ticket read with
        // `expand=true` carries them already.
        let (state, state_type) = match l.states.get(&known.state_id) {
            Some((name, kind)) => (Some(name.as_str()), Some(kind.as_str())),
            None => (listed.state.as_deref(), None),
        };
        let priority = listed
            .priority
            .as_ref()
            .or_else(|| l.priorities.get(&known.priority_id));
        // A state neither list nor ticket names: the empty one, as before.
        let state = state.unwrap_or("");
        let created = known.created_at.as_str();
        // The state history, oldest first; the first state is what the
        // first change left, or the current one.
        let mut changes: Vec<(&str, &str, &str)> = d
            .history
            .history
            .iter()
            .filter(|h| h.attribute() == Some("state"))
            .filter_map(|h| {
                Some((
                    h.created_at.as_str(),
                    h.value_from.as_deref().unwrap_or("new"),
                    h.value_to.as_deref()?,
                ))
            })
            .collect();
        changes.sort();
        let first = changes.first().map_or(state, |c| c.1);
        let mut states = vec![json!({"at": created, "state": first})];
        states.extend(
            changes
                .iter()
                .map(|(at, _, to)| json!({"at": at, "state": to})),
        );
        let tags = tags_from_history(&d.history);
        let closed = match state_type {
            Some(kind) => closed_type(kind),
            None => matches!(state, "closed" | "merged"),
        };
        // The latest close (Zammad ≥ 6 keeps it apart from the first).
        let resolved = if closed {
            known.last_close_at.as_ref().or(known.close_at.as_ref())
        } else {
            None
        };
        let users = &d.history.assets.users;
        let article_of = |id: &Id| d.articles.iter().find(|a| a.id == *id);
        let unit = self.map.minutes_per_unit;
        let mut records: Vec<&TimeAccounting> = d.time.iter().collect();
        records.sort_by_key(|r| r.created_at.clone());
        let activity_of = |r: &TimeAccounting| -> Option<&str> {
            l.types.get(r.type_id.as_ref()?).map(String::as_str)
        };
        let mut work = Vec::with_capacity(records.len());
        for r in &records {
            let by = &r.created_by_id;
            let agent = match users.get(&by.0) {
                Some(User {
                    firstname: Some(f),
                    lastname: Some(l),
                    ..
                }) => format!("{f} {l}").trim().to_owned(),
                _ => format!("user {by}"),
            };
            let article = r.ticket_article_id.as_ref().and_then(article_of);
            let note = article.map(|a| plain_text(&a.body, &a.content_type));
            let activity = activity_of(r);
            let kind = match &self.map.kind_from {
                None | Some(Place::Activity) => self.map.kind_of(activity.unwrap_or_default()),
                Some(Place::Comment) => self.map.kind_of(note.as_deref().unwrap_or_default()),
                Some(place) => self
                    .ticket_place(place, &ticket, &tags)
                    .and_then(|k| self.map.kind_named(&k))
                    .unwrap_or(WorkKind::Remote),
            };
            let minutes = (r.time_unit * unit).normalize();
            let mut entry = json!({
                "id": format!("Z-{}-{}", t.id, r.id),
                "at": r.created_at,
                "minutes": serde_json::from_str::<Value>(&minutes.to_string()).unwrap_or(Value::Null),
                "agent": agent,
                "kind": kind,
            });
            if let Some(note) = note {
                entry["note"] = json!(note);
            }
            if let Some(a) = activity {
                entry["activity"] = json!(a);
            }
            work.push(entry);
        }
        let category = match &self.map.category_place() {
            None => ticket.attribute("category"),
            Some(Place::Activity) => records
                .first()
                .and_then(|r| activity_of(r))
                .map_or(Value::Null, |a| json!(a)),
            Some(place) => self
                .ticket_place(place, &ticket, &tags)
                .map_or(Value::Null, |c| json!(c)),
        };
        let requester = match self.map.fields.get("requester") {
            Some(f) => ticket.attribute(f),
            None => json!(listed.requester),
        };
        Ok(canonical_ticket(
            &t.id,
            customer,
            json!({
                "requester": requester,
                "title": known.title,
                "priority": priority,
                "category": category,
                "tags": tags,
                "fields": self.extra_fields(
                    json!({"number": known.number, "zammad_id": listed.id}),
                    |raw| ticket.attribute(raw)
                ),
                "created_at": created,
                "first_response_at": known.first_response_at,
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
    use crate::testing::{assert_missing, rename};

    fn fixture(name: &str) -> Value {
        crate::fixture("zammad", name)
    }

    #[test]
    fn the_fixtures_read_as_their_types() {
        let search: ChangedSearch = parse(fixture("search.json"), "search").unwrap();
        let (id, t) = search.listed().next().unwrap();
        assert_eq!((id.0.as_str(), t.known.number.as_str()), ("81", "10081"));
        assert!(t.known.has_time());
        assert_eq!(t.attribute("category"), json!("network"), "kept as sent");
        assert_eq!(
            search.assets.organizations["3"].name,
            "Awesome Customer Inc."
        );
        let time: Vec<TimeAccounting> = parse(fixture("time_accountings.json"), "time").unwrap();
        assert_eq!(time[0].time_unit, Decimal::new(150, 1));
        assert_eq!(time[1].ticket_article_id, None);
        let history: History = parse(fixture("history_tags.json"), "history").unwrap();
        assert_eq!(tags_from_history(&history), ["vip"]);
        let states: Vec<State> = parse(fixture("ticket_states.json"), "states").unwrap();
        assert_eq!(states[3].state_type, "closed");
    }

    #[test]
    fn a_ticket_without_its_number_is_refused_naming_the_field() {
        let mut v = fixture("search.json");
        v["assets"]["Ticket"]["81"]
            .as_object_mut()
            .unwrap()
            .remove("number");
        let err = parse::<ChangedSearch>(v, "the ticket search")
            .err()
            .unwrap();
        assert_missing(&err, "assets.Ticket.81", "number");
    }

    #[test]
    fn a_renamed_time_unit_is_an_error_not_zero_minutes() {
        let mut v = fixture("time_accountings.json");
        rename(&mut v[0], "time_unit", "time_units");
        let err = parse::<Vec<TimeAccounting>>(v, "the time accountings")
            .err()
            .unwrap();
        assert_missing(&err, "[0]", "time_unit");
        let mut v = fixture("time_accountings.json");
        v[0]["time_unit"] = json!("a quarter");
        let err = parse::<Vec<TimeAccounting>>(v, "the time accountings")
            .err()
            .unwrap();
        assert!(err.contains("a quarter"), "{err}");
    }

    #[test]
    fn an_organization_without_a_name_and_a_state_without_its_type_are_refused() {
        let mut v = fixture("search.json");
        v["assets"]["Organization"]["3"]["display_name"] = json!("Awesome");
        v["assets"]["Organization"]["3"]
            .as_object_mut()
            .unwrap()
            .remove("name");
        let err = parse::<ChangedSearch>(v, "search").err().unwrap();
        assert_missing(&err, "assets.Organization.3", "name");
        let mut v = fixture("ticket_states.json");
        v[1].as_object_mut().unwrap().remove("state_type");
        let err = parse::<Vec<State>>(v, "states").err().unwrap();
        assert!(err.contains("missing field `state_type`"), "{err}");
    }

    #[test]
    fn a_history_entry_without_its_time_is_refused() {
        let mut v = fixture("history_tags.json");
        v["history"][2]
            .as_object_mut()
            .unwrap()
            .remove("created_at");
        let err = parse::<History>(v, "history").err().unwrap();
        assert_missing(&err, "history[2]", "created_at");
    }

    #[test]
    fn time_unit_absent_is_asked_null_is_not() {
        let mut v = fixture("search.json")["assets"]["Ticket"]["81"].clone();
        let t: Ticket = serde_json::from_value(v.clone()).unwrap();
        assert!(t.known.has_time(), "a sum");
        v["time_unit"] = Value::Null;
        let t: Ticket = serde_json::from_value(v.clone()).unwrap();
        assert!(!t.known.has_time(), "null: nothing accounted");
        v.as_object_mut().unwrap().remove("time_unit");
        let t: Ticket = serde_json::from_value(v).unwrap();
        assert!(t.known.has_time(), "absent: asked");
    }

    #[test]
    fn the_writes_serialize_as_zammad_documents_them() {
        let body = serde_json::to_value(NewArticle {
            ticket_id: 81,
            note: NoteArticle::internal("SLA", "text".into()),
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"ticket_id": 81, "subject": "SLA", "body": "text",
                "content_type": "text/plain", "type": "note", "internal": true})
        );
        let tag = serde_json::to_value(TagAdd {
            item: "sla-breach",
            object: "Ticket",
            o_id: 81,
        })
        .unwrap();
        assert_eq!(
            tag,
            json!({"item": "sla-breach", "object": "Ticket", "o_id": 81})
        );
    }
}
