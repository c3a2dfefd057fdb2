//! QuickBooks Online, mocked with wiremock as Intuit documents it: rotating
//! refresh tokens (the old one is refused once used), `requestid`, a
//! `Fault` in an HTTP 200, and the batch endpoint (`BatchItemRequest`s by
//! `bId`, each answered on its own: the document or its `Fault`).

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::support::*;
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

#[derive(Default)]
struct Qbo {
    /// The one refresh token Intuit accepts now.
    refresh: String,
    refreshes: usize,
    access: String,
    invoices: Vec<Value>,
    creates: usize,
    /// `requestid` → the answer given.
    requests: Vec<(String, Value)>,
    calls: usize,
    /// The size of every batch request.
    batches: Vec<usize>,
}

impl Qbo {
    /// Creates `inv`, or answers the Fault Intuit gives for an inactive customer.
    fn create(&mut self, mut inv: Value) -> Result<Value, Value> {
        self.creates += 1;
        assert_eq!(
            inv["EmailStatus"], "NotSet",
            "an unsent invoice stands for the draft"
        );
        assert!(inv["DocNumber"].as_str().unwrap().len() <= 21);
        if inv["CustomerRef"]["value"] == "610" {
            let fault: Value = serde_json::from_str(
                &std::fs::read_to_string(
                    root().join("tests/fixtures/quickbooks/fault-customer.json"),
                )
                .unwrap(),
            )
            .unwrap();
            return Err(fault);
        }
        let total: rust_decimal::Decimal = inv["Line"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                l["Amount"]
                    .to_string()
                    .parse::<rust_decimal::Decimal>()
                    .unwrap()
            })
            .sum();
        inv["Id"] = json!((100 + self.invoices.len()).to_string());
        inv["TotalAmt"] = json!(total);
        inv["TxnTaxDetail"] = json!({"TotalTax": 0});
        self.invoices.push(inv.clone());
        Ok(inv)
    }
}

#[derive(Clone)]
struct FakeQbo(Arc<Mutex<Qbo>>);

impl Respond for FakeQbo {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut q = self.0.lock().unwrap();
        let path = r.url.path().to_owned();
        if path == "/oauth2/v1/tokens/bearer" {
            let body = String::from_utf8_lossy(&r.body).to_string();
            let given = body
                .split('&')
                .find_map(|p| p.strip_prefix("refresh_token="))
                .unwrap_or_default()
                .to_owned();
            if given != q.refresh {
                return ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"}));
            }
            q.refreshes += 1;
            q.refresh = format!("rt-{}", q.refreshes + 1);
            q.access = format!("at-{}", q.refreshes);
            return ResponseTemplate::new(200).set_body_json(json!({
                "token_type": "bearer", "access_token": q.access, "expires_in": 3600,
                "refresh_token": q.refresh, "x_refresh_token_expires_in": 8_726_400}));
        }
        let auth = r
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        if auth != format!("Bearer {}", q.access) {
            return ResponseTemplate::new(401).set_body_json(json!({"fault": {"error": [{"message": "message=AuthenticationFailed", "code": "3200"}]}}));
        }
        q.calls += 1;
        let minor = query_param(r, "minorversion");
        assert_eq!(minor.as_deref(), Some("75"));
        let method = r.method.as_str();
        if method == "GET" && path == "/v3/company/9130/query" {
            let query = query_param(r, "query").unwrap();
            // `DocNumber = 'a'`, or `DocNumber in ('a', 'b')` for a batch.
            let docs: Vec<&str> = query.split('\'').skip(1).step_by(2).collect();
            assert!(!docs.is_empty(), "{query}");
            let found: Vec<Value> = q
                .invoices
                .iter()
                .filter(|i| docs.iter().any(|d| i["DocNumber"] == *d))
                .cloned()
                .collect();
            let body = if found.is_empty() {
                json!({"QueryResponse": {}, "time": "2026-11-01T06:00:00.000-07:00"})
            } else {
                json!({"QueryResponse": {"Invoice": found, "startPosition": 1, "maxResults": 1}})
            };
            return ResponseTemplate::new(200).set_body_json(body);
        }
        if method == "POST" && path == "/v3/company/9130/invoice" {
            let request_id = query_param(r, "requestid").unwrap();
            assert!(request_id.len() <= 50);
            if let Some((_, answer)) = q.requests.iter().find(|(id, _)| *id == request_id) {
                return ResponseTemplate::new(200).set_body_json(answer.clone());
            }
            let inv = match q.create(serde_json::from_slice(&r.body).unwrap()) {
                Ok(inv) => inv,
                Err(fault) => return ResponseTemplate::new(200).set_body_json(fault),
            };
            let answer = json!({"Invoice": inv, "time": "2026-11-01T06:00:00.000-07:00"});
            q.requests.push((request_id, answer.clone()));
            return ResponseTemplate::new(200).set_body_json(answer);
        }
        if method == "POST" && path == "/v3/company/9130/batch" {
            let request_id = query_param(r, "requestid").unwrap();
            assert!(request_id.len() <= 50);
            if let Some((_, answer)) = q.requests.iter().find(|(id, _)| *id == request_id) {
                return ResponseTemplate::new(200).set_body_json(answer.clone());
            }
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let items = body["BatchItemRequest"].as_array().unwrap().clone();
            assert!(items.len() <= 30, "Intuit's most payloads in a batch");
            q.batches.push(items.len());
            let mut answered = Vec::new();
            for item in items {
                assert_eq!(item["operation"], "create");
                let answer = match q.create(item["Invoice"].clone()) {
                    Ok(inv) => json!({"bId": item["bId"], "Invoice": inv}),
                    Err(fault) => json!({"bId": item["bId"], "Fault": fault["Fault"]}),
                };
                answered.push(answer);
            }
            let answer =
                json!({"BatchItemResponse": answered, "time": "2026-11-01T06:00:00.000-07:00"});
            q.requests.push((request_id, answer.clone()));
            return ResponseTemplate::new(200).set_body_json(answer);
        }
        if method == "GET"
            && let Some(id) = path.strip_prefix("/v3/company/9130/invoice/")
        {
            let inv = q.invoices.iter().find(|i| i["Id"] == id).cloned();
            return match inv {
                Some(inv) => ResponseTemplate::new(200).set_body_json(json!({"Invoice": inv})),
                None => ResponseTemplate::new(404),
            };
        }
        ResponseTemplate::new(404)
    }
}

