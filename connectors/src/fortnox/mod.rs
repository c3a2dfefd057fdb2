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

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::accounting::{
    AccessToken, AccountingApi, DraftStatus, RemoteDraft, RemoteInvoice, RemoteLine, SalesPage,
    StatusStep, decimal, encode, json, number, oauth_token, status_error, token_post,
};
use crate::{ConnectorError, Draft, HttpMethod, HttpRequest, HttpResponse, Secret};

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

crate::defaults::defaults! {
    default_base = "https://api.fortnox.se/3";
    default_token_url = "https://apps.fortnox.se/oauth-v1/token";
}

const SYSTEM: &str = "fortnox";

/// Invoices per page of the sales scan (Fortnox's most).
const PAGE_LIMIT: u32 = 500;

/// How far before the last scan's start the next one asks from: Fortnox
/// filters by the minute, in Swedish time, and our clock and theirs differ.
const CURSOR_OVERLAP_MINUTES: i64 = 10;

fn message(r: &HttpResponse) -> String {
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
    let info = &v["ErrorInformation"];
    // Fortnox has written both `message` and `Message`.
    match (
        info["message"].as_str().or(info["Message"].as_str()),
        info["code"].as_i64().or(info["Code"].as_i64()),
    ) {
        (Some(m), Some(code)) => format!("{m} (code {code})"),
        (Some(m), None) => m.to_owned(),
        _ => r.body.chars().take(200).collect(),
    }
}

fn check(r: &HttpResponse) -> Result<serde_json::Value, ConnectorError> {
    if !(200..300).contains(&r.status) {
        return Err(status_error(SYSTEM, r, &message(r)));
    }
    json(r, SYSTEM)
}

