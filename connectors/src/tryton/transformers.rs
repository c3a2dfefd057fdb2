//! Tryton's JSON-RPC payloads as types, and their conversion to what the
//! outbox and the ledger poll read (drafts, invoices and sold lines).
//!
//! Every answer is parsed into one of the structs below before anything
//! is taken from it, and every record written is serialized from one. A
//! field the connector asks for is required unless Tryton leaves it null
//! (an account without a code, a draft without a date, a line without a
//! description); a missing or renamed one is an error that names it
//! (`[0].amount: missing field ...`), never a zero or a record not found
//! (which would create the draft twice). Tryton answers only the fields
//! asked for, but a newer version may add some: no shape refuses unknown
//! fields.
//!
//! Where the shapes come from (trytond 6.0, `protocols/jsonrpc.py` and
//! `model/modelstorage.py`, as the real server answers them):
//!
//! - every answer: `{id, result}`, or `{id, error: [kind, args]}` (a
//!   `UserError`'s args being `[message, description, domain]`);
//! - `common.db.login`: `[uid, session]`;
//! - `model.*.read` and `search_read`: a list of records, each with its
//!   `id` and the fields asked; a dotted field (`invoice.state`) answered
//!   as a nested record under `invoice.`; a `Numeric` as `{"__class__":
//!   "Decimal", "decimal": "…"}`, a `Float` as a number, a `Date` as
//!   `{"__class__": "date", year, month, day}`, a `Many2One` as its id;
//! - `model.*.create`: the new ids.

use crate::Result;
use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::ConnectorError;
use crate::accounting::{DraftStatus, RemoteDraft, RemoteInvoice, RemoteLine, decimal};

use super::SYSTEM;

crate::documented::documented_shape!(SYSTEM, "as Tryton answers it");

/// A JSON-RPC answer: the call's `result` (null for a method that returns
/// nothing), or the `error` it raised.
#[derive(Deserialize)]
pub struct Envelope {
    #[serde(default, deserialize_with = "present")]
    pub result: Option<Value>,
    pub error: Option<RpcError>,
}

/// A field that may be absent or null, told apart: `Some(Null)` is null.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `[kind, args]`: the exception's name and its arguments, whose shape
/// depends on the kind (a `UserError`'s message first, a
/// `ConcurrencyException`'s message alone).
#[derive(Deserialize)]
pub struct RpcError(pub String, pub ErrorArgs);

#[derive(Deserialize)]
#[serde(untagged)]
pub enum ErrorArgs {
    List(Vec<Value>),
    Other(Value),
}

impl RpcError {
    pub fn kind(&self) -> &str {
        &self.0
    }

    /// The message: the first argument when it is text, else all of them.
    pub fn message(&self) -> String {
        match &self.1 {
            ErrorArgs::List(args) => match args.first() {
                Some(Value::String(m)) => m.clone(),
                _ => Value::Array(args.clone()).to_string(),
            },
            ErrorArgs::Other(v) => v.to_string(),
        }
    }
}

/// `common.db.login`: the user's id and the session.
#[derive(Deserialize)]
pub struct Login(pub i64, pub String);

/// One row of `model.account.account.search_read` (`id`, `code`, `name`).
#[derive(Deserialize)]
pub struct Account {
    pub id: i64,
    /// Null for a view account without a code.
    pub code: Option<String>,
    pub name: String,
}

/// An invoice read or searched with `id`, `untaxed_amount` and `state`.
#[derive(Deserialize)]
pub struct Invoice {
    pub id: i64,
    pub untaxed_amount: Numeric,
    pub state: String,
}

impl Invoice {
    pub fn remote(&self) -> RemoteDraft {
        RemoteDraft {
            id: self.id.to_string(),
            total_net: Some(self.untaxed_amount.0),
        }
    }
}

/// An invoice searched by id with `state`, `party` and `invoice_date`.
#[derive(Deserialize)]
pub struct InvoiceStatus {
    pub state: String,
    /// An invoice's party is required.
    pub party: i64,
    /// Null until the invoice is validated or posted.
    pub invoice_date: Option<Date>,
}

