//! # contract-bridge connectors
//!
//! One module per external system. A connector turns the system's wire
//! format into canonical ticket snapshots (the offline export's ticket
//! object), and turns a push (an invoice draft, a note on a ticket) into the
//! request its API expects and reads the answer. It does no I/O over the
//! network itself: the daemon owns the one HTTP client, the retries, the
//! backoff and the rate limits (hyperswitch's split between `transformers`
//! and the core).
//!
//! The connector set is closed: [`SourceConfig`] and [`TargetConfig`] are
//! the enums a configuration file names with `type = "…"`.
//!
//! - [`folder`]: the embedded defaults that need no external account: a
//!   source reading ticket exports dropped in a folder, and a target writing
//!   each draft as JSON, CSV and an hledger journal entry (and each note as
//!   JSON).
//! - [`webhook`]: a source whose tickets arrive only by signed webhook, in
//!   the offline format.
//! - [`http`]: a target that POSTs each push as JSON with its idempotency key.
//! - accounting systems, each behind [`accounting::AccountingApi`]: [`xero`],
//!   [`fortnox`], [`economic`] (Visma e-conomic), [`quickbooks`], [`tryton`].

pub mod accounting;
mod defaults;
pub mod delivery;
pub mod documented;
pub mod economic;
pub mod folder;
pub mod fortnox;
pub mod freshdesk;
pub mod helpdesk;
pub mod http;
pub mod jira;
pub mod oauth;
pub mod quickbooks;
pub mod rt;
pub mod secret;
pub mod tryton;
pub mod webhook;
pub mod xero;
pub mod zammad;

/// What a connector's step gives: its value, or a [`ConnectorError`]
/// (another error where a signature names one).
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

/// Answers as the connectors' unit tests hand them to `read_*`.
#[cfg(test)]
pub(crate) mod testing {
    use crate::HttpResponse;

    /// An answer with `status` and `body`, without `Retry-After`.
    pub fn answer(status: u16, body: serde_json::Value) -> HttpResponse {
        HttpResponse {
            status,
            retry_after: None,
            body: body.to_string(),
        }
    }

    /// A 200 answer with `body`.
    pub fn ok(body: serde_json::Value) -> HttpResponse {
        answer(200, body)
    }

    /// The canonical JSON of the first of `tickets`, converted with `answers`.
    pub fn first_converted(
        api: &dyn crate::helpdesk::HelpdeskApi,
        tickets: &[crate::helpdesk::RawTicket],
        answers: &[HttpResponse],
    ) -> serde_json::Value {
        let converted = api.convert(tickets, answers).unwrap();
        serde_json::from_str(&converted[0].as_ref().unwrap().json).unwrap()
    }

    /// Asserts that `refusal` names the field missing at `path`, as
    /// [`crate::documented`] words it.
    #[track_caller]
    pub fn assert_missing(refusal: &str, path: &str, field: &str) {
        assert!(
            refusal.contains(path) && refusal.contains(&format!("missing field `{field}`")),
            "{refusal}"
        );
    }

    /// Renames the member `from` of the object `v` to `to`, as a vendor
    /// renaming a field would.
    pub fn rename(v: &mut serde_json::Value, from: &str, to: &str) {
        let object = v.as_object_mut().expect("an object");
        let member = object
            .remove(from)
            .unwrap_or_else(|| panic!("no `{from}` to rename"));
        object.insert(to.into(), member);
    }

    /// A 200 answer whose body is the vendor's fixture, as the file has it.
    pub fn fixture_answer(vendor: &str, name: &str) -> HttpResponse {
        let path = format!(
            "{}/../tests/fixtures/{vendor}/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        HttpResponse {
            status: 200,
            retry_after: None,
            body: std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        }
    }

