//! Freshdesk (API v2): tickets listed by `updated_since`, oldest change
//! first (`order_by=updated_at&order_type=asc`), with the requester and the
//! ticket's `stats` inlined (`include=requester,stats`), paged by `page`
//! until a short page (Freshdesk stops at page 300). Per batch: the agents
//! (page 1, their names for the work entries) and each company a ticket
//! names (its name is the mapping's customer key); per ticket: its time
//! entries. Only billable entries whose timer has stopped become work;
//! the minutes left out are counted in the ticket's `fields`. Freshdesk
//! keeps no status history in API v2: the states are the ticket's creation
//! (open) and its current status since `stats.status_updated_at`. Notes are
//! private notes, found again by their marker among the ticket's
//! conversations; tags are written with the ticket (`PUT` replaces the
//! list, so the current tags are kept). Freshdesk's webhooks (automation
//! rules) are unsigned: the source is polled. The bridge opens no tickets
//! in Freshdesk (a new ticket mails its requester).
//!
//! Every payload read or written is a typed struct in [`transformers`],
//! which also makes the canonical ticket: a missing or renamed field is an
//! error naming it, not a default (Freshdesk adds fields; those are ignored).

mod transformers;

use crate::Result;
use crate::helpdesk::answered_all;
use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::accounting::encode;
use crate::helpdesk::{
    Announcement, Converted, FoundNote, HelpdeskApi, Mapped, NoteLookup, NotePart, Page, RawTicket,
    RestApi, WebhookRefusal, note_marker,
};
use crate::{ConnectorError, HttpMethod, HttpRequest, HttpResponse, NewTicket, Note, Secret};
use transformers::{
    Agent, Company, CompanyOf, Conversation, NewNote, Tagged, TagsUpdate, TimeEntry, Written,
    raw_ticket, read,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FreshdeskConfig {
    /// The helpdesk's address, e.g. `https://acme.freshdesk.com`.
    pub url: String,
    /// An agent's API key (Basic auth, the key as user and `X` as password).
    pub api_key: Secret,
    /// Tickets per list page (Freshdesk allows at most 100).
    #[serde(default = "default_per_page")]
    pub per_page: u32,
    #[serde(default = "crate::defaults::per_second::<3>")]
    pub requests_per_second: u32,
    #[serde(default = "crate::defaults::timeout_ms::<30_000>")]
    pub timeout_ms: u64,
}

crate::defaults::defaults! {
    default_per_page: u32 = 100;
}

const SYSTEM: &str = "freshdesk";
/// Freshdesk answers no page after this one.
const LAST_PAGE: u32 = 300;
/// Conversations and time entries asked per page.
const PER_PAGE: usize = 100;

/// One request of a batch's details, in the order they are asked.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ask {
    /// `GET /api/v2/agents?per_page=100`: agent id → name.
    Agents,
    /// `GET /api/v2/companies/{id}`: the company's name.
    Company(u64),
    /// `GET /api/v2/tickets/{id}/time_entries`.
    Time(usize),
}

impl RestApi for Mapped<'_, FreshdeskConfig> {
    fn base(&self) -> String {
        let url = self.url.trim_end_matches('/');
        format!("{}/api/v2/", url.strip_suffix("/api/v2").unwrap_or(url))
    }

    fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }
}

impl Mapped<'_, FreshdeskConfig> {
    /// The companies the mapping's customers are read from: none when
    /// `fields.customer` names a field of the ticket instead.
    fn customer_field(&self) -> Option<&str> {
        self.map
            .fields
            .get("customer")
            .or(self.map.fields.get("organization"))
            .map(String::as_str)
    }

    fn plan(&self, tickets: &[RawTicket]) -> Vec<Ask> {
        let mut asks = vec![Ask::Agents];
        if self.customer_field().is_none() {
            let companies: BTreeSet<u64> = tickets
                .iter()
                // A ticket not as documented asks for no company: its
                // conversion refuses it.
                .filter_map(|t| CompanyOf::deserialize(&t.value).ok()?.company_id)
                .collect();
            asks.extend(companies.into_iter().map(Ask::Company));
        }
        asks.extend((0..tickets.len()).map(Ask::Time));
        asks
    }
}

