//! Prepaid sales scanned in Fortnox, mocked with wiremock as Fortnox's API
//! documents it (`tests/fixtures/fortnox/sales-*.json`, `sale-invoice.json`):
//! `GET /3/invoices` lists invoices changed since `lastmodified` (Swedish
//! time, by the minute), page by page (`MetaInformation`), without rows;
//! `GET /3/invoices/{DocumentNumber}` has the rows and `FinalPayDate`.
//! Only a listed invoice of a customer with prepaid items, in a status one
//! of them opens on, is read whole. A card sold and paid for opens once,
//! however often it is listed, and the close draws from it exactly as from
//! the same card written as an opening balance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::support::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("tests/fixtures").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The fake answers lists in pages of this many, so paging is exercised.
const FAKE_PAGE: usize = 2;

#[derive(Default)]
struct Fortnox {
    /// Every invoice the company holds (as `GET /3/invoices/{n}` answers),
    /// with when it last changed (`YYYY-MM-DD HH:MM`, Swedish time).
    invoices: BTreeMap<u32, (Value, String)>,
    /// Swedish time now, for the invoices the bridge creates.
    clock: String,
    /// `GET /3/invoices/{n}` by number.
    reads: BTreeMap<String, usize>,
    /// `lastmodified` of each sales list request (empty: none).
    lists: Vec<String>,
}

#[derive(Clone, Default)]
struct FakeFortnox(Arc<Mutex<Fortnox>>);

impl FakeFortnox {
    /// Finance invoices `customer` one `article` at `price` (without VAT),
    /// unbooked, dated `date` and changed at 09:00 that day.
    fn sell(&self, number: u32, customer: &str, article: &str, price: u32, date: &str) {
        let mut inv = fixture("fortnox/sale-invoice.json")["Invoice"].clone();
        inv["DocumentNumber"] = json!(number.to_string());
        inv["@url"] = json!(format!("https://api.fortnox.se/3/invoices/{number}"));
        inv["CustomerNumber"] = json!(customer);
        inv["InvoiceDate"] = json!(date);
        inv["InvoiceRows"][0]["ArticleNumber"] = json!(article);
        inv["InvoiceRows"][0]["Price"] = json!(price);
        inv["InvoiceRows"][0]["Total"] = json!(price);
        inv["Net"] = json!(price);
        inv["Total"] = json!(price * 5 / 4);
        inv["TotalVAT"] = json!(price / 4);
        inv["Balance"] = json!(price * 5 / 4);
        inv["Booked"] = json!(false);
        inv["Sent"] = json!(false);
        self.0
            .lock()
            .unwrap()
            .invoices
            .insert(number, (inv, format!("{date} 09:00")));
    }

    fn change(&self, number: u32, at: &str, f: impl FnOnce(&mut Value)) {
        let mut x = self.0.lock().unwrap();
        let (inv, modified) = x.invoices.get_mut(&number).unwrap();
        f(inv);
        *modified = at.to_owned();
    }

    fn book(&self, number: u32, at: &str) {
        self.change(number, at, |inv| {
            inv["Booked"] = json!(true);
            inv["Sent"] = json!(true);
        });
    }

    fn pay(&self, number: u32, on: &str, at: &str) {
        self.change(number, at, |inv| {
            inv["Balance"] = json!(0);
            inv["FinalPayDate"] = json!(on);
        });
    }

    fn reads(&self) -> BTreeMap<String, usize> {
        self.0.lock().unwrap().reads.clone()
    }

    fn set_clock(&self, at: &str) {
        self.0.lock().unwrap().clock = at.to_owned();
    }

    /// The bridge's own invoice whose `ExternalInvoiceReference1` is `reference`.
    fn ours(&self, reference: &str) -> Option<Value> {
        self.0
            .lock()
            .unwrap()
            .invoices
            .values()
            .find(|(i, _)| i["ExternalInvoiceReference1"] == reference)
            .map(|(i, _)| i.clone())
    }
}

/// An invoice as the list shows it: the list fixture's fields, no rows.
fn listed(inv: &Value) -> Value {
    let template = &fixture("fortnox/sales-list.json")["Invoices"][0];
    let fields = template.as_object().unwrap().keys();
    fields.map(|k| (k.clone(), inv[k].clone())).collect()
}