/// An invoice line of `model.account.invoice.line.search_read` with its
/// invoice's and product's fields (asked by dotted names).
#[derive(Deserialize)]
pub struct SoldLine {
    pub id: i64,
    /// A `Float` field: a JSON number.
    pub quantity: Numeric,
    pub amount: Numeric,
    /// Null for a line without one.
    pub description: Option<String>,
    /// The search asks for lines by product code: each has one.
    #[serde(rename = "product.")]
    pub product: Coded,
    #[serde(rename = "invoice.")]
    pub invoice: SoldInvoice,
}

#[derive(Deserialize)]
pub struct SoldInvoice {
    pub id: i64,
    pub state: String,
    pub party: i64,
    /// Null until the invoice is validated or posted.
    pub invoice_date: Option<Date>,
    #[serde(rename = "currency.")]
    pub currency: Option<Coded>,
}

#[derive(Deserialize)]
pub struct Coded {
    pub code: String,
}

/// A number as Tryton writes it: a `Numeric` as `{"__class__":
/// "Decimal", "decimal": "…"}`, a `Float` as a JSON number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Numeric(pub Decimal);

impl<'de> Deserialize<'de> for Numeric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        v.get("decimal")
            .and_then(decimal)
            .or_else(|| decimal(&v))
            .map(Numeric)
            .ok_or_else(|| D::Error::custom(format!("a decimal, not {v}")))
    }
}

/// A date as Tryton writes it: `{"__class__": "date", year, month, day}`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Date(pub chrono::NaiveDate);

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Parts {
            year: i32,
            month: u32,
            day: u32,
        }
        let p = Parts::deserialize(d)?;
        chrono::NaiveDate::from_ymd_opt(p.year, p.month, p.day)
            .map(Date)
            .ok_or_else(|| D::Error::custom(format!("{}-{}-{} is no date", p.year, p.month, p.day)))
    }
}

/// A decimal to write: `{"__class__": "Decimal", "decimal": "…"}`.
#[derive(Serialize)]
pub struct DecimalOut<'a> {
    #[serde(rename = "__class__")]
    class: &'static str,
    decimal: &'a str,
}

impl<'a> DecimalOut<'a> {
    pub fn new(decimal: &'a str) -> Self {
        DecimalOut {
            class: "Decimal",
            decimal,
        }
    }
}

/// A date to write: `{"__class__": "date", year, month, day}`.
#[derive(Serialize)]
pub struct DateOut {
    #[serde(rename = "__class__")]
    class: &'static str,
    year: u32,
    month: u32,
    day: u32,
}

impl DateOut {
    /// `YYYY-MM-DD`, or none when it has not three numbers.
    pub fn of(text: &str) -> Option<DateOut> {
        let parts: Vec<u32> = text.split('-').filter_map(|p| p.parse().ok()).collect();
        let [year, month, day] = parts[..] else {
            return None;
        };
        Some(DateOut {
            class: "date",
            year,
            month,
            day,
        })
    }
}

/// `model.account.invoice.create`: a customer invoice and its lines
/// (`[["create", lines]]`, Tryton's way of writing a One2Many).
#[derive(Serialize)]
pub struct NewInvoice<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub company: i64,
    pub party: i64,
    pub invoice_address: i64,
    pub currency: i64,
    pub journal: i64,
    pub account: i64,
    pub reference: &'a str,
    pub description: String,
    pub lines: Vec<(&'static str, Vec<NewLine<'a>>)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_date: Option<DateOut>,
}

/// A line of [`NewInvoice`]; each carries the invoice's currency (lines
/// default to the company's, which Tryton refuses on an invoice in another).
#[derive(Serialize)]
pub struct NewLine<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub description: String,
    /// A `Float` field: a JSON number.
    pub quantity: Value,
    pub unit_price: DecimalOut<'a>,
    pub account: i64,
    pub currency: i64,
}

