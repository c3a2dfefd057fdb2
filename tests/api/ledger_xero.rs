//! Xero back to the bridge, mocked with wiremock as Xero's API documents
//! it: every pushed draft followed to approved, paid or deleted by the
//! status poll (one `GET /Invoices/{id}` per open draft, none once final);
//! a deleted draft stays deleted until `--repush`; webhooks signed with
//! `x-xero-signature`, the intent-to-receive handshake, and sales opening
//! cards once per invoice line, however often they are delivered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

#[derive(Default)]
struct Xero {
    /// Every invoice the organisation holds, ours and finance's.
    invoices: Vec<Value>,
    /// Invoices the sales scan lists (`GET /Invoices?where=Type=="ACCREC"`).
    listed: Vec<String>,
    puts: usize,
    /// `GET /Invoices/{id}` requests by id.
    reads: BTreeMap<String, usize>,
    scans: usize,
}

#[derive(Clone, Default)]
struct FakeXero(Arc<Mutex<Xero>>);

impl FakeXero {
    fn set_status(&self, reference: &str, status: &str) {
        let mut x = self.0.lock().unwrap();
        let inv = x
            .invoices
            .iter_mut()
            .find(|i| i["Reference"] == reference)
            .unwrap();
        inv["Status"] = json!(status);
    }

    fn add_sale(&self, id: &str, contact: &str, item: &str, status: &str, listed: bool) {
        let mut x = self.0.lock().unwrap();
        x.invoices.push(json!({
            "InvoiceID": id, "Type": "ACCREC", "Status": status,
            "Contact": {"ContactID": contact}, "DateString": "2026-10-05T00:00:00",
            "Date": "/Date(1791158400000+0000)/", "CurrencyCode": "DKK",
            "LineAmountTypes": "Exclusive", "UpdatedDateUTC": "/Date(1791200000000+0000)/",
            "LineItems": [
                {"LineItemID": format!("{id}-l1"), "ItemCode": item, "Description": "Klippekort",
                 "Quantity": 1.0, "UnitAmount": 18000.0, "LineAmount": 18000.0, "TaxAmount": 4500.0},
                {"LineItemID": format!("{id}-l2"), "Description": "Delivery", "Quantity": 1.0,
                 "UnitAmount": 50.0, "LineAmount": 50.0}
            ]
        }));
        if listed {
            x.listed.push(id.to_owned());
        }
    }
}

impl Respond for FakeXero {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut x = self.0.lock().unwrap();
        let path = r.url.path().to_owned();
        if path == "/connect/token" {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "tok", "expires_in": 1800}));
        }
        assert_eq!(r.headers.get("authorization").unwrap(), "Bearer tok");
        let method = r.method.as_str();
        if method == "GET" && path == "/api.xro/2.0/Invoices" {
            let filter: String = query_param(r, "where").unwrap_or_default();
            if let Some(reference) = xero::reference(&filter) {
                return xero::invoices(&x.invoices, |i| i["Reference"] == reference);
            }
            assert_eq!(filter, "Type==\"ACCREC\"");
            x.scans += 1;
            return xero::invoices(&x.invoices, |i| {
                x.listed.iter().any(|l| i["InvoiceID"] == l.as_str())
            });
        }
        if method == "GET"
            && let Some(id) = path.strip_prefix("/api.xro/2.0/Invoices/")
        {
            *x.reads.entry(id.to_owned()).or_default() += 1;
            let found = xero::found(&x.invoices, |i| i["InvoiceID"] == id);
            if found.is_empty() {
                return ResponseTemplate::new(404);
            }
            return ResponseTemplate::new(200).set_body_json(json!({"Invoices": found}));
        }
        if method == "PUT" && path == "/api.xro/2.0/Invoices" {
            x.puts += 1;
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let mut inv = body["Invoices"][0].clone();
            inv["InvoiceID"] = json!(format!("inv-{}", x.invoices.len() + 1));
            for l in inv["LineItems"].as_array_mut().unwrap() {
                let amount = l["Quantity"].as_f64().unwrap() * l["UnitAmount"].as_f64().unwrap();
                l["LineAmount"] = json!(amount);
            }
            inv["SubTotal"] = json!("0");
            x.invoices.push(inv.clone());
            return ResponseTemplate::new(200).set_body_json(json!({"Invoices": [inv]}));
        }
        ResponseTemplate::new(404)
    }
}

