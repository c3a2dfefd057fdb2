//! What every helpdesk connector does, as requests the daemon sends and
//! answers it reads: list the tickets changed since a cursor, page by page;
//! fetch what a batch of them needs besides (time entries, state history);
//! turn them into canonical tickets (the offline export's ticket object);
//! verify a webhook; put an internal note and a tag on a ticket, once; and
//! open a ticket of the bridge's own, once (found again by its marker).
//!
//! The daemon runs the steps (`src/daemon/helpdesk.rs`); a connector owns
//! no HTTP client, no retry and no clock.

use crate::Result;
pub use crate::delivery::{WebhookRefusal, header};
use crate::{ConnectorError, HttpRequest, HttpResponse, NewTicket, Note, TicketSnapshot};

pub use mapping::SourceMap;

/// A helpdesk's configuration (`sources.NAME` of `type` this helpdesk), as
/// the registry in `lib.rs` knows every helpdesk: every configuration
/// whose [`Mapped`] is a [`HelpdeskApi`] is one.
pub trait HelpdeskConfig {
    /// The API, read with the source's `sources.<name>` mapping section.
    fn api<'a>(&'a self, map: &'a SourceMap) -> Box<dyn HelpdeskApi + 'a>;
}

impl<C> HelpdeskConfig for C
where
    for<'a> Mapped<'a, C>: HelpdeskApi,
{
    fn api<'a>(&'a self, map: &'a SourceMap) -> Box<dyn HelpdeskApi + 'a> {
        Box::new(Mapped::new(self, map))
    }
}

/// A helpdesk's connection (from the daemon's configuration) read with
/// its `sources.<name>` section of the mapping: what the fields mean.
pub struct Mapped<'a, C> {
    pub config: &'a C,
    pub map: &'a SourceMap,
}

impl<'a, C> Mapped<'a, C> {
    pub fn new(config: &'a C, map: &'a SourceMap) -> Self {
        Mapped { config, map }
    }

    /// The ticket's `fields`: what the connector keeps of its own, and each
    /// field the mapping names, read from the helpdesk's field by `read`.
    pub fn extra_fields(
        &self,
        own: serde_json::Value,
        read: impl Fn(&str) -> serde_json::Value,
    ) -> serde_json::Value {
        let mut fields = own;
        for (name, raw) in self.map.extra_fields() {
            fields[name] = read(raw);
        }
        fields
    }
}

impl<C> std::ops::Deref for Mapped<'_, C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.config
    }
}

/// A helpdesk's JSON REST API: its requests, by their path.
pub trait RestApi {
    /// What a request's path is appended to.
    fn base(&self) -> String;

    fn timeout_ms(&self) -> u64;

    fn get(&self, path: String) -> HttpRequest {
        HttpRequest::json(
            crate::HttpMethod::Get,
            format!("{}{path}", self.base()),
            Vec::new(),
            self.timeout_ms(),
        )
    }

    /// A request carrying `body` as JSON, its fields in their declared order.
    fn send_json(
        &self,
        method: crate::HttpMethod,
        path: String,
        body: &impl serde::Serialize,
    ) -> Result<HttpRequest> {
        let body =
            serde_json::to_vec(body).map_err(|e| ConnectorError::Permanent(e.to_string()))?;
        Ok(HttpRequest::json(
            method,
            format!("{}{path}", self.base()),
            body,
            self.timeout_ms(),
        ))
    }

    /// [`send_json`](Self::send_json) through a JSON value: its keys
    /// sorted, as RT's and Freshdesk's bodies always were.
    fn send_sorted(
        &self,
        method: crate::HttpMethod,
        path: String,
        body: &impl serde::Serialize,
    ) -> Result<HttpRequest> {
        let sorted =
            serde_json::to_value(body).map_err(|e| ConnectorError::Permanent(e.to_string()))?;
        self.send_json(method, path, &sorted)
    }
}

/// A ticket as the helpdesk listed it, before its details are fetched.
#[derive(Clone, Debug)]
pub struct RawTicket {
    pub id: String,
    /// When it last changed, as the helpdesk orders its cursor.
    pub updated_at: String,
    /// The connector's own view of it (the ticket with its names resolved).
    pub value: serde_json::Value,
}

