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
//!
//! Every answer and every body written is a typed struct in
//! [`transformers`], which also makes the canonical ticket: a missing or
//! renamed field is an error naming it.

mod transformers;

use crate::Result;
use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::accounting::{encode, status_error};
use crate::helpdesk::{
    Announcement, Converted, FoundNote, HelpdeskApi, Mapped, NoteLookup, NotePart, Page, RawTicket,
    RestApi, WebhookRefusal, note_marker, ticket_title,
};
use crate::{ConnectorError, HttpMethod, HttpRequest, HttpResponse, NewTicket, Note, Secret};
use transformers::{
    Created, CustomFieldsUpdate, ErrorBody, Listed, Listing, NewComment, Titled, Transaction,
    WithCustomFields, custom_field, parse, read,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
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
    #[serde(default = "crate::defaults::per_second::<20>")]
    pub requests_per_second: u32,
    #[serde(default = "crate::defaults::timeout_ms::<30_000>")]
    pub timeout_ms: u64,
}

const SYSTEM: &str = "rt";
const UNSET: &str = "1970-01-01T00:00:00Z";
const FIELDS: &str =
    "Subject,Status,Priority,Created,LastUpdated,Due,Resolved,Requestor,CustomFields";

fn check(r: &HttpResponse) -> Result<Value> {
    if !(200..300).contains(&r.status) {
        let m = serde_json::from_str::<ErrorBody>(&r.body)
            .map_or_else(|_| r.body.chars().take(200).collect(), |e| e.message);
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

impl RestApi for Mapped<'_, RtConfig> {
    fn base(&self) -> String {
        format!("{}/", self.url.trim_end_matches('/'))
    }

    fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }
}

