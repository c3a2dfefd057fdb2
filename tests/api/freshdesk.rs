//! Freshdesk (API v2), mocked with wiremock in the shapes its API
//! documentation gives (`tests/fixtures/freshdesk/`): four October tickets
//! of two companies, with billable, non-billable and running time entries.
//! The daemon syncs them page by page into the same drafts the offline
//! `bill` makes of the same tickets written by hand as an export
//! (`export.json`: billable, stopped entries only), and notes the missed
//! first response once, as a private note, with its tag beside the ticket's
//! own.
//!
//! What the fake answers (Freshdesk API v2 reference):
//! - `GET /api/v2/tickets?updated_since&order_by=updated_at&order_type=asc&per_page&page&include=requester,stats`:
//!   a list of tickets (`tickets.json`), each with `requester` and `stats`.
//! - `GET /api/v2/companies/{id}` (`companies.json`), `GET /api/v2/agents` (`agents.json`).
//! - `GET /api/v2/tickets/{id}/time_entries` (`time_entries.json`, by `ticket_id`).
//! - `GET /api/v2/tickets/{id}`, `PUT /api/v2/tickets/{id}` (`tags` replaces the list).
//! - `GET /api/v2/tickets/{id}/conversations`, `POST /api/v2/tickets/{id}/notes`.
//!   A write bumps the ticket's `updated_at`, as Freshdesk does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::support::*;
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

/// Freshdesk's raw priorities and states.
const VALUE_MAP: &str = "    priority: {urgent: 1, high: 2, medium: 3, low: 4}
    state: {open: open, pending: paused, resolved: resolved, closed: resolved}";

const SOURCES: &str = r#"sources:
  desk:
    customers:
      Riga Bakery SIA: riga-bakery
      Daugava Logistics: daugava-logistics
    kinds:
      "[onsite]": onsite
      "[phone]": phone
"#;

/// base64("fd-k3y:X")
const AUTH: &str = "Basic ZmQtazN5Olg=";

fn fixture(name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/freshdesk").join(name)).unwrap(),
    )
    .unwrap()
}

struct Desk {
    tickets: Vec<Value>,
    companies: Vec<Value>,
    agents: Value,
    entries: Vec<Value>,
    conversations: BTreeMap<u64, Vec<Value>>,
    /// Requests by what they asked.
    by_kind: BTreeMap<&'static str, usize>,
    writes: u64,
}

#[derive(Clone)]
struct FakeFreshdesk(Arc<Mutex<Desk>>);

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404)
        .set_body_json(json!({"code": "not_found", "message": "Record not found"}))
}

