//! Xero's granular scopes (issue 20). An app created since 2 March 2026
//! cannot ask for the broad `accounting.transactions`: Xero's token
//! endpoint answers `invalid_scope`. The bridge asks for the scopes of what
//! its configuration uses; an older app keeps the broad ones through the
//! `scopes` setting; and a report PDF refused for want of
//! `accounting.attachments` fails as its own item, the draft pushed once.
//!
//! The fake token endpoint behaves as RFC 6749 §5.2 says an authorization
//! server refuses a scope (`400 {"error": "invalid_scope"}`), and answers
//! with the granted `scope` (§5.1), as Xero's token answers carry it
//! (developer.xero.com/documentation/guides/oauth2/custom-connections/).
//! Every API request is checked against Xero's OpenAPI description.

use std::collections::BTreeMap;

use crate::support::*;
use serde_json::{Value, json};
use wiremock::{MockServer, Request, ResponseTemplate};

struct Xero {
    /// The scopes the app holds in Xero's developer portal.
    held: Vec<&'static str>,
    /// The `scope` of each token request, as asked.
    asked: Vec<String>,
    /// The scopes of the token issued last.
    granted: String,
    invoices: Vec<Value>,
    puts: usize,
    /// Invoice id → file names attached.
    attachments: BTreeMap<String, Vec<String>>,
    uploads: usize,
    /// Attachment calls refused (403) for want of `accounting.attachments`.
    refused: usize,
}

type FakeXero = Shared<Xero>;

impl FakeXero {
    fn holding(held: &[&'static str]) -> FakeXero {
        Shared::new(Xero {
            held: held.to_vec(),
            asked: Vec::new(),
            granted: String::new(),
            invoices: Vec::new(),
            puts: 0,
            attachments: BTreeMap::new(),
            uploads: 0,
            refused: 0,
        })
    }
}

/// Xero's 403 for a call outside the token's scopes (its problem-details shape).
fn forbidden() -> ResponseTemplate {
    ResponseTemplate::new(403).set_body_json(
        json!({"Type": null, "Title": "Forbidden", "Status": 403, "Detail": "AuthorizationUnsuccessful"}),
    )
}

impl Answer for Xero {
    fn answer(&mut self, r: &Request) -> ResponseTemplate {
        let path = r.url.path().to_owned();
        if path == "/connect/token" {
            let form = url_form(r);
            assert_eq!(form["grant_type"], "client_credentials");
            let asked = form.get("scope").cloned().unwrap_or_default();
            self.asked.push(asked.clone());
            if asked.split(' ').any(|s| !self.held.contains(&s)) {
                return ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_scope"}));
            }
            self.granted = asked.clone();
            return ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "tok", "expires_in": 1800, "token_type": "Bearer", "scope": asked
            }));
        }
        assert_eq!(r.headers.get("authorization").unwrap(), "Bearer tok");
        let may = |s: &str| self.granted.split(' ').any(|g| g == s);
        let invoices = may("accounting.invoices") || may("accounting.transactions");
        let attachments = may("accounting.attachments");
        let rest = path.strip_prefix("/api.xro/2.0/Invoices").unwrap();
        let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        match (r.method.as_str(), parts.as_slice()) {
            (_, [_, "Attachments", ..]) if !attachments => {
                self.refused += 1;
                forbidden()
            }
            (_, [..]) if !invoices => forbidden(),
            ("GET", [""]) => {
                let filter: String = query_param(r, "where").unwrap_or_default();
                xero::invoices(&self.invoices, |i| {
                    filter.contains(i["Reference"].as_str().unwrap())
                })
            }
            ("PUT", [""]) => {
                self.puts += 1;
                xero::create(&mut self.invoices, r, |_| {})
            }
            ("GET", [id]) => xero::invoices(&self.invoices, |i| i["InvoiceID"] == *id),
            ("GET", [id, "Attachments"]) => {
                xero::attachment_list(self.attachments.get(*id), |n| (n, "application/pdf"))
            }
            ("PUT", [id, "Attachments", name]) => {
                self.uploads += 1;
                self.attachments
                    .entry((*id).to_owned())
                    .or_default()
                    .push((*name).to_owned());
                ResponseTemplate::new(200).set_body_json(
                    json!({"Attachments": [{"AttachmentID": "a", "FileName": name, "MimeType": "application/pdf"}]}),
                )
            }
            other => panic!("unexpected Xero call {other:?}"),
        }
    }
}

