//! Zammad, mocked with wiremock in the shapes its API documentation and
//! source show (`tests/fixtures/zammad/`), holding a scenario's October
//! tickets (lv-it, akte-sla): the daemon syncs them page by page into the
//! same bills the offline command makes from the export, notes SLA breaches
//! on the tickets with a tag exactly once, and takes signed Trigger webhooks.
//!
//! What the fake answers, and where the shape comes from (zammad/zammad):
//! - `GET /api/v1/tickets/search`: `{tickets, tickets_count, assets}`, the
//!   assets being what `Ticket#assets` adds (app/models/ticket/assets.rb):
//!   the tickets, their users and those users' organizations; no
//!   `TicketPriority`, no `TicketState` (app/controllers/tickets_controller.rb#search).
//! - `GET /api/v1/ticket_priorities`, `GET /api/v1/ticket_states?expand=true`:
//!   the generic model index (`model_index_render`), `expand=true` naming
//!   the state type (`attributes_with_association_names`).
//! - `GET /api/v1/ticket_history/{id}`: `{history, assets}` (`history_get(true)`).
//! - `GET /api/v1/tickets/{id}/time_accountings`, `GET /api/v1/time_accounting/types`,
//!   `GET /api/v1/ticket_articles/by_ticket/{id}`, `GET /api/v1/tags?object=Ticket&o_id={id}`,
//!   `POST /api/v1/ticket_articles`, `POST /api/v1/tags/add`: as in
//!   zammad-documentation api/ticket/{timeaccounting,articles,tags}.rst.
//! - `GET /api/v1/tickets/{id}?expand=true`: the ticket with association names.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

#[derive(Default)]
struct Desk {
    tickets: Vec<Value>,
    /// Ticket id → state changes `(at, from, to)`.
    history: BTreeMap<i64, Vec<(String, String, String)>>,
    /// Ticket id → tags, added when the ticket was created.
    tag_history: BTreeMap<i64, Vec<(String, String)>>,
    /// Time accounting records (`/tickets/{id}/time_accountings` shape).
    time: Vec<Value>,
    organizations: Vec<String>,
    users: Vec<String>,
    agents: Vec<String>,
    articles: BTreeMap<i64, Vec<Value>>,
    tags: BTreeMap<i64, Vec<String>>,
    requests: usize,
    searches: usize,
    ticket_reads: usize,
    /// Requests by path kind (`history`, `time_accountings`, …).
    by_kind: BTreeMap<&'static str, usize>,
    /// Answer this search page with broken JSON, once.
    malformed_page: Option<usize>,
    /// Answer every history request with a 503 while set.
    history_unavailable: bool,
    /// Refuse this many tag additions (422), then take them.
    tag_refusals: usize,
}

#[derive(Clone)]
struct FakeZammad(Arc<Mutex<Desk>>);

/// State names with their state types (`Ticket::StateType`).
const STATES: [(&str, &str); 5] = [
    ("new", "new"),
    ("open", "open"),
    ("pending customer", "pending action"),
    ("closed", "closed"),
    ("merged", "merged"),
];
const PRIORITIES: [&str; 4] = ["1 low", "2 normal", "3 high", "4 critical"];
/// Time accounting types (activities), by id from 1.
const TYPES: [&str; 3] = ["Remote", "On site", "Phone"];

