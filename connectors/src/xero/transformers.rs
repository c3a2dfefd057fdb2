//! Xero's Accounting API payloads as types, and their conversion to the
//! canonical drafts and invoices of [`crate::accounting`].
//!
//! Every answer the connector reads is parsed into one of the structs
//! below before anything is taken from it, and every body it writes is
//! serialized from one. A field the connector reads is required unless
//! Xero leaves it out; a missing or renamed one is an error that names it
//! (`Invoices[0].LineItems[1]: missing field `LineAmount``), never a zero
//! on a sold line. Xero adds fields, so no answer refuses unknown ones.
//!
//! Where the shapes come from: Xero's OpenAPI description
//! (XeroAPI/Xero-OpenAPI `xero_accounting.yaml`, vendored under
//! `tests/contract/xero/`), schemas `Invoices`/`Invoice`/`LineItem`,
//! `Error`/`Element`/`ValidationError`, `Attachments`, `Accounts`,
//! `TaxRates`, `Items`; the token endpoint's errors are RFC 6749 §5.2.
//! The description marks nothing `required` in an answer; what it always
//! shows, and what a reader needs, is required here:
//!
//! - an invoice always has `InvoiceID` and `Status`; a lookup's invoices
//!   their `Reference` (the lookup is by it); `SubTotal` is optional, as
//!   [`RemoteDraft::total_net`] is (a total the system does not state is
//!   not compared);
//! - a line that names an item (`ItemCode`, what can sell a card or a
//!   bank) has its `Quantity` and `LineAmount` (Xero computes whichever of
//!   `Quantity`, `UnitAmount` and `LineAmount` was left out), and its
//!   `TaxAmount` when the invoice's amounts include tax; its `Description`
//!   may be absent (an item line may be created with none, xeroizer#529);
//!   a line without an item is not read;
//! - dates come as `/Date(1573755038314+0000)/` (milliseconds since the
//!   epoch) beside a `DateString` (`2019-03-07T00:00:00`), and money as
//!   JSON numbers (`40.00`).

use crate::Result;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::ConnectorError;
use crate::accounting::Amount;
use crate::accounting::{DraftStatus, RemoteDraft, RemoteInvoice, RemoteLine};

use super::SYSTEM;

crate::documented::documented_shape!(SYSTEM, "as Xero documents it");

/// Xero's error body (`Error`): `{ErrorNumber, Type, Message, Elements}`,
/// each element the refused object with its `ValidationErrors`. A 401 or
/// 403 is a problem document (`{Title, Status, Detail}`) without `Message`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    pub message: Option<String>,
    #[serde(default)]
    pub elements: Vec<Element>,
}

