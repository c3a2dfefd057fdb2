//! Xero: draft sales invoices (`Type: ACCREC`, `Status: DRAFT`) through the
//! Accounting API: with a custom connection's client credentials, or, for
//! a standard connection, the refresh token of the authorization-code flow,
//! which Xero rotates (the daemon stores each new one, one instance at a
//! time).
//!
//! Created with `PUT /Invoices` (a `POST` would update a draft with the same
//! number, overwriting finance's edits) under our `Idempotency-Key`; found
//! again by `Reference`, our stable reference. Xero rounds tax per line and
//! keeps `SubTotal` without tax: that is what we compare with our total.
//! Limits: 60 requests a minute per organisation.
//!
//! Every answer is read through a typed struct of transformers.rs (a field
//! missing or renamed is an error naming it, never a zero), and every body
//! sent is serialized from one.

mod attachment;
pub mod scopes;
mod transformers;

use crate::Result;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::accounting::{
    AccessToken, AccountingApi, CodeKind, ListedCode, RemoteDraft, RemoteInvoice, SalesAsk,
    SalesPage, StatusAnswer, StatusStep, encode, json, number, oauth_token, status_error,
    token_post,
};
use crate::{ConnectorError, Draft, HttpMethod, HttpRequest, HttpResponse, Secret};
pub use transformers::ms_date;
use transformers::{
    Accounts, CreatedInvoice, DraftInvoice, ErrorBody, Invoice, Invoices, InvoicesBody, Items,
    LineAmountTypes, NewContact, NewInvoice, NewLine, NewTracking, ReferencedInvoice, TaxRates,
    TokenError, active, parse, read,
};

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct XeroConfig {
    #[serde(default = "default_base")]
    pub base_url: String,
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// Where `connect` sends the browser for consent.
    #[serde(default = "default_authorize_url")]
    pub authorize_url: String,
    /// The organisations a consent reaches (`GET /connections`).
    #[serde(default = "default_connections_url")]
    pub connections_url: String,
    /// The redirect URI registered with the app, when `connect` is not to
    /// listen on `http://localhost:PORT/callback` itself.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    pub client_id: String,
    pub client_secret: Secret,
    /// A standard connection's first refresh token, from a consent made
    /// with another tool; `contract-bridge connect` stores one in the store
    /// instead. Neither: a custom connection, with client credentials.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// The organisation (`xero-tenant-id`); none: the one chosen at
    /// `connect` (a custom connection needs none).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Our customer key → Xero `ContactID`, for customers whose mapping
    /// names no `accounting.<target>.contact`.
    #[serde(default)]
    pub contacts: BTreeMap<String, String>,
    /// The revenue account of every line.
    #[serde(default = "default_account")]
    pub account_code: String,
    /// The tax type of every line (region-specific, e.g. `OUTPUT2`); none: the account's default.
    #[serde(default)]
    pub tax_type: Option<String>,
    /// The webhook signing key Xero shows for the app's webhook
    /// (`POST /webhooks/accounting/{target}`); none: its webhooks are refused.
    #[serde(default)]
    pub webhook_key: Option<Secret>,
    #[serde(default = "crate::defaults::per_second::<1>")]
    pub requests_per_second: u32,
    #[serde(default = "crate::defaults::timeout_ms::<30_000>")]
    pub timeout_ms: u64,
    /// The OAuth scopes to ask for instead of those derived from what the
    /// configuration uses (see scopes.rs): for apps created before 2 March
    /// 2026 that hold the broad `accounting.transactions`.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// The target's name, for messages (set by the daemon's settings).
    #[serde(skip)]
    pub name: String,
    /// Report PDFs are made and attached (set by the daemon's settings from `report.chromium`).
    #[serde(skip)]
    pub report_pdfs: bool,
    /// `check` reads its accounts, tax rates and items (set by `check` when
    /// the mapping has `accounts.<target>`).
    #[serde(skip)]
    pub lists_codes: bool,
}

