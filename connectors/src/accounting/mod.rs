//! What every accounting connector does, as requests the daemon sends and
//! answers it reads: get a token, look a draft up by our reference, create
//! it, read it back.
//!
//! The daemon runs the steps in one order for every system (lookup before
//! create, read back after): a draft whose first push was answered but the
//! answer lost is found on the retry instead of created twice, even where the
//! system takes no idempotency key. Our totals are compared with the
//! system's; a difference is recorded and shown by `status`, never "fixed".

use crate::Result;
use crate::documented::Shape;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::{ConnectorError, Draft, HttpRequest, HttpResponse};

/// A draft as the accounting system holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteDraft {
    pub id: String,
    /// The system's total without tax, when it says.
    pub total_net: Option<Decimal>,
}

/// What became of a draft (or any invoice) in the accounting system.
/// `Paid`, `Voided` and `Deleted` are final: a final draft is not asked
/// about again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DraftStatus {
    Draft,
    /// Waiting for approval (Xero `SUBMITTED`).
    Submitted,
    /// Issued: approved, booked or posted (Xero `AUTHORISED`, Fortnox
    /// booked or sent, e-conomic booked, Tryton validated or posted).
    Approved,
    Paid,
    Voided,
    Deleted,
}

impl DraftStatus {
    pub const ALL: [DraftStatus; 6] = [
        DraftStatus::Draft,
        DraftStatus::Submitted,
        DraftStatus::Approved,
        DraftStatus::Paid,
        DraftStatus::Voided,
        DraftStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DraftStatus::Draft => "draft",
            DraftStatus::Submitted => "submitted",
            DraftStatus::Approved => "approved",
            DraftStatus::Paid => "paid",
            DraftStatus::Voided => "voided",
            DraftStatus::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<DraftStatus> {
        DraftStatus::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DraftStatus::Paid | DraftStatus::Voided | DraftStatus::Deleted
        )
    }

    /// Finance withdrew it: the bridge never pushes it again on its own.
    pub fn is_withdrawn(self) -> bool {
        matches!(self, DraftStatus::Voided | DraftStatus::Deleted)
    }

    /// Issued to the customer (approved or paid).
    pub fn is_issued(self) -> bool {
        matches!(self, DraftStatus::Approved | DraftStatus::Paid)
    }
}

impl std::fmt::Display for DraftStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An invoice line that names an item (article, product): what could sell
/// a punch card or an hour bank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteLine {
    /// The line's own id in the system, or its position when it has none.
    pub id: String,
    pub item: String,
    pub quantity: Decimal,
    /// The line's amount without tax.
    pub amount: Decimal,
    pub description: String,
}

/// An invoice as the system holds it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteInvoice {
    pub id: String,
    pub status: DraftStatus,
    /// The system's id of the customer (Xero ContactID, Tryton party, …).
    pub contact: Option<String>,
    pub date: Option<chrono::NaiveDate>,
    pub currency: Option<String>,
    /// The lines that name an item; others are left out.
    pub lines: Vec<RemoteLine>,
}

impl RemoteInvoice {
    pub fn with_status(id: &str, status: DraftStatus) -> RemoteInvoice {
        RemoteInvoice {
            id: id.to_owned(),
            status,
            contact: None,
            date: None,
            currency: None,
            lines: Vec::new(),
        }
    }
}

/// Which page of the sales scan to ask for.
#[derive(Clone, Copy, Debug)]
pub struct SalesAsk<'a> {
    /// The card and bank items sold (a system that can filter by item does).
    pub items: &'a [String],
    /// Where the last scan got to (the system's own cursor), if anywhere.
    pub cursor: Option<&'a str>,
    /// The page of this scan, from 1.
    pub page: u32,
}

impl<'a> SalesAsk<'a> {
    pub fn new(items: &'a [String], cursor: Option<&'a str>, page: u32) -> Self {
        SalesAsk {
            items,
            cursor,
            page,
        }
    }
}

