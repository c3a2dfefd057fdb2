//! Zammad: tickets by incremental search on `updated_at`, paged until an
//! empty page, keyed by the ticket number customers see. The search's
//! assets name the organisation and the customer; priority and state names
//! come from `/api/v1/ticket_priorities` and `/api/v1/ticket_states`, asked
//! once per batch (the assets hold neither). Per ticket: the history (state
//! changes, on which the SLA clock pauses, and tags), and, for a ticket with
//! accounted time (its `time_unit`), its time records (activity type, the
//! article they were logged with) and its articles, whose text is the work
//! entry's note. Internal notes (never with `time_unit`, which would bill
//! the note) and tags are found again by number; the Trigger webhook is
//! signed `X-Hub-Signature: sha1=…` and de-duplicated on `X-Zammad-Delivery`.

use std::collections::BTreeMap;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounting::{encode, status_error};
use crate::helpdesk::{
    Announcement, Converted, FoundNote, HelpdeskApi, Mapped, NoteLookup, NotePart, Page, RawTicket,
    SourceMap, WebhookRefusal, header, id_text, note_marker, ticket_title, verify_hub_signature,
};
use crate::{
    ConnectorError, HttpMethod, HttpRequest, HttpResponse, NewTicket, Note, Secret, TicketSnapshot,
};
use mapping::{Place, WorkKind};

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZammadConfig {
    /// The Zammad address, e.g. `https://desk.example.com`.
    pub url: String,
    /// An API token (`Authorization: Token token=…`), or an OAuth2 access
    /// token with `oauth = true` (`Authorization: Bearer …`).
    pub token: Secret,
    #[serde(default)]
    pub oauth: bool,
    #[serde(default = "default_per_page")]
    pub per_page: u32,
    #[serde(default = "default_rate")]
    pub requests_per_second: u32,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The group a ticket the bridge opens (a renewal suggestion) goes to.
    #[serde(default = "default_group")]
    pub renewal_group: String,
}

fn default_group() -> String {
    "Users".into()
}

fn default_per_page() -> u32 {
    100
}
fn default_rate() -> u32 {
    10
}
fn default_timeout_ms() -> u64 {
    30_000
}

const SYSTEM: &str = "zammad";

fn check(r: &HttpResponse) -> Result<Value, ConnectorError> {
    if !(200..300).contains(&r.status) {
        let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
        let m = v["error_human"]
            .as_str()
            .or(v["error"].as_str())
            .map_or_else(|| r.body.chars().take(200).collect(), str::to_owned);
        // A refused token will not get better by itself: no retry storm.
        if r.status == 401 || r.status == 403 {
            return Err(ConnectorError::Permanent(format!(
                "{SYSTEM}: HTTP {}: {m} (check the source's token and its permissions)",
                r.status
            )));
        }
        return Err(status_error(SYSTEM, r, &m));
    }
    serde_json::from_str(&r.body).map_err(|e| {
        ConnectorError::Transient(format!(
            "{SYSTEM}: HTTP {}: the answer is not JSON ({e})",
            r.status
        ))
    })
}

