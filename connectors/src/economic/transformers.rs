//! e-conomic's payloads as types, and their conversion to what the outbox
//! and the ledger poll read (drafts, booked invoices and their lines).
//!
//! Every answer is parsed into one of the structs below before anything
//! is taken from it, and the draft we write is serialized from one. A
//! field the connector reads is required unless e-conomic leaves it out (a
//! booked invoice in a list has no lines, a text line no product); a
//! missing or renamed one is an error that names it
//! (`collection[0]: missing field `draftInvoiceNumber``), never a draft
//! not found (which would create it twice) or an invoice read as unpaid.
//! e-conomic adds fields (`self` links, new properties), so no shape
//! refuses unknown ones.
//!
//! Where the shapes come from (restdocs.e-conomic.com and its JSON
//! schemas):
//!
//! - a collection: `{collection: [...], pagination: {…, nextPage?}}`, the
//!   next page's link left out on the last;
//! - `invoices/drafts`: `draftInvoiceNumber`, `netAmount`, `notes`;
//! - `invoices/booked`: `bookedInvoiceNumber`, `date`, `currency`,
//!   `remainder` (what is left to pay), `customer.customerNumber`, and read
//!   whole its `lines` (`lineNumber`, `product.productNumber`, `quantity`,
//!   `unitNetPrice`, `totalNetAmount`, `description`);
//! - `products`: `productNumber`, `name`, `barred`;
//! - errors: `{message, errorCode, developerHint, errors: {field:
//!   {errors: [{message, …}]}}}`.

use crate::Result;
use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::ConnectorError;
use crate::accounting::Amount;
use crate::accounting::{DraftStatus, RemoteDraft, RemoteInvoice, RemoteLine};

use super::SYSTEM;

/// How economic's answers are read: see [`crate::documented`].
const SHAPE: crate::documented::Shape = crate::documented::Shape {
    system: Some(SYSTEM),
    shape: "as e-conomic documents it",
};

/// `body` as `T`, or why not, naming the field by its path.
pub fn parse<T: DeserializeOwned>(body: &str, what: &str) -> Result<T, String> {
    SHAPE.read_str(body, what)
}

/// e-conomic's error body; each part may be absent.
#[derive(Deserialize)]
pub struct ErrorBody {
    pub message: Option<String>,
    #[serde(default)]
    pub errors: BTreeMap<String, FieldErrors>,
}

#[derive(Deserialize)]
pub struct FieldErrors {
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

#[derive(Deserialize)]
pub struct FieldError {
    pub message: Option<String>,
}

/// What an error answer says: its message and each field's; the body's
/// first 200 characters when it says nothing.
pub fn error_message(body: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Ok(e) = serde_json::from_str::<ErrorBody>(body) {
        parts.extend(e.message);
        for (field, f) in e.errors {
            parts.extend(
                f.errors
                    .into_iter()
                    .filter_map(|m| Some(format!("{field}: {}", m.message?))),
            );
        }
    }
    if parts.is_empty() {
        body.chars().take(200).collect()
    } else {
        parts.join("; ")
    }
}

/// A date as e-conomic writes it: `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Day(pub chrono::NaiveDate);

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map(Day)
            .map_err(|_| D::Error::custom(format!("`{s}` is not a date (YYYY-MM-DD)")))
    }
}

/// A collection whose pages are not followed (a lookup by filter).
#[derive(Deserialize)]
pub struct Collection<T> {
    pub collection: Vec<T>,
}

/// A collection read page by page.
#[derive(Deserialize)]
pub struct Paged<T> {
    pub collection: Vec<T>,
    pub pagination: Pagination,
}

#[derive(Deserialize)]
pub struct Pagination {
    /// The next page's link; left out on the last page.
    #[serde(rename = "nextPage")]
    pub next_page: Option<String>,
}

/// A draft invoice (`invoices/drafts`, found, created or read).
#[derive(Deserialize)]
pub struct DraftInvoice {
    #[serde(rename = "draftInvoiceNumber")]
    pub number: i64,
    #[serde(rename = "netAmount")]
    pub net_amount: Amount,
}

impl DraftInvoice {
    pub fn remote(&self) -> RemoteDraft {
        RemoteDraft {
            id: self.number.to_string(),
            total_net: Some(self.net_amount.0),
        }
    }
}

/// A booked invoice, listed (without lines) or read whole.
#[derive(Deserialize)]
pub struct BookedInvoice {
    #[serde(rename = "bookedInvoiceNumber")]
    pub number: i64,
    pub date: Day,
    pub currency: String,
    /// What is left to pay, in the invoice's currency.
    pub remainder: Amount,
    pub customer: CustomerRef,
    /// A listed invoice has none: only a booked invoice read whole.
    #[serde(default)]
    pub lines: Vec<BookedLine>,
}

