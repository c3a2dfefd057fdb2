//! The work report's PDF lands on each Xero draft exactly once: uploaded as
//! raw bytes under its name after the draft exists, and not again when the
//! push is retried after Xero stored the file but the answer was lost.
//!
//! The PDF printer is a stand-in for Chromium's DevTools pipe
//! (`tests/fixtures/pdf/fake-chromium`), so this test runs without a browser.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::support::*;
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

#[derive(Default)]
struct Xero {
    invoices: Vec<Value>,
    /// Invoice id → (file name, content type, bytes) attached.
    attachments: BTreeMap<String, Vec<(String, String, Vec<u8>)>>,
    uploads: usize,
    /// Store the first upload but answer it with a 500.
    lose_first_upload: bool,
}

#[derive(Clone, Default)]
struct FakeXero(Arc<Mutex<Xero>>);

impl Respond for FakeXero {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut x = self.0.lock().unwrap();
        let path = r.url.path().to_owned();
        if path == "/connect/token" {
            return ResponseTemplate::new(200).set_body_json(
                json!({"access_token": "tok", "expires_in": 1800, "token_type": "Bearer"}),
            );
        }
        assert_eq!(r.headers.get("authorization").unwrap(), "Bearer tok");
        let method = r.method.as_str();
        let rest = path.strip_prefix("/api.xro/2.0/Invoices").unwrap();
        let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("GET", [""]) => {
                let filter: String = query_param(r, "where").unwrap_or_default();
                let found: Vec<Value> = x
                    .invoices
                    .iter()
                    .filter(|i| filter.contains(i["Reference"].as_str().unwrap()))
                    .cloned()
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"Invoices": found}))
            }
            ("PUT", [""]) => {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                let mut inv = body["Invoices"][0].clone();
                inv["InvoiceID"] = json!(format!("inv-{}", x.invoices.len() + 1));
                inv["SubTotal"] = json!(null);
                x.invoices.push(inv.clone());
                ResponseTemplate::new(200).set_body_json(json!({"Invoices": [inv]}))
            }
            ("GET", [id]) => {
                let found: Vec<Value> = x
                    .invoices
                    .iter()
                    .filter(|i| i["InvoiceID"] == *id)
                    .cloned()
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"Invoices": found}))
            }
            ("GET", [id, "Attachments"]) => {
                let list: Vec<Value> = x
                    .attachments
                    .get(*id)
                    .into_iter()
                    .flatten()
                    .map(|(name, mime, _)| json!({"FileName": name, "MimeType": mime}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"Attachments": list}))
            }
            ("PUT", [id, "Attachments", name]) => {
                assert!(
                    x.invoices.iter().any(|i| i["InvoiceID"] == *id),
                    "no invoice {id}"
                );
                assert_eq!(
                    r.url.query(),
                    Some("IncludeOnline=true"),
                    "the PDF goes out with the online invoice"
                );
                x.uploads += 1;
                let mime = r
                    .headers
                    .get("content-type")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                x.attachments.entry((*id).to_owned()).or_default().push((
                    (*name).to_owned(),
                    mime.clone(),
                    r.body.clone(),
                ));
                if x.lose_first_upload {
                    x.lose_first_upload = false;
                    return ResponseTemplate::new(500).set_body_string("lost");
                }
                ResponseTemplate::new(200).set_body_json(
                    json!({"Attachments": [{"AttachmentID": "a", "FileName": name, "MimeType": mime}]}),
                )
            }
            other => panic!("unexpected Xero call {other:?}"),
        }
    }
}

#[tokio::test]
async fn each_draft_gets_its_report_pdf_once_even_when_an_upload_answer_is_lost() {
    let fake = FakeXero::default();
    fake.0.lock().unwrap().lose_first_upload = true;
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let printer = root().join("tests/fixtures/pdf/fake-chromium");
    let tables = format!(
        r#"{samples}{xero}tenant_id = "tenant-1"
requests_per_second = 1000
contacts = {{ riga-bakery = "C-1", daugava-logistics = "C-2", jurmala-hotel = "C-3" }}
[outbox]
base_delay_secs = 1
max_delay_secs = 1
[report]
chromium = "{printer}""#,
        samples = folder_source("samples", &scenarios().join("lv-it")),
        xero = xero_target(&server.uri(), "s3cret"),
        printer = printer.display(),
    );
    let mapping = examples().join("lv-it.yaml");
    let cfg = write_config(dir.path(), &mapping, "xero", &tables);
    let log = run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    assert!(log.contains("with a PDF"), "{log}");
    // The lost answer is retried an hour later: the file is found, not sent again.
    run_once_with(&cfg, "2026-11-02T13:00:00Z", &[]);
    run_once_with(&cfg, "2026-11-02T14:00:00Z", &[]);
    // Each PDF is an item of its own beside its draft: the upload whose
    // answer was lost was retried on its own and is done.
    let s = status(&cfg, &[]);
    assert!(s.contains("outbox: 0 pending, 6 sent, 0 dead"), "{s}");
    assert!(s.contains("reports: 3 stored, 3 with a PDF"), "{s}");
    let requests = server.received_requests().await.unwrap();
    assert!(contract::check_xero(&requests) > 0);
    let x = fake.0.lock().unwrap();
    assert_eq!(x.invoices.len(), 3, "{:?}", x.invoices);
    for inv in &x.invoices {
        let id = inv["InvoiceID"].as_str().unwrap();
        let customer = inv["Reference"]
            .as_str()
            .unwrap()
            .split(':')
            .nth(1)
            .unwrap()
            .to_owned();
        let files = x.attachments.get(id).cloned().unwrap_or_default();
        assert_eq!(files.len(), 1, "{id}: {files:?}");
        let (name, mime, bytes) = &files[0];
        assert_eq!(name, &format!("report-{customer}-2026-10-r1.pdf"));
        assert_eq!(mime, "application/pdf");
        assert!(bytes.starts_with(b"%PDF"), "{bytes:?}");
    }
    assert_eq!(
        x.uploads, 3,
        "one upload per draft, the lost one not repeated"
    );
}
