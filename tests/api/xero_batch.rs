//! Batched pushes to Xero (issue 19): many drafts in one lookup and one
//! `PUT /Invoices?summarizeErrors=false`, each invoice judged on its own.
//! The fake answers as Xero documents a batch with `summarizeErrors=false`:
//! 200, every invoice back, each with `StatusAttributeString` `OK` or
//! `ERROR` (then `HasErrors: true` and its `ValidationErrors`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::support::*;
use chrono::{DateTime, Duration, Utc};
use contract_bridge::daemon::{Bridge, CycleReport};
use contract_bridge::settings::Settings;
use serde_json::{Value, json};
use store::Store;
use wiremock::{Request, ResponseTemplate};

/// Xero's message for an archived contact.
const ARCHIVED: &str = "The contact with the specified contact ID has been archived. The contact must be unarchived before it can be used.";

#[derive(Default)]
struct Xero {
    invoices: Vec<Value>,
    /// Requests by method, and the size of every PUT.
    gets: usize,
    puts: Vec<usize>,
    /// The next PUT is stored but answered with a 500.
    lose_next_answer: bool,
    /// Answers by idempotency key.
    keys: BTreeMap<String, Value>,
    /// Creates are answered this late; set when one arrived.
    slow_puts: Option<std::time::Duration>,
    put_arrived: bool,
}

impl xero::Accounting for Xero {
    fn accounting(&mut self, r: &Request, path: &str) -> ResponseTemplate {
        assert_eq!(r.headers.get("xero-tenant-id").unwrap(), "tenant-1");
        if r.method.as_str() == "GET" && path == "/api.xro/2.0/Invoices" {
            self.gets += 1;
            // `IDs=a,b,c`: Xero's filter by InvoiceIDs (the status poll).
            if let Some(ids) = query_param(r, "IDs") {
                let ids: Vec<&str> = ids.split(',').collect();
                let found = xero::found(&self.invoices, |i| {
                    ids.contains(&i["InvoiceID"].as_str().unwrap())
                });
                return ResponseTemplate::new(200)
                    .set_body_json(json!({"Id": "x", "Status": "OK", "Invoices": found}));
            }
            // `where=Reference=="a" OR Reference=="b"`: Xero's filter syntax.
            let filter = query_param(r, "where").unwrap_or_default();
            let wanted: Vec<String> = filter
                .split(" OR ")
                .map(|f| {
                    xero::reference(f)
                        .unwrap_or_else(|| panic!("unexpected filter {filter}"))
                        .to_owned()
                })
                .collect();
            let found = xero::found(&self.invoices, |i| {
                wanted.iter().any(|w| i["Reference"] == w.as_str())
            });
            return ResponseTemplate::new(200)
                .set_body_json(json!({"Id": "x", "Status": "OK", "Invoices": found}));
        }
        if r.method.as_str() == "PUT" && path == "/api.xro/2.0/Invoices" {
            assert_eq!(
                query_param(r, "summarizeErrors").as_deref(),
                Some("false"),
                "a batch asks for every invoice's own result"
            );
            let key = r
                .headers
                .get("idempotency-key")
                .expect("an Idempotency-Key")
                .to_str()
                .unwrap()
                .to_owned();
            assert!(key.len() <= 128);
            if let Some(answer) = self.keys.get(&key) {
                return ResponseTemplate::new(200).set_body_json(answer.clone());
            }
            self.put_arrived = true;
            let delay = self.slow_puts.unwrap_or_default();
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let sent = body["Invoices"].as_array().unwrap().clone();
            self.puts.push(sent.len());
            let mut answered = Vec::new();
            for mut inv in sent {
                assert_eq!(inv["Type"], "ACCREC");
                assert_eq!(inv["Status"], "DRAFT");
                if inv["Contact"]["ContactID"] == "C-ARCHIVED" {
                    inv["HasErrors"] = json!(true);
                    inv["StatusAttributeString"] = json!("ERROR");
                    inv["ValidationErrors"] = json!([{"Message": ARCHIVED}]);
                    answered.push(inv);
                    continue;
                }
                let total: rust_decimal::Decimal = inv["LineItems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| {
                        let q: rust_decimal::Decimal = l["Quantity"].to_string().parse().unwrap();
                        let u: rust_decimal::Decimal = l["UnitAmount"].to_string().parse().unwrap();
                        q * u
                    })
                    .sum();
                inv["InvoiceID"] = json!(format!("inv-{}", self.invoices.len() + 1));
                inv["SubTotal"] = json!(total.round_dp(2).to_string());
                inv["HasErrors"] = json!(false);
                inv["StatusAttributeString"] = json!("OK");
                self.invoices.push(inv.clone());
                answered.push(inv);
            }
            let answer = json!({"Id": "x", "Status": "OK", "Invoices": answered});
            self.keys.insert(key, answer.clone());
            if std::mem::take(&mut self.lose_next_answer) {
                return ResponseTemplate::new(500).set_body_string("upstream lost");
            }
            return ResponseTemplate::new(200)
                .set_body_json(answer)
                .set_delay(delay);
        }
        ResponseTemplate::new(404)
    }
}