#[derive(Deserialize)]
pub struct CustomerRef {
    #[serde(rename = "customerNumber")]
    pub customer_number: i64,
}

/// A booked invoice line. A line without a product (a text line) is
/// left out, so what a product line needs is checked when it is read.
#[derive(Deserialize)]
pub struct BookedLine {
    #[serde(rename = "lineNumber")]
    pub line_number: Option<i64>,
    pub product: Option<ProductRef>,
    pub quantity: Option<Amount>,
    #[serde(rename = "unitNetPrice")]
    pub unit_net_price: Option<Amount>,
    #[serde(rename = "totalNetAmount")]
    pub total_net_amount: Option<Amount>,
    pub description: Option<String>,
}

#[derive(Deserialize, Serialize)]
pub struct ProductRef {
    #[serde(rename = "productNumber")]
    pub product_number: String,
}

/// A product of `GET /products`.
#[derive(Deserialize)]
pub struct Product {
    #[serde(rename = "productNumber")]
    pub product_number: String,
    pub name: String,
    pub barred: bool,
}

impl BookedInvoice {
    /// Paid when nothing remains to pay, else issued.
    pub fn status(&self) -> DraftStatus {
        if self.remainder.0.is_zero() {
            DraftStatus::Paid
        } else {
            DraftStatus::Approved
        }
    }

    /// The invoice with its lines that name a product; a product line
    /// without its quantity or amount is an error naming it.
    pub fn remote(&self) -> Result<RemoteInvoice> {
        let mut lines = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            let Some(item) = l.product.as_ref().map(|p| p.product_number.as_str()) else {
                continue;
            };
            if item.is_empty() {
                continue;
            }
            let missing = |field: &str| {
                ConnectorError::Transient(format!(
                    "{SYSTEM}: booked invoice {} is not as e-conomic documents it (lines[{i}]: a product line without `{field}`)",
                    self.number
                ))
            };
            let quantity = l.quantity.ok_or_else(|| missing("quantity"))?.0;
            let amount = match (l.total_net_amount, l.unit_net_price) {
                (Some(total), _) => total.0,
                (None, Some(price)) => price.0 * quantity,
                (None, None) => return Err(missing("totalNetAmount")),
            };
            lines.push(RemoteLine {
                id: l
                    .line_number
                    .map_or_else(|| (i + 1).to_string(), |n| n.to_string()),
                item: item.to_owned(),
                quantity,
                amount,
                // A line without a description has none to compare.
                description: l.description.clone().unwrap_or_default(),
            });
        }
        Ok(RemoteInvoice {
            id: self.number.to_string(),
            status: self.status(),
            contact: Some(self.customer.customer_number.to_string()),
            date: Some(self.date.0),
            currency: Some(self.currency.clone()),
            lines,
        })
    }
}

/// `POST /invoices/drafts`.
#[derive(Serialize)]
pub struct NewDraft<'a> {
    pub currency: &'a str,
    pub date: &'a str,
    pub customer: NewCustomer,
    pub layout: Layout,
    #[serde(rename = "paymentTerms")]
    pub payment_terms: PaymentTerms,
    pub recipient: Recipient<'a>,
    pub notes: Notes<'a>,
    pub lines: Vec<NewLine<'a>>,
}

#[derive(Serialize)]
pub struct NewCustomer {
    #[serde(rename = "customerNumber")]
    pub customer_number: i64,
}

#[derive(Serialize)]
pub struct Layout {
    #[serde(rename = "layoutNumber")]
    pub layout_number: i64,
}

#[derive(Serialize)]
pub struct PaymentTerms {
    #[serde(rename = "paymentTermsNumber")]
    pub payment_terms_number: i64,
}

#[derive(Serialize)]
pub struct Recipient<'a> {
    pub name: &'a str,
    #[serde(rename = "vatZone")]
    pub vat_zone: VatZone,
}

#[derive(Serialize)]
pub struct VatZone {
    #[serde(rename = "vatZoneNumber")]
    pub vat_zone_number: i64,
}

/// The draft's notes: `textLine1` holds our reference (what the draft is
/// found by); the second line is the customer's.
#[derive(Serialize)]
pub struct Notes<'a> {
    pub heading: String,
    #[serde(rename = "textLine1")]
    pub text_line1: &'a str,
    #[serde(rename = "textLine2", skip_serializing_if = "Option::is_none")]
    pub text_line2: Option<String>,
}

