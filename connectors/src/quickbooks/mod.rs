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

use crate::Result;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::accounting::{
    AccessToken, AccountingApi, CodeKind, ListedCode, RemoteDraft, RemoteInvoice, StatusAnswer,
    StatusStep, encode, number, oauth_token, status_error, token_post,
};
use crate::{ConnectorError, Draft, DraftLine, HttpMethod, HttpRequest, HttpResponse, Secret};

mod transformers;

use transformers::{
    Answer, BatchAnswer, BatchItemRequest, BatchRequest, Entity, NewDocument, NewLine, Query, Ref,
    SalesItemLineDetail, fault, parse,
};

crate::defaults::defaults! {
    default_base = "https://quickbooks.api.intuit.com";
    default_authorize_url = "https://appcenter.intuit.com/connect/oauth2";
    default_token_url = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer";
    default_item = "1";
    default_minor: u32 = 75;
}

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

const SYSTEM: &str = "quickbooks";

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The answer as `T`: a `Fault` (in an HTTP 200 too) or another refusal in
/// Intuit's words, or a body not as documented naming the field
/// (reported and retried).
fn read<T: DeserializeOwned>(r: &HttpResponse, what: &str) -> Result<T> {
    let refusal = fault(&r.body);
    if !(200..300).contains(&r.status) {
        let m = match refusal {
            Some(f) => f.said(),
            None => r.body.chars().take(200).collect(),
        };
        return Err(status_error(SYSTEM, r, &m));
    }
    if let Some(f) = refusal {
        return Err(ConnectorError::Permanent(format!(
            "{SYSTEM}: HTTP {} with a Fault: {}",
            r.status,
            f.said()
        )));
    }
    parse(&r.body, what).map_err(ConnectorError::Transient)
}

impl QuickBooksConfig {
    fn entity(&self) -> Entity {
        if self.as_estimate {
            Entity::Estimate
        } else {
            Entity::Invoice
        }
    }

    fn company(&self) -> String {
        format!("{}/v3/company/{}", self.base_url, encode(&self.realm_id))
    }

    fn request(&self, method: HttpMethod, url: String, body: Vec<u8>) -> HttpRequest {
        HttpRequest::json(method, url, body, self.timeout_ms)
    }

    /// `GET /query` asking `query`.
    fn query(&self, query: &str) -> HttpRequest {
        let url = format!(
            "{}/query?query={}&minorversion={}",
            self.company(),
            encode(query),
            self.minor_version
        );
        self.request(HttpMethod::Get, url, Vec::new())
    }

    /// `POST` of `body` to `path`, with `requestid`, QuickBooks' idempotency key.
    fn create(
        &self,
        path: &str,
        idempotency: &str,
        body: &impl serde::Serialize,
    ) -> Result<HttpRequest> {
        let url = format!(
            "{}/{path}?minorversion={}&requestid={}",
            self.company(),
            self.minor_version,
            &digest(idempotency)[..36]
        );
        let body =
            serde_json::to_vec(body).map_err(|e| ConnectorError::Permanent(e.to_string()))?;
        Ok(self.request(HttpMethod::Post, url, body))
    }

    /// The document the answer `r` holds.
    fn read_document(&self, r: &HttpResponse, what: &str) -> Result<RemoteDraft> {
        let answer: Answer = read(r, what)?;
        let doc = answer
            .document(self.entity(), what)
            .map_err(ConnectorError::Transient)?;
        Ok(doc.remote())
    }

