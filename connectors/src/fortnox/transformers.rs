//! Fortnox's API v3 payloads as types, and their conversion to the drafts
//! and invoices of [`crate::accounting`].
//!
//! Every answer the connector reads is parsed into one of the structs
//! below before anything is taken from it, and the invoice it creates is
//! serialized from one. A field the connector reads is required unless
//! Fortnox leaves it out; a missing or renamed one is an error that names
//! it (`Invoice.InvoiceRows[0]: an article row without `Total``), never a
//! zero on a sold row or an unpaid invoice read as paid. Fortnox adds
//! fields, so no shape refuses unknown ones.
//!
//! Where the shapes come from: Fortnox's OpenAPI description (schemas
//! `InvoiceListItem`, `Invoice`, `InvoiceInvoiceRow`, `MetaInformation`,
//! `AccountListItem`, `ArticleListItem`) and its pages
//! developer.fortnox.se/documentation/resources/invoices and
//! …/guides-and-good-to-know/responses:
//!
//! - a list: `{MetaInformation: {@TotalResources, @TotalPages,
//!   @CurrentPage}, Invoices: [...]}`, each invoice without its rows or
//!   `Net` (`DocumentNumber`, `CustomerNumber`, `InvoiceDate`,
//!   `Currency`, `Booked`, `Cancelled`, `Sent`, `Balance`, …);
//! - one invoice: `{Invoice: {...}}`, the list's fields with `Net`
//!   (without VAT), `FinalPayDate` (null until paid in full) and
//!   `InvoiceRows` (`RowId`, `ArticleNumber`, `DeliveredQuantity` written
//!   as a text, `Total`, `Description`);
//! - `{Accounts: [{Number, Description, Active}]}`,
//!   `{Articles: [{ArticleNumber, Description}]}`;
//! - errors: `{ErrorInformation: {error, message, code}}`; older answers
//!   write `Message` and `Code`.

use crate::Result;
use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ConnectorError;
use crate::accounting::Amount;
use crate::accounting::{DraftStatus, RemoteDraft, RemoteInvoice, RemoteLine};

use super::SYSTEM;

/// How Fortnox's answers are read: see [`crate::documented`].
const SHAPE: crate::documented::Shape = crate::documented::Shape {
    system: Some(SYSTEM),
    shape: "as Fortnox documents it",
};

/// `body` as `T`, or why not, naming the field by its path.
pub fn parse<T: DeserializeOwned>(body: &str, what: &str) -> Result<T, String> {
    SHAPE.read_str(body, what)
}

/// Fortnox's error body.
#[derive(Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "ErrorInformation")]
    pub information: ErrorInformation,
}

#[derive(Deserialize)]
pub struct ErrorInformation {
    #[serde(alias = "Message")]
    pub message: Option<String>,
    #[serde(alias = "Code")]
    pub code: Option<i64>,
}

/// What an error answer says, in Fortnox's (Swedish) words with its code;
/// the body's first 200 characters when it says nothing.
pub fn error_message(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body).map(|e| e.information) {
        Ok(ErrorInformation {
            message: Some(m),
            code: Some(code),
        }) => format!("{m} (code {code})"),
        Ok(ErrorInformation {
            message: Some(m),
            code: None,
        }) => m,
        _ => body.chars().take(200).collect(),
    }
}

/// `{"Invoices": [...]}`: a lookup's answer, whose `MetaInformation`
/// nobody reads. `T` is what the reader needs of each invoice.
#[derive(Deserialize)]
pub struct Invoices<T> {
    #[serde(rename = "Invoices")]
    pub invoices: Vec<T>,
}

/// A page of the sales scan: the listed invoices and where the list ends.
#[derive(Deserialize)]
pub struct InvoicePage {
    #[serde(rename = "MetaInformation")]
    pub meta: MetaInformation,
    #[serde(rename = "Invoices")]
    pub invoices: Vec<ListedInvoice>,
}