/// A ticket Freshdesk opens mails its requester: the bridge opens none
/// (a renewal suggestion for a Freshdesk customer goes elsewhere).
fn no_tickets() -> ConnectorError {
    ConnectorError::Permanent(format!(
        "{SYSTEM}: the bridge opens no tickets in Freshdesk (a new ticket mails its requester): send renewal suggestions to another target"
    ))
}

impl HelpdeskApi for Mapped<'_, FreshdeskConfig> {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn authorize(&self, request: &mut HttpRequest, _token: Option<&str>) {
        let pair = format!("{}:X", self.api_key.expose());
        request.headers.push((
            "authorization".into(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ),
        ));
    }

    fn changed(&self, cursor: Option<&str>, page: Option<&str>) -> Result<HttpRequest> {
        // Without `updated_since` Freshdesk lists only the last 30 days.
        let since = cursor.unwrap_or("1970-01-01T00:00:00Z");
        Ok(self.get(format!(
            "tickets?updated_since={}&order_by=updated_at&order_type=asc&per_page={}&page={}&include=requester,stats",
            encode(since),
            self.per_page.clamp(1, 100),
            page.unwrap_or("1")
        )))
    }

    fn read_changed(&self, page: Option<&str>, r: &HttpResponse) -> Result<Page> {
        let list: Vec<Value> = read(r, "the ticket list")?;
        let count = list.len();
        let tickets = list
            .into_iter()
            .map(raw_ticket)
            .collect::<Result<Vec<_>, _>>()?;
        // The `link` header is not handed to connectors: a full page means
        // there may be another, a short one ends the sweep. Past page 300
        // Freshdesk answers nothing: the next pass goes on from the cursor.
        let page: u32 = page.and_then(|p| p.parse().ok()).unwrap_or(1);
        let next = (count >= self.per_page.clamp(1, 100) as usize && page < LAST_PAGE)
            .then(|| (page + 1).to_string());
        Ok(Page { tickets, next })
    }

    fn ticket(&self, id: &str) -> Result<HttpRequest> {
        Ok(self.get(format!("tickets/{}?include=requester,stats", encode(id))))
    }

    fn read_ticket(&self, r: &HttpResponse) -> Result<RawTicket> {
        raw_ticket(read(r, "the ticket")?)
    }

    fn details(&self, tickets: &[RawTicket]) -> Result<Vec<HttpRequest>> {
        Ok(self
            .plan(tickets)
            .into_iter()
            .map(|ask| match ask {
                Ask::Agents => self.get(format!("agents?per_page={PER_PAGE}")),
                Ask::Company(id) => self.get(format!("companies/{id}")),
                Ask::Time(i) => self.get(format!(
                    "tickets/{}/time_entries?per_page={PER_PAGE}",
                    encode(&tickets[i].id)
                )),
            })
            .collect())
    }

    fn convert(&self, tickets: &[RawTicket], details: &[HttpResponse]) -> Result<Vec<Converted>> {
        let asks = self.plan(tickets);
        answered_all(SYSTEM, asks.len(), details)?;
        let mut agents = BTreeMap::new();
        let mut companies = BTreeMap::new();
        let mut time: Vec<Result<Vec<TimeEntry>, String>> = vec![Ok(Vec::new()); tickets.len()];
        for (ask, answer) in asks.into_iter().zip(details) {
            match ask {
                Ask::Agents => {
                    let list: Vec<Agent> = read(answer, "the agent list")?;
                    agents.extend(list.into_iter().map(|a| (a.id, a.contact.name)));
                }
                Ask::Company(id) => {
                    let c: Company = read(answer, "a company")?;
                    if c.id != id {
                        return Err(ConnectorError::Transient(format!(
                            "{SYSTEM}: company {id} asked, company {} answered",
                            c.id
                        )));
                    }
                    companies.insert(c.id, c.name);
                }
                Ask::Time(i) => {
                    let list: Vec<TimeEntry> = read(answer, "a ticket's time entries")?;
                    // A full page may hide more: refused rather than billed short.
                    time[i] = if list.len() >= PER_PAGE {
                        Err(format!(
                            "{PER_PAGE} time entries or more: only the first page is read"
                        ))
                    } else {
                        Ok(list)
                    };
                }
            }
        }
        Ok(tickets
            .iter()
            .zip(&time)
            .map(|(t, entries)| match entries {
                Ok(e) => self.canonical(t, e, &companies, &agents),
                Err(e) => Err(format!("ticket {}: {e}", t.id)),
            })
            .collect())
    }

    fn find_note(&self, note: &Note) -> Result<Vec<HttpRequest>> {
        let id = encode(&note.ticket);
        Ok(vec![
            self.get(format!("tickets/{id}")),
            self.get(format!(
                "tickets/{id}/conversations?per_page={PER_PAGE}&page=1"
            )),
        ])
    }

    fn read_found_note(
        &self,
        key: &str,
        note: &Note,
        answers: &[HttpResponse],
    ) -> Result<NoteLookup> {
        let [ticket, pages @ ..] = answers else {
            return Err(ConnectorError::Transient(format!(
                "{SYSTEM}: the note lookup is incomplete"
            )));
        };
        let ticket: Tagged = read(ticket, "the ticket")?;
        let marker = note_marker(key);
        let mut comment = false;
        let mut last_len = 0;
        for page in pages {
            let list: Vec<Conversation> = read(page, "a ticket's conversations")?;
            comment |= list
                .iter()
                .any(|c| c.private && c.body_text.contains(&marker));
            last_len = list.len();
        }
        if !comment && !pages.is_empty() && last_len >= PER_PAGE {
            return Ok(NoteLookup::More(vec![self.get(format!(
                "tickets/{}/conversations?per_page={PER_PAGE}&page={}",
                encode(&note.ticket),
                pages.len() + 1
            ))]));
        }
        Ok(NoteLookup::Found(FoundNote {
            comment,
            tag: ticket.tags.contains(&note.tag),
            context: json!(ticket.tags),
        }))
    }

    fn add_note(
        &self,
        key: &str,
        note: &Note,
        found: &FoundNote,
    ) -> Result<Vec<(NotePart, HttpRequest)>> {
        let id = encode(&note.ticket);
        let mut out = Vec::new();
        if !found.comment {
            let body = NewNote::private(&note.subject(), &note.text, &note_marker(key));
            out.push((
                NotePart::Comment,
                self.send_sorted(HttpMethod::Post, format!("tickets/{id}/notes"), &body)?,
            ));
        }
        if !found.tag {
            // `tags` replaces the ticket's list: the current ones are kept.
            let mut tags: Vec<String> =
                Vec::<String>::deserialize(&found.context).map_err(|e| {
                    ConnectorError::Permanent(format!("{SYSTEM}: the ticket's tags as found: {e}"))
                })?;
            if !tags.contains(&note.tag) {
                tags.push(note.tag.clone());
            }
            out.push((
                NotePart::Tag,
                self.send_sorted(
                    HttpMethod::Put,
                    format!("tickets/{id}"),
                    &TagsUpdate { tags },
                )?,
            ));
        }
        Ok(out)
    }

    fn read_added(&self, r: &HttpResponse) -> Result<()> {
        // A note or the ticket written: either carries its id.
        let _: Written = read(r, "the answer to a write")?;
        Ok(())
    }

    fn find_ticket(&self, _key: &str, _ticket: &NewTicket) -> Result<HttpRequest> {
        Err(no_tickets())
    }

    fn read_found_ticket(&self, _key: &str, _r: &HttpResponse) -> Result<Option<String>> {
        Err(no_tickets())
    }

    fn create_ticket(&self, _key: &str, _ticket: &NewTicket) -> Result<HttpRequest> {
        Err(no_tickets())
    }

    fn read_created_ticket(&self, _r: &HttpResponse) -> Result<String> {
        Err(no_tickets())
    }

    fn webhook(
        &self,
        _headers: &[(String, String)],
        _body: &[u8],
        _secret: &str,
    ) -> Result<Announcement, WebhookRefusal> {
        Err(WebhookRefusal::Malformed(
            "Freshdesk's webhooks are unsigned: the source is polled".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpdesk::SourceMap;
    use crate::testing::{answer, ok};
    use mapping::{Place, WorkKind};

    fn config() -> FreshdeskConfig {
        serde_json::from_value(json!({
            "url": "https://acme.freshdesk.com/",
            "api_key": "fd-key",
            "per_page": 2,
        }))
        .unwrap()
    }

    fn map() -> SourceMap {
        SourceMap {
            customers: BTreeMap::from([
                ("Riga Bakery SIA".to_owned(), "riga-bakery".to_owned()),
                (
                    "Daugava Logistics".to_owned(),
                    "daugava-logistics".to_owned(),
                ),
            ]),
            kinds: BTreeMap::from([
                ("[onsite]".to_owned(), WorkKind::Onsite),
                ("[phone]".to_owned(), WorkKind::Phone),
            ]),
            ..SourceMap::default()
        }
    }

    /// A ticket in the list's shape (`include=requester,stats`).
    fn ticket(id: u64, status: u32, company: u64) -> Value {
        json!({
            "id": id, "subject": "Printer offline", "status": status, "priority": 3,
            "type": "Incident", "source": 2, "group_id": null, "responder_id": 7,
            "requester_id": 501, "company_id": company, "product_id": null,
            "created_at": "2026-10-01T06:30:00Z", "updated_at": "2026-10-03T08:00:00Z",
            "due_by": "2026-10-04T06:30:00Z", "fr_due_by": "2026-10-01T07:30:00Z",
            "is_escalated": false, "fr_escalated": false, "spam": false,
            "tags": ["printer"], "cc_emails": [], "fwd_emails": [], "reply_cc_emails": [],
            "custom_fields": {"cf_site": "Bakery 2", "cf_contract": null},
            "requester": {"email": "ilze@riga-bakery.example", "id": 501, "mobile": null,
                          "name": "Ilze", "phone": null},
            "stats": {"agent_responded_at": "2026-10-01T07:10:00Z",
                      "requester_responded_at": null,
                      "first_responded_at": "2026-10-01T07:10:00Z",
                      "status_updated_at": "2026-10-03T08:00:00Z",
                      "reopened_at": null, "resolved_at": "2026-10-03T08:00:00Z",
                      "closed_at": null, "pending_since": null},
        })
    }

    fn entry(id: u64, ticket: u64, spent: &str, billable: bool, note: &str) -> Value {
        json!({
            "id": id, "billable": billable, "note": note, "ticket_id": ticket,
            "time_spent": spent, "agent_id": 7, "executed_at": "2026-10-02T09:00:00Z",
            "start_time": "2026-10-02T09:00:00Z", "timer_running": false,
            "created_at": "2026-10-02T09:30:00Z", "updated_at": "2026-10-02T09:30:00Z",
        })
    }

    fn agents() -> HttpResponse {
        ok(
            json!([{"id": 7, "available": true, "occasional": false, "ticket_scope": 1,
            "contact": {"active": true, "email": "juris@desk.example", "name": "Juris Ozols",
                        "language": "en", "time_zone": "Riga"}}]),
        )
    }

    fn company(id: u64, name: &str) -> HttpResponse {
        ok(
            json!({"id": id, "name": name, "description": null, "domains": [],
            "custom_fields": {}, "created_at": "2026-01-01T00:00:00Z"}),
        )
    }

    fn convert_one(c: &Mapped<'_, FreshdeskConfig>, t: Value, entries: Value) -> Converted {
        let raw = raw_ticket(t).unwrap();
        let asks = c.details(std::slice::from_ref(&raw)).unwrap();
        let mut answers = vec![agents()];
        if asks.len() == 3 {
            answers.push(company(
                raw.value["company_id"].as_u64().unwrap(),
                "Riga Bakery SIA",
            ));
        }
        answers.push(ok(entries));
        c.convert(&[raw], &answers).unwrap().remove(0)
    }

    #[test]
    fn a_ticket_becomes_canonical_with_only_its_billable_time() {
        let (config, map) = (config(), map());
        let c = Mapped::new(&config, &map);
        let mut running = entry(14, 42, "00:10", true, "still at it");
        running["timer_running"] = json!(true);
        let s = convert_one(
            &c,
            ticket(42, 4, 9001),
            json!([
                entry(11, 42, "00:20", true, "driver reinstalled"),
                entry(12, 42, "01:15", true, "[onsite] replaced the fuser"),
                entry(13, 42, "00:45", false, "waited for the courier"),
                running,
            ]),
        )
        .unwrap();
        assert_eq!(s.id, "42");
        assert_eq!(s.customer, "riga-bakery");
        let v: Value = serde_json::from_str(&s.json).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "42", "customer": "riga-bakery", "requester": "ilze@riga-bakery.example",
                "title": "Printer offline", "priority": "high", "category": "Incident",
                "tags": ["printer"],
                "fields": {
                    "freshdesk_status": 4, "freshdesk_type": "Incident",
                    "freshdesk_due_by": "2026-10-04T06:30:00Z",
                    "freshdesk_fr_due_by": "2026-10-01T07:30:00Z",
                    "freshdesk_non_billable_minutes": 45, "freshdesk_running_timers": 1,
                    "cf_site": "Bakery 2", "cf_contract": null,
                },
                "created_at": "2026-10-01T06:30:00Z",
                "first_response_at": "2026-10-01T07:10:00Z",
                "resolved_at": "2026-10-03T08:00:00Z",
                "states": [
                    {"at": "2026-10-01T06:30:00Z", "state": "open"},
                    {"at": "2026-10-03T08:00:00Z", "state": "resolved"},
                ],
                "work": [
                    {"id": "FD-42-11", "at": "2026-10-02T09:00:00Z", "minutes": 20,
                     "agent": "Juris Ozols", "kind": "remote", "note": "driver reinstalled"},
                    {"id": "FD-42-12", "at": "2026-10-02T09:00:00Z", "minutes": 75,
                     "agent": "Juris Ozols", "kind": "onsite", "note": "[onsite] replaced the fuser"},
                ],
            })
        );
    }

    #[test]
    fn mapped_fields_choose_the_customer_category_and_kind() {
        let config = config();
        let mut map = map();
        map.customers
            .insert("Bakery 2".into(), "riga-bakery".into());
        map.fields.insert("customer".into(), "cf_site".into());
        map.fields.insert("category".into(), "cf_contract".into());
        map.fields.insert("group".into(), "group_id".into());
        map.category_from = Some(Place::LabelPrefix("cat-".into()));
        map.kind_from = Some(Place::Field("cf_kind".into()));
        let c = Mapped::new(&config, &map);
        let mut t = ticket(43, 2, 9001);
        t["tags"] = json!(["cat-hardware"]);
        t["custom_fields"]["cf_kind"] = json!("Phone");
        t["group_id"] = json!(12);
        // No company is asked when the customer is a field of the ticket.
        let raw = raw_ticket(t).unwrap();
        let asks = c.details(std::slice::from_ref(&raw)).unwrap();
        assert_eq!(
            asks.iter().map(|a| a.url.as_str()).collect::<Vec<_>>(),
            [
                "https://acme.freshdesk.com/api/v2/agents?per_page=100",
                "https://acme.freshdesk.com/api/v2/tickets/43/time_entries?per_page=100",
            ]
        );
        let s = c
            .convert(
                &[raw],
                &[agents(), ok(json!([entry(21, 43, "00:30", true, "call")]))],
            )
            .unwrap()
            .remove(0)
            .unwrap();
        let v: Value = serde_json::from_str(&s.json).unwrap();
        assert_eq!(v["customer"], "riga-bakery");
        assert_eq!(v["category"], "hardware");
        assert_eq!(v["work"][0]["kind"], "phone");
        assert_eq!(v["fields"]["group"], 12);
        assert_eq!(v["fields"]["cf_kind"], "Phone");
        assert_eq!(v["resolved_at"], Value::Null, "an open ticket");
        assert_eq!(v["states"].as_array().unwrap().len(), 1);
        // A place Freshdesk does not have is refused, per ticket.
        map.kind_from = Some(Place::Activity);
        let c = Mapped::new(&config, &map);
        let e = convert_one(&c, ticket(44, 2, 9001), json!([])).unwrap_err();
        assert!(e.contains("Freshdesk has no Activity for the kind"), "{e}");
    }

    #[test]
    fn an_unknown_company_or_a_bad_entry_skips_the_ticket_with_a_reason() {
        let (config, map) = (config(), map());
        let c = Mapped::new(&config, &map);
        let raw = raw_ticket(ticket(45, 2, 9002)).unwrap();
        let out = c
            .convert(
                std::slice::from_ref(&raw),
                &[agents(), company(9002, "Nobody Ltd"), ok(json!([]))],
            )
            .unwrap();
        let e = out[0].as_ref().unwrap_err();
        assert!(
            e.contains("company `Nobody Ltd` has no customer key"),
            "{e}"
        );
        let e = convert_one(
            &c,
            ticket(46, 2, 9001),
            json!([entry(1, 46, "1h", true, "")]),
        )
        .unwrap_err();
        assert!(e.contains("time_spent `1h` is not hh:mm"), "{e}");
        let mut t = ticket(47, 2, 9001);
        t["company_id"] = Value::Null;
        let e = convert_one(&c, t, json!([])).unwrap_err();
        assert!(e.contains("ticket 47: no company"), "{e}");
        // An entry without its billable flag is not as documented: the batch fails.
        let mut e = entry(1, 46, "00:10", true, "");
        e.as_object_mut().unwrap().remove("billable");
        let raw = raw_ticket(ticket(46, 2, 9001)).unwrap();
        let err = c
            .convert(
                &[raw],
                &[agents(), company(9001, "Riga Bakery SIA"), ok(json!([e]))],
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("missing field `billable`"),
            "{err}"
        );
    }

    #[test]
    fn pages_follow_while_full_and_a_malformed_page_is_an_error() {
        let (config, map) = (config(), map());
        let c = Mapped::new(&config, &map);
        let first = c.changed(None, None).unwrap();
        assert_eq!(
            first.url,
            "https://acme.freshdesk.com/api/v2/tickets?updated_since=1970-01-01T00%3A00%3A00Z&order_by=updated_at&order_type=asc&per_page=2&page=1&include=requester,stats"
        );
        let mut r = first.clone();
        c.authorize(&mut r, None);
        // base64("fd-key:X")
        assert!(
            r.headers
                .contains(&("authorization".into(), "Basic ZmQta2V5Olg=".into()))
        );
        let later = c.changed(Some("2026-10-03T08:00:00Z"), Some("2")).unwrap();
        assert!(later.url.contains("updated_since=2026-10-03T08%3A00%3A00Z"));
        assert!(later.url.contains("&page=2&"));
        let full = ok(json!([ticket(1, 2, 9001), ticket(2, 2, 9001)]));
        let p = c.read_changed(None, &full).unwrap();
        assert_eq!(p.tickets.len(), 2);
        assert_eq!(p.tickets[0].updated_at, "2026-10-03T08:00:00Z");
        assert_eq!(p.next.as_deref(), Some("2"));
        let short = ok(json!([ticket(3, 2, 9001)]));
        assert_eq!(c.read_changed(Some("2"), &short).unwrap().next, None);
        // Freshdesk answers no page past 300.
        assert_eq!(c.read_changed(Some("300"), &full).unwrap().next, None);
        // A ticket without its status, or a page that is not a list, is an error.
        let mut broken = ticket(4, 2, 9001);
        broken.as_object_mut().unwrap().remove("status");
        let e = c.read_changed(None, &ok(json!([broken]))).unwrap_err();
        assert!(e.to_string().contains("missing field `status`"), "{e}");
        let e = c
            .read_changed(None, &ok(json!({"tickets": []})))
            .unwrap_err();
        assert!(
            e.to_string().contains("not as Freshdesk documents it"),
            "{e}"
        );
        let e = c
            .read_changed(
                None,
                &answer(401, json!({"code": "invalid_credentials", "message": "You have to be logged in to perform this action."})),
            )
            .unwrap_err();
        assert!(matches!(e, ConnectorError::Permanent(_)), "{e:?}");
        assert!(e.to_string().contains("You have to be logged in"), "{e}");
        let mut throttled = answer(429, json!({}));
        throttled.retry_after = Some(std::time::Duration::from_secs(17));
        assert!(matches!(
            c.read_changed(None, &throttled).unwrap_err(),
            ConnectorError::Throttled { retry_after, .. } if retry_after.as_secs() == 17
        ));
    }

    #[test]
    fn a_note_is_private_found_by_its_marker_and_keeps_the_tags() {
        let (config, map) = (config(), map());
        let c = Mapped::new(&config, &map);
        let note = Note {
            metric: "first_response".into(),
            ..crate::testing::breach_note(
                "desk",
                "42",
                "riga-bakery",
                "First response is late <1h>.",
            )
        };
        let key = "sla:desk:42:first_response:breach";
        let asks = c.find_note(&note).unwrap();
        assert_eq!(
            asks.iter().map(|a| a.url.as_str()).collect::<Vec<_>>(),
            [
                "https://acme.freshdesk.com/api/v2/tickets/42",
                "https://acme.freshdesk.com/api/v2/tickets/42/conversations?per_page=100&page=1",
            ]
        );
        let t = ok(json!({"id": 42, "tags": ["printer"], "status": 2}));
        let conv = |body: &str, private: bool| {
            json!({"id": 1, "body": body, "body_text": body, "private": private,
                   "incoming": false, "user_id": 7, "ticket_id": 42})
        };
        // A public reply quoting the marker is not the note.
        let marker = note_marker(key);
        let NoteLookup::Found(found) = c
            .read_found_note(key, &note, &[t.clone(), ok(json!([conv(&marker, false)]))])
            .unwrap()
        else {
            panic!("found")
        };
        assert_eq!((found.comment, found.tag), (false, false));
        let adds = c.add_note(key, &note, &found).unwrap();
        assert_eq!(adds.len(), 2);
        let (part, post) = &adds[0];
        assert_eq!(*part, NotePart::Comment);
        assert_eq!(
            (post.method, post.url.as_str()),
            (
                HttpMethod::Post,
                "https://acme.freshdesk.com/api/v2/tickets/42/notes"
            )
        );
        let body: Value = serde_json::from_slice(&post.body).unwrap();
        assert_eq!(body["private"], true);
        assert_eq!(
            body["body"],
            "<p><b>SLA first_response sla-breach</b></p><p>First response is late &lt;1h&gt;.</p><p>[contract-bridge sla:desk:42:first_response:breach]</p>"
        );
        let (part, put) = &adds[1];
        assert_eq!(*part, NotePart::Tag);
        assert_eq!(put.method, HttpMethod::Put);
        let body: Value = serde_json::from_slice(&put.body).unwrap();
        assert_eq!(body, json!({"tags": ["printer", "sla-breach"]}));
        // A full page without the marker asks for the next one.
        let full: Vec<Value> = (0..PER_PAGE).map(|_| conv("hello", true)).collect();
        let more = c
            .read_found_note(key, &note, &[t.clone(), ok(json!(full))])
            .unwrap();
        let NoteLookup::More(next) = more else {
            panic!("more")
        };
        assert!(next[0].url.ends_with("conversations?per_page=100&page=2"));
        let NoteLookup::Found(found) = c
            .read_found_note(
                key,
                &note,
                &[
                    ok(json!({"id": 42, "tags": ["sla-breach"]})),
                    ok(json!(full)),
                    ok(json!([conv(&format!("late {marker}"), true)])),
                ],
            )
            .unwrap()
        else {
            panic!("found")
        };
        assert!(found.complete());
        assert!(c.add_note(key, &note, &found).unwrap().is_empty());
        c.read_added(&answer(201, json!({"id": 5, "body": "x", "private": true})))
            .unwrap();
        assert!(c.read_added(&answer(400, json!({"description": "Validation failed", "errors": [{"field": "body", "message": "It should not be blank", "code": "missing_field"}]}))).unwrap_err().to_string().contains("body: It should not be blank"));
    }
}
