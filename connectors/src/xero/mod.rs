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

mod attachment;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::accounting::{
    AccessToken, AccountingApi, RemoteDraft, decimal, encode, json, number, oauth_token,
    status_error, token_post,
};
use crate::{ConnectorError, Draft, HttpMethod, HttpRequest, HttpResponse, Secret};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XeroConfig {
    #[serde(default = "default_base")]
    pub base_url: String,
    #[serde(default = "default_token_url")]
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// A standard connection's refresh token (from the authorization-code
    /// consent); none: a custom connection, with client credentials.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// The organisation (`xero-tenant-id`); a custom connection may omit it.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Our customer key → Xero `ContactID`.
    pub contacts: BTreeMap<String, String>,
    /// The revenue account of every line.
    #[serde(default = "default_account")]
    pub account_code: String,
    /// The tax type of every line (region-specific, e.g. `OUTPUT2`); none: the account's default.
    #[serde(default)]
    pub tax_type: Option<String>,
    #[serde(default = "default_rate")]
    pub requests_per_second: u32,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_base() -> String {
    "https://api.xero.com/api.xro/2.0".into()
}
fn default_token_url() -> String {
    "https://identity.xero.com/connect/token".into()
}
fn default_account() -> String {
    "200".into()
}
fn default_rate() -> u32 {
    1
}
fn default_timeout_ms() -> u64 {
    30_000
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
}

/// What Xero said went wrong: the message and every validation error.
fn message(r: &HttpResponse) -> String {
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
    let mut parts: Vec<String> = v["Message"]
        .as_str()
        .map(str::to_owned)
        .into_iter()
        .collect();
    for e in v["Elements"].as_array().into_iter().flatten() {
        for ve in e["ValidationErrors"].as_array().into_iter().flatten() {
            parts.extend(ve["Message"].as_str().map(str::to_owned));
        }
    }
    if parts.is_empty() {
        r.body.chars().take(200).collect()
    } else {
        parts.join("; ")
    }
}

fn check(r: &HttpResponse) -> Result<serde_json::Value, ConnectorError> {
    if !(200..300).contains(&r.status) {
        return Err(status_error(SYSTEM, r, &message(r)));
    }
    json(r, SYSTEM)
}

fn invoice(v: &serde_json::Value) -> Option<RemoteDraft> {
    let inv = v["Invoices"].as_array()?.first()?;
    Some(RemoteDraft {
        id: inv["InvoiceID"].as_str()?.to_owned(),
        total_net: decimal(&inv["SubTotal"]),
    })
}

impl AccountingApi for XeroConfig {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn rotates_refresh_tokens(&self) -> bool {
        self.refresh_token.is_some()
    }

    fn token_request(&self, refresh: Option<&str>) -> Result<Option<HttpRequest>, ConnectorError> {
        let grant = match (&self.refresh_token, refresh) {
            (Some(initial), stored) => vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", stored.unwrap_or(initial.expose())),
            ],
            (None, _) => vec![
                ("grant_type", "client_credentials"),
                ("scope", "accounting.transactions accounting.contacts"),
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
        let filter = format!("Reference==\"{}\"", reference.replace('"', ""));
        Ok(self.request(
            HttpMethod::Get,
            format!("{}/Invoices?where={}", self.base_url, encode(&filter)),
            Vec::new(),
        ))
    }

    fn read_found(&self, r: &HttpResponse) -> Result<Option<RemoteDraft>, ConnectorError> {
        Ok(invoice(&check(r)?))
    }

    fn create_draft(
        &self,
        key: &str,
        reference: &str,
        d: &Draft,
    ) -> Result<HttpRequest, ConnectorError> {
        let contact = d.contact(&self.contacts).ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "xero: no ContactID for customer `{}`: set `accounting.<target>.contact` in the mapping or the target's `contacts`",
                d.customer
            ))
        })?;
        let account = d.refs.account.as_ref().unwrap_or(&self.account_code);
        let tax = d.refs.tax.as_ref().or(self.tax_type.as_ref());
        let lines: Vec<serde_json::Value> = d
            .lines
            .iter()
            .map(|l| {
                let mut item = serde_json::json!({
                    "Description": l.description,
                    "Quantity": number(&l.quantity),
                    "UnitAmount": number(&l.unit_price),
                    "AccountCode": account,
                });
                if let Some(t) = tax {
                    item["TaxType"] = serde_json::Value::String(t.clone());
                }
                if let Some(code) = &d.refs.item {
                    item["ItemCode"] = serde_json::Value::String(code.clone());
                }
                item
            })
            .collect();
        let body = serde_json::json!({"Invoices": [{
            "Type": "ACCREC",
            "Status": "DRAFT",
            "Contact": {"ContactID": contact},
            "Date": d.date,
            "LineAmountTypes": "Exclusive",
            "Reference": reference,
            "CurrencyCode": d.currency,
            "LineItems": lines,
        }]});
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

    fn read_created(&self, r: &HttpResponse) -> Result<RemoteDraft, ConnectorError> {
        let v = check(r)?;
        if v["Invoices"][0]["HasErrors"].as_bool() == Some(true) {
            return Err(ConnectorError::Permanent(format!("xero: {}", message(r))));
        }
        invoice(&v).ok_or_else(|| {
            ConnectorError::Transient("xero: the created invoice has no InvoiceID".into())
        })
    }

    fn fetch_draft(&self, id: &str) -> Result<HttpRequest, ConnectorError> {
        Ok(self.request(
            HttpMethod::Get,
            format!("{}/Invoices/{}", self.base_url, encode(id)),
            Vec::new(),
        ))
    }

    fn read_fetched(&self, r: &HttpResponse) -> Result<RemoteDraft, ConnectorError> {
        invoice(&check(r)?)
            .ok_or_else(|| ConnectorError::Transient("xero: no invoice in the answer".into()))
    }

    // The report's PDF: see attachment.rs.
    fn list_attachments(&self, id: &str) -> Option<HttpRequest> {
        Some(self.list_attachments_request(id))
    }

    fn read_attachments(&self, r: &HttpResponse) -> Result<Vec<String>, ConnectorError> {
        attachment::attachment_names(r)
    }

    fn attach(&self, id: &str, file_name: &str, mime: &str, bytes: &[u8]) -> Option<HttpRequest> {
        Some(self.attach_request(id, file_name, mime, bytes))
    }

    fn read_attached(&self, r: &HttpResponse, file_name: &str) -> Result<(), ConnectorError> {
        attachment::attached(r, file_name)
    }
}
