//! QuickBooks Online's (Accounting API v3, minor version 75) payloads as
//! types, and their conversion to the drafts and invoices of
//! [`crate::accounting`].
//!
//! Every answer the connector reads is parsed into one of the structs
//! below before anything is taken from it, and every document it creates
//! is serialized from one. A field the connector reads is required unless
//! Intuit leaves it out; a missing or renamed one is an error that names
//! it (`Invoice: missing field `TotalAmt``), never a zero total or a
//! draft read as paid. Intuit adds fields, so no shape refuses unknown
//! ones.
//!
//! Where the shapes come from (developer.intuit.com, the Invoice, Estimate,
//! Item, TaxCode and batch references, "handling common errors" and the
//! data queries' server response):
//!
//! - one document: `{Invoice: {...}, time}` (`Estimate` for an estimate),
//!   with `Id`, `DocNumber`, `TotalAmt` (with tax), `Balance` (an invoice's
//!   left to pay), `TxnTaxDetail.TotalTax`, `PrivateNote`, `EmailStatus`,
//!   `PrintStatus`, an estimate's `TxnStatus`; a company that charges no
//!   tax is answered without `TxnTaxDetail`;
//! - a query: `{QueryResponse: {Invoice: [...], startPosition,
//!   maxResults}, time}`, the list left out when nothing matched;
//! - a batch: `{BatchItemResponse: [{bId, Invoice | Fault}], time}`;
//! - a refusal: `{Fault: {Error: [{Message, Detail, code, element}],
//!   type}, time}`, also in an HTTP 200; a refused token is answered
//!   `{fault: {error: [{message, detail, code}]}}`, in lower case.

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::accounting::Amount;
use crate::accounting::{DraftStatus, RemoteDraft};

use super::SYSTEM;

/// How QuickBooks' answers are read: see [`crate::documented`].
const SHAPE: crate::documented::Shape = crate::documented::Shape {
    system: Some(SYSTEM),
    shape: "as Intuit documents it",
};

/// `body` as `T`, or why not, naming the field by its path.
pub fn parse<T: DeserializeOwned>(body: &str, what: &str) -> Result<T, String> {
    SHAPE.read_str(body, what)
}

/// What a document stands for: an unsent invoice, or an estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    Invoice,
    Estimate,
}

impl Entity {
    /// The entity's name in a query and in an answer.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Invoice => "Invoice",
            Entity::Estimate => "Estimate",
        }
    }
}

/// A body that may be a refusal.
#[derive(Deserialize)]
pub struct MaybeFault {
    #[serde(rename = "Fault", alias = "fault")]
    pub fault: Option<Fault>,
}

/// The `Fault` of a body, if it is one (a body that is no JSON is none).
pub fn fault(body: &str) -> Option<Fault> {
    serde_json::from_str::<MaybeFault>(body).ok()?.fault
}

#[derive(Deserialize)]
pub struct Fault {
    #[serde(rename = "Error", alias = "error")]
    pub errors: Vec<FaultError>,
}

#[derive(Deserialize)]
pub struct FaultError {
    #[serde(rename = "Message", alias = "message")]
    pub message: String,
    #[serde(rename = "Detail", alias = "detail")]
    pub detail: Option<String>,
    pub code: String,
}