crate::defaults::defaults! {
    default_base = "https://api.xero.com/api.xro/2.0";
    default_token_url = "https://identity.xero.com/connect/token";
    default_authorize_url = "https://login.xero.com/identity/connect/authorize";
    default_connections_url = "https://api.xero.com/connections";
    default_account = "200";
}

const SYSTEM: &str = "xero";

impl XeroConfig {
    fn request(&self, method: HttpMethod, url: String, body: Vec<u8>) -> HttpRequest {
        let mut r = HttpRequest::json(method, url, body, self.timeout_ms);
        if let Some(t) = &self.tenant_id {
            r.headers.push(("xero-tenant-id".into(), t.clone()));
        }
        r
    }

    fn get(&self, path: String) -> HttpRequest {
        self.request(
            HttpMethod::Get,
            format!("{}{path}", self.base_url),
            Vec::new(),
        )
    }
}

/// The idempotency key of a batch: the same drafts give the same key
/// (FNV-1a over their keys), within Xero's 128 characters.
fn batch_key(keys: &[&str]) -> String {
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_unstable();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for k in sorted {
        for b in k.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("batch:{}:{h:016x}", keys.len())
}

/// What Xero said went wrong: the message and every validation error; a
/// body of another shape (a 401's problem document, an HTML page) as it
/// came, shortened.
fn message(r: &HttpResponse) -> String {
    match serde_json::from_str::<ErrorBody>(&r.body).map(|b| b.messages()) {
        Ok(parts) if !parts.is_empty() => parts.join("; "),
        _ => r.body.chars().take(200).collect(),
    }
}

fn check(r: &HttpResponse) -> Result<serde_json::Value> {
    if !(200..300).contains(&r.status) {
        return Err(status_error(SYSTEM, r, &message(r)));
    }
    json(r, SYSTEM)
}

impl XeroConfig {
    /// [`check`] of an invoice answer: a 403 is a scope this connection lacks.
    fn check_invoices(&self, r: &HttpResponse) -> Result<serde_json::Value> {
        if r.status == 403 {
            return Err(self.scope_missing(r.status, scopes::INVOICES, "a draft invoice"));
        }
        check(r)
    }
}

/// The first invoice of a lookup or a read by id, if any.
fn first_draft(v: serde_json::Value, what: &str) -> Result<Option<RemoteDraft>> {
    let answer: Invoices<DraftInvoice> = read(v, what)?;
    Ok(answer.invoices.first().map(DraftInvoice::remote))
}

/// Is `signature` (`x-xero-signature`) the base64 HMAC-SHA256 of the raw
/// body under the webhook key? Compared in constant time.
pub fn webhook_signed(key: &str, body: &[u8], signature: Option<&str>) -> bool {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let Some(given) = signature.and_then(|s| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .ok()
    }) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// One event of a Xero webhook delivery, as Xero documents it
/// (`resourceUrl`, `tenantId`… are read by nobody here).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub resource_id: String,
    /// `INVOICE`, `CONTACT`, …
    #[serde(rename = "eventCategory")]
    pub category: String,
    /// `CREATE` or `UPDATE`.
    #[serde(rename = "eventType")]
    pub kind: String,
    #[serde(rename = "eventDateUtc")]
    pub at: String,
}

impl WebhookEvent {
    /// What makes a delivery the same delivery again.
    pub fn id(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.category, self.resource_id, self.kind, self.at
        )
    }
}

#[derive(Deserialize)]
struct WebhookPayload {
    events: Vec<WebhookEvent>,
}

/// The events of a delivery (none in the intent-to-receive handshake).
pub fn webhook_events(body: &[u8]) -> Result<Vec<WebhookEvent>, String> {
    serde_json::from_slice::<WebhookPayload>(body)
        .map(|p| p.events)
        .map_err(|e| format!("not a Xero webhook payload: {e}"))
}

