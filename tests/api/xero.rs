//! Xero, mocked with wiremock as its API documentation shapes it: a month of
//! the reference contracts lands as draft invoices exactly once, through
//! lost answers, expiring tokens and refusals.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::support::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

#[derive(Default)]
struct Xero {
    /// Tokens issued, and API calls left on each before it "expires".
    tokens: BTreeMap<String, usize>,
    calls_per_token: usize,
    invoices: Vec<Value>,
    puts: usize,
    /// References whose first create is stored but answered with a 500.
    lose_first_answer: BTreeSet<String>,
    /// Idempotency keys already answered, with the answer.
    keys: BTreeMap<String, Value>,
    /// API calls (not token requests).
    calls: usize,
    /// The refresh token Xero accepts now (standard connections).
    refresh: Option<String>,
}

#[derive(Clone, Default)]
struct FakeXero(Arc<Mutex<Xero>>);

fn sub_total(invoice: &Value) -> Decimal {
    invoice["LineItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let q: Decimal = l["Quantity"].to_string().parse().unwrap();
            let u: Decimal = l["UnitAmount"].to_string().parse().unwrap();
            (q * u).round_dp(2)
        })
        .sum()
}

impl Respond for FakeXero {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut x = self.0.lock().unwrap();
        let path = r.url.path().to_owned();
        if path == "/connect/token" {
            let basic = r.headers.get("authorization").unwrap().to_str().unwrap();
            assert_eq!(basic, "Basic Y2xpZW50OnMzY3JldA==", "client id and secret");
            let form = String::from_utf8_lossy(&r.body).to_string();
            if let Some(given) = form
                .split('&')
                .find_map(|p| p.strip_prefix("refresh_token="))
            {
                // A standard connection: each refresh token works once.
                if x.refresh.as_deref() != Some(given) {
                    return ResponseTemplate::new(400)
                        .set_body_json(json!({"error": "invalid_grant"}));
                }
                x.refresh = Some(format!("xr-{}", x.tokens.len() + 2));
            }
            let token = format!("tok-{}", x.tokens.len() + 1);
            let calls = x.calls_per_token;
            x.tokens.insert(token.clone(), calls);
            return ResponseTemplate::new(200).set_body_json(
                json!({"access_token": token, "expires_in": 1800, "token_type": "Bearer", "refresh_token": x.refresh}),
            );
        }
        x.calls += 1;
        let bearer = r
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        match x.tokens.get_mut(&bearer) {
            Some(left) if *left > 0 => *left -= 1,
            _ => {
                return ResponseTemplate::new(401)
                    .set_body_json(json!({"Type": null, "Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired: token expired"}));
            }
        }
        assert_eq!(r.headers.get("xero-tenant-id").unwrap(), "tenant-1");
        let method = r.method.as_str();
        if method == "GET" && path == "/api.xro/2.0/Invoices" {
            let filter: String = query_param(r, "where").unwrap_or_default();
            let reference = xero::reference(&filter).unwrap();
            let found = xero::found(&x.invoices, |i| i["Reference"] == reference);
            return ResponseTemplate::new(200)
                .set_body_json(json!({"Id": "x", "Status": "OK", "Invoices": found}));
        }
        if method == "GET"
            && let Some(id) = path.strip_prefix("/api.xro/2.0/Invoices/")
        {
            return xero::invoices(&x.invoices, |i| i["InvoiceID"] == id);
        }
        if method == "PUT" && path == "/api.xro/2.0/Invoices" {
            x.puts += 1;
            let key = r
                .headers
                .get("idempotency-key")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            if let Some(answer) = x.keys.get(&key) {
                return ResponseTemplate::new(200).set_body_json(answer.clone());
            }
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let mut inv = body["Invoices"][0].clone();
            assert_eq!(inv["Type"], "ACCREC");
            assert_eq!(inv["Status"], "DRAFT");
            if inv["Contact"]["ContactID"] == "C-INVALID" {
                let error: Value = serde_json::from_str(
                    &std::fs::read_to_string(
                        root().join("tests/fixtures/xero/validation-error.json"),
                    )
                    .unwrap(),
                )
                .unwrap();
                return ResponseTemplate::new(400).set_body_json(error);
            }
            let mut total = sub_total(&inv);
            // Xero rounds one contact's lines its own way.
            if inv["Contact"]["ContactID"] == "C-ROUNDS" {
                total += Decimal::new(1, 2);
            }
            inv["InvoiceID"] = json!(format!("inv-{}", x.invoices.len() + 1));
            inv["SubTotal"] = json!(total.to_string());
            inv["HasErrors"] = json!(false);
            x.invoices.push(inv.clone());
            let answer = json!({"Id": "x", "Status": "OK", "Invoices": [inv]});
            x.keys.insert(key, answer.clone());
            let reference = inv["Reference"].as_str().unwrap().to_owned();
            if x.lose_first_answer.remove(&reference) {
                return ResponseTemplate::new(500).set_body_string("upstream lost");
            }
            return ResponseTemplate::new(200).set_body_json(answer);
        }
        ResponseTemplate::new(404)
    }
}

