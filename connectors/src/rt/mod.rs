//! Request Tracker 5 (REST2): tickets by TicketSQL on `LastUpdated` (UTC
//! literals, `>=`: the newest second is read again and recognised as
//! unchanged), every field inlined by `fields=`; one history read per
//! ticket gives the status changes (`stalled` pauses the SLA clock), the
//! time (`TimeTaken` minutes per transaction, negative when an agent
//! lowered `TimeWorked`) and the first agent reply. RT's own SLA `Due` is
//! kept on the ticket as a cross-check of our clock. Comments are internal
//! notes; the multi-value custom field `Tags` holds the tags (a write
//! replaces its values, so the current ones are read first). RT sends no
//! webhooks.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounting::{encode, status_error};
use crate::helpdesk::{
    Announcement, Converted, FoundNote, HelpdeskApi, Mapped, NoteLookup, NotePart, Page, RawTicket,
    WebhookRefusal, id_text, note_marker, ticket_title,
};
use crate::{
    ConnectorError, HttpMethod, HttpRequest, HttpResponse, NewTicket, Note, Secret, TicketSnapshot,
};
use mapping::Place;

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RtConfig {
    /// The REST2 base, e.g. `http://127.0.0.1:8090/REST/2.0/`.
    pub url: String,
    pub token: Secret,
    /// Only tickets of this queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// The queue of the tickets the bridge opens (renewal suggestions);
    /// default: `queue`, else `General`.
    #[serde(default)]
    pub renewal_queue: Option<String>,
    #[serde(default = "default_rate")]
    pub requests_per_second: u32,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_rate() -> u32 {
    20
}
fn default_timeout_ms() -> u64 {
    30_000
}

const SYSTEM: &str = "rt";
const UNSET: &str = "1970-01-01T00:00:00Z";
const FIELDS: &str =
    "Subject,Status,Priority,Created,LastUpdated,Due,Resolved,Requestor,CustomFields";

fn check(r: &HttpResponse) -> Result<Value, ConnectorError> {
    if !(200..300).contains(&r.status) {
        let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
        let m = v["message"]
            .as_str()
            .map_or_else(|| r.body.chars().take(200).collect(), str::to_owned);
        if r.status == 401 {
            return Err(ConnectorError::Permanent(format!(
                "{SYSTEM}: HTTP 401: {m} (check the source's token)"
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

fn date(v: &Value) -> Value {
    match v.as_str() {
        Some(s) if s != UNSET && !s.is_empty() => Value::String(s.to_owned()),
        _ => Value::Null,
    }
}

/// A custom field's values on a ticket.
fn custom_field<'a>(ticket: &'a Value, name: &str) -> Vec<&'a str> {
    ticket["CustomFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|cf| cf["name"] == name)
        .flat_map(|cf| {
            cf["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
        })
        .collect()
}

impl Mapped<'_, RtConfig> {
    fn get(&self, path: String) -> HttpRequest {
        HttpRequest::json(
            HttpMethod::Get,
            format!("{}/{path}", self.url.trim_end_matches('/')),
            Vec::new(),
            self.timeout_ms,
        )
    }

    fn send(
        &self,
        method: HttpMethod,
        path: String,
        body: &Value,
    ) -> Result<HttpRequest, ConnectorError> {
        let body =
            serde_json::to_vec(body).map_err(|e| ConnectorError::Permanent(e.to_string()))?;
        Ok(HttpRequest::json(
            method,
            format!("{}/{path}", self.url.trim_end_matches('/')),
            body,
            self.timeout_ms,
        ))
    }

    fn history(&self, id: &str) -> HttpRequest {
        self.get(format!(
            "ticket/{}/history?per_page=100&fields=Type,Field,OldValue,NewValue,TimeTaken,Creator,Created,Data",
            encode(id)
        ))
    }

    fn canonical(&self, t: &RawTicket, history: &Value) -> Converted {
        let v = &t.value;
        let requester = v["Requestor"][0]["EmailAddress"]
            .as_str()
            .or(v["Requestor"][0]["id"].as_str())
            .unwrap_or_default();
        let domain = requester.rsplit('@').next().unwrap_or_default();
        let customer = self.map.customers.get(domain).ok_or_else(|| {
            format!("ticket {}: requestor domain `{domain}` has no customer key (add it under the source's `customers`)", t.id)
        })?;
        // RT reads the kind from the entry's subject and the category from
        // a custom field only: another place is refused, not ignored.
        let unsupported = |what: &str, place: &Option<Place>, ok: fn(&Place) -> bool| match place {
            Some(p) if !ok(p) => Err(format!(
                "ticket {}: RT has no such place for the {what} ({p:?}): RT reads it from {}",
                t.id,
                if what == "kind" {
                    "the entry's subject (`comment`)"
                } else {
                    "a custom field"
                }
            )),
            _ => Ok(()),
        };
        unsupported("kind", &self.map.kind_from, |p| matches!(p, Place::Comment))?;
        unsupported("category", &self.map.category_from, |p| {
            matches!(p, Place::Field(_))
        })?;
        let items: Vec<&Value> = history["items"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let mut states = vec![json!({"at": v["Created"], "state": "new"})];
        let mut first_response = Value::Null;
        let mut work: Vec<Value> = Vec::new();
        for tx in &items {
            let kind_of_tx = tx["Type"].as_str().unwrap_or_default();
            if kind_of_tx == "Status" {
                states.push(json!({"at": tx["Created"], "state": tx["NewValue"]}));
            }
            if kind_of_tx == "Correspond"
                && first_response.is_null()
                && tx["Creator"]["id"].as_str() != Some(requester)
            {
                first_response = tx["Created"].clone();
            }
            let minutes: i64 = tx["TimeTaken"]
                .as_str()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            if minutes > 0 {
                let subject = tx["Data"].as_str().unwrap_or_default();
                let kind = self.map.kind_of(subject);
                work.push(json!({
                    "id": format!("RT-{}-{}", t.id, id_text(&tx["id"]).unwrap_or_default()),
                    "at": tx["Created"],
                    "minutes": minutes,
                    "agent": tx["Creator"]["id"],
                    "kind": kind,
                    "note": subject.trim(),
                }));
            } else if minutes < 0 {
                // Time taken back: from the latest entries first.
                let mut left = -minutes;
                for w in work.iter_mut().rev() {
                    let m = w["minutes"].as_i64().unwrap_or(0);
                    let take = m.min(left);
                    w["minutes"] = json!(m - take);
                    left -= take;
                    if left == 0 {
                        break;
                    }
                }
            }
        }
        work.retain(|w| w["minutes"].as_i64().unwrap_or(0) > 0);
        let category = custom_field(v, self.map.field("category", "Category"))
            .first()
            .map_or(Value::Null, |c| json!(c));
        let tags: Vec<&str> = custom_field(v, self.map.field("tags", "Tags"));
        let snapshot = json!({
            "id": t.id,
            "customer": customer,
            "requester": requester,
            "title": v["Subject"],
            "priority": v["Priority"],
            "category": category,
            "tags": tags,
            "fields": self.extra_fields(json!({"rt_sla": v["SLA"], "rt_due": date(&v["Due"])}), |raw| {
                match custom_field(v, raw).as_slice() {
                    [] => Value::Null,
                    [one] => json!(one),
                    many => json!(many),
                }
            }),
            "created_at": v["Created"],
            "first_response_at": first_response,
            "resolved_at": date(&v["Resolved"]),
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

impl HelpdeskApi for Mapped<'_, RtConfig> {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn authorize(&self, request: &mut HttpRequest, _token: Option<&str>) {
        request.headers.push((
            "authorization".into(),
            format!("token {}", self.token.expose()),
        ));
    }

    fn changed(
        &self,
        cursor: Option<&str>,
        page: Option<&str>,
    ) -> Result<HttpRequest, ConnectorError> {
        // RT reads TicketSQL dates as UTC `YYYY-MM-DD HH:MM:SS`.
        let since = cursor.map_or_else(
            || "1970-01-01 00:00:00".to_owned(),
            |c| c.replace('T', " ").replace('Z', ""),
        );
        let mut query = format!("LastUpdated >= '{since}'");
        if let Some(q) = &self.queue {
            query = format!("Queue = '{}' AND {query}", q.replace('\'', ""));
        }
        Ok(self.get(format!(
            "tickets?query={}&orderby=LastUpdated&order=ASC&per_page=100&page={}&fields={FIELDS}&fields[Requestor]=EmailAddress",
            encode(&query),
            page.unwrap_or("1")
        )))
    }

    fn read_changed(&self, page: Option<&str>, r: &HttpResponse) -> Result<Page, ConnectorError> {
        let v = check(r)?;
        let tickets = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some(RawTicket {
                    id: id_text(&t["id"])?,
                    updated_at: t["LastUpdated"].as_str().unwrap_or_default().to_owned(),
                    value: t.clone(),
                })
            })
            .collect();
        let next = v
            .get("next_page")
            .filter(|n| !n.is_null())
            .map(|_| (page.and_then(|p| p.parse::<u32>().ok()).unwrap_or(1) + 1).to_string());
        Ok(Page { tickets, next })
    }

    fn ticket(&self, id: &str) -> Result<HttpRequest, ConnectorError> {
        Ok(self.get(format!(
            "ticket/{}?fields={FIELDS}&fields[Requestor]=EmailAddress",
            encode(id)
        )))
    }

    fn read_ticket(&self, r: &HttpResponse) -> Result<RawTicket, ConnectorError> {
        let t = check(r)?;
        Ok(RawTicket {
            id: id_text(&t["id"])
                .ok_or_else(|| ConnectorError::Transient("rt: a ticket without an id".into()))?,
            updated_at: t["LastUpdated"].as_str().unwrap_or_default().to_owned(),
            value: t,
        })
    }

    fn details(&self, tickets: &[RawTicket]) -> Result<Vec<HttpRequest>, ConnectorError> {
        Ok(tickets.iter().map(|t| self.history(&t.id)).collect())
    }

    fn convert(
        &self,
        tickets: &[RawTicket],
        details: &[HttpResponse],
    ) -> Result<Vec<Converted>, ConnectorError> {
        tickets
            .iter()
            .zip(details)
            .map(|(t, h)| Ok(self.canonical(t, &check(h)?)))
            .collect()
    }

    fn find_note(&self, note: &Note) -> Result<Vec<HttpRequest>, ConnectorError> {
        Ok(vec![
            self.history(&note.ticket),
            self.get(format!("ticket/{}", encode(&note.ticket))),
        ])
    }

    fn read_found_note(
        &self,
        key: &str,
        note: &Note,
        answers: &[HttpResponse],
    ) -> Result<NoteLookup, ConnectorError> {
        let [history, ticket] = answers else {
            return Err(ConnectorError::Transient(
                "rt: the note lookup is incomplete".into(),
            ));
        };
        let marker = note_marker(key);
        let comment = check(history)?["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|tx| {
                tx["Type"] == "Comment" && tx["Data"].as_str().is_some_and(|d| d.contains(&marker))
            });
        let ticket = check(ticket)?;
        let tags = custom_field(&ticket, self.map.field("tags", "Tags"));
        Ok(NoteLookup::Found(FoundNote {
            comment,
            tag: tags.contains(&note.tag.as_str()),
            context: json!(tags),
        }))
    }

    fn add_note(
        &self,
        key: &str,
        note: &Note,
        found: &FoundNote,
    ) -> Result<Vec<(NotePart, HttpRequest)>, ConnectorError> {
        let mut tags: Vec<Value> = found.context.as_array().cloned().unwrap_or_default();
        if !tags.iter().any(|t| *t == note.tag.as_str()) {
            tags.push(json!(note.tag));
        }
        let id = encode(&note.ticket);
        let mut out = Vec::new();
        if !found.comment {
            out.push((
                NotePart::Comment,
                self.send(
                    HttpMethod::Post,
                    format!("ticket/{id}/comment"),
                    // The subject carries the marker: RT lists subjects in the history.
                    &json!({"Subject": format!("{} {}", note.subject(), note_marker(key)),
                            "Content": note.text, "ContentType": "text/plain"}),
                )?,
            ));
        }
        if !found.tag {
            out.push((
                NotePart::Tag,
                self.send(
                    HttpMethod::Put,
                    format!("ticket/{id}"),
                    &json!({"CustomFields": {self.map.field("tags", "Tags"): tags}}),
                )?,
            ));
        }
        Ok(out)
    }

    fn read_added(&self, r: &HttpResponse) -> Result<(), ConnectorError> {
        check(r).map(|_| ())
    }

    fn find_ticket(&self, key: &str, _ticket: &NewTicket) -> Result<HttpRequest, ConnectorError> {
        // TicketSQL reads the database: a ticket created a moment ago is found.
        let query = format!("Subject LIKE '{}'", note_marker(key).replace('\'', ""));
        Ok(self.get(format!(
            "tickets?query={}&fields=Subject&per_page=100",
            encode(&query)
        )))
    }

    fn read_found_ticket(
        &self,
        key: &str,
        r: &HttpResponse,
    ) -> Result<Option<String>, ConnectorError> {
        let marker = note_marker(key).replace('\'', "");
        Ok(check(r)?["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["Subject"].as_str().is_some_and(|s| s.contains(&marker)))
            .and_then(|t| id_text(&t["id"])))
    }

    fn create_ticket(&self, key: &str, ticket: &NewTicket) -> Result<HttpRequest, ConnectorError> {
        let queue = self
            .renewal_queue
            .as_deref()
            .or(self.queue.as_deref())
            .unwrap_or("General");
        let mut body = json!({
            "Queue": queue,
            "Subject": ticket_title(key, ticket).replace('\'', ""),
            "Content": ticket.text,
            "ContentType": "text/plain",
            "CustomFields": {self.map.field("tags", "Tags"): [ticket.tag]},
        });
        if let Some(r) = &ticket.requester {
            body["Requestor"] = json!(r);
        }
        self.send(HttpMethod::Post, "ticket".into(), &body)
    }

    fn read_created_ticket(&self, r: &HttpResponse) -> Result<String, ConnectorError> {
        id_text(&check(r)?["id"])
            .ok_or_else(|| ConnectorError::Transient(format!("{SYSTEM}: a ticket without an id")))
    }

    fn webhook(
        &self,
        _headers: &[(String, String)],
        _body: &[u8],
        _secret: &str,
    ) -> Result<Announcement, WebhookRefusal> {
        Err(WebhookRefusal::Malformed(
            "Request Tracker sends no webhooks: poll it".into(),
        ))
    }
}

impl crate::helpdesk::HelpdeskConfig for RtConfig {
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
    use crate::testing::answer;

    #[test]
    fn a_renewal_ticket_is_looked_for_by_subject_then_created_in_its_queue() {
        let config: RtConfig = serde_json::from_value(json!({
            "url": "http://127.0.0.1:8090/REST/2.0/",
            "token": "t",
            "queue": "Support",
        }))
        .unwrap();
        let map = SourceMap::default();
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let key = "renewal:valby:card:used-up";
        let t = NewTicket {
            source: "rt".into(),
            customer: "valby".into(),
            requester: Some("it@valby.example".into()),
            title: "Renewal: card of valby used up".into(),
            text: "Suggest a new KLIPPEKORT-10.".into(),
            tag: "prepaid-renewal".into(),
        };
        let find = c.find_ticket(key, &t).unwrap();
        assert_eq!(find.method, HttpMethod::Get);
        assert_eq!(
            find.url,
            "http://127.0.0.1:8090/REST/2.0/tickets?query=Subject+LIKE+%27%5Bcontract-bridge+renewal%3Avalby%3Acard%3Aused-up%5D%27&fields=Subject&per_page=100"
        );
        let create = c.create_ticket(key, &t).unwrap();
        assert_eq!(
            (create.method, create.url.as_str()),
            (HttpMethod::Post, "http://127.0.0.1:8090/REST/2.0/ticket")
        );
        let body: Value = serde_json::from_slice(&create.body).unwrap();
        assert_eq!(
            body,
            json!({
                "Queue": "Support",
                "Subject": "Renewal: card of valby used up [contract-bridge renewal:valby:card:used-up]",
                "Requestor": "it@valby.example",
                "Content": "Suggest a new KLIPPEKORT-10.",
                "ContentType": "text/plain",
                "CustomFields": {"Tags": ["prepaid-renewal"]},
            })
        );
        let found = answer(
            200,
            json!({"items": [
                {"id": 3, "Subject": "x [contract-bridge renewal:valby:card:used-up-2]"},
                {"id": "4", "Subject": body["Subject"]},
            ]}),
        );
        assert_eq!(
            c.read_found_ticket(key, &found).unwrap().as_deref(),
            Some("4")
        );
        assert_eq!(
            c.read_found_ticket(key, &answer(200, json!({"items": []})))
                .unwrap(),
            None
        );
        let created = answer(201, json!({"id": 5, "type": "ticket", "_url": "…"}));
        assert_eq!(c.read_created_ticket(&created).unwrap(), "5");
    }
}