fn page(list: Vec<Value>, page: usize) -> Value {
    let pages = list.len().div_ceil(FAKE_PAGE).max(1);
    let chunk: Vec<Value> = list
        .iter()
        .skip((page - 1) * FAKE_PAGE)
        .take(FAKE_PAGE)
        .cloned()
        .collect();
    json!({
        "MetaInformation": {"@TotalResources": list.len(), "@TotalPages": pages, "@CurrentPage": page},
        "Invoices": chunk
    })
}

impl Respond for FakeFortnox {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut x = self.0.lock().unwrap();
        let path = r.url.path().to_owned();
        if path == "/oauth-v1/token" {
            assert_eq!(r.headers.get("tenantid").unwrap(), "1234567");
            return ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "tok", "expires_in": 3600}));
        }
        assert_eq!(r.headers.get("authorization").unwrap(), "Bearer tok");
        let query: BTreeMap<String, String> = r.url.query_pairs().into_owned().collect();
        match (r.method.as_str(), path.as_str()) {
            ("GET", "/3/invoices") => {
                if let Some(reference) = query.get("externalinvoicereference1") {
                    let found: Vec<Value> = x
                        .invoices
                        .values()
                        .filter(|(i, _)| i["ExternalInvoiceReference1"] == reference.as_str())
                        .map(|(i, _)| listed(i))
                        .collect();
                    return ResponseTemplate::new(200).set_body_json(page(found, 1));
                }
                let since = query.get("lastmodified").cloned().unwrap_or_default();
                assert!(
                    since.is_empty() || since.len() == "2026-10-20 13:50".len(),
                    "{since}"
                );
                assert_eq!(query.get("limit").map(String::as_str), Some("500"));
                x.lists.push(since.clone());
                let changed: Vec<Value> = x
                    .invoices
                    .values()
                    .filter(|(_, at)| *at >= since)
                    .map(|(i, _)| listed(i))
                    .collect();
                let n: usize = query["page"].parse().unwrap();
                ResponseTemplate::new(200).set_body_json(page(changed, n))
            }
            ("GET", _) => {
                let number = path.strip_prefix("/3/invoices/").unwrap().to_owned();
                *x.reads.entry(number.clone()).or_default() += 1;
                match number.parse().ok().and_then(|n: u32| x.invoices.get(&n)) {
                    Some((inv, _)) => {
                        ResponseTemplate::new(200).set_body_json(json!({"Invoice": inv}))
                    }
                    None => ResponseTemplate::new(404).set_body_json(json!({
                        "ErrorInformation": {"error": 1, "message": "Kan inte hitta fakturan.", "code": 2000434}
                    })),
                }
            }
            ("POST", "/3/invoices") => {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                let mut inv = body["Invoice"].clone();
                let number = 1001 + x.invoices.keys().filter(|n| **n < 5000).count() as u32;
                let mut net = Decimal::ZERO;
                for (i, row) in inv["InvoiceRows"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .enumerate()
                {
                    let q: Decimal = row["DeliveredQuantity"].to_string().parse().unwrap();
                    let p: Decimal = row["Price"].to_string().parse().unwrap();
                    let total = (q * p).round_dp(2);
                    net += total;
                    row["RowId"] = json!(i + 1);
                    row["Total"] = json!(total.to_string());
                }
                inv["DocumentNumber"] = json!(number.to_string());
                inv["Net"] = json!(net.to_string());
                inv["Balance"] = json!(net.to_string());
                inv["Booked"] = json!(false);
                inv["Cancelled"] = json!(false);
                inv["Sent"] = json!(false);
                let at = x.clock.clone();
                x.invoices.insert(number, (inv.clone(), at));
                ResponseTemplate::new(201).set_body_json(json!({"Invoice": inv}))
            }
            _ => ResponseTemplate::new(405),
        }
    }
}

/// A bridge billing the itech tickets into `target` (its TOML table's body).
fn config(dir: &Path, target: &str) -> PathBuf {
    let mapping = root().join("tests/fixtures/ledger/sold");
    itech_books_config(dir, &mapping, target)
}

fn fortnox_config(dir: &Path, uri: &str) -> PathBuf {
    config(dir, &fortnox_books(uri))
}

