//! Fortnox (API v3): invoices created unbooked and unsent, which is
//! Fortnox's draft, for a service account (client credentials with the
//! customer's `TenantId`).
//!
//! Fortnox takes no idempotency key: our reference goes in
//! `ExternalInvoiceReference1` and the lookup before every create finds a
//! draft an earlier attempt made. Errors come as `ErrorInformation` with a
//! Swedish message and a code; both are shown as they are. Limit: 25
//! requests in any 5 seconds.
//!
//! Prepaid sales: `GET /3/invoices?lastmodified=…` lists what changed since
//! the last scan (paged by `MetaInformation`) without rows; the daemon reads
//! whole (`GET /3/invoices/{DocumentNumber}`) only the listed invoices that
//! could open a card or bank.

use crate::Result;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::accounting::{
    AccessToken, AccountingApi, CodeKind, ListedCode, RemoteDraft, RemoteInvoice, SalesAsk,
    SalesPage, StatusAnswer, StatusStep, encode, number, oauth_token, status_error, token_post,
};
use crate::{ConnectorError, Draft, DraftLine, HttpMethod, HttpRequest, HttpResponse, Secret};

mod transformers;

use transformers::{
    Accounts, Articles, DraftInvoice, FoundInvoice, Invoice, InvoicePage, Invoices, NewInvoice,
    NewInvoiceBody, NewRow, Single, error_message, parse,
};

crate::defaults::defaults! {
    default_base = "https://api.fortnox.se/3";
    default_token_url = "https://apps.fortnox.se/oauth-v1/token";
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FortnoxConfig {
    #[serde(default = "default_base")]
    pub base_url: String,
    #[serde(default = "default_token_url")]
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// The customer's Fortnox database (`TenantId`).
    pub tenant_id: String,
    /// Our customer key → Fortnox `CustomerNumber`.
    pub customers: BTreeMap<String, String>,
    /// The sales account of every row; none: the article's or the default.
    #[serde(default)]
    pub account_number: Option<u32>,
    #[serde(default = "crate::defaults::per_second::<5>")]
    pub requests_per_second: u32,
    #[serde(default = "crate::defaults::timeout_ms::<30_000>")]
    pub timeout_ms: u64,
}

const SYSTEM: &str = "fortnox";

/// Invoices per page of the sales scan (Fortnox's most).
const PAGE_LIMIT: u32 = 500;

/// How far before the last scan's start the next one asks from: Fortnox
/// filters by the minute, in Swedish time, and our clock and theirs differ.
const CURSOR_OVERLAP_MINUTES: i64 = 10;

/// The answer as `T`: a refusal in Fortnox's words, or a body not as
/// documented naming the field (reported and retried).
fn read<T: DeserializeOwned>(r: &HttpResponse, what: &str) -> Result<T> {
    match r.status {
        200..=299 => parse(&r.body, what).map_err(ConnectorError::Transient),
        _ => Err(status_error(SYSTEM, r, &error_message(&r.body))),
    }
}

/// `lastmodified` as Fortnox takes it: `YYYY-MM-DD HH:MM`, Swedish time.
fn lastmodified(cursor: &str) -> Result<String> {
    let at = chrono::DateTime::parse_from_rfc3339(cursor).map_err(|e| {
        ConnectorError::Permanent(format!(
            "fortnox: the stored sales cursor `{cursor}` is not an RFC 3339 time ({e})"
        ))
    })?;
    let from = at - chrono::Duration::minutes(CURSOR_OVERLAP_MINUTES);
    Ok(from
        .with_timezone(&chrono_tz::Europe::Stockholm)
        .format("%Y-%m-%d %H:%M")
        .to_string())
}

impl FortnoxConfig {
    /// `GET` of `path` below the API's base.
    fn get(&self, path: &str) -> HttpRequest {
        let url = format!("{}/{path}", self.base_url);
        HttpRequest::json(HttpMethod::Get, url, Vec::new(), self.timeout_ms)
    }

    /// The invoice row of line `l` of draft `d`: per line (issue 17), the
    /// line's own codes, else the draft's, else the target's.
    fn row<'a>(&'a self, d: &'a Draft, l: &'a DraftLine) -> NewRow<'a> {
        let account_number = match d.account_of(l) {
            Some(a) => Some(number(a)),
            None => self.account_number.map(serde_json::Value::from),
        };
        NewRow {
            description: &l.description,
            delivered_quantity: number(&l.quantity),
            price: number(&l.unit_price),
            account_number,
            article_number: d.item_of(l).map(String::as_str),
            // Fortnox's VAT is the percent; a kind's `tax_rate` says it too.
            vat: d.tax_of(l).or(l.refs.tax_rate.as_ref()).map(|v| number(v)),
        }
    }
}