fn settings(dir: &Path, uri: &str) -> Settings {
    settings_on(dir, uri, &format!("sqlite://{}/state.db", dir.display()))
}

fn settings_on(dir: &Path, uri: &str, store: &str) -> Settings {
    let text = format!(
        r#"{head}{xero}tenant_id = "tenant-1"
requests_per_second = 1000
timeout_ms = 2000
[targets.xero.contacts]
[outbox]
max_attempts = 3
base_delay_secs = 60
max_delay_secs = 600
batch = 50
"#,
        head = head(store, &examples(), "xero"),
        xero = xero_target(uri, "s3cret"),
    );
    Settings::load(&write_toml(dir, &text)).unwrap()
}

/// Fifty October drafts queued for Xero; the 18th's contact is archived.
async fn queue_fifty(store: &Store, now: DateTime<Utc>) {
    for i in 0..50 {
        let customer = format!("cust-{i:02}");
        let contact = if i == 17 {
            "C-ARCHIVED".to_owned()
        } else {
            format!("C-{i:02}")
        };
        let draft = json!({
            "kind": "draft", "customer": customer, "period": "2026-10", "revision": 1,
            "currency": "EUR", "total_net": format!("{}.00", 100 + i), "date": "2026-11-01",
            "refs": {"contact": contact},
            "lines": [{"kind": "fee", "description": "Monthly fee", "quantity": "1",
                       "unit_price": format!("{}.00", 100 + i), "amount": format!("{}.00", 100 + i),
                       "tickets": []}]
        });
        let key = format!("draft:{customer}:2026-10:r1");
        assert!(
            store
                .enqueue("xero", &key, &draft.to_string(), now)
                .await
                .unwrap()
        );
    }
}

/// A fake Xero that answers as `x` and the fifty drafts of
/// [`queue_fifty`] queued for it, in the store at `store_url` (SQLite in
/// the test's folder when `None`).
struct Fifty {
    fake: Shared<Xero>,
    server: wiremock::MockServer,
    dir: tempfile::TempDir,
    store: Arc<Store>,
    bridge: Arc<Bridge>,
    now: DateTime<Utc>,
}

async fn fifty_queued(x: Xero, store_url: Option<String>) -> Fifty {
    let fake = Shared::new(x);
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = store_url.unwrap_or_else(|| sqlite(dir.path()));
    let store = Arc::new(Store::open_writer(&url).await.unwrap());
    let settings = settings_on(dir.path(), &server.uri(), &url);
    let bridge = Arc::new(Bridge::new(settings, store.clone()).unwrap());
    let now = "2026-11-01T06:00:00Z".parse().unwrap();
    queue_fifty(&store, now).await;
    Fifty {
        fake,
        server,
        dir,
        store,
        bridge,
        now,
    }
}