    /// A WebSub `X-Hub-Signature` value: `{algorithm}={hex HMAC of body}`.
    pub fn hub_signature<M: hmac::Mac + hmac::KeyInit>(
        algorithm: &str,
        secret: &[u8],
        body: &[u8],
    ) -> String {
        let mut mac = <M as hmac::KeyInit>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("{algorithm}={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// An SLA resolution breach note on `ticket`, tagged `sla-breach`.
    pub fn breach_note(source: &str, ticket: &str, customer: &str, text: &str) -> crate::Note {
        crate::Note {
            source: source.into(),
            ticket: ticket.into(),
            customer: customer.into(),
            metric: "resolution".into(),
            event: crate::NoteEvent::Breach,
            due_at: None,
            tag: "sla-breach".into(),
            text: text.into(),
            subject: None,
        }
    }

    /// A renewal suggestion for `customer`'s used-up punch card, tagged
    /// `prepaid-renewal`, and its outbox key.
    pub fn renewal_ticket(customer: &str, requester: &str) -> (String, crate::NewTicket) {
        let ticket = crate::NewTicket {
            source: "desk".into(),
            customer: customer.into(),
            requester: Some(requester.into()),
            title: format!("Renewal: card of {customer} used up"),
            text: "Suggest a new KLIPPEKORT-10.".into(),
            tag: "prepaid-renewal".into(),
        };
        (format!("renewal:{customer}:card:used-up"), ticket)
    }
}

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use secret::Secret;

/// A ticket as a source delivers it: the offline-format ticket object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketSnapshot {
    pub id: String,
    pub customer: String,
    /// The ticket object as JSON text.
    pub json: String,
}

/// What one sync of a source returns.
#[derive(Clone, Debug, Default)]
pub struct SyncBatch {
    pub tickets: Vec<TicketSnapshot>,
    /// Stored after the batch is saved; handed back on the next sync.
    pub cursor: String,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Worth retrying later (a file being written, a 5xx, a timeout).
    #[error("{0}")]
    Transient(String),
    /// The system asked us to slow down and said when to come back.
    #[error("{message} (retry after {}s)", retry_after.as_secs())]
    Throttled {
        message: String,
        retry_after: Duration,
    },
    /// The system refused our token: fetch a new one and retry.
    #[error("{0}")]
    Unauthorized(String),
    /// Retrying will not help until someone fixes something.
    #[error("{0}")]
    Permanent(String),
}

/// The sources (`sources.NAME` in the configuration), by `type`: a folder
/// of exports, a webhook endpoint, and every helpdesk API, registered here
/// with one line each (`Variant(module::Config)`, the config's
/// [`helpdesk::Mapped`] implementing [`helpdesk::HelpdeskApi`]; `type` is
/// the variant in snake case).
macro_rules! sources {
    ($($helpdesk:ident($config:ty)),* $(,)?) => {
        #[derive(Clone, Debug, Deserialize, serde::Serialize)]
        #[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
        pub enum SourceConfig {
            Folder(folder::FolderSourceConfig),
            Webhook(webhook::WebhookSourceConfig),
            $($helpdesk($config),)*
        }

        impl SourceConfig {
            /// The helpdesk API behind this source, if it is one.
            fn as_helpdesk(&self) -> Option<&dyn helpdesk::HelpdeskConfig> {
                match self {
                    $(SourceConfig::$helpdesk(c) => Some(c),)*
                    SourceConfig::Folder(_) | SourceConfig::Webhook(_) => None,
                }
            }
        }
    };
}

sources! {
    Zammad(zammad::ZammadConfig),
    Jira(jira::JiraConfig),
    Rt(rt::RtConfig),
    Freshdesk(freshdesk::FreshdeskConfig),
}

/// Accounting and helpdesk targets, by `type`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetConfig {
    Folder(folder::FolderTargetConfig),
    Http(http::HttpTargetConfig),
    Xero(xero::XeroConfig),
    Fortnox(fortnox::FortnoxConfig),
    Economic(economic::EconomicConfig),
    Quickbooks(quickbooks::QuickBooksConfig),
    Tryton(tryton::TrytonConfig),
}

impl SourceConfig {
    /// Tickets changed since `cursor`.
    pub fn sync(&self, cursor: Option<&str>) -> Result<SyncBatch> {
        match self {
            SourceConfig::Folder(c) => folder::sync(c, cursor),
            SourceConfig::Webhook(_) => Ok(SyncBatch {
                tickets: Vec::new(),
                cursor: cursor.unwrap_or_default().to_owned(),
            }),
            _ => Err(ConnectorError::Permanent(
                "a helpdesk API is read through `helpdesk()`".into(),
            )),
        }
    }