impl AccountingApi for FortnoxConfig {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    /// Accounts and articles (500 per page, Fortnox's most; a longer list
    /// is read as far as its first page). VAT is a percent, not a listed code.
    fn code_lists(&self) -> Vec<(CodeKind, HttpRequest)> {
        [
            (CodeKind::Account, "accounts"),
            (CodeKind::Item, "articles"),
        ]
        .into_iter()
        .map(|(kind, list)| (kind, self.get(&format!("{list}?limit=500"))))
        .collect()
    }

    fn read_codes(&self, kind: CodeKind, r: &HttpResponse) -> Result<Vec<ListedCode>> {
        let code = |code: String, name: String| ListedCode {
            code,
            name,
            rate: None,
        };
        Ok(match kind {
            CodeKind::Account => read::<Accounts>(r, "the chart of accounts")?
                .accounts
                .into_iter()
                .filter(|a| a.active.is_none_or(|active| active))
                .map(|a| code(a.number.to_string(), a.description))
                .collect(),
            CodeKind::Item => read::<Articles>(r, "the article list")?
                .articles
                .into_iter()
                .map(|a| code(a.article_number, a.description))
                .collect(),
            CodeKind::Tax => Vec::new(),
        })
    }

    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn token_request(&self, _refresh: Option<&str>) -> Result<Option<HttpRequest>> {
        let mut r = token_post(
            &self.token_url,
            &self.client_id,
            &self.client_secret,
            &[("grant_type", "client_credentials")],
            self.timeout_ms,
        );
        r.headers.push(("tenantid".into(), self.tenant_id.clone()));
        Ok(Some(r))
    }

    fn read_token(&self, r: &HttpResponse) -> Result<AccessToken> {
        oauth_token(SYSTEM, r)
    }

    fn find_draft(&self, reference: &str) -> Result<HttpRequest> {
        Ok(self.get(&format!(
            "invoices?externalinvoicereference1={}",
            encode(reference)
        )))
    }

    fn read_found(&self, r: &HttpResponse) -> Result<Option<RemoteDraft>> {
        let found: Invoices<FoundInvoice> = read(r, "the invoice search")?;
        Ok(found
            .invoices
            .into_iter()
            .find(|i| !i.cancelled)
            .map(|i| RemoteDraft {
                id: i.document_number,
                // The list states no `Net`: the draft read by number does.
                total_net: None,
            }))
    }

    fn create_draft(&self, _key: &str, reference: &str, d: &Draft) -> Result<HttpRequest> {
        let customer =
            d.required_contact(&self.customers, SYSTEM, "CustomerNumber", "customers")?;
        let body = NewInvoiceBody {
            invoice: NewInvoice {
                customer_number: customer,
                invoice_date: &d.date,
                currency: &d.currency,
                external_invoice_reference1: reference,
                comments: format!("{} {}", d.customer, d.period),
                // Remarks are printed on the invoice.
                remarks: d.statement_url.as_deref().map(crate::statement_line),
                invoice_rows: d.lines.iter().map(|l| self.row(d, l)).collect(),
            },
        };
        let body =
            serde_json::to_vec(&body).map_err(|e| ConnectorError::Permanent(e.to_string()))?;
        let url = format!("{}/invoices", self.base_url);
        Ok(HttpRequest::json(
            HttpMethod::Post,
            url,
            body,
            self.timeout_ms,
        ))
    }