fn check_outcome(fake: &Shared<Xero>, status: &store::Status) {
    let x = fake.0.lock().unwrap();
    assert_eq!(x.invoices.len(), 49, "the 49 are created once");
    let references: std::collections::BTreeSet<&str> = x
        .invoices
        .iter()
        .map(|i| i["Reference"].as_str().unwrap())
        .collect();
    assert_eq!(references.len(), 49, "no invoice twice");
    assert!(!references.contains("draft:cust-17:2026-10:r1"));
    assert_eq!(status.outbox_sent, 49);
    assert_eq!(status.outbox_dead, 1);
    assert_eq!(status.outbox_pending, 0);
    let failing = &status.failing[0];
    assert_eq!(
        (failing.target.as_str(), failing.key.as_str()),
        ("xero", "draft:cust-17:2026-10:r1")
    );
    let error = &failing.last_error;
    assert!(error.contains(ARCHIVED), "the vendor's message: {error}");
    let remote: std::collections::BTreeSet<&str> =
        status.drafts.iter().map(|d| d.remote_id.as_str()).collect();
    assert_eq!(remote.len(), 49, "each sent draft knows its invoice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_push_where_one_invoice_of_50_is_rejected_pushes_the_49_once_and_dead_letters_the_one()
 {
    let f = fifty_queued(Xero::default(), None).await;
    let (fake, store, bridge, now) = (&f.fake, &f.store, &f.bridge, f.now);
    // The plan `status` shows: fifty drafts, one batch, two requests
    // within Xero's 60 a minute.
    let waiting = store.waiting().await.unwrap();
    assert_eq!(
        waiting,
        vec![store::WaitingTarget {
            target: "xero".into(),
            drafts: 50,
            others: 0
        }]
    );
    let plans = contract_bridge::daemon::plan::plans(
        &settings(f.dir.path(), &f.server.uri()),
        &waiting,
        now,
    );
    assert_eq!(plans.len(), 1);
    assert_eq!((plans[0].requests, plans[0].batch), (2, 50));
    assert_eq!(
        (plans[0].limits.per_minute, plans[0].limits.per_day),
        (60, 5_000)
    );
    assert_eq!(plans[0].completes_at, now + Duration::seconds(2));
    let mut report = CycleReport::default();
    bridge.drain("xero", || now, &mut report).await.unwrap();
    assert_eq!((report.pushed, report.dead), (49, 1));
    {
        let x = fake.0.lock().unwrap();
        assert_eq!(x.gets, 1, "one lookup for the fifty");
        assert_eq!(x.puts, vec![50], "one create request carrying the fifty");
    }
    check_outcome(fake, &store.status().await.unwrap());
    // The status poll asks about the 49 in one request.
    let mut polled = CycleReport::default();
    bridge.poll_ledger(now, &mut polled, false).await.unwrap();
    assert_eq!(polled.status_requests, 1);
    assert_eq!(fake.0.lock().unwrap().gets, 2);
    let status = store.status().await.unwrap();
    assert!(
        status
            .drafts
            .iter()
            .all(|d| d.status.as_deref() == Some("draft")),
        "{:?}",
        status.drafts
    );
    // Nothing is pushed again.
    let later = now + Duration::days(1);
    bridge.drain("xero", || later, &mut report).await.unwrap();
    assert_eq!(fake.0.lock().unwrap().puts, vec![50]);
    check_outcome(fake, &store.status().await.unwrap());
}

/// The batch's answer is lost after Xero stored the 49: the retry finds
/// them by reference and creates only what is missing; the refused one
/// still dead-letters with Xero's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_batch_answer_is_retried_without_duplicates() {
    let losing = Xero {
        lose_next_answer: true,
        ..Xero::default()
    };
    let f = fifty_queued(losing, None).await;
    let (fake, store, bridge, now) = (&f.fake, &f.store, &f.bridge, f.now);
    let mut report = CycleReport::default();
    bridge.drain("xero", || now, &mut report).await.unwrap();
    assert_eq!(
        report.pushed, 0,
        "the answer was lost: nothing is known sent"
    );
    assert_eq!(fake.0.lock().unwrap().invoices.len(), 49);
    let later = now + Duration::hours(2);
    bridge.drain("xero", || later, &mut report).await.unwrap();
    {
        let x = fake.0.lock().unwrap();
        assert_eq!(x.gets, 2);
        assert_eq!(
            x.puts,
            vec![50, 1],
            "the retry creates only the one not found"
        );
    }
    check_outcome(fake, &store.status().await.unwrap());
}

/// No pool connection is held while a push waits on the network (issue
/// 19): on PostgreSQL, while Xero takes its time over the create request,
/// the store has no connection checked out, and another store call goes
/// through at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pool_connection_is_held_while_a_push_waits_on_xero() {
    let slow = Xero {
        slow_puts: Some(std::time::Duration::from_millis(1500)),
        ..Xero::default()
    };
    let f = fifty_queued(slow, Some(postgres_database())).await;
    let (fake, store, bridge, now) = (&f.fake, &f.store, &f.bridge, f.now);
    let pushing = {
        let bridge = bridge.clone();
        tokio::spawn(async move {
            let mut report = CycleReport::default();
            bridge.drain("xero", || now, &mut report).await.unwrap();
            report
        })
    };
    wait_for("the create request", || fake.0.lock().unwrap().put_arrived).await;
    assert_eq!(
        store.connections_in_use(),
        0,
        "a connection is held while Xero answers"
    );
    // Another instance looking for work meanwhile finds the claimed items
    // leased, and is not kept waiting.
    let other = store.claim("xero", now).await.unwrap();
    assert!(other.is_none(), "the fifty are leased to the push in hand");
    let report = pushing.await.unwrap();
    assert_eq!((report.pushed, report.dead), (49, 1));
    check_outcome(fake, &store.status().await.unwrap());
}