impl Mapped<'_, RtConfig> {
    fn history(&self, id: &str) -> HttpRequest {
        self.get(format!(
            "ticket/{}/history?per_page=100&fields=Type,Field,OldValue,NewValue,TimeTaken,Creator,Created,Data",
            encode(id)
        ))
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

    fn changed(&self, cursor: Option<&str>, page: Option<&str>) -> Result<HttpRequest> {
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

    fn read_changed(&self, page: Option<&str>, r: &HttpResponse) -> Result<Page> {
        let list: Listing<Value> = read(check(r)?, "the ticket search")?;
        let tickets = list
            .items
            .into_iter()
            .map(Listed::raw)
            .collect::<Result<_, _>>()?;
        let next = list
            .next_page
            .map(|_| (page.and_then(|p| p.parse::<u32>().ok()).unwrap_or(1) + 1).to_string());
        Ok(Page { tickets, next })
    }

    fn ticket(&self, id: &str) -> Result<HttpRequest> {
        Ok(self.get(format!(
            "ticket/{}?fields={FIELDS}&fields[Requestor]=EmailAddress",
            encode(id)
        )))
    }

    fn read_ticket(&self, r: &HttpResponse) -> Result<RawTicket> {
        Listed::raw(check(r)?)
    }

    fn details(&self, tickets: &[RawTicket]) -> Result<Vec<HttpRequest>> {
        Ok(tickets.iter().map(|t| self.history(&t.id)).collect())
    }

    fn convert(&self, tickets: &[RawTicket], details: &[HttpResponse]) -> Result<Vec<Converted>> {
        tickets
            .iter()
            .zip(details)
            .map(|(t, h)| {
                // A history not as documented fails its ticket, not the batch.
                let history = parse::<Listing<Transaction>>(check(h)?, "the history");
                Ok(history
                    .map_err(|e| format!("ticket {}: {e}", t.id))
                    .and_then(|h| self.canonical(t, &h.items)))
            })
            .collect()
    }

    fn find_note(&self, note: &Note) -> Result<Vec<HttpRequest>> {
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
    ) -> Result<NoteLookup> {
        let [history, ticket] = answers else {
            return Err(ConnectorError::Transient(
                "rt: the note lookup is incomplete".into(),
            ));
        };
        let marker = note_marker(key);
        let history: Listing<Transaction> = read(check(history)?, "the history")?;
        let comment = history.items.iter().any(|tx| {
            tx.kind == "Comment" && tx.data.as_deref().is_some_and(|d| d.contains(&marker))
        });
        let ticket: WithCustomFields = read(check(ticket)?, "the ticket")?;
        let tags = custom_field(&ticket.custom_fields, self.map.field("tags", "Tags"));
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
    ) -> Result<Vec<(NotePart, HttpRequest)>> {
        let mut tags: Vec<String> = Vec::<String>::deserialize(&found.context).map_err(|e| {
            ConnectorError::Permanent(format!("{SYSTEM}: the ticket's tags as found: {e}"))
        })?;
        if !tags.contains(&note.tag) {
            tags.push(note.tag.clone());
        }
        let id = encode(&note.ticket);
        let mut out = Vec::new();
        if !found.comment {
            out.push((
                NotePart::Comment,
                self.send_sorted(
                    HttpMethod::Post,
                    format!("ticket/{id}/comment"),
                    // The subject carries the marker: RT lists subjects in the history.
                    &NewComment {
                        subject: format!("{} {}", note.subject(), note_marker(key)),
                        content: &note.text,
                        content_type: "text/plain",
                    },
                )?,
            ));
        }
        if !found.tag {
            out.push((
                NotePart::Tag,
                self.send_sorted(
                    HttpMethod::Put,
                    format!("ticket/{id}"),
                    &CustomFieldsUpdate {
                        custom_fields: BTreeMap::from([(
                            self.map.field("tags", "Tags").to_owned(),
                            tags,
                        )]),
                    },
                )?,
            ));
        }
        Ok(out)
    }

    fn read_added(&self, r: &HttpResponse) -> Result<()> {
        // A list of messages (`["Comments added"]`): only its status counts.
        read::<IgnoredAny>(check(r)?, "the answer to a write").map(|_| ())
    }

    fn find_ticket(&self, key: &str, _ticket: &NewTicket) -> Result<HttpRequest> {
        // TicketSQL reads the database: a ticket created a moment ago is found.
        let query = format!("Subject LIKE '{}'", note_marker(key).replace('\'', ""));
        Ok(self.get(format!(
            "tickets?query={}&fields=Subject&per_page=100",
            encode(&query)
        )))
    }

    fn read_found_ticket(&self, key: &str, r: &HttpResponse) -> Result<Option<String>> {
        let marker = note_marker(key).replace('\'', "");
        let found: Listing<Titled> = read(check(r)?, "the ticket search")?;
        Ok(found
            .items
            .into_iter()
            .find(|t| t.subject.contains(&marker))
            .map(|t| t.id.0))
    }

    fn create_ticket(&self, key: &str, ticket: &NewTicket) -> Result<HttpRequest> {
        let queue = self
            .renewal_queue
            .as_deref()
            .or(self.queue.as_deref())
            .unwrap_or("General");
        let body = transformers::NewTicket {
            queue,
            subject: ticket_title(key, ticket).replace('\'', ""),
            content: &ticket.text,
            content_type: "text/plain",
            custom_fields: BTreeMap::from([(
                self.map.field("tags", "Tags").to_owned(),
                vec![ticket.tag.clone()],
            )]),
            requestor: ticket.requester.as_deref(),
        };
        self.send_sorted(HttpMethod::Post, "ticket".into(), &body)
    }

    fn read_created_ticket(&self, r: &HttpResponse) -> Result<String> {
        Ok(read::<Created>(check(r)?, "the created ticket")?.id.0)
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
        let c = Mapped::new(&config, &map);
        let (key, t) = crate::testing::renewal_ticket("valby", "it@valby.example");
        let find = c.find_ticket(&key, &t).unwrap();
        assert_eq!(find.method, HttpMethod::Get);
        assert_eq!(
            find.url,
            "http://127.0.0.1:8090/REST/2.0/tickets?query=Subject+LIKE+%27%5Bcontract-bridge+renewal%3Avalby%3Acard%3Aused-up%5D%27&fields=Subject&per_page=100"
        );
        let create = c.create_ticket(&key, &t).unwrap();
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
            c.read_found_ticket(&key, &found).unwrap().as_deref(),
            Some("4")
        );
        assert_eq!(
            c.read_found_ticket(&key, &answer(200, json!({"items": []})))
                .unwrap(),
            None
        );
        let created = answer(201, json!({"id": 5, "type": "ticket", "_url": "…"}));
        assert_eq!(c.read_created_ticket(&created).unwrap(), "5");
    }
}
