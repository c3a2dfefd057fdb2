//! Reads that scale (issue 19), counted through the store: the incremental
//! SLA tick reads only the tickets that changed since their last look or
//! whose next deadline fell due, and queues exactly the notes a tick judging
//! every stored ticket would queue; a customer's statement reads that
//! customer's tickets only.

use std::path::Path;
use std::sync::Arc;

use crate::support::*;
use chrono::{DateTime, Duration, Utc};
use contract_bridge::daemon::{Bridge, CycleReport};
use contract_bridge::settings::Settings;
use proptest::prelude::*;
use serde_json::{Value, json};
use store::Store;

const SOURCES: &str = "sources:\n  desk:\n    customers:\n      poznan-clinic: poznan-clinic\n    kinds:\n      On site: onsite\n";

fn settings(dir: &Path, db: &str) -> Settings {
    let mapping = examples_with(dir, SOURCES);
    let text = format!(
        "{}{}{}",
        head(
            &format!("sqlite://{}/{db}", dir.display()),
            &mapping,
            "drafts"
        ),
        // Nothing answers on port 9: the tests store their tickets themselves.
        helpdesk_source("desk", "zammad", "http://127.0.0.1:9", "token = \"z-t0k\""),
        folder_target("drafts", &dir.join("drafts")),
    );
    let path = dir.join(format!("{db}.toml"));
    std::fs::write(&path, text).unwrap();
    Settings::load(&path).unwrap()
}

async fn bridge(dir: &Path, db: &str, now: DateTime<Utc>) -> (Bridge, Arc<Store>) {
    let settings = settings(dir, db);
    let store = Arc::new(
        Store::open_writer(&format!("sqlite://{}/{db}", dir.display()))
            .await
            .unwrap(),
    );
    let bridge = Bridge::new(settings, store.clone()).unwrap();
    bridge.reload_mapping(now).await.unwrap();
    (bridge, store)
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// A Zammad-shaped ticket of poznan-clinic (the offline format).
fn ticket(
    id: &str,
    priority: &str,
    created: DateTime<Utc>,
    states: &[(DateTime<Utc>, &str)],
    first_response: Option<DateTime<Utc>>,
    resolved: Option<DateTime<Utc>>,
) -> Value {
    json!({
        "id": id, "customer": "poznan-clinic", "title": format!("ticket {id}"),
        "priority": priority, "tags": [], "fields": {},
        "created_at": rfc(created),
        "first_response_at": first_response.map(rfc),
        "resolved_at": resolved.map(rfc),
        "states": states.iter().map(|(t, s)| json!({"at": rfc(*t), "state": s})).collect::<Vec<_>>(),
        "work": []
    })
}

/// 100,000 stored tickets, one changes: the next tick reads that one ticket
/// and nothing else; a tick after the open tickets' warning times reads
/// exactly those and queues their warnings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sla_tick_with_100k_stored_tickets_and_one_change_reads_only_that_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let now = at("2026-11-10T12:00:00Z");
    let (bridge, store) = bridge(dir.path(), "state.db", now).await;
    let created = at("2026-11-02T08:00:00Z");
    let mut rows = Vec::new();
    for i in 0..100_000 {
        let id = format!("T-{i:06}");
        // Ten are open P3 tickets made an hour ago (first response due in 4 h,
        // warned before that); the rest were answered and closed long ago.
        let t = if i % 10_000 == 7 {
            let made = now - Duration::hours(1);
            ticket(&id, "2 normal", made, &[(made, "new")], None, None)
        } else {
            let done = created + Duration::minutes(30);
            ticket(
                &id,
                "2 normal",
                created,
                &[(created, "new"), (done, "closed")],
                Some(created + Duration::minutes(10)),
                Some(done),
            )
        };
        rows.push((id, t.to_string()));
    }
    let batch: Vec<store::TicketToStore> = rows
        .iter()
        .map(|(id, s)| store::TicketToStore {
            id: id.as_str(),
            customer: "poznan-clinic",
            snapshot: s.as_str(),
        })
        .collect();
    store.upsert_tickets("desk", &batch, now).await.unwrap();

    let mut report = CycleReport::default();
    let before = store.tickets_read();
    bridge.note_sla(now, &mut report).await.unwrap();
    assert_eq!(
        store.tickets_read() - before,
        100_000,
        "the first tick looks at every ticket"
    );
    assert_eq!(report.notes_queued, 0, "nothing is at risk yet");

    // Nothing changed, nothing fell due: nothing is read.
    let before = store.tickets_read();
    bridge
        .note_sla(now + Duration::minutes(1), &mut report)
        .await
        .unwrap();
    assert_eq!(store.tickets_read() - before, 0);

    // One ticket changes (a new title from the helpdesk).
    let (id, snapshot) = &rows[42_000];
    let changed = snapshot.replace("ticket T-042000", "ticket T-042000 (renamed)");
    assert!(
        store
            .upsert_ticket("desk", id, "poznan-clinic", &changed, now)
            .await
            .unwrap()
    );
    let before = store.tickets_read();
    bridge
        .note_sla(now + Duration::minutes(2), &mut report)
        .await
        .unwrap();
    assert_eq!(
        store.tickets_read() - before,
        1,
        "only the changed ticket is read"
    );
    assert_eq!(report.notes_queued, 0);

    // "2 normal" is P3: first response within 4 h, warned at 75 % (3 h).
    // Made an hour before `now`, the ten open tickets are warned from
    // now + 2 h and due at now + 3 h: at now + 2.5 h those ten are read and
    // each is warned once.
    let later = now + Duration::minutes(150);
    let before = store.tickets_read();
    bridge.note_sla(later, &mut report).await.unwrap();
    let read = store.tickets_read() - before;
    assert_eq!(read, 10, "the ten open tickets' deadlines fell due");
    let queued = store.queued("desk").await.unwrap();
    assert!(!queued.is_empty());
    assert!(
        queued
            .iter()
            .all(|q| q.key.starts_with("sla:desk:T-") && q.key.contains(":first_response:")),
        "{queued:?}"
    );
    let noted: std::collections::BTreeSet<&str> = queued
        .iter()
        .map(|q| q.key.split(':').nth(2).unwrap())
        .collect();
    assert_eq!(noted.len(), 10, "{queued:?}");
}