/// Zammad answers in UTC.
fn utc(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A scenario's export as Zammad would hold it: internal ids from 1, the
/// export's ids as the ticket numbers.
fn desk_from_export(scenario: &str) -> Desk {
    let export: Value = serde_json::from_str(
        &std::fs::read_to_string(
            root().join(format!("tests/fixtures/scenarios/{scenario}/tickets.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let mut d = Desk::default();
    let mut article = 1000;
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
                    utc(s["at"].as_str().unwrap()),
                    s["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let changes: Vec<(String, String, String)> = states
            .windows(2)
            .map(|w| (w[1].0.clone(), w[0].1.clone(), w[1].1.clone()))
            .collect();
        let current = states.last().map_or("new".to_owned(), |s| s.1.clone());
        let created = utc(t["created_at"].as_str().unwrap());
        let mut updated = created.clone();
        for (n, w) in t["work"].as_array().unwrap().iter().enumerate() {
            let kind = match w["kind"].as_str().unwrap() {
                "onsite" => 2,
                "phone" => 3,
                _ => 1,
            };
            let agent = w["agent"].as_str().unwrap_or("agent").to_owned();
            if !d.agents.contains(&agent) {
                d.agents.push(agent.clone());
            }
            let by = 100 + d.agents.iter().position(|a| *a == agent).unwrap() as i64;
            let at = utc(w["at"].as_str().unwrap());
            article += 1;
            // The agent logs the time with an internal note: its text is the work's note.
            d.articles.entry(id).or_default().push(json!({
                "id": article, "ticket_id": id, "type": "note", "internal": true,
                "body": w["note"].as_str().unwrap_or("work"), "content_type": "text/plain",
                "created_by_id": by, "created_at": at,
            }));
            d.time.push(json!({
                "id": id * 100 + n as i64, "ticket_id": id, "ticket_article_id": article,
                "time_unit": format!("{}.0", w["minutes"]), "type_id": kind,
                "created_by_id": by, "created_at": at, "updated_at": at,
            }));
            updated = updated.max(at);
        }
        for (at, _, _) in &changes {
            updated = updated.max(at.clone());
        }
        d.history.insert(id, changes);
        let tags: Vec<(String, String)> = t["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tag| (created.clone(), tag.as_str().unwrap().to_owned()))
            .collect();
        d.tags
            .insert(id, tags.iter().map(|(_, t)| t.clone()).collect());
        d.tag_history.insert(id, tags);
        let org_id = d.organizations.iter().position(|o| *o == org).unwrap() + 1;
        let user_id = d.users.iter().position(|u| *u == requester).unwrap() + 1;
        d.tickets.push(json!({
            "id": id, "number": t["id"], "title": t["title"], "group_id": 1,
            "state_id": STATES.iter().position(|s| s.0 == current).unwrap() + 1,
            "priority_id": PRIORITIES.iter().position(|p| Some(*p) == t["priority"].as_str()).unwrap() + 1,
            "organization_id": org_id, "customer_id": user_id,
            "category": t["category"],
            "first_response_at": t["first_response_at"].as_str().map(utc),
            "close_at": t["resolved_at"].as_str().map(utc),
            "created_at": created, "updated_at": updated,
        }));
    }
    d
}

impl Desk {
    /// A ticket's attributes as Zammad sends them, with `time_unit` the sum
    /// of its accounted time (null when it has none).
    fn ticket(&self, t: &Value) -> Value {
        let mut t = t.clone();
        let units: Vec<f64> = self
            .time
            .iter()
            .filter(|r| r["ticket_id"] == t["id"])
            .map(|r| r["time_unit"].as_str().unwrap().parse::<f64>().unwrap())
            .collect();
        t["time_unit"] = if units.is_empty() {
            Value::Null
        } else {
            json!(format!("{:.1}", units.iter().sum::<f64>()))
        };
        t
    }

    fn assets(&self, tickets: &[&Value]) -> Value {
        let mut ticket_assets = serde_json::Map::new();
        let mut users = serde_json::Map::new();
        let mut orgs = serde_json::Map::new();
        for t in tickets {
            ticket_assets.insert(t["id"].to_string(), self.ticket(t));
            let user = t["customer_id"].as_u64().unwrap() as usize;
            let org = t["organization_id"].as_u64().unwrap() as usize;
            let email = &self.users[user - 1];
            users.insert(
                user.to_string(),
                json!({"id": user, "email": email, "login": email, "firstname": "", "lastname": "", "organization_id": org}),
            );
            orgs.insert(
                org.to_string(),
                json!({"id": org, "name": self.organizations[org - 1], "active": true}),
            );
        }
        json!({"Ticket": ticket_assets, "User": users, "Organization": orgs})
    }

    fn count(&mut self, kind: &'static str) {
        *self.by_kind.entry(kind).or_default() += 1;
    }
}

fn last_number(path: &str) -> i64 {
    path.rsplit('/').next().unwrap().parse().unwrap()
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
            ("GET", "/api/v1/tickets/search") if q("query").unwrap().starts_with("number:") => {
                d.count("search by number");
                let query = q("query").unwrap();
                let number = query.split('"').nth(1).unwrap().to_owned();
                let hits: Vec<&Value> = d
                    .tickets
                    .iter()
                    .filter(|t| t["number"] == number.as_str())
                    .collect();
                let ids: Vec<Value> = hits.iter().map(|t| t["id"].clone()).collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "tickets": ids, "tickets_count": ids.len(), "assets": d.assets(&hits)}))
            }
            ("GET", "/api/v1/tickets/search") => {
                d.searches += 1;
                d.count("search");
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
                    "tickets": ids, "tickets_count": ids.len(), "assets": d.assets(&hits)}))
            }
            ("GET", "/api/v1/ticket_priorities") => {
                d.count("priorities");
                let list: Vec<Value> = PRIORITIES
                    .iter()
                    .enumerate()
                    .map(|(i, p)| json!({"id": i + 1, "name": p, "default_create": i == 1, "active": true}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(list)
            }
            ("GET", "/api/v1/ticket_states") => {
                d.count("states");
                assert_eq!(q("expand").as_deref(), Some("true"));
                let list: Vec<Value> = STATES
                    .iter()
                    .enumerate()
                    .map(|(i, (name, kind))| json!({"id": i + 1, "name": name, "state_type_id": i + 1, "state_type": kind, "active": true}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(list)
            }
            ("GET", "/api/v1/time_accounting/types") => {
                d.count("types");
                let list: Vec<Value> = TYPES
                    .iter()
                    .enumerate()
                    .map(|(i, n)| json!({"id": i + 1, "name": n, "note": "", "active": true}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(list)
            }
            ("GET", p) if p.starts_with("/api/v1/ticket_history/") && d.history_unavailable => {
                ResponseTemplate::new(503).set_body_string("Service Unavailable")
            }
            ("GET", p) if p.starts_with("/api/v1/ticket_history/") => {
                d.count("history");
                let id = last_number(p);
                let mut history: Vec<Value> = d.history[&id]
                    .iter()
                    .map(|(at, from, to)| json!({"o_id": id, "history_type": "updated", "history_object": "Ticket",
                        "history_attribute": "state", "value_from": from, "value_to": to, "created_at": at}))
                    .collect();
                history.extend(d.tag_history[&id].iter().map(|(at, tag)| json!({"o_id": id, "history_type": "added",
                    "history_object": "Ticket", "history_attribute": "tag", "value_from": null, "value_to": tag, "created_at": at})));
                let users: serde_json::Map<String, Value> = d
                    .agents
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        (
                            (100 + i).to_string(),
                            json!({"id": 100 + i, "login": a, "firstname": a, "lastname": ""}),
                        )
                    })
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({"history": history, "assets": {"User": users}}))
            }
            ("GET", p) if p.starts_with("/api/v1/tickets/") && p.ends_with("/time_accountings") => {
                d.count("time_accountings");
                let id: i64 = p.split('/').nth(4).unwrap().parse().unwrap();
                let rows: Vec<Value> = d
                    .time
                    .iter()
                    .filter(|r| r["ticket_id"] == id)
                    .cloned()
                    .collect();
                ResponseTemplate::new(200).set_body_json(rows)
            }
            ("GET", p) if p.starts_with("/api/v1/tickets/") => {
                d.ticket_reads += 1;
                d.count("ticket");
                let id = last_number(p);
                let Some(t) = d.tickets.iter().find(|t| t["id"] == id).cloned() else {
                    return ResponseTemplate::new(404)
                        .set_body_json(json!({"error": "No such object."}));
                };
                // `expand=true`: names next to the ids.
                let mut t = d.ticket(&t);
                t["state"] = json!(STATES[t["state_id"].as_u64().unwrap() as usize - 1].0);
                t["priority"] = json!(PRIORITIES[t["priority_id"].as_u64().unwrap() as usize - 1]);
                t["organization"] =
                    json!(d.organizations[t["organization_id"].as_u64().unwrap() as usize - 1]);
                t["customer"] = json!(d.users[t["customer_id"].as_u64().unwrap() as usize - 1]);
                ResponseTemplate::new(200).set_body_json(t)
            }
            ("GET", p) if p.starts_with("/api/v1/ticket_articles/by_ticket/") => {
                d.count("articles");
                let id = last_number(p);
                ResponseTemplate::new(200)
                    .set_body_json(d.articles.get(&id).cloned().unwrap_or_default())
            }
            ("GET", "/api/v1/tags") => {
                d.count("tags");
                assert_eq!(q("object").as_deref(), Some("Ticket"));
                let id: i64 = q("o_id").unwrap().parse().unwrap();
                ResponseTemplate::new(200)
                    .set_body_json(json!({"tags": d.tags.get(&id).cloned().unwrap_or_default()}))
            }
            ("POST", "/api/v1/ticket_articles") => {
                d.count("post article");
                let a: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(a["internal"], true);
                assert!(a.get("time_unit").is_none(), "a note never bills time");
                let id = a["ticket_id"].as_i64().unwrap();
                assert!(
                    d.tickets.iter().any(|t| t["id"] == id),
                    "ticket {id} exists"
                );
                d.articles.entry(id).or_default().push(a.clone());
                ResponseTemplate::new(201).set_body_json(a)
            }
            ("POST", "/api/v1/tags/add") => {
                d.count("post tag");
                if d.tag_refusals > 0 {
                    d.tag_refusals -= 1;
                    return ResponseTemplate::new(422)
                        .set_body_json(json!({"error": "Not authorized (admin.tag)!"}));
                }
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

fn sources_yaml(scenario: &str) -> &'static str {
    match scenario {
        "lv-it" => {
            "sources:\n  desk:\n    customers:\n      riga-bakery: riga-bakery\n      daugava-logistics: daugava-logistics\n      jurmala-hotel: jurmala-hotel\n    kinds:\n      On site: onsite\n      Phone: phone\n"
        }
        "akte-sla" => {
            "sources:\n  desk:\n    customers:\n      poznan-clinic: poznan-clinic\n    kinds:\n      On site: onsite\n      Phone: phone\n"
        }
        _ => unreachable!(),
    }
}

fn config(dir: &Path, uri: &str, token: &str, extra: &str) -> std::path::PathBuf {
    config_for("lv-it", dir, uri, token, extra)
}

fn config_for(
    scenario: &str,
    dir: &Path,
    uri: &str,
    token: &str,
    extra: &str,
) -> std::path::PathBuf {
    let tables = format!(
        r#"[sources.desk]
type = "zammad"
url = "{uri}"
token = "{token}"
per_page = 4
notes = "desk"
webhook_secret = "zw-s3cret"
requests_per_second = 1000
{drafts}{extra}
"#,
        drafts = folder_target("drafts", &dir.join("drafts")),
    );
    write_config(
        dir,
        &examples_with(dir, sources_yaml(scenario)),
        "drafts",
        &tables,
    )
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
    fake_of("lv-it").await
}

async fn fake_of(scenario: &str) -> (FakeZammad, MockServer) {
    let fake = FakeZammad(Arc::new(Mutex::new(desk_from_export(scenario))));
    let server = serve(fake.clone()).await;
    (fake, server)
}

/// The notes the bridge put on each ticket (by internal id): the articles
/// carrying a marker.
fn notes_of(d: &Desk) -> BTreeMap<i64, Vec<String>> {
    d.articles
        .iter()
        .map(|(id, articles)| {
            (
                *id,
                articles
                    .iter()
                    .filter_map(|a| a["body"].as_str())
                    .filter(|b| b.contains("[contract-bridge "))
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, notes)| !notes.is_empty())
        .collect()
}

/// Requests the sync made, per ticket read: everything but the notes'.
fn report_requests(d: &Desk, tickets: usize, what: &str) -> f64 {
    let notes: usize = ["search by number", "articles", "tags", "post article", "post tag"]
        .iter()
        .map(|k| d.by_kind.get(k).copied().unwrap_or(0))
        .sum::<usize>()
        // Articles are read for time entries too: those are the sync's.
        - d.by_kind.get("time_accountings").copied().unwrap_or(0);
    let sync = d.requests - notes;
    let per = sync as f64 / tickets as f64;
    eprintln!(
        "zammad {what}: {sync} requests to read {tickets} tickets ({per:.2} per ticket), {notes} for notes; by kind: {:?}",
        d.by_kind
    );
    per
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
    {
        let d = fake.0.lock().unwrap();
        let per = report_requests(&d, tickets, "lv-it");
        // Per pass the search pages, two lists and the time types; per
        // ticket its history, and its time records and articles when it
        // has time (all of lv-it's have).
        assert_eq!(per * tickets as f64, (d.searches + 3 + 3 * tickets) as f64);
        assert_eq!(d.by_kind["priorities"], 1, "once per pass");
        assert_eq!(d.by_kind["states"], 1, "once per pass");
    }
    // A second run: nothing changed but the last ticket (the cursor is
    // inclusive), nothing noted twice.
    let second = run_once(&cfg, "2026-11-23T13:00:00Z");
    assert!(second.contains("0 ticket(s) changed"), "{second}");
    let d = fake.0.lock().unwrap();
    let notes = notes_of(&d);
    assert!(!notes.is_empty(), "lv-it has breaches");
    for (id, mut markers) in notes {
        let count = markers.len();
        markers.sort();
        markers.dedup();
        assert_eq!(markers.len(), count, "ticket {id} noted twice");
        assert!(
            d.tags[&id].iter().any(|t| t.starts_with("sla-")),
            "ticket {id} tagged"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_one_clear_error_not_a_retry_storm() {
    let (fake, server) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri(), "wrong", "");
    let out = run_once_failing(&cfg, NOW);
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
    let _daemon = spawn_daemon(&cfg, Stdio::null());
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/webhooks/desk");
    let start = Instant::now();
    wait_ready(&client, &format!("http://127.0.0.1:{port}")).await;
    // The start-up sync first; then an agent edits ticket 2 and Zammad calls.
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    loop {
        let m = get_text(&client, &metrics).await;
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
    let body3 = body
        .replace("\"id\":2", "\"id\":3")
        .replace("T-1002", "T-1003");
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
    let cfg = config(
        dir.path(),
        &server.uri(),
        "z-t0k",
        "[retry]\nbase_delay_ms = 1",
    );
    let broken = run_once_failing(&cfg, NOW);
    assert!(broken.contains("0 ticket(s) changed"), "{broken}");
    assert!(
        broken.contains("source desk: zammad: HTTP 200: the answer is not JSON"),
        "{broken}"
    );
    fake.0.lock().unwrap().history_unavailable = true;
    let unavailable = run_once_failing(&cfg, NOW);
    assert!(unavailable.contains("0 ticket(s) changed"), "{unavailable}");
    assert!(unavailable.contains("zammad: HTTP 503"), "{unavailable}");
    // Every try of the history was refused: 5 tries, then the pass failed.
    fake.0.lock().unwrap().history_unavailable = false;
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
    let bill = offline_bill(&examples(), &file, "2026-10");
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

    let lv = scenarios().join("lv-it/tickets.json");
    let mut export: Value = serde_json::from_str(&std::fs::read_to_string(&lv).unwrap()).unwrap();
    let billed = october_totals(&export);
    {
        let mut d = fake.0.lock().unwrap();
        // Ticket 1 (T-1001): an agent corrects 20 logged minutes to 80 after
        // October was billed; Zammad touches the ticket when time changes.
        let row = d.time.iter_mut().find(|r| r["ticket_id"] == 1).unwrap();
        row["time_unit"] = json!("80.0");
        d.tickets[0]["updated_at"] = json!("2026-11-25T09:00:00Z");
        // Ticket 8 (T-2004) is merged into ticket 7 (T-2003): its time moves
        // with it, and it ends as `merged`.
        for row in d.time.iter_mut().filter(|r| r["ticket_id"] == 8) {
            row["ticket_id"] = json!(7);
        }
        let moved = d.articles.remove(&8).unwrap_or_default();
        d.articles.entry(7).or_default().extend(moved);
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
    let refused = check(&examples());
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

/// akte-sla's October from Zammad: A-01 is priority `4 critical` (P1 in
/// the value map) and misses its resolution target, which earns the
/// customer a service credit: read only when the priority and the state
/// come through (they are not in the search's assets). A-03's tag excludes
/// it from the SLA. The offline bill of the same export is the oracle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zammad_month_finds_the_p1_breach_by_priority_state_and_number() {
    let (fake, server) = fake_of("akte-sla").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_for("akte-sla", dir.path(), &server.uri(), "z-t0k", "");
    let out = run_once(&cfg, NOW);
    let tickets = fake.0.lock().unwrap().tickets.len();
    assert!(
        out.contains(&format!("{tickets} ticket(s) changed")),
        "{out}"
    );
    let export = scenarios().join("akte-sla/tickets.json");
    let offline = offline_bill(&examples(), &export, "2026-10");
    let expected = offline["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["customer"] == "poznan-clinic")
        .unwrap()["total_net"]
        .as_str()
        .unwrap();
    assert_eq!(expected, "4275.00", "4675.00 less the 10 % P1 credit");
    assert_eq!(draft_total(dir.path(), "poznan-clinic"), expected);
    let draft = std::fs::read_to_string(
        dir.path()
            .join("drafts/draft_poznan-clinic_2026-10_r1.json"),
    )
    .unwrap();
    assert!(
        draft.contains("A-01"),
        "tickets are named by number: {draft}"
    );
    let d = fake.0.lock().unwrap();
    report_requests(&d, tickets, "akte-sla");
    // The breach note is on A-01 (internal id 1), found by its number, with its tag.
    let notes = notes_of(&d);
    assert!(
        notes[&1]
            .iter()
            .any(|n| n.contains("resolution target missed")),
        "{notes:?}"
    );
    assert!(d.tags[&1].contains(&"sla-breach".to_owned()));
    assert!(!notes.contains_key(&3), "A-03 is excluded by its tag");
}

/// A note whose comment was posted but whose tag was refused is delivered:
/// the next attempt adds the tag only, and the comment is never posted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_tag_is_added_later_without_a_second_comment() {
    let (fake, server) = fake_of("akte-sla").await;
    fake.0.lock().unwrap().tag_refusals = 1;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_for("akte-sla", dir.path(), &server.uri(), "z-t0k", "");
    run_once(&cfg, NOW);
    {
        let d = fake.0.lock().unwrap();
        assert_eq!(d.tag_refusals, 0, "a tag was refused");
        assert_eq!(notes_of(&d)[&1].len(), 1);
        assert!(!d.tags[&1].contains(&"sla-breach".to_owned()));
    }
    run_once(&cfg, "2026-11-24T12:00:00Z");
    let d = fake.0.lock().unwrap();
    assert_eq!(notes_of(&d)[&1].len(), 1, "the comment is not posted again");
    assert!(
        d.tags[&1].contains(&"sla-breach".to_owned()),
        "the tag followed"
    );
    let st = status(&cfg, &[]);
    assert!(st.contains(" 0 dead"), "{st}");
}

/// 30 % of requests fail on both sides, Zammad and the ledger: half before
/// they are handled (503), half after (the answer lost to a 502). Repeated
/// `run --once` converge on exactly the offline bill: no draft is ever made
/// from part of the month, each draft is created once, each note once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_faults_on_both_sides_converge_on_exactly_the_offline_bill() {
    let desk = FakeZammad(Arc::new(Mutex::new(desk_from_export("lv-it"))));
    let desk_faults = Faulty::new(desk.clone(), 0.3, 7);
    let server = serve(desk_faults.clone()).await;
    let ledger = Faulty::new(Fake::new(Faults::default(), 11), 0.3, 13);
    let ledger_server = serve(ledger.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &server.uri(),
        "z-t0k",
        &format!(
            "[targets.ledger]\ntype = \"http\"\nurl = \"{}\"\ntimeout_ms = 2000\n[outbox]\nmax_attempts = 1000\nbase_delay_secs = 0.01\nmax_delay_secs = 0.05\n[retry]\nbase_delay_ms = 1\nmax_delay_ms = 5",
            ledger_server.uri()
        ),
    );
    let env = [("CONTRACT_BRIDGE__BILLING__TARGET", "ledger")];
    let lv_it = ["daugava-logistics", "jurmala-hotel", "riga-bakery"];
    let expected: Vec<(String, String)> = expected_october_totals()
        .into_iter()
        .filter(|(c, _)| lv_it.contains(&c.as_str()))
        .collect();
    let mut runs = 0;
    let converged = loop {
        runs += 1;
        assert!(runs <= 30, "no convergence in 30 runs");
        // A minute later each run, so that the outbox's backoff has passed.
        let now = (chrono::DateTime::parse_from_rfc3339(NOW).unwrap()
            + chrono::Duration::minutes(runs))
        .to_rfc3339();
        let out = Command::new(bin())
            .args(["run", "--once", "--now", &now, "--config"])
            .arg(&cfg)
            .envs(env)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "run {runs}: {log}"
        );
        // Whatever reached the ledger so far is right: never a partial bill.
        let drafts: Vec<(String, String)> = october_drafts(&ledger.inner.created())
            .into_iter()
            .filter(|(c, _)| lv_it.contains(&c.as_str()))
            .collect();
        for d in &drafts {
            assert!(expected.contains(d), "run {runs} pushed {d:?}: {log}");
        }
        let pending = status(&cfg, &env)
            .lines()
            .any(|l| l.starts_with("outbox:") && !l.starts_with("outbox: 0 pending"));
        if out.status.success() && drafts == expected && !pending {
            break runs;
        }
    };
    assert!(
        ledger.inner.changed().is_empty(),
        "{:?}",
        ledger.inner.changed()
    );
    let faults = (
        *desk_faults.faults.lock().unwrap(),
        *ledger.faults.lock().unwrap(),
    );
    assert!(
        faults.0 > 0 && faults.1 > 0,
        "faults were injected: {faults:?}"
    );
    let d = desk.0.lock().unwrap();
    for (id, mut notes) in notes_of(&d) {
        let count = notes.len();
        notes.sort();
        notes.dedup();
        assert_eq!(notes.len(), count, "ticket {id} noted twice");
    }
    eprintln!(
        "30 % faults: converged after {converged} run(s); {} Zammad and {} ledger faults injected",
        faults.0, faults.1
    );
}
