//! Zammad: tickets by incremental search on `updated_at`, paged until an
//! empty page, with names (state, priority, organisation, customer) read
//! from the search's asset maps; the state history per ticket (the SLA
//! clock pauses on it); logged time from the monthly
//! `time_accounting/log/by_activity` report, one request per month for
//! every ticket of the batch; internal notes (never with `time_unit`, which
//! would bill the note) and tags; the Trigger webhook, signed
//! `X-Hub-Signature: sha1=…` and de-duplicated on `X-Zammad-Delivery`.

use std::collections::BTreeMap;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::accounting::{encode, status_error};
use crate::helpdesk::{
    Announcement, Converted, HelpdeskApi, Mapped, Page, RawTicket, WebhookRefusal, header, id_text,
    note_marker, ticket_title, verify_hub_signature,
};
use crate::{
    ConnectorError, HttpMethod, HttpRequest, HttpResponse, NewTicket, Note, Secret, TicketSnapshot,
};

#[derive(Clone, Debug, Deserialize)]
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
/// months, e.g. an old ticket worked on again).
fn per_ticket(tickets: &[RawTicket], months: usize) -> bool {
    tickets.len() < months
}

/// Per-ticket time records in the monthly report's row shape, with their ids.
fn records_as_rows(ticket: &str, records: &Value, types: &Value, users: &Value) -> Vec<Value> {
    let type_name = |id: &Value| -> Value {
        types
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| id_text(&t["id"]).is_some() && id_text(&t["id"]) == id_text(id))
            .map_or(Value::Null, |t| t["name"].clone())
    };
    records
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let by = id_text(&r["created_by_id"]).unwrap_or_default();
            let user = &users[&by];
            let agent = match (user["firstname"].as_str(), user["lastname"].as_str()) {
                (Some(f), Some(l)) => format!("{f} {l}").trim().to_owned(),
                _ => format!("user {by}"),
            };
            json!({
                "id": r["id"],
                "ticket": {"id": ticket},
                "time_unit": r["time_unit"],
                "type": type_name(&r["type_id"]),
                "agent": agent,
                "created_at": r["created_at"],
            })
        })
        .collect()
}