/// One step of a random history.
#[derive(Clone, Debug)]
enum Step {
    /// Time moves on by this many minutes, then both stores tick.
    Tick(i64),
    /// Ticket `n` (modulo the ones made) gets a new state now.
    State(usize, &'static str),
    /// Ticket `n` is answered now.
    Answer(usize),
    /// Ticket `n` is resolved now.
    Resolve(usize),
    /// A new ticket with this priority, made now.
    New(&'static str),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1i64..400).prop_map(Step::Tick),
        2 => (0usize..8, prop::sample::select(vec!["open", "pending customer", "closed", "new"]))
            .prop_map(|(n, s)| Step::State(n, s)),
        1 => (0usize..8).prop_map(Step::Answer),
        1 => (0usize..8).prop_map(Step::Resolve),
        2 => prop::sample::select(vec!["1 low", "2 normal", "3 high", "4 critical"]).prop_map(Step::New),
    ]
}

struct Model {
    made: DateTime<Utc>,
    priority: &'static str,
    states: Vec<(DateTime<Utc>, &'static str)>,
    answered: Option<DateTime<Utc>>,
    resolved: Option<DateTime<Utc>>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..property_config() })]

    /// Over random histories (tickets made, paused, answered, resolved,
    /// reopened; ticks minutes to hours apart, across a maintenance window),
    /// the incremental tick queues the same notes, with the same texts, as
    /// a tick that judges every stored ticket.
    #[test]
    fn incremental_ticks_queue_the_notes_of_full_ticks(steps in prop::collection::vec(step(), 1..40)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            // Saturday evening: the Sunday 02:00-04:00 maintenance window is near.
            let mut now = at("2026-11-07T20:00:00Z");
            let (inc, inc_store) = bridge(dir.path(), "inc.db", now).await;
            let (full, full_store) = bridge(dir.path(), "full.db", now).await;
            let mut tickets: Vec<Model> = Vec::new();
            for s in steps {
                let touched = match s {
                    Step::Tick(minutes) => {
                        now += Duration::minutes(minutes) + Duration::seconds(minutes % 7);
                        let (mut a, mut b) = (CycleReport::default(), CycleReport::default());
                        inc.note_sla(now, &mut a).await.unwrap();
                        let all: Vec<String> = full_store.ticket_snapshots().await.unwrap();
                        let mut parsed = contract_bridge::export::parse(
                            Path::new("<store>"),
                            &format!("{{\"tickets\":[{}]}}", all.join(",")),
                        ).unwrap();
                        for t in &mut parsed {
                            t.source = Some(engine::ticket::SourceName::new("desk"));
                        }
                        full.note_tickets(parsed, now, &mut b).await.unwrap();
                        assert_eq!((a.notes_queued, a.breaches_noted), (b.notes_queued, b.breaches_noted), "at {now}");
                        assert_eq!(inc_store.queued("desk").await.unwrap(), full_store.queued("desk").await.unwrap(), "at {now}");
                        None
                    }
                    Step::State(n, state) if !tickets.is_empty() => {
                        let n = n % tickets.len();
                        tickets[n].states.push((now, state));
                        Some(n)
                    }
                    Step::Answer(n) if !tickets.is_empty() => {
                        let n = n % tickets.len();
                        tickets[n].answered.get_or_insert(now);
                        Some(n)
                    }
                    Step::Resolve(n) if !tickets.is_empty() => {
                        let n = n % tickets.len();
                        tickets[n].resolved = Some(now);
                        tickets[n].states.push((now, "closed"));
                        Some(n)
                    }
                    Step::New(priority) => {
                        tickets.push(Model { made: now, priority, states: vec![(now, "new")], answered: None, resolved: None });
                        Some(tickets.len() - 1)
                    }
                    _ => None,
                };
                if let Some(n) = touched {
                    let m = &tickets[n];
                    let id = format!("P-{n}");
                    let snapshot = ticket(&id, m.priority, m.made, &m.states, m.answered, m.resolved).to_string();
                    for store in [&inc_store, &full_store] {
                        store.upsert_ticket("desk", &id, "poznan-clinic", &snapshot, now).await.unwrap();
                    }
                }
            }
        });
    }
}

