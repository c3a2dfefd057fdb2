//! QuickBooks Online: QuickBooks has no draft invoice, so the draft is an
//! invoice left unsent (`EmailStatus: NotSet`), or an estimate when the
//! target says `as_estimate = true`.
//!
//! OAuth with rotating refresh tokens: each refresh returns a new refresh
//! token, which the daemon stores before it uses the access token, under a
//! lock, so two instances never refresh with the same one. Every request
//! carries `minorversion` (75 and later), and a create carries `requestid`,
//! QuickBooks' idempotency key (50 characters at most). Our reference is
//! the `DocNumber` (21 characters at most): `CB` and a digest of our key.
//! QuickBooks can answer 200 with a `Fault` body: every answer is checked.

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::accounting::{
    AccessToken, AccountingApi, RemoteDraft, StatusStep, decimal, encode, json, number,
    oauth_token, status_error, token_post,
};
use crate::{ConnectorError, Draft, HttpMethod, HttpRequest, HttpResponse, Secret};

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuickBooksConfig {
    #[serde(default = "default_base")]
    pub base_url: String,
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// Where `connect` sends the browser for consent.
    #[serde(default = "default_authorize_url")]
    pub authorize_url: String,
    /// The redirect URI registered with the app (Intuit takes
    /// `http://localhost` only for development keys); none: `connect`
    /// listens on `http://localhost:PORT/callback`.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    pub realm_id: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// The refresh token of a consent made with another tool (the daemon
    /// keeps the newest one in its store from then on); none: the one
    /// `contract-bridge connect` stored.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// Our customer key → QuickBooks `CustomerRef`.
    pub customers: BTreeMap<String, String>,
    /// The service item of every line (`ItemRef`).
    #[serde(default = "default_item")]
    pub item: String,
    /// The tax code of every line (`TaxCodeRef`), outside the US.
    #[serde(default)]
    pub tax_code: Option<String>,
    /// Draft as an estimate instead of an unsent invoice.
    #[serde(default)]
    pub as_estimate: bool,
    #[serde(default = "default_minor")]
    pub minor_version: u32,
    #[serde(default = "crate::defaults::per_second::<8>")]
    pub requests_per_second: u32,
    #[serde(default = "crate::defaults::timeout_ms::<30_000>")]
    pub timeout_ms: u64,
}

crate::defaults::defaults! {
    default_base = "https://quickbooks.api.intuit.com";
    default_authorize_url = "https://appcenter.intuit.com/connect/oauth2";
    default_token_url = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer";
    default_item = "1";
    default_minor: u32 = 75;
}