/// An answer to a status request, with what it is the answer about.
#[derive(Clone, Copy, Debug)]
pub struct StatusAnswer<'a> {
    /// The system's id of the draft asked about.
    pub remote_id: &'a str,
    /// Our reference of it (the draft's number).
    pub reference: &'a str,
    /// 0 for the answer to [`AccountingApi::status_request`], then 1, … for
    /// the requests it asked for.
    pub step: usize,
    pub response: &'a HttpResponse,
}

/// A status answer: known, or one more request to make (e-conomic moves a
/// booked draft to another collection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusStep {
    Known(RemoteInvoice),
    Ask(HttpRequest),
}

impl StatusStep {
    /// The draft `remote_id` is gone from the system.
    pub fn deleted(remote_id: &str) -> StatusStep {
        StatusStep::Known(RemoteInvoice::with_status(remote_id, DraftStatus::Deleted))
    }
}

/// One page of invoices that may hold prepaid sales.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SalesPage {
    pub invoices: Vec<RemoteInvoice>,
    /// Invoices the list names without their lines (Fortnox, e-conomic):
    /// each as the list shows it (status, customer, no lines) with the
    /// request that reads it whole, answered by
    /// [`AccountingApi::read_sale`]. The daemon sends only those of a
    /// customer with prepaid items whose status could open one.
    pub details: Vec<(RemoteInvoice, HttpRequest)>,
    /// Where the next scan starts (the system's own text), when it moved.
    pub cursor: Option<String>,
    /// How far the cursor may move at most: an invoice listed here may
    /// still change in a way a scan must see (e-conomic: booked, not yet
    /// paid), so the next scan starts before it.
    pub pin: Option<String>,
    /// Ask for the next page.
    pub more: bool,
}

/// An access token and how long it lives.
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: Duration,
    /// The refresh token to use next time, where the system rotates them:
    /// the daemon stores it before using the access token.
    pub refresh_token: Option<String>,
    /// The scopes the token grants, where the answer says (OAuth `scope`,
    /// space-separated): `status` shows them beside those asked for.
    pub scope: Option<String>,
}

/// How the daemon gets an access token, for accounting systems and
/// helpdesks alike: it caches the token, and stores a rotated refresh token
/// before it uses the access token.
pub trait TokenGrant: Send + Sync {
    /// Does the system rotate refresh tokens?
    fn rotates(&self) -> bool;

    /// The token request; `stored` is the newest stored refresh token.
    fn grant_request(&self, stored: Option<&str>) -> Result<Option<HttpRequest>>;

    fn read_grant(&self, r: &HttpResponse) -> Result<AccessToken>;

    /// The system's OAuth 2.0 authorization-code app, where it has one:
    /// `connect` runs its consent, and the daemon refreshes its grant
    /// through it (see [`crate::oauth`]).
    fn oauth_app(&self) -> Option<crate::oauth::OAuthApp> {
        None
    }
}

impl<T: AccountingApi + ?Sized> TokenGrant for T {
    fn rotates(&self) -> bool {
        self.rotates_refresh_tokens()
    }

    fn grant_request(&self, stored: Option<&str>) -> Result<Option<HttpRequest>> {
        self.token_request(stored)
    }

    fn read_grant(&self, r: &HttpResponse) -> Result<AccessToken> {
        self.read_token(r)
    }

    fn oauth_app(&self) -> Option<crate::oauth::OAuthApp> {
        self.oauth_app()
    }
}

/// What a code of a mapping's `accounts` section names (issue 17).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CodeKind {
    Account,
    Item,
    Tax,
}

impl CodeKind {
    /// The mapping key.
    pub fn key(self) -> &'static str {
        match self {
            CodeKind::Account => "account",
            CodeKind::Item => "item",
            CodeKind::Tax => "tax",
        }
    }
}

/// One code a system lists (an account, an item, a tax type), active.
#[derive(Clone, Debug, PartialEq)]
pub struct ListedCode {
    pub code: String,
    pub name: String,
    /// A tax type's rate in percent, where the system says it.
    pub rate: Option<Decimal>,
}