#[derive(Deserialize)]
pub struct MetaInformation {
    #[serde(rename = "@TotalPages")]
    pub total_pages: u32,
    #[serde(rename = "@CurrentPage")]
    pub current_page: u32,
}

impl MetaInformation {
    pub fn more(&self) -> bool {
        self.current_page < self.total_pages
    }
}

/// An invoice a lookup by our reference lists: a cancelled one is not
/// the draft (the next create makes another).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FoundInvoice {
    pub document_number: String,
    pub cancelled: bool,
}

/// `{"Invoice": {...}}`: what a create or a read by number answers.
#[derive(Deserialize)]
pub struct Single<T> {
    #[serde(rename = "Invoice")]
    pub invoice: T,
}

/// The invoice we created, as the outbox compares it with what it pushed.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DraftInvoice {
    pub document_number: String,
    /// Without VAT, as Fortnox computed it.
    pub net: Amount,
}

impl DraftInvoice {
    pub fn remote(&self) -> RemoteDraft {
        RemoteDraft {
            id: self.document_number.clone(),
            total_net: Some(self.net.0),
        }
    }
}

/// An invoice as the list shows it: no rows.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListedInvoice {
    pub document_number: String,
    pub customer_number: String,
    pub invoice_date: NaiveDate,
    pub currency: String,
    pub booked: bool,
    pub cancelled: bool,
    pub sent: bool,
    /// What is left to pay.
    pub balance: Amount,
}

impl ListedInvoice {
    /// Cancelled; paid (booked, nothing left to pay, and `paid_in_full`);
    /// booked or sent; or still the unbooked draft we made.
    fn status_with(&self, paid_in_full: bool) -> DraftStatus {
        if self.cancelled {
            DraftStatus::Voided
        } else if self.booked && self.balance.0.is_zero() && paid_in_full {
            DraftStatus::Paid
        } else if self.booked || self.sent {
            DraftStatus::Approved
        } else {
            DraftStatus::Draft
        }
    }

    /// As listed: the list may leave out `FinalPayDate`, so a booked
    /// invoice with nothing left to pay counts as paid until the invoice
    /// read whole says otherwise.
    pub fn remote(&self) -> RemoteInvoice {
        self.remote_with(self.status_with(true), Vec::new())
    }

    fn remote_with(&self, status: DraftStatus, lines: Vec<RemoteLine>) -> RemoteInvoice {
        RemoteInvoice {
            id: self.document_number.clone(),
            status,
            contact: Some(self.customer_number.clone()),
            date: Some(self.invoice_date),
            currency: Some(self.currency.clone()),
            lines,
        }
    }
}

/// An invoice read whole (a status poll, a sale).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Invoice {
    #[serde(flatten)]
    pub listed: ListedInvoice,
    /// The day it was paid in full; null until then.
    pub final_pay_date: Option<String>,
    pub invoice_rows: Vec<InvoiceRow>,
}

/// A row. Only a row naming an article can sell a card or a bank, so what
/// such a row needs is checked when it is read; other rows (text, fees)
/// are left out.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvoiceRow {
    pub row_id: Option<i64>,
    pub article_number: Option<String>,
    pub delivered_quantity: Option<Amount>,
    /// Quantity × price, less any discount.
    pub total: Option<Amount>,
    pub description: Option<String>,
}

impl Invoice {
    pub fn status(&self) -> DraftStatus {
        let paid_on = self.final_pay_date.as_deref();
        self.listed
            .status_with(paid_on.is_some_and(|d| !d.is_empty()))
    }