/// One page of changed tickets.
#[derive(Debug, Default)]
pub struct Page {
    pub tickets: Vec<RawTicket>,
    /// The next page's token; none: the sweep is over.
    pub next: Option<String>,
}

/// What a verified webhook announces.
#[derive(Debug)]
pub struct Announcement {
    /// The helpdesk's delivery id: a repeated delivery is ignored.
    pub delivery: String,
    /// Tickets to read again.
    pub tickets: Vec<String>,
    /// Tickets the helpdesk deleted (Jira's `jira:issue_deleted`): no
    /// longer billed. A ticket read again that is gone counts as deleted too.
    pub deleted: Vec<String>,
    /// A ticket's key (its canonical id) by the id it is read with, where
    /// the two differ (Zammad: the number customers see, by the internal
    /// id): a ticket read again that is gone is deleted under its key.
    pub keys: std::collections::BTreeMap<String, String>,
}

/// Where a note lookup stands.
#[derive(Debug)]
pub enum NoteLookup {
    /// Ask these as well, then read every answer again (Zammad: the
    /// ticket's number resolved to its id before its articles and tags).
    More(Vec<HttpRequest>),
    Found(FoundNote),
}

/// What of a note is already on its ticket: the comment and the tag are
/// two calls, and one may succeed without the other.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundNote {
    /// The comment carrying the note's marker is on the ticket.
    pub comment: bool,
    /// The note's tag (Jira: label) is on the ticket.
    pub tag: bool,
    /// What adding the rest needs (Zammad: the ticket's internal id; RT:
    /// the tags it must keep).
    pub context: serde_json::Value,
}

impl FoundNote {
    /// Nothing left to add.
    pub fn complete(&self) -> bool {
        self.comment && self.tag
    }
}

/// Which part of a note a request adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotePart {
    /// The internal comment agents read: once it is posted, the note is
    /// delivered and is never posted again.
    Comment,
    /// The tag agents filter on: a follow-up, retried on its own.
    Tag,
}

/// A canonical ticket, or why one raw ticket could not become one (it is
/// reported and skipped; the rest of the batch is stored).
pub type Converted = Result<TicketSnapshot, String>;

pub trait HelpdeskApi: Send + Sync {
    fn system(&self) -> &'static str;

    /// Requests a second the daemon may send it.
    fn requests_per_second(&self) -> u32;

    /// What the configuration's types cannot say (one way to sign in).
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// How to get an access token, for a helpdesk reached by OAuth with
    /// refresh tokens (Jira 3LO); none: the credentials are fixed.
    fn grant(&self) -> Option<&dyn crate::accounting::TokenGrant> {
        None
    }

    /// Adds the credentials (or the access token from [`grant`](Self::grant)) to a request.
    fn authorize(&self, request: &mut HttpRequest, token: Option<&str>);

    /// A page of the tickets changed at or after `cursor` (none: all).
    fn changed(&self, cursor: Option<&str>, page: Option<&str>) -> Result<HttpRequest>;

    fn read_changed(&self, page: Option<&str>, r: &HttpResponse) -> Result<Page>;

    /// One ticket, for a webhook's announcement.
    fn ticket(&self, id: &str) -> Result<HttpRequest>;

    fn read_ticket(&self, r: &HttpResponse) -> Result<RawTicket>;

    /// The requests a batch of tickets needs besides, shared where the API
    /// allows (a monthly time report serves every ticket of the month).
    fn details(&self, tickets: &[RawTicket]) -> Result<Vec<HttpRequest>>;

    /// Canonical tickets from the batch and the answers to `details`, in order.
    fn convert(&self, tickets: &[RawTicket], details: &[HttpResponse]) -> Result<Vec<Converted>>;

    /// The requests that show whether a note is on its ticket: the
    /// ticket's comments and its tags (Zammad: the ticket found by its
    /// number first, see [`NoteLookup::More`]).
    fn find_note(&self, note: &Note) -> Result<Vec<HttpRequest>>;

    /// What of the note under `key` is on the ticket, read from every
    /// answer so far (in the order asked), or what to ask besides.
    fn read_found_note(
        &self,
        key: &str,
        note: &Note,
        answers: &[HttpResponse],
    ) -> Result<NoteLookup>;

