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
//!
//! This module builds the requests and says which answer is which;
//! [`transformers`] holds every payload as a type and turns a ticket's
//! answers into its canonical snapshot.

mod transformers;

use crate::Result;
use crate::helpdesk::answered_all;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounting::{encode, status_error};
use crate::helpdesk::{
    Announcement, Converted, FoundNote, HelpdeskApi, Mapped, NoteLookup, NotePart, Page, RawTicket,
    RestApi, WebhookRefusal, header, id_text, note_marker, ticket_title, verify_hub_signature,
};
use crate::{ConnectorError, HttpMethod, HttpRequest, HttpResponse, NewTicket, Note, Secret};
use transformers::{
    Article, ArticleBody, ChangedSearch, Created, Details, ErrorBody, ExpandedNames, History,
    Listed, Lookups, Named, NewArticle, NoteArticle, Numbered, Search, State, TagAdd, Tags, Ticket,
    TicketCreate, TimeAccounting, Titled, Webhook, parse, read,
};

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
    #[serde(default = "crate::defaults::per_second::<10>")]
    pub requests_per_second: u32,
    #[serde(default = "crate::defaults::timeout_ms::<30_000>")]
    pub timeout_ms: u64,
    /// The group a ticket the bridge opens (a renewal suggestion) goes to.
    #[serde(default = "default_group")]
    pub renewal_group: String,
}

crate::defaults::defaults! {
    default_group = "Users";
    default_per_page: u32 = 100;
}

const SYSTEM: &str = "zammad";