impl ErrorBody {
    /// The message and every validation error, in order.
    pub fn messages(&self) -> Vec<String> {
        self.message
            .iter()
            .cloned()
            .chain(
                self.elements
                    .iter()
                    .flat_map(|e| e.validation_errors.iter().map(|v| v.message.clone())),
            )
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Element {
    #[serde(default)]
    pub validation_errors: Vec<ValidationError>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValidationError {
    pub message: String,
}

/// The token endpoint's refusal (RFC 6749 §5.2): `{error, error_description}`.
#[derive(Debug, Deserialize)]
pub struct TokenError {
    pub error: String,
    pub error_description: Option<String>,
}

/// Every `/Invoices` answer: `{Invoices: [..]}` (beside `Id`, `Status`,
/// `DateTimeUTC`, `pagination`, which nobody reads). `T` is what the
/// reader needs of each invoice.
#[derive(Debug, Deserialize)]
pub struct Invoices<T> {
    #[serde(rename = "Invoices")]
    pub invoices: Vec<T>,
}

/// An invoice as a lookup or a read by id answers it: what the outbox
/// compares with what it pushed.
#[derive(Debug, Deserialize)]
pub struct DraftInvoice {
    #[serde(rename = "InvoiceID")]
    pub id: String,
    /// Without tax, as Xero computed it.
    #[serde(rename = "SubTotal")]
    pub sub_total: Option<Amount>,
}

impl DraftInvoice {
    pub fn remote(&self) -> RemoteDraft {
        RemoteDraft {
            id: self.id.clone(),
            total_net: self.sub_total.map(|a| a.0),
        }
    }
}

/// An invoice a lookup by several references lists: by which of them.
#[derive(Debug, Deserialize)]
pub struct ReferencedInvoice {
    #[serde(rename = "Reference")]
    pub reference: String,
    #[serde(rename = "InvoiceID")]
    pub id: String,
    #[serde(rename = "SubTotal")]
    pub sub_total: Option<Amount>,
}

impl ReferencedInvoice {
    pub fn remote(&self) -> RemoteDraft {
        RemoteDraft {
            id: self.id.clone(),
            total_net: self.sub_total.map(|a| a.0),
        }
    }
}

/// An invoice as `PUT /Invoices` answers it: created, or, with
/// `summarizeErrors=false`, refused on its own (`HasErrors`,
/// `StatusAttributeString: ERROR`, its `ValidationErrors`) and then
/// without an `InvoiceID` of its own.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreatedInvoice {
    /// Ours, echoed: what a batch's answers are matched by.
    pub reference: String,
    #[serde(rename = "InvoiceID")]
    pub id: Option<String>,
    pub sub_total: Option<Amount>,
    /// False unless refused (the description's default).
    #[serde(default)]
    pub has_errors: bool,
    /// `OK`, `WARNING` or `ERROR`; absent when not asked for with
    /// `summarizeErrors=false`.
    pub status_attribute_string: Option<String>,
    #[serde(default)]
    pub validation_errors: Vec<ValidationError>,
}

impl CreatedInvoice {
    pub fn refused(&self) -> bool {
        self.has_errors || self.status_attribute_string.as_deref() == Some("ERROR")
    }

    /// The draft created, or why not.
    pub fn outcome(&self) -> Result<RemoteDraft, String> {
        if self.refused() {
            let said: Vec<&str> = self
                .validation_errors
                .iter()
                .map(|e| e.message.as_str())
                .collect();
            return Err(if said.is_empty() {
                "xero refused the invoice without a message".to_owned()
            } else {
                format!("xero: {}", said.join("; "))
            });
        }
        match &self.id {
            Some(id) => Ok(RemoteDraft {
                id: id.clone(),
                total_net: self.sub_total.map(|a| a.0),
            }),
            None => Err("xero: the created invoice has no InvoiceID".to_owned()),
        }
    }
}

/// An invoice as a status poll or a scan for sales reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Invoice {
    #[serde(rename = "InvoiceID")]
    pub id: String,
    /// `DRAFT`, `SUBMITTED`, `AUTHORISED`, `PAID`, `VOIDED` or `DELETED`;
    /// another is refused by [`Invoice::remote`], not guessed.
    pub status: String,
    pub contact: Option<ContactRef>,
    /// `/Date(…)/`; a text of another form is no date.
    pub date: Option<String>,
    /// `2019-03-07T00:00:00`, read before `Date`.
    pub date_string: Option<String>,
    pub currency_code: Option<String>,
    /// Exclusive of tax when left out (the description says so).
    pub line_amount_types: Option<LineAmountTypes>,
    /// A list without `page` leaves the lines out.
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    /// `/Date(…)/`: where a scan for sales goes on from.
    #[serde(rename = "UpdatedDateUTC")]
    pub updated_date_utc: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ContactRef {
    #[serde(rename = "ContactID")]
    pub id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum LineAmountTypes {
    Exclusive,
    Inclusive,
    NoTax,
}

/// An invoice line: one that names an item, read whole, or another, not read.
#[derive(Debug)]
pub enum LineItem {
    Sold(SoldLine),
    Other,
}

impl<'de> Deserialize<'de> for LineItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        let names_item = raw
            .get("ItemCode")
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty());
        if !names_item {
            return Ok(LineItem::Other);
        }
        serde_path_to_error::deserialize(&raw)
            .map(LineItem::Sold)
            .map_err(D::Error::custom)
    }
}

/// A line that names an item: what can sell a punch card or an hour bank.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SoldLine {
    #[serde(rename = "LineItemID")]
    pub id: Option<String>,
    pub item_code: String,
    pub description: Option<String>,
    pub quantity: Amount,
    /// Quantity × unit amount, less any discount; with tax when the
    /// invoice's amounts include it.
    pub line_amount: Amount,
    /// Read only when the invoice's amounts include tax.
    pub tax_amount: Option<Amount>,
}