    /// The sales line of line `l` of draft `d`: per line (issue 17), the
    /// line's own codes, else the draft's, else the target's.
    fn line<'a>(&'a self, d: &'a Draft, l: &'a DraftLine) -> NewLine<'a> {
        let tax_code = d.tax_of(l).or(self.tax_code.as_ref());
        NewLine {
            detail_type: "SalesItemLineDetail",
            amount: number(&l.amount),
            description: &l.description,
            sales_item_line_detail: SalesItemLineDetail {
                item_ref: Ref {
                    value: d.item_of(l).unwrap_or(&self.item),
                },
                qty: number(&l.quantity),
                unit_price: number(&l.unit_price),
                tax_code_ref: tax_code.map(|t| Ref { value: t.as_str() }),
            },
        }
    }

    /// The invoice (or estimate) of draft `d`, created alone or in a batch.
    fn document<'a>(
        &'a self,
        key: &str,
        reference: &'a str,
        d: &'a Draft,
    ) -> Result<NewDocument<'a>> {
        let customer = d.required_contact(&self.customers, SYSTEM, "CustomerRef", "customers")?;
        Ok(NewDocument {
            customer_ref: Ref { value: customer },
            doc_number: reference,
            txn_date: &d.date,
            currency_ref: Ref { value: &d.currency },
            private_note: format!("contract-bridge {key}"),
            line: d.lines.iter().map(|l| self.line(d, l)).collect(),
            email_status: (!self.as_estimate).then_some("NotSet"),
            customer_memo: d.statement_url.as_deref().map(|url| Ref {
                value: crate::statement_line(url),
            }),
        })
    }
}

impl AccountingApi for QuickBooksConfig {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    /// Active items and tax codes (their ids are what lines carry; the
    /// revenue account is the item's, not sent), up to 1000 each.
    fn code_lists(&self) -> Vec<(CodeKind, HttpRequest)> {
        [(CodeKind::Item, "Item"), (CodeKind::Tax, "TaxCode")]
            .into_iter()
            .map(|(kind, entity)| {
                let query = format!("select * from {entity} where Active = true maxresults 1000");
                (kind, self.query(&query))
            })
            .collect()
    }

