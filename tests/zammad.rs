//! Zammad, mocked with wiremock in the shapes its API documentation and
//! source show (`tests/fixtures/zammad/`), holding lv-it's October tickets:
//! the daemon syncs them page by page into the same bills the offline
//! command makes from the export, notes SLA breaches on the tickets with a
//! tag exactly once, and takes signed Trigger webhooks.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use support::*;
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

#[derive(Default)]
struct Desk {
    tickets: Vec<Value>,
    /// Ticket id → state changes `(at, from, to)`.
    history: BTreeMap<i64, Vec<(String, String, String)>>,
    /// Time accounting rows (`by_activity` shape).
    time: Vec<Value>,
    organizations: Vec<String>,
    users: Vec<String>,
    articles: BTreeMap<i64, Vec<Value>>,
    tags: BTreeMap<i64, Vec<String>>,
    requests: usize,
    searches: usize,
    ticket_reads: usize,
    /// Answer this search page with broken JSON, once.
    malformed_page: Option<usize>,
    /// Answer the next history request with a 503.
    history_unavailable: bool,
}

#[derive(Clone)]
struct FakeZammad(Arc<Mutex<Desk>>);

const STATES: [&str; 5] = ["new", "open", "pending customer", "closed", "merged"];
const PRIORITIES: [&str; 4] = ["1 low", "2 normal", "3 high", "4 critical"];

/// lv-it's export as Zammad would hold it.
fn desk_from_export() -> Desk {
    let export: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/scenarios/lv-it/tickets.json"))
            .unwrap(),
    )
    .unwrap();
    let mut d = Desk::default();
    for (i, t) in export["tickets"].as_array().unwrap().iter().enumerate() {
        let id = i as i64 + 1;
        let org = t["customer"].as_str().unwrap().to_owned();
        if !d.organizations.contains(&org) {
            d.organizations.push(org.clone());
        }
        let requester = t["requester"]
            .as_str()
            .unwrap_or("someone@example.com")
            .to_owned();
        if !d.users.contains(&requester) {
            d.users.push(requester.clone());
        }
        let states: Vec<(String, String)> = t["states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["at"].as_str().unwrap().to_owned(),
                    s["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let changes: Vec<(String, String, String)> = states
            .windows(2)
            .map(|w| (w[1].0.clone(), w[0].1.clone(), w[1].1.clone()))
            .collect();
        let current = states.last().map_or("new".to_owned(), |s| s.1.clone());
        let mut updated = t["created_at"].as_str().unwrap().to_owned();
        for w in t["work"].as_array().unwrap() {
            let kind = match w["kind"].as_str().unwrap() {
                "onsite" => "On site",
                "phone" => "Phone",
                _ => "Remote",
            };
            d.time.push(json!({
                "ticket": {"id": id, "number": t["id"], "title": t["title"]},
                "time_unit": format!("{}.0", w["minutes"]),
                "type": kind,
                "customer": requester,
                "organization": org,
                "agent": w["agent"],
                "created_at": w["at"],
            }));
            updated = updated.max(w["at"].as_str().unwrap().to_owned());
        }
        for (at, _, _) in &changes {
            updated = updated.max(at.clone());
        }
        d.history.insert(id, changes);
        let org_id = d.organizations.iter().position(|o| *o == org).unwrap() + 1;
        let user_id = d.users.iter().position(|u| *u == requester).unwrap() + 1;
        d.tickets.push(json!({
            "id": id, "number": t["id"], "title": t["title"], "group_id": 1,
            "state_id": STATES.iter().position(|s| *s == current).unwrap() + 1,
            "priority_id": PRIORITIES.iter().position(|p| Some(*p) == t["priority"].as_str()).unwrap() + 1,
            "organization_id": org_id, "customer_id": user_id,
            "category": t["category"],
            "first_response_at": t["first_response_at"], "close_at": t["resolved_at"],
            "created_at": t["created_at"], "updated_at": updated,
        }));
    }
    d
}

fn assets(d: &Desk, tickets: &[&Value]) -> Value {
    let mut ticket_assets = serde_json::Map::new();
    for t in tickets {
        ticket_assets.insert(t["id"].to_string(), (*t).clone());
    }
    let named = |names: &[&str]| -> Value {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| ((i + 1).to_string(), json!({"id": i + 1, "name": n})))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let orgs: Vec<&str> = d.organizations.iter().map(String::as_str).collect();
    let users: serde_json::Map<String, Value> = d
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            (
                (i + 1).to_string(),
                json!({"id": i + 1, "email": u, "login": u}),
            )
        })
        .collect();
    json!({
        "Ticket": ticket_assets,
        "TicketState": named(&STATES),
        "TicketPriority": named(&PRIORITIES),
        "Organization": named(&orgs),
        "User": users,
    })
}

