//! Visma e-conomic (REST): draft invoices in `/invoices/drafts`; booking
//! them is finance's step, never ours.
//!
//! Two long-lived tokens authenticate every request (`X-AppSecretToken` for
//! our app, `X-AgreementGrantToken` for the customer's agreement); there is
//! no OAuth. e-conomic takes no idempotency key: our reference is the
//! draft's `notes.textLine1`, looked up with a filter before every create.
//!
//! Prepaid sales: `GET /invoices/booked` after the cursor (a booked invoice
//! number, held before the first invoice not yet paid), without lines; the
//! daemon reads whole (`GET /invoices/booked/{n}`) only those that could
//! open a card or bank.
//!
//! Every answer and the draft written are typed structs in
//! [`transformers`]: a missing or renamed field is an error naming it.

mod transformers;

use crate::Result;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::accounting::{
    AccessToken, AccountingApi, CodeKind, DraftStatus, ListedCode, RemoteDraft, RemoteInvoice,
    SalesAsk, SalesPage, StatusAnswer, StatusStep, encode, number, status_error,
};
use crate::{ConnectorError, Draft, HttpMethod, HttpRequest, HttpResponse, Secret};
use transformers::{
    BookedInvoice, Collection, DraftInvoice, Layout, NewCustomer, NewDraft, NewLine, Notes, Paged,
    PaymentTerms, Product, ProductRef, Recipient, VatZone, error_message, parse,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
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
    #[serde(default = "crate::defaults::per_second::<5>")]
    pub requests_per_second: u32,
    #[serde(default = "crate::defaults::timeout_ms::<30_000>")]
    pub timeout_ms: u64,
}

crate::defaults::defaults! {
    default_base = "https://restapi.e-conomic.com";
}

const SYSTEM: &str = "e-conomic";

/// Booked invoices per page of the sales scan (e-conomic's most).
const PAGE_SIZE: u32 = 1000;

/// A booked invoice number as a sales cursor: zero-padded, so the text
/// orders as the number does.
fn cursor_of(number: i64) -> String {
    format!("{number:012}")
}

/// The answer's body as `T`, or why not: a refusal in e-conomic's words,
/// a body not as documented naming the field (reported and retried).
fn read<T: DeserializeOwned>(r: &HttpResponse, what: &str) -> Result<T> {
    if !(200..300).contains(&r.status) {
        return Err(status_error(SYSTEM, r, &error_message(&r.body)));
    }
    parse(&r.body, what).map_err(|e| ConnectorError::Transient(format!("HTTP {}: {e}", r.status)))
}

impl EconomicConfig {
    fn request(&self, method: HttpMethod, url: String, body: Vec<u8>) -> HttpRequest {
        HttpRequest::json(method, url, body, self.timeout_ms)
    }

    fn get(&self, path: String) -> HttpRequest {
        self.request(
            HttpMethod::Get,
            format!("{}{path}", self.base_url),
            Vec::new(),
        )
    }

    /// The `list` (`drafts` or `booked`) invoices whose notes carry `reference`.
    fn by_reference(&self, list: &str, reference: &str) -> HttpRequest {
        self.get(format!(
            "/invoices/{list}?filter={}",
            encode(&format!("notes.textLine1$eq:{reference}"))
        ))
    }
}

impl AccountingApi for EconomicConfig {
    /// Products (1000 per page, e-conomic's most): a line's revenue account
    /// and VAT follow from its product's group and the customer's VAT zone,
    /// so only `item` is sent per line and checked.
    fn code_lists(&self) -> Vec<(crate::accounting::CodeKind, HttpRequest)> {
        vec![(
            crate::accounting::CodeKind::Item,
            self.get("/products?pagesize=1000".into()),
        )]
    }