    /// The invoice as ours, with its article rows; an article row without
    /// its quantity, total or description is an error naming it.
    pub fn remote(&self) -> Result<RemoteInvoice> {
        let mut lines = Vec::new();
        for (i, row) in self.invoice_rows.iter().enumerate() {
            let Some(item) = row.article_number.as_deref().filter(|a| !a.is_empty()) else {
                continue;
            };
            let missing = |field: &str| {
                ConnectorError::Transient(format!(
                    "{SYSTEM}: invoice {} is not as Fortnox documents it (InvoiceRows[{i}]: an article row without `{field}`)",
                    self.listed.document_number
                ))
            };
            lines.push(RemoteLine {
                id: row.row_id.map_or_else(|| i.to_string(), |n| n.to_string()),
                item: item.to_owned(),
                quantity: row
                    .delivered_quantity
                    .ok_or_else(|| missing("DeliveredQuantity"))?
                    .0,
                amount: row.total.ok_or_else(|| missing("Total"))?.0,
                description: row
                    .description
                    .clone()
                    .ok_or_else(|| missing("Description"))?,
            });
        }
        Ok(self.listed.remote_with(self.status(), lines))
    }
}

/// `GET /3/accounts`: the chart of accounts of the current financial year.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Accounts {
    pub accounts: Vec<Account>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Account {
    pub number: i64,
    pub description: String,
    /// Left out: active.
    pub active: Option<bool>,
}

/// `GET /3/articles`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Articles {
    pub articles: Vec<Article>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Article {
    pub article_number: String,
    pub description: String,
}

/// `POST /3/invoices`: an invoice, unbooked and unsent (Fortnox's draft).
#[derive(Serialize)]
pub struct NewInvoiceBody<'a> {
    #[serde(rename = "Invoice")]
    pub invoice: NewInvoice<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewInvoice<'a> {
    pub customer_number: &'a str,
    /// `YYYY-MM-DD`.
    pub invoice_date: &'a str,
    pub currency: &'a str,
    /// Our reference: what the lookup before every create finds it by.
    pub external_invoice_reference1: &'a str,
    pub comments: String,
    /// Printed on the invoice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
    pub invoice_rows: Vec<NewRow<'a>>,
}

