//! Tryton (6.0, JSON-RPC): draft customer invoices (`account.invoice`,
//! `type: out`, `state: draft`), with our reference in `reference`.
//!
//! A session comes from `common.db.login` and is sent as `Authorization:
//! Session base64(login:uid:session)`; every call carries the company in its
//! context. Business errors arrive as HTTP 200 with `error: ["UserError",
//! [message, …]]`. Decimals travel as `{"__class__": "Decimal", "decimal":
//! "…"}`. Each line carries the invoice's currency: lines default to the
//! company's, which Tryton then refuses for an invoice in another one.
//!
//! Every answer and every record written is a typed struct in
//! [`transformers`]: a missing or renamed field is an error naming it.

mod transformers;

use crate::Result;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounting::{
    AccessToken, AccountingApi, RemoteDraft, RemoteInvoice, SalesAsk, SalesPage, StatusAnswer,
    StatusStep, fit_quantity, json, number,
};
use crate::{ConnectorError, Draft, HttpMethod, HttpRequest, HttpResponse, Secret};
use transformers::{
    Account, DateOut, DecimalOut, Envelope, Invoice, InvoiceStatus, Login, NewInvoice, NewLine,
    SoldLine, known_state, parse, read, sales,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrytonConfig {
    /// The database's JSON-RPC URL, e.g. `http://127.0.0.1:8000/ci/`.
    pub url: String,
    #[serde(default = "default_login")]
    pub login: String,
    pub password: Secret,
    pub company: i64,
    pub journal: i64,
    pub receivable_account: i64,
    pub revenue_account: i64,
    /// Currency code → `currency.currency` id.
    pub currencies: BTreeMap<String, i64>,
    /// Our customer key → `party.party` id.
    pub parties: BTreeMap<String, i64>,
    /// Our customer key → the party's invoice `party.address` id.
    pub addresses: BTreeMap<String, i64>,
    #[serde(default = "crate::defaults::per_second::<20>")]
    pub requests_per_second: u32,
    #[serde(default = "crate::defaults::timeout_ms::<30_000>")]
    pub timeout_ms: u64,
}

crate::defaults::defaults! {
    default_login = "admin";
}

const SYSTEM: &str = "tryton";

/// A JSON-RPC answer's `result`, or the error it carries.
fn result(r: &HttpResponse) -> Result<serde_json::Value> {
    if !(200..300).contains(&r.status) {
        let said = format!("{SYSTEM}: HTTP {}", r.status);
        return Err(match r.status {
            401 => ConnectorError::Unauthorized(said),
            429 => ConnectorError::Throttled {
                message: said,
                retry_after: r.retry_after.unwrap_or(Duration::from_secs(60)),
            },
            408 | 500..=599 => ConnectorError::Transient(said),
            _ => ConnectorError::Permanent(said),
        });
    }
    let answer: Envelope = read(json(r, SYSTEM)?, "the answer")?;
    if let Some(error) = answer.error {
        let kind = error.kind();
        let said = format!("{SYSTEM}: {kind}: {}", error.message());
        // A record another transaction holds is worth another try.
        return Err(if kind.contains("Concurrency") {
            ConnectorError::Transient(said)
        } else {
            ConnectorError::Permanent(said)
        });
    }
    answer.result.ok_or_else(|| {
        ConnectorError::Transient(format!(
            "{SYSTEM}: HTTP {}: the answer has neither a result nor an error",
            r.status
        ))
    })
}

impl TrytonConfig {
    fn call(&self, method: &str, params: serde_json::Value) -> Result<HttpRequest> {
        let body = serde_json::json!({"id": 1, "method": method, "params": params});
        Ok(HttpRequest {
            method: HttpMethod::Post,
            url: self.url.clone(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&body)
                .map_err(|e| ConnectorError::Permanent(e.to_string()))?,
            timeout: Duration::from_millis(self.timeout_ms),
        })
    }

    fn context(&self) -> serde_json::Value {
        serde_json::json!({"company": self.company})
    }

    fn id_of(&self, map: &BTreeMap<String, i64>, what: &str, key: &str) -> Result<i64> {
        map.get(key).copied().ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "tryton: no {what} id for `{key}`: add it under the target's `{what}`"
            ))
        })
    }
}