impl Fault {
    /// Every error's message, detail and code.
    pub fn said(&self) -> String {
        self.errors
            .iter()
            .map(|e| match &e.detail {
                Some(d) => format!("{} ({d}; code {})", e.message, e.code),
                None => format!("{} (code {})", e.message, e.code),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// "Object Not Found": what a deleted document answers.
    pub fn not_found(&self) -> bool {
        self.errors.iter().any(|e| e.code == "610")
    }
}

/// `{"Invoice": {...}}` or `{"Estimate": {...}}`: a create's or a read's
/// answer, and a batch's answer to one item (`bId`, with its `Fault` when
/// that item alone was refused).
#[derive(Deserialize)]
pub struct Answer {
    #[serde(rename = "Invoice")]
    pub invoice: Option<Document>,
    #[serde(rename = "Estimate")]
    pub estimate: Option<Document>,
}

impl Answer {
    /// The document of kind `entity`, or why it is missing.
    pub fn document(self, entity: Entity, what: &str) -> Result<Document, String> {
        match entity {
            Entity::Invoice => self.invoice,
            Entity::Estimate => self.estimate,
        }
        .ok_or_else(|| {
            format!(
                "{SYSTEM}: {what} is not as Intuit documents it (missing field `{}`)",
                entity.name()
            )
        })
    }
}

/// `{"BatchItemResponse": [...]}`.
#[derive(Deserialize)]
pub struct BatchAnswer {
    #[serde(rename = "BatchItemResponse")]
    pub items: Vec<BatchItem>,
}

#[derive(Deserialize)]
pub struct BatchItem {
    /// Ours, echoed: the draft's reference.
    #[serde(rename = "bId")]
    pub id: String,
    #[serde(rename = "Fault")]
    pub fault: Option<Fault>,
    #[serde(flatten)]
    pub answer: Answer,
}

/// A query's answer. An empty result has no list at all, so each list
/// is empty when left out.
#[derive(Deserialize)]
pub struct Query {
    #[serde(rename = "QueryResponse")]
    pub response: QueryLists,
}

#[derive(Deserialize)]
pub struct QueryLists {
    #[serde(rename = "Invoice", default)]
    pub invoices: Vec<Document>,
    #[serde(rename = "Estimate", default)]
    pub estimates: Vec<Document>,
    #[serde(rename = "Item", default)]
    pub items: Vec<Listed>,
    #[serde(rename = "TaxCode", default)]
    pub tax_codes: Vec<Listed>,
}

impl QueryLists {
    pub fn documents(self, entity: Entity) -> Vec<Document> {
        match entity {
            Entity::Invoice => self.invoices,
            Entity::Estimate => self.estimates,
        }
    }
}

/// An item or a tax code: its id is what a line carries.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listed {
    pub id: String,
    pub name: String,
}

/// An invoice or an estimate, as a create, a read or a query answers it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Document {
    pub id: String,
    /// Our reference; QuickBooks numbers a document created without one.
    pub doc_number: Option<String>,
    /// With tax.
    pub total_amt: Amount,
    /// Left out by a company that charges no tax.
    pub txn_tax_detail: Option<TxnTaxDetail>,
    /// What is left to pay; an estimate has none.
    pub balance: Option<Amount>,
    pub private_note: Option<String>,
    /// An estimate's: `Pending`, `Accepted`, `Closed` or `Rejected`.
    pub txn_status: Option<String>,
    /// `NotSet`, `NeedToSend` or `EmailSent`.
    pub email_status: Option<String>,
    /// `NotSet`, `NeedToPrint` or `PrintComplete`.
    pub print_status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TxnTaxDetail {
    /// Left out where no tax was computed.
    pub total_tax: Option<Amount>,
}

impl Document {
    /// The tax QuickBooks computed: none when it states none.
    fn tax(&self) -> Decimal {
        match &self.txn_tax_detail {
            Some(TxnTaxDetail { total_tax: Some(t) }) => t.0,
            _ => Decimal::ZERO,
        }
    }

    pub fn remote(&self) -> RemoteDraft {
        RemoteDraft {
            id: self.id.clone(),
            total_net: Some(self.total_amt.0 - self.tax()),
        }
    }

    /// QuickBooks has no draft state: an unsent document is our draft; a
    /// voided invoice keeps its lines with a zero total and says so in its
    /// note; one with a total and nothing left to pay is paid.
    pub fn status(&self) -> DraftStatus {
        let total = self.total_amt.0;
        let voided = self
            .private_note
            .as_deref()
            .is_some_and(|n| n.contains("Voided"));
        if total.is_zero() && voided {
            DraftStatus::Voided
        } else if !total.is_zero() && self.balance.is_some_and(|b| b.0.is_zero()) {
            DraftStatus::Paid
        } else if self.txn_status.as_deref() == Some("Accepted")
            || self.email_status.as_deref() == Some("EmailSent")
            || self.print_status.as_deref() == Some("PrintComplete")
        {
            DraftStatus::Approved
        } else {
            DraftStatus::Draft
        }
    }
}

/// The invoice (or estimate) we create, alone or in a batch.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewDocument<'a> {
    pub customer_ref: Ref<&'a str>,
    /// Our reference (21 characters at most).
    pub doc_number: &'a str,
    /// `YYYY-MM-DD`.
    pub txn_date: &'a str,
    pub currency_ref: Ref<&'a str>,
    pub private_note: String,
    pub line: Vec<NewLine<'a>>,
    /// `NotSet` on an invoice: unsent, our draft. An estimate has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_status: Option<&'static str>,
    /// Printed on the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_memo: Option<Ref<String>>,
}

/// A reference to another entity (`{"value": id}`), or a memo's text.
#[derive(Serialize)]
pub struct Ref<S> {
    pub value: S,
}

/// A sales line. Amounts and quantities are JSON numbers (the draft's
/// decimal texts as numbers).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewLine<'a> {
    /// Always `SalesItemLineDetail`.
    pub detail_type: &'static str,
    pub amount: Value,
    pub description: &'a str,
    pub sales_item_line_detail: SalesItemLineDetail<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SalesItemLineDetail<'a> {
    pub item_ref: Ref<&'a str>,
    pub qty: Value,
    pub unit_price: Value,
    /// Outside the US; none: the item's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_code_ref: Option<Ref<&'a str>>,
}