    /// The helpdesk API behind this source, if it is one: the daemon reads
    /// it and puts notes on its tickets through [`helpdesk::HelpdeskApi`].
    pub fn helpdesk<'a>(
        &'a self,
        map: &'a helpdesk::SourceMap,
    ) -> Option<Box<dyn helpdesk::HelpdeskApi + 'a>> {
        self.as_helpdesk().map(|h| h.api(map))
    }

    /// What the configuration's types cannot say (one way to sign in).
    pub fn check(&self) -> Result<(), String> {
        // Read without a mapping section: neither the check nor the rate reads it.
        self.helpdesk(&helpdesk::SourceMap::default())
            .map_or(Ok(()), |h| h.check())
    }

    /// Whether this source is a helpdesk API (read and noted through
    /// [`helpdesk`](Self::helpdesk), with a `sources.<name>` mapping section).
    pub fn is_helpdesk(&self) -> bool {
        self.as_helpdesk().is_some()
    }

    /// A helpdesk's request rate, per second.
    pub fn helpdesk_rate(&self) -> Option<u32> {
        self.helpdesk(&helpdesk::SourceMap::default())
            .map(|h| h.requests_per_second())
    }

    /// The tickets a webhook body carries, or `None` when this source takes
    /// no webhooks.
    pub fn parse_webhook(&self, body: &[u8]) -> Option<Result<Vec<TicketSnapshot>>> {
        match self {
            SourceConfig::Webhook(_) => Some(webhook::parse(body)),
            _ => None,
        }
    }
}

/// What one outbox item pushes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Push {
    Draft(Draft),
    Note(Note),
    /// A ticket of its own (a prepaid renewal suggestion by `renew_to: ticket`).
    Ticket(NewTicket),
    /// The work report's PDF onto a draft already pushed: an item of its
    /// own (`attach:{draft key}`), so that a refused file never holds back
    /// or repeats the draft.
    Attachment(ReportAttachment),
}

/// Which report goes onto which pushed draft.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ReportAttachment {
    /// The draft's own outbox key.
    pub draft_key: String,
    /// The draft's id in the accounting system.
    pub remote_id: String,
    pub customer: String,
    pub period: String,
    pub revision: i64,
}

impl ReportAttachment {
    /// The outbox key of the attachment of the draft under `draft_key`.
    pub fn key(draft_key: &str) -> String {
        format!("attach:{draft_key}")
    }

    /// The file's name: customer, period and revision.
    pub fn file_name(&self) -> String {
        format!(
            "report-{}-{}-r{}.pdf",
            self.customer, self.period, self.revision
        )
    }
}

/// An HTTP request a connector built; the daemon sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: HttpMethod,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

impl HttpRequest {
    /// A request to a JSON API: it accepts JSON, and its body, if any, is JSON.
    pub fn json(method: HttpMethod, url: String, body: Vec<u8>, timeout_ms: u64) -> HttpRequest {
        let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
        if !body.is_empty() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        HttpRequest {
            method,
            url,
            headers,
            body,
            timeout: std::time::Duration::from_millis(timeout_ms),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
}

/// The answer to an [`HttpRequest`], as the connector reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// The `Retry-After` header, when it held a number of seconds.
    pub retry_after: Option<Duration>,
    pub body: String,
}

/// How a push is carried out.
#[derive(Debug)]
pub enum Delivery {
    /// Done locally (a file written).
    Done,
    /// Send this request, then hand the response to [`TargetConfig::accept`].
    Http(HttpRequest),
}

impl TargetConfig {
    /// The accounting system behind this target, if it is one: the daemon
    /// runs the lookup-create-read-back steps of [`accounting`] with it.
    pub fn accounting(&self) -> Option<&dyn accounting::AccountingApi> {
        match self {
            TargetConfig::Xero(c) => Some(c),
            TargetConfig::Fortnox(c) => Some(c),
            TargetConfig::Economic(c) => Some(c),
            TargetConfig::Quickbooks(c) => Some(c),
            TargetConfig::Tryton(c) => Some(c),
            TargetConfig::Folder(_) | TargetConfig::Http(_) => None,
        }
    }