impl AccountingApi for TrytonConfig {
    /// The accounts (their ids are what lines carry), up to 1000.
    fn code_lists(&self) -> Vec<(crate::accounting::CodeKind, HttpRequest)> {
        self.call(
            "model.account.account.search_read",
            serde_json::json!([[], 0, 1000, null, ["id", "code", "name"], self.context()]),
        )
        .map(|r| vec![(crate::accounting::CodeKind::Account, r)])
        .unwrap_or_default()
    }

    fn read_codes(
        &self,
        kind: crate::accounting::CodeKind,
        r: &HttpResponse,
    ) -> Result<Vec<crate::accounting::ListedCode>> {
        if kind != crate::accounting::CodeKind::Account {
            return Ok(Vec::new());
        }
        let rows: Vec<Account> =
            parse(result(r)?, "the account list").map_err(ConnectorError::Permanent)?;
        Ok(rows
            .into_iter()
            .map(|a| crate::accounting::ListedCode {
                code: a.id.to_string(),
                name: match a.code {
                    Some(c) if !c.is_empty() => format!("{c} {}", a.name),
                    _ => a.name,
                },
                rate: None,
            })
            .collect())
    }

    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn token_request(&self, _refresh: Option<&str>) -> Result<Option<HttpRequest>> {
        self.call(
            "common.db.login",
            serde_json::json!([self.login, {"password": self.password.expose()}, "en"]),
        )
        .map(Some)
    }

    fn read_token(&self, r: &HttpResponse) -> Result<AccessToken> {
        use base64::Engine;
        if r.status == 401 || r.status == 403 {
            return Err(ConnectorError::Permanent(format!(
                "tryton: HTTP {}: login `{}` refused (check the target's login and password)",
                r.status, self.login
            )));
        }
        let Login(uid, session) =
            parse(result(r)?, "the login").map_err(ConnectorError::Permanent)?;
        Ok(AccessToken {
            token: base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{uid}:{session}", self.login)),
            // Tryton ends idle sessions; a 401 renews it in any case.
            expires_in: Duration::from_secs(600),
            refresh_token: None,
            scope: None,
        })
    }

    fn authorize(&self, request: &mut HttpRequest, token: Option<&str>) {
        crate::accounting::token_authorization(request, "Session", token);
    }

    fn find_draft(&self, reference: &str) -> Result<HttpRequest> {
        self.call(
            "model.account.invoice.search_read",
            serde_json::json!([
                [["reference", "=", reference], ["type", "=", "out"]],
                0,
                null,
                null,
                ["id", "untaxed_amount", "state"],
                self.context()
            ]),
        )
    }

    fn read_found(&self, r: &HttpResponse) -> Result<Option<RemoteDraft>> {
        let found: Vec<Invoice> = read(result(r)?, "the draft search")?;
        Ok(found
            .iter()
            .find(|i| i.state != "cancelled")
            .map(Invoice::remote))
    }

