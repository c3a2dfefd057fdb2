//! The work report's PDF lands on each Xero draft exactly once: uploaded as
//! raw bytes under its name after the draft exists, and not again when the
//! push is retried after Xero stored the file but the answer was lost.
//!
//! The PDF printer is a stand-in for Chromium's DevTools pipe
//! (`tests/fixtures/pdf/fake-chromium`), so this test runs without a browser.

use std::collections::BTreeMap;

use crate::support::*;
use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

#[derive(Default)]
struct Xero {
    invoices: Vec<Value>,
    /// Invoice id → (file name, content type, bytes) attached.
    attachments: BTreeMap<String, Vec<(String, String, Vec<u8>)>>,
    uploads: usize,
    /// Store the first upload but answer it with a 500.
    lose_first_upload: bool,
}

type FakeXero = Shared<Xero>;

impl xero::Accounting for Xero {
    fn accounting(&mut self, r: &Request, path: &str) -> ResponseTemplate {
        assert_eq!(r.headers.get("authorization").unwrap(), "Bearer tok");
        let rest = path.strip_prefix("/api.xro/2.0/Invoices").unwrap();
        let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        match (r.method.as_str(), parts.as_slice()) {
            ("GET", [""]) => {
                let filter: String = query_param(r, "where").unwrap_or_default();
                xero::invoices(&self.invoices, |i| {
                    filter.contains(i["Reference"].as_str().unwrap())
                })
            }
            ("PUT", [""]) => xero::create(&mut self.invoices, r, |inv| {
                inv["SubTotal"] = json!(null);
            }),
            ("GET", [id]) => xero::invoices(&self.invoices, |i| i["InvoiceID"] == *id),
            ("GET", [id, "Attachments"]) => {
                xero::attachment_list(self.attachments.get(*id), |(name, mime, _)| (name, mime))
            }
            ("PUT", [id, "Attachments", name]) => {
                assert!(
                    self.invoices.iter().any(|i| i["InvoiceID"] == *id),
                    "no invoice {id}"
                );
                assert_eq!(
                    r.url.query(),
                    Some("IncludeOnline=true"),
                    "the PDF goes out with the online invoice"
                );
                self.uploads += 1;
                let mime = r
                    .headers
                    .get("content-type")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                self.attachments.entry((*id).to_owned()).or_default().push((
                    (*name).to_owned(),
                    mime.clone(),
                    r.body.clone(),
                ));
                if self.lose_first_upload {
                    self.lose_first_upload = false;
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
    let cfg = xero::pdf_config(dir.path(), &server.uri(), "");
    let log = run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    assert!(log.contains("with a PDF"), "{log}");
    // The lost answer is retried an hour later: the file is found, not sent again.
    // Each PDF is an item of its own beside its draft: the upload whose
    // answer was lost was retried on its own and is done.
    let s = xero::an_hour_and_two_later(&cfg);
    assert!(s.contains("outbox: 0 pending, 6 sent, 0 dead"), "{s}");
    assert!(s.contains("reports: 3 stored, 3 with a PDF"), "{s}");
    contract::within_xero(&server).await;
    let x = fake.0.lock().unwrap();
    assert_eq!(x.invoices.len(), 3, "{:?}", x.invoices);
    for inv in &x.invoices {
        let id = inv["InvoiceID"].as_str().unwrap();
        let customer = customer_of(&inv["Reference"]);
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