/// Xero's `Status` as ours; an unknown one is an error, not a guess.
fn status(s: &str) -> Option<DraftStatus> {
    Some(match s {
        "DRAFT" => DraftStatus::Draft,
        "SUBMITTED" => DraftStatus::Submitted,
        "AUTHORISED" => DraftStatus::Approved,
        "PAID" => DraftStatus::Paid,
        "VOIDED" => DraftStatus::Voided,
        "DELETED" => DraftStatus::Deleted,
        _ => return None,
    })
}

/// Xero's JSON dates: `/Date(1573755038314+0000)/` (milliseconds since the epoch).
pub fn ms_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let inner = s.strip_prefix("/Date(")?.strip_suffix(")/")?;
    let digits: String = inner
        .chars()
        .enumerate()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '-'))
        .map(|(_, c)| c)
        .collect();
    chrono::DateTime::from_timestamp_millis(digits.parse().ok()?)
}

impl Invoice {
    /// The invoice as ours, with its item lines (amounts without tax).
    pub fn remote(&self) -> Result<RemoteInvoice> {
        let id = &self.id;
        let status = status(&self.status).ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "xero: invoice {id} has an unknown Status `{}`",
                self.status
            ))
        })?;
        let date = self
            .date_string
            .as_deref()
            .and_then(|d| d.get(..10))
            .and_then(|d| d.parse().ok())
            .or_else(|| {
                self.date
                    .as_deref()
                    .and_then(ms_date)
                    .map(|t| t.date_naive())
            });
        let inclusive = self.line_amount_types == Some(LineAmountTypes::Inclusive);
        let mut lines = Vec::new();
        for (i, line) in self.line_items.iter().enumerate() {
            let LineItem::Sold(l) = line else { continue };
            let mut amount = l.line_amount.0;
            if inclusive {
                let tax = l.tax_amount.ok_or_else(|| {
                    ConnectorError::Transient(format!(
                        "{SYSTEM}: invoice {id} is not as Xero documents it (LineItems[{i}]: missing field `TaxAmount`, which a tax-inclusive line has)"
                    ))
                })?;
                amount -= tax.0;
            }
            lines.push(RemoteLine {
                id: l.id.clone().unwrap_or_else(|| i.to_string()),
                item: l.item_code.clone(),
                quantity: l.quantity.0,
                amount,
                // Absent on an item line created without one (xeroizer#529).
                description: l.description.clone().unwrap_or_default(),
            });
        }
        Ok(RemoteInvoice {
            id: id.clone(),
            status,
            contact: self.contact.as_ref().map(|c| c.id.clone()),
            date,
            currency: self.currency_code.clone(),
            lines,
        })
    }

    /// When Xero last changed it, as the scan's cursor text.
    pub fn updated(&self) -> Option<String> {
        let at = ms_date(self.updated_date_utc.as_deref()?)?;
        Some(at.format("%Y-%m-%dT%H:%M:%S").to_string())
    }
}

/// The draft we create (`PUT /Invoices`): a sales invoice, exclusive of tax.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewInvoice<'a> {
    /// Always `ACCREC`, a sales invoice.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// Always `DRAFT`: finance approves it in Xero.
    pub status: &'static str,
    pub contact: NewContact<'a>,
    /// `YYYY-MM-DD`.
    pub date: &'a str,
    pub line_amount_types: LineAmountTypes,
    pub reference: &'a str,
    pub currency_code: &'a str,
    pub line_items: Vec<NewLine<'a>>,
}

#[derive(Debug, Serialize)]
pub struct NewContact<'a> {
    #[serde(rename = "ContactID")]
    pub id: &'a str,
}

/// A line of the draft. Quantity and unit amount are JSON numbers (the
/// draft's decimal texts as numbers).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewLine<'a> {
    pub description: &'a str,
    pub quantity: Value,
    pub unit_amount: Value,
    pub account_code: &'a str,
    /// None: the account's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_code: Option<&'a str>,
    /// At most two categories (Xero's limit).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tracking: Vec<NewTracking<'a>>,
}

/// A tracking category and its option, by name.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewTracking<'a> {
    pub name: &'a str,
    pub option: &'a str,
}