const KEY: &str = "webhook-key-0123456789";

fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn config(dir: &Path, uri: &str, extra: &str) -> PathBuf {
    config_with(dir, uri, extra, "sold", "")
}

/// With the mapping `tests/fixtures/ledger/{mapping}` and `source_keys`
/// added to the itech source.
fn config_with(dir: &Path, uri: &str, extra: &str, mapping: &str, source_keys: &str) -> PathBuf {
    let tables = format!(
        r#"{itech}
{xero}tenant_id = "tenant-1"
webhook_key = "{KEY}"
[targets.xero.contacts]
"nordhavn-arkitekter" = "C-N"
"valby-tandlaege" = "C-V"
{extra}"#,
        itech = itech_source(source_keys),
        xero = xero_target(uri, "s3cret"),
    );
    let mapping = root().join("tests/fixtures/ledger").join(mapping);
    write_config(dir, &mapping, "xero", &tables)
}

async fn fake_xero() -> (MockServer, FakeXero) {
    let fake = FakeXero::default();
    (serve(fake.clone()).await, fake)
}

fn draft_state(status: &str, key: &str) -> String {
    status
        .lines()
        .find(|l| l.starts_with("draft ") && l.contains(key))
        .and_then(|l| l.split("): ").nth(1))
        .map(|s| s.split(" (").next().unwrap_or(s).to_owned())
        .unwrap_or_else(|| panic!("no {key} in\n{status}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_are_followed_to_approved_paid_and_deleted_and_a_deleted_one_stays_deleted() {
    let (server, fake) = fake_xero().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri(), "");
    let n = "draft:nordhavn-arkitekter:2026-10:r1";
    let v = "draft:valby-tandlaege:2026-10:r1";

    run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    let s = status(&cfg, &[]);
    assert_eq!(
        (draft_state(&s, n), draft_state(&s, v)),
        ("draft".into(), "draft".into())
    );
    assert_eq!(fake.0.lock().unwrap().puts, 2);

    fake.set_status(n, "AUTHORISED");
    fake.set_status(v, "DELETED");
    let log = run_once_with(&cfg, "2026-11-03T12:00:00Z", &[]);
    // Two open drafts, one request each, and one page of the sales scan.
    assert_eq!(ledger_requests(&log), 3, "{log}");
    let s = status(&cfg, &[]);
    assert_eq!(
        (draft_state(&s, n), draft_state(&s, v)),
        ("approved".into(), "deleted".into())
    );

    fake.set_status(n, "PAID");
    run_once_with(&cfg, "2026-11-04T12:00:00Z", &[]);
    assert_eq!(draft_state(&status(&cfg, &[]), n), "paid");
    let reads = fake.0.lock().unwrap().reads.clone();
    // Final drafts are not asked about again; a deleted one is not pushed again.
    let log = run_once_with(&cfg, "2026-11-05T12:00:00Z", &[]);
    assert_eq!(fake.0.lock().unwrap().reads, reads, "{log}");
    assert_eq!(fake.0.lock().unwrap().puts, 2, "{log}");
    assert_eq!(ledger_requests(&log), 1, "only the sales scan: {log}");

    // `--repush` re-creates the deleted draft, not the paid one.
    let repush = |customer: &str| repush_october(&cfg, customer, &[]);
    assert!(repush("valby-tandlaege").status.success());
    let refused = repush("nordhavn-arkitekter");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is paid"));
    {
        let x = fake.0.lock().unwrap();
        assert_eq!(x.puts, 3);
        assert!(
            x.invoices
                .iter()
                .any(|i| i["Reference"] == "draft:valby-tandlaege:2026-10:r2")
        );
    }
    assert!(
        !repush("valby-tandlaege").status.success(),
        "r2 is a draft finance holds"
    );
    contract::within_xero(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xero_webhooks_are_signed_and_open_each_sold_card_once() {
    let (server, fake) = fake_xero().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        &server.uri(),
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let _daemon = KillOnDrop(
        std::process::Command::new(bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/webhooks/accounting/xero");
    let health = format!("http://127.0.0.1:{port}/healthz");
    for _ in 0..400 {
        if client.get(&health).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let post = |body: Vec<u8>, signature: Option<String>| {
        let mut r = client.post(&url).body(body);
        if let Some(s) = signature {
            r = r.header("x-xero-signature", s);
        }
        async move {
            let resp = r.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };

    // Intent to receive: a right signature 200, a wrong or missing one 401,
    // each with an empty body.
    let itr =
        br#"{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"S0M3ENTR0PY"}"#;
    assert_eq!(
        post(itr.to_vec(), Some(sign(itr))).await,
        (200, String::new())
    );
    let mut wrong = sign(itr);
    wrong.replace_range(0..2, if wrong.starts_with("AA") { "BB" } else { "AA" });
    assert_eq!(post(itr.to_vec(), Some(wrong)).await, (401, String::new()));
    assert_eq!(post(itr.to_vec(), None).await, (401, String::new()));

    let event = |id: &str, at: &str| -> Vec<u8> {
        json!({"events": [{
            "resourceUrl": format!("https://api.xero.com/api.xro/2.0/Invoices/{id}"),
            "resourceId": id, "eventDateUtc": at, "eventType": "UPDATE",
            "eventCategory": "INVOICE", "tenantId": "tenant-1", "tenantType": "ORGANISATION"
        }], "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "X"})
        .to_string()
        .into_bytes()
    };
    let sold = |cfg: &Path| -> Vec<String> {
        status(cfg, &[])
            .lines()
            .filter(|l| l.starts_with("sold "))
            .map(str::to_owned)
            .collect()
    };

    // A card paid for, delivered twice: one card.
    fake.add_sale("S-1", "C-N", "KLIPPEKORT-20", "PAID", false);
    let body = event("S-1", "2026-10-05T10:00:00.000");
    let signed_body = sign(&body);
    assert_eq!(post(body.clone(), Some(signed_body.clone())).await.0, 200);
    assert_eq!(post(body.clone(), Some(signed_body)).await.0, 200);
    // The same invoice announced again by a later event is still one card.
    let later = event("S-1", "2026-10-06T10:00:00.000");
    assert_eq!(post(later.clone(), Some(sign(&later))).await.0, 200);
    let cards = sold(&cfg);
    assert_eq!(cards.len(), 1, "{cards:?}");
    assert!(cards[0].contains("card KLIPPEKORT-20 to nordhavn-arkitekter"));
    assert!(cards[0].contains("18000.00 DKK") && cards[0].contains("2026-10-05"));
    assert_eq!(
        fake.0.lock().unwrap().reads["S-1"],
        2,
        "a repeated delivery reads nothing"
    );

    // Sold twice by mistake, on a second invoice: a second card.
    fake.add_sale("S-2", "C-N", "KLIPPEKORT-20", "PAID", false);
    let second = event("S-2", "2026-10-07T10:00:00.000");
    assert_eq!(post(second.clone(), Some(sign(&second))).await.0, 200);
    assert_eq!(sold(&cfg).len(), 2);

    // `on: paid` waits for the payment; `on: issued` (KLIPPEKORT-10) does not.
    fake.add_sale("S-3", "C-V", "KLIPPEKORT-20", "AUTHORISED", false);
    fake.add_sale("S-4", "C-V", "KLIPPEKORT-10", "AUTHORISED", false);
    for id in ["S-3", "S-4"] {
        let b = event(id, "2026-10-08T10:00:00.000");
        assert_eq!(post(b.clone(), Some(sign(&b))).await.0, 200);
    }
    let cards = sold(&cfg);
    assert_eq!(cards.len(), 3, "{cards:?}");
    assert!(
        cards
            .iter()
            .any(|c| c.contains("card KLIPPEKORT-10 to valby-tandlaege"))
    );
    // A badly signed delivery changes nothing.
    fake.add_sale("S-5", "C-N", "KLIPPEKORT-20", "PAID", false);
    let bad = event("S-5", "2026-10-09T10:00:00.000");
    assert_eq!(
        post(bad, Some(sign(b"something else"))).await,
        (401, String::new())
    );
    assert_eq!(sold(&cfg).len(), 3);
    contract::within_xero(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_used_up_suggests_the_next_once_with_a_draft_that_opens_it() {
    let (server, fake) = fake_xero().await;
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes");
    let cfg = config_with(
        dir.path(),
        &server.uri(),
        &format!(
            "[targets.desk]\ntype = \"folder\"\npath = \"{}\"\n",
            notes.display()
        ),
        "renew",
        "notes = \"desk\"",
    );
    // A 10-punch card, issued on 2026-10-05 (`on: issued`), used up by N-05.
    fake.add_sale("S-10", "C-N", "KLIPPEKORT-10", "AUTHORISED", true);
    let log = run_once_with(&cfg, "2026-10-28T12:00:00Z", &[]);
    let renewal_notes = || -> Vec<Value> {
        std::fs::read_dir(&notes)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|f| {
                        serde_json::from_str(&std::fs::read_to_string(f.path()).unwrap()).unwrap()
                    })
                    .filter(|n: &Value| n["note"]["tag"] == "prepaid-renewal")
                    .collect()
            })
            .unwrap_or_default()
    };
    let mine: Vec<Value> = renewal_notes()
        .into_iter()
        .filter(|n| n["note"]["customer"] == "nordhavn-arkitekter")
        .collect();
    assert_eq!(mine.len(), 1, "{log}");
    // On the customer's next ticket after the card ran out (N-05, 20 Oct): N-06.
    assert_eq!(mine[0]["note"]["ticket"], "N-06");
    // Titled as a renewal, not as an SLA note.
    assert_eq!(
        mine[0]["note"]["subject"],
        "Prepaid renewal: the punch card 2026-10-05 (10 punches) of nordhavn-arkitekter is used up"
    );
    let text = mine[0]["note"]["text"].as_str().unwrap();
    assert!(
        text.contains("punch card 2026-10-05 (10 punches)") && text.contains("KLIPPEKORT-10"),
        "{text}"
    );
    let renewals = |fake: &FakeXero| -> Vec<Value> {
        fake.0
            .lock()
            .unwrap()
            .invoices
            .iter()
            .filter(|i| {
                i["Reference"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("draft:nordhavn-arkitekter:renewal-"))
            })
            .cloned()
            .collect()
    };
    let drafts = renewals(&fake);
    assert_eq!(drafts.len(), 1, "{log}");
    assert_eq!(drafts[0]["Contact"]["ContactID"], "C-N");
    assert_eq!(drafts[0]["LineItems"][0]["ItemCode"], "KLIPPEKORT-10");
    assert_eq!(drafts[0]["LineItems"][0]["UnitAmount"], json!(18000.0));

    // Once: later runs suggest nothing more.
    let first = renewal_notes().len();
    for now in ["2026-10-29T12:00:00Z", "2026-10-30T12:00:00Z"] {
        run_once_with(&cfg, now, &[]);
        assert_eq!(renewal_notes().len(), first);
        assert_eq!(renewals(&fake).len(), 1);
    }

    // Finance issues the renewal draft: it opens the next card.
    let id = drafts[0]["InvoiceID"].as_str().unwrap().to_owned();
    {
        let mut x = fake.0.lock().unwrap();
        let inv = x
            .invoices
            .iter_mut()
            .find(|i| i["InvoiceID"] == id.as_str())
            .unwrap();
        inv["Status"] = json!("AUTHORISED");
        x.listed.push(id.clone());
    }
    run_once_with(&cfg, "2026-10-31T12:00:00Z", &[]);
    let s = status(&cfg, &[]);
    let cards: Vec<&str> = s
        .lines()
        .filter(|l| l.starts_with("sold card KLIPPEKORT-10 to nordhavn-arkitekter"))
        .collect();
    assert_eq!(cards.len(), 2, "{s}");
    assert!(
        cards.iter().any(|c| c.contains(&format!("invoice {id} "))),
        "{s}"
    );
    contract::within_xero(&server).await;
}