/// One `BatchItemRequest`: our reference as its `bId`.
#[derive(Serialize)]
pub struct BatchItemRequest<'a> {
    #[serde(rename = "bId")]
    pub id: &'a str,
    /// Always `create`.
    pub operation: &'static str,
    #[serde(rename = "Invoice", skip_serializing_if = "Option::is_none")]
    pub invoice: Option<NewDocument<'a>>,
    #[serde(rename = "Estimate", skip_serializing_if = "Option::is_none")]
    pub estimate: Option<NewDocument<'a>>,
}

/// The body of `POST /batch`.
#[derive(Serialize)]
pub struct BatchRequest {
    #[serde(rename = "BatchItemRequest")]
    pub items: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invoice() -> Value {
        json!({"Invoice": {
            "Id": "130", "SyncToken": "0", "domain": "QBO", "DocNumber": "CB0123456789abcdef",
            "TxnDate": "2026-10-31", "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
            "Line": [{"Id": "1", "LineNum": 1, "Amount": 1187.5, "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {"ItemRef": {"value": "2", "name": "Hours"},
                                              "Qty": 12.5, "UnitPrice": 95}},
                     {"Amount": 1187.5, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}],
            "TxnTaxDetail": {"TotalTax": 237.5}, "CustomerRef": {"value": "4"},
            "TotalAmt": 1425.0, "Balance": 1425.0, "PrintStatus": "NotSet", "EmailStatus": "NotSet"
        }, "time": "2026-11-01T06:00:00.000-07:00"})
    }

    fn read(v: &Value) -> Result<Document, String> {
        parse::<Answer>(&v.to_string(), "the invoice")?.document(Entity::Invoice, "the invoice")
    }

    #[test]
    fn a_document_is_read_without_its_tax_and_as_our_draft_until_sent() {
        let doc = read(&invoice()).unwrap();
        assert_eq!(doc.remote().total_net, Some(Decimal::new(11875, 1)));
        assert_eq!(doc.status(), DraftStatus::Draft);
        let mut sent = invoice();
        sent["Invoice"]["EmailStatus"] = json!("EmailSent");
        assert_eq!(read(&sent).unwrap().status(), DraftStatus::Approved);
        let mut paid = invoice();
        paid["Invoice"]["Balance"] = json!(0);
        assert_eq!(read(&paid).unwrap().status(), DraftStatus::Paid);
        let mut voided = invoice();
        voided["Invoice"]["TotalAmt"] = json!(0);
        voided["Invoice"]["PrivateNote"] = json!("Voided");
        assert_eq!(read(&voided).unwrap().status(), DraftStatus::Voided);
        // A company without sales tax is answered without `TxnTaxDetail`.
        let mut untaxed = invoice();
        untaxed["Invoice"]
            .as_object_mut()
            .unwrap()
            .remove("TxnTaxDetail");
        assert_eq!(
            read(&untaxed).unwrap().remote().total_net,
            Some(Decimal::new(1425, 0))
        );
    }

    #[test]
    fn a_renamed_total_or_a_missing_document_is_an_error_naming_it() {
        let mut v = invoice();
        let doc = v["Invoice"].as_object_mut().unwrap();
        let total = doc.remove("TotalAmt").unwrap();
        doc.insert("Total".into(), total);
        let e = read(&v).err().unwrap();
        assert!(
            e.contains("Invoice") && e.contains("missing field `TotalAmt`"),
            "{e}"
        );
        let e = read(&json!({"Estimate": invoice()["Invoice"]}))
            .err()
            .unwrap();
        assert_eq!(
            e,
            "quickbooks: the invoice is not as Intuit documents it (missing field `Invoice`)"
        );
        let e = parse::<Query>(
            r#"{"QueryResponse": {"Invoice": [{"Id": "1"}]}}"#,
            "the search",
        )
        .err()
        .unwrap();
        assert!(
            e.contains("QueryResponse.Invoice[0]") && e.contains("`TotalAmt`"),
            "{e}"
        );
    }

    #[test]
    fn faults_are_read_in_either_case_and_an_empty_query_lists_nothing() {
        let f = fault(
            r#"{"Fault":{"Error":[{"Message":"Duplicate Document Number Error","Detail":"You must specify a different number.","code":"6140","element":""}],"type":"ValidationFault"}}"#,
        )
        .unwrap();
        assert_eq!(
            f.said(),
            "Duplicate Document Number Error (You must specify a different number.; code 6140)"
        );
        assert!(!f.not_found());
        let f = fault(
            r#"{"warnings":null,"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401","detail":null,"code":"3200","element":null}],"type":"AUTHENTICATION"},"batchItemResponse":[]}"#,
        )
        .unwrap();
        assert_eq!(
            f.said(),
            "message=AuthenticationFailed; errorCode=003200; statusCode=401 (code 3200)"
        );
        assert!(fault(&invoice().to_string()).is_none());
        assert!(fault("Bad Gateway").is_none());
        let q: Query = parse(
            r#"{"QueryResponse":{},"time":"2026-12-05T01:00:00.000-08:00"}"#,
            "q",
        )
        .unwrap();
        assert!(q.response.documents(Entity::Invoice).is_empty());
    }

    #[test]
    fn a_batch_answers_each_item_by_its_b_id() {
        let answer: BatchAnswer = parse(
            &json!({"BatchItemResponse": [
                {"bId": "CB1", "Invoice": invoice()["Invoice"]},
                {"bId": "CB2", "Fault": {"Error": [{"Message": "Object Not Found", "code": "610"}],
                                         "type": "ValidationFault"}}
            ]})
            .to_string(),
            "the batch",
        )
        .unwrap();
        assert_eq!(answer.items[0].id, "CB1");
        assert!(answer.items[0].fault.is_none());
        assert!(answer.items[1].fault.as_ref().unwrap().not_found());
        let e = parse::<BatchAnswer>(r#"{"BatchItemResponse": [{"Invoice": {}}]}"#, "the batch")
            .err()
            .unwrap();
        assert!(
            e.contains("BatchItemResponse[0]") && e.contains("`bId`"),
            "{e}"
        );
    }

    #[test]
    fn the_invoice_serializes_as_intuit_documents_it() {
        let doc = NewDocument {
            customer_ref: Ref { value: "42" },
            doc_number: "CB0123",
            txn_date: "2026-10-31",
            currency_ref: Ref { value: "USD" },
            private_note: "contract-bridge draft:acme:2026-10:r1".into(),
            line: vec![NewLine {
                detail_type: "SalesItemLineDetail",
                amount: json!(1187.5),
                description: "Support",
                sales_item_line_detail: SalesItemLineDetail {
                    item_ref: Ref { value: "7" },
                    qty: json!(12.5),
                    unit_price: json!(95),
                    tax_code_ref: Some(Ref { value: "3" }),
                },
            }],
            email_status: Some("NotSet"),
            customer_memo: None,
        };
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            json!({"CustomerRef": {"value": "42"}, "DocNumber": "CB0123", "TxnDate": "2026-10-31",
                   "CurrencyRef": {"value": "USD"}, "PrivateNote": "contract-bridge draft:acme:2026-10:r1",
                   "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 1187.5, "Description": "Support",
                             "SalesItemLineDetail": {"ItemRef": {"value": "7"}, "Qty": 12.5,
                                                     "UnitPrice": 95, "TaxCodeRef": {"value": "3"}}}],
                   "EmailStatus": "NotSet"})
        );
    }
}