    fn read_created(&self, r: &HttpResponse) -> Result<RemoteDraft> {
        Ok(read::<Single<DraftInvoice>>(r, "the created invoice")?
            .invoice
            .remote())
    }

    fn fetch_draft(&self, id: &str) -> Result<HttpRequest> {
        Ok(self.get(&format!("invoices/{}", encode(id))))
    }

    fn read_fetched(&self, r: &HttpResponse) -> Result<RemoteDraft> {
        Ok(read::<Single<DraftInvoice>>(r, "the invoice")?
            .invoice
            .remote())
    }

    fn read_status(&self, answer: StatusAnswer<'_>) -> Result<StatusStep> {
        let StatusAnswer {
            remote_id,
            response: r,
            ..
        } = answer;
        // Fortnox cancels rather than deletes; an invoice gone all the same
        // answers 404.
        Ok(match r.status {
            404 => StatusStep::deleted(remote_id),
            _ => StatusStep::Known(
                read::<Single<Invoice>>(r, "the invoice")?
                    .invoice
                    .remote()?,
            ),
        })
    }

    fn contact_of(&self, customer: &str) -> Option<String> {
        self.customers.get(customer).cloned()
    }

    fn sales_request(&self, ask: SalesAsk<'_>) -> Result<Option<HttpRequest>> {
        let SalesAsk { cursor, page, .. } = ask;
        // The list cannot filter by article and carries no rows: every
        // invoice changed since the cursor is listed, and only those that
        // could sell something are read whole (`details`).
        let mut url = format!("invoices?page={page}&limit={PAGE_LIMIT}");
        if let Some(c) = cursor {
            url.push_str("&lastmodified=");
            url.push_str(&encode(&lastmodified(c)?).replace('+', "%20"));
        }
        Ok(Some(self.get(&url)))
    }

    fn read_sales(&self, r: &HttpResponse) -> Result<SalesPage> {
        let list: InvoicePage = read(r, "the invoice list")?;
        let mut page = SalesPage {
            more: list.meta.more(),
            ..SalesPage::default()
        };
        for inv in &list.invoices {
            let read = self.fetch_draft(&inv.document_number)?;
            page.details.push((inv.remote(), read));
        }
        Ok(page)
    }

    fn read_sale(&self, r: &HttpResponse) -> Result<RemoteInvoice> {
        read::<Single<Invoice>>(r, "the invoice")?.invoice.remote()
    }