/// Exactly one card known: nordhavn's 20-punch card of 5 October, sold on
/// line 1 of `invoice`.
fn assert_one_card_sold(cfg: &Path, invoice: &str, log: &str) {
    let cards = sold(cfg);
    assert_eq!(cards.len(), 1, "{cards:?}\n{log}");
    assert!(
        cards[0].contains("card KLIPPEKORT-20 to nordhavn-arkitekter")
            && cards[0].contains("on 2026-10-05")
            && cards[0].contains("18000.00 DKK")
            && cards[0].contains(&format!("books invoice {invoice} line 1")),
        "{}",
        cards[0]
    );
}

fn sold(cfg: &Path) -> Vec<String> {
    status(cfg, &[])
        .lines()
        .filter(|l| l.starts_with("sold "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_sold_on_a_fortnox_invoice_opens_once_paid_and_the_close_draws_from_it() {
    let fake = FakeFortnox::default();
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = fortnox_config(dir.path(), &server.uri());

    // Finance invoices nordhavn a 20-punch card (unbooked yet); two more
    // invoices sell cards that can open nothing: one to a company without
    // a contract, one cancelled.
    fake.sell(5001, "1042", "KLIPPEKORT-20", 18000, "2026-10-05");
    fake.sell(5002, "2001", "KLIPPEKORT-20", 18000, "2026-10-06");
    fake.book(5002, "2026-10-06 09:00");
    fake.pay(5002, "2026-10-06", "2026-10-06 09:00");
    fake.sell(5003, "1043", "KLIPPEKORT-10", 9500, "2026-10-07");
    fake.change(5003, "2026-10-07 09:00", |i| i["Cancelled"] = json!(true));

    // The first scan lists everything (two pages) and reads nothing whole.
    let log = run_once_with(&cfg, "2026-10-20T12:00:00Z", &[]);
    assert_eq!(ledger_requests(&log), 2, "two list pages: {log}");
    assert!(fake.reads().is_empty(), "{:?}", fake.reads());
    assert!(sold(&cfg).is_empty(), "an unbooked invoice sells nothing");

    // Booked, not paid: read whole (nordhavn's KLIPPEKORT-10 would open
    // on issue; the list does not say which articles it sells), but
    // `on: paid` waits.
    fake.book(5001, "2026-10-21 10:00");
    let log = run_once_with(&cfg, "2026-10-21T12:00:00Z", &[]);
    assert_eq!(
        ledger_requests(&log),
        2,
        "one list page, one invoice: {log}"
    );
    assert_eq!(fake.reads(), BTreeMap::from([("5001".into(), 1)]));
    assert!(sold(&cfg).is_empty(), "booked but unpaid");

    // Paid: listed again, read whole again, one card.
    fake.pay(5001, "2026-10-22", "2026-10-22 10:00");
    let log = run_once_with(&cfg, "2026-10-22T12:00:00Z", &[]);
    assert_eq!(
        ledger_requests(&log),
        2,
        "one list page, one invoice: {log}"
    );
    assert_eq!(fake.reads(), BTreeMap::from([("5001".into(), 2)]));
    assert_one_card_sold(&cfg, "5001", &log);

    // Each scan asks only for what changed since the last one (ten minutes
    // earlier, in Swedish time): nothing now.
    let log = run_once_with(&cfg, "2026-10-23T12:00:00Z", &[]);
    assert_eq!(ledger_requests(&log), 1, "{log}");
    let lists = fake.0.lock().unwrap().lists.clone();
    assert_eq!(
        lists,
        [
            "",
            "",
            "2026-10-20 13:50",
            "2026-10-21 13:50",
            "2026-10-22 13:50"
        ]
    );
    // The paid invoice changed again (a note): read again, no second card.
    fake.change(5001, "2026-10-23 15:00", |i| i["Remarks"] = json!("Tak!"));
    run_once_with(&cfg, "2026-10-24T12:00:00Z", &[]);
    assert_eq!(fake.reads()["5001"], 3);
    assert_eq!(sold(&cfg).len(), 1, "a sale seen again adds nothing");

    // October closes: nordhavn's draft draws from the sold card, exactly as
    // from the same card written as an opening balance.
    fake.set_clock("2026-11-02 13:00");
    let log = run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    let ours = fake
        .ours("draft:nordhavn-arkitekter:2026-10:r1")
        .unwrap_or_else(|| panic!("no draft pushed: {log}"));
    let net: Decimal = ours["Net"].as_str().unwrap().parse().unwrap();
    let with_card = itech_october_total("tests/fixtures/ledger/opening", "nordhavn-arkitekter");
    let without = itech_october_total("tests/fixtures/ledger/sold", "nordhavn-arkitekter");
    assert!(with_card < without, "the card covers punches");
    assert_eq!(net, with_card, "{ours}\n{log}");

    // Our own drafts are listed by the next scan but, unbooked, not read.
    let reads = fake.reads();
    let log = run_once_with(&cfg, "2026-11-03T12:00:00Z", &[]);
    let drafts_asked = 2;
    assert_eq!(ledger_requests(&log), drafts_asked + 1, "{log}");
    assert_eq!(
        fake.reads().values().sum::<usize>(),
        reads.values().sum::<usize>() + drafts_asked,
        "only the status poll reads our drafts"
    );

    // A second card on a second invoice is a second card; `on: issued`
    // (KLIPPEKORT-10) opens when booked.
    fake.sell(5004, "1042", "KLIPPEKORT-20", 18000, "2026-11-10");
    fake.book(5004, "2026-11-10 09:00");
    fake.pay(5004, "2026-11-10", "2026-11-10 09:00");
    fake.sell(5005, "1043", "KLIPPEKORT-10", 9500, "2026-11-10");
    fake.book(5005, "2026-11-10 09:00");
    run_once_with(&cfg, "2026-11-11T12:00:00Z", &[]);
    let cards = sold(&cfg);
    assert_eq!(cards.len(), 3, "{cards:?}");
    assert!(
        cards
            .iter()
            .any(|c| c.contains("KLIPPEKORT-20 to nordhavn-arkitekter")
                && c.contains("invoice 5004 "))
    );
    assert!(cards.iter().any(
        |c| c.contains("card KLIPPEKORT-10 to valby-tandlaege") && c.contains("invoice 5005 ")
    ));
    assert!(
        !fake.reads().contains_key("5002") && !fake.reads().contains_key("5003"),
        "an invoice that can open nothing is never read: {:?}",
        fake.reads()
    );
}

/// e-conomic's booked invoices (as `GET /invoices/booked/{n}` answers) and
/// the bridge's drafts.
#[derive(Default)]
struct Economic {
    booked: BTreeMap<i64, Value>,
    drafts: Vec<Value>,
    /// `GET /invoices/booked/{n}` by number.
    reads: BTreeMap<i64, usize>,
    /// The `filter` of each sales list request (empty: none).
    lists: Vec<String>,
}

#[derive(Clone, Default)]
struct FakeEconomic(Arc<Mutex<Economic>>);

impl FakeEconomic {
    /// Finance books an invoice selling `customer` one `product` at `price`
    /// (without VAT); `paid`: nothing remains to pay.
    fn book(&self, number: i64, customer: i64, product: &str, price: u32, date: &str, paid: bool) {
        let mut inv = fixture("economic/sale-booked-invoice.json");
        inv["bookedInvoiceNumber"] = json!(number);
        inv["self"] = json!(format!(
            "https://restapi.e-conomic.com/invoices/booked/{number}"
        ));
        inv["customer"]["customerNumber"] = json!(customer);
        inv["date"] = json!(date);
        inv["lines"][0]["product"]["productNumber"] = json!(product);
        inv["lines"][0]["unitNetPrice"] = json!(price);
        inv["lines"][0]["totalNetAmount"] = json!(price);
        inv["netAmount"] = json!(price);
        inv["grossAmount"] = json!(price * 5 / 4);
        inv["remainder"] = json!(if paid { 0 } else { price * 5 / 4 });
        self.0.lock().unwrap().booked.insert(number, inv);
    }

    fn pay(&self, number: i64) {
        self.0.lock().unwrap().booked.get_mut(&number).unwrap()["remainder"] = json!(0);
    }

    fn reads(&self) -> BTreeMap<i64, usize> {
        self.0.lock().unwrap().reads.clone()
    }
}

impl Respond for FakeEconomic {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        assert_eq!(r.headers.get("x-appsecrettoken").unwrap(), "app");
        assert_eq!(r.headers.get("x-agreementgranttoken").unwrap(), "grant");
        let mut x = self.0.lock().unwrap();
        let path = r.url.path().to_owned();
        let query: BTreeMap<String, String> = r.url.query_pairs().into_owned().collect();
        let filter = query.get("filter").cloned().unwrap_or_default();
        let collection =
            |items: Vec<Value>| json!({"collection": items, "pagination": {"results": 0}});
        match (r.method.as_str(), path.as_str()) {
            ("POST", "/invoices/drafts") => {
                let mut d: Value = serde_json::from_slice(&r.body).unwrap();
                let net: Decimal = d["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| {
                        let q: Decimal = l["quantity"].to_string().parse().unwrap();
                        let p: Decimal = l["unitNetPrice"].to_string().parse().unwrap();
                        (q * p).round_dp(2)
                    })
                    .sum();
                d["draftInvoiceNumber"] = json!(x.drafts.len() + 1);
                d["netAmount"] = json!(net.to_string());
                x.drafts.push(d.clone());
                ResponseTemplate::new(201).set_body_json(d)
            }
            ("GET", "/invoices/drafts") => {
                let reference = filter.strip_prefix("notes.textLine1$eq:").unwrap();
                let found = x
                    .drafts
                    .iter()
                    .filter(|d| d["notes"]["textLine1"] == reference)
                    .cloned()
                    .collect();
                ResponseTemplate::new(200).set_body_json(collection(found))
            }
            ("GET", "/invoices/booked") if filter.starts_with("notes.textLine1") => {
                // Our drafts are never booked here.
                ResponseTemplate::new(200).set_body_json(collection(Vec::new()))
            }
            ("GET", "/invoices/booked") => {
                assert_eq!(query["sort"], "bookedInvoiceNumber");
                assert_eq!(query["pagesize"], "1000");
                x.lists.push(filter.clone());
                let after: i64 = match filter.strip_prefix("bookedInvoiceNumber$gt:") {
                    Some(n) => n.parse().unwrap(),
                    None => {
                        assert!(filter.is_empty(), "{filter}");
                        0
                    }
                };
                let template = &fixture("economic/sales-booked-list.json")["collection"][0];
                let listed: Vec<Value> = x
                    .booked
                    .range(after + 1..)
                    .map(|(_, inv)| {
                        template
                            .as_object()
                            .unwrap()
                            .keys()
                            .map(|k| (k.clone(), inv[k].clone()))
                            .collect()
                    })
                    .collect();
                let skip: usize = query["skippages"].parse().unwrap();
                let chunk: Vec<Value> = listed
                    .iter()
                    .skip(skip * FAKE_PAGE)
                    .take(FAKE_PAGE)
                    .cloned()
                    .collect();
                let mut pagination = json!({
                    "maxPageSizeAllowed": 1000, "skipPages": skip, "pageSize": FAKE_PAGE,
                    "results": listed.len(), "resultsWithoutFilter": x.booked.len()
                });
                if (skip + 1) * FAKE_PAGE < listed.len() {
                    pagination["nextPage"] = json!(format!(
                        "https://restapi.e-conomic.com/invoices/booked?skippages={}&pagesize={FAKE_PAGE}",
                        skip + 1
                    ));
                }
                ResponseTemplate::new(200)
                    .set_body_json(json!({"collection": chunk, "pagination": pagination}))
            }
            ("GET", _) if path.starts_with("/invoices/drafts/") => {
                let n: usize = path.rsplit('/').next().unwrap().parse().unwrap();
                match x.drafts.get(n - 1) {
                    Some(d) => ResponseTemplate::new(200).set_body_json(d.clone()),
                    None => ResponseTemplate::new(404),
                }
            }
            ("GET", _) if path.starts_with("/invoices/booked/") => {
                let n: i64 = path.rsplit('/').next().unwrap().parse().unwrap();
                *x.reads.entry(n).or_default() += 1;
                match x.booked.get(&n) {
                    Some(inv) => ResponseTemplate::new(200).set_body_json(inv.clone()),
                    None => ResponseTemplate::new(404),
                }
            }
            _ => ResponseTemplate::new(405),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_sold_on_an_economic_invoice_opens_once_paid_and_the_close_draws_from_it() {
    let fake = FakeEconomic::default();
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &economic_books(&server.uri()));

    // Finance books nordhavn a 20-punch card, unpaid, and another company
    // (no contract) a paid one.
    fake.book(20001, 42, "KLIPPEKORT-20", 18000, "2026-10-05", false);
    fake.book(20002, 7, "KLIPPEKORT-20", 18000, "2026-10-06", true);

    // Booked, not paid: read whole (nordhavn's KLIPPEKORT-10 would open on
    // booking), but `on: paid` waits; the other company's is never read.
    let log = run_once_with(&cfg, "2026-10-20T12:00:00Z", &[]);
    assert_eq!(
        ledger_requests(&log),
        2,
        "one list page, one invoice: {log}"
    );
    assert_eq!(fake.reads(), BTreeMap::from([(20001, 1)]));
    assert!(sold(&cfg).is_empty(), "booked but unpaid");

    // Paid: the scan starts before the unpaid invoice, so it sees the payment.
    fake.pay(20001);
    let log = run_once_with(&cfg, "2026-10-22T12:00:00Z", &[]);
    assert_eq!(ledger_requests(&log), 2, "{log}");
    assert_one_card_sold(&cfg, "20001", &log);
    // Everything is paid: the next scan lists only what is booked later.
    let log = run_once_with(&cfg, "2026-10-23T12:00:00Z", &[]);
    assert_eq!(ledger_requests(&log), 1, "{log}");
    assert_eq!(
        fake.0.lock().unwrap().lists,
        [
            "",
            "bookedInvoiceNumber$gt:20000",
            "bookedInvoiceNumber$gt:20002"
        ]
    );
    assert_eq!(fake.reads(), BTreeMap::from([(20001, 2)]));

    // October closes: nordhavn's draft draws from the sold card, exactly as
    // from the same card written as an opening balance.
    let log = run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    let ours = fake
        .0
        .lock()
        .unwrap()
        .drafts
        .iter()
        .find(|d| d["notes"]["textLine1"] == "draft:nordhavn-arkitekter:2026-10:r1")
        .cloned()
        .unwrap_or_else(|| panic!("no draft pushed: {log}"));
    let net: Decimal = ours["netAmount"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        net,
        itech_october_total("tests/fixtures/ledger/opening", "nordhavn-arkitekter"),
        "{ours}\n{log}"
    );

    // A second card on a second invoice is a second card; `on: issued`
    // (KLIPPEKORT-10) opens when booked, once, though the unpaid invoice
    // is listed (and read) again until it is paid.
    fake.book(20003, 42, "KLIPPEKORT-20", 18000, "2026-11-10", true);
    fake.book(20004, 43, "KLIPPEKORT-10", 9500, "2026-11-10", false);
    fake.book(20005, 7, "KLIPPEKORT-10", 9500, "2026-11-10", false);
    let log = run_once_with(&cfg, "2026-11-11T12:00:00Z", &[]);
    // Two open drafts, two list pages, two invoices read.
    assert_eq!(ledger_requests(&log), 2 + 2 + 2, "{log}");
    let log = run_once_with(&cfg, "2026-11-12T12:00:00Z", &[]);
    assert_eq!(ledger_requests(&log), 2 + 1 + 1, "{log}");
    let cards = sold(&cfg);
    assert_eq!(cards.len(), 3, "{cards:?}");
    assert!(cards.iter().any(
        |c| c.contains("KLIPPEKORT-20 to nordhavn-arkitekter") && c.contains("invoice 20003 ")
    ));
    assert!(cards.iter().any(
        |c| c.contains("card KLIPPEKORT-10 to valby-tandlaege") && c.contains("invoice 20004 ")
    ));
    let reads = fake.reads();
    assert_eq!(reads.get(&20004), Some(&2), "{reads:?}");
    assert!(
        !reads.contains_key(&20002) && !reads.contains_key(&20005),
        "an invoice that can open nothing is never read: {reads:?}"
    );
}