/// The answer's JSON, or why the call failed.
fn check(r: &HttpResponse) -> Result<Value> {
    if !(200..300).contains(&r.status) {
        // Zammad's error body, else the start of whatever came back.
        let said = serde_json::from_str::<ErrorBody>(&r.body)
            .ok()
            .and_then(|e| e.error_human.or(e.error));
        let m = said.unwrap_or_else(|| r.body.chars().take(200).collect());
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

/// A batch's tickets as the batch carries them: each with its internal
/// id and whether it has accounted time.
fn listed(tickets: &[RawTicket]) -> Result<Vec<(String, bool)>> {
    tickets
        .iter()
        .map(|t| {
            let (listed, ticket) = Listed::of(t).map_err(ConnectorError::Permanent)?;
            Ok((listed.id, ticket.known.has_time()))
        })
        .collect()
}

fn plan(tickets: &[(String, bool)]) -> Vec<Ask> {
    let mut asks = vec![Ask::Priorities, Ask::States];
    if tickets.iter().any(|t| t.1) {
        asks.push(Ask::Types);
    }
    for (i, (_, has_time)) in tickets.iter().enumerate() {
        asks.push(Ask::History(i));
        if *has_time {
            asks.push(Ask::Time(i));
            asks.push(Ask::Articles(i));
        }
    }
    asks
}

impl RestApi for Mapped<'_, ZammadConfig> {
    fn base(&self) -> String {
        self.url.trim_end_matches('/').to_owned()
    }

    fn timeout_ms(&self) -> u64 {
        self.timeout_ms
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

    fn changed(&self, cursor: Option<&str>, page: Option<&str>) -> Result<HttpRequest> {
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

    fn read_changed(&self, page: Option<&str>, r: &HttpResponse) -> Result<Page> {
        let search: ChangedSearch = read(check(r)?, "the ticket search")?;
        // The assets hold the tickets, their users and those users'
        // organizations; priority and state names come from the batch's
        // lists (`details`).
        let people = &search.assets;
        let mut tickets = Vec::new();
        for (id, t) in search.listed() {
            let known = &t.known;
            let listed = Listed {
                id: id.0.clone(),
                ticket: t.attributes.clone(),
                organization: known
                    .organization_id
                    .as_ref()
                    .and_then(|o| people.organizations.get(&o.0))
                    .map(|o| o.name.clone()),
                requester: people
                    .users
                    .get(&known.customer_id.0)
                    .and_then(|u| u.email.clone()),
                state: None,
                priority: None,
            };
            tickets.push(listed.raw(known)?);
        }
        // Zammad gives no total: the sweep ends at the first empty page.
        let next = (!search.tickets.is_empty())
            .then(|| (page.and_then(|p| p.parse::<u32>().ok()).unwrap_or(1) + 1).to_string());
        Ok(Page { tickets, next })
    }

    fn ticket(&self, id: &str) -> Result<HttpRequest> {
        Ok(self.get(format!("/api/v1/tickets/{}?expand=true", encode(id))))
    }

    fn read_ticket(&self, r: &HttpResponse) -> Result<RawTicket> {
        let v = check(r)?;
        // `expand=true`: the association names next to the ids
        // (`attributes_with_association_names`; a user by login).
        let names: ExpandedNames = read(v.clone(), "the ticket")?;
        let t: Ticket = read(v, "the ticket")?;
        let listed = Listed {
            id: t.known.id.0.clone(),
            ticket: t.attributes,
            organization: names.organization,
            requester: Some(names.customer),
            state: Some(names.state),
            priority: Some(names.priority),
        };
        listed.raw(&t.known)
    }

    fn details(&self, tickets: &[RawTicket]) -> Result<Vec<HttpRequest>> {
        let listed = listed(tickets)?;
        let id = |i: usize| encode(&listed[i].0);
        Ok(plan(&listed)
            .into_iter()
            .map(|ask| match ask {
                Ask::Priorities => self.get("/api/v1/ticket_priorities".into()),
                Ask::States => self.get("/api/v1/ticket_states?expand=true".into()),
                Ask::Types => self.get("/api/v1/time_accounting/types".into()),
                Ask::History(i) => self.get(format!("/api/v1/ticket_history/{}", id(i))),
                Ask::Time(i) => self.get(format!("/api/v1/tickets/{}/time_accountings", id(i))),
                Ask::Articles(i) => {
                    self.get(format!("/api/v1/ticket_articles/by_ticket/{}", id(i)))
                }
            })
            .collect())
    }

    fn convert(&self, tickets: &[RawTicket], details: &[HttpResponse]) -> Result<Vec<Converted>> {
        let asks = plan(&listed(tickets)?);
        answered_all(SYSTEM, asks.len(), details)?;
        // The lists serve the whole batch: one that cannot be read fails it.
        // A ticket's own answer that cannot be read fails that ticket only.
        let mut lookups = Lookups::default();
        let mut per: Vec<Result<Details, String>> =
            tickets.iter().map(|_| Ok(Details::default())).collect();
        for (ask, answer) in asks.into_iter().zip(details) {
            let v = check(answer)?;
            match ask {
                Ask::Priorities => {
                    let list: Vec<Named> = read(v, "the ticket priorities")?;
                    lookups.priorities = list.into_iter().map(|p| (p.id, p.name)).collect();
                }
                Ask::States => {
                    let list: Vec<State> = read(v, "the ticket states")?;
                    lookups.states = list
                        .into_iter()
                        .map(|s| (s.id, (s.name, s.state_type)))
                        .collect();
                }
                Ask::Types => {
                    let list: Vec<Named> = read(v, "the time accounting types")?;
                    lookups.types = list.into_iter().map(|t| (t.id, t.name)).collect();
                }
                Ask::History(i) => {
                    let history = parse::<History>(v, "the ticket history");
                    if let Ok(d) = &mut per[i] {
                        match history {
                            Ok(h) => d.history = h,
                            Err(e) => per[i] = Err(e),
                        }
                    }
                }
                Ask::Time(i) => {
                    let time = parse::<Vec<TimeAccounting>>(v, "the time accountings");
                    if let Ok(d) = &mut per[i] {
                        match time {
                            Ok(t) => d.time = t,
                            Err(e) => per[i] = Err(e),
                        }
                    }
                }
                Ask::Articles(i) => {
                    let articles = parse::<Vec<Article>>(v, "the articles");
                    if let Ok(d) = &mut per[i] {
                        match articles {
                            Ok(a) => d.articles = a,
                            Err(e) => per[i] = Err(e),
                        }
                    }
                }
            }
        }
        Ok(tickets
            .iter()
            .zip(&per)
            .map(|(t, d)| match d {
                Ok(d) => self.canonical(t, d, &lookups),
                Err(e) => Err(format!("ticket {}: {e}", t.id)),
            })
            .collect())
    }

    fn find_note(&self, note: &Note) -> Result<Vec<HttpRequest>> {
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
    ) -> Result<NoteLookup> {
        let search = answers
            .first()
            .ok_or_else(|| ConnectorError::Transient(format!("{SYSTEM}: no answer")))?;
        let search: Search<Numbered> = read(check(search)?, "the ticket search")?;
        let id = search
            .listed()
            .find(|(_, t)| t.number == note.ticket)
            .map(|(id, _)| id.0.clone())
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
        let articles: Vec<ArticleBody> = read(check(articles)?, "the articles")?;
        let comment = articles.iter().any(|a| a.body.contains(&marker));
        let tags: Tags = read(check(tags)?, "the tags")?;
        let tag = tags.tags.contains(&note.tag);
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
    ) -> Result<Vec<(NotePart, HttpRequest)>> {
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
            let subject = note.subject();
            let article = NewArticle {
                ticket_id: ticket,
                note: NoteArticle::internal(
                    &subject,
                    format!("{}\n\n{}", note.text, note_marker(key)),
                ),
            };
            out.push((
                NotePart::Comment,
                self.send_json(HttpMethod::Post, "/api/v1/ticket_articles".into(), &article)?,
            ));
        }
        if !found.tag {
            let tag = TagAdd {
                item: &note.tag,
                object: "Ticket",
                o_id: ticket,
            };
            out.push((
                NotePart::Tag,
                self.send_json(HttpMethod::Post, "/api/v1/tags/add".into(), &tag)?,
            ));
        }
        Ok(out)
    }

    fn read_added(&self, r: &HttpResponse) -> Result<()> {
        check(r).map(|_| ())
    }

    fn find_ticket(&self, key: &str, _ticket: &NewTicket) -> Result<HttpRequest> {
        // The marker as a phrase; the answer is checked for it exactly.
        Ok(self.get(format!(
            "/api/v1/tickets/search?query={}&limit=50",
            encode(&format!("\"{}\"", note_marker(key)))
        )))
    }

    fn read_found_ticket(&self, key: &str, r: &HttpResponse) -> Result<Option<String>> {
        let marker = note_marker(key);
        let search: Search<Titled> = read(check(r)?, "the ticket search")?;
        Ok(search
            .listed()
            .find(|(_, t)| t.title.contains(&marker))
            .map(|(id, t)| t.number.clone().unwrap_or_else(|| id.0.clone())))
    }

    fn create_ticket(&self, key: &str, ticket: &NewTicket) -> Result<HttpRequest> {
        let customer = ticket.requester.as_deref().ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "zammad: no contact of `{}` is known (none of its tickets names a requester): a ticket needs its customer",
                ticket.customer
            ))
        })?;
        let body = TicketCreate {
            title: ticket_title(key, ticket),
            group: &self.renewal_group,
            customer,
            tags: &ticket.tag,
            article: NoteArticle::internal(
                &ticket.title,
                format!("{}\n\n{}", ticket.text, note_marker(key)),
            ),
        };
        self.send_json(HttpMethod::Post, "/api/v1/tickets".into(), &body)
    }

    fn read_created_ticket(&self, r: &HttpResponse) -> Result<String> {
        // The number customers see, as every ticket of this source is keyed.
        let t: Created = read(check(r)?, "the created ticket")?;
        Ok(t.number.unwrap_or(t.id.0))
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
        let hook: Webhook = parse(v, "the webhook's body").map_err(WebhookRefusal::Malformed)?;
        let id = hook.ticket.id.0;
        // Read again by its id; known (and deleted, if it is gone) by its number.
        let keys = hook
            .ticket
            .number
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpdesk::SourceMap;
    use crate::testing::{first_converted, hub_signature, ok};
    use mapping::Place;
    use rust_decimal::Decimal;
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
        crate::testing::fixture_answer("zammad", name)
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
        let c = Mapped::new(&config, &map);
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
        let c = Mapped::new(&config, &map);
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
    fn a_time_record_read_wrong_fails_its_ticket_not_as_zero_minutes() {
        let (config, map) = (config(), map());
        let c = Mapped::new(&config, &map);
        let page = c.read_changed(None, &fixture("search.json")).unwrap();
        let mut a = answers();
        a[4] = ok(
            json!([{"id": 6, "ticket_id": 81, "ticket_article_id": 87, "time": "15.0",
            "type_id": 3, "created_by_id": 3, "created_at": "2020-09-16T08:11:49.315Z"}]),
        );
        let converted = c.convert(&page.tickets, &a).unwrap();
        let err = converted[0].as_ref().unwrap_err();
        assert!(
            err.starts_with("ticket 10081:") && err.contains("missing field `time_unit`"),
            "{err}"
        );
        // A list the whole batch reads fails the batch.
        let mut a = answers();
        a[0] = ok(json!([{"id": 1, "title": "1 low"}]));
        let err = c.convert(&page.tickets, &a).unwrap_err().to_string();
        assert!(err.contains("missing field `name`"), "{err}");
    }

    #[test]
    fn a_closed_ticket_is_resolved_and_the_activity_can_be_the_category() {
        let (config, mut map) = (config(), map());
        map.category_from = Some(Place::Activity);
        map.kind_from = Some(Place::LabelPrefix("kind-".into()));
        let c = Mapped::new(&config, &map);
        let mut page = c.read_changed(None, &fixture("search.json")).unwrap();
        page.tickets[0].value["ticket"]["state_id"] = json!(4);
        page.tickets[0].value["ticket"]["close_at"] = json!("2020-11-13T14:50:00.000Z");
        page.tickets[0].value["ticket"]["priority_id"] = json!(3);
        let v = first_converted(&c, &page.tickets, &answers());
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
        let c = Mapped::new(&config, &map);
        let mut page = c.read_changed(None, &fixture("search.json")).unwrap();
        page.tickets[0].value["ticket"]["time_unit"] = Value::Null;
        let details = c.details(&page.tickets).unwrap();
        assert_eq!(details.len(), 3, "two lists and the history");
        let mut a = answers();
        a.remove(2);
        a.truncate(3);
        let v = first_converted(&c, &page.tickets, &a);
        assert_eq!(v["work"], json!([]));
        assert!(
            c.convert(&page.tickets, &a[..2]).is_err(),
            "an answer missing"
        );
    }

    #[test]
    fn a_note_finds_its_ticket_by_number_then_adds_only_what_is_missing() {
        let (config, map) = (config(), map());
        let c = Mapped::new(&config, &map);
        let note =
            crate::testing::breach_note("desk", "10081", "awesome", "SLA resolution target missed");
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
        let c = Mapped::new(&config, &map);
        let page = c.read_changed(None, &fixture("search.json")).unwrap();
        let converted = c.convert(&page.tickets, &answers()).unwrap();
        let err = converted[0].as_ref().unwrap_err();
        assert!(err.contains("Awesome Customer Inc."), "{err}");
    }

    #[test]
    fn a_webhook_is_checked_with_hmac_sha1_over_the_body() {
        let (config, map) = (config(), map());
        let c = Mapped::new(&config, &map);
        let body = br#"{"ticket":{"id":81},"article":{}}"#;
        let sig = hub_signature::<hmac::Hmac<sha1::Sha1>>("sha1", b"s3cret", body);
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
        let c = Mapped::new(&config, &map);
        let (key, t) = crate::testing::renewal_ticket("awesome", "nicole.braun@zammad.org");
        let find = c.find_ticket(&key, &t).unwrap();
        assert_eq!(find.method, HttpMethod::Get);
        assert_eq!(
            find.url,
            "https://desk.example.com/api/v1/tickets/search?query=%22%5Bcontract-bridge+renewal%3Aawesome%3Acard%3Aused-up%5D%22&limit=50"
        );
        let create = c.create_ticket(&key, &t).unwrap();
        assert_eq!(create.method, HttpMethod::Post);
        assert!(create.url.ends_with("/api/v1/tickets"));
        let body: Value = serde_json::from_slice(&create.body).unwrap();
        assert_eq!(
            body,
            json!({
                "title": "Renewal: card of awesome used up [contract-bridge renewal:awesome:card:used-up]",
                "group": "Users",
                "customer": "nicole.braun@zammad.org",
                "tags": "prepaid-renewal",
                "article": {
                    "subject": "Renewal: card of awesome used up",
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
            c.read_found_ticket(&key, &found).unwrap().as_deref(),
            Some("31009")
        );
        let none = ok(json!({"tickets": [7], "assets": {"Ticket": {
            "7": {"id": 7, "title": "Renewal [contract-bridge renewal:awesome:card:used-up-2]"},
        }}}));
        assert_eq!(c.read_found_ticket(&key, &none).unwrap(), None);
        let created = ok(json!({"id": 12, "number": "31012"}));
        assert_eq!(c.read_created_ticket(&created).unwrap(), "31012");
        // Without a known contact the ticket cannot have a customer.
        let orphan = NewTicket {
            requester: None,
            ..t
        };
        assert!(matches!(
            c.create_ticket(&key, &orphan),
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