/// The body of `PUT /Invoices`: one draft or a batch.
#[derive(Debug, Serialize)]
pub struct InvoicesBody<T> {
    #[serde(rename = "Invoices")]
    pub invoices: Vec<T>,
}

/// `GET /Invoices/{id}/Attachments`, and the answer to an upload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachmentList {
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attachment {
    pub file_name: String,
}

/// `GET /Accounts`: the chart of accounts.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Accounts {
    pub accounts: Vec<Account>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Account {
    /// Bank accounts may have none.
    pub code: Option<String>,
    pub name: String,
    /// ACTIVE or ARCHIVED.
    pub status: Option<String>,
}

/// `GET /TaxRates`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaxRates {
    pub tax_rates: Vec<TaxRate>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaxRate {
    pub tax_type: String,
    pub name: String,
    /// ACTIVE, DELETED, ARCHIVED or PENDING.
    pub status: Option<String>,
    /// Percent.
    pub effective_rate: Option<Amount>,
}

/// `GET /Items`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Items {
    pub items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Item {
    pub code: String,
    /// The description requires only `Code` of an item.
    pub name: Option<String>,
}

/// Is a listed account or tax rate usable? One without a status is.
pub fn active(status: Option<&str>) -> bool {
    status.is_none_or(|s| s == "ACTIVE")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_missing, rename};
    use rust_decimal::Decimal;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        crate::fixture("xero", name)
    }

    fn sold_invoice() -> Value {
        json!({
            "Type": "ACCREC", "InvoiceID": "i-1", "InvoiceNumber": "INV-0006",
            "Reference": "draft:riga:2026-10:r1", "Status": "PAID",
            "Contact": {"ContactID": "C-1", "Name": "Riga Bakery"},
            "DateString": "2026-10-05T00:00:00", "Date": "/Date(1791158400000+0000)/",
            "LineAmountTypes": "Inclusive", "CurrencyCode": "DKK",
            "LineItems": [
                {"LineItemID": "l-1", "ItemCode": "KLIPPEKORT-20", "Description": "Card",
                 "Quantity": 2.0, "UnitAmount": 22500.0, "TaxAmount": 9000.0,
                 "LineAmount": 45000.0, "Tracking": []},
                {"LineItemID": "l-2", "Description": "no item", "LineAmount": 10.0}
            ],
            "SubTotal": 36000.0, "TotalTax": 9000.0, "Total": 45000.0,
            "UpdatedDateUTC": "/Date(1791200000000+0000)/", "HasErrors": false
        })
    }

    fn refused(v: Value) -> String {
        let invoices: Invoices<Invoice> = read(v, "an invoice list").unwrap();
        invoices.invoices[0].remote().unwrap_err().to_string()
    }

    #[test]
    fn the_fixtures_read_as_their_types() {
        let accounts: Accounts = parse(fixture("accounts.json"), "accounts").unwrap();
        assert_eq!(accounts.accounts[1].code.as_deref(), Some("200"));
        assert!(!active(accounts.accounts[4].status.as_deref()));
        let rates: TaxRates = parse(fixture("tax-rates.json"), "tax rates").unwrap();
        assert_eq!(
            rates.tax_rates[0].effective_rate,
            Some(Amount(Decimal::new(20, 0)))
        );
        let items: Items = parse(fixture("items.json"), "items").unwrap();
        assert_eq!(items.items[1].code, "FEE");
        let error: ErrorBody = parse(fixture("validation-error.json"), "error").unwrap();
        assert_eq!(
            error.messages(),
            [
                "A validation exception occurred",
                "The Contact ID is not valid"
            ]
        );
    }

    #[test]
    fn a_sold_line_is_read_without_tax() {
        let invoices: Invoices<Invoice> =
            read(json!({"Invoices": [sold_invoice()]}), "an invoice list").unwrap();
        let r = invoices.invoices[0].remote().unwrap();
        assert_eq!(r.lines.len(), 1, "only the line naming an item");
        assert_eq!(r.lines[0].amount, Decimal::new(36000, 0));
        assert_eq!(r.lines[0].quantity, Decimal::new(2, 0));
        assert_eq!(r.date.unwrap().to_string(), "2026-10-05");
        assert_eq!(
            invoices.invoices[0].updated().as_deref(),
            Some("2026-10-05T11:33:20")
        );
    }

    #[test]
    fn a_sold_line_without_its_line_amount_is_refused_naming_it() {
        let mut inv = sold_invoice();
        inv["LineItems"][0]
            .as_object_mut()
            .unwrap()
            .remove("LineAmount");
        let e = read::<Invoices<Invoice>>(json!({"Invoices": [inv]}), "an invoice list")
            .unwrap_err()
            .to_string();
        assert_missing(&e, "Invoices[0].LineItems[0]", "LineAmount");
    }

    #[test]
    fn a_renamed_amount_is_an_error_not_a_zero() {
        // `Amount` for `LineAmount`: the line's money is nowhere.
        let mut inv = sold_invoice();
        rename(&mut inv["LineItems"][0], "LineAmount", "Amount");
        let e = read::<Invoices<Invoice>>(json!({"Invoices": [inv]}), "an invoice list")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`LineAmount`"), "{e}");
        // A tax-inclusive line whose tax is renamed: not counted as tax-free.
        let mut inv = sold_invoice();
        rename(&mut inv["LineItems"][0], "TaxAmount", "Tax");
        let e = refused(json!({"Invoices": [inv]}));
        assert!(
            e.contains("i-1") && e.contains("LineItems[0]") && e.contains("`TaxAmount`"),
            "{e}"
        );
        // An amount that is no number.
        let mut inv = sold_invoice();
        inv["LineItems"][0]["Quantity"] = json!("two");
        let e = read::<Invoices<Invoice>>(json!({"Invoices": [inv]}), "an invoice list")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("LineItems[0]: Quantity: a decimal number"),
            "{e}"
        );
    }

    #[test]
    fn an_invoice_without_its_id_or_status_is_refused_naming_it() {
        for field in ["InvoiceID", "Status"] {
            let mut inv = sold_invoice();
            inv.as_object_mut().unwrap().remove(field);
            let e = read::<Invoices<Invoice>>(json!({"Invoices": [inv]}), "an invoice list")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("Invoices[0]") && e.contains(&format!("missing field `{field}`")),
                "{e}"
            );
        }
        let e = read::<Invoices<DraftInvoice>>(json!({"Invoices": [{"SubTotal": 1.0}]}), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `InvoiceID`"), "{e}");
        let e = read::<Invoices<DraftInvoice>>(json!({"Invoice": []}), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `Invoices`"), "{e}");
    }

    #[test]
    fn a_line_without_an_item_is_not_read() {
        // Nothing of it is needed: no field of it is required.
        let line: LineItem = serde_json::from_value(json!({"Description": "note"})).unwrap();
        assert!(matches!(line, LineItem::Other));
        let line: LineItem =
            serde_json::from_value(json!({"ItemCode": "", "LineAmount": "x"})).unwrap();
        assert!(matches!(line, LineItem::Other));
    }

    #[test]
    fn a_created_invoice_is_refused_with_its_validation_errors() {
        let answer: Invoices<CreatedInvoice> = read(
            json!({"Invoices": [
                {"Reference": "a", "InvoiceID": "i-1", "SubTotal": 40.0, "HasErrors": false,
                 "StatusAttributeString": "OK"},
                {"Reference": "b", "InvoiceID": "00000000-0000-0000-0000-000000000000",
                 "HasErrors": true, "StatusAttributeString": "ERROR",
                 "ValidationErrors": [{"Message": "Account code '211' is not a valid code"}]},
                {"Reference": "c", "StatusAttributeString": "ERROR"}
            ]}),
            "the created invoices",
        )
        .unwrap();
        let out: Vec<_> = answer
            .invoices
            .iter()
            .map(CreatedInvoice::outcome)
            .collect();
        assert_eq!(
            out[0],
            Ok(RemoteDraft {
                id: "i-1".into(),
                total_net: Some(Decimal::new(40, 0))
            })
        );
        assert_eq!(
            out[1],
            Err("xero: Account code '211' is not a valid code".into())
        );
        assert_eq!(
            out[2],
            Err("xero refused the invoice without a message".into())
        );
        let e = read::<Invoices<CreatedInvoice>>(json!({"Invoices": [{"InvoiceID": "i"}]}), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `Reference`"), "{e}");
    }
}