fn config(dir: &Path, uri: &str) -> std::path::PathBuf {
    config_with(dir, uri, "")
}

fn config_with(dir: &Path, uri: &str, extra: &str) -> std::path::PathBuf {
    let mut customers = String::new();
    for (i, (c, _)) in expected_october_totals().iter().enumerate() {
        let id = if c == "jurmala-hotel" {
            "610".to_owned()
        } else {
            (i + 1).to_string()
        };
        customers.push_str(&format!("\"{c}\" = \"{id}\"\n"));
    }
    let tables = format!(
        r#"{samples}[targets.qbo]
type = "quickbooks"
base_url = "{uri}"
token_url = "{uri}/oauth2/v1/tokens/bearer"
realm_id = "9130"
client_id = "cb"
client_secret = "s3cret"
refresh_token = "rt-1"
requests_per_second = 1000
[targets.qbo.customers]
{customers}
{extra}
"#,
        samples = samples(),
    );
    write_config(dir, &examples(), "qbo", &tables)
}

fn run(config: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    err + &String::from_utf8_lossy(&out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickbooks_gets_each_draft_once_with_rotating_refresh_tokens_and_faults_in_200s() {
    let fake = FakeQbo(Arc::new(Mutex::new(Qbo {
        refresh: "rt-1".into(),
        ..Qbo::default()
    })));
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri());
    let first = run(&cfg, &["run", "--once", "--now", NOW]);
    assert!(first.contains("11 pushed, 0 to retry, 1 dead"), "{first}");
    {
        let q = fake.0.lock().unwrap();
        assert_eq!(
            q.invoices.len(),
            11,
            "one invoice per customer but the refused one"
        );
        assert_eq!(q.creates, 12);
    }
    // November, pushed by a second process: it must refresh with the
    // rotated token from the store, since the configured `rt-1` is spent.
    let second = run(&cfg, &["run", "--once", "--now", "2026-12-02T12:00:00Z"]);
    assert!(second.contains("0 to retry"), "{second}");
    assert!(!second.contains("invalid_grant"), "{second}");
    let q = fake.0.lock().unwrap();
    assert_eq!(
        q.refreshes, 2,
        "one refresh per process, each with the newest token"
    );
    let doc_numbers: std::collections::BTreeSet<&str> = q
        .invoices
        .iter()
        .map(|i| i["DocNumber"].as_str().unwrap())
        .collect();
    assert_eq!(doc_numbers.len(), q.invoices.len(), "no DocNumber twice");
    assert!(q.invoices.len() > 11, "November's drafts arrived too");
    eprintln!(
        "quickbooks: {} API calls for {} drafts (October and November) and a refusal",
        q.calls,
        q.invoices.len()
    );
    drop(q);
    let s = run(&cfg, &["status"]);
    assert!(s.contains("0 pending"), "{s}");
    assert!(s.contains("Object Not Found"), "{s}");
    assert!(s.contains("code 610"), "{s}");
}

/// With `outbox.batch = 30`, October's twelve drafts go in one lookup and
/// one batch request; the one whose customer QuickBooks finds inactive is
/// refused alone with Intuit's message, the eleven are created once, and a
/// second run creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickbooks_takes_drafts_in_one_batch_and_refuses_one_alone() {
    let fake = FakeQbo(Arc::new(Mutex::new(Qbo {
        refresh: "rt-1".into(),
        ..Qbo::default()
    })));
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), &server.uri(), "[outbox]\nbatch = 30\n");
    let first = run(&cfg, &["run", "--once", "--now", NOW]);
    assert!(first.contains("11 pushed, 0 to retry, 1 dead"), "{first}");
    {
        let q = fake.0.lock().unwrap();
        assert_eq!(q.batches, vec![12], "one batch carrying the twelve");
        assert_eq!(q.invoices.len(), 11);
        let doc_numbers: std::collections::BTreeSet<&str> = q
            .invoices
            .iter()
            .map(|i| i["DocNumber"].as_str().unwrap())
            .collect();
        assert_eq!(doc_numbers.len(), 11, "no DocNumber twice");
    }
    let again = run(&cfg, &["run", "--once", "--now", NOW]);
    assert!(again.contains("0 to retry"), "{again}");
    assert_eq!(fake.0.lock().unwrap().batches, vec![12], "nothing twice");
    let s = run(&cfg, &["status"]);
    assert!(s.contains("0 pending"), "{s}");
    assert!(s.contains("Object Not Found"), "{s}");
    assert!(s.contains("code 610"), "{s}");
}
