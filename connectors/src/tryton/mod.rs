//! Tryton (6.0, JSON-RPC): draft customer invoices (`account.invoice`,
//! `type: out`, `state: draft`), with our reference in `reference`.
//!
//! A session comes from `common.db.login` and is sent as `Authorization:
//! Session base64(login:uid:session)`; every call carries the company in its
//! context. Business errors arrive as HTTP 200 with `error: ["UserError",
//! [message, …]]`. Decimals travel as `{"__class__": "Decimal", "decimal":
//! "…"}`. Each line carries the invoice's currency: lines default to the
//! company's, which Tryton then refuses for an invoice in another one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::accounting::{
    AccessToken, AccountingApi, DraftStatus, RemoteDraft, RemoteInvoice, RemoteLine, SalesPage,
    StatusStep, decimal, fit_quantity, json, number,
};
use crate::{ConnectorError, Draft, HttpMethod, HttpRequest, HttpResponse, Secret};

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
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
    #[serde(default = "default_rate")]
    pub requests_per_second: u32,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_login() -> String {
    "admin".into()
}
fn default_rate() -> u32 {
    20
}
fn default_timeout_ms() -> u64 {
    30_000
}

const SYSTEM: &str = "tryton";

fn dec(text: &str) -> serde_json::Value {
    serde_json::json!({"__class__": "Decimal", "decimal": text})
}

/// A JSON-RPC answer's `result`, or the error it carries.
fn result(r: &HttpResponse) -> Result<serde_json::Value, ConnectorError> {
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
    let v = json(r, SYSTEM)?;
    if let Some(error) = v.get("error").filter(|e| !e.is_null()) {
        let kind = error[0].as_str().unwrap_or("error");
        let message = error[1][0]
            .as_str()
            .map_or_else(|| error[1].to_string(), str::to_owned);
        let said = format!("{SYSTEM}: {kind}: {message}");
        // A record another transaction holds is worth another try.
        return Err(if kind.contains("Concurrency") {
            ConnectorError::Transient(said)
        } else {
            ConnectorError::Permanent(said)
        });
    }
    Ok(v["result"].clone())
}

fn remote(record: &serde_json::Value) -> Option<RemoteDraft> {
    let total = &record["untaxed_amount"];
    Some(RemoteDraft {
        id: record["id"].as_i64()?.to_string(),
        total_net: decimal(&total["decimal"]).or_else(|| decimal(total)),
    })
}

/// Tryton's invoice `state` as ours.
fn state(s: &str) -> Option<DraftStatus> {
    Some(match s {
        "draft" => DraftStatus::Draft,
        "validated" | "posted" => DraftStatus::Approved,
        "paid" => DraftStatus::Paid,
        "cancelled" => DraftStatus::Voided,
        _ => return None,
    })
}

/// A Tryton date (`{"__class__": "date", "year": …}`).
fn date(v: &serde_json::Value) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(
        i32::try_from(v["year"].as_i64()?).ok()?,
        u32::try_from(v["month"].as_i64()?).ok()?,
        u32::try_from(v["day"].as_i64()?).ok()?,
    )
}

fn tryton_decimal(v: &serde_json::Value) -> Option<rust_decimal::Decimal> {
    decimal(&v["decimal"]).or_else(|| decimal(v))
}

/// Invoice lines read with their invoice's fields (dotted names, which
/// Tryton answers as nested records under `name.`), grouped by invoice.
fn sales(lines: &[serde_json::Value]) -> Result<Vec<RemoteInvoice>, ConnectorError> {
    let mut out: Vec<RemoteInvoice> = Vec::new();
    for l in lines {
        let inv = &l["invoice."];
        let Some(id) = inv["id"].as_i64().or(l["invoice"].as_i64()) else {
            continue;
        };
        let id = id.to_string();
        let said = inv["state"].as_str().unwrap_or_default();
        let status = state(said).ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "tryton: invoice {id} has an unknown state `{said}`"
            ))
        })?;
        let line = RemoteLine {
            id: l["id"].as_i64().unwrap_or_default().to_string(),
            item: l["product."]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            quantity: decimal(&l["quantity"]).unwrap_or(rust_decimal::Decimal::ONE),
            amount: tryton_decimal(&l["amount"]).unwrap_or_default(),
            description: l["description"].as_str().unwrap_or_default().to_owned(),
        };
        match out.iter_mut().find(|i| i.id == id) {
            Some(i) => i.lines.push(line),
            None => out.push(RemoteInvoice {
                id,
                status,
                contact: inv["party"].as_i64().map(|p| p.to_string()),
                date: date(&inv["invoice_date"]),
                currency: inv["currency."]["code"].as_str().map(str::to_owned),
                lines: vec![line],
            }),
        }
    }
    Ok(out)
}