/// Tryton's invoice `state` as ours.
pub fn state(s: &str) -> Option<DraftStatus> {
    Some(match s {
        "draft" => DraftStatus::Draft,
        "validated" | "posted" => DraftStatus::Approved,
        "paid" => DraftStatus::Paid,
        "cancelled" => DraftStatus::Voided,
        _ => return None,
    })
}

/// An invoice's state as ours, or an error naming it.
pub fn known_state(id: &str, said: &str) -> Result<DraftStatus> {
    state(said).ok_or_else(|| {
        ConnectorError::Permanent(format!(
            "{SYSTEM}: invoice {id} has an unknown state `{said}`"
        ))
    })
}

/// Sold lines grouped by invoice, in the order Tryton listed them.
pub fn sales(lines: Vec<SoldLine>) -> Result<Vec<RemoteInvoice>> {
    let mut out: Vec<RemoteInvoice> = Vec::new();
    for l in lines {
        let inv = l.invoice;
        let id = inv.id.to_string();
        let status = known_state(&id, &inv.state)?;
        let line = RemoteLine {
            id: l.id.to_string(),
            item: l.product.code,
            quantity: l.quantity.0,
            amount: l.amount.0,
            // A line without a description has none to compare.
            description: l.description.unwrap_or_default(),
        };
        match out.iter_mut().find(|i| i.id == id) {
            Some(i) => i.lines.push(line),
            None => out.push(RemoteInvoice {
                id,
                status,
                contact: Some(inv.party.to_string()),
                date: inv.invoice_date.map(|d| d.0),
                currency: inv.currency.map(|c| c.code),
                lines: vec![line],
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_missing, rename};
    use serde_json::json;

    /// Two lines of one invoice, as Tryton 6.0 answers dotted field names
    /// (seen on the real server).
    fn sold() -> Value {
        json!([
            {"id":1,"quantity":1.0,"description":"KLIPPEKORT-20","invoice":1,
             "amount":{"__class__":"Decimal","decimal":"18000.00"},
             "product.":{"code":"KLIPPEKORT-20","id":2},
             "invoice.":{"invoice_date":{"__class__":"date","year":2026,"month":10,"day":5},
                         "state":"paid","id":1,"party":3,"currency.":{"code":"DKK","id":4}}},
            {"id":2,"quantity":2.0,"description":"KLIPPEKORT-10","invoice":1,
             "amount":{"__class__":"Decimal","decimal":"19000.00"},
             "product.":{"code":"KLIPPEKORT-10","id":1},
             "invoice.":{"state":"paid","id":1,"party":3}}
        ])
    }

    #[test]
    fn sold_lines_are_grouped_by_invoice_with_its_state() {
        let out = sales(parse(sold(), "lines").unwrap()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, DraftStatus::Paid);
        assert_eq!(out[0].contact.as_deref(), Some("3"));
        assert_eq!(out[0].date.unwrap().to_string(), "2026-10-05");
        assert_eq!(out[0].currency.as_deref(), Some("DKK"));
        assert_eq!(out[0].lines.len(), 2);
        assert_eq!(out[0].lines[1].quantity, Decimal::new(2, 0));
        assert_eq!(out[0].lines[0].amount, Decimal::new(1800000, 2));
    }

    #[test]
    fn a_renamed_amount_is_an_error_naming_it_not_zero() {
        let mut v = sold();
        rename(&mut v[1], "amount", "untaxed_amount");
        let err = parse::<Vec<SoldLine>>(v, "the sold lines").err().unwrap();
        assert_missing(&err, "[1]", "amount");
        let mut v = sold();
        v[0]["quantity"] = json!("one");
        let err = parse::<Vec<SoldLine>>(v, "the sold lines").err().unwrap();
        assert!(err.contains("[0].quantity") && err.contains("one"), "{err}");
    }

    #[test]
    fn a_line_without_its_invoice_or_product_is_refused_not_skipped() {
        let mut v = sold();
        v[0].as_object_mut().unwrap().remove("invoice.");
        let err = parse::<Vec<SoldLine>>(v, "the sold lines").err().unwrap();
        assert_missing(&err, "[0]", "invoice.");
        let mut v = sold();
        v[1]["product."] = json!({"id": 1});
        let err = parse::<Vec<SoldLine>>(v, "the sold lines").err().unwrap();
        assert_missing(&err, "[1].product.", "code");
    }

    #[test]
    fn an_invoice_without_its_id_or_amount_is_an_error_not_a_draft_not_found() {
        let v = json!([{"id": 5, "state": "draft"}]);
        let err = parse::<Vec<Invoice>>(v, "the draft search").err().unwrap();
        assert_missing(&err, "[0]", "untaxed_amount");
        let v = json!([{"ID": 5, "state": "draft",
            "untaxed_amount": {"__class__": "Decimal", "decimal": "1637.50"}}]);
        let err = parse::<Vec<Invoice>>(v, "the draft search").err().unwrap();
        assert!(err.contains("missing field `id`"), "{err}");
    }

    #[test]
    fn decimals_and_dates_read_as_tryton_writes_them() {
        let v = json!([{"id": 5, "state": "draft",
            "untaxed_amount": {"__class__": "Decimal", "decimal": "1637.50"}}]);
        let found: Vec<Invoice> = parse(v, "the draft search").unwrap();
        assert_eq!(found[0].remote().total_net, Some(Decimal::new(163750, 2)));
        assert_eq!(found[0].remote().id, "5");
        let v = json!({"state": "posted", "party": 3,
            "invoice_date": {"__class__": "date", "year": 2026, "month": 2, "day": 30}});
        let err = parse::<InvoiceStatus>(v, "the invoice").err().unwrap();
        assert!(
            err.contains("invoice_date") && err.contains("2026-2-30 is no date"),
            "{err}"
        );
    }

    #[test]
    fn errors_are_read_by_their_kind_and_message() {
        let e: Envelope = serde_json::from_value(json!({"id": 7,
            "error": ["UserError", ["A value is required.", "", null]]}))
        .unwrap();
        let e = e.error.unwrap();
        assert_eq!(
            (e.kind(), e.message().as_str()),
            ("UserError", "A value is required.")
        );
        let e: Envelope = serde_json::from_value(json!({"id": 7,
            "error": ["ConcurrencyException", "Records were modified in the meanwhile"]}))
        .unwrap();
        assert_eq!(
            e.error.unwrap().message(),
            "\"Records were modified in the meanwhile\""
        );
        let e: Envelope = serde_json::from_value(json!({"id": 1, "result": null})).unwrap();
        assert_eq!(e.result, Some(Value::Null), "null is a result");
        let e: Envelope = serde_json::from_value(json!({"id": 1})).unwrap();
        assert!(e.result.is_none() && e.error.is_none());
    }

    #[test]
    fn the_invoice_serializes_as_tryton_reads_it() {
        let invoice = NewInvoice {
            kind: "out",
            company: 1,
            party: 3,
            invoice_address: 4,
            currency: 2,
            journal: 1,
            account: 5,
            reference: "draft:acme:2026-10:r1",
            description: "IT support acme 2026-10".into(),
            lines: vec![(
                "create",
                vec![NewLine {
                    kind: "line",
                    description: "Support".into(),
                    quantity: json!(1.5),
                    unit_price: DecimalOut::new("90.00"),
                    account: 6,
                    currency: 2,
                }],
            )],
            comment: None,
            invoice_date: DateOut::of("2026-10-31"),
        };
        assert_eq!(
            serde_json::to_value(invoice).unwrap(),
            json!({"type": "out", "company": 1, "party": 3, "invoice_address": 4,
                "currency": 2, "journal": 1, "account": 5,
                "reference": "draft:acme:2026-10:r1",
                "description": "IT support acme 2026-10",
                "lines": [["create", [{"type": "line", "description": "Support",
                    "quantity": 1.5,
                    "unit_price": {"__class__": "Decimal", "decimal": "90.00"},
                    "account": 6, "currency": 2}]]],
                "invoice_date": {"__class__": "date", "year": 2026, "month": 10, "day": 31}})
        );
        assert!(DateOut::of("2026-10").is_none());
    }
}