/// `YYYY-MM` months from the earliest creation to the latest change of a batch.
fn months(tickets: &[RawTicket]) -> Vec<(i32, u32)> {
    let ym = |s: &str| -> Option<(i32, u32)> {
        Some((s.get(0..4)?.parse().ok()?, s.get(5..7)?.parse().ok()?))
    };
    let first = tickets
        .iter()
        .filter_map(|t| ym(t.value["created_at"].as_str()?))
        .min();
    let last = tickets.iter().filter_map(|t| ym(&t.updated_at)).max();
    let (Some(mut m), Some(last)) = (first, last) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while m <= last && out.len() < 240 {
        out.push(m);
        m = if m.1 == 12 {
            (m.0 + 1, 1)
        } else {
            (m.0, m.1 + 1)
        };
    }
    out
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

    fn canonical(&self, t: &RawTicket, history: &Value, work: &[&Value]) -> Converted {
        let v = &t.value;
        let ticket = &v["ticket"];
        let organization = v["organization"].as_str().unwrap_or_default();
        let customer = self.map.customers.get(organization).ok_or_else(|| {
            format!(
                "ticket {}: organization `{organization}` has no customer key (add it under the source's `customers`)",
                t.id
            )
        })?;
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
        let first = changes
            .first()
            .map_or(v["state"].as_str().unwrap_or("new"), |c| c.1);
        let mut states = vec![json!({"at": created, "state": first})];
        states.extend(
            changes
                .iter()
                .map(|(at, _, to)| json!({"at": at, "state": to})),
        );
        let tags = tags_from_history(history);
        let state = v["state"].as_str().unwrap_or_default();
        let resolved = if matches!(state, "closed" | "merged") {
            ticket["close_at"].clone()
        } else {
            Value::Null
        };
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        let unit = self.map.minutes_per_unit;
        let work: Vec<Value> = work
            .iter()
            .map(|row| {
                let units: Decimal = row["time_unit"].as_str().and_then(|u| u.parse().ok()).or_else(|| {
                    row["time_unit"].as_f64().and_then(|f| Decimal::try_from(f).ok())
                }).unwrap_or_default();
                let activity = row["type"].as_str().unwrap_or_default();
                let agent = row["agent"].as_str().unwrap_or_default();
                let at = row["created_at"].as_str().unwrap_or_default();
                // The monthly report has no record id: one is derived from what the row says.
                let id = match id_text(&row["id"]) {
                    Some(record) => format!("Z-{}-{record}", t.id),
                    None => {
                        let basis = format!("{}|{at}|{agent}|{units}|{activity}", t.id);
                        let n = seen.entry(basis.clone()).or_default();
                        *n += 1;
                        format!("Z-{}-{}", t.id, &hex::encode(Sha256::digest(format!("{basis}|{n}")))[..10])
                    }
                };
                let minutes = (units * unit).normalize();
                json!({
                    "id": id,
                    "at": at,
                    "minutes": serde_json::from_str::<Value>(&minutes.to_string()).unwrap_or(Value::Null),
                    "agent": agent,
                    "kind": self.map.kind_of(activity),
                    "note": activity,
                })
            })
            .collect();
        let snapshot = json!({
            "id": t.id,
            "customer": customer,
            "requester": v["requester"],
            "title": ticket["title"],
            "priority": v["priority"],
            "category": ticket[self.map.field("category", "category")],
            "tags": tags,
            "fields": self.extra_fields(json!({"number": ticket["number"]}), |raw| ticket[raw].clone()),
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
            tickets.push(RawTicket {
                id: id.clone(),
                updated_at: t["updated_at"].as_str().unwrap_or_default().to_owned(),
                value: json!({
                    "ticket": t,
                    "created_at": t["created_at"],
                    "state": name("TicketState", &t["state_id"], "name"),
                    "priority": name("TicketPriority", &t["priority_id"], "name"),
                    "organization": name("Organization", &t["organization_id"], "name"),
                    "requester": name("User", &t["customer_id"], "email"),
                }),
            });
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
        let id = id_text(&t["id"])
            .ok_or_else(|| ConnectorError::Transient("zammad: a ticket without an id".into()))?;
        Ok(RawTicket {
            id,
            updated_at: t["updated_at"].as_str().unwrap_or_default().to_owned(),
            value: json!({
                "created_at": t["created_at"],
                "state": t["state"],
                "priority": t["priority"],
                "organization": t["organization"],
                "requester": t["customer"],
                "ticket": t,
            }),
        })
    }

    fn details(&self, tickets: &[RawTicket]) -> Result<Vec<HttpRequest>, ConnectorError> {
        let mut out: Vec<HttpRequest> = tickets
            .iter()
            .map(|t| self.get(format!("/api/v1/ticket_history/{}", encode(&t.id))))
            .collect();
        let months = months(tickets);
        if per_ticket(tickets, months.len()) {
            out.push(self.get("/api/v1/time_accounting/types".into()));
            out.extend(tickets.iter().map(|t| {
                self.get(format!(
                    "/api/v1/tickets/{}/time_accountings",
                    encode(&t.id)
                ))
            }));
        } else {
            out.extend(months.into_iter().map(|(y, m)| {
                self.get(format!("/api/v1/time_accounting/log/by_activity/{y}/{m}"))
            }));
        }
        Ok(out)
    }

    fn convert(
        &self,
        tickets: &[RawTicket],
        details: &[HttpResponse],
    ) -> Result<Vec<Converted>, ConnectorError> {
        let (histories, reports) = details.split_at(tickets.len().min(details.len()));
        let mut work: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let histories: Vec<Value> = histories.iter().map(check).collect::<Result<_, _>>()?;
        if per_ticket(tickets, months(tickets).len()) {
            let (types, records) = reports
                .split_first()
                .ok_or_else(|| ConnectorError::Transient(format!("{SYSTEM}: no answer")))?;
            let types = check(types)?;
            for ((t, r), h) in tickets.iter().zip(records).zip(&histories) {
                let rows = records_as_rows(&t.id, &check(r)?, &types, &h["assets"]["User"]);
                work.insert(t.id.clone(), rows);
            }
        } else {
            for r in reports {
                for row in check(r)?.as_array().into_iter().flatten() {
                    if let Some(id) = id_text(&row["ticket"]["id"]) {
                        work.entry(id).or_default().push(row.clone());
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(tickets.len());
        for (t, history) in tickets.iter().zip(&histories) {
            let rows: Vec<&Value> = work
                .get(&t.id)
                .map(|w| w.iter().collect())
                .unwrap_or_default();
            out.push(self.canonical(t, history, &rows));
        }
        Ok(out)
    }

    fn find_note(&self, note: &Note) -> Result<Vec<HttpRequest>, ConnectorError> {
        Ok(vec![self.get(format!(
            "/api/v1/ticket_articles/by_ticket/{}",
            encode(&note.ticket)
        ))])
    }

    fn read_found_note(
        &self,
        key: &str,
        answers: &[HttpResponse],
    ) -> Result<Option<Value>, ConnectorError> {
        let marker = note_marker(key);
        let r = answers
            .first()
            .ok_or_else(|| ConnectorError::Transient(format!("{SYSTEM}: no answer")))?;
        let present = check(r)?
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["body"].as_str().is_some_and(|b| b.contains(&marker)));
        Ok((!present).then_some(Value::Null))
    }

    fn add_note(
        &self,
        key: &str,
        note: &Note,
        _found: &Value,
    ) -> Result<Vec<HttpRequest>, ConnectorError> {
        let ticket: i64 = note.ticket.parse().map_err(|_| {
            ConnectorError::Permanent(format!("zammad: `{}` is not a ticket id", note.ticket))
        })?;
        Ok(vec![
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
            self.post(
                "/api/v1/tags/add",
                &json!({"item": note.tag, "object": "Ticket", "o_id": ticket}),
            )?,
        ])
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
            }))
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
        id_text(&check(r)?["id"])
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
        Ok(Announcement {
            delivery,
            tickets: vec![id],
            deleted: Vec::new(),
        })
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

    #[test]
    fn a_searched_ticket_becomes_a_canonical_one_with_its_history_and_time() {
        let (config, map) = (config(), map());
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let page = c.read_changed(None, &fixture("search.json")).unwrap();
        assert_eq!(page.next.as_deref(), Some("2"));
        assert_eq!(page.tickets.len(), 1);
        let details = c.details(&page.tickets).unwrap();
        assert_eq!(details.len(), 2, "one history, one monthly report");
        assert!(
            details[1]
                .url
                .ends_with("/api/v1/time_accounting/log/by_activity/2020/11")
        );
        let converted = c
            .convert(
                &page.tickets,
                &[fixture("history.json"), fixture("by_activity.json")],
            )
            .unwrap();
        let snapshot = converted[0].as_ref().unwrap();
        let v: Value = serde_json::from_str(&snapshot.json).unwrap();
        assert_eq!(snapshot.customer, "awesome");
        assert_eq!(v["priority"], "2 normal");
        assert_eq!(v["category"], "network");
        assert_eq!(v["requester"], "nicole.braun@zammad.org");
        assert_eq!(v["states"][0]["state"], "new");
        assert_eq!(v["states"][1]["state"], "open");
        assert_eq!(
            v["work"].as_array().unwrap().len(),
            1,
            "only this ticket's rows"
        );
        assert_eq!(v["work"][0]["minutes"], 15);
        assert_eq!(v["work"][0]["kind"], "remote");
    }

    #[test]
    fn an_old_ticket_reads_its_own_time_records_and_its_tags_from_history() {
        let (config, mut map) = (config(), map());
        map.minutes_per_unit = Decimal::from(60);
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let mut page = c.read_changed(None, &fixture("search.json")).unwrap();
        // Created in September, worked on in November: three monthly
        // reports, or one request for its own records (and the types).
        page.tickets[0].value["created_at"] = json!("2020-09-13T14:34:35.333Z");
        page.tickets[0].value["ticket"]["created_at"] = json!("2020-09-13T14:34:35.333Z");
        let details = c.details(&page.tickets).unwrap();
        let paths: Vec<&str> = details
            .iter()
            .map(|r| r.url.trim_start_matches("https://desk.example.com"))
            .collect();
        assert_eq!(
            paths,
            [
                "/api/v1/ticket_history/81",
                "/api/v1/time_accounting/types",
                "/api/v1/tickets/81/time_accountings"
            ]
        );
        let converted = c
            .convert(
                &page.tickets,
                &[
                    fixture("history_tags.json"),
                    fixture("time_accounting_types.json"),
                    fixture("time_accountings.json"),
                ],
            )
            .unwrap();
        let v: Value = serde_json::from_str(&converted[0].as_ref().unwrap().json).unwrap();
        assert_eq!(v["tags"], json!(["vip"]), "remote was added, then removed");
        assert_eq!(v["work"][0]["id"], "Z-81-6");
        assert_eq!(v["work"][0]["minutes"], 900, "15 units of an hour");
        assert_eq!(v["work"][0]["agent"], "Agent One");
        assert_eq!(v["work"][0]["kind"], "remote");
        assert_eq!(v["work"][1]["minutes"], 90);
        assert_eq!(v["work"][1]["kind"], "onsite", "type 4 is On site");
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
        let converted = c
            .convert(
                &page.tickets,
                &[fixture("history.json"), fixture("by_activity.json")],
            )
            .unwrap();
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
            "7": {"id": 7, "title": "Renewal [contract-bridge renewal:awesome:card:used-up-2]"},
            "9": {"id": 9, "title": body["title"]},
        }}}));
        assert_eq!(
            c.read_found_ticket(key, &found).unwrap().as_deref(),
            Some("9")
        );
        let none = ok(json!({"tickets": [7], "assets": {"Ticket": {
            "7": {"id": 7, "title": "Renewal [contract-bridge renewal:awesome:card:used-up-2]"},
        }}}));
        assert_eq!(c.read_found_ticket(key, &none).unwrap(), None);
        let created = ok(json!({"id": 12, "number": "31012"}));
        assert_eq!(c.read_created_ticket(&created).unwrap(), "12");
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