/// A statement bills one customer: it reads that customer's tickets, not
/// every stored ticket, and shows the same page as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_reads_only_its_customers_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let now = at("2026-11-10T12:00:00Z");
    let (bridge, store) = bridge(dir.path(), "state.db", now).await;
    let made = at("2026-11-02T08:00:00Z");
    let done = made + Duration::minutes(30);
    let mut rows = Vec::new();
    for (i, customer) in [
        "poznan-clinic",
        "riga-bakery",
        "riga-bakery",
        "poznan-clinic",
    ]
    .iter()
    .cycle()
    .take(40)
    .enumerate()
    {
        let mut t = ticket(
            &format!("S-{i:03}"),
            "2 normal",
            made,
            &[(made, "new"), (done, "closed")],
            Some(made + Duration::minutes(5)),
            Some(done),
        );
        t["customer"] = json!(customer);
        rows.push((format!("S-{i:03}"), customer.to_string(), t.to_string()));
    }
    let batch: Vec<store::TicketToStore> = rows
        .iter()
        .map(|(id, c, s)| store::TicketToStore {
            id: id.as_str(),
            customer: c.as_str(),
            snapshot: s.as_str(),
        })
        .collect();
    store.upsert_tickets("desk", &batch, now).await.unwrap();
    let before = store.tickets_read();
    let month = engine::period::Month::containing(now, chrono_tz::Europe::Warsaw);
    let page = bridge
        .report_page("poznan-clinic", month, None, Some(now), true)
        .await
        .unwrap();
    assert_eq!(
        store.tickets_read() - before,
        20,
        "poznan-clinic's 20 tickets"
    );
    assert!(!page.html.is_empty());
}

/// A statement asked for again bills only the month judged at its instant:
/// the earlier months come from bills made from the same tickets and
/// mapping. One changed ticket makes every month billed again, and the page
/// is then the one a bridge without any cache shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_bills_again_only_what_changed_since_the_last() {
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().unwrap();
    let now = at("2026-11-10T12:00:00Z");
    let (bridge, store) = bridge(dir.path(), "state.db", now).await;
    let made = at("2026-10-06T08:00:00Z");
    let done = made + Duration::minutes(30);
    for i in 0..6 {
        let t = ticket(
            &format!("S-{i:03}"),
            "2 normal",
            made + Duration::days(i),
            &[(made, "new"), (done + Duration::days(i), "closed")],
            Some(made + Duration::minutes(5)),
            Some(done + Duration::days(i)),
        );
        store
            .upsert_ticket(
                "desk",
                &format!("S-{i:03}"),
                "poznan-clinic",
                &t.to_string(),
                now,
            )
            .await
            .unwrap();
    }
    let month = engine::period::Month::containing(now, chrono_tz::Europe::Warsaw);
    let m = &bridge.metrics;
    let counts = || {
        (
            m.report_months_billed.load(Relaxed),
            m.report_months_cached.load(Relaxed),
        )
    };
    let page = || bridge.report_page("poznan-clinic", month, None, Some(now), true);
    let first = page().await.unwrap();
    let (billed, cached) = counts();
    assert!(billed >= 2, "October and November at least: {billed}");
    assert_eq!(cached, 0);
    let second = page().await.unwrap();
    assert_eq!(
        counts(),
        (billed + 1, billed - 1),
        "only November (judged now) billed again"
    );
    assert_eq!(second.html, first.html);

    // S-000 gets an hour of work in October: another version.
    let mut changed = ticket(
        "S-000",
        "2 normal",
        made,
        &[(made, "new"), (done, "closed")],
        Some(made + Duration::minutes(5)),
        Some(done),
    );
    changed["work"] = json!([{
        "id": "W-1", "at": rfc(made), "minutes": 60, "agent": "a", "kind": "remote",
        "note": "an hour"
    }]);
    store
        .upsert_ticket("desk", "S-000", "poznan-clinic", &changed.to_string(), now)
        .await
        .unwrap();
    let third = page().await.unwrap();
    assert_eq!(counts(), (2 * billed + 1, billed - 1), "every month again");
    assert_ne!(third.html, first.html, "the new work shows");
    let fresh = Bridge::new(settings(dir.path(), "state.db"), store.clone()).unwrap();
    fresh.reload_mapping(now).await.unwrap();
    let uncached = fresh
        .report_page("poznan-clinic", month, None, Some(now), true)
        .await
        .unwrap();
    assert_eq!(third.html, uncached.html);
}