    fn create_draft(&self, _key: &str, reference: &str, d: &Draft) -> Result<HttpRequest> {
        let party = match &d.refs.contact {
            Some(c) => c.parse().map_err(|_| {
                ConnectorError::Permanent(format!(
                    "tryton: the mapping's contact `{c}` is not a party id"
                ))
            })?,
            None => self.id_of(&self.parties, "parties", &d.customer)?,
        };
        // Per line (issue 17): the line's account, else the draft's, else the target's.
        let revenue_of = |l: &crate::DraftLine| -> Result<i64> {
            match d.account_of(l) {
                Some(a) => a.parse().map_err(|_| {
                    ConnectorError::Permanent(format!(
                        "tryton: the mapping's account `{a}` is not an account id"
                    ))
                }),
                None => Ok(self.revenue_account),
            }
        };
        let address = self.id_of(&self.addresses, "addresses", &d.customer)?;
        let currency = self.id_of(&self.currencies, "currencies", &d.currency)?;
        // Tryton keeps two decimals of quantity.
        let fitted: Vec<_> = d.lines.iter().map(|l| (l, fit_quantity(l, 2))).collect();
        let lines = fitted
            .iter()
            .map(|(l, (quantity, unit_price, description))| {
                Ok(NewLine {
                    kind: "line",
                    description: description.clone(),
                    quantity: number(quantity),
                    unit_price: DecimalOut::new(unit_price),
                    account: revenue_of(l)?,
                    currency,
                })
            })
            .collect::<Result<_>>()?;
        let invoice = NewInvoice {
            kind: "out",
            company: self.company,
            party,
            invoice_address: address,
            currency,
            journal: self.journal,
            account: self.receivable_account,
            reference,
            description: format!("IT support {} {}", d.customer, d.period),
            lines: vec![("create", lines)],
            comment: d.statement_url.as_deref().map(crate::statement_line),
            invoice_date: DateOut::of(&d.date),
        };
        self.call(
            "model.account.invoice.create",
            serde_json::json!([[invoice], self.context()]),
        )
    }

    fn read_created(&self, r: &HttpResponse) -> Result<RemoteDraft> {
        let ids: Vec<i64> = read(result(r)?, "the created ids")?;
        let id = ids.first().ok_or_else(|| {
            ConnectorError::Transient(format!("{SYSTEM}: the create answered no id"))
        })?;
        Ok(RemoteDraft {
            id: id.to_string(),
            total_net: None,
        })
    }

    fn fetch_draft(&self, id: &str) -> Result<HttpRequest> {
        let id: i64 = id
            .parse()
            .map_err(|_| ConnectorError::Permanent(format!("tryton: `{id}` is not a record id")))?;
        self.call(
            "model.account.invoice.read",
            serde_json::json!([[id], ["id", "untaxed_amount", "state"], self.context()]),
        )
    }

    fn read_fetched(&self, r: &HttpResponse) -> Result<RemoteDraft> {
        let invoices: Vec<Invoice> = read(result(r)?, "the invoice")?;
        invoices
            .first()
            .map(Invoice::remote)
            .ok_or_else(|| ConnectorError::Transient("tryton: the invoice is gone".into()))
    }

    fn status_request(&self, remote_id: &str, _reference: &str) -> Result<HttpRequest> {
        let id: i64 = remote_id.parse().map_err(|_| {
            ConnectorError::Permanent(format!("tryton: `{remote_id}` is not a record id"))
        })?;
        // A search, not a read: a deleted invoice is an empty answer, not an error.
        self.call(
            "model.account.invoice.search_read",
            serde_json::json!([
                [["id", "=", id]],
                0,
                null,
                null,
                ["id", "state", "party", "invoice_date"],
                self.context()
            ]),
        )
    }

    fn read_status(&self, answer: StatusAnswer<'_>) -> Result<StatusStep> {
        let StatusAnswer {
            remote_id,
            response: r,
            ..
        } = answer;
        let found: Vec<InvoiceStatus> = read(result(r)?, "the invoice's state")?;
        let Some(inv) = found.first() else {
            return Ok(StatusStep::deleted(remote_id));
        };
        let status = known_state(remote_id, &inv.state)?;
        let mut out = RemoteInvoice::with_status(remote_id, status);
        out.contact = Some(inv.party.to_string());
        out.date = inv.invoice_date.map(|d| d.0);
        Ok(StatusStep::Known(out))
    }

    fn contact_of(&self, customer: &str) -> Option<String> {
        self.parties.get(customer).map(ToString::to_string)
    }

    fn sales_request(&self, ask: SalesAsk<'_>) -> Result<Option<HttpRequest>> {
        let SalesAsk { items, page, .. } = ask;
        // Tryton filters by product code itself: only the lines that sell
        // a card or a bank come back, so no cursor is needed.
        const PAGE: u32 = 200;
        self.call(
            "model.account.invoice.line.search_read",
            serde_json::json!([
                [
                    ["invoice.type", "=", "out"],
                    ["invoice.state", "in", ["validated", "posted", "paid"]],
                    ["product.code", "in", items]
                ],
                page.saturating_sub(1) * PAGE,
                PAGE,
                [["id", "ASC"]],
                [
                    "id",
                    "quantity",
                    "amount",
                    "description",
                    "invoice",
                    "product.code",
                    "invoice.id",
                    "invoice.state",
                    "invoice.party",
                    "invoice.invoice_date",
                    "invoice.currency.code"
                ],
                self.context()
            ]),
        )
        .map(Some)
    }

