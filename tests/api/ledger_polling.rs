//! Status polling of Fortnox and e-conomic, mocked with wiremock and
//! answered with fixtures shaped as their documentation shows
//! (`tests/fixtures/{fortnox,economic}/`): each pushed draft is followed to
//! booked, paid, cancelled or deleted, one request per open draft (two for
//! an e-conomic draft that left the drafts collection), none once final.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::support::*;
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("tests/fixtures").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[derive(Default)]
struct State {
    /// Answers to GETs by path and query, set by the test.
    answers: BTreeMap<String, (u16, Value)>,
    /// GETs by path and query.
    gets: BTreeMap<String, usize>,
    created: Vec<Value>,
}

/// Fortnox or e-conomic: creates number drafts from 1001 (Fortnox) or 1
/// (e-conomic); a GET is answered as the test set it.
#[derive(Clone)]
struct Fake {
    state: Arc<Mutex<State>>,
    fortnox: bool,
}

impl Fake {
    fn answer(&self, path: &str, status: u16, body: Value) {
        self.state
            .lock()
            .unwrap()
            .answers
            .insert(path.to_owned(), (status, body));
    }

    fn gets(&self) -> BTreeMap<String, usize> {
        self.state.lock().unwrap().gets.clone()
    }
}

impl Respond for Fake {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut s = self.state.lock().unwrap();
        let path = r.url.path().to_owned();
        let query = r
            .url
            .query()
            .map(|q| format!("?{}", urlencoding_decode(q)))
            .unwrap_or_default();
        if path.ends_with("/token") {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "tok", "expires_in": 3600}));
        }
        if self.fortnox {
            assert_eq!(r.headers.get("authorization").unwrap(), "Bearer tok");
        } else {
            assert_eq!(r.headers.get("x-appsecrettoken").unwrap(), "app");
            assert_eq!(r.headers.get("x-agreementgranttoken").unwrap(), "grant");
        }
        match r.method.as_str() {
            "POST" => {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                s.created.push(body);
                let n = s.created.len();
                if self.fortnox {
                    let number = format!("{}", 1000 + n);
                    let mut inv = fixture("fortnox/invoice-unbooked.json");
                    inv["Invoice"]["DocumentNumber"] = json!(number);
                    s.answers
                        .insert(format!("/3/invoices/{number}"), (200, inv.clone()));
                    ResponseTemplate::new(201).set_body_json(inv)
                } else {
                    let mut d = fixture("economic/draft.json");
                    d["draftInvoiceNumber"] = json!(n);
                    s.answers
                        .insert(format!("/invoices/drafts/{n}"), (200, d.clone()));
                    ResponseTemplate::new(201).set_body_json(d)
                }
            }
            "GET" => {
                let key = format!("{path}{query}");
                *s.gets.entry(key.clone()).or_default() += 1;
                if let Some((status, body)) = s.answers.get(&key) {
                    return ResponseTemplate::new(*status).set_body_json(body.clone());
                }
                // A lookup by our reference before a create: nothing yet.
                if self.fortnox {
                    ResponseTemplate::new(200).set_body_json(json!({"Invoices": []}))
                } else {
                    ResponseTemplate::new(200).set_body_json(json!({"collection": []}))
                }
            }
            _ => ResponseTemplate::new(405),
        }
    }
}