/// The token request's form (`application/x-www-form-urlencoded`), decoded.
fn url_form(r: &Request) -> BTreeMap<String, String> {
    let mut u = r.url.clone();
    u.set_query(Some(&String::from_utf8_lossy(&r.body)));
    u.query_pairs().into_owned().collect()
}

const GRANULAR: &[&str] = &["accounting.invoices", "accounting.attachments"];
const BROAD: &[&str] = &[
    "accounting.transactions",
    "accounting.contacts",
    "accounting.attachments",
];

#[tokio::test]
async fn a_new_app_gets_its_drafts_and_pdfs_with_granular_scopes() {
    let fake = FakeXero::holding(GRANULAR);
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = xero::pdf_config(dir.path(), &server.uri(), "");
    let check = std::process::Command::new(bin())
        .args(["check", "--config"])
        .arg(&cfg)
        .arg("--mapping")
        .arg(examples().join("lv-it.yaml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        said.contains("xero scopes xero: requested accounting.invoices accounting.attachments"),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    let s = status(&cfg, &[]);
    assert!(s.contains("outbox: 0 pending, 6 sent, 0 dead"), "{s}");
    assert!(
        s.contains("xero scopes xero: granted accounting.invoices accounting.attachments"),
        "{s}"
    );
    contract::within_xero(&server).await;
    let out = std::process::Command::new(bin())
        .args(["status", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["xero_scopes"]["xero"]["granted"],
        "accounting.invoices accounting.attachments"
    );
    assert_eq!(
        doc["xero_scopes"]["xero"]["requested"],
        json!(["accounting.invoices", "accounting.attachments"])
    );
    let x = fake.0.lock().unwrap();
    assert!(
        x.asked
            .iter()
            .all(|a| a == "accounting.invoices accounting.attachments"),
        "never the retired broad scope: {:?}",
        x.asked
    );
    assert_eq!((x.invoices.len(), x.puts, x.uploads), (3, 3, 3));
}

#[tokio::test]
async fn an_old_app_is_told_which_setting_to_change_and_works_with_the_broad_scopes() {
    let fake = FakeXero::holding(BROAD);
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    // Derived scopes: an app from before March 2026 that holds only the
    // broad ones refuses them; the error says what to set and where.
    let cfg = xero::pdf_config(dir.path(), &server.uri(), "");
    let log = run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    assert!(log.contains("invalid_scope"), "{log}");
    assert!(log.contains("targets.xero.scopes"), "{log}");
    assert!(log.contains("developer portal"), "{log}");
    let s = status(&cfg, &[]);
    assert!(s.contains("3 dead"), "{s}");
    assert!(
        s.contains("targets.xero.scopes"),
        "the dead items say why: {s}"
    );
    assert!(fake.0.lock().unwrap().invoices.is_empty());

    // The `scopes` setting, in a fresh store: the broad scopes work.
    let dir = tempfile::tempdir().unwrap();
    let cfg = xero::pdf_config(
        dir.path(),
        &server.uri(),
        r#"scopes = ["accounting.transactions", "accounting.contacts", "accounting.attachments"]"#,
    );
    run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    let s = status(&cfg, &[]);
    assert!(s.contains("outbox: 0 pending, 6 sent, 0 dead"), "{s}");
    assert!(
        s.contains("requested accounting.transactions accounting.contacts accounting.attachments (from `targets.xero.scopes`)"),
        "{s}"
    );
    contract::within_xero(&server).await;
    let x = fake.0.lock().unwrap();
    assert_eq!((x.invoices.len(), x.uploads), (3, 3));
}

#[tokio::test]
async fn a_pdf_refused_for_its_scope_leaves_the_draft_sent_once_and_fails_on_its_own() {
    // The app holds invoices but not attachments; the setting asks for
    // what it holds (a settings warning says the PDFs cannot go).
    let fake = FakeXero::holding(&["accounting.invoices"]);
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = xero::pdf_config(
        dir.path(),
        &server.uri(),
        r#"scopes = ["accounting.invoices"]"#,
    );
    let log = run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    assert!(log.contains("without `accounting.attachments`"), "{log}");
    // Later runs retry nothing: the drafts are sent, the PDFs dead.
    let s = xero::an_hour_and_two_later(&cfg);
    assert!(s.contains("outbox: 0 pending, 3 sent, 3 dead"), "{s}");
    let failing: Vec<&str> = s
        .lines()
        .filter(|l| l.starts_with("failing xero attach:draft:"))
        .collect();
    assert_eq!(failing.len(), 3, "{s}");
    for line in &failing {
        assert!(
            line.contains("1 attempt(s)")
                && line.contains("HTTP 403")
                && line.contains("`accounting.attachments`"),
            "{line}"
        );
    }
    assert!(
        !s.lines().any(|l| l.starts_with("failing xero draft:")),
        "no draft fails: {s}"
    );
    contract::within_xero(&server).await;
    let x = fake.0.lock().unwrap();
    assert_eq!(x.puts, 3, "each draft created once");
    assert_eq!(x.invoices.len(), 3);
    assert_eq!(x.refused, 3, "each PDF tried once, then given up");
    assert_eq!(x.uploads, 0);
}

#[tokio::test]
async fn the_contract_check_refuses_what_xero_does_not_publish() {
    // Sent by hand to a recording mock: a misspelt field, a status Xero
    // does not know, an undeclared query parameter, a path that is no operation.
    let server = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let client = reqwest::Client::new();
    let base = format!("{}/api.xro/2.0", server.uri());
    let body = json!({"Invoices": [{"Type": "ACCREC", "Status": "DRAFTED",
        "Contact": {"ContactID": "C-1"}, "LineItem": []}]});
    client
        .put(format!(
            "{base}/Invoices?summarizeErrors=true&pageSize=often"
        ))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/Invoices?wher=x"))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/Invoice/1"))
        .send()
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    let put = contract::XERO.check(&requests[0]).join("\n");
    assert!(put.contains("body.Invoices[0].Status"), "{put}");
    assert!(put.contains("body.Invoices[0].LineItem"), "{put}");
    assert!(put.contains("pageSize"), "{put}");
    let get = contract::XERO.check(&requests[1]).join("\n");
    assert!(get.contains("query parameter wher"), "{get}");
    let none = contract::XERO.check(&requests[2]).join("\n");
    assert!(none.contains("no operation"), "{none}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_pdfs_are_counted_in_the_metrics() {
    let fake = FakeXero::holding(&["accounting.invoices"]);
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = xero::pdf_config(
        dir.path(),
        &server.uri(),
        &format!("scopes = [\"accounting.invoices\"]\n[http]\nlisten = \"127.0.0.1:{port}\""),
    );
    let _daemon = spawn_daemon(&cfg, std::process::Stdio::null());
    let addr = format!("127.0.0.1:{port}");
    let value = |m: &str, name: &str| -> Option<u64> {
        m.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    // Settled: nothing pending, and every PDF Xero refused counted.
    let mut m = String::new();
    wait_for("the refused PDFs counted", || {
        m = metrics(&addr);
        let refused = fake.0.lock().unwrap().refused as u64;
        value(&m, "contract_bridge_outbox_depth{state=\"pending\"}") == Some(0)
            && refused >= 3
            && value(&m, "contract_bridge_attachments_failed_total") == Some(refused)
    })
    .await;
    // Every dead item is a PDF; no draft died, each was created once.
    assert_eq!(
        value(&m, "contract_bridge_attachments_failed_total"),
        value(&m, "contract_bridge_pushes_total{result=\"dead\"}"),
        "{m}"
    );
    let x = fake.0.lock().unwrap();
    assert_eq!(x.puts, x.invoices.len());
    assert_eq!(x.uploads, 0);
}