impl Respond for FakeFreshdesk {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut d = self.0.lock().unwrap();
        if r.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(AUTH) {
            return ResponseTemplate::new(401).set_body_json(json!({
                "code": "invalid_credentials",
                "message": "You have to be logged in to perform this action."}));
        }
        let path = r.url.path().to_owned();
        let parts: Vec<&str> = path.trim_start_matches("/api/v2/").split('/').collect();
        let q = |name: &str| query_param(r, name);
        let mut count = |k: &'static str| *d.by_kind.entry(k).or_default() += 1;
        match (r.method.as_str(), parts.as_slice()) {
            ("GET", ["tickets"]) => {
                count("list");
                assert_eq!(q("include").as_deref(), Some("requester,stats"));
                assert_eq!(q("order_by").as_deref(), Some("updated_at"));
                assert_eq!(q("order_type").as_deref(), Some("asc"));
                let since = q("updated_since").expect("updated_since: else only 30 days");
                let per_page: usize = q("per_page").unwrap().parse().unwrap();
                let page: usize = q("page").unwrap().parse().unwrap();
                let mut hits: Vec<Value> = d
                    .tickets
                    .iter()
                    .filter(|t| t["updated_at"].as_str().unwrap() >= since.as_str())
                    .cloned()
                    .collect();
                hits.sort_by_key(|t| t["updated_at"].as_str().unwrap().to_owned());
                let hits: Vec<Value> = hits
                    .into_iter()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .collect();
                ResponseTemplate::new(200).set_body_json(hits)
            }
            ("GET", ["agents"]) => {
                count("agents");
                ResponseTemplate::new(200).set_body_json(d.agents.clone())
            }
            ("GET", ["companies", id]) => {
                count("company");
                let id: u64 = id.parse().unwrap();
                match d.companies.iter().find(|c| c["id"] == id) {
                    Some(c) => ResponseTemplate::new(200).set_body_json(c.clone()),
                    None => not_found(),
                }
            }
            ("GET", ["tickets", id, "time_entries"]) => {
                count("time_entries");
                let id: u64 = id.parse().unwrap();
                let list: Vec<Value> = d
                    .entries
                    .iter()
                    .filter(|e| e["ticket_id"] == id)
                    .cloned()
                    .collect();
                ResponseTemplate::new(200).set_body_json(list)
            }
            ("GET", ["tickets", id, "conversations"]) => {
                count("conversations");
                let id: u64 = id.parse().unwrap();
                let page: usize = q("page").map_or(1, |p| p.parse().unwrap());
                let per_page: usize = q("per_page").map_or(30, |p| p.parse().unwrap());
                let list: Vec<Value> = d
                    .conversations
                    .get(&id)
                    .into_iter()
                    .flatten()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .cloned()
                    .collect();
                ResponseTemplate::new(200).set_body_json(list)
            }
            ("POST", ["tickets", id, "notes"]) => {
                count("post note");
                let id: u64 = id.parse().unwrap();
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(body["private"], true, "an SLA note is private");
                let html = body["body"].as_str().unwrap();
                // body_text: the HTML without its tags, entities read.
                let mut text = String::new();
                let mut in_tag = false;
                for c in html.chars() {
                    match c {
                        '<' => in_tag = true,
                        '>' => {
                            in_tag = false;
                            text.push(' ');
                        }
                        c if !in_tag => text.push(c),
                        _ => {}
                    }
                }
                let text = text
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&");
                d.writes += 1;
                let n = d.writes;
                let note = json!({
                    "id": 5000 + n, "body": html, "body_text": text.trim(), "incoming": false,
                    "private": true, "user_id": 7, "support_email": null, "source": 2,
                    "ticket_id": id, "to_emails": [], "attachments": [],
                    "created_at": "2026-11-23T12:00:00Z", "updated_at": "2026-11-23T12:00:00Z",
                });
                d.conversations.entry(id).or_default().push(note.clone());
                bump(&mut d, id);
                ResponseTemplate::new(201).set_body_json(note)
            }
            ("GET", ["tickets", id]) => {
                count("ticket");
                let id: u64 = id.parse().unwrap();
                match d.tickets.iter().find(|t| t["id"] == id) {
                    Some(t) => ResponseTemplate::new(200).set_body_json(t.clone()),
                    None => not_found(),
                }
            }
            ("PUT", ["tickets", id]) => {
                count("put ticket");
                let id: u64 = id.parse().unwrap();
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(
                    body.as_object().unwrap().keys().collect::<Vec<_>>(),
                    ["tags"],
                    "only the tags are written"
                );
                d.writes += 1;
                bump(&mut d, id);
                let t = d.tickets.iter_mut().find(|t| t["id"] == id).unwrap();
                t["tags"] = body["tags"].clone();
                ResponseTemplate::new(200).set_body_json(t.clone())
            }
            _ => not_found(),
        }
    }
}

/// A write changes the ticket's `updated_at`, later than anything listed.
fn bump(d: &mut Desk, id: u64) {
    let at = format!("2026-11-23T12:00:{:02}Z", d.writes);
    let t = d.tickets.iter_mut().find(|t| t["id"] == id).unwrap();
    t["updated_at"] = json!(at);
}

async fn fake() -> (FakeFreshdesk, wiremock::MockServer) {
    let fake = FakeFreshdesk(Arc::new(Mutex::new(Desk {
        tickets: fixture("tickets.json").as_array().unwrap().clone(),
        companies: fixture("companies.json").as_array().unwrap().clone(),
        agents: fixture("agents.json"),
        entries: fixture("time_entries.json").as_array().unwrap().clone(),
        conversations: BTreeMap::new(),
        by_kind: BTreeMap::new(),
        writes: 0,
    })));
    let server = serve(fake.clone()).await;
    (fake, server)
}

fn config(dir: &Path, uri: &str) -> std::path::PathBuf {
    let mapping = dir.join("freshdesk.yaml");
    std::fs::write(
        &mapping,
        format!("{}{SOURCES}", riga_desk_mapping(VALUE_MAP)),
    )
    .unwrap();
    let desk = "api_key = \"env:CB_TEST_FD_KEY\"\nper_page = 2\nrequests_per_second = 1000";
    let tables = format!(
        "{}{}",
        helpdesk_source("desk", "freshdesk", uri, desk),
        folder_target("drafts", &dir.join("drafts")),
    );
    write_config(dir, &mapping, "drafts", &tables)
}