fn xero_config(dir: &Path, uri: &str, contacts: &[(&str, &str)]) -> std::path::PathBuf {
    xero_config_with(dir, uri, contacts, "")
}

fn xero_config_with(
    dir: &Path,
    uri: &str,
    contacts: &[(&str, &str)],
    extra: &str,
) -> std::path::PathBuf {
    xero_config_mapped(dir, uri, contacts, extra, &examples())
}

fn xero_config_mapped(
    dir: &Path,
    uri: &str,
    contacts: &[(&str, &str)],
    extra: &str,
    mappings: &Path,
) -> std::path::PathBuf {
    let customers: Vec<String> = expected_october_totals()
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let mut table = String::new();
    for c in &customers {
        let contact = contacts
            .iter()
            .find(|(k, _)| k == c)
            .map_or(format!("C-{c}"), |(_, v)| (*v).to_owned());
        table.push_str(&format!("\"{c}\" = \"{contact}\"\n"));
    }
    let tables = format!(
        r#"{samples}{xero}tenant_id = "tenant-1"
requests_per_second = 1000
{extra}
timeout_ms = 2000
[targets.xero.contacts]
{table}
[outbox]
max_attempts = 3
base_delay_secs = 60
max_delay_secs = 600
"#,
        samples = samples(),
        xero = xero_target(uri, "env:CB_TEST_XERO_SECRET"),
    );
    write_config(dir, mappings, "xero", &tables)
}

fn run_once(config: &Path, now: &str) -> String {
    run_once_with(config, now, &[("CB_TEST_XERO_SECRET", "s3cret")])
}