/// An invoice a ledger's webhook says changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceChanged {
    /// The ledger's id of the invoice.
    pub invoice: String,
    /// The event's own id: a delivery repeated carries the same one.
    pub delivery: String,
}

pub trait AccountingApi: Send + Sync {
    /// The system's name in messages (`xero`, `fortnox`, …).
    fn system(&self) -> &'static str;

    /// The requests listing the codes `check` validates a mapping's
    /// `accounts.<target>` against (chart of accounts, items, tax rates),
    /// where the system's API lists them; empty where it lists none.
    fn code_lists(&self) -> Vec<(CodeKind, HttpRequest)> {
        Vec::new()
    }

    /// The active codes one answer of [`AccountingApi::code_lists`] lists.
    fn read_codes(&self, _kind: CodeKind, r: &HttpResponse) -> Result<Vec<ListedCode>> {
        Err(status_error(self.system(), r, "lists no codes"))
    }

    /// Requests per second the system allows (the daemon's rate limiter).
    fn requests_per_second(&self) -> u32;

    /// Our reference of the draft under `key`, in the form the system's
    /// lookup field takes.
    fn reference(&self, key: &str) -> String {
        reference(key)
    }

    /// Does the system rotate refresh tokens (so the newest must be stored,
    /// and only one instance may refresh at a time)?
    fn rotates_refresh_tokens(&self) -> bool {
        false
    }

    /// The request for an access token, when the system uses one.
    /// `refresh_token` is the newest stored one, for systems that rotate them.
    fn token_request(&self, refresh_token: Option<&str>) -> Result<Option<HttpRequest>>;

    fn read_token(&self, r: &HttpResponse) -> Result<AccessToken>;

    /// The OAuth 2.0 authorization-code app of the target (`connect`), where
    /// the system has one.
    fn oauth_app(&self) -> Option<crate::oauth::OAuthApp> {
        None
    }

    /// Verifies a webhook delivered to `/webhooks/accounting/{target}` and
    /// reads the invoices it says changed. A system that sends none (the
    /// default) refuses it.
    fn webhook(
        &self,
        _headers: &[(String, String)],
        _body: &[u8],
    ) -> Result<Vec<InvoiceChanged>, crate::delivery::WebhookRefusal> {
        Err(crate::delivery::WebhookRefusal::NotTaken(format!(
            "{} sends no webhooks here",
            self.system()
        )))
    }

