//! Fortnox and Visma e-conomic, mocked with wiremock as their API
//! documentation shapes them: neither takes an idempotency key, so a lost
//! answer is survived only by the lookup by our reference before a create.
//! Each run closes October for the twelve reference customers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::support::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

/// What a fake ledger holds and how it misbehaves.
#[derive(Default)]
struct Ledger {
    drafts: Vec<Value>,
    creates: usize,
    calls: usize,
    tokens: usize,
    /// Creates stored but answered with a 503, by reference.
    lose: Vec<String>,
    /// Answer the next N calls with 429 and `Retry-After: 1`.
    throttle: usize,
}

fn fixture(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

fn net(lines: &[Value], qty: &str, price: &str) -> Decimal {
    lines
        .iter()
        .map(|l| {
            let q: Decimal = l[qty].to_string().parse().unwrap();
            let p: Decimal = l[price].to_string().parse().unwrap();
            (q * p).round_dp(2)
        })
        .sum()
}

#[derive(Clone)]
struct FakeFortnox(Arc<Mutex<Ledger>>);

impl Respond for FakeFortnox {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut l = self.0.lock().unwrap();
        let path = r.url.path().to_owned();
        if path == "/oauth-v1/token" {
            assert_eq!(r.headers.get("tenantid").unwrap(), "1234567");
            l.tokens += 1;
            return ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "fx-token", "expires_in": 3600, "token_type": "bearer", "scope": "invoice"}));
        }
        assert_eq!(r.headers.get("authorization").unwrap(), "Bearer fx-token");
        l.calls += 1;
        if l.throttle > 0 {
            l.throttle -= 1;
            return ResponseTemplate::new(429).insert_header("retry-after", "1");
        }
        match (r.method.as_str(), path.as_str()) {
            ("GET", "/3/invoices") => {
                let reference: String = query_param(r, "externalinvoicereference1").unwrap();
                let found: Vec<Value> = l
                    .drafts
                    .iter()
                    .filter(|d| d["ExternalInvoiceReference1"] == reference.as_str())
                    .map(|d| json!({"DocumentNumber": d["DocumentNumber"], "Booked": false, "Cancelled": false, "Total": d["Total"]}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "MetaInformation": {"@TotalResources": found.len(), "@TotalPages": 1, "@CurrentPage": 1},
                    "Invoices": found}))
            }
            ("POST", "/3/invoices") => {
                l.creates += 1;
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                let mut inv = body["Invoice"].clone();
                if inv["CustomerNumber"] == "404" {
                    return ResponseTemplate::new(400)
                        .set_body_json(fixture("tests/fixtures/fortnox/error-customer.json"));
                }
                let n = net(
                    inv["InvoiceRows"].as_array().unwrap(),
                    "DeliveredQuantity",
                    "Price",
                );
                inv["DocumentNumber"] = json!((1000 + l.drafts.len()).to_string());
                inv["Net"] = json!(n);
                inv["Total"] = json!(n * Decimal::new(125, 2));
                inv["Booked"] = json!(false);
                inv["Sent"] = json!(false);
                l.drafts.push(inv.clone());
                let reference = inv["ExternalInvoiceReference1"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                if let Some(i) = l.lose.iter().position(|x| *x == reference) {
                    l.lose.remove(i);
                    return ResponseTemplate::new(503);
                }
                ResponseTemplate::new(201).set_body_json(json!({"Invoice": inv}))
            }
            ("GET", p) if p.starts_with("/3/invoices/") => {
                let id = p.trim_start_matches("/3/invoices/");
                match l.drafts.iter().find(|d| d["DocumentNumber"] == id) {
                    Some(d) => ResponseTemplate::new(200).set_body_json(json!({"Invoice": d})),
                    None => ResponseTemplate::new(404),
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

#[derive(Clone)]
struct FakeEconomic(Arc<Mutex<Ledger>>);

impl Respond for FakeEconomic {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut l = self.0.lock().unwrap();
        assert_eq!(r.headers.get("x-appsecrettoken").unwrap(), "app-s3cret");
        assert_eq!(
            r.headers.get("x-agreementgranttoken").unwrap(),
            "grant-s3cret"
        );
        l.calls += 1;
        if l.throttle > 0 {
            l.throttle -= 1;
            return ResponseTemplate::new(429).insert_header("retry-after", "1");
        }
        let path = r.url.path().to_owned();
        match (r.method.as_str(), path.as_str()) {
            ("GET", "/invoices/drafts") => {
                let filter: String = query_param(r, "filter").unwrap();
                let reference = filter.strip_prefix("notes.textLine1$eq:").unwrap();
                let found: Vec<Value> = l
                    .drafts
                    .iter()
                    .filter(|d| d["notes"]["textLine1"] == reference)
                    .cloned()
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "collection": found,
                    "pagination": {"skipPages": 0, "pageSize": 20, "results": found.len()}}))
            }
            ("POST", "/invoices/drafts") => {
                l.creates += 1;
                let mut d: Value = serde_json::from_slice(&r.body).unwrap();
                if d["customer"]["customerNumber"] == 404 {
                    return ResponseTemplate::new(400)
                        .set_body_json(fixture("tests/fixtures/economic/validation-error.json"));
                }
                let n = net(d["lines"].as_array().unwrap(), "quantity", "unitNetPrice");
                d["draftInvoiceNumber"] = json!(l.drafts.len() + 1);
                d["netAmount"] = json!(n);
                d["grossAmount"] = json!(n * Decimal::new(125, 2));
                l.drafts.push(d.clone());
                let reference = d["notes"]["textLine1"].as_str().unwrap().to_owned();
                if let Some(i) = l.lose.iter().position(|x| *x == reference) {
                    l.lose.remove(i);
                    return ResponseTemplate::new(504);
                }
                ResponseTemplate::new(201).set_body_json(d)
            }
            ("GET", p) if p.starts_with("/invoices/drafts/") => {
                let id: i64 = p.trim_start_matches("/invoices/drafts/").parse().unwrap();
                match l.drafts.iter().find(|d| d["draftInvoiceNumber"] == id) {
                    Some(d) => ResponseTemplate::new(200).set_body_json(d.clone()),
                    None => ResponseTemplate::new(404),
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

fn customers() -> Vec<String> {
    expected_october_totals()
        .into_iter()
        .map(|(c, _)| c)
        .collect()
}

/// Every scenario billed into the `ledger` target (`target` is its table).
fn ledger_config(dir: &Path, target: &str) -> std::path::PathBuf {
    let tables = format!(
        r#"{samples}[outbox]
max_attempts = 5
base_delay_secs = 60
max_delay_secs = 600
{target}"#,
        samples = samples(),
    );
    write_config(dir, &examples(), "ledger", &tables)
}

fn run_once(config: &Path, now: &str) -> String {
    run_once_with(config, now, &[("CB_TEST_SECRET", "s3cret")])
}

/// Two runs an hour apart: the first meets lost answers and throttling,
/// the second retries. Returns the two logs.
fn two_runs(cfg: &Path) -> (String, String) {
    (run_once(cfg, NOW), run_once(cfg, "2026-11-23T13:00:00Z"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_lands_in_fortnox_once_without_an_idempotency_key() {
    let ledger = Arc::new(Mutex::new(Ledger {
        lose: vec![
            "draft:riga-bakery:2026-10:r1".into(),
            "draft:walkin-co:2026-10:r1".into(),
        ],
        throttle: 2,
        ..Ledger::default()
    }));
    let server = serve(FakeFortnox(ledger.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let mut numbers = String::new();
    for (i, c) in customers().iter().enumerate() {
        numbers.push_str(&format!("\"{c}\" = \"{}\"\n", 10 + i));
    }
    let cfg = ledger_config(
        dir.path(),
        &format!(
            "[targets.ledger]\ntype = \"fortnox\"\nbase_url = \"{uri}/3\"\ntoken_url = \"{uri}/oauth-v1/token\"\nclient_id = \"cb\"\nclient_secret = \"env:CB_TEST_SECRET\"\ntenant_id = \"1234567\"\nrequests_per_second = 1000\n[targets.ledger.customers]\n{numbers}",
            uri = server.uri()
        ),
    );
    let (first, second) = two_runs(&cfg);
    assert!(second.contains("0 to retry, 0 dead"), "{first}\n{second}");
    let l = ledger.lock().unwrap();
    assert_eq!(l.drafts.len(), 12, "one draft per customer");
    assert_eq!(
        l.creates, 12,
        "a lost answer is found by reference, not created again"
    );
    let mut totals: BTreeMap<String, String> = BTreeMap::new();
    for d in &l.drafts {
        let customer = customer_of(&d["ExternalInvoiceReference1"]);
        totals.insert(customer, d["Net"].to_string());
    }
    let expected: BTreeMap<String, String> = expected_october_totals()
        .into_iter()
        .map(|(c, t)| (c, t.parse::<Decimal>().unwrap().normalize().to_string()))
        .collect();
    let ours: BTreeMap<String, String> = totals
        .into_iter()
        .map(|(c, t)| {
            (
                c,
                t.trim_matches('"')
                    .parse::<Decimal>()
                    .unwrap()
                    .normalize()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(ours, expected);
    eprintln!(
        "fortnox: {} API calls and {} token request(s) for 12 drafts",
        l.calls, l.tokens
    );
    drop(l);
    let s = status(&cfg, &[("CB_TEST_SECRET", "s3cret")]);
    assert!(s.contains("outbox: 0 pending, 12 sent, 0 dead"), "{s}");
    assert!(!s.contains("difference"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fortnox_refusal_is_shown_in_fortnoxs_words() {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let server = serve(FakeFortnox(ledger.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let mut numbers = String::new();
    for c in customers() {
        let n = if c == "riga-bakery" { "404" } else { "1" };
        numbers.push_str(&format!("\"{c}\" = \"{n}\"\n"));
    }
    let cfg = ledger_config(
        dir.path(),
        &format!(
            "[targets.ledger]\ntype = \"fortnox\"\nbase_url = \"{uri}/3\"\ntoken_url = \"{uri}/oauth-v1/token\"\nclient_id = \"cb\"\nclient_secret = \"env:CB_TEST_SECRET\"\ntenant_id = \"1234567\"\nrequests_per_second = 1000\n[targets.ledger.customers]\n{numbers}",
            uri = server.uri()
        ),
    );
    let out = run_once(&cfg, NOW);
    assert!(out.contains("11 pushed, 0 to retry, 1 dead"), "{out}");
    let s = status(&cfg, &[("CB_TEST_SECRET", "s3cret")]);
    assert!(
        s.contains("fortnox: HTTP 400: Kunden hittades inte. (code 2000204)"),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_lands_in_e_conomic_once_and_a_refusal_is_shown() {
    let ledger = Arc::new(Mutex::new(Ledger {
        lose: vec!["draft:poznan-clinic:2026-10:r1".into()],
        throttle: 1,
        ..Ledger::default()
    }));
    let server = serve(FakeEconomic(ledger.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let mut numbers = String::new();
    for (i, c) in customers().iter().enumerate() {
        let n = if c == "valby-tandlaege" { 404 } else { 100 + i };
        numbers.push_str(&format!("\"{c}\" = {n}\n"));
    }
    let cfg = ledger_config(
        dir.path(),
        &format!(
            "[targets.ledger]\ntype = \"economic\"\nbase_url = \"{uri}\"\napp_secret_token = \"app-s3cret\"\nagreement_grant_token = \"grant-s3cret\"\nlayout_number = 19\npayment_terms_number = 1\nvat_zone_number = 1\nrequests_per_second = 1000\n[targets.ledger.customers]\n{numbers}",
            uri = server.uri()
        ),
    );
    let (first, second) = two_runs(&cfg);
    assert!(second.contains("0 to retry"), "{first}\n{second}");
    let l = ledger.lock().unwrap();
    assert_eq!(
        l.drafts.len(),
        11,
        "one draft per customer but the refused one"
    );
    assert_eq!(l.creates, 12, "11 created once, the refused one tried once");
    eprintln!(
        "e-conomic: {} API calls for 11 drafts and a refusal",
        l.calls
    );
    drop(l);
    let s = status(&cfg, &[]);
    assert!(s.contains("outbox: 0 pending, 11 sent, 1 dead"), "{s}");
    assert!(
        s.contains("e-conomic: HTTP 400: Validation exception.; customer: Customer not found."),
        "{s}"
    );
}