async fn fake_xero(x: Xero) -> (FakeXero, MockServer) {
    let fake = FakeXero(Arc::new(Mutex::new(x)));
    let server = serve(fake.clone()).await;
    (fake, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_lands_in_xero_once_through_lost_answers_and_expiring_tokens() {
    let (fake, server) = fake_xero(Xero {
        calls_per_token: 7,
        lose_first_answer: [
            "draft:riga-bakery:2026-10:r1",
            "draft:poznan-clinic:2026-10:r1",
            "draft:access-co:2026-10:r1",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        ..Xero::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = xero_config(dir.path(), &server.uri(), &[("baltic-retail", "C-ROUNDS")]);
    let first = run_once(&cfg, NOW);
    // Lost answers wait for their retry; the rest are in.
    let retry = run_once(&cfg, "2026-11-23T13:00:00Z");
    assert!(retry.contains("0 to retry, 0 dead"), "{first}\n{retry}");

    {
        let x = fake.0.lock().unwrap();
        let mut totals: Vec<(String, String)> = x
            .invoices
            .iter()
            .map(|i| {
                let customer = i["Contact"]["ContactID"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("C-")
                    .to_owned();
                (customer, i["Reference"].as_str().unwrap().to_owned())
            })
            .collect();
        totals.sort();
        assert_eq!(x.invoices.len(), 12, "one draft per customer: {totals:?}");
        let references: BTreeSet<&str> = x
            .invoices
            .iter()
            .map(|i| i["Reference"].as_str().unwrap())
            .collect();
        assert_eq!(references.len(), 12, "no reference twice");
        assert_eq!(
            x.puts, 12,
            "a lost answer is found by reference, not created again"
        );
        assert!(
            x.tokens.len() >= 2,
            "expired tokens were replaced: {}",
            x.tokens.len()
        );
        eprintln!(
            "xero: {} API calls and {} token requests for 12 drafts",
            x.calls,
            x.tokens.len()
        );
    }
    let s = status(&cfg, &[("CB_TEST_XERO_SECRET", "s3cret")]);
    assert!(s.contains("outbox: 0 pending, 12 sent, 0 dead"), "{s}");
    // The one total Xero rounded differently is shown, not "fixed".
    let differences: Vec<&str> = s.lines().filter(|l| l.starts_with("difference")).collect();
    assert_eq!(differences.len(), 1, "{s}");
    assert!(
        differences[0].contains("draft:baltic-retail:2026-10:r1"),
        "{s}"
    );
    assert!(differences[0].contains("xero holds"), "{s}");
    contract::within_xero(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_xero_refuses_is_a_dead_letter_with_xeros_words() {
    let (fake, server) = fake_xero(Xero {
        calls_per_token: 1000,
        ..Xero::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = xero_config(dir.path(), &server.uri(), &[("riga-bakery", "C-INVALID")]);
    let out = run_once(&cfg, NOW);
    assert!(out.contains("11 pushed, 0 to retry, 1 dead"), "{out}");
    let s = status(&cfg, &[("CB_TEST_XERO_SECRET", "s3cret")]);
    assert!(
        s.contains("failing xero draft:riga-bakery:2026-10:r1: 1 attempt(s), last error: xero: HTTP 400: A validation exception occurred; The Contact ID is not valid"),
        "{s}"
    );
    assert_eq!(fake.0.lock().unwrap().invoices.len(), 11);
    contract::within_xero(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_connection_refreshes_with_the_newest_stored_token() {
    let (fake, server) = fake_xero(Xero {
        calls_per_token: 1000,
        refresh: Some("xr-1".into()),
        ..Xero::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = xero_config_with(dir.path(), &server.uri(), &[], "refresh_token = \"xr-1\"");
    let first = run_once(&cfg, NOW);
    assert!(first.contains("12 pushed, 0 to retry, 0 dead"), "{first}");
    // November from a new process: `xr-1` is spent, the stored successor works.
    let second = run_once(&cfg, "2026-12-02T12:00:00Z");
    assert!(second.contains("0 to retry, 0 dead"), "{second}");
    contract::within_xero(&server).await;
    let x = fake.0.lock().unwrap();
    assert_eq!(x.tokens.len(), 2);
    assert!(x.invoices.len() > 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mapping_names_the_contact_and_account_in_xero() {
    let (fake, server) = fake_xero(Xero {
        calls_per_token: 1000,
        ..Xero::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mappings = dir.path().join("mappings");
    std::fs::create_dir(&mappings).unwrap();
    for e in std::fs::read_dir(examples()).unwrap() {
        let p = e.unwrap().path();
        let mut text = std::fs::read_to_string(&p).unwrap();
        if p.file_name().unwrap() == "lv-it.yaml" {
            text = text.replace(
                "    requesters: [ilze@riga-bakery.example]\n",
                "    requesters: [ilze@riga-bakery.example]\n    accounting:\n      xero: {contact: C-FROM-MAPPING, account: \"4000\", tax: OUTPUT2}\n",
            );
        }
        std::fs::write(mappings.join(p.file_name().unwrap()), text).unwrap();
    }
    let cfg = xero_config_mapped(dir.path(), &server.uri(), &[], "", &mappings);
    let out = run_once(&cfg, NOW);
    assert!(out.contains("12 pushed"), "{out}");
    contract::within_xero(&server).await;
    let x = fake.0.lock().unwrap();
    let riga = x
        .invoices
        .iter()
        .find(|i| i["Reference"] == "draft:riga-bakery:2026-10:r1")
        .unwrap();
    assert_eq!(riga["Contact"]["ContactID"], "C-FROM-MAPPING");
    assert!(
        riga["LineItems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["AccountCode"] == "4000" && l["TaxType"] == "OUTPUT2")
    );
    let other = x
        .invoices
        .iter()
        .find(|i| i["Reference"] == "draft:jurmala-hotel:2026-10:r1")
        .unwrap();
    assert_eq!(
        other["Contact"]["ContactID"], "C-jurmala-hotel",
        "the target's own map for the rest"
    );
    assert_eq!(other["LineItems"][0]["AccountCode"], "200");
}

/// Xero's own answer examples, from its OpenAPI description (vendored for
/// the contract test), read through the connector: every field it requires
/// is in Xero's documented shape.
#[test]
fn xeros_own_answer_examples_read_through_the_connector() {
    use connectors::accounting::{AccountingApi, CodeKind, DraftStatus, StatusAnswer, StatusStep};
    let text =
        std::fs::read_to_string(root().join("tests/contract/xero/xero_accounting.yaml")).unwrap();
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    let answer = |path: &str, method: &str| connectors::HttpResponse {
        status: 200,
        body:
            doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["example"]
                .to_string(),
        retry_after: None,
    };
    let x: connectors::xero::XeroConfig =
        serde_json::from_value(json!({"client_id": "c", "client_secret": "s"})).unwrap();

    let listed = x.read_statuses(&answer("/Invoices", "get")).unwrap();
    let statuses: Vec<DraftStatus> = listed.iter().map(|i| i.status).collect();
    assert_eq!(
        statuses,
        [
            DraftStatus::Voided,
            DraftStatus::Paid,
            DraftStatus::Approved
        ]
    );
    assert_eq!(listed[0].date.unwrap().to_string(), "2018-10-20");
    let page = x.read_sales(&answer("/Invoices", "get")).unwrap();
    assert_eq!(page.cursor.as_deref(), Some("2018-11-02T16:37:28"));

    let read = answer("/Invoices/{InvoiceID}", "get");
    let StatusStep::Known(paid) = x
        .read_status(StatusAnswer {
            remote_id: "a",
            reference: "r",
            step: 0,
            response: &read,
        })
        .unwrap()
    else {
        panic!("a status");
    };
    assert_eq!(paid.status, DraftStatus::Paid);
    assert_eq!(paid.lines[0].item, "123");
    assert_eq!(paid.lines[0].amount, Decimal::new(14806276, 2));
    let fetched = x.read_fetched(&read).unwrap();
    assert_eq!(fetched.id, "a03ffcd2-5d91-4c7e-b483-318584e9e439");
    assert_eq!(fetched.total_net, Some(Decimal::new(14806276, 2)));

    let created = x.read_created_drafts(&answer("/Invoices", "put")).unwrap();
    assert_eq!(created[0].0, "Website Design");
    assert_eq!(
        created[0].1.as_ref().unwrap().id,
        "ed255415-e141-4150-aab7-89c3bbbb851c"
    );
    let found = x.read_found_drafts(&answer("/Invoices", "get")).unwrap();
    assert_eq!(found.len(), 3);

    let names = x
        .read_attachments(&answer("/Invoices/{InvoiceID}/Attachments", "get"))
        .unwrap();
    assert_eq!(names, ["foobar.jpg", "sample5.jpg"]);
    for (kind, path, first) in [
        (CodeKind::Account, "/Accounts", "091"),
        (CodeKind::Tax, "/TaxRates", "INPUT2"),
        (CodeKind::Item, "/Items", "123"),
    ] {
        let codes = x.read_codes(kind, &answer(path, "get")).unwrap();
        assert_eq!(codes[0].code, first, "{path}");
    }
}