impl TrytonConfig {
    fn call(&self, method: &str, params: serde_json::Value) -> Result<HttpRequest, ConnectorError> {
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

    fn id_of(
        &self,
        map: &BTreeMap<String, i64>,
        what: &str,
        key: &str,
    ) -> Result<i64, ConnectorError> {
        map.get(key).copied().ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "tryton: no {what} id for `{key}`: add it under the target's `{what}`"
            ))
        })
    }
}

/// One row of `model.account.account.search_read`.
#[derive(serde::Deserialize)]
struct ListedAccount {
    id: i64,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    name: String,
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
    ) -> Result<Vec<crate::accounting::ListedCode>, ConnectorError> {
        if kind != crate::accounting::CodeKind::Account {
            return Ok(Vec::new());
        }
        let rows: Vec<ListedAccount> = serde_json::from_value(result(r)?).map_err(|e| {
            ConnectorError::Permanent(format!("tryton: an unexpected account list: {e}"))
        })?;
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

    fn token_request(&self, _refresh: Option<&str>) -> Result<Option<HttpRequest>, ConnectorError> {
        self.call(
            "common.db.login",
            serde_json::json!([self.login, {"password": self.password.expose()}, "en"]),
        )
        .map(Some)
    }

    fn read_token(&self, r: &HttpResponse) -> Result<AccessToken, ConnectorError> {
        use base64::Engine;
        if r.status == 401 || r.status == 403 {
            return Err(ConnectorError::Permanent(format!(
                "tryton: HTTP {}: login `{}` refused (check the target's login and password)",
                r.status, self.login
            )));
        }
        let v = result(r)?;
        let (Some(uid), Some(session)) = (v[0].as_i64(), v[1].as_str()) else {
            return Err(ConnectorError::Permanent(format!(
                "tryton: login answered {v}"
            )));
        };
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
        if let Some(t) = token {
            request
                .headers
                .push(("authorization".into(), format!("Session {t}")));
        }
    }

    fn find_draft(&self, reference: &str) -> Result<HttpRequest, ConnectorError> {
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

    fn read_found(&self, r: &HttpResponse) -> Result<Option<RemoteDraft>, ConnectorError> {
        Ok(result(r)?
            .as_array()
            .and_then(|a| a.iter().find(|i| i["state"] != "cancelled"))
            .and_then(remote))
    }

    fn create_draft(
        &self,
        _key: &str,
        reference: &str,
        d: &Draft,
    ) -> Result<HttpRequest, ConnectorError> {
        let party = match &d.refs.contact {
            Some(c) => c.parse().map_err(|_| {
                ConnectorError::Permanent(format!(
                    "tryton: the mapping's contact `{c}` is not a party id"
                ))
            })?,
            None => self.id_of(&self.parties, "parties", &d.customer)?,
        };
        // Per line (issue 17): the line's account, else the draft's, else the target's.
        let revenue_of = |l: &crate::DraftLine| -> Result<i64, ConnectorError> {
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
        let date: Vec<u32> = d.date.split('-').filter_map(|p| p.parse().ok()).collect();
        let lines: Vec<serde_json::Value> = d
            .lines
            .iter()
            .map(|l| {
                // Tryton keeps two decimals of quantity.
                let (quantity, unit_price, description) = fit_quantity(l, 2);
                Ok(serde_json::json!({
                    "type": "line",
                    "description": description,
                    "quantity": number(&quantity),
                    "unit_price": dec(&unit_price),
                    "account": revenue_of(l)?,
                    "currency": currency,
                }))
            })
            .collect::<Result<_, ConnectorError>>()?;
        let mut invoice = serde_json::json!({
            "type": "out",
            "company": self.company,
            "party": party,
            "invoice_address": address,
            "currency": currency,
            "journal": self.journal,
            "account": self.receivable_account,
            "reference": reference,
            "description": format!("IT support {} {}", d.customer, d.period),
            "lines": [["create", lines]],
        });
        if let Some(url) = &d.statement_url {
            invoice["comment"] = serde_json::json!(crate::statement_line(url));
        }
        if let [y, m, day] = date[..] {
            invoice["invoice_date"] =
                serde_json::json!({"__class__": "date", "year": y, "month": m, "day": day});
        }
        self.call(
            "model.account.invoice.create",
            serde_json::json!([[invoice], self.context()]),
        )
    }

    fn read_created(&self, r: &HttpResponse) -> Result<RemoteDraft, ConnectorError> {
        let ids = result(r)?;
        let id = ids[0]
            .as_i64()
            .ok_or_else(|| ConnectorError::Transient(format!("tryton: create answered {ids}")))?;
        Ok(RemoteDraft {
            id: id.to_string(),
            total_net: None,
        })
    }

    fn fetch_draft(&self, id: &str) -> Result<HttpRequest, ConnectorError> {
        let id: i64 = id
            .parse()
            .map_err(|_| ConnectorError::Permanent(format!("tryton: `{id}` is not a record id")))?;
        self.call(
            "model.account.invoice.read",
            serde_json::json!([[id], ["id", "untaxed_amount", "state"], self.context()]),
        )
    }

    fn read_fetched(&self, r: &HttpResponse) -> Result<RemoteDraft, ConnectorError> {
        result(r)?
            .as_array()
            .and_then(|a| a.first())
            .and_then(remote)
            .ok_or_else(|| ConnectorError::Transient("tryton: the invoice is gone".into()))
    }

    fn status_request(
        &self,
        remote_id: &str,
        _reference: &str,
    ) -> Result<HttpRequest, ConnectorError> {
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

    fn read_status(
        &self,
        remote_id: &str,
        _reference: &str,
        _step: usize,
        r: &HttpResponse,
    ) -> Result<StatusStep, ConnectorError> {
        let v = result(r)?;
        let Some(inv) = v.as_array().and_then(|a| a.first()) else {
            return Ok(StatusStep::deleted(remote_id));
        };
        let said = inv["state"].as_str().unwrap_or_default();
        let status = state(said).ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "tryton: invoice {remote_id} has an unknown state `{said}`"
            ))
        })?;
        let mut out = RemoteInvoice::with_status(remote_id, status);
        out.contact = inv["party"].as_i64().map(|p| p.to_string());
        out.date = date(&inv["invoice_date"]);
        Ok(StatusStep::Known(out))
    }

    fn contact_of(&self, customer: &str) -> Option<String> {
        self.parties.get(customer).map(ToString::to_string)
    }

    fn sales_request(
        &self,
        items: &[String],
        _cursor: Option<&str>,
        page: u32,
    ) -> Result<Option<HttpRequest>, ConnectorError> {
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

    fn read_sales(&self, r: &HttpResponse) -> Result<SalesPage, ConnectorError> {
        let v = result(r)?;
        let lines = v.as_array().cloned().unwrap_or_default();
        Ok(SalesPage {
            more: lines.len() >= 200,
            invoices: sales(&lines)?,
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
    fn sold_lines_are_grouped_by_invoice_with_its_state() {
        // The shape Tryton 6.0 answers dotted field names in (seen on the real server).
        let lines: Vec<serde_json::Value> = serde_json::from_str(
            r#"[
            {"id":1,"quantity":1.0,"description":"KLIPPEKORT-20","invoice":1,
             "amount":{"__class__":"Decimal","decimal":"18000.00"},
             "product.":{"code":"KLIPPEKORT-20","id":2},
             "invoice.":{"invoice_date":{"__class__":"date","year":2026,"month":10,"day":5},
                         "state":"paid","id":1,"party":3,"currency.":{"code":"DKK","id":4}}},
            {"id":2,"quantity":2.0,"description":"KLIPPEKORT-10","invoice":1,
             "amount":{"__class__":"Decimal","decimal":"19000.00"},
             "product.":{"code":"KLIPPEKORT-10","id":1},
             "invoice.":{"state":"paid","id":1,"party":3}}
        ]"#,
        )
        .unwrap();
        let out = sales(&lines).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, DraftStatus::Paid);
        assert_eq!(out[0].contact.as_deref(), Some("3"));
        assert_eq!(out[0].date.unwrap().to_string(), "2026-10-05");
        assert_eq!(out[0].currency.as_deref(), Some("DKK"));
        assert_eq!(out[0].lines.len(), 2);
        assert_eq!(out[0].lines[1].quantity, rust_decimal::Decimal::new(2, 0));
    }

    #[test]
    fn a_user_error_in_a_200_is_permanent_and_decimals_are_read() {
        let r = HttpResponse {
            status: 200,
            retry_after: None,
            body: r#"{"id":7,"error":["UserError",["A value is required for field \"Account\" in \"Invoice\".","",null]]}"#.into(),
        };
        let e = result(&r).unwrap_err();
        assert!(matches!(e, ConnectorError::Permanent(_)));
        assert!(
            e.to_string()
                .contains("A value is required for field \"Account\""),
            "{e}"
        );
        let ok = serde_json::json!({"id": 1, "untaxed_amount": {"__class__": "Decimal", "decimal": "1637.50"}});
        assert_eq!(
            remote(&ok).unwrap().total_net,
            Some(rust_decimal::Decimal::new(163750, 2))
        );
    }
}