    fn sales_cursor_at(&self, started: chrono::DateTime<chrono::Utc>) -> Option<String> {
        Some(started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::DraftStatus;
    use crate::testing::ok;

    fn config() -> FortnoxConfig {
        serde_json::from_value(serde_json::json!({
            "base_url": "https://api.fortnox.se/3", "client_id": "c", "client_secret": "s",
            "tenant_id": "t", "customers": {"nordhavn-arkitekter": "1042"}
        }))
        .unwrap()
    }

    #[test]
    fn the_sales_scan_asks_for_what_changed_since_the_cursor_in_swedish_time() {
        let api = config();
        let first = api
            .sales_request(SalesAsk::new(&[], None, 1))
            .unwrap()
            .unwrap();
        assert_eq!(
            first.url,
            "https://api.fortnox.se/3/invoices?page=1&limit=500"
        );
        // 12:00 UTC is 14:00 in Stockholm in October (summer time), 13:00
        // in November; ten minutes earlier for the clocks' difference.
        let october = api
            .sales_request(SalesAsk::new(&[], Some("2026-10-20T12:00:00Z"), 2))
            .unwrap()
            .unwrap();
        assert_eq!(
            october.url,
            "https://api.fortnox.se/3/invoices?page=2&limit=500&lastmodified=2026-10-20%2013%3A50"
        );
        let november = api
            .sales_request(SalesAsk::new(&[], Some("2026-11-20T12:00:00Z"), 1))
            .unwrap()
            .unwrap();
        assert!(november.url.ends_with("lastmodified=2026-11-20%2012%3A50"));
        assert!(matches!(
            api.sales_request(SalesAsk::new(&[], Some("yesterday"), 1)),
            Err(ConnectorError::Permanent(_))
        ));
        assert_eq!(
            api.sales_cursor_at("2026-10-20T12:00:00Z".parse().unwrap()),
            Some("2026-10-20T12:00:00Z".into())
        );
    }

    #[test]
    fn a_sales_page_asks_for_each_listed_invoice_whole_and_pages_by_meta_information() {
        let api = config();
        let page = api
            .read_sales(&ok(serde_json::json!({
                "MetaInformation": {"@TotalResources": 3, "@TotalPages": 2, "@CurrentPage": 1},
                "Invoices": [
                    {"DocumentNumber": "5001", "CustomerNumber": "1042", "Booked": true,
                     "Cancelled": false, "Sent": true, "Balance": 0, "Currency": "DKK",
                     "InvoiceDate": "2026-10-05"},
                    {"DocumentNumber": "5002", "CustomerNumber": "1042", "Booked": true,
                     "Cancelled": false, "Sent": false, "Balance": 22500, "Currency": "DKK",
                     "InvoiceDate": "2026-10-06"},
                    {"DocumentNumber": "5003", "CustomerNumber": "1042", "Booked": false,
                     "Cancelled": true, "Sent": false, "Balance": 0, "Currency": "DKK",
                     "InvoiceDate": "2026-10-07"}
                ]
            })))
            .unwrap();
        assert!(page.more);
        assert!(page.invoices.is_empty(), "the list has no rows");
        let seen: Vec<(&str, DraftStatus, &str)> = page
            .details
            .iter()
            .map(|(i, r)| (i.id.as_str(), i.status, r.url.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "5001",
                    DraftStatus::Paid,
                    "https://api.fortnox.se/3/invoices/5001"
                ),
                (
                    "5002",
                    DraftStatus::Approved,
                    "https://api.fortnox.se/3/invoices/5002"
                ),
                (
                    "5003",
                    DraftStatus::Voided,
                    "https://api.fortnox.se/3/invoices/5003"
                ),
            ]
        );
        let last = api
            .read_sales(&ok(serde_json::json!({
                "MetaInformation": {"@TotalResources": 3, "@TotalPages": 2, "@CurrentPage": 2},
                "Invoices": []
            })))
            .unwrap();
        assert!(!last.more);
    }

    #[test]
    fn a_sale_is_read_with_its_article_rows_and_paid_status() {
        let inv = config()
            .read_sale(&ok(serde_json::json!({"Invoice": {
                "DocumentNumber": "5001", "CustomerNumber": "1042", "Booked": true,
                "Cancelled": false, "Sent": true, "Balance": 0, "FinalPayDate": "2026-10-22",
                "Currency": "DKK", "InvoiceDate": "2026-10-05",
                "InvoiceRows": [
                    {"RowId": 1, "ArticleNumber": "KLIPPEKORT-20", "DeliveredQuantity": "1.00",
                     "Price": 18000, "Total": 18000, "Description": "Klippekort 20"},
                    {"RowId": 2, "ArticleNumber": "", "DeliveredQuantity": "1", "Total": 50}
                ]
            }})))
            .unwrap();
        assert_eq!(inv.status, DraftStatus::Paid);
        assert_eq!(inv.contact.as_deref(), Some("1042"));
        assert_eq!(inv.lines.len(), 1, "only rows naming an article");
        assert_eq!(inv.lines[0].id, "1");
        assert_eq!(inv.lines[0].quantity, rust_decimal::Decimal::ONE);
    }

    #[test]
    fn fortnox_errors_keep_their_swedish_words_and_code() {
        let r = HttpResponse {
            status: 400,
            retry_after: None,
            body: r#"{"ErrorInformation":{"error":1,"message":"Kan inte hitta kontot.","code":2000423}}"#.into(),
        };
        let e = read::<serde_json::Value>(&r, "the invoice").unwrap_err();
        assert!(matches!(e, ConnectorError::Permanent(_)));
        assert_eq!(
            e.to_string(),
            "fortnox: HTTP 400: Kan inte hitta kontot. (code 2000423)"
        );
    }
}
