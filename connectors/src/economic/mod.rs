//! Visma e-conomic (REST): draft invoices in `/invoices/drafts`; booking
//! them is finance's step, never ours.
//!
//! Two long-lived tokens authenticate every request (`X-AppSecretToken` for
//! our app, `X-AgreementGrantToken` for the customer's agreement); there is
//! no OAuth. e-conomic takes no idempotency key: our reference is the
//! draft's `notes.textLine1`, looked up with a filter before every create.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::accounting::{
    AccessToken, AccountingApi, DraftStatus, RemoteDraft, RemoteInvoice, StatusStep, decimal,
    encode, json, number, status_error,
};
use crate::{ConnectorError, Draft, HttpMethod, HttpRequest, HttpResponse, Secret};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EconomicConfig {
    #[serde(default = "default_base")]
    pub base_url: String,
    pub app_secret_token: Secret,
    pub agreement_grant_token: Secret,
    /// Our customer key → e-conomic `customerNumber`.
    pub customers: BTreeMap<String, i64>,
    pub layout_number: i64,
    pub payment_terms_number: i64,
    pub vat_zone_number: i64,
    /// The product of every line, if lines need one.
    #[serde(default)]
    pub product_number: Option<String>,
    #[serde(default = "default_rate")]
    pub requests_per_second: u32,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_base() -> String {
    "https://restapi.e-conomic.com".into()
}
fn default_rate() -> u32 {
    5
}
fn default_timeout_ms() -> u64 {
    30_000
}

const SYSTEM: &str = "e-conomic";

fn message(r: &HttpResponse) -> String {
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
    let mut parts: Vec<String> = v["message"]
        .as_str()
        .map(str::to_owned)
        .into_iter()
        .collect();
    if let Some(errors) = v["errors"].as_object() {
        for (field, e) in errors {
            for m in e["errors"].as_array().into_iter().flatten() {
                if let Some(m) = m["message"].as_str() {
                    parts.push(format!("{field}: {m}"));
                }
            }
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

fn remote(d: &serde_json::Value) -> Option<RemoteDraft> {
    Some(RemoteDraft {
        id: d["draftInvoiceNumber"].as_i64()?.to_string(),
        total_net: decimal(&d["netAmount"]),
    })
}

impl EconomicConfig {
    fn request(&self, method: HttpMethod, url: String, body: Vec<u8>) -> HttpRequest {
        HttpRequest::json(method, url, body, self.timeout_ms)
    }
}

impl AccountingApi for EconomicConfig {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn token_request(&self, _refresh: Option<&str>) -> Result<Option<HttpRequest>, ConnectorError> {
        Ok(None)
    }

    fn read_token(&self, _r: &HttpResponse) -> Result<AccessToken, ConnectorError> {
        Err(ConnectorError::Permanent(
            "e-conomic uses no access token".into(),
        ))
    }

    fn authorize(&self, request: &mut HttpRequest, _token: Option<&str>) {
        request.headers.push((
            "x-appsecrettoken".into(),
            self.app_secret_token.expose().to_owned(),
        ));
        request.headers.push((
            "x-agreementgranttoken".into(),
            self.agreement_grant_token.expose().to_owned(),
        ));
    }

    fn find_draft(&self, reference: &str) -> Result<HttpRequest, ConnectorError> {
        Ok(self.request(
            HttpMethod::Get,
            format!(
                "{}/invoices/drafts?filter={}",
                self.base_url,
                encode(&format!("notes.textLine1$eq:{reference}"))
            ),
            Vec::new(),
        ))
    }

    fn read_found(&self, r: &HttpResponse) -> Result<Option<RemoteDraft>, ConnectorError> {
        Ok(check(r)?["collection"]
            .as_array()
            .and_then(|c| c.first())
            .and_then(remote))
    }

    fn create_draft(
        &self,
        _key: &str,
        reference: &str,
        d: &Draft,
    ) -> Result<HttpRequest, ConnectorError> {
        let customer: i64 = match &d.refs.contact {
            Some(c) => c.parse().map_err(|_| {
                ConnectorError::Permanent(format!(
                    "e-conomic: the mapping's contact `{c}` for `{}` is not a customer number",
                    d.customer
                ))
            })?,
            None => *self.customers.get(&d.customer).ok_or_else(|| {
                ConnectorError::Permanent(format!(
                    "e-conomic: no customerNumber for customer `{}`: set `accounting.<target>.contact` in the mapping or the target's `customers`",
                    d.customer
                ))
            })?,
        };
        let product = d.refs.item.as_ref().or(self.product_number.as_ref());
        let lines: Vec<serde_json::Value> = d
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut line = serde_json::json!({
                    "lineNumber": i + 1,
                    "description": l.description,
                    "quantity": number(&l.quantity),
                    "unitNetPrice": number(&l.unit_price),
                });
                if let Some(p) = product {
                    line["product"] = serde_json::json!({"productNumber": p});
                }
                line
            })
            .collect();
        let mut body = serde_json::json!({
            "currency": d.currency,
            "date": d.date,
            "customer": {"customerNumber": customer},
            "layout": {"layoutNumber": self.layout_number},
            "paymentTerms": {"paymentTermsNumber": self.payment_terms_number},
            "recipient": {"name": d.customer, "vatZone": {"vatZoneNumber": self.vat_zone_number}},
            "notes": {"heading": format!("{} {}", d.customer, d.period), "textLine1": reference},
            "lines": lines,
        });
        if let Some(url) = &d.statement_url {
            // textLine1 holds our reference; the second note line is the customer's.
            body["notes"]["textLine2"] = serde_json::json!(crate::statement_line(url));
        }
        Ok(self.request(
            HttpMethod::Post,
            format!("{}/invoices/drafts", self.base_url),
            serde_json::to_vec(&body).map_err(|e| ConnectorError::Permanent(e.to_string()))?,
        ))
    }

    fn read_created(&self, r: &HttpResponse) -> Result<RemoteDraft, ConnectorError> {
        remote(&check(r)?).ok_or_else(|| {
            ConnectorError::Transient(
                "e-conomic: the created draft has no draftInvoiceNumber".into(),
            )
        })
    }

    fn fetch_draft(&self, id: &str) -> Result<HttpRequest, ConnectorError> {
        Ok(self.request(
            HttpMethod::Get,
            format!("{}/invoices/drafts/{}", self.base_url, encode(id)),
            Vec::new(),
        ))
    }

    fn read_fetched(&self, r: &HttpResponse) -> Result<RemoteDraft, ConnectorError> {
        remote(&check(r)?)
            .ok_or_else(|| ConnectorError::Transient("e-conomic: no draft in the answer".into()))
    }

    fn read_status(
        &self,
        remote_id: &str,
        reference: &str,
        step: usize,
        r: &HttpResponse,
    ) -> Result<StatusStep, ConnectorError> {
        let known = |s| Ok(StatusStep::Known(RemoteInvoice::with_status(remote_id, s)));
        match step {
            // Booking moves a draft out of `/invoices/drafts` (404 there)
            // into `/invoices/booked`, with its notes: look for it there.
            0 if r.status == 404 => Ok(StatusStep::Ask(self.request(
                HttpMethod::Get,
                format!(
                    "{}/invoices/booked?filter={}",
                    self.base_url,
                    encode(&format!("notes.textLine1$eq:{reference}"))
                ),
                Vec::new(),
            ))),
            0 => {
                check(r)?;
                known(DraftStatus::Draft)
            }
            _ => {
                let v = check(r)?;
                match v["collection"].as_array().and_then(|c| c.first()) {
                    // Neither a draft nor booked: deleted.
                    None => known(DraftStatus::Deleted),
                    Some(booked) => {
                        let mut inv = RemoteInvoice::with_status(
                            remote_id,
                            if decimal(&booked["remainder"]).is_some_and(|r| r.is_zero()) {
                                DraftStatus::Paid
                            } else {
                                DraftStatus::Approved
                            },
                        );
                        inv.date = booked["date"].as_str().and_then(|d| d.parse().ok());
                        Ok(StatusStep::Known(inv))
                    }
                }
            }
        }
    }

    fn contact_of(&self, customer: &str) -> Option<String> {
        self.customers.get(customer).map(ToString::to_string)
    }
}