fn urlencoding_decode(q: &str) -> String {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn config(dir: &Path, target: &str) -> PathBuf {
    let mapping = examples().join("itech-klippekort.yaml");
    itech_books_config(dir, &mapping, target)
}

/// `key → (remote id, state)` of every pushed draft `status` lists.
fn drafts(cfg: &Path) -> BTreeMap<String, (String, String)> {
    status(cfg, &[])
        .lines()
        .filter_map(|l| l.strip_prefix("draft books "))
        .map(|l| {
            let (key, rest) = l.split_once(" (").unwrap();
            let (id, state) = rest.split_once("): ").unwrap();
            let state = state.split(" (").next().unwrap();
            (key.to_owned(), (id.to_owned(), state.to_owned()))
        })
        .collect()
}

const N: &str = "draft:nordhavn-arkitekter:2026-10:r1";
const V: &str = "draft:valby-tandlaege:2026-10:r1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fortnox_drafts_are_followed_to_booked_paid_cancelled_and_gone() {
    let fake = Fake {
        state: Arc::default(),
        fortnox: true,
    };
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &fortnox_books(&server.uri()));
    run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    let d = drafts(&cfg);
    assert_eq!(d[N].1, "draft");
    assert_eq!(d[V].1, "draft");
    let (n, v) = (d[N].0.clone(), d[V].0.clone());

    fake.answer(
        &format!("/3/invoices/{n}"),
        200,
        fixture("fortnox/invoice-booked-sent.json"),
    );
    fake.answer(
        &format!("/3/invoices/{v}"),
        200,
        fixture("fortnox/invoice-cancelled.json"),
    );
    let log = run_once_with(&cfg, "2026-11-03T12:00:00Z", &[]);
    assert_eq!(ledger_requests(&log), 2, "one per open draft: {log}");
    let d = drafts(&cfg);
    assert_eq!((d[N].1.as_str(), d[V].1.as_str()), ("approved", "voided"));

    fake.answer(
        &format!("/3/invoices/{n}"),
        200,
        fixture("fortnox/invoice-paid.json"),
    );
    run_once_with(&cfg, "2026-11-04T12:00:00Z", &[]);
    assert_eq!(drafts(&cfg)[N].1, "paid");
    let before = fake.gets();
    let log = run_once_with(&cfg, "2026-11-05T12:00:00Z", &[]);
    assert_eq!(
        fake.gets(),
        before,
        "final drafts are not asked about: {log}"
    );
    assert_eq!(fake.state.lock().unwrap().created.len(), 2);

    // A draft that is gone (404 with Fortnox's error) is deleted.
    let dir2 = tempfile::tempdir().unwrap();
    let cfg2 = config(dir2.path(), &fortnox_books(&server.uri()));
    run_once_with(&cfg2, "2026-11-02T12:00:00Z", &[]);
    let d = drafts(&cfg2);
    fake.answer(
        &format!("/3/invoices/{}", d[N].0),
        404,
        fixture("fortnox/invoice-not-found.json"),
    );
    run_once_with(&cfg2, "2026-11-03T12:00:00Z", &[]);
    assert_eq!(drafts(&cfg2)[N].1, "deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn economic_drafts_are_followed_into_the_booked_collection() {
    let fake = Fake {
        state: Arc::default(),
        fortnox: false,
    };
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &economic_books(&server.uri()));
    run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    let d = drafts(&cfg);
    assert_eq!((d[N].1.as_str(), d[V].1.as_str()), ("draft", "draft"));
    let booked = |key: &str| format!("/invoices/booked?filter=notes.textLine1$eq:{key}");

    // Booked: gone from the drafts, found in the booked collection by our reference.
    let not_found = fixture("economic/not-found.json");
    fake.answer(
        &format!("/invoices/drafts/{}", d[N].0),
        404,
        not_found.clone(),
    );
    fake.answer(&booked(N), 200, fixture("economic/booked-unpaid.json"));
    // Deleted: in neither.
    fake.answer(&format!("/invoices/drafts/{}", d[V].0), 404, not_found);
    fake.answer(&booked(V), 200, fixture("economic/booked-none.json"));
    let log = run_once_with(&cfg, "2026-11-03T12:00:00Z", &[]);
    assert_eq!(ledger_requests(&log), 4, "two per draft that left: {log}");
    let d2 = drafts(&cfg);
    assert_eq!(
        (d2[N].1.as_str(), d2[V].1.as_str()),
        ("approved", "deleted")
    );

    fake.answer(&booked(N), 200, fixture("economic/booked-paid.json"));
    run_once_with(&cfg, "2026-11-04T12:00:00Z", &[]);
    assert_eq!(drafts(&cfg)[N].1, "paid");
    let before = fake.gets();
    run_once_with(&cfg, "2026-11-05T12:00:00Z", &[]);
    assert_eq!(fake.gets(), before, "final drafts are not asked about");
    assert_eq!(
        fake.state.lock().unwrap().created.len(),
        2,
        "nothing pushed again"
    );
}