    /// The parts of the note that `found` says are missing, the comment
    /// (carrying `key` so that it can be found again) before the tag;
    /// nothing when both are there.
    fn add_note(
        &self,
        key: &str,
        note: &Note,
        found: &FoundNote,
    ) -> Result<Vec<(NotePart, HttpRequest)>>;

    fn read_added(&self, r: &HttpResponse) -> Result<()>;

    /// The request that lists tickets which may carry the marker of `key`
    /// (in their title), to find one an earlier attempt created.
    fn find_ticket(&self, key: &str, ticket: &NewTicket) -> Result<HttpRequest>;

    /// The id of the ticket carrying the marker of `key`, if one does.
    fn read_found_ticket(&self, key: &str, r: &HttpResponse) -> Result<Option<String>>;

    /// Creates the ticket, its title carrying the marker of `key`, its
    /// first article an internal note.
    fn create_ticket(&self, key: &str, ticket: &NewTicket) -> Result<HttpRequest>;

    /// The created ticket's id.
    fn read_created_ticket(&self, r: &HttpResponse) -> Result<String>;

    /// A ticket stored under the key an earlier version of this connector
    /// gave it: the key it has now, and the snapshot rewritten under it.
    /// None: the snapshot is current (the default: keys never changed).
    fn legacy_key(
        &self,
        _stored_id: &str,
        _snapshot: &serde_json::Value,
    ) -> Option<(String, serde_json::Value)> {
        None
    }

    /// Verifies a webhook with `secret` and reads what it announces.
    fn webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        secret: &str,
    ) -> Result<Announcement, WebhookRefusal>;
}

/// An id as text, whether the system wrote it as a number or a string
/// (Zammad and Request Tracker do both); `None` when empty or absent.
/// A batch's details answered one for one: as many answers as requests
/// asked, else the batch fails (a transient error: it is asked again).
pub fn answered_all(system: &str, asked: usize, details: &[HttpResponse]) -> Result<()> {
    if asked == details.len() {
        return Ok(());
    }
    Err(ConnectorError::Transient(format!(
        "{system}: {} answers to {asked} requests",
        details.len()
    )))
}

pub fn id_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A record's id read with [`id_text`]: Zammad writes integers and RT
/// text; either is read the same (their own clients send both, and so do
/// our fakes).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Id(pub String);

impl<'de> serde::Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        id_text(&v)
            .map(Id)
            .ok_or_else(|| D::Error::custom(format!("an id is a number or a text, not {v}")))
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The canonical ticket `id` of `customer` (the offline export's ticket
/// object); `members` holds the rest of it (requester, title, … work).
pub fn canonical_ticket(id: &str, customer: &str, members: serde_json::Value) -> TicketSnapshot {
    let mut ticket = serde_json::json!({"id": id, "customer": customer});
    if let (Some(t), serde_json::Value::Object(rest)) = (ticket.as_object_mut(), members) {
        t.extend(rest);
    }
    TicketSnapshot {
        id: id.to_owned(),
        customer: customer.to_owned(),
        json: ticket.to_string(),
    }
}

/// The marker a note carries so that it is found on a retry.
pub fn note_marker(key: &str) -> String {
    format!("[contract-bridge {key}]")
}

/// A new ticket's title: its own, then the marker that finds it again.
pub fn ticket_title(key: &str, ticket: &NewTicket) -> String {
    format!("{} {}", ticket.title, note_marker(key))
}

/// Checks a WebSub `X-Hub-Signature: <algorithm>=<hex HMAC of the body>`
/// (Zammad signs with SHA-1, Jira with SHA-256) in constant time.
pub fn verify_hub_signature<M: hmac::Mac + hmac::KeyInit>(
    headers: &[(String, String)],
    body: &[u8],
    secret: &str,
    algorithm: &str,
) -> Result<(), WebhookRefusal> {
    let signature = header(headers, "x-hub-signature").ok_or(WebhookRefusal::Unsigned)?;
    let given = signature
        .trim()
        .strip_prefix(&format!("{algorithm}="))
        .and_then(|h| hex::decode(h).ok())
        .ok_or(WebhookRefusal::BadSignature)?;
    let mut mac = <M as hmac::KeyInit>::new_from_slice(secret.as_bytes())
        .map_err(|_| WebhookRefusal::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| WebhookRefusal::BadSignature)
}