/// A row of the invoice. Numbers are JSON numbers (the draft's decimal
/// texts as numbers).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewRow<'a> {
    pub description: &'a str,
    pub delivered_quantity: Value,
    pub price: Value,
    /// None: the article's sales account, or the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_number: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub article_number: Option<&'a str>,
    /// The percent (25, 12, 6).
    #[serde(rename = "VAT", skip_serializing_if = "Option::is_none")]
    pub vat: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        crate::fixture("fortnox", name)
    }

    fn read<T: DeserializeOwned>(v: &Value) -> Result<T, String> {
        parse(&v.to_string(), "the answer")
    }

    #[test]
    fn the_fixtures_read_as_their_types() {
        let sale: Single<Invoice> = read(&fixture("sale-invoice.json")).unwrap();
        let remote = sale.invoice.remote().unwrap();
        assert_eq!(remote.status, DraftStatus::Approved);
        assert_eq!(remote.contact.as_deref(), Some("1042"));
        assert_eq!(remote.lines.len(), 1, "only the row naming an article");
        assert_eq!(remote.lines[0].amount, Decimal::new(18000, 0));
        assert_eq!(remote.lines[0].quantity, Decimal::ONE);
        for (name, status) in [
            ("invoice-unbooked.json", DraftStatus::Draft),
            ("invoice-booked-sent.json", DraftStatus::Approved),
            ("invoice-paid.json", DraftStatus::Paid),
            ("invoice-cancelled.json", DraftStatus::Voided),
        ] {
            let inv: Single<Invoice> = read(&fixture(name)).unwrap();
            assert_eq!(inv.invoice.status(), status, "{name}");
            let draft: Single<DraftInvoice> = read(&fixture(name)).unwrap();
            assert_eq!(
                draft.invoice.remote().total_net,
                Some(Decimal::new(4000, 0))
            );
        }
        let page: InvoicePage = read(&fixture("sales-list.json")).unwrap();
        assert!(!page.meta.more());
        assert_eq!(page.invoices[0].remote().status, DraftStatus::Approved);
        let accounts: Accounts = read(&fixture("accounts.json")).unwrap();
        assert_eq!(accounts.accounts[3].active, Some(false));
        let articles: Articles = read(&fixture("articles.json")).unwrap();
        assert_eq!(articles.articles[0].article_number, "SUPPORT-H");
    }

    #[test]
    fn a_renamed_balance_is_an_error_not_a_paid_invoice() {
        let mut v = fixture("invoice-paid.json");
        let inv = v["Invoice"].as_object_mut().unwrap();
        let balance = inv.remove("Balance").unwrap();
        inv.insert("Remaining".into(), balance);
        let e = read::<Single<Invoice>>(&v).err().unwrap();
        assert!(
            e.starts_with("fortnox: the answer is not as Fortnox documents it")
                && e.contains("Invoice")
                && e.contains("missing field `Balance`"),
            "{e}"
        );
    }

    #[test]
    fn an_article_row_without_its_total_is_an_error_a_text_row_is_left_out() {
        let mut v = fixture("sale-invoice.json");
        v["Invoice"]["InvoiceRows"][0]
            .as_object_mut()
            .unwrap()
            .remove("Total");
        let inv: Single<Invoice> = read(&v).unwrap();
        let e = inv.invoice.remote().unwrap_err().to_string();
        assert!(
            e.contains("invoice 5001") && e.contains("InvoiceRows[0]") && e.contains("`Total`"),
            "{e}"
        );
        let mut v = fixture("sale-invoice.json");
        v["Invoice"]["InvoiceRows"][0]["DeliveredQuantity"] = json!("one");
        let e = read::<Single<Invoice>>(&v).err().unwrap();
        assert!(
            e.contains("DeliveredQuantity") && e.contains("a decimal number"),
            "{e}"
        );
        let mut v = fixture("sale-invoice.json");
        v["Invoice"]["InvoiceRows"] = json!([{"RowId": 7, "Description": "Tack!"}]);
        let inv: Single<Invoice> = read(&v).unwrap();
        assert!(inv.invoice.remote().unwrap().lines.is_empty());
    }

    #[test]
    fn a_found_invoice_without_its_number_is_an_error_not_a_draft_to_create() {
        let e = read::<Invoices<FoundInvoice>>(&json!({"Invoices": [{"Cancelled": false}]}))
            .err()
            .unwrap();
        assert!(
            e.contains("Invoices[0]") && e.contains("missing field `DocumentNumber`"),
            "{e}"
        );
    }

    #[test]
    fn an_error_body_is_reported_in_fortnox_words_with_its_code() {
        let body = fixture("error-customer.json").to_string();
        assert_eq!(error_message(&body), "Kunden hittades inte. (code 2000204)");
        assert_eq!(
            error_message(r#"{"ErrorInformation":{"Error":1,"Message":"Fel"}}"#),
            "Fel"
        );
        assert_eq!(error_message("Bad Gateway"), "Bad Gateway");
    }

    #[test]
    fn the_invoice_serializes_as_fortnox_documents_it() {
        let body = serde_json::to_value(NewInvoiceBody {
            invoice: NewInvoice {
                customer_number: "1042",
                invoice_date: "2026-10-31",
                currency: "SEK",
                external_invoice_reference1: "draft:acme:2026-10:r1",
                comments: "acme 2026-10".into(),
                remarks: None,
                invoice_rows: vec![NewRow {
                    description: "Support",
                    delivered_quantity: json!(12.5),
                    price: json!(950),
                    account_number: Some(json!(3001)),
                    article_number: Some("SUPPORT-H"),
                    vat: Some(json!(25)),
                }],
            },
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"Invoice": {
                "CustomerNumber": "1042", "InvoiceDate": "2026-10-31", "Currency": "SEK",
                "ExternalInvoiceReference1": "draft:acme:2026-10:r1", "Comments": "acme 2026-10",
                "InvoiceRows": [{"Description": "Support", "DeliveredQuantity": 12.5, "Price": 950,
                    "AccountNumber": 3001, "ArticleNumber": "SUPPORT-H", "VAT": 25}]
            }})
        );
    }
}