    /// Carries out a local push, or builds the request for a remote one.
    /// Pushing the same key again is harmless either way.
    pub fn deliver(&self, key: &str, push: &Push) -> Result<Delivery> {
        match (self, push) {
            (
                TargetConfig::Xero(_)
                | TargetConfig::Fortnox(_)
                | TargetConfig::Economic(_)
                | TargetConfig::Quickbooks(_)
                | TargetConfig::Tryton(_),
                _,
            ) => Err(ConnectorError::Permanent(
                "an accounting target takes its drafts through `accounting()`".into(),
            )),
            (TargetConfig::Folder(c), Push::Draft(d)) => {
                folder::push_draft(c, key, d).map(|()| Delivery::Done)
            }
            (TargetConfig::Folder(c), Push::Note(n)) => {
                folder::push_note(c, key, n).map(|()| Delivery::Done)
            }
            (TargetConfig::Folder(c), Push::Ticket(t)) => {
                folder::push_ticket(c, key, t).map(|()| Delivery::Done)
            }
            (TargetConfig::Folder(_), Push::Attachment(_)) => Err(ConnectorError::Permanent(
                "a folder target takes no attachments".into(),
            )),
            (TargetConfig::Http(c), push) => http::request(c, key, push).map(Delivery::Http),
        }
    }

    /// Reads the answer to a request [`deliver`](Self::deliver) built.
    pub fn accept(&self, response: &HttpResponse) -> Result<()> {
        match self {
            TargetConfig::Folder(_)
            | TargetConfig::Xero(_)
            | TargetConfig::Fortnox(_)
            | TargetConfig::Economic(_)
            | TargetConfig::Quickbooks(_)
            | TargetConfig::Tryton(_) => Ok(()),
            TargetConfig::Http(_) => http::accept(response),
        }
    }

    /// Requests per second the system allows us, if it limits them.
    pub fn requests_per_second(&self) -> Option<u32> {
        match self {
            TargetConfig::Folder(_) => None,
            TargetConfig::Http(c) => Some(c.requests_per_second),
            TargetConfig::Xero(c) => Some(c.requests_per_second),
            TargetConfig::Fortnox(c) => Some(c.requests_per_second),
            TargetConfig::Economic(c) => Some(c.requests_per_second),
            TargetConfig::Quickbooks(c) => Some(c.requests_per_second),
            TargetConfig::Tryton(c) => Some(c.requests_per_second),
        }
    }
}

/// An invoice draft as every accounting target receives it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Draft {
    pub customer: String,
    pub period: String,
    pub revision: i64,
    pub currency: String,
    pub total_net: String,
    pub lines: Vec<DraftLine>,
    /// Issue date of the draft (`YYYY-MM-DD`, the day the period closed).
    pub date: String,
    /// The ids the mapping gives this customer in the receiving target.
    #[serde(default, skip_serializing_if = "Refs::is_empty")]
    pub refs: Refs,
    /// A signed link to the customer's balance statement, for the targets
    /// that take no attachment (set when `report.public_url` and
    /// `report.statement_secret` are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_url: Option<String>,
    /// Set when the period was closed by `close --force` while a source
    /// feeding it was incomplete: what was missing. Finance sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<String>,
}

/// An accounting system's ids for a draft's customer and lines, from the
/// mapping file; each one absent falls back to the target's configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Refs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

impl Refs {
    pub fn is_empty(&self) -> bool {
        *self == Refs::default()
    }
}

/// The text accounting systems without attachments carry on the invoice.
pub fn statement_line(url: &str) -> String {
    format!("Balance statement: {url}")
}