#[derive(Serialize)]
pub struct NewLine<'a> {
    #[serde(rename = "lineNumber")]
    pub line_number: usize,
    pub description: &'a str,
    /// JSON numbers, as the draft's decimal text.
    pub quantity: Value,
    #[serde(rename = "unitNetPrice")]
    pub unit_net_price: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<ProductRef>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_missing, rename};
    use rust_decimal::Decimal;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        crate::fixture("economic", name)
    }

    #[test]
    fn the_fixtures_read_as_their_types() {
        let d: DraftInvoice = parse(&fixture("draft.json").to_string(), "draft").unwrap();
        assert_eq!(d.remote().id, "1");
        assert_eq!(d.remote().total_net, Some(Decimal::new(4000, 0)));
        let inv: BookedInvoice =
            parse(&fixture("sale-booked-invoice.json").to_string(), "invoice").unwrap();
        let remote = inv.remote().unwrap();
        assert_eq!(remote.status, DraftStatus::Approved);
        assert_eq!(remote.contact.as_deref(), Some("42"));
        assert_eq!(remote.lines[0].amount, Decimal::new(18000, 0));
        let page: Paged<BookedInvoice> =
            parse(&fixture("sales-booked-list.json").to_string(), "list").unwrap();
        assert!(page.collection[0].lines.is_empty());
        let paid: Paged<BookedInvoice> =
            parse(&fixture("booked-paid.json").to_string(), "list").unwrap();
        assert_eq!(paid.collection[0].status(), DraftStatus::Paid);
        let products: Collection<Product> =
            parse(&fixture("products.json").to_string(), "products").unwrap();
        assert_eq!(products.collection[0].product_number, "SUPPORT");
    }

    #[test]
    fn a_found_draft_without_its_number_is_an_error_not_a_draft_to_create() {
        let mut d = fixture("draft.json");
        rename(&mut d, "draftInvoiceNumber", "draftNumber");
        let body = json!({"collection": [d]}).to_string();
        let err = parse::<Collection<DraftInvoice>>(&body, "the draft search")
            .err()
            .unwrap();
        assert_missing(&err, "collection[0]", "draftInvoiceNumber");
    }

    #[test]
    fn a_renamed_remainder_is_an_error_not_an_unpaid_invoice() {
        let mut v = fixture("booked-paid.json");
        rename(&mut v["collection"][0], "remainder", "remainderAmount");
        let err = parse::<Paged<BookedInvoice>>(&v.to_string(), "the booked invoices")
            .err()
            .unwrap();
        assert_missing(&err, "collection[0]", "remainder");
    }

    #[test]
    fn a_product_line_without_its_amount_is_an_error_a_text_line_is_left_out() {
        let mut v = fixture("sale-booked-invoice.json");
        let line = v["lines"][0].as_object_mut().unwrap();
        line.remove("totalNetAmount");
        line.remove("unitNetPrice");
        let inv: BookedInvoice = parse(&v.to_string(), "invoice").unwrap();
        let err = inv.remote().unwrap_err().to_string();
        assert!(
            err.contains("lines[0]") && err.contains("totalNetAmount"),
            "{err}"
        );
        let mut v = fixture("sale-booked-invoice.json");
        v["lines"] = json!([{"lineNumber": 1, "description": "Thanks"}]);
        let inv: BookedInvoice = parse(&v.to_string(), "invoice").unwrap();
        assert!(inv.remote().unwrap().lines.is_empty());
    }

    #[test]
    fn an_error_body_is_reported_by_its_parts() {
        let body = fixture("validation-error.json").to_string();
        assert_eq!(
            error_message(&body),
            "Validation exception.; customer: Customer not found."
        );
        assert_eq!(error_message("Bad Gateway"), "Bad Gateway");
    }

    #[test]
    fn the_draft_serializes_as_e_conomic_documents_it() {
        let body = serde_json::to_value(NewDraft {
            currency: "DKK",
            date: "2026-10-31",
            customer: NewCustomer {
                customer_number: 42,
            },
            layout: Layout { layout_number: 19 },
            payment_terms: PaymentTerms {
                payment_terms_number: 1,
            },
            recipient: Recipient {
                name: "acme",
                vat_zone: VatZone { vat_zone_number: 1 },
            },
            notes: Notes {
                heading: "acme 2026-10".into(),
                text_line1: "draft:acme:2026-10:r1",
                text_line2: None,
            },
            lines: vec![NewLine {
                line_number: 1,
                description: "Support",
                quantity: json!(12.5),
                unit_net_price: json!(950),
                product: Some(ProductRef {
                    product_number: "SUPPORT".into(),
                }),
            }],
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"currency": "DKK", "date": "2026-10-31",
                "customer": {"customerNumber": 42}, "layout": {"layoutNumber": 19},
                "paymentTerms": {"paymentTermsNumber": 1},
                "recipient": {"name": "acme", "vatZone": {"vatZoneNumber": 1}},
                "notes": {"heading": "acme 2026-10", "textLine1": "draft:acme:2026-10:r1"},
                "lines": [{"lineNumber": 1, "description": "Support", "quantity": 12.5,
                    "unitNetPrice": 950, "product": {"productNumber": "SUPPORT"}}]})
        );
    }
}