    /// The header naming the organisation, when the configuration does not
    /// set it and the daemon adds the one `connect` chose (Xero
    /// `xero-tenant-id`).
    fn tenant_header(&self) -> Option<&'static str> {
        None
    }

    /// Adds the credentials (and the token, if any) to a request; by
    /// default the OAuth access token as `Authorization: Bearer …`.
    fn authorize(&self, request: &mut HttpRequest, token: Option<&str>) {
        token_authorization(request, "Bearer", token);
    }

    fn find_draft(&self, reference: &str) -> Result<HttpRequest>;

    fn read_found(&self, r: &HttpResponse) -> Result<Option<RemoteDraft>>;

    /// `key` is the idempotency key, for the systems that take one.
    fn create_draft(&self, key: &str, reference: &str, draft: &Draft) -> Result<HttpRequest>;

    fn read_created(&self, r: &HttpResponse) -> Result<RemoteDraft>;

    fn fetch_draft(&self, id: &str) -> Result<HttpRequest>;

    /// How many drafts one create request may carry; 1: the system creates
    /// one at a time (then the `*_drafts` methods are not used).
    fn batch_size(&self) -> usize {
        1
    }

    /// One lookup of several of our references ([`AccountingApi::batch_size`] > 1).
    fn find_drafts(&self, references: &[&str]) -> Result<HttpRequest> {
        let _ = references;
        Err(ConnectorError::Permanent(format!(
            "{}: drafts are looked up one at a time",
            self.system()
        )))
    }

    /// The drafts a [`AccountingApi::find_drafts`] answer holds, by our reference.
    fn read_found_drafts(&self, _r: &HttpResponse) -> Result<Vec<(String, RemoteDraft)>> {
        Ok(Vec::new())
    }

    /// The invoice one draft adds to a create request of several; an error
    /// refuses that draft alone (e.g. a customer without a contact).
    fn batch_item(&self, key: &str, reference: &str, draft: &Draft) -> Result<serde_json::Value> {
        let _ = (key, reference, draft);
        Err(ConnectorError::Permanent(format!(
            "{}: drafts are created one at a time",
            self.system()
        )))
    }

    /// One create request for several drafts' [`AccountingApi::batch_item`]s;
    /// `keys` (the drafts' idempotency keys) name the request.
    fn create_drafts(&self, keys: &[&str], items: Vec<serde_json::Value>) -> Result<HttpRequest> {
        let _ = (keys, items);
        Err(ConnectorError::Permanent(format!(
            "{}: drafts are created one at a time",
            self.system()
        )))
    }

    /// Per our reference, what a [`AccountingApi::create_drafts`] answer
    /// says of each draft: created, or the system's reason for refusing it.
    /// An error: the request as a whole failed.
    #[allow(clippy::type_complexity)]
    fn read_created_drafts(
        &self,
        _r: &HttpResponse,
    ) -> Result<Vec<(String, Result<RemoteDraft, String>)>> {
        Ok(Vec::new())
    }

    fn read_fetched(&self, r: &HttpResponse) -> Result<RemoteDraft>;

    /// The request listing the file names attached to the draft `id`;
    /// none: the system takes no attachments (the report is linked instead).
    fn list_attachments(&self, _id: &str) -> Option<HttpRequest> {
        None
    }

    fn read_attachments(&self, _r: &HttpResponse) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// The request attaching `bytes` (of type `mime`) as `file_name` to the draft `id`.
    fn attach(
        &self,
        _id: &str,
        _file_name: &str,
        _mime: &str,
        _bytes: &[u8],
    ) -> Option<HttpRequest> {
        None
    }

    fn read_attached(&self, _r: &HttpResponse, _file_name: &str) -> Result<()> {
        Ok(())
    }

    /// The request asking what became of the pushed draft `remote_id`
    /// (pushed under our `reference`).
    fn status_request(&self, remote_id: &str, _reference: &str) -> Result<HttpRequest> {
        self.fetch_draft(remote_id)
    }

    /// One request asking what became of several pushed drafts (by their
    /// ids), where the system takes one; none: one at a time.
    fn statuses_request(&self, _remote_ids: &[&str]) -> Option<HttpRequest> {
        None
    }

    /// The invoices a [`AccountingApi::statuses_request`] answer holds; a
    /// draft it does not mention is asked about on its own.
    fn read_statuses(&self, _r: &HttpResponse) -> Result<Vec<RemoteInvoice>> {
        Ok(Vec::new())
    }

    /// Reads a status answer; `step` is 0 for the answer to
    /// [`AccountingApi::status_request`], then 1, … for the requests it asked for.
    fn read_status(&self, answer: StatusAnswer<'_>) -> Result<StatusStep>;

    /// The system's id of a customer from the target's own configuration
    /// (the mapping's `accounting.<target>.contact` comes first).
    fn contact_of(&self, _customer: &str) -> Option<String> {
        None
    }

    /// One page of the customer invoices that may sell `items`, changed
    /// since `cursor`; `None`: the system is not scanned for sales.
    fn sales_request(&self, _ask: SalesAsk<'_>) -> Result<Option<HttpRequest>> {
        Ok(None)
    }

    fn read_sales(&self, _r: &HttpResponse) -> Result<SalesPage> {
        Ok(SalesPage::default())
    }

    /// Reads one invoice a [`SalesPage::details`] request asked for, with its lines.
    fn read_sale(&self, _r: &HttpResponse) -> Result<RemoteInvoice> {
        Err(ConnectorError::Permanent(format!(
            "{}: its sales lists carry their lines; there is no invoice to read on its own",
            self.system()
        )))
    }

    /// The cursor a whole scan begun at `started` leaves, for systems whose
    /// lists carry no change time to take it from (Fortnox): the next scan
    /// asks for what changed since. None: the pages say.
    fn sales_cursor_at(&self, _started: chrono::DateTime<chrono::Utc>) -> Option<String> {
        None
    }
}