    fn read_sales(&self, r: &HttpResponse) -> Result<SalesPage> {
        let lines: Vec<SoldLine> = read(result(r)?, "the sold lines")?;
        Ok(SalesPage {
            more: lines.len() >= 200,
            invoices: sales(lines)?,
            ..SalesPage::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_listed_by_id_with_their_code_and_name() {
        let t: TrytonConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:8000/db/", "password": "p", "company": 1, "journal": 1,
            "receivable_account": 3, "revenue_account": 7,
            "currencies": {}, "parties": {}, "addresses": {}
        }))
        .unwrap();
        let lists = t.code_lists();
        let body: serde_json::Value = serde_json::from_slice(&lists[0].1.body).unwrap();
        assert_eq!(body["method"], "model.account.account.search_read");
        let r = HttpResponse {
            status: 200,
            retry_after: None,
            body: r#"{"id":1,"result":[{"id":7,"code":"4000","name":"Revenue"},{"id":3,"code":"1510","name":"Accounts Receivable"},{"id":1,"code":null,"name":"Root"}]}"#.into(),
        };
        let codes = t
            .read_codes(crate::accounting::CodeKind::Account, &r)
            .unwrap();
        let got: Vec<(&str, &str)> = codes
            .iter()
            .map(|c| (c.code.as_str(), c.name.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("7", "4000 Revenue"),
                ("3", "1510 Accounts Receivable"),
                ("1", "Root")
            ]
        );
    }

    #[test]
    fn a_user_error_in_a_200_is_permanent_and_a_concurrency_error_transient() {
        let answer = |body: &str| HttpResponse {
            status: 200,
            retry_after: None,
            body: body.into(),
        };
        let e = result(&answer(
            r#"{"id":7,"error":["UserError",["A value is required for field \"Account\" in \"Invoice\".","",null]]}"#,
        ))
        .unwrap_err();
        assert!(matches!(e, ConnectorError::Permanent(_)));
        assert!(
            e.to_string()
                .contains("A value is required for field \"Account\""),
            "{e}"
        );
        let e = result(&answer(
            r#"{"id":7,"error":["ConcurrencyException","Records were modified"]}"#,
        ))
        .unwrap_err();
        assert!(matches!(e, ConnectorError::Transient(_)), "{e}");
        assert_eq!(
            result(&answer(r#"{"id":1,"result":[4]}"#)).unwrap(),
            serde_json::json!([4])
        );
    }

    #[test]
    fn a_found_draft_without_its_amount_is_an_error_not_a_draft_to_create() {
        let t: TrytonConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:8000/db/", "password": "p", "company": 1, "journal": 1,
            "receivable_account": 3, "revenue_account": 7,
            "currencies": {}, "parties": {}, "addresses": {}
        }))
        .unwrap();
        let answer = |body: &str| HttpResponse {
            status: 200,
            retry_after: None,
            body: body.into(),
        };
        let found = t
            .read_found(&answer(
                r#"{"id":1,"result":[{"id":4,"state":"cancelled","untaxed_amount":{"__class__":"Decimal","decimal":"10.00"}},{"id":5,"state":"draft","untaxed_amount":{"__class__":"Decimal","decimal":"1637.50"}}]}"#,
            ))
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.id.as_str(), found.total_net),
            ("5", Some(rust_decimal::Decimal::new(163750, 2)))
        );
        let e = t
            .read_found(&answer(r#"{"id":1,"result":[{"id":5,"state":"draft"}]}"#))
            .unwrap_err();
        assert!(
            e.to_string().contains("missing field `untaxed_amount`"),
            "{e}"
        );
    }
}
