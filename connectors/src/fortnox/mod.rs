//! Fortnox (API v3): invoices created unbooked and unsent, which is
//! Fortnox's draft, for a service account (client credentials with the
//! customer's `TenantId`).
//!
//! Fortnox takes no idempotency key: our reference goes in
//! `ExternalInvoiceReference1` and the lookup before every create finds a
//! draft an earlier attempt made. Errors come as `ErrorInformation` with a
//! Swedish message and a code; both are shown as they are. Limit: 25
//! requests in any 5 seconds.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::accounting::{
    AccessToken, AccountingApi, DraftStatus, RemoteDraft, RemoteInvoice, RemoteLine, StatusStep,
    decimal, encode, json, number, oauth_token, status_error, token_post,
};
use crate::{ConnectorError, Draft, HttpMethod, HttpRequest, HttpResponse, Secret};

#[derive(Clone, Debug, Deserialize)]
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
    #[serde(default = "default_rate")]
    pub requests_per_second: u32,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_base() -> String {
    "https://api.fortnox.se/3".into()
}
fn default_token_url() -> String {
    "https://apps.fortnox.se/oauth-v1/token".into()
}
fn default_rate() -> u32 {
    5
}
fn default_timeout_ms() -> u64 {
    30_000
}

const SYSTEM: &str = "fortnox";

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

impl FortnoxConfig {
    fn request(&self, method: HttpMethod, url: String, body: Vec<u8>) -> HttpRequest {
        HttpRequest::json(method, url, body, self.timeout_ms)
    }
}

impl AccountingApi for FortnoxConfig {
    fn system(&self) -> &'static str {
        SYSTEM
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
        let account: Option<serde_json::Value> = match &d.refs.account {
            Some(a) => Some(number(a)),
            None => self.account_number.map(|a| serde_json::json!(a)),
        };
        let rows: Vec<serde_json::Value> = d
            .lines
            .iter()
            .map(|l| {
                let mut row = serde_json::json!({
                    "Description": l.description,
                    "DeliveredQuantity": number(&l.quantity),
                    "Price": number(&l.unit_price),
                });
                if let Some(a) = &account {
                    row["AccountNumber"] = a.clone();
                }
                if let Some(article) = &d.refs.item {
                    row["ArticleNumber"] = serde_json::json!(article);
                }
                if let Some(vat) = &d.refs.tax {
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
            return Ok(StatusStep::Known(RemoteInvoice::with_status(
                remote_id,
                DraftStatus::Deleted,
            )));
        }
        let v = check(r)?;
        Ok(StatusStep::Known(remote_invoice(remote_id, &v["Invoice"])))
    }

    fn contact_of(&self, customer: &str) -> Option<String> {
        self.customers.get(customer).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