    fn read_codes(&self, kind: CodeKind, r: &HttpResponse) -> Result<Vec<ListedCode>> {
        let lists = read::<Query>(r, "the code list")?.response;
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

    fn token_request(&self, refresh: Option<&str>) -> Result<Option<HttpRequest>> {
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

    fn read_token(&self, r: &HttpResponse) -> Result<AccessToken> {
        oauth_token(SYSTEM, r)
    }

    fn find_draft(&self, reference: &str) -> Result<HttpRequest> {
        Ok(self.query(&format!(
            "select * from {} where DocNumber = '{}'",
            self.entity().name(),
            reference.replace('\'', "")
        )))
    }

    fn read_found(&self, r: &HttpResponse) -> Result<Option<RemoteDraft>> {
        let found = read::<Query>(r, "the document search")?.response;
        Ok(found.documents(self.entity()).first().map(|d| d.remote()))
    }

    fn create_draft(&self, key: &str, reference: &str, d: &Draft) -> Result<HttpRequest> {
        let body = self.document(key, reference, d)?;
        let entity = self.entity().name().to_lowercase();
        self.create(&entity, key, &body)
    }

    /// One query for every reference (`DocNumber in (...)`).
    fn find_drafts(&self, references: &[&str]) -> Result<HttpRequest> {
        let quoted: Vec<String> = references
            .iter()
            .map(|r| format!("'{}'", r.replace('\'', "")))
            .collect();
        Ok(self.query(&format!(
            "select * from {} where DocNumber in ({}) maxresults 1000",
            self.entity().name(),
            quoted.join(", ")
        )))
    }

    /// Intuit's documented maximum of payloads in one batch request.
    fn batch_size(&self) -> usize {
        30
    }

    fn read_found_drafts(&self, r: &HttpResponse) -> Result<Vec<(String, RemoteDraft)>> {
        let found = read::<Query>(r, "the document search")?.response;
        found
            .documents(self.entity())
            .iter()
            .map(|doc| match &doc.doc_number {
                Some(n) => Ok((n.clone(), doc.remote())),
                // Found by its DocNumber, so it has one.
                None => Err(ConnectorError::Transient(format!(
                    "{SYSTEM}: the document search is not as Intuit documents it (document {} without `DocNumber`)",
                    doc.id
                ))),
            })
            .collect()
    }

    /// A `BatchItemRequest`: our reference as its `bId`.
    fn batch_item(&self, key: &str, reference: &str, d: &Draft) -> Result<serde_json::Value> {
        let doc = self.document(key, reference, d)?;
        let (invoice, estimate) = match self.entity() {
            Entity::Invoice => (Some(doc), None),
            Entity::Estimate => (None, Some(doc)),
        };
        let item = BatchItemRequest {
            id: reference,
            operation: "create",
            invoice,
            estimate,
        };
        serde_json::to_value(item).map_err(|e| ConnectorError::Permanent(e.to_string()))
    }

    fn create_drafts(&self, keys: &[&str], items: Vec<serde_json::Value>) -> Result<HttpRequest> {
        self.create("batch", &keys.join("\n"), &BatchRequest { items })
    }

    /// Each `BatchItemResponse` by its `bId`: the created document, or its
    /// `Fault`'s messages (that draft alone is refused).
    fn read_created_drafts(
        &self,
        r: &HttpResponse,
    ) -> Result<Vec<(String, Result<RemoteDraft, String>)>> {
        let answer: BatchAnswer = read(r, "the answer to a batch")?;
        Ok(answer
            .items
            .into_iter()
            .map(|item| {
                let outcome = match item.fault {
                    Some(f) => Err(format!("{SYSTEM}: {}", f.said())),
                    None => item
                        .answer
                        .document(self.entity(), "the created document")
                        .map(|doc| doc.remote()),
                };
                (item.id, outcome)
            })
            .collect())
    }

    fn read_created(&self, r: &HttpResponse) -> Result<RemoteDraft> {
        self.read_document(r, "the created document")
    }

    fn fetch_draft(&self, id: &str) -> Result<HttpRequest> {
        Ok(self.request(
            HttpMethod::Get,
            format!(
                "{}/{}/{}?minorversion={}",
                self.company(),
                self.entity().name().to_lowercase(),
                encode(id),
                self.minor_version
            ),
            Vec::new(),
        ))
    }

    fn read_fetched(&self, r: &HttpResponse) -> Result<RemoteDraft> {
        self.read_document(r, "the document")
    }

    fn read_status(&self, answer: StatusAnswer<'_>) -> Result<StatusStep> {
        let StatusAnswer {
            remote_id,
            response: r,
            ..
        } = answer;
        // A deleted document answers a Fault "Object Not Found" (code 610).
        if fault(&r.body).is_some_and(|f| f.not_found()) {
            return Ok(StatusStep::deleted(remote_id));
        }
        let what = "the document";
        let doc = read::<Answer>(r, what)?
            .document(self.entity(), what)
            .map_err(ConnectorError::Transient)?;
        Ok(StatusStep::Known(RemoteInvoice::with_status(
            remote_id,
            doc.status(),
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
        let e = read::<serde_json::Value>(&r, "the invoice")
            .unwrap_err()
            .to_string();
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

    #[test]
    fn an_estimate_target_drafts_estimates_alone_and_in_a_batch() {
        let qb: QuickBooksConfig = serde_json::from_value(serde_json::json!({
            "realm_id": "9130", "client_id": "c", "client_secret": "s", "refresh_token": "r",
            "customers": {"riga-bakery": "58"}, "as_estimate": true
        }))
        .unwrap();
        let d: Draft = serde_json::from_value(serde_json::json!({
            "customer": "riga-bakery", "period": "2026-10", "revision": 1,
            "currency": "EUR", "total_net": "40.00", "date": "2026-11-01",
            "lines": [{"kind": "work", "description": "Support work, 1 h", "quantity": "1",
                       "unit_price": "40.00", "amount": "40.00", "tickets": ["T-1"]}]
        }))
        .unwrap();
        let created = qb.create_draft("k", "CB1", &d).unwrap();
        assert!(
            created
                .url
                .contains("/v3/company/9130/estimate?minorversion=75&requestid=")
        );
        let item = qb.batch_item("k", "CB1", &d).unwrap();
        assert_eq!(item["bId"], "CB1");
        assert_eq!(item["Estimate"]["CustomerRef"]["value"], "58");
        assert!(item.get("Invoice").is_none());
        assert!(
            item["Estimate"].get("EmailStatus").is_none(),
            "an estimate is never emailed"
        );
        let found = qb
            .read_found(&crate::testing::ok(serde_json::json!({"QueryResponse": {
                "Estimate": [{"Id": "7", "DocNumber": "CB1", "TotalAmt": 50,
                              "TxnTaxDetail": {"TotalTax": 10}, "TxnStatus": "Pending"}]}})))
            .unwrap();
        assert_eq!(
            found,
            Some(RemoteDraft {
                id: "7".into(),
                total_net: Some(rust_decimal::Decimal::new(40, 0))
            })
        );
    }
}