const SYSTEM: &str = "quickbooks";

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The messages of a `Fault`, if the body is one.
fn fault(v: &serde_json::Value) -> Option<String> {
    let errors = v["Fault"]["Error"].as_array()?;
    Some(
        errors
            .iter()
            .map(|e| {
                format!(
                    "{} ({}; code {})",
                    e["Message"].as_str().unwrap_or("error"),
                    e["Detail"].as_str().unwrap_or(""),
                    e["code"].as_str().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    )
}

fn check(r: &HttpResponse) -> Result<serde_json::Value, ConnectorError> {
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
    if !(200..300).contains(&r.status) {
        let m = fault(&v).unwrap_or_else(|| r.body.chars().take(200).collect());
        return Err(status_error(SYSTEM, r, &m));
    }
    if let Some(m) = fault(&v) {
        return Err(ConnectorError::Permanent(format!(
            "{SYSTEM}: HTTP {} with a Fault: {m}",
            r.status
        )));
    }
    json(r, SYSTEM)
}

fn remote(doc: &serde_json::Value) -> Option<RemoteDraft> {
    let total = decimal(&doc["TotalAmt"]);
    let tax = decimal(&doc["TxnTaxDetail"]["TotalTax"]).unwrap_or_default();
    Some(RemoteDraft {
        id: doc["Id"].as_str()?.to_owned(),
        total_net: total.map(|t| t - tax),
    })
}

impl QuickBooksConfig {
    fn entity(&self) -> &'static str {
        if self.as_estimate {
            "Estimate"
        } else {
            "Invoice"
        }
    }

    fn company(&self) -> String {
        format!("{}/v3/company/{}", self.base_url, encode(&self.realm_id))
    }

    fn request(&self, method: HttpMethod, url: String, body: Vec<u8>) -> HttpRequest {
        HttpRequest::json(method, url, body, self.timeout_ms)
    }

    /// The invoice (or estimate) of draft `d`, created alone or in a batch.
    fn document(
        &self,
        key: &str,
        reference: &str,
        d: &Draft,
    ) -> Result<serde_json::Value, ConnectorError> {
        let customer = d.contact(&self.customers).ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "quickbooks: no CustomerRef for customer `{}`: set `accounting.<target>.contact` in the mapping or the target's `customers`",
                d.customer
            ))
        })?;
        // Per line (issue 17): the line's own codes, else the draft's, else the target's.
        let lines: Vec<serde_json::Value> = d
            .lines
            .iter()
            .map(|l| {
                let mut detail = serde_json::json!({
                    "ItemRef": {"value": d.item_of(l).unwrap_or(&self.item)},
                    "Qty": number(&l.quantity),
                    "UnitPrice": number(&l.unit_price),
                });
                if let Some(t) = d.tax_of(l).or(self.tax_code.as_ref()) {
                    detail["TaxCodeRef"] = serde_json::json!({"value": t});
                }
                serde_json::json!({
                    "DetailType": "SalesItemLineDetail",
                    "Amount": number(&l.amount),
                    "Description": l.description,
                    "SalesItemLineDetail": detail,
                })
            })
            .collect();
        let mut body = serde_json::json!({
            "CustomerRef": {"value": customer},
            "DocNumber": reference,
            "TxnDate": d.date,
            "CurrencyRef": {"value": d.currency},
            "PrivateNote": format!("contract-bridge {key}"),
            "Line": lines,
        });
        if !self.as_estimate {
            body["EmailStatus"] = serde_json::json!("NotSet");
        }
        if let Some(url) = &d.statement_url {
            body["CustomerMemo"] = serde_json::json!({"value": crate::statement_line(url)});
        }
        Ok(body)
    }
}

/// A query's answer: `{"QueryResponse": {"Item": [...]}}` or `{"TaxCode": [...]}`;
/// an empty result has neither list.
#[derive(Deserialize)]
struct QueryAnswer {
    #[serde(rename = "QueryResponse")]
    response: QueryLists,
}

#[derive(Deserialize, Default)]
struct QueryLists {
    #[serde(rename = "Item", default)]
    items: Vec<Listed>,
    #[serde(rename = "TaxCode", default)]
    tax_codes: Vec<Listed>,
}

#[derive(Deserialize)]
struct Listed {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Name", default)]
    name: String,
}

impl AccountingApi for QuickBooksConfig {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    /// Active items and tax codes (their ids are what lines carry; the
    /// revenue account is the item's, not sent), up to 1000 each.
    fn code_lists(&self) -> Vec<(crate::accounting::CodeKind, HttpRequest)> {
        use crate::accounting::CodeKind;
        [
            (
                CodeKind::Item,
                "select * from Item where Active = true maxresults 1000",
            ),
            (
                CodeKind::Tax,
                "select * from TaxCode where Active = true maxresults 1000",
            ),
        ]
        .into_iter()
        .map(|(kind, query)| {
            (
                kind,
                self.request(
                    HttpMethod::Get,
                    format!(
                        "{}/query?query={}&minorversion={}",
                        self.company(),
                        encode(query),
                        self.minor_version
                    ),
                    Vec::new(),
                ),
            )
        })
        .collect()
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
        let lists = serde_json::from_str::<QueryAnswer>(&r.body)
            .map_err(|e| {
                ConnectorError::Permanent(format!(
                    "quickbooks: an unexpected {} list: {e}",
                    kind.key()
                ))
            })?
            .response;
        let listed = match kind {
            CodeKind::Item => lists.items,
            CodeKind::Tax => lists.tax_codes,
            CodeKind::Account => return Ok(Vec::new()),
        };
        Ok(listed
            .into_iter()
            .map(|l| ListedCode {
                code: l.id,
                name: l.name,
                rate: None,
            })
            .collect())
    }

    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn reference(&self, key: &str) -> String {
        format!("CB{}", &digest(key)[..16])
    }