/// Our stable reference of a draft in the accounting system: its
/// idempotency key, which names customer, period and revision.
pub fn reference(key: &str) -> String {
    key.to_owned()
}

/// Adds `Authorization: {scheme} {token}` to `request`, when there is a token.
pub fn token_authorization(request: &mut HttpRequest, scheme: &str, token: Option<&str>) {
    if let Some(t) = token {
        request
            .headers
            .push(("authorization".into(), format!("{scheme} {t}")));
    }
}

/// The error an answer other than 2xx stands for; `message` is what the
/// system said, as it said it (Fortnox answers in Swedish).
pub fn status_error(system: &str, r: &HttpResponse, message: &str) -> ConnectorError {
    let said = format!("{system}: HTTP {}: {message}", r.status);
    match r.status {
        429 => ConnectorError::Throttled {
            message: said,
            retry_after: r.retry_after.unwrap_or(Duration::from_secs(60)),
        },
        // A token refused: the daemon drops it and the retry fetches a new one.
        401 => ConnectorError::Unauthorized(said),
        408 | 500..=599 => ConnectorError::Transient(said),
        _ => ConnectorError::Permanent(said),
    }
}

pub fn json(r: &HttpResponse, system: &str) -> Result<serde_json::Value> {
    serde_json::from_str(&r.body).map_err(|e| {
        ConnectorError::Transient(format!(
            "{system}: HTTP {}: the answer is not JSON ({e})",
            r.status
        ))
    })
}

/// A decimal as an accounting system writes it, read with [`decimal`]:
/// a JSON number, or a text holding one (Fortnox writes `DeliveredQuantity`
/// as `"1.00"`). Anything else is refused, naming the field, never read as zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amount(pub Decimal);

impl<'de> serde::Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        decimal(&v)
            .map(Amount)
            .ok_or_else(|| D::Error::custom(format!("a decimal number, not {v}")))
    }
}