impl Draft {
    /// The customer's contact in the target: the mapping's, else `configured`.
    pub fn contact<'a>(
        &'a self,
        configured: &'a std::collections::BTreeMap<String, String>,
    ) -> Option<&'a str> {
        self.refs
            .contact
            .as_deref()
            .or_else(|| configured.get(&self.customer).map(String::as_str))
    }

    /// [`Draft::contact`], or a refusal saying where to set it: `field` is
    /// the system's name for it (`CustomerNumber`), `setting` the target's
    /// key that maps customers to it (`customers`).
    pub fn required_contact<'a>(
        &'a self,
        configured: &'a std::collections::BTreeMap<String, String>,
        system: &str,
        field: &str,
        setting: &str,
    ) -> Result<&'a str> {
        self.contact(configured).ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "{system}: no {field} for customer `{}`: set `accounting.<target>.contact` in the mapping or the target's `{setting}`",
                self.customer
            ))
        })
    }
}

// A draft's lines are the engine's: what a bill invoices, as drafts carry it.
pub use engine::draft::{DraftLine, LineRefs};

impl Draft {
    /// `l`'s account: its own, else the draft's.
    pub fn account_of<'a>(&'a self, l: &'a DraftLine) -> Option<&'a String> {
        l.refs.account.as_ref().or(self.refs.account.as_ref())
    }
    /// `l`'s item: its own, else the draft's.
    pub fn item_of<'a>(&'a self, l: &'a DraftLine) -> Option<&'a String> {
        l.refs.item.as_ref().or(self.refs.item.as_ref())
    }
    /// `l`'s tax: its own, else the draft's.
    pub fn tax_of<'a>(&'a self, l: &'a DraftLine) -> Option<&'a String> {
        l.refs.tax.as_ref().or(self.refs.tax.as_ref())
    }
}

/// An internal note for a ticket: an SLA target about to be or already
/// missed, or a prepaid renewal suggestion.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Note {
    /// The source the ticket came from (its helpdesk).
    pub source: String,
    pub ticket: String,
    pub customer: String,
    /// `response` or `resolution`.
    pub metric: String,
    pub event: NoteEvent,
    /// When the target is due (RFC 3339, the contract's offset), if running.
    pub due_at: Option<String>,
    /// A tag agents can filter on, e.g. `sla-breach`.
    pub tag: String,
    pub text: String,
    /// The note's subject where the helpdesk shows one; none: an SLA
    /// note's (`SLA {metric} {tag}`). Items queued before it existed read as none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Note {
    /// The subject the helpdesk shows: the note's own, or an SLA note's.
    pub fn subject(&self) -> String {
        self.subject
            .clone()
            .unwrap_or_else(|| format!("SLA {} {}", self.metric, self.tag))
    }
}

/// A ticket the bridge opens in a customer's helpdesk, for agents: its
/// first article is an internal note.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct NewTicket {
    /// The helpdesk source that feeds the customer.
    pub source: String,
    pub customer: String,
    /// The customer's contact in the helpdesk (the requester of their
    /// latest ticket, an e-mail address), if known.
    pub requester: Option<String>,
    pub title: String,
    pub text: String,
    /// A tag (Jira: label) agents can filter on, e.g. `prepaid-renewal`.
    pub tag: String,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NoteEvent {
    Warning,
    Breach,
}

/// Splits an export (`{"tickets": [...]}`) into ticket snapshots; the daemon
/// validates them fully. `origin` names the file or request in errors.
pub fn snapshots_from_export(text: &str, origin: &str) -> Result<Vec<TicketSnapshot>> {
    #[derive(Deserialize)]
    struct Export {
        tickets: Vec<serde_json::Map<String, serde_json::Value>>,
    }
    let export: Export = serde_json::from_str(text)
        .map_err(|e| ConnectorError::Permanent(format!("{origin}: not a ticket export: {e}")))?;
    export
        .tickets
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let field = |name: &str| {
                t.get(name)
                    .and_then(|v| v.as_str())
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ConnectorError::Permanent(format!(
                            "{origin}: tickets[{i}].{name}: missing or not a string"
                        ))
                    })
            };
            Ok(TicketSnapshot {
                id: field("id")?,
                customer: field("customer")?,
                json: serde_json::Value::Object(t).to_string(),
            })
        })
        .collect()
}

/// A vendor's documented answer kept under `tests/fixtures/{vendor}/`.
#[cfg(test)]
pub(crate) fn fixture(vendor: &str, name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../tests/fixtures/{vendor}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