/// The ticket's tags, replayed from its history (Zammad records every tag
/// added and removed there), so that no request per ticket is needed.
fn tags_from_history(history: &Value) -> Vec<String> {
    let mut events: Vec<(&str, &str, &str)> = history["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["history_attribute"].as_str().or(h["attribute"].as_str()) == Some("tag"))
        .filter_map(|h| {
            Some((
                h["created_at"].as_str().unwrap_or_default(),
                h["history_type"].as_str().or(h["type"].as_str())?,
                h["value_to"].as_str().or(h["value_from"].as_str())?,
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

/// Whether a batch reads its time per ticket rather than from the monthly
/// reports: whichever takes fewer requests (a few tickets that span many
/// Plain text of an article body (Zammad keeps HTML for most articles).
fn plain_text(body: &str, content_type: &str) -> String {
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

/// Whether a ticket has accounted time: Zammad keeps the sum on the ticket
/// (`time_unit`, null until time is logged), so a ticket without any is
/// not asked for its records. A Zammad that does not send the attribute
/// is asked.
fn has_time(t: &RawTicket) -> bool {
    t.value["ticket"]
        .get("time_unit")
        .is_none_or(|u| !u.is_null())
}

/// State types whose tickets are resolved (`Ticket::StateType`).
fn closed_type(state_type: &str) -> bool {
    matches!(state_type, "closed" | "merged" | "removed")
}

/// One request of a batch's details, in the order they are asked.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ask {
    /// `GET /api/v1/ticket_priorities`: id → name, once per batch.
    Priorities,
    /// `GET /api/v1/ticket_states?expand=true`: id → name and state type.
    States,
    /// `GET /api/v1/time_accounting/types`: id → activity name.
    Types,
    /// `GET /api/v1/ticket_history/{id}`: state changes, tags, users.
    History(usize),
    /// `GET /api/v1/tickets/{id}/time_accountings`: the time records.
    Time(usize),
    /// `GET /api/v1/ticket_articles/by_ticket/{id}`: the records' text.
    Articles(usize),
}

fn plan(tickets: &[RawTicket]) -> Vec<Ask> {
    let mut asks = vec![Ask::Priorities, Ask::States];
    if tickets.iter().any(has_time) {
        asks.push(Ask::Types);
    }
    for (i, t) in tickets.iter().enumerate() {
        asks.push(Ask::History(i));
        if has_time(t) {
            asks.push(Ask::Time(i));
            asks.push(Ask::Articles(i));
        }
    }
    asks
}

/// What one batch's shared answers say.
#[derive(Default)]
struct Lookups {
    priorities: BTreeMap<String, Value>,
    /// State id → (name, state type).
    states: BTreeMap<String, (Value, Option<String>)>,
    types: BTreeMap<String, String>,
}

/// What one ticket's own answers say.
#[derive(Default, Clone)]
struct Details {
    history: Value,
    time: Vec<Value>,
    articles: Value,
}

/// The ticket's internal id: what its notes, tags and details are asked with.
fn internal_id(t: &RawTicket) -> String {
    id_text(&t.value["id"]).unwrap_or_else(|| t.id.clone())
}

/// The raw ticket of a ticket's attributes: keyed by its number (the
/// ticket number customers see; the internal id where there is none).
fn raw_ticket(t: &Value, names: Value) -> Option<RawTicket> {
    let id = id_text(&t["id"])?;
    let key = id_text(&t["number"]).unwrap_or_else(|| id.clone());
    let mut value = names;
    value["ticket"] = t.clone();
    value["id"] = json!(id);
    value["created_at"] = t["created_at"].clone();
    Some(RawTicket {
        id: key,
        updated_at: t["updated_at"].as_str().unwrap_or_default().to_owned(),
        value,
    })
}

impl Mapped<'_, ZammadConfig> {
    fn get(&self, path: String) -> HttpRequest {
        HttpRequest {
            method: HttpMethod::Get,
            url: format!("{}{path}", self.url.trim_end_matches('/')),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
            timeout: Duration::from_millis(self.timeout_ms),
        }
    }

    fn post(&self, path: &str, body: &Value) -> Result<HttpRequest, ConnectorError> {
        let mut r = self.get(path.to_owned());
        r.method = HttpMethod::Post;
        r.headers
            .push(("content-type".into(), "application/json".into()));
        r.body = serde_json::to_vec(body).map_err(|e| ConnectorError::Permanent(e.to_string()))?;
        Ok(r)
    }

    /// A value read from a [`Place`] of the ticket (its attributes or tags).
    fn ticket_place(&self, place: &Place, ticket: &Value, tags: &[String]) -> Option<String> {
        match place {
            Place::Field(f) => ticket[f.as_str()]
                .as_str()
                .map(str::to_owned)
                .or_else(|| id_text(&ticket[f.as_str()])),
            Place::LabelPrefix(p) => {
                SourceMap::label_value(tags.iter().map(String::as_str), p).map(str::to_owned)
            }
            _ => None,
        }
    }

    fn canonical(&self, t: &RawTicket, d: &Details, l: &Lookups) -> Converted {
        let v = &t.value;
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
        let ticket = &v["ticket"];
        let history = &d.history;
        let organization = match self
            .map
            .fields
            .get("customer")
            .or(self.map.fields.get("organization"))
        {
            Some(f) => ticket[f.as_str()].as_str().unwrap_or_default(),
            None => v["organization"].as_str().unwrap_or_default(),
        };
        let customer = self.map.customers.get(organization).ok_or_else(|| {
            format!(
                "ticket {}: organization `{organization}` has no customer key (add it under the source's `customers`)",
                t.id
            )
        })?;
        // Names by id from the batch's lists; a ticket read with
        // `expand=true` carries them already.
        let state_id = id_text(&ticket["state_id"]).unwrap_or_default();
        let (state_name, state_type) = match l.states.get(&state_id) {
            Some((name, kind)) => (name.clone(), kind.clone()),
            None => (v["state"].clone(), None),
        };
        let priority = match v["priority"].as_str() {
            Some(p) => json!(p),
            None => id_text(&ticket["priority_id"])
                .and_then(|id| l.priorities.get(&id).cloned())
                .unwrap_or(Value::Null),
        };
        let state = state_name.as_str().unwrap_or_default();
        let created = ticket["created_at"].as_str().unwrap_or_default();
        // The state history, oldest first; the first state is what the
        // first change left, or the current one.
        let mut changes: Vec<(&str, &str, &str)> = history["history"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| {
                h["history_attribute"].as_str().or(h["attribute"].as_str()) == Some("state")
            })
            .filter_map(|h| {
                Some((
                    h["created_at"].as_str()?,
                    h["value_from"].as_str().unwrap_or("new"),
                    h["value_to"].as_str()?,
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
        let tags = tags_from_history(history);
        let closed = match &state_type {
            Some(kind) => closed_type(kind),
            None => matches!(state, "closed" | "merged"),
        };
        // The latest close (Zammad ≥ 6 keeps it apart from the first).
        let resolved = if closed {
            match &ticket["last_close_at"] {
                Value::String(s) => json!(s),
                _ => ticket["close_at"].clone(),
            }
        } else {
            Value::Null
        };
        let users = &history["assets"]["User"];
        let article_of = |id: &Value| -> Option<&Value> {
            let id = id_text(id)?;
            d.articles
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| id_text(&a["id"]).as_deref() == Some(id.as_str()))
        };
        let unit = self.map.minutes_per_unit;
        let mut records: Vec<&Value> = d.time.iter().collect();
        records.sort_by_key(|r| r["created_at"].as_str().unwrap_or_default().to_owned());
        let activity_of = |r: &Value| -> Option<&str> {
            l.types.get(&id_text(&r["type_id"])?).map(String::as_str)
        };
        let mut work = Vec::with_capacity(records.len());
        for r in &records {
            let units: Decimal = r["time_unit"]
                .as_str()
                .and_then(|u| u.parse().ok())
                .or_else(|| {
                    r["time_unit"]
                        .as_f64()
                        .and_then(|f| Decimal::try_from(f).ok())
                })
                .ok_or_else(|| {
                    format!("ticket {}: time record {} has no time_unit", t.id, r["id"])
                })?;
            let record = id_text(&r["id"])
                .ok_or_else(|| format!("ticket {}: a time record without an id", t.id))?;
            let by = id_text(&r["created_by_id"]).unwrap_or_default();
            let user = &users[&by];
            let agent = match (user["firstname"].as_str(), user["lastname"].as_str()) {
                (Some(f), Some(l)) => format!("{f} {l}").trim().to_owned(),
                _ => format!("user {by}"),
            };
            let article = article_of(&r["ticket_article_id"]);
            let note = article.map(|a| {
                plain_text(
                    a["body"].as_str().unwrap_or_default(),
                    a["content_type"].as_str().unwrap_or_default(),
                )
            });
            let activity = activity_of(r);
            let kind = match &self.map.kind_from {
                None | Some(Place::Activity) => self.map.kind_of(activity.unwrap_or_default()),
                Some(Place::Comment) => self.map.kind_of(note.as_deref().unwrap_or_default()),
                Some(place) => self
                    .ticket_place(place, ticket, &tags)
                    .and_then(|k| self.map.kind_named(&k))
                    .unwrap_or(WorkKind::Remote),
            };
            let minutes = (units * unit).normalize();
            let mut entry = json!({
                "id": format!("Z-{}-{record}", t.id),
                "at": r["created_at"],
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
            None => ticket["category"].clone(),
            Some(Place::Activity) => records
                .first()
                .and_then(|r| activity_of(r))
                .map_or(Value::Null, |a| json!(a)),
            Some(place) => self
                .ticket_place(place, ticket, &tags)
                .map_or(Value::Null, |c| json!(c)),
        };
        let requester = match self.map.fields.get("requester") {
            Some(f) => ticket[f.as_str()].clone(),
            None => v["requester"].clone(),
        };
        let snapshot = json!({
            "id": t.id,
            "customer": customer,
            "requester": requester,
            "title": ticket["title"],
            "priority": priority,
            "category": category,
            "tags": tags,
            "fields": self.extra_fields(
                json!({"number": ticket["number"], "zammad_id": v["id"]}),
                |raw| ticket[raw].clone()
            ),
            "created_at": created,
            "first_response_at": ticket["first_response_at"],
            "resolved_at": resolved,
            "states": states,
            "work": work,
        });
        Ok(TicketSnapshot {
            id: t.id.clone(),
            customer: customer.clone(),
            json: snapshot.to_string(),
        })
    }
}

impl HelpdeskApi for Mapped<'_, ZammadConfig> {
    /// Before tickets were keyed by their number, they were keyed by
    /// Zammad's internal id and their snapshot kept the number in
    /// `fields.number` (and no `fields.zammad_id`).
    fn legacy_key(
        &self,
        stored_id: &str,
        snapshot: &serde_json::Value,
    ) -> Option<(String, serde_json::Value)> {
        let fields = snapshot.get("fields")?;
        if fields.get("zammad_id").is_some() {
            return None;
        }
        let number = id_text(fields.get("number")?)?;
        if number == stored_id {
            return None;
        }
        let mut current = snapshot.clone();
        current["id"] = serde_json::Value::String(number.clone());
        current["fields"]["zammad_id"] = serde_json::Value::String(stored_id.to_owned());
        Some((number, current))
    }

    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn authorize(&self, request: &mut HttpRequest, _token: Option<&str>) {
        let value = if self.oauth {
            format!("Bearer {}", self.token.expose())
        } else {
            format!("Token token={}", self.token.expose())
        };
        request.headers.push(("authorization".into(), value));
    }

    fn changed(
        &self,
        cursor: Option<&str>,
        page: Option<&str>,
    ) -> Result<HttpRequest, ConnectorError> {
        let query = match cursor {
            Some(c) => format!("updated_at:[\"{c}\" TO *]"),
            None => "updated_at:[* TO *]".to_owned(),
        };
        Ok(self.get(format!(
            "/api/v1/tickets/search?query={}&sort_by=updated_at&order_by=asc&per_page={}&page={}",
            encode(&query),
            self.per_page,
            page.unwrap_or("1")
        )))
    }

    fn read_changed(&self, page: Option<&str>, r: &HttpResponse) -> Result<Page, ConnectorError> {
        let v = check(r)?;
        // The search's assets hold what `Ticket#assets` adds: the tickets,
        // their users and those users' organizations
        // (zammad/zammad app/models/ticket/assets.rb). Priority and state
        // names come from the batch's lists (`details`).
        let assets = &v["assets"];
        let name = |kind: &str, id: &Value, field: &str| -> Value {
            id_text(id).map_or(Value::Null, |id| assets[kind][&id][field].clone())
        };
        let mut tickets = Vec::new();
        for id in v["tickets"].as_array().into_iter().flatten() {
            let Some(id) = id_text(id) else { continue };
            let t = &assets["Ticket"][&id];
            if t.is_null() {
                continue;
            }
            let names = json!({
                "organization": name("Organization", &t["organization_id"], "name"),
                "requester": name("User", &t["customer_id"], "email"),
            });
            tickets.extend(raw_ticket(t, names));
        }
        // Zammad gives no total: the sweep ends at the first empty page.
        let next = (!tickets.is_empty() || v["tickets"].as_array().is_some_and(|a| !a.is_empty()))
            .then(|| (page.and_then(|p| p.parse::<u32>().ok()).unwrap_or(1) + 1).to_string());
        Ok(Page { tickets, next })
    }

    fn ticket(&self, id: &str) -> Result<HttpRequest, ConnectorError> {
        Ok(self.get(format!("/api/v1/tickets/{}?expand=true", encode(id))))
    }

    fn read_ticket(&self, r: &HttpResponse) -> Result<RawTicket, ConnectorError> {
        let t = check(r)?;
        // `expand=true`: the association names next to the ids
        // (`attributes_with_association_names`; a user by login).
        let names = json!({
            "state": t["state"],
            "priority": t["priority"],
            "organization": t["organization"],
            "requester": t["customer"],
        });
        raw_ticket(&t, names)
            .ok_or_else(|| ConnectorError::Transient("zammad: a ticket without an id".into()))
    }

    fn details(&self, tickets: &[RawTicket]) -> Result<Vec<HttpRequest>, ConnectorError> {
        Ok(plan(tickets)
            .into_iter()
            .map(|ask| match ask {
                Ask::Priorities => self.get("/api/v1/ticket_priorities".into()),
                Ask::States => self.get("/api/v1/ticket_states?expand=true".into()),
                Ask::Types => self.get("/api/v1/time_accounting/types".into()),
                Ask::History(i) => self.get(format!(
                    "/api/v1/ticket_history/{}",
                    encode(&internal_id(&tickets[i]))
                )),
                Ask::Time(i) => self.get(format!(
                    "/api/v1/tickets/{}/time_accountings",
                    encode(&internal_id(&tickets[i]))
                )),
                Ask::Articles(i) => self.get(format!(
                    "/api/v1/ticket_articles/by_ticket/{}",
                    encode(&internal_id(&tickets[i]))
                )),
            })
            .collect())
    }

    fn convert(
        &self,
        tickets: &[RawTicket],
        details: &[HttpResponse],
    ) -> Result<Vec<Converted>, ConnectorError> {
        let asks = plan(tickets);
        if asks.len() != details.len() {
            return Err(ConnectorError::Transient(format!(
                "{SYSTEM}: {} answers to {} requests",
                details.len(),
                asks.len()
            )));
        }
        let mut lookups = Lookups::default();
        let mut per = vec![Details::default(); tickets.len()];
        for (ask, answer) in asks.into_iter().zip(details) {
            let v = check(answer)?;
            let list = || v.as_array().into_iter().flatten();
            match ask {
                Ask::Priorities => {
                    for p in list() {
                        if let Some(id) = id_text(&p["id"]) {
                            lookups.priorities.insert(id, p["name"].clone());
                        }
                    }
                }
                Ask::States => {
                    for s in list() {
                        if let Some(id) = id_text(&s["id"]) {
                            let kind = s["state_type"].as_str().map(str::to_owned);
                            lookups.states.insert(id, (s["name"].clone(), kind));
                        }
                    }
                }
                Ask::Types => {
                    for t in list() {
                        if let (Some(id), Some(name)) = (id_text(&t["id"]), t["name"].as_str()) {
                            lookups.types.insert(id, name.to_owned());
                        }
                    }
                }
                Ask::History(i) => per[i].history = v,
                Ask::Time(i) => per[i].time = list().cloned().collect(),
                Ask::Articles(i) => per[i].articles = v,
            }
        }
        Ok(tickets
            .iter()
            .zip(&per)
            .map(|(t, d)| self.canonical(t, d, &lookups))
            .collect())
    }

    fn find_note(&self, note: &Note) -> Result<Vec<HttpRequest>, ConnectorError> {
        // The note names the ticket by its number; its articles and tags
        // are asked by the internal id, which the search gives.
        let query = format!("number:\"{}\"", note.ticket.replace('"', ""));
        Ok(vec![self.get(format!(
            "/api/v1/tickets/search?query={}&limit=10",
            encode(&query)
        ))])
    }

    fn read_found_note(
        &self,
        key: &str,
        note: &Note,
        answers: &[HttpResponse],
    ) -> Result<NoteLookup, ConnectorError> {
        let search = answers
            .first()
            .ok_or_else(|| ConnectorError::Transient(format!("{SYSTEM}: no answer")))?;
        let v = check(search)?;
        let id = v["tickets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(id_text)
            .find(|id| {
                id_text(&v["assets"]["Ticket"][id]["number"]).as_deref()
                    == Some(note.ticket.as_str())
            })
            .ok_or_else(|| {
                ConnectorError::Transient(format!(
                    "{SYSTEM}: no ticket numbered `{}` is found (yet)",
                    note.ticket
                ))
            })?;
        let [_, articles, tags] = answers else {
            return Ok(NoteLookup::More(vec![
                self.get(format!("/api/v1/ticket_articles/by_ticket/{}", encode(&id))),
                self.get(format!("/api/v1/tags?object=Ticket&o_id={}", encode(&id))),
            ]));
        };
        let marker = note_marker(key);
        let comment = check(articles)?
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["body"].as_str().is_some_and(|b| b.contains(&marker)));
        let tag = check(tags)?["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t.as_str() == Some(note.tag.as_str()));
        Ok(NoteLookup::Found(FoundNote {
            comment,
            tag,
            context: json!({"id": id}),
        }))
    }

    fn add_note(
        &self,
        key: &str,
        note: &Note,
        found: &FoundNote,
    ) -> Result<Vec<(NotePart, HttpRequest)>, ConnectorError> {
        let ticket: i64 = id_text(&found.context["id"])
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| {
                ConnectorError::Permanent(format!(
                    "zammad: ticket `{}` has no internal id",
                    note.ticket
                ))
            })?;
        let mut out = Vec::new();
        if !found.comment {
            out.push((
                NotePart::Comment,
                self.post(
                    "/api/v1/ticket_articles",
                    &json!({
                        "ticket_id": ticket,
                        "subject": note.subject(),
                        "body": format!("{}\n\n{}", note.text, note_marker(key)),
                        "content_type": "text/plain",
                        "type": "note",
                        "internal": true,
                    }),
                )?,
            ));
        }
        if !found.tag {
            out.push((
                NotePart::Tag,
                self.post(
                    "/api/v1/tags/add",
                    &json!({"item": note.tag, "object": "Ticket", "o_id": ticket}),
                )?,
            ));
        }
        Ok(out)
    }

    fn read_added(&self, r: &HttpResponse) -> Result<(), ConnectorError> {
        check(r).map(|_| ())
    }

    fn find_ticket(&self, key: &str, _ticket: &NewTicket) -> Result<HttpRequest, ConnectorError> {
        // The marker as a phrase; the answer is checked for it exactly.
        Ok(self.get(format!(
            "/api/v1/tickets/search?query={}&limit=50",
            encode(&format!("\"{}\"", note_marker(key)))
        )))
    }

    fn read_found_ticket(
        &self,
        key: &str,
        r: &HttpResponse,
    ) -> Result<Option<String>, ConnectorError> {
        let marker = note_marker(key);
        let v = check(r)?;
        Ok(v["tickets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(id_text)
            .find(|id| {
                v["assets"]["Ticket"][id]["title"]
                    .as_str()
                    .is_some_and(|t| t.contains(&marker))
            })
            .map(|id| id_text(&v["assets"]["Ticket"][&id]["number"]).unwrap_or(id)))
    }

    fn create_ticket(&self, key: &str, ticket: &NewTicket) -> Result<HttpRequest, ConnectorError> {
        let customer = ticket.requester.as_deref().ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "zammad: no contact of `{}` is known (none of its tickets names a requester): a ticket needs its customer",
                ticket.customer
            ))
        })?;
        self.post(
            "/api/v1/tickets",
            &json!({
                "title": ticket_title(key, ticket),
                "group": self.renewal_group,
                "customer": customer,
                "tags": ticket.tag,
                "article": {
                    "subject": ticket.title,
                    "body": format!("{}\n\n{}", ticket.text, note_marker(key)),
                    "content_type": "text/plain",
                    "type": "note",
                    "internal": true,
                },
            }),
        )
    }

    fn read_created_ticket(&self, r: &HttpResponse) -> Result<String, ConnectorError> {
        // The number customers see, as every ticket of this source is keyed.
        let t = check(r)?;
        id_text(&t["number"])
            .or_else(|| id_text(&t["id"]))
            .ok_or_else(|| ConnectorError::Transient(format!("{SYSTEM}: a ticket without an id")))
    }

    fn webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        secret: &str,
    ) -> Result<Announcement, WebhookRefusal> {
        verify_hub_signature::<hmac::Hmac<sha1::Sha1>>(headers, body, secret, "sha1")?;
        let delivery = header(headers, "x-zammad-delivery")
            .ok_or_else(|| WebhookRefusal::Malformed("no X-Zammad-Delivery header".into()))?
            .to_owned();
        let v: Value =
            serde_json::from_slice(body).map_err(|e| WebhookRefusal::Malformed(e.to_string()))?;
        let id = id_text(&v["ticket"]["id"])
            .ok_or_else(|| WebhookRefusal::Malformed("no ticket.id in the body".into()))?;
        // Read again by its id; known (and deleted, if it is gone) by its number.
        let keys = id_text(&v["ticket"]["number"])
            .map(|number| BTreeMap::from([(id.clone(), number)]))
            .unwrap_or_default();
        Ok(Announcement {
            delivery,
            tickets: vec![id],
            deleted: Vec::new(),
            keys,
        })
    }
}

impl crate::helpdesk::HelpdeskConfig for ZammadConfig {
    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn api<'a>(
        &'a self,
        map: &'a crate::helpdesk::SourceMap,
    ) -> Box<dyn crate::helpdesk::HelpdeskApi + 'a> {
        Box::new(crate::helpdesk::Mapped { config: self, map })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpdesk::SourceMap;
    use crate::testing::ok;
    use hmac::{KeyInit, Mac};
    use std::collections::BTreeMap;

    fn map() -> SourceMap {
        SourceMap {
            customers: BTreeMap::from([("Awesome Customer Inc.".to_owned(), "awesome".to_owned())]),
            kinds: BTreeMap::from([("On site".to_owned(), mapping::WorkKind::Onsite)]),
            fields: BTreeMap::new(),
            ..SourceMap::default()
        }
    }

    fn fixture(name: &str) -> HttpResponse {
        HttpResponse {
            status: 200,
            retry_after: None,
            body: std::fs::read_to_string(format!(
                "{}/../tests/fixtures/zammad/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        }
    }

    fn config() -> ZammadConfig {
        serde_json::from_value(json!({
            "url": "https://desk.example.com/",
            "token": "t0k",
        }))
        .unwrap()
    }

    /// The answers to a batch's details, in the order asked. Shapes:
    /// `ticket_priorities` and `ticket_states` are Zammad's generic model
    /// index (`ApplicationController::RendersModels#model_index_render`;
    /// `expand=true` adds `state_type` by name through
    /// `attributes_with_association_names`); history, time accountings and
    /// articles as in the REST docs (zammad-documentation api/ticket/*.rst).
    fn answers() -> Vec<HttpResponse> {
        [
            "ticket_priorities.json",
            "ticket_states.json",
            "time_accounting_types.json",
            "history_tags.json",
            "time_accountings.json",
            "articles.json",
        ]
        .map(fixture)
        .to_vec()
    }

    #[test]
    fn a_ticket_stored_under_its_internal_id_is_moved_to_its_number_once() {
        let (config, map) = (config(), map());
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let old =
            serde_json::json!({"id": "81", "customer": "acme", "fields": {"number": "10081"}});
        let (key, current) = c.legacy_key("81", &old).unwrap();
        assert_eq!(key, "10081");
        assert_eq!(current["id"], "10081");
        assert_eq!(current["fields"]["zammad_id"], "81");
        assert_eq!(
            c.legacy_key("10081", &current),
            None,
            "current snapshots stay"
        );
    }

    #[test]
    fn a_searched_ticket_is_keyed_by_number_with_names_from_the_lists_and_its_articles_text() {
        let (config, mut map) = (config(), map());
        map.minutes_per_unit = Decimal::from(60);
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let search = fixture("search.json");
        let v: Value = serde_json::from_str(&search.body).unwrap();
        assert!(
            v["assets"].get("TicketPriority").is_none() && v["assets"].get("TicketState").is_none(),
            "Zammad's search assets hold tickets, users and organizations only"
        );
        let page = c.read_changed(None, &search).unwrap();
        assert_eq!(page.next.as_deref(), Some("2"));
        assert_eq!(page.tickets[0].id, "10081", "the number customers see");
        let details = c.details(&page.tickets).unwrap();
        let paths: Vec<&str> = details
            .iter()
            .map(|r| r.url.trim_start_matches("https://desk.example.com"))
            .collect();
        assert_eq!(
            paths,
            [
                "/api/v1/ticket_priorities",
                "/api/v1/ticket_states?expand=true",
                "/api/v1/time_accounting/types",
                "/api/v1/ticket_history/81",
                "/api/v1/tickets/81/time_accountings",
                "/api/v1/ticket_articles/by_ticket/81",
            ]
        );
        let converted = c.convert(&page.tickets, &answers()).unwrap();
        let snapshot = converted[0].as_ref().unwrap();
        let v: Value = serde_json::from_str(&snapshot.json).unwrap();
        assert_eq!((snapshot.id.as_str(), &v["id"]), ("10081", &json!("10081")));
        assert_eq!(v["fields"]["zammad_id"], "81");
        assert_eq!(snapshot.customer, "awesome");
        assert_eq!(v["priority"], "2 normal");
        assert_eq!(v["category"], "network");
        assert_eq!(v["requester"], "nicole.braun@zammad.org");
        assert_eq!(v["states"][0]["state"], "new");
        assert_eq!(v["states"][1]["state"], "open");
        assert_eq!(v["resolved_at"], Value::Null, "open");
        assert_eq!(v["tags"], json!(["vip"]), "remote was added, then removed");
        assert_eq!(v["work"][0]["id"], "Z-10081-6");
        assert_eq!(v["work"][0]["minutes"], 900, "15 units of an hour");
        assert_eq!(v["work"][0]["agent"], "Agent One");
        assert_eq!(v["work"][0]["kind"], "remote");
        assert_eq!(
            v["work"][0]["note"], "Re-sent the webhook & checked the log",
            "the article's text, not the activity"
        );
        assert_eq!(v["work"][0]["activity"], "Remote");
        assert_eq!(v["work"][1]["minutes"], 90);
        assert_eq!(v["work"][1]["kind"], "onsite", "type 4 is On site");
        assert!(
            v["work"][1].get("note").is_none(),
            "logged without an article"
        );
    }

    #[test]
    fn a_closed_ticket_is_resolved_and_the_activity_can_be_the_category() {
        let (config, mut map) = (config(), map());
        map.category_from = Some(Place::Activity);
        map.kind_from = Some(Place::LabelPrefix("kind-".into()));
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let mut page = c.read_changed(None, &fixture("search.json")).unwrap();
        page.tickets[0].value["ticket"]["state_id"] = json!(4);
        page.tickets[0].value["ticket"]["close_at"] = json!("2020-11-13T14:50:00.000Z");
        page.tickets[0].value["ticket"]["priority_id"] = json!(3);
        let converted = c.convert(&page.tickets, &answers()).unwrap();
        let v: Value = serde_json::from_str(&converted[0].as_ref().unwrap().json).unwrap();
        assert_eq!(v["priority"], "3 high");
        assert_eq!(
            v["resolved_at"], "2020-11-13T14:50:00.000Z",
            "state type closed"
        );
        assert_eq!(v["category"], "Remote", "the first entry's activity");
        assert_eq!(v["work"][1]["kind"], "remote", "no kind- tag: the default");
    }

    #[test]
    fn a_ticket_without_accounted_time_asks_for_no_records() {
        let (config, map) = (config(), map());
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let mut page = c.read_changed(None, &fixture("search.json")).unwrap();
        page.tickets[0].value["ticket"]["time_unit"] = Value::Null;
        let details = c.details(&page.tickets).unwrap();
        assert_eq!(details.len(), 3, "two lists and the history");
        let mut a = answers();
        a.remove(2);
        a.truncate(3);
        let converted = c.convert(&page.tickets, &a).unwrap();
        let v: Value = serde_json::from_str(&converted[0].as_ref().unwrap().json).unwrap();
        assert_eq!(v["work"], json!([]));
        assert!(
            c.convert(&page.tickets, &a[..2]).is_err(),
            "an answer missing"
        );
    }

    #[test]
    fn a_note_finds_its_ticket_by_number_then_adds_only_what_is_missing() {
        let (config, map) = (config(), map());
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let note = Note {
            source: "desk".into(),
            ticket: "10081".into(),
            customer: "awesome".into(),
            metric: "resolution".into(),
            event: crate::NoteEvent::Breach,
            due_at: None,
            tag: "sla-breach".into(),
            text: "SLA resolution target missed".into(),
            subject: None,
        };
        let find = c.find_note(&note).unwrap();
        assert_eq!(
            find[0].url,
            "https://desk.example.com/api/v1/tickets/search?query=number%3A%2210081%22&limit=10"
        );
        let search = fixture("search.json");
        let NoteLookup::More(more) = c
            .read_found_note("k", &note, std::slice::from_ref(&search))
            .unwrap()
        else {
            panic!("the articles and tags are asked next")
        };
        let paths: Vec<&str> = more.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            paths,
            [
                "https://desk.example.com/api/v1/ticket_articles/by_ticket/81",
                "https://desk.example.com/api/v1/tags?object=Ticket&o_id=81"
            ]
        );
        // The comment went through earlier, the tag did not.
        let articles = ok(json!([{"id": 90, "ticket_id": 81,
            "body": format!("SLA resolution target missed\n\n{}", note_marker("k"))}]));
        let tags = ok(json!({"tags": ["vip"]}));
        let NoteLookup::Found(found) = c
            .read_found_note("k", &note, &[search.clone(), articles, tags])
            .unwrap()
        else {
            panic!("found")
        };
        assert_eq!((found.comment, found.tag), (true, false));
        let add = c.add_note("k", &note, &found).unwrap();
        assert_eq!(add.len(), 1, "the tag only");
        assert_eq!(add[0].0, NotePart::Tag);
        let body: Value = serde_json::from_slice(&add[0].1.body).unwrap();
        assert_eq!(
            body,
            json!({"item": "sla-breach", "object": "Ticket", "o_id": 81})
        );
        // Neither there: the comment first, on the internal id.
        let nothing = FoundNote {
            comment: false,
            tag: false,
            context: found.context.clone(),
        };
        let add = c.add_note("k", &note, &nothing).unwrap();
        assert_eq!(add[0].0, NotePart::Comment);
        let body: Value = serde_json::from_slice(&add[0].1.body).unwrap();
        assert_eq!(body["ticket_id"], 81);
        assert_eq!(body["internal"], true);
        // A number the search does not know is not guessed.
        let other = Note {
            ticket: "10082".into(),
            ..note
        };
        assert!(c.read_found_note("k", &other, &[search]).is_err());
    }

    #[test]
    fn an_unknown_organization_is_reported_not_guessed() {
        let (config, mut map) = (config(), map());
        map.customers.clear();
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let page = c.read_changed(None, &fixture("search.json")).unwrap();
        let converted = c.convert(&page.tickets, &answers()).unwrap();
        let err = converted[0].as_ref().unwrap_err();
        assert!(err.contains("Awesome Customer Inc."), "{err}");
    }

    #[test]
    fn a_webhook_is_checked_with_hmac_sha1_over_the_body() {
        let (config, map) = (config(), map());
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let body = br#"{"ticket":{"id":81},"article":{}}"#;
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(b"s3cret").unwrap();
        mac.update(body);
        let sig = format!("sha1={}", hex::encode(mac.finalize().into_bytes()));
        let h = |sig: &str| {
            vec![
                ("X-Hub-Signature".to_owned(), sig.to_owned()),
                ("X-Zammad-Delivery".to_owned(), "d-1".to_owned()),
            ]
        };
        let a = c.webhook(&h(&sig), body, "s3cret").unwrap();
        assert_eq!(
            (a.delivery.as_str(), a.tickets.as_slice()),
            ("d-1", &["81".to_owned()][..])
        );
        assert!(a.keys.is_empty(), "no number in this body");
        assert_eq!(
            c.webhook(&h(&sig), body, "other").unwrap_err(),
            WebhookRefusal::BadSignature
        );
        assert_eq!(
            c.webhook(&[], body, "s3cret").unwrap_err(),
            WebhookRefusal::Unsigned
        );
    }

    #[test]
    fn a_renewal_ticket_is_looked_for_by_its_marker_then_created_with_an_internal_note() {
        let (config, map) = (config(), map());
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let key = "renewal:awesome:card:used-up";
        let t = NewTicket {
            source: "desk".into(),
            customer: "awesome".into(),
            requester: Some("nicole.braun@zammad.org".into()),
            title: "Renewal: punch card of awesome used up".into(),
            text: "Suggest a new KLIPPEKORT-10.".into(),
            tag: "prepaid-renewal".into(),
        };
        let find = c.find_ticket(key, &t).unwrap();
        assert_eq!(find.method, HttpMethod::Get);
        assert_eq!(
            find.url,
            "https://desk.example.com/api/v1/tickets/search?query=%22%5Bcontract-bridge+renewal%3Aawesome%3Acard%3Aused-up%5D%22&limit=50"
        );
        let create = c.create_ticket(key, &t).unwrap();
        assert_eq!(create.method, HttpMethod::Post);
        assert!(create.url.ends_with("/api/v1/tickets"));
        let body: Value = serde_json::from_slice(&create.body).unwrap();
        assert_eq!(
            body,
            json!({
                "title": "Renewal: punch card of awesome used up [contract-bridge renewal:awesome:card:used-up]",
                "group": "Users",
                "customer": "nicole.braun@zammad.org",
                "tags": "prepaid-renewal",
                "article": {
                    "subject": "Renewal: punch card of awesome used up",
                    "body": "Suggest a new KLIPPEKORT-10.\n\n[contract-bridge renewal:awesome:card:used-up]",
                    "content_type": "text/plain",
                    "type": "note",
                    "internal": true,
                },
            })
        );
        // Found only with the marker in the title, not a look-alike.
        let found = ok(json!({"tickets": [7, 9], "assets": {"Ticket": {
            "7": {"id": 7, "number": "31007", "title": "Renewal [contract-bridge renewal:awesome:card:used-up-2]"},
            "9": {"id": 9, "number": "31009", "title": body["title"]},
        }}}));
        assert_eq!(
            c.read_found_ticket(key, &found).unwrap().as_deref(),
            Some("31009")
        );
        let none = ok(json!({"tickets": [7], "assets": {"Ticket": {
            "7": {"id": 7, "title": "Renewal [contract-bridge renewal:awesome:card:used-up-2]"},
        }}}));
        assert_eq!(c.read_found_ticket(key, &none).unwrap(), None);
        let created = ok(json!({"id": 12, "number": "31012"}));
        assert_eq!(c.read_created_ticket(&created).unwrap(), "31012");
        // Without a known contact the ticket cannot have a customer.
        let orphan = NewTicket {
            requester: None,
            ..t
        };
        assert!(matches!(
            c.create_ticket(key, &orphan),
            Err(ConnectorError::Permanent(m)) if m.contains("awesome")
        ));
    }

    #[test]
    fn a_refused_token_is_permanent() {
        let r = HttpResponse {
            status: 401,
            retry_after: None,
            body: r#"{"error":"Invalid token!"}"#.into(),
        };
        assert!(
            matches!(check(&r), Err(ConnectorError::Permanent(m)) if m.contains("Invalid token!"))
        );
    }
}