impl Respond for FakeZammad {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut d = self.0.lock().unwrap();
        if r.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Token token=z-t0k")
        {
            return ResponseTemplate::new(401).set_body_json(json!({"error": "Invalid token!"}));
        }
        d.requests += 1;
        let path = r.url.path().to_owned();
        let q = |name: &str| query_param(r, name);
        match (r.method.as_str(), path.as_str()) {
            ("GET", "/api/v1/tickets/search") => {
                d.searches += 1;
                let query = q("query").unwrap();
                let since = query.split('"').nth(1).map(str::to_owned);
                let per_page: usize = q("per_page").unwrap().parse().unwrap();
                let page: usize = q("page").unwrap().parse().unwrap();
                if d.malformed_page == Some(page) {
                    d.malformed_page = None;
                    return ResponseTemplate::new(200).set_body_string("{\"tickets\": [1, 2");
                }
                let mut hits: Vec<&Value> = d
                    .tickets
                    .iter()
                    .filter(|t| {
                        since
                            .as_deref()
                            .is_none_or(|s| t["updated_at"].as_str().unwrap() >= s)
                    })
                    .collect();
                hits.sort_by_key(|t| t["updated_at"].as_str().unwrap().to_owned());
                let hits: Vec<&Value> = hits
                    .into_iter()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .collect();
                let ids: Vec<Value> = hits.iter().map(|t| t["id"].clone()).collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "tickets": ids, "tickets_count": ids.len(), "assets": assets(&d, &hits)}))
            }
            ("GET", p) if p.starts_with("/api/v1/ticket_history/") && d.history_unavailable => {
                d.history_unavailable = false;
                ResponseTemplate::new(503).set_body_string("Service Unavailable")
            }
            ("GET", p) if p.starts_with("/api/v1/ticket_history/") => {
                let id: i64 = p.rsplit('/').next().unwrap().parse().unwrap();
                let history: Vec<Value> = d.history[&id]
                    .iter()
                    .map(|(at, from, to)| json!({"o_id": id, "history_type": "updated", "history_object": "Ticket",
                        "history_attribute": "state", "value_from": from, "value_to": to, "created_at": at}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"history": history, "assets": {}}))
            }
            ("GET", p) if p.starts_with("/api/v1/time_accounting/log/by_activity/") => {
                let parts: Vec<&str> = p.rsplit('/').take(2).collect();
                let month = format!("{}-{:02}", parts[1], parts[0].parse::<u32>().unwrap());
                let rows: Vec<Value> = d
                    .time
                    .iter()
                    .filter(|row| row["created_at"].as_str().unwrap().starts_with(&month))
                    .cloned()
                    .collect();
                ResponseTemplate::new(200).set_body_json(rows)
            }
            ("GET", p) if p.starts_with("/api/v1/tickets/") => {
                d.ticket_reads += 1;
                let id: i64 = p.rsplit('/').next().unwrap().parse().unwrap();
                let Some(t) = d.tickets.iter().find(|t| t["id"] == id).cloned() else {
                    return ResponseTemplate::new(404)
                        .set_body_json(json!({"error": "No such object."}));
                };
                // `expand=true`: names next to the ids.
                let mut t = t;
                t["state"] = json!(STATES[t["state_id"].as_u64().unwrap() as usize - 1]);
                t["priority"] = json!(PRIORITIES[t["priority_id"].as_u64().unwrap() as usize - 1]);
                t["organization"] =
                    json!(d.organizations[t["organization_id"].as_u64().unwrap() as usize - 1]);
                t["customer"] = json!(d.users[t["customer_id"].as_u64().unwrap() as usize - 1]);
                ResponseTemplate::new(200).set_body_json(t)
            }
            ("GET", p) if p.starts_with("/api/v1/ticket_articles/by_ticket/") => {
                let id: i64 = p.rsplit('/').next().unwrap().parse().unwrap();
                ResponseTemplate::new(200)
                    .set_body_json(d.articles.get(&id).cloned().unwrap_or_default())
            }
            ("POST", "/api/v1/ticket_articles") => {
                let a: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(a["internal"], true);
                assert!(a.get("time_unit").is_none(), "a note never bills time");
                let id = a["ticket_id"].as_i64().unwrap();
                d.articles.entry(id).or_default().push(a.clone());
                ResponseTemplate::new(201).set_body_json(a)
            }
            ("POST", "/api/v1/tags/add") => {
                let t: Value = serde_json::from_slice(&r.body).unwrap();
                let id = t["o_id"].as_i64().unwrap();
                let tags = d.tags.entry(id).or_default();
                let tag = t["item"].as_str().unwrap().to_owned();
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
                ResponseTemplate::new(201).set_body_json(json!(true))
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

fn config(dir: &Path, uri: &str, token: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
[store]
url = "sqlite://{dir}/state.db"
[mapping]
path = "{mappings}"
[billing]
first_period = "2026-10"
target = "drafts"
[sources.desk]
type = "zammad"
url = "{uri}"
token = "{token}"
per_page = 4
notes = "desk"
webhook_secret = "zw-s3cret"
requests_per_second = 1000
[targets.drafts]
type = "folder"
path = "{dir}/drafts"
{extra}
"#,
        dir = dir.display(),
        mappings = examples_with(
            dir,
            "sources:\n  desk:\n    customers:\n      riga-bakery: riga-bakery\n      daugava-logistics: daugava-logistics\n      jurmala-hotel: jurmala-hotel\n    kinds:\n      On site: onsite\n      Phone: phone\n"
        )
        .display(),
    );
    let path = dir.join("bridge.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_once(config: &Path, now: &str) -> String {
    run_once_with(config, now, &[])
}

fn draft_total(dir: &Path, customer: &str) -> String {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("drafts/draft_{customer}_2026-10_r1.json")))
            .unwrap(),
    )
    .unwrap();
    v["draft"]["total_net"].as_str().unwrap().to_owned()
}