/// The marked notes on each ticket.
fn notes(d: &Desk) -> BTreeMap<u64, Vec<String>> {
    d.conversations
        .iter()
        .map(|(id, list)| {
            (
                *id,
                list.iter()
                    .filter_map(|c| c["body_text"].as_str())
                    .filter(|b| b.contains("[contract-bridge "))
                    .map(str::to_owned)
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshdesk_tickets_bill_as_their_export_does_and_a_breach_is_noted_once() {
    let (fake, server) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri());
    let env = [("CB_TEST_FD_KEY", "fd-k3y")];
    let log = run_once_with(&cfg, NOW, &env);
    assert!(log.contains("4 ticket(s) changed"), "{log}");
    {
        let d = fake.0.lock().unwrap();
        // Pages of two: 2 + 2 + an empty one; each company once; the agents once.
        assert_eq!(d.by_kind["list"], 3, "{:?}", d.by_kind);
        assert_eq!(d.by_kind["company"], 2, "{:?}", d.by_kind);
        assert_eq!(d.by_kind["agents"], 1, "{:?}", d.by_kind);
        assert_eq!(d.by_kind["time_entries"], 4, "{:?}", d.by_kind);
    }

    // The same tickets as an export, billed offline.
    let export = dir.path().join("export.json");
    std::fs::write(&export, fixture("export.json").to_string()).unwrap();
    let offline = offline_bill(&dir.path().join("freshdesk.yaml"), &export, "2026-10");
    for customer in ["riga-bakery", "daugava-logistics"] {
        let ours = draft_file(&dir.path().join("drafts"), customer, "2026-10");
        let theirs = offline_invoice(&offline, customer);
        assert_eq!(
            ours["draft"]["total_net"], theirs["total_net"],
            "{customer}: {ours:#} {theirs:#}"
        );
        let amounts = |lines: &Value| -> Vec<(Value, Value)> {
            lines
                .as_array()
                .unwrap()
                .iter()
                .map(|l| (l["kind"].clone(), l["amount"].clone()))
                .collect()
        };
        assert_eq!(
            amounts(&ours["draft"]["lines"]),
            amounts(&theirs["lines"]),
            "{customer}"
        );
    }
    // Billable, stopped time only: 20 + 45 (on site) + 35 minutes for the
    // bakery, each rounded up to 15 minutes (30 + 45 + 45 = 2 h), and one
    // call-out; the hour of non-billable reading and the running timer are not billed.
    let riga: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("drafts/draft_riga-bakery_2026-10_r1.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(riga["draft"]["total_net"], "145.00", "{riga:#}");

    // Nobody answered the VPN ticket within the hour: one private note
    // with its marker, and the tag beside the ticket's own; a second run
    // adds neither again.
    let again = run_once_with(&cfg, "2026-11-23T13:00:00Z", &env);
    assert!(again.contains("0 note(s) queued"), "{again}");
    let d = fake.0.lock().unwrap();
    let noted = notes(&d);
    assert_eq!(
        noted.get(&102).map(Vec::len),
        Some(1),
        "one note on ticket 102: {noted:?}"
    );
    assert!(
        noted[&102][0].contains("[contract-bridge sla:desk:102:first_response:breach]"),
        "{noted:?}"
    );
    for (id, list) in &noted {
        assert!(
            *id == 102 || list.is_empty(),
            "ticket {id} was answered in time: {list:?}"
        );
    }
    let vpn = d.tickets.iter().find(|t| t["id"] == 102).unwrap();
    assert_eq!(vpn["tags"], json!(["vpn", "sla-breach"]));
    assert_eq!(d.by_kind["post note"], 1);
    assert_eq!(d.by_kind["put ticket"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_api_key_is_one_clear_error() {
    let (fake, server) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri());
    let out = std::process::Command::new(bin())
        .args(["run", "--once", "--now", NOW, "--config"])
        .arg(&cfg)
        .env("CB_TEST_FD_KEY", "wrong")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(
        log.contains("source desk: freshdesk: HTTP 401: You have to be logged in to perform this action. (check the source's api_key"),
        "{log}"
    );
    assert!(fake.0.lock().unwrap().by_kind.is_empty());
}