/// A number the system wrote as a JSON number or a string.
pub fn decimal(v: &serde_json::Value) -> Option<Decimal> {
    match v {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

/// A draft line's decimal text as a JSON number (the APIs take numbers).
pub fn number(text: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Number>(text)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

/// Percent-encodes a query or form value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A line as a system that keeps `digits` decimals of quantity can hold it
/// exactly: `(quantity, unit price, description)`. When our quantity has
/// more decimals (77.5 minutes are 1.2917 h), the line goes as 1 × its
/// amount, which is what we bill, with the quantity kept in the description.
pub fn fit_quantity(l: &crate::DraftLine, digits: u32) -> (String, String, String) {
    let q: Decimal = l.quantity.parse().unwrap_or_default();
    if q.normalize().scale() <= digits {
        return (
            l.quantity.clone(),
            l.unit_price.clone(),
            l.description.clone(),
        );
    }
    (
        "1".into(),
        l.amount.clone(),
        format!("{} ({} × {})", l.description, l.quantity, l.unit_price),
    )
}

/// `application/x-www-form-urlencoded` for token requests.
pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// An OAuth token request: the client's id and secret as Basic
/// credentials, the grant as a form.
pub fn token_post(
    url: &str,
    client_id: &str,
    client_secret: &crate::Secret,
    grant: &[(&str, &str)],
    timeout_ms: u64,
) -> HttpRequest {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{client_id}:{}", client_secret.expose()));
    HttpRequest {
        method: crate::HttpMethod::Post,
        url: url.to_owned(),
        headers: vec![
            ("authorization".into(), format!("Basic {basic}")),
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("accept".into(), "application/json".into()),
        ],
        body: form(grant),
        timeout: Duration::from_millis(timeout_ms),
    }
}

/// A token endpoint's refusal (RFC 6749 §5.2): `error` is required,
/// `error_description` optional.
#[derive(serde::Deserialize)]
struct TokenRefusal {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// A token endpoint's answer (RFC 6749 §5.1). `expires_in` is only
/// RECOMMENDED there: a server that leaves it out is taken at 30 minutes,
/// the shortest lifetime of the systems we talk to, so we refresh early
/// rather than late.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// What a token lives when the server does not say (see [`TokenAnswer`]).
const UNSTATED_TOKEN_LIFETIME: Duration = Duration::from_secs(1800);

/// An OAuth token answer (`access_token`, `expires_in`).
pub fn oauth_token(system: &str, r: &HttpResponse) -> Result<AccessToken> {
    if !(200..300).contains(&r.status) {
        let msg = match serde_json::from_str::<TokenRefusal>(&r.body) {
            Ok(refusal) => refusal.error_description.unwrap_or(refusal.error),
            // Not the RFC's shape (a proxy's page): its text as it came.
            Err(_) => r.body.clone(),
        };
        // A refused grant is a configuration problem, not a passing one.
        let mut e = status_error(system, r, &format!("token: {msg}"));
        if r.status == 400 || r.status == 401 {
            e = ConnectorError::Permanent(e.to_string());
        }
        return Err(e);
    }
    let answer: TokenAnswer = Shape {
        system: None,
        shape: "as RFC 6749 (OAuth 2.0) defines a token answer",
    }
    .read_str(&r.body, "the token answer")
    .map_err(|e| ConnectorError::Transient(format!("{system}: {e}")))?;
    Ok(AccessToken {
        token: answer.access_token,
        expires_in: answer
            .expires_in
            .map_or(UNSTATED_TOKEN_LIFETIME, Duration::from_secs),
        refresh_token: answer.refresh_token,
        scope: answer.scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            retry_after: None,
            body: body.into(),
        }
    }

    #[test]
    fn a_token_answer_is_read_as_rfc_6749_defines_it() {
        let t = oauth_token(
            "xero",
            &answer(
                200,
                r#"{"access_token":"a","expires_in":600,"refresh_token":"r","scope":"s"}"#,
            ),
        )
        .unwrap();
        assert_eq!(
            (
                t.token.as_str(),
                t.expires_in,
                t.refresh_token.as_deref(),
                t.scope.as_deref()
            ),
            ("a", Duration::from_secs(600), Some("r"), Some("s"))
        );
        // expires_in is only recommended: unstated, the token is refreshed early.
        let t = oauth_token("xero", &answer(200, r#"{"access_token":"a"}"#)).unwrap();
        assert_eq!(t.expires_in, UNSTATED_TOKEN_LIFETIME);
        // No access token is no token, whatever else the answer holds.
        let e = oauth_token("xero", &answer(200, r#"{"token":"a"}"#)).unwrap_err();
        assert!(matches!(e, ConnectorError::Transient(_)), "{e}");
        assert!(e.to_string().contains("access_token"), "{e}");
        // A refusal says why in its own words, and is not retried.
        let e = oauth_token(
            "xero",
            &answer(
                400,
                r#"{"error":"invalid_grant","error_description":"grant revoked"}"#,
            ),
        )
        .unwrap_err();
        assert!(matches!(e, ConnectorError::Permanent(_)), "{e}");
        assert!(e.to_string().contains("grant revoked"), "{e}");
        let e = oauth_token("xero", &answer(400, r#"{"error":"invalid_grant"}"#)).unwrap_err();
        assert!(e.to_string().contains("invalid_grant"), "{e}");
    }

    /// A draft whose statement link accounting systems without attachments
    /// print on the invoice.
    fn linked_draft() -> Draft {
        serde_json::from_value(serde_json::json!({
            "customer": "riga-bakery", "period": "2026-10", "revision": 1,
            "currency": "EUR", "total_net": "40.00", "date": "2026-11-01",
            "lines": [{"kind": "work", "description": "Support work, 1 h", "quantity": "1",
                       "unit_price": "40.00", "amount": "40.00", "tickets": ["T-1"]}],
            "statement_url": "https://bridge.example.com/statement/riga-bakery?expires=1&sig=ab"
        }))
        .unwrap()
    }

    fn body(api: &dyn AccountingApi) -> serde_json::Value {
        let r = api
            .create_draft("draft:riga-bakery:2026-10:r1", "ref", &linked_draft())
            .unwrap();
        serde_json::from_slice(&r.body).unwrap()
    }

    /// Two lines of different kinds, each with its own codes (issue 17),
    /// and one without: it keeps the draft's and the target's.
    fn coded_draft() -> Draft {
        serde_json::from_value(serde_json::json!({
            "customer": "riga-bakery", "period": "2026-10", "revision": 1,
            "currency": "EUR", "total_net": "390.00", "date": "2026-11-01",
            "refs": {"item": "SUPPORT"},
            "lines": [
                {"kind": "monthly_fee", "description": "Fee", "quantity": "1",
                 "unit_price": "350.00", "amount": "350.00", "tickets": [],
                 "refs": {"account": "3010", "item": "FEE", "tax": "25",
                          "tracking": {"Region": "North"}}},
                {"kind": "work", "description": "Support work, 1 h", "quantity": "1",
                 "unit_price": "40.00", "amount": "40.00", "tickets": ["T-1"],
                 "refs": {"account": "3020", "tax": "0"}},
                {"kind": "call_out", "description": "Call-out fee × 0", "quantity": "0",
                 "unit_price": "15.00", "amount": "0.00", "tickets": []}
            ]
        }))
        .unwrap()
    }

    fn coded_body(api: &dyn AccountingApi) -> serde_json::Value {
        let r = api
            .create_draft("draft:riga-bakery:2026-10:r1", "ref", &coded_draft())
            .unwrap();
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn each_line_carries_its_own_account_item_and_tax() {
        let xero: crate::xero::XeroConfig = serde_json::from_value(serde_json::json!({
            "client_id": "c", "client_secret": "s", "contacts": {"riga-bakery": "C-1"},
            "account_code": "200", "tax_type": "OUTPUT2"
        }))
        .unwrap();
        let items = coded_body(&xero)["Invoices"][0]["LineItems"].clone();
        assert_eq!(
            (
                &items[0]["AccountCode"],
                &items[0]["ItemCode"],
                &items[0]["TaxType"]
            ),
            (&"3010".into(), &"FEE".into(), &"25".into())
        );
        assert_eq!(
            items[0]["Tracking"],
            serde_json::json!([{"Name": "Region", "Option": "North"}])
        );
        assert_eq!(items[1]["AccountCode"], "3020");
        assert_eq!(items[1]["ItemCode"], "SUPPORT", "the draft's item");
        assert_eq!(items[1].get("Tracking"), None);
        assert_eq!(
            (&items[2]["AccountCode"], &items[2]["TaxType"]),
            (&"200".into(), &"OUTPUT2".into()),
            "a line without codes: the target's"
        );
        let fortnox: crate::fortnox::FortnoxConfig = serde_json::from_value(serde_json::json!({
            "client_id": "c", "client_secret": "s", "tenant_id": "t",
            "customers": {"riga-bakery": "1042"}, "account_number": 3001
        }))
        .unwrap();
        let rows = coded_body(&fortnox)["Invoice"]["InvoiceRows"].clone();
        assert_eq!(
            (
                &rows[0]["AccountNumber"],
                &rows[0]["ArticleNumber"],
                &rows[0]["VAT"]
            ),
            (&3010.into(), &"FEE".into(), &25.into())
        );
        assert_eq!(
            (&rows[1]["AccountNumber"], &rows[1]["VAT"]),
            (&3020.into(), &0.into())
        );
        assert_eq!(rows[2]["AccountNumber"], 3001);
        let economic: crate::economic::EconomicConfig = serde_json::from_value(serde_json::json!({
            "app_secret_token": "a", "agreement_grant_token": "g",
            "customers": {"riga-bakery": 7}, "layout_number": 1, "payment_terms_number": 1,
            "vat_zone_number": 1
        }))
        .unwrap();
        let lines = coded_body(&economic)["lines"].clone();
        assert_eq!(lines[0]["product"]["productNumber"], "FEE");
        assert_eq!(lines[1]["product"]["productNumber"], "SUPPORT");
        let qb: crate::quickbooks::QuickBooksConfig = serde_json::from_value(serde_json::json!({
            "realm_id": "1", "client_id": "c", "client_secret": "s", "refresh_token": "r",
            "customers": {"riga-bakery": "58"}, "item": "1"
        }))
        .unwrap();
        let lines = coded_body(&qb)["Line"].clone();
        assert_eq!(lines[0]["SalesItemLineDetail"]["ItemRef"]["value"], "FEE");
        assert_eq!(lines[1]["SalesItemLineDetail"]["TaxCodeRef"]["value"], "0");
        assert_eq!(
            lines[2]["SalesItemLineDetail"]["ItemRef"]["value"],
            "SUPPORT"
        );
    }

    #[test]
    fn the_statement_link_is_printed_where_each_system_shows_text_to_the_customer() {
        let line =
            "Balance statement: https://bridge.example.com/statement/riga-bakery?expires=1&sig=ab";
        let qb: crate::quickbooks::QuickBooksConfig = serde_json::from_value(serde_json::json!({
            "realm_id": "1", "client_id": "c", "client_secret": "s", "refresh_token": "r",
            "customers": {"riga-bakery": "58"}
        }))
        .unwrap();
        assert_eq!(body(&qb)["CustomerMemo"]["value"], line);
        let fortnox: crate::fortnox::FortnoxConfig = serde_json::from_value(serde_json::json!({
            "client_id": "c", "client_secret": "s", "tenant_id": "t",
            "customers": {"riga-bakery": "1042"}
        }))
        .unwrap();
        assert_eq!(body(&fortnox)["Invoice"]["Remarks"], line);
        let economic: crate::economic::EconomicConfig = serde_json::from_value(serde_json::json!({
            "app_secret_token": "a", "agreement_grant_token": "g",
            "customers": {"riga-bakery": 7}, "layout_number": 1, "payment_terms_number": 1,
            "vat_zone_number": 1
        }))
        .unwrap();
        let e = body(&economic);
        assert_eq!(e["notes"]["textLine2"], line);
        assert_eq!(
            e["notes"]["textLine1"], "ref",
            "our reference stays where lookups find it"
        );
    }

    #[test]
    fn a_quantity_with_too_many_decimals_becomes_one_times_the_amount() {
        let line = crate::DraftLine {
            kind: "work".into(),
            description: "Support".into(),
            quantity: "1.2917".into(),
            unit_price: "60.00".into(),
            amount: "77.50".into(),
            tickets: vec![],
            corrects: None,
            refs: Default::default(),
        };
        assert_eq!(
            fit_quantity(&line, 2),
            (
                "1".into(),
                "77.50".into(),
                "Support (1.2917 × 60.00)".into()
            )
        );
        assert_eq!(fit_quantity(&line, 4).0, "1.2917");
        let whole = crate::DraftLine {
            quantity: "3.2500".into(),
            ..line
        };
        assert_eq!(fit_quantity(&whole, 2).0, "3.2500");
    }

    #[test]
    fn forms_numbers_and_decimals() {
        assert_eq!(
            String::from_utf8(form(&[
                ("grant_type", "client_credentials"),
                ("scope", "a b/c")
            ]))
            .unwrap(),
            "grant_type=client_credentials&scope=a+b%2Fc"
        );
        assert_eq!(number("12.50"), serde_json::json!(12.50));
        assert_eq!(
            decimal(&serde_json::json!("1637.50")),
            Some(Decimal::new(163750, 2))
        );
        assert_eq!(
            decimal(&serde_json::json!(12.5)),
            Some(Decimal::new(125, 1))
        );
    }
}