async fn fake() -> (FakeZammad, MockServer) {
    let fake = FakeZammad(Arc::new(Mutex::new(desk_from_export())));
    let server = serve(fake.clone()).await;
    (fake, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_synced_from_zammad_bills_as_the_export_does_and_notes_once() {
    let (fake, server) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri(), "z-t0k", "");
    let first = run_once(&cfg, NOW);
    let tickets = fake.0.lock().unwrap().tickets.len();
    assert!(
        first.contains(&format!("{tickets} ticket(s) changed")),
        "{first}"
    );
    for (customer, total) in expected_october_totals() {
        if ["riga-bakery", "daugava-logistics", "jurmala-hotel"].contains(&customer.as_str()) {
            assert_eq!(draft_total(dir.path(), &customer), total, "{customer}");
        }
    }
    let (requests, notes) = {
        let d = fake.0.lock().unwrap();
        let notes: usize = d.articles.values().map(Vec::len).sum();
        (d.requests, notes)
    };
    let note_requests = 3 * notes;
    eprintln!(
        "zammad: {} requests to read {tickets} tickets ({:.2} per ticket), {notes} notes with tags in {note_requests} requests",
        requests - note_requests,
        (requests - note_requests) as f64 / tickets as f64
    );
    // A second run: nothing changed but the last ticket (the cursor is
    // inclusive), nothing noted twice.
    let second = run_once(&cfg, "2026-11-23T13:00:00Z");
    assert!(second.contains("0 ticket(s) changed"), "{second}");
    let d = fake.0.lock().unwrap();
    for (id, articles) in &d.articles {
        let mut markers: Vec<&str> = articles
            .iter()
            .map(|a| a["body"].as_str().unwrap())
            .collect();
        markers.sort();
        markers.dedup();
        assert_eq!(markers.len(), articles.len(), "ticket {id} noted twice");
        assert!(
            d.tags[id].iter().any(|t| t.starts_with("sla-")),
            "ticket {id} tagged"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_one_clear_error_not_a_retry_storm() {
    let (fake, server) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri(), "wrong", "");
    let out = run_once(&cfg, NOW);
    assert!(
        out.contains("source desk: zammad: HTTP 401: Invalid token! (check the source's token"),
        "{out}"
    );
    assert_eq!(
        fake.0.lock().unwrap().requests,
        0,
        "refused requests are not counted by the fake"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zammad_webhooks_are_verified_deduplicated_and_read_the_ticket_again() {
    let (fake, server) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        &server.uri(),
        "z-t0k",
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n[schedule]\npoll = \"0 0 0 1 1 *\""),
    );
    let _daemon = KillOnDrop(
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/webhooks/desk");
    let start = Instant::now();
    wait_ready(&client, &format!("http://127.0.0.1:{port}")).await;
    // The start-up sync first; then an agent edits ticket 2 and Zammad calls.
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    loop {
        let m = client
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.contains("contract_bridge_tickets 10") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fake.0.lock().unwrap().tickets[1]["title"] = json!("Cash register offline again");
    let reads_before = fake.0.lock().unwrap().ticket_reads;
    let body = r#"{"ticket":{"id":2,"number":"T-1002","state":"closed"},"article":{"id":104,"internal":false}}"#;
    let sign_body = |secret: &str, body: &str| {
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
    };
    let sign = |secret: &str| sign_body(secret, body);
    let post = |sig: String, delivery: &'static str| {
        client
            .post(&url)
            .header("X-Hub-Signature", sig)
            .header("X-Zammad-Delivery", delivery)
            .header("X-Zammad-Trigger", "ticket updated")
            .body(body)
            .send()
    };
    assert_eq!(post(sign("wrong"), "d-1").await.unwrap().status(), 401);
    let ok = post(sign("zw-s3cret"), "d-1").await.unwrap();
    assert_eq!(ok.status(), 202);
    assert!(ok.text().await.unwrap().contains("\"changed\":1"));
    assert_eq!(
        post(sign("zw-s3cret"), "d-1").await.unwrap().status(),
        200,
        "the same delivery again: a duplicate, not a second 202"
    );
    assert_eq!(
        post(sign("zw-s3cret"), "d-2").await.unwrap().status(),
        202,
        "a new delivery"
    );
    assert_eq!(
        fake.0.lock().unwrap().ticket_reads - reads_before,
        2,
        "each accepted delivery reads the ticket again"
    );
    // Ticket 3 is deleted in Zammad after a trigger fired for it: read
    // again, it is gone, and it is no longer held (nor billed).
    fake.0.lock().unwrap().tickets.remove(2);
    let body3 = body.replace("\"id\":2", "\"id\":3");
    let gone = client
        .post(&url)
        .header("X-Hub-Signature", sign_body("zw-s3cret", &body3))
        .header("X-Zammad-Delivery", "d-3")
        .body(body3)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 202);
    assert!(gone.text().await.unwrap().contains("\"deleted\":1"));
    let m = client.get(&metrics).send().await.unwrap();
    let m = m.text().await.unwrap();
    assert!(m.contains("contract_bridge_tickets 9"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_page_or_a_503_stores_nothing_and_the_next_poll_reads_everything() {
    let (fake, server) = fake().await;
    {
        let mut d = fake.0.lock().unwrap();
        d.malformed_page = Some(2);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri(), "z-t0k", "");
    let broken = run_once(&cfg, NOW);
    assert!(broken.contains("0 ticket(s) changed"), "{broken}");
    assert!(
        broken.contains("source desk: zammad: HTTP 200: the answer is not JSON"),
        "{broken}"
    );
    fake.0.lock().unwrap().history_unavailable = true;
    let unavailable = run_once(&cfg, NOW);
    assert!(unavailable.contains("0 ticket(s) changed"), "{unavailable}");
    assert!(unavailable.contains("zammad: HTTP 503"), "{unavailable}");
    // The cursor never moved: the next poll reads every ticket.
    let tickets = fake.0.lock().unwrap().tickets.len();
    let ok = run_once(&cfg, NOW);
    assert!(ok.contains(&format!("{tickets} ticket(s) changed")), "{ok}");
}

/// October's totals as the offline command bills `export` (the oracle).
fn october_totals(export: &Value) -> BTreeMap<String, rust_decimal::Decimal> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    std::fs::write(&file, export.to_string()).unwrap();
    let bill = offline_bill(&root().join("mappings/examples"), &file, "2026-10");
    bill["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["customer"].as_str().unwrap().to_owned(),
                i["total_net"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_edited_after_billing_and_a_merge_are_read_again_and_billed_once() {
    let (fake, server) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri(), "z-t0k", "");
    run_once(&cfg, NOW);

    let lv = root().join("tests/fixtures/scenarios/lv-it/tickets.json");
    let mut export: Value = serde_json::from_str(&std::fs::read_to_string(&lv).unwrap()).unwrap();
    let billed = october_totals(&export);
    {
        let mut d = fake.0.lock().unwrap();
        // Ticket 1 (T-1001): an agent corrects 20 logged minutes to 80 after
        // October was billed; Zammad touches the ticket when time changes.
        let row = d.time.iter_mut().find(|r| r["ticket"]["id"] == 1).unwrap();
        row["time_unit"] = json!("80.0");
        d.tickets[0]["updated_at"] = json!("2026-11-25T09:00:00Z");
        // Ticket 8 (T-2004) is merged into ticket 7 (T-2003): its time moves
        // with it, and it ends as `merged`.
        for row in d.time.iter_mut().filter(|r| r["ticket"]["id"] == 8) {
            row["ticket"]["id"] = json!(7);
        }
        let at = "2026-11-25T09:05:00Z";
        d.tickets[7]["state_id"] = json!(5);
        d.tickets[7]["close_at"] = json!(at);
        d.tickets[7]["updated_at"] = json!(at);
        d.tickets[6]["updated_at"] = json!(at);
        d.history
            .get_mut(&8)
            .unwrap()
            .push((at.into(), "open".into(), "merged".into()));
    }
    // The same changes in the export, for the offline oracle.
    let tickets = export["tickets"].as_array_mut().unwrap();
    tickets[0]["work"][0]["minutes"] = json!(80);
    let moved = tickets[7]["work"].take();
    tickets[7]["work"] = json!([]);
    tickets[7]["resolved_at"] = json!("2026-11-25T09:05:00Z");
    tickets[7]["states"]
        .as_array_mut()
        .unwrap()
        .push(json!({"at": "2026-11-25T09:05:00Z", "state": "merged"}));
    for w in moved.as_array().unwrap() {
        tickets[6]["work"].as_array_mut().unwrap().push(w.clone());
    }
    let rebilled = october_totals(&export);

    let december = run_once(&cfg, "2026-12-01T12:00:00Z");
    assert!(december.contains("3 ticket(s) changed"), "{december}");
    for customer in ["riga-bakery", "daugava-logistics"] {
        let expected = rebilled[customer] - billed[customer];
        let path = dir
            .path()
            .join(format!("drafts/draft_{customer}_2026-11_r1.json"));
        let corrected = std::fs::read_to_string(&path).map_or(rust_decimal::Decimal::ZERO, |t| {
            corrections_of(&serde_json::from_str(&t).unwrap(), "2026-10")
        });
        assert_eq!(
            corrected, expected,
            "{customer}: October corrected by what the offline bill of the changed export adds"
        );
    }
    assert_ne!(
        rebilled["riga-bakery"], billed["riga-bakery"],
        "the edit costs something"
    );
    // October's pushed drafts are never changed.
    assert_eq!(
        draft_total(dir.path(), "riga-bakery"),
        billed["riga-bakery"].to_string()
    );
}

#[test]
fn a_helpdesk_source_without_its_mapping_section_is_refused_by_check_and_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "http://127.0.0.1:9", "z-t0k", "");
    let with = dir.path().join("mapping");
    let check = |mapping: &Path| {
        Command::new(bin())
            .args(["check", "--mapping"])
            .arg(mapping)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let ok = check(&with);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = check(&root().join("mappings/examples"));
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("no `sources.desk` section"), "{err}");
    // The daemon refuses such a mapping the same way, and syncs nothing.
    std::fs::remove_file(with.join("sources.yaml")).unwrap();
    let out = Command::new(bin())
        .args(["run", "--once", "--now", NOW, "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("no sources.desk section"), "{err}");
}