fn remote(inv: &serde_json::Value) -> Option<RemoteDraft> {
    let id = match &inv["DocumentNumber"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some(RemoteDraft {
        id,
        total_net: decimal(&inv["Net"]),
    })
}

/// What became of an invoice: cancelled, paid in full (booked, nothing
/// left to pay, a final pay date), booked or sent, or still the unbooked
/// draft we made.
fn invoice_status(inv: &serde_json::Value) -> DraftStatus {
    let booked = inv["Booked"] == true;
    let balance = decimal(&inv["Balance"]);
    if inv["Cancelled"] == true {
        DraftStatus::Voided
    } else if booked
        && balance.is_some_and(|b| b.is_zero())
        && inv["FinalPayDate"].as_str().is_some_and(|d| !d.is_empty())
    {
        DraftStatus::Paid
    } else if booked || inv["Sent"] == true {
        DraftStatus::Approved
    } else {
        DraftStatus::Draft
    }
}

fn remote_invoice(id: &str, inv: &serde_json::Value) -> RemoteInvoice {
    let lines = inv["InvoiceRows"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, row)| {
            let item = row["ArticleNumber"].as_str().filter(|a| !a.is_empty())?;
            Some(RemoteLine {
                id: row["RowId"]
                    .as_i64()
                    .map_or_else(|| i.to_string(), |n| n.to_string()),
                item: item.to_owned(),
                quantity: decimal(&row["DeliveredQuantity"]).unwrap_or(rust_decimal::Decimal::ONE),
                amount: decimal(&row["Total"]).unwrap_or_default(),
                description: row["Description"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect();
    RemoteInvoice {
        id: id.to_owned(),
        status: invoice_status(inv),
        contact: inv["CustomerNumber"].as_str().map(str::to_owned),
        date: inv["InvoiceDate"].as_str().and_then(|d| d.parse().ok()),
        currency: inv["Currency"].as_str().map(str::to_owned),
        lines,
    }
}

/// `lastmodified` as Fortnox takes it: `YYYY-MM-DD HH:MM`, Swedish time.
fn lastmodified(cursor: &str) -> Result<String, ConnectorError> {
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

/// An invoice as the list shows it: no rows and no `FinalPayDate`, so a
/// booked invoice with nothing left to pay counts as paid until the
/// invoice itself says otherwise.
fn listed_invoice(inv: &serde_json::Value) -> Option<RemoteInvoice> {
    let id = remote(inv)?.id;
    let mut listed = remote_invoice(&id, inv);
    if listed.status == DraftStatus::Approved
        && inv["Booked"] == true
        && decimal(&inv["Balance"]).is_some_and(|b| b.is_zero())
    {
        listed.status = DraftStatus::Paid;
    }
    Some(listed)
}

impl FortnoxConfig {
    fn request(&self, method: HttpMethod, url: String, body: Vec<u8>) -> HttpRequest {
        HttpRequest::json(method, url, body, self.timeout_ms)
    }
}

/// `GET /3/accounts`: the chart of accounts of the current financial year.
#[derive(Deserialize)]
struct AccountsAnswer {
    #[serde(rename = "Accounts")]
    accounts: Vec<ChartAccount>,
}

#[derive(Deserialize)]
struct ChartAccount {
    #[serde(rename = "Number")]
    number: i64,
    #[serde(rename = "Description", default)]
    description: String,
    #[serde(rename = "Active", default = "active")]
    active: bool,
}

fn active() -> bool {
    true
}

/// `GET /3/articles`.
#[derive(Deserialize)]
struct ArticlesAnswer {
    #[serde(rename = "Articles")]
    articles: Vec<ListedArticle>,
}

#[derive(Deserialize)]
struct ListedArticle {
    #[serde(rename = "ArticleNumber")]
    article_number: String,
    #[serde(rename = "Description", default)]
    description: String,
}

impl AccountingApi for FortnoxConfig {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    /// Accounts and articles (500 per page, Fortnox's most; a longer list
    /// is read as far as its first page). VAT is a percent, not a listed code.
    fn code_lists(&self) -> Vec<(crate::accounting::CodeKind, HttpRequest)> {
        use crate::accounting::CodeKind;
        vec![
            (
                CodeKind::Account,
                self.request(
                    HttpMethod::Get,
                    format!("{}/accounts?limit=500", self.base_url),
                    Vec::new(),
                ),
            ),
            (
                CodeKind::Item,
                self.request(
                    HttpMethod::Get,
                    format!("{}/articles?limit=500", self.base_url),
                    Vec::new(),
                ),
            ),
        ]
    }

    fn read_codes(
        &self,
        kind: crate::accounting::CodeKind,
        r: &HttpResponse,
    ) -> Result<Vec<crate::accounting::ListedCode>, ConnectorError> {
        use crate::accounting::{CodeKind, ListedCode};
        if !(200..300).contains(&r.status) {
            return Err(status_error(SYSTEM, r, "listing codes"));
        }
        let bad = |e: serde_json::Error| {
            ConnectorError::Permanent(format!("fortnox: an unexpected {} list: {e}", kind.key()))
        };
        Ok(match kind {
            CodeKind::Account => serde_json::from_str::<AccountsAnswer>(&r.body)
                .map_err(bad)?
                .accounts
                .into_iter()
                .filter(|a| a.active)
                .map(|a| ListedCode {
                    code: a.number.to_string(),
                    name: a.description,
                    rate: None,
                })
                .collect(),
            CodeKind::Item => serde_json::from_str::<ArticlesAnswer>(&r.body)
                .map_err(bad)?
                .articles
                .into_iter()
                .map(|a| ListedCode {
                    code: a.article_number,
                    name: a.description,
                    rate: None,
                })
                .collect(),
            CodeKind::Tax => Vec::new(),
        })
    }

    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn token_request(&self, _refresh: Option<&str>) -> Result<Option<HttpRequest>, ConnectorError> {
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

    fn read_token(&self, r: &HttpResponse) -> Result<AccessToken, ConnectorError> {
        oauth_token(SYSTEM, r)
    }

    fn authorize(&self, request: &mut HttpRequest, token: Option<&str>) {
        if let Some(t) = token {
            request
                .headers
                .push(("authorization".into(), format!("Bearer {t}")));
        }
    }

    fn find_draft(&self, reference: &str) -> Result<HttpRequest, ConnectorError> {
        Ok(self.request(
            HttpMethod::Get,
            format!(
                "{}/invoices?externalinvoicereference1={}",
                self.base_url,
                encode(reference)
            ),
            Vec::new(),
        ))
    }

    fn read_found(&self, r: &HttpResponse) -> Result<Option<RemoteDraft>, ConnectorError> {
        let v = check(r)?;
        Ok(v["Invoices"]
            .as_array()
            .and_then(|list| list.iter().find(|i| i["Cancelled"] != true))
            .and_then(remote))
    }

    fn create_draft(
        &self,
        _key: &str,
        reference: &str,
        d: &Draft,
    ) -> Result<HttpRequest, ConnectorError> {
        let customer = d.contact(&self.customers).ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "fortnox: no CustomerNumber for customer `{}`: set `accounting.<target>.contact` in the mapping or the target's `customers`",
                d.customer
            ))
        })?;
        // Per line (issue 17): the line's own codes, else the draft's, else the target's.
        let rows: Vec<serde_json::Value> = d
            .lines
            .iter()
            .map(|l| {
                let mut row = serde_json::json!({
                    "Description": l.description,
                    "DeliveredQuantity": number(&l.quantity),
                    "Price": number(&l.unit_price),
                });
                let account: Option<serde_json::Value> = match d.account_of(l) {
                    Some(a) => Some(number(a)),
                    None => self.account_number.map(|a| serde_json::json!(a)),
                };
                if let Some(a) = account {
                    row["AccountNumber"] = a;
                }
                if let Some(article) = d.item_of(l) {
                    row["ArticleNumber"] = serde_json::json!(article);
                }
                // Fortnox's VAT is the percent; a kind's `tax_rate` says it too.
                if let Some(vat) = d.tax_of(l).or(l.refs.tax_rate.as_ref()) {
                    row["VAT"] = number(vat);
                }
                row
            })
            .collect();
        let mut body = serde_json::json!({"Invoice": {
            "CustomerNumber": customer,
            "InvoiceDate": d.date,
            "Currency": d.currency,
            "ExternalInvoiceReference1": reference,
            "Comments": format!("{} {}", d.customer, d.period),
            "InvoiceRows": rows,
        }});
        if let Some(url) = &d.statement_url {
            // Remarks are printed on the invoice.
            body["Invoice"]["Remarks"] = serde_json::json!(crate::statement_line(url));
        }
        Ok(self.request(
            HttpMethod::Post,
            format!("{}/invoices", self.base_url),
            serde_json::to_vec(&body).map_err(|e| ConnectorError::Permanent(e.to_string()))?,
        ))
    }

    fn read_created(&self, r: &HttpResponse) -> Result<RemoteDraft, ConnectorError> {
        remote(&check(r)?["Invoice"]).ok_or_else(|| {
            ConnectorError::Transient("fortnox: the created invoice has no DocumentNumber".into())
        })
    }

    fn fetch_draft(&self, id: &str) -> Result<HttpRequest, ConnectorError> {
        Ok(self.request(
            HttpMethod::Get,
            format!("{}/invoices/{}", self.base_url, encode(id)),
            Vec::new(),
        ))
    }

    fn read_fetched(&self, r: &HttpResponse) -> Result<RemoteDraft, ConnectorError> {
        remote(&check(r)?["Invoice"])
            .ok_or_else(|| ConnectorError::Transient("fortnox: no invoice in the answer".into()))
    }

    fn read_status(
        &self,
        remote_id: &str,
        _reference: &str,
        _step: usize,
        r: &HttpResponse,
    ) -> Result<StatusStep, ConnectorError> {
        // Fortnox cancels rather than deletes; an invoice gone all the same
        // answers 404.
        if r.status == 404 {
            return Ok(StatusStep::deleted(remote_id));
        }
        let v = check(r)?;
        Ok(StatusStep::Known(remote_invoice(remote_id, &v["Invoice"])))
    }

    fn contact_of(&self, customer: &str) -> Option<String> {
        self.customers.get(customer).cloned()
    }

    fn sales_request(
        &self,
        _items: &[String],
        cursor: Option<&str>,
        page: u32,
    ) -> Result<Option<HttpRequest>, ConnectorError> {
        // The list cannot filter by article and carries no rows: every
        // invoice changed since the cursor is listed, and only those that
        // could sell something are read whole (`details`).
        let mut url = format!("{}/invoices?page={page}&limit={PAGE_LIMIT}", self.base_url);
        if let Some(c) = cursor {
            url.push_str("&lastmodified=");
            url.push_str(&encode(&lastmodified(c)?).replace('+', "%20"));
        }
        Ok(Some(self.request(HttpMethod::Get, url, Vec::new())))
    }

    fn read_sales(&self, r: &HttpResponse) -> Result<SalesPage, ConnectorError> {
        let v = check(r)?;
        let meta = &v["MetaInformation"];
        let page_no = |k: &str| decimal(&meta[k]).unwrap_or_default();
        let mut page = SalesPage {
            more: page_no("@CurrentPage") < page_no("@TotalPages"),
            ..SalesPage::default()
        };
        for inv in v["Invoices"].as_array().into_iter().flatten() {
            let listed = listed_invoice(inv).ok_or_else(|| {
                ConnectorError::Transient("fortnox: a listed invoice has no DocumentNumber".into())
            })?;
            let read = self.fetch_draft(&listed.id)?;
            page.details.push((listed, read));
        }
        Ok(page)
    }

    fn read_sale(&self, r: &HttpResponse) -> Result<RemoteInvoice, ConnectorError> {
        let v = check(r)?;
        let inv = &v["Invoice"];
        let id = remote(inv)
            .ok_or_else(|| ConnectorError::Transient("fortnox: no invoice in the answer".into()))?
            .id;
        Ok(remote_invoice(&id, inv))
    }

    fn sales_cursor_at(&self, started: chrono::DateTime<chrono::Utc>) -> Option<String> {
        Some(started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let first = api.sales_request(&[], None, 1).unwrap().unwrap();
        assert_eq!(
            first.url,
            "https://api.fortnox.se/3/invoices?page=1&limit=500"
        );
        // 12:00 UTC is 14:00 in Stockholm in October (summer time), 13:00
        // in November; ten minutes earlier for the clocks' difference.
        let october = api
            .sales_request(&[], Some("2026-10-20T12:00:00Z"), 2)
            .unwrap()
            .unwrap();
        assert_eq!(
            october.url,
            "https://api.fortnox.se/3/invoices?page=2&limit=500&lastmodified=2026-10-20%2013%3A50"
        );
        let november = api
            .sales_request(&[], Some("2026-11-20T12:00:00Z"), 1)
            .unwrap()
            .unwrap();
        assert!(november.url.ends_with("lastmodified=2026-11-20%2012%3A50"));
        assert!(matches!(
            api.sales_request(&[], Some("yesterday"), 1),
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
                     "Cancelled": false, "Balance": 0, "Currency": "DKK", "InvoiceDate": "2026-10-05"},
                    {"DocumentNumber": "5002", "CustomerNumber": "1042", "Booked": true,
                     "Cancelled": false, "Balance": 22500, "Currency": "DKK"},
                    {"DocumentNumber": "5003", "CustomerNumber": "1042", "Booked": false,
                     "Cancelled": true, "Balance": 0}
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
                "Cancelled": false, "Balance": 0, "FinalPayDate": "2026-10-22",
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
        let e = check(&r).unwrap_err();
        assert!(matches!(e, ConnectorError::Permanent(_)));
        assert_eq!(
            e.to_string(),
            "fortnox: HTTP 400: Kan inte hitta kontot. (code 2000423)"
        );
    }
}