impl AccountingApi for XeroConfig {
    /// Xero's webhooks: signed with `x-xero-signature` under the target's
    /// `webhook_key`. A bad signature is refused with an empty body, as
    /// Xero's intent-to-receive handshake requires; the invoices of its
    /// `INVOICE` events are the ones that changed.
    fn webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Vec<crate::accounting::InvoiceChanged>, crate::delivery::WebhookRefusal> {
        use crate::delivery::WebhookRefusal;
        let key = self.webhook_key.as_ref().ok_or_else(|| {
            WebhookRefusal::NotTaken(
                "this Xero target takes no webhooks (it has no webhook_key)".into(),
            )
        })?;
        let signature = crate::delivery::header(headers, "x-xero-signature");
        if !webhook_signed(key.expose(), body, signature) {
            return Err(WebhookRefusal::BadSignature);
        }
        let events = webhook_events(body).map_err(WebhookRefusal::Malformed)?;
        Ok(events
            .into_iter()
            .filter(|e| e.category == "INVOICE")
            .map(|e| crate::accounting::InvoiceChanged {
                delivery: e.id(),
                invoice: e.resource_id,
            })
            .collect())
    }

    fn code_lists(&self) -> Vec<(crate::accounting::CodeKind, HttpRequest)> {
        use crate::accounting::CodeKind;
        [
            (CodeKind::Account, "Accounts"),
            (CodeKind::Tax, "TaxRates"),
            (CodeKind::Item, "Items"),
        ]
        .into_iter()
        .map(|(kind, path)| (kind, self.get(format!("/{path}"))))
        .collect()
    }

    fn read_codes(&self, kind: CodeKind, r: &HttpResponse) -> Result<Vec<ListedCode>> {
        if !(200..300).contains(&r.status) {
            return Err(status_error("xero", r, "listing codes"));
        }
        let v = json(r, SYSTEM)?;
        let what = format!("the {} list", kind.key());
        // A list not as documented is no passing failure: `check` says so.
        let bad = ConnectorError::Permanent;
        Ok(match kind {
            CodeKind::Account => parse::<Accounts>(v, &what)
                .map_err(bad)?
                .accounts
                .into_iter()
                .filter(|a| active(a.status.as_deref()))
                .filter_map(|a| {
                    a.code.filter(|c| !c.is_empty()).map(|code| ListedCode {
                        code,
                        name: a.name,
                        rate: None,
                    })
                })
                .collect(),
            CodeKind::Tax => parse::<TaxRates>(v, &what)
                .map_err(bad)?
                .tax_rates
                .into_iter()
                .filter(|t| active(t.status.as_deref()))
                .map(|t| ListedCode {
                    code: t.tax_type,
                    name: t.name,
                    rate: t.effective_rate.map(|r| r.0),
                })
                .collect(),
            CodeKind::Item => parse::<Items>(v, &what)
                .map_err(bad)?
                .items
                .into_iter()
                .map(|i| ListedCode {
                    code: i.code,
                    // Shown beside the code; an item may have no name.
                    name: i.name.unwrap_or_default(),
                    rate: None,
                })
                .collect(),
        })
    }

    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn rotates_refresh_tokens(&self) -> bool {
        self.refresh_token.is_some()
    }

    fn oauth_app(&self) -> Option<crate::oauth::OAuthApp> {
        // `offline_access` is what makes Xero issue a refresh token.
        let mut scopes = vec!["offline_access".to_owned()];
        scopes.extend(self.scopes());
        Some(crate::oauth::OAuthApp {
            system: SYSTEM,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            authorize_url: self.authorize_url.clone(),
            token_url: self.token_url.clone(),
            scopes,
            client_auth: crate::oauth::ClientAuth::Basic,
            json_token_requests: false,
            authorize_params: Vec::new(),
            tenants: crate::oauth::TenantSource::Connections {
                url: self.connections_url.clone(),
            },
            tenant: self.tenant_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            refresh_token: self.refresh_token.clone(),
            timeout_ms: self.timeout_ms,
        })
    }