    fn rotates_refresh_tokens(&self) -> bool {
        true
    }

    fn oauth_app(&self) -> Option<crate::oauth::OAuthApp> {
        Some(crate::oauth::OAuthApp {
            system: SYSTEM,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            authorize_url: self.authorize_url.clone(),
            token_url: self.token_url.clone(),
            scopes: vec!["com.intuit.quickbooks.accounting".into()],
            client_auth: crate::oauth::ClientAuth::Basic,
            json_token_requests: false,
            authorize_params: Vec::new(),
            // The redirect carries `realmId`, the company consented to.
            tenants: crate::oauth::TenantSource::Redirect { param: "realmId" },
            tenant: Some(self.realm_id.clone()),
            redirect_uri: self.redirect_uri.clone(),
            refresh_token: self.refresh_token.clone(),
            timeout_ms: self.timeout_ms,
        })
    }

    fn token_request(&self, refresh: Option<&str>) -> Result<Option<HttpRequest>, ConnectorError> {
        let Some(refresh) = refresh.or(self.refresh_token.as_ref().map(|r| r.expose())) else {
            return Err(ConnectorError::Permanent(
                "quickbooks: no refresh token: run `contract-bridge connect TARGET --config FILE`"
                    .into(),
            ));
        };
        Ok(Some(token_post(
            &self.token_url,
            &self.client_id,
            &self.client_secret,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
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
        let query = format!(
            "select * from {} where DocNumber = '{}'",
            self.entity(),
            reference.replace('\'', "")
        );
        Ok(self.request(
            HttpMethod::Get,
            format!(
                "{}/query?query={}&minorversion={}",
                self.company(),
                encode(&query),
                self.minor_version
            ),
            Vec::new(),
        ))
    }

    fn read_found(&self, r: &HttpResponse) -> Result<Option<RemoteDraft>, ConnectorError> {
        Ok(check(r)?["QueryResponse"][self.entity()]
            .as_array()
            .and_then(|a| a.first())
            .and_then(remote))
    }

    fn create_draft(
        &self,
        key: &str,
        reference: &str,
        d: &Draft,
    ) -> Result<HttpRequest, ConnectorError> {
        let body = self.document(key, reference, d)?;
        let entity = self.entity().to_lowercase();
        Ok(self.request(
            HttpMethod::Post,
            format!(
                "{}/{entity}?minorversion={}&requestid={}",
                self.company(),
                self.minor_version,
                &digest(key)[..36]
            ),
            serde_json::to_vec(&body).map_err(|e| ConnectorError::Permanent(e.to_string()))?,
        ))
    }

    /// Intuit's documented maximum of payloads in one batch request.
    fn batch_size(&self) -> usize {
        30
    }

    /// One query for every reference (`DocNumber in (...)`).
    fn find_drafts(&self, references: &[&str]) -> Result<HttpRequest, ConnectorError> {
        let list = references
            .iter()
            .map(|r| format!("'{}'", r.replace('\'', "")))
            .collect::<Vec<_>>()
            .join(", ");
        let query = format!(
            "select * from {} where DocNumber in ({list}) maxresults 1000",
            self.entity()
        );
        Ok(self.request(
            HttpMethod::Get,
            format!(
                "{}/query?query={}&minorversion={}",
                self.company(),
                encode(&query),
                self.minor_version
            ),
            Vec::new(),
        ))
    }

    fn read_found_drafts(
        &self,
        r: &HttpResponse,
    ) -> Result<Vec<(String, RemoteDraft)>, ConnectorError> {
        Ok(check(r)?["QueryResponse"][self.entity()]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|doc| Some((doc["DocNumber"].as_str()?.to_owned(), remote(doc)?)))
            .collect())
    }

    /// A `BatchItemRequest`: our reference as its `bId`.
    fn batch_item(
        &self,
        key: &str,
        reference: &str,
        d: &Draft,
    ) -> Result<serde_json::Value, ConnectorError> {
        let mut item = serde_json::json!({"bId": reference, "operation": "create"});
        item[self.entity()] = self.document(key, reference, d)?;
        Ok(item)
    }

    fn create_drafts(
        &self,
        keys: &[&str],
        items: Vec<serde_json::Value>,
    ) -> Result<HttpRequest, ConnectorError> {
        let body = serde_json::json!({ "BatchItemRequest": items });
        Ok(self.request(
            HttpMethod::Post,
            format!(
                "{}/batch?minorversion={}&requestid={}",
                self.company(),
                self.minor_version,
                &digest(&keys.join("\n"))[..36]
            ),
            serde_json::to_vec(&body).map_err(|e| ConnectorError::Permanent(e.to_string()))?,
        ))
    }

    /// Each `BatchItemResponse` by its `bId`: the created document, or its
    /// `Fault`'s messages (that draft alone is refused).
    fn read_created_drafts(
        &self,
        r: &HttpResponse,
    ) -> Result<Vec<(String, Result<RemoteDraft, String>)>, ConnectorError> {
        let v = check(r)?;
        let answers = v["BatchItemResponse"].as_array().ok_or_else(|| {
            ConnectorError::Transient(
                "quickbooks: the answer to a batch has no BatchItemResponse".into(),
            )
        })?;
        Ok(answers
            .iter()
            .filter_map(|a| {
                let reference = a["bId"].as_str()?.to_owned();
                let outcome = match fault(a) {
                    Some(said) => Err(format!("quickbooks: {said}")),
                    None => remote(&a[self.entity()])
                        .ok_or_else(|| "quickbooks: the created document has no Id".to_owned()),
                };
                Some((reference, outcome))
            })
            .collect())
    }

    fn read_created(&self, r: &HttpResponse) -> Result<RemoteDraft, ConnectorError> {
        remote(&check(r)?[self.entity()]).ok_or_else(|| {
            ConnectorError::Transient("quickbooks: the created document has no Id".into())
        })
    }

    fn fetch_draft(&self, id: &str) -> Result<HttpRequest, ConnectorError> {
        Ok(self.request(
            HttpMethod::Get,
            format!(
                "{}/{}/{}?minorversion={}",
                self.company(),
                self.entity().to_lowercase(),
                encode(id),
                self.minor_version
            ),
            Vec::new(),
        ))
    }

    fn read_fetched(&self, r: &HttpResponse) -> Result<RemoteDraft, ConnectorError> {
        remote(&check(r)?[self.entity()]).ok_or_else(|| {
            ConnectorError::Transient("quickbooks: no document in the answer".into())
        })
    }

    fn read_status(
        &self,
        remote_id: &str,
        _reference: &str,
        _step: usize,
        r: &HttpResponse,
    ) -> Result<StatusStep, ConnectorError> {
        use crate::accounting::{DraftStatus, RemoteInvoice};
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        // A deleted document answers a Fault "Object Not Found" (code 610).
        let gone = v["Fault"]["Error"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["code"] == "610");
        if gone {
            return Ok(StatusStep::deleted(remote_id));
        }
        let doc = &check(r)?[self.entity()];
        let total = decimal(&doc["TotalAmt"]).unwrap_or_default();
        let balance = decimal(&doc["Balance"]);
        // QuickBooks has no draft state: an unsent invoice is our draft; a
        // voided one keeps its lines with a zero total and says so in its note.
        let status = if total.is_zero()
            && doc["PrivateNote"]
                .as_str()
                .is_some_and(|n| n.contains("Voided"))
        {
            DraftStatus::Voided
        } else if !total.is_zero() && balance.is_some_and(|b| b.is_zero()) {
            DraftStatus::Paid
        } else if doc["TxnStatus"] == "Accepted"
            || doc["EmailStatus"] == "EmailSent"
            || doc["PrintStatus"] == "PrintComplete"
        {
            DraftStatus::Approved
        } else {
            DraftStatus::Draft
        };
        Ok(StatusStep::Known(RemoteInvoice::with_status(
            remote_id, status,
        )))
    }

    fn contact_of(&self, customer: &str) -> Option<String> {
        self.customers.get(customer).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_tax_codes_are_listed_by_id_and_an_empty_query_lists_none() {
        let qb: QuickBooksConfig = serde_json::from_value(serde_json::json!({
            "realm_id": "9130", "client_id": "c", "client_secret": "s", "refresh_token": "r",
            "customers": {}
        }))
        .unwrap();
        let lists = qb.code_lists();
        assert_eq!(lists.len(), 2);
        assert!(
            lists[0]
                .1
                .url
                .contains("/v3/company/9130/query?query=select"),
            "{}",
            lists[0].1.url
        );
        let answer = |body: &str| HttpResponse {
            status: 200,
            retry_after: None,
            body: body.into(),
        };
        let items = qb
            .read_codes(
                crate::accounting::CodeKind::Item,
                &answer(r#"{"QueryResponse":{"Item":[{"Name":"Hours","Active":true,"FullyQualifiedName":"Hours","Taxable":false,"UnitPrice":95,"Type":"Service","IncomeAccountRef":{"value":"79","name":"Sales of Product Income"},"TrackQtyOnHand":false,"domain":"QBO","sparse":false,"Id":"2","SyncToken":"0","MetaData":{"CreateTime":"2026-09-01T10:00:00-07:00","LastUpdatedTime":"2026-09-01T10:00:00-07:00"}}],"startPosition":1,"maxResults":1},"time":"2026-12-05T01:00:00.000-08:00"}"#),
            )
            .unwrap();
        assert_eq!(
            (items[0].code.as_str(), items[0].name.as_str()),
            ("2", "Hours")
        );
        let none = qb
            .read_codes(
                crate::accounting::CodeKind::Tax,
                &answer(r#"{"QueryResponse":{},"time":"2026-12-05T01:00:00.000-08:00"}"#),
            )
            .unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_fault_in_a_200_is_an_error_and_references_fit_the_doc_number() {
        let r = HttpResponse {
            status: 200,
            retry_after: None,
            body: r#"{"Fault":{"Error":[{"Message":"Duplicate Document Number Error","Detail":"Duplicate Document Number Error : You must specify a different number.","code":"6140"}],"type":"ValidationFault"},"time":"2026-11-01T06:00:00.000-07:00"}"#.into(),
        };
        let e = check(&r).unwrap_err().to_string();
        assert!(e.contains("code 6140"), "{e}");
        let c: QuickBooksConfig = serde_json::from_value(serde_json::json!({
            "realm_id": "1", "client_id": "c", "client_secret": "s", "refresh_token": "r", "customers": {}
        }))
        .unwrap();
        let reference = c.reference("draft:nordhavn-arkitekter:2026-10:r1");
        assert!(reference.len() <= 21, "{reference}");
        assert_eq!(
            reference,
            c.reference("draft:nordhavn-arkitekter:2026-10:r1")
        );
    }
}