    fn read_codes(&self, kind: CodeKind, r: &HttpResponse) -> Result<Vec<ListedCode>> {
        if !(200..300).contains(&r.status) {
            return Err(status_error("e-conomic", r, "listing codes"));
        }
        if kind != crate::accounting::CodeKind::Item {
            return Ok(Vec::new());
        }
        Ok(parse::<Collection<Product>>(&r.body, "the product list")
            .map_err(ConnectorError::Permanent)?
            .collection
            .into_iter()
            .filter(|p| !p.barred)
            .map(|p| crate::accounting::ListedCode {
                code: p.product_number,
                name: p.name,
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
        Ok(None)
    }

    fn read_token(&self, _r: &HttpResponse) -> Result<AccessToken> {
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

    fn find_draft(&self, reference: &str) -> Result<HttpRequest> {
        Ok(self.by_reference("drafts", reference))
    }

    fn read_found(&self, r: &HttpResponse) -> Result<Option<RemoteDraft>> {
        let found: Collection<DraftInvoice> = read(r, "the draft search")?;
        Ok(found.collection.first().map(DraftInvoice::remote))
    }

    fn create_draft(&self, _key: &str, reference: &str, d: &Draft) -> Result<HttpRequest> {
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
        // Per line (issue 17): the line's product, else the draft's, else the target's.
        let lines = d
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| NewLine {
                line_number: i + 1,
                description: &l.description,
                quantity: number(&l.quantity),
                unit_net_price: number(&l.unit_price),
                product: d
                    .item_of(l)
                    .or(self.product_number.as_ref())
                    .map(|p| ProductRef {
                        product_number: p.clone(),
                    }),
            })
            .collect();
        let body = NewDraft {
            currency: &d.currency,
            date: &d.date,
            customer: NewCustomer {
                customer_number: customer,
            },
            layout: Layout {
                layout_number: self.layout_number,
            },
            payment_terms: PaymentTerms {
                payment_terms_number: self.payment_terms_number,
            },
            recipient: Recipient {
                name: &d.customer,
                vat_zone: VatZone {
                    vat_zone_number: self.vat_zone_number,
                },
            },
            notes: Notes {
                heading: format!("{} {}", d.customer, d.period),
                text_line1: reference,
                text_line2: d.statement_url.as_deref().map(crate::statement_line),
            },
            lines,
        };
        // Through a JSON value: its keys sorted, the body as it always was.
        let body = serde_json::to_value(&body)
            .and_then(|v| serde_json::to_vec(&v))
            .map_err(|e| ConnectorError::Permanent(e.to_string()))?;
        Ok(self.request(
            HttpMethod::Post,
            format!("{}/invoices/drafts", self.base_url),
            body,
        ))
    }

    fn read_created(&self, r: &HttpResponse) -> Result<RemoteDraft> {
        Ok(read::<DraftInvoice>(r, "the created draft")?.remote())
    }

    fn fetch_draft(&self, id: &str) -> Result<HttpRequest> {
        Ok(self.get(format!("/invoices/drafts/{}", encode(id))))
    }

    fn read_fetched(&self, r: &HttpResponse) -> Result<RemoteDraft> {
        Ok(read::<DraftInvoice>(r, "the draft")?.remote())
    }

    fn read_status(&self, answer: StatusAnswer<'_>) -> Result<StatusStep> {
        let StatusAnswer {
            remote_id,
            reference,
            step,
            response: r,
        } = answer;
        let known = |s| Ok(StatusStep::Known(RemoteInvoice::with_status(remote_id, s)));
        match step {
            // Booking moves a draft out of `/invoices/drafts` (404 there)
            // into `/invoices/booked`, with its notes: look for it there.
            0 if r.status == 404 => Ok(StatusStep::Ask(self.by_reference("booked", reference))),
            0 => {
                read::<DraftInvoice>(r, "the draft")?;
                known(DraftStatus::Draft)
            }
            _ => {
                let found: Collection<BookedInvoice> = read(r, "the booked invoice search")?;
                match found.collection.first() {
                    // Neither a draft nor booked: deleted.
                    None => known(DraftStatus::Deleted),
                    Some(booked) => {
                        let mut inv = RemoteInvoice::with_status(remote_id, booked.status());
                        inv.date = Some(booked.date.0);
                        Ok(StatusStep::Known(inv))
                    }
                }
            }
        }
    }

    fn contact_of(&self, customer: &str) -> Option<String> {
        self.customers.get(customer).map(ToString::to_string)
    }

    fn sales_request(&self, ask: SalesAsk<'_>) -> Result<Option<HttpRequest>> {
        let SalesAsk { cursor, page, .. } = ask;
        // Booked invoices carry no change time and their list no lines:
        // the scan lists those booked after the cursor, which stays before
        // the first one not yet paid (a payment is the one change that
        // matters), and the daemon reads whole only those that could sell.
        let mut path = format!(
            "/invoices/booked?sort=bookedInvoiceNumber&skippages={}&pagesize={PAGE_SIZE}",
            page.saturating_sub(1)
        );
        if let Some(c) = cursor {
            let after: i64 = c.parse().map_err(|_| {
                ConnectorError::Permanent(format!(
                    "e-conomic: the stored sales cursor `{c}` is not a booked invoice number"
                ))
            })?;
            path.push_str("&filter=");
            path.push_str(&encode(&format!("bookedInvoiceNumber$gt:{after}")));
        }
        Ok(Some(self.get(path)))
    }

    fn read_sales(&self, r: &HttpResponse) -> Result<SalesPage> {
        let list: Paged<BookedInvoice> = read(r, "the booked invoice list")?;
        let mut page = SalesPage {
            more: list.pagination.next_page.is_some(),
            ..SalesPage::default()
        };
        for inv in &list.collection {
            let listed = inv.remote()?;
            let number = inv.number;
            if page.cursor.as_ref().is_none_or(|c| *c < cursor_of(number)) {
                page.cursor = Some(cursor_of(number));
            }
            if listed.status != DraftStatus::Paid {
                let before = cursor_of(number - 1);
                if page.pin.as_ref().is_none_or(|p| before < *p) {
                    page.pin = Some(before);
                }
            }
            let read = self.get(format!("/invoices/booked/{number}"));
            page.details.push((listed, read));
        }
        Ok(page)
    }

    fn read_sale(&self, r: &HttpResponse) -> Result<RemoteInvoice> {
        read::<BookedInvoice>(r, "the booked invoice")?.remote()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ok;

    fn config() -> EconomicConfig {
        serde_json::from_value(serde_json::json!({
            "app_secret_token": "a", "agreement_grant_token": "g",
            "customers": {"nordhavn-arkitekter": 42}, "layout_number": 19,
            "payment_terms_number": 1, "vat_zone_number": 1
        }))
        .unwrap()
    }

    #[test]
    fn the_sales_scan_lists_what_was_booked_after_the_cursor() {
        let api = config();
        assert_eq!(
            api.sales_request(SalesAsk::new(&[], None, 1))
                .unwrap()
                .unwrap()
                .url,
            "https://restapi.e-conomic.com/invoices/booked?sort=bookedInvoiceNumber&skippages=0&pagesize=1000"
        );
        assert_eq!(
            api.sales_request(SalesAsk::new(&[], Some("000000020003"), 2))
                .unwrap()
                .unwrap()
                .url,
            "https://restapi.e-conomic.com/invoices/booked?sort=bookedInvoiceNumber&skippages=1&pagesize=1000&filter=bookedInvoiceNumber%24gt%3A20003"
        );
        assert!(matches!(
            api.sales_request(SalesAsk::new(&[], Some("2026-10-20T12:00:00Z"), 1)),
            Err(ConnectorError::Permanent(_))
        ));
    }

    #[test]
    fn the_cursor_moves_past_paid_invoices_and_is_pinned_before_the_first_unpaid() {
        let page = config()
            .read_sales(&ok(serde_json::json!({
                "collection": [
                    {"bookedInvoiceNumber": 20004, "date": "2026-10-05", "currency": "DKK", "remainder": 0, "customer": {"customerNumber": 42}},
                    {"bookedInvoiceNumber": 20005, "date": "2026-10-05", "currency": "DKK", "remainder": 22500, "customer": {"customerNumber": 42}},
                    {"bookedInvoiceNumber": 20006, "date": "2026-10-05", "currency": "DKK", "remainder": 100, "customer": {"customerNumber": 7}},
                    {"bookedInvoiceNumber": 20007, "date": "2026-10-05", "currency": "DKK", "remainder": 0, "customer": {"customerNumber": 7}}
                ],
                "pagination": {"skipPages": 0, "pageSize": 4, "results": 9,
                    "nextPage": "https://restapi.e-conomic.com/invoices/booked?skippages=1&pagesize=4"}
            })))
            .unwrap();
        assert!(page.more);
        assert_eq!(page.cursor.as_deref(), Some("000000020007"));
        assert_eq!(page.pin.as_deref(), Some("000000020004"));
        let listed: Vec<(&str, DraftStatus, &str)> = page
            .details
            .iter()
            .map(|(i, r)| (i.id.as_str(), i.status, r.url.as_str()))
            .collect();
        assert_eq!(
            listed[..2],
            [
                (
                    "20004",
                    DraftStatus::Paid,
                    "https://restapi.e-conomic.com/invoices/booked/20004"
                ),
                (
                    "20005",
                    DraftStatus::Approved,
                    "https://restapi.e-conomic.com/invoices/booked/20005"
                ),
            ]
        );
        // Nine-digit and ten-digit numbers order as numbers.
        assert!(cursor_of(999_999_999) < cursor_of(1_000_000_000));
    }

    #[test]
    fn a_booked_invoice_is_read_with_its_product_lines() {
        let inv = config()
            .read_sale(&ok(serde_json::json!({
                "bookedInvoiceNumber": 20004, "date": "2026-10-05", "currency": "DKK",
                "remainder": 0, "customer": {"customerNumber": 42},
                "lines": [
                    {"lineNumber": 1, "product": {"productNumber": "KLIPPEKORT-20"},
                     "quantity": 2.0, "unitNetPrice": 18000.0, "totalNetAmount": 36000.0,
                     "description": "Klippekort"},
                    {"lineNumber": 2, "quantity": 1.0, "totalNetAmount": 50.0, "description": "Gebyr"}
                ]
            })))
            .unwrap();
        assert_eq!(inv.status, DraftStatus::Paid);
        assert_eq!(inv.contact.as_deref(), Some("42"));
        assert_eq!(inv.date.unwrap().to_string(), "2026-10-05");
        assert_eq!(inv.lines.len(), 1, "only lines naming a product");
        assert_eq!(inv.lines[0].id, "1");
        assert_eq!(inv.lines[0].amount, rust_decimal::Decimal::new(36000, 0));
    }
}