    fn token_request(&self, refresh: Option<&str>) -> Result<Option<HttpRequest>> {
        // A custom connection asks for its scopes; a standard connection's
        // refresh keeps those its consent granted.
        let scope = self.scopes().join(" ");
        let grant = match (&self.refresh_token, refresh) {
            (Some(initial), stored) => vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", stored.unwrap_or(initial.expose())),
            ],
            (None, _) => vec![
                ("grant_type", "client_credentials"),
                ("scope", scope.as_str()),
            ],
        };
        Ok(Some(token_post(
            &self.token_url,
            &self.client_id,
            &self.client_secret,
            &grant,
            self.timeout_ms,
        )))
    }

    fn read_token(&self, r: &HttpResponse) -> Result<AccessToken> {
        // `{"error": "invalid_scope"}` (RFC 6749 §5.2): a scope the app
        // does not hold, e.g. the broad one on an app created since March 2026.
        if r.status == 400
            && let Ok(refusal) = serde_json::from_str::<TokenError>(&r.body)
            && refusal.error == "invalid_scope"
        {
            let said = match refusal.error_description {
                Some(d) => format!("invalid_scope ({d})"),
                None => "invalid_scope".to_owned(),
            };
            return Err(self.scopes_refused(&said));
        }
        let token = oauth_token(SYSTEM, r)?;
        // The answer's `scope` says what was granted: without invoices no draft can go.
        if let Some(granted) = &token.scope
            && !scopes::covers(granted, scopes::INVOICES)
        {
            return Err(ConnectorError::Permanent(format!(
                "{SYSTEM}: the token grants `{granted}`, without `{}` (or `{}`), which drafts need: add it to the app in Xero's developer portal{}",
                scopes::INVOICES,
                scopes::TRANSACTIONS,
                if self.scopes.is_some() {
                    format!(" and to `{}`", self.scopes_setting())
                } else {
                    String::new()
                }
            )));
        }
        Ok(token)
    }

    fn tenant_header(&self) -> Option<&'static str> {
        self.tenant_id.is_none().then_some("xero-tenant-id")
    }

    fn find_draft(&self, reference: &str) -> Result<HttpRequest> {
        self.find_drafts(&[reference])
    }

    fn read_found(&self, r: &HttpResponse) -> Result<Option<RemoteDraft>> {
        first_draft(self.check_invoices(r)?, "the answer to a lookup")
    }

    fn create_draft(&self, key: &str, reference: &str, d: &Draft) -> Result<HttpRequest> {
        let body = InvoicesBody {
            invoices: vec![self.batch_item(key, reference, d)?],
        };
        let mut r = self.request(
            HttpMethod::Put,
            format!("{}/Invoices?unitdp=4&summarizeErrors=true", self.base_url),
            serde_json::to_vec(&body).map_err(|e| ConnectorError::Permanent(e.to_string()))?,
        );
        // Xero keeps keys up to 128 characters.
        r.headers
            .push(("idempotency-key".into(), key.chars().take(128).collect()));
        Ok(r)
    }

    fn batch_item(&self, _key: &str, reference: &str, d: &Draft) -> Result<serde_json::Value> {
        let contact = d.contact(&self.contacts).ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "xero: no ContactID for customer `{}`: set `accounting.<target>.contact` in the mapping or the target's `contacts`",
                d.customer
            ))
        })?;
        // Per line (issue 17): the line's own codes, else the draft's, else the target's.
        let line_items = d
            .lines
            .iter()
            .map(|l| NewLine {
                description: &l.description,
                quantity: number(&l.quantity),
                unit_amount: number(&l.unit_price),
                account_code: d.account_of(l).unwrap_or(&self.account_code),
                tax_type: d.tax_of(l).or(self.tax_type.as_ref()).map(String::as_str),
                item_code: d.item_of(l).map(String::as_str),
                tracking: l
                    .refs
                    .tracking
                    .iter()
                    .map(|(name, option)| NewTracking { name, option })
                    .collect(),
            })
            .collect();
        let invoice = NewInvoice {
            kind: "ACCREC",
            status: "DRAFT",
            contact: NewContact { id: contact },
            date: &d.date,
            line_amount_types: LineAmountTypes::Exclusive,
            reference,
            currency_code: &d.currency,
            line_items,
        };
        serde_json::to_value(invoice).map_err(|e| ConnectorError::Permanent(e.to_string()))
    }

    fn batch_size(&self) -> usize {
        // Xero's advice for several invoices in one request: at most 50.
        50
    }

    fn find_drafts(&self, references: &[&str]) -> Result<HttpRequest> {
        let filter = references
            .iter()
            .map(|r| format!("Reference==\"{}\"", r.replace('"', "")))
            .collect::<Vec<_>>()
            .join(" OR ");
        Ok(self.get(format!("/Invoices?where={}", encode(&filter))))
    }

    fn read_found_drafts(&self, r: &HttpResponse) -> Result<Vec<(String, RemoteDraft)>> {
        let answer: Invoices<ReferencedInvoice> =
            read(self.check_invoices(r)?, "the answer to a lookup")?;
        Ok(answer
            .invoices
            .iter()
            .map(|inv| (inv.reference.clone(), inv.remote()))
            .collect())
    }

    fn create_drafts(&self, keys: &[&str], items: Vec<serde_json::Value>) -> Result<HttpRequest> {
        let body = InvoicesBody { invoices: items };
        // `summarizeErrors=false`: Xero answers 200 with every invoice, each
        // with `StatusAttributeString` OK or ERROR and its `ValidationErrors`,
        // instead of refusing the whole request for one bad invoice.
        let mut r = self.request(
            HttpMethod::Put,
            format!("{}/Invoices?unitdp=4&summarizeErrors=false", self.base_url),
            serde_json::to_vec(&body).map_err(|e| ConnectorError::Permanent(e.to_string()))?,
        );
        r.headers.push(("idempotency-key".into(), batch_key(keys)));
        Ok(r)
    }

    fn read_created_drafts(
        &self,
        r: &HttpResponse,
    ) -> Result<Vec<(String, Result<RemoteDraft, String>)>> {
        let answer: Invoices<CreatedInvoice> =
            read(self.check_invoices(r)?, "the answer to a batch")?;
        Ok(answer
            .invoices
            .iter()
            .map(|inv| (inv.reference.clone(), inv.outcome()))
            .collect())
    }

    fn read_created(&self, r: &HttpResponse) -> Result<RemoteDraft> {
        let answer: Invoices<CreatedInvoice> =
            read(self.check_invoices(r)?, "the created invoice")?;
        let created = answer.invoices.first().ok_or_else(|| {
            ConnectorError::Transient("xero: the created invoice has no InvoiceID".into())
        })?;
        if created.has_errors {
            return Err(ConnectorError::Permanent(format!("xero: {}", message(r))));
        }
        let id = created.id.clone().ok_or_else(|| {
            ConnectorError::Transient("xero: the created invoice has no InvoiceID".into())
        })?;
        Ok(RemoteDraft {
            id,
            total_net: created.sub_total.map(|a| a.0),
        })
    }

    fn fetch_draft(&self, id: &str) -> Result<HttpRequest> {
        Ok(self.get(format!("/Invoices/{}", encode(id))))
    }

    fn read_fetched(&self, r: &HttpResponse) -> Result<RemoteDraft> {
        first_draft(check(r)?, "the invoice read back")?
            .ok_or_else(|| ConnectorError::Transient("xero: no invoice in the answer".into()))
    }

    // The report's PDF: see attachment.rs.
    fn list_attachments(&self, id: &str) -> Option<HttpRequest> {
        Some(self.list_attachments_request(id))
    }

    fn read_attachments(&self, r: &HttpResponse) -> Result<Vec<String>> {
        self.check_attachments(r)?;
        attachment::attachment_names(r)
    }

    fn attach(&self, id: &str, file_name: &str, mime: &str, bytes: &[u8]) -> Option<HttpRequest> {
        Some(self.attach_request(id, file_name, mime, bytes))
    }

    fn read_attached(&self, r: &HttpResponse, file_name: &str) -> Result<()> {
        self.check_attachments(r)?;
        attachment::attached(r, file_name)
    }

    fn statuses_request(&self, remote_ids: &[&str]) -> Option<HttpRequest> {
        // `IDs`: Xero's filter by a comma-separated list of InvoiceIDs.
        Some(self.get(format!("/Invoices?IDs={}", encode(&remote_ids.join(",")))))
    }

    fn read_statuses(&self, r: &HttpResponse) -> Result<Vec<RemoteInvoice>> {
        let answer: Invoices<Invoice> =
            read(self.check_invoices(r)?, "the answer to a status poll")?;
        answer.invoices.iter().map(Invoice::remote).collect()
    }

    fn read_status(&self, answer: StatusAnswer<'_>) -> Result<StatusStep> {
        let StatusAnswer {
            remote_id,
            response: r,
            ..
        } = answer;
        // A deleted draft is still answered, with `Status: DELETED`; a 404
        // means the same.
        if r.status == 404 {
            return Ok(StatusStep::deleted(remote_id));
        }
        let answer: Invoices<Invoice> = read(check(r)?, "the answer to a status read")?;
        let inv = answer
            .invoices
            .first()
            .ok_or_else(|| ConnectorError::Transient("xero: no invoice in the answer".into()))?;
        inv.remote().map(StatusStep::Known)
    }

    fn contact_of(&self, customer: &str) -> Option<String> {
        self.contacts.get(customer).cloned()
    }

    fn sales_request(&self, ask: SalesAsk<'_>) -> Result<Option<HttpRequest>> {
        let SalesAsk { cursor, page, .. } = ask;
        // Line items come with paged answers; Xero cannot filter by item,
        // so every issued sales invoice changed since the cursor is read.
        let filter = encode("Type==\"ACCREC\"");
        let mut r = self.get(format!(
            "/Invoices?where={filter}&Statuses=AUTHORISED,PAID&order=UpdatedDateUTC&page={page}"
        ));
        if let Some(c) = cursor {
            r.headers.push(("if-modified-since".into(), c.to_owned()));
        }
        Ok(Some(r))
    }

    fn read_sales(&self, r: &HttpResponse) -> Result<SalesPage> {
        // Not modified since the cursor: nothing to read.
        if r.status == 304 {
            return Ok(SalesPage::default());
        }
        let answer: Invoices<Invoice> = read(check(r)?, "a page of sales invoices")?;
        let mut page = SalesPage {
            // Xero's pages hold 100 invoices.
            more: answer.invoices.len() >= 100,
            ..SalesPage::default()
        };
        for inv in &answer.invoices {
            if let Some(text) = inv.updated()
                && page.cursor.as_ref().is_none_or(|c| *c < text)
            {
                page.cursor = Some(text);
            }
            page.invoices.push(inv.remote()?);
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::DraftStatus;

    fn remote_invoice(inv: serde_json::Value) -> Result<RemoteInvoice> {
        read::<Invoice>(inv, "an invoice")?.remote()
    }

    #[test]
    fn an_invoice_is_read_with_its_status_date_and_item_lines() {
        let inv = serde_json::json!({
            "InvoiceID": "i-1", "Status": "PAID", "Contact": {"ContactID": "C-1"},
            "Date": "/Date(1791158400000+0000)/", "CurrencyCode": "DKK",
            "LineAmountTypes": "Inclusive",
            "LineItems": [
                {"LineItemID": "l-1", "ItemCode": "KLIPPEKORT-20", "Quantity": 2.0,
                 "LineAmount": 45000.0, "TaxAmount": 9000.0},
                {"LineItemID": "l-2", "Description": "no item", "LineAmount": 10.0}
            ]
        });
        let r = remote_invoice(inv).unwrap();
        assert_eq!(r.status, DraftStatus::Paid);
        assert_eq!(r.contact.as_deref(), Some("C-1"));
        assert_eq!(r.date.unwrap().to_string(), "2026-10-05");
        assert_eq!(r.lines.len(), 1, "only lines naming an item");
        assert_eq!(
            r.lines[0].amount,
            rust_decimal::Decimal::new(36000, 0),
            "without tax"
        );
        let unknown = serde_json::json!({"InvoiceID": "i-2", "Status": "ARCHIVED"});
        assert!(matches!(
            remote_invoice(unknown),
            Err(ConnectorError::Permanent(_))
        ));
    }

    /// The bodies we PUT, byte for byte as before they were typed structs
    /// (keys sorted, numbers as the draft's decimals).
    #[test]
    fn the_draft_bodies_are_what_they_were() {
        let x: XeroConfig = serde_json::from_value(serde_json::json!({
            "client_id": "c", "client_secret": "s", "tax_type": "OUTPUT2"
        }))
        .unwrap();
        let d: Draft = serde_json::from_value(serde_json::json!({
            "customer": "riga-bakery", "period": "2026-10", "revision": 1,
            "currency": "EUR", "total_net": "77.50", "date": "2026-11-01",
            "refs": {"contact": "C-1", "item": "SUPPORT"},
            "lines": [
                {"kind": "work", "description": "Support \"onsite\"", "quantity": "1.2917",
                 "unit_price": "60.00", "amount": "77.50", "tickets": ["T-1"],
                 "refs": {"account": "210", "tax": "NONE", "tracking": {"Region": "North", "Dept": "Ops"}}},
                {"kind": "monthly_fee", "description": "Fee", "quantity": "1",
                 "unit_price": "0", "amount": "0", "tickets": []}
            ]
        }))
        .unwrap();
        let one = x.create_draft("k", "ref", &d).unwrap();
        assert_eq!(
            String::from_utf8(one.body).unwrap(),
            r#"{"Invoices":[{"Contact":{"ContactID":"C-1"},"CurrencyCode":"EUR","Date":"2026-11-01","LineAmountTypes":"Exclusive","LineItems":[{"AccountCode":"210","Description":"Support \"onsite\"","ItemCode":"SUPPORT","Quantity":1.2917,"TaxType":"NONE","Tracking":[{"Name":"Dept","Option":"Ops"},{"Name":"Region","Option":"North"}],"UnitAmount":60.0},{"AccountCode":"200","Description":"Fee","ItemCode":"SUPPORT","Quantity":1,"TaxType":"OUTPUT2","UnitAmount":0}],"Reference":"ref","Status":"DRAFT","Type":"ACCREC"}]}"#
        );
        let items = vec![
            x.batch_item("k", "a", &d).unwrap(),
            x.batch_item("k2", "b", &d).unwrap(),
        ];
        let batch = x.create_drafts(&["k", "k2"], items).unwrap();
        assert_eq!(
            String::from_utf8(batch.body).unwrap(),
            r#"{"Invoices":[{"Contact":{"ContactID":"C-1"},"CurrencyCode":"EUR","Date":"2026-11-01","LineAmountTypes":"Exclusive","LineItems":[{"AccountCode":"210","Description":"Support \"onsite\"","ItemCode":"SUPPORT","Quantity":1.2917,"TaxType":"NONE","Tracking":[{"Name":"Dept","Option":"Ops"},{"Name":"Region","Option":"North"}],"UnitAmount":60.0},{"AccountCode":"200","Description":"Fee","ItemCode":"SUPPORT","Quantity":1,"TaxType":"OUTPUT2","UnitAmount":0}],"Reference":"a","Status":"DRAFT","Type":"ACCREC"},{"Contact":{"ContactID":"C-1"},"CurrencyCode":"EUR","Date":"2026-11-01","LineAmountTypes":"Exclusive","LineItems":[{"AccountCode":"210","Description":"Support \"onsite\"","ItemCode":"SUPPORT","Quantity":1.2917,"TaxType":"NONE","Tracking":[{"Name":"Dept","Option":"Ops"},{"Name":"Region","Option":"North"}],"UnitAmount":60.0},{"AccountCode":"200","Description":"Fee","ItemCode":"SUPPORT","Quantity":1,"TaxType":"OUTPUT2","UnitAmount":0}],"Reference":"b","Status":"DRAFT","Type":"ACCREC"}]}"#
        );
    }

    #[test]
    fn contacts_are_optional_when_the_mapping_names_each_contact() {
        let x: XeroConfig = serde_json::from_value(serde_json::json!({
            "client_id": "c", "client_secret": "s"
        }))
        .unwrap();
        assert!(x.contacts.is_empty());
        let draft = |refs: serde_json::Value| -> Draft {
            serde_json::from_value(serde_json::json!({
                "customer": "riga-bakery", "period": "2026-10", "revision": 1,
                "currency": "EUR", "total_net": "40.00", "date": "2026-11-01",
                "lines": [{"kind": "work", "description": "Support", "quantity": "1",
                           "unit_price": "40.00", "amount": "40.00", "tickets": ["T-1"]}],
                "refs": refs
            }))
            .unwrap()
        };
        let named = draft(serde_json::json!({"contact": "b7a4a7a2-5a3b-4a4b-9b2f-3c1f1b0e9d11"}));
        let r = x.create_draft("k", "ref", &named).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body["Invoices"][0]["Contact"]["ContactID"],
            "b7a4a7a2-5a3b-4a4b-9b2f-3c1f1b0e9d11"
        );
        let e = x
            .create_draft("k", "ref", &draft(serde_json::json!({})))
            .unwrap_err();
        assert!(e.to_string().contains("accounting.<target>.contact"), "{e}");
    }

    #[test]
    fn a_webhook_signature_is_the_base64_hmac_of_the_raw_body() {
        // The key and signature of Xero's own webhook example payload style.
        use base64::Engine;
        use hmac::{KeyInit, Mac};
        let body = br#"{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"X"}"#;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"key").unwrap();
        mac.update(body);
        let good = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert!(webhook_signed("key", body, Some(&good)));
        assert!(!webhook_signed("other", body, Some(&good)));
        assert!(!webhook_signed("key", b"{}", Some(&good)));
        assert!(!webhook_signed("key", body, None));
        assert!(!webhook_signed("key", body, Some("not base64!")));
        assert!(webhook_events(body).unwrap().is_empty());
        assert!(webhook_events(b"[]").is_err());
    }

    #[test]
    fn a_webhook_reads_the_invoices_of_its_invoice_events_and_refuses_a_missing_field() {
        use base64::Engine;
        use hmac::{KeyInit, Mac};
        let config: XeroConfig = serde_json::from_value(serde_json::json!({
            "client_id": "c", "client_secret": "s", "tenant_id": "t", "webhook_key": "key"
        }))
        .unwrap();
        let sign = |body: &[u8]| {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"key").unwrap();
            mac.update(body);
            vec![(
                "X-Xero-Signature".to_owned(),
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
            )]
        };
        let body = br#"{"events":[
            {"resourceUrl":"https://api.xero.com/api.xro/2.0/Invoices/inv-1","resourceId":"inv-1","eventDateUtc":"2026-11-02T10:00:00.000","eventType":"UPDATE","eventCategory":"INVOICE","tenantId":"t","tenantType":"ORGANISATION"},
            {"resourceUrl":"https://api.xero.com/api.xro/2.0/Contacts/c-1","resourceId":"c-1","eventDateUtc":"2026-11-02T10:00:00.000","eventType":"UPDATE","eventCategory":"CONTACT","tenantId":"t","tenantType":"ORGANISATION"}
        ],"firstEventSequence":1,"lastEventSequence":2,"entropy":"E"}"#;
        let changed = config.webhook(&sign(body), body).unwrap();
        assert_eq!(
            changed,
            vec![crate::accounting::InvoiceChanged {
                invoice: "inv-1".into(),
                delivery: "INVOICE:inv-1:UPDATE:2026-11-02T10:00:00.000".into(),
            }]
        );
        assert!(matches!(
            config.webhook(&[], body),
            Err(crate::delivery::WebhookRefusal::BadSignature)
        ));
        // An event without its resource is a malformed payload, not skipped.
        let renamed = br#"{"events":[{"resource":"inv-1","eventDateUtc":"x","eventType":"UPDATE","eventCategory":"INVOICE"}]}"#;
        match config.webhook(&sign(renamed), renamed) {
            Err(crate::delivery::WebhookRefusal::Malformed(m)) => {
                assert!(m.contains("resourceId"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }
}
