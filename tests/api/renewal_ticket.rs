//! A prepaid renewal suggestion as a ticket of its own (`renew_to:
//! ticket`): nordhavn-arkitekter's 10-punch card, drawn by tickets read from
//! a Zammad mocked with wiremock, is used up in October; the daemon opens one
//! ticket for it in that Zammad, found again by the marker in its title, so
//! that repeated runs and an attempt whose answer was lost create nothing more.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::support::*;
use serde_json::{Value, json};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

#[derive(Default)]
struct Desk {
    /// The itech-klippekort export's tickets, as Zammad holds them.
    tickets: Vec<Value>,
    time: Vec<Value>,
    /// State and priority names, by id from 1.
    states: Vec<String>,
    priorities: Vec<String>,
    /// Tickets the bridge opened.
    opened: Vec<Value>,
    creates: usize,
    marker_searches: usize,
    /// Create the next ticket but lose the answer (a 502 after the write).
    lose_next_answer: bool,
}

#[derive(Clone)]
struct FakeZammad(Arc<Mutex<Desk>>);

fn export() -> Vec<Value> {
    let text = std::fs::read_to_string(scenarios().join("itech-klippekort/tickets.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["tickets"]
        .as_array()
        .unwrap()
        .clone()
}

fn desk() -> Desk {
    let mut d = Desk::default();
    for (i, t) in export().iter().enumerate() {
        let id = i as i64 + 1;
        let state = t["states"]
            .as_array()
            .and_then(|s| s.last())
            .map_or("new", |s| s["state"].as_str().unwrap());
        // Time accounting records (`GET /api/v1/tickets/{id}/time_accountings`).
        let mut units = 0.0;
        for (n, w) in t["work"].as_array().unwrap().iter().enumerate() {
            units += w["minutes"].as_f64().unwrap();
            d.time.push(json!({
                "id": id * 100 + n as i64, "ticket_id": id, "ticket_article_id": null,
                "time_unit": format!("{}.0", w["minutes"]),
                "type_id": if w["kind"] == "onsite" { 2 } else { 1 },
                "created_by_id": 1,
                "created_at": w["at"],
            }));
        }
        let index = |list: &mut Vec<String>, name: &str| -> usize {
            if !list.iter().any(|n| n == name) {
                list.push(name.to_owned());
            }
            list.iter().position(|n| n == name).unwrap() + 1
        };
        let state_id = index(&mut d.states, state);
        let priority_id = index(&mut d.priorities, t["priority"].as_str().unwrap());
        d.tickets.push(json!({
            "id": id, "number": t["id"], "title": t["title"],
            "state": state, "priority": t["priority"], "organization": t["customer"],
            "state_id": state_id, "priority_id": priority_id,
            "customer": t["requester"], "category": t["category"],
            "first_response_at": t["first_response_at"], "close_at": t["resolved_at"],
            "time_unit": (units > 0.0).then(|| format!("{units:.1}")),
            "created_at": t["created_at"], "updated_at": "2026-10-27T12:00:00Z",
        }));
    }
    d
}

/// A search answer: ids, and the tickets with their users and
/// organizations as assets (`Ticket#assets`; no states, no priorities).
fn found(tickets: &[&Value]) -> Value {
    let mut assets = json!({"Ticket": {}, "Organization": {}, "User": {}});
    for t in tickets {
        let id = t["id"].to_string();
        let mut asset = (*t).clone();
        for (field, kind, key) in [
            ("organization", "Organization", "name"),
            ("customer", "User", "email"),
        ] {
            asset[format!("{field}_id")] = json!(id);
            assets[kind][&id] = json!({"id": id, key: t[field]});
        }
        assets["Ticket"][&id] = asset;
    }
    let ids: Vec<&Value> = tickets.iter().map(|t| &t["id"]).collect();
    json!({"tickets": ids, "tickets_count": ids.len(), "assets": assets})
}

impl Respond for FakeZammad {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut d = self.0.lock().unwrap();
        let q = |name: &str| query_param(r, name);
        match (r.method.as_str(), r.url.path()) {
            ("GET", "/api/v1/tickets/search") => {
                let query = q("query").unwrap();
                if let Some(phrase) = query.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                    d.marker_searches += 1;
                    let hits: Vec<&Value> = d
                        .opened
                        .iter()
                        .filter(|t| t["title"].as_str().unwrap().contains(phrase))
                        .collect();
                    return ResponseTemplate::new(200).set_body_json(found(&hits));
                }
                let hits: Vec<&Value> = if q("page").as_deref() == Some("1") {
                    d.tickets.iter().collect()
                } else {
                    Vec::new()
                };
                ResponseTemplate::new(200).set_body_json(found(&hits))
            }
            ("GET", p) if p.starts_with("/api/v1/ticket_history/") => {
                ResponseTemplate::new(200).set_body_json(json!({"history": [], "assets": {}}))
            }
            ("GET", "/api/v1/ticket_priorities") => {
                let list: Vec<Value> = d
                    .priorities
                    .iter()
                    .enumerate()
                    .map(|(i, n)| json!({"id": i + 1, "name": n}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(list)
            }
            ("GET", "/api/v1/ticket_states") => {
                let list: Vec<Value> = d
                    .states
                    .iter()
                    .enumerate()
                    .map(|(i, n)| json!({"id": i + 1, "name": n, "state_type": if n == "closed" { "closed" } else { "open" }}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(list)
            }
            ("GET", "/api/v1/time_accounting/types") => ResponseTemplate::new(200)
                .set_body_json(json!([{"id": 1, "name": "Remote"}, {"id": 2, "name": "On site"}])),
            ("GET", p) if p.ends_with("/time_accountings") => {
                let id: i64 = p.split('/').nth(4).unwrap().parse().unwrap();
                let rows: Vec<&Value> = d.time.iter().filter(|r| r["ticket_id"] == id).collect();
                ResponseTemplate::new(200).set_body_json(rows)
            }
            ("GET", p) if p.starts_with("/api/v1/ticket_articles/by_ticket/") => {
                ResponseTemplate::new(200).set_body_json(json!([]))
            }
            ("POST", "/api/v1/tickets") => {
                d.creates += 1;
                let mut t: Value = serde_json::from_slice(&r.body).unwrap();
                t["id"] = json!(100 + d.opened.len());
                d.opened.push(t.clone());
                if std::mem::take(&mut d.lose_next_answer) {
                    return ResponseTemplate::new(502).set_body_string("Bad Gateway");
                }
                ResponseTemplate::new(201).set_body_json(t)
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({"error": "No route"})),
        }
    }
}

fn config(dir: &Path, uri: &str) -> PathBuf {
    let desk = "token = \"z-t0k\"\nrenewal_group = \"Sales\"\nrequests_per_second = 1000";
    let tables = format!(
        "{}{}[outbox]\nmax_attempts = 3\nbase_delay_secs = 0\nmax_delay_secs = 0",
        helpdesk_source("desk", "zammad", uri, desk),
        folder_target("drafts", &dir.join("drafts")),
    );
    let mapping = root().join("tests/fixtures/ledger/renew-ticket");
    write_config(dir, &mapping, "drafts", &tables)
}

async fn fake(lose_first_answer: bool) -> (FakeZammad, MockServer) {
    let mut d = desk();
    d.lose_next_answer = lose_first_answer;
    let fake = FakeZammad(Arc::new(Mutex::new(d)));
    let server = serve(fake.clone()).await;
    (fake, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_used_up_opens_one_zammad_ticket_however_often_the_daemon_runs() {
    let (fake, server) = fake(false).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri());
    let log = run_once_with(&cfg, "2026-10-28T12:00:00Z", &[]);
    {
        let d = fake.0.lock().unwrap();
        // nordhavn's card is used up; valby's ended on 2026-10-01 with
        // punches left. One ticket each.
        assert_eq!(d.opened.len(), 2, "{log}");
        let title_of = |t: &Value| t["title"].as_str().unwrap().to_owned();
        let valby = d
            .opened
            .iter()
            .find(|t| title_of(t).contains("of valby-tandlaege is expired"))
            .unwrap_or_else(|| panic!("{:?}", d.opened));
        assert_eq!(valby["customer"], "it@valby-tandlaege.example");
        let t = d
            .opened
            .iter()
            .find(|t| title_of(t).contains("nordhavn-arkitekter"))
            .unwrap();
        let title = t["title"].as_str().unwrap();
        assert!(
            title.starts_with("Prepaid renewal: the punch card 2026-09-15 (10 punches) of nordhavn-arkitekter is used up [contract-bridge renewal:nordhavn-arkitekter:"),
            "{title}"
        );
        assert_eq!(t["group"], "Sales");
        assert_eq!(t["customer"], "it@nordhavn-arkitekter.example");
        assert_eq!(t["tags"], "prepaid-renewal");
        assert_eq!(t["article"]["internal"], true);
        assert_eq!(t["article"]["type"], "note");
        let body = t["article"]["body"].as_str().unwrap();
        assert!(body.contains("suggest a new KLIPPEKORT-10"), "{body}");
        assert_eq!(
            d.marker_searches, 2,
            "each looked for before it was created"
        );
    }
    for now in ["2026-10-29T12:00:00Z", "2026-11-02T12:00:00Z"] {
        let log = run_once_with(&cfg, now, &[]);
        let d = fake.0.lock().unwrap();
        assert_eq!((d.creates, d.opened.len()), (2, 2), "{log}");
    }
    let s = status(&cfg, &[]);
    assert!(s.contains("0 pending") && s.contains(" 0 dead"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_whose_answer_was_lost_is_found_by_its_marker_not_created_again() {
    let (fake, server) = fake(true).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri());
    let log = run_once_with(&cfg, "2026-10-28T12:00:00Z", &[]);
    let d = fake.0.lock().unwrap();
    // Each created once; the first one's answer was lost, and its retry
    // found it by the marker.
    assert_eq!(d.creates, 2, "{log}");
    assert_eq!(d.opened.len(), 2, "{log}");
    assert_eq!(d.marker_searches, 3, "{log}");
    drop(d);
    run_once_with(&cfg, "2026-10-29T12:00:00Z", &[]);
    let d = fake.0.lock().unwrap();
    assert_eq!((d.creates, d.opened.len()), (2, 2));
}
