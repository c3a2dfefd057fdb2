//! The real Request Tracker 5 (Debian's packages, started fresh by
//! `scripts/rt-up.sh` on 127.0.0.1:8090): tickets with time, a pause and an
//! agent lowering the time worked are created through REST2; the daemon
//! syncs them, and November's drafts equal what the offline `bill` makes of
//! the equivalent export.

use std::process::Command;

use crate::support::*;
use chrono::Datelike;
use serde_json::{Value, json};

/// Contracts for RT's raw values: priority `0`, statuses new/open/stalled,
/// a first response within an hour around the clock.
const MAPPING: &str = r#"
calendars:
  always:
    time_zone: Europe/Riga
    hours: 24/7
value_maps:
  rt:
    priority: {"0": 3}
    state: {new: open, open: open, stalled: paused, resolved: resolved}
templates:
  rt-support:
    currency: EUR
    time_zone: Europe/Riga
    value_map: rt
    start: 2026-01-01
    hourly_rate: "60.00"
    call_out_fee: "25.00"
    rounding:
      step: 15m
    sla:
      calendar: always
      first_response: 1h
customers:
  riga-bakery:
    template: rt-support
  daugava-logistics:
    template: rt-support
    monthly_fee: "100.00"
"#;

fn rt_up() -> String {
    let status = Command::new("bash")
        .arg(root().join("scripts/rt-up.sh"))
        .current_dir(root())
        .status()
        .expect("bash");
    assert!(
        status.success(),
        "scripts/rt-up.sh failed: Request Tracker is needed for this test"
    );
    std::fs::read_to_string(root().join("target/rt/token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// One ticket as the test made it: who asked, and the minutes logged (with the kind).
struct Made {
    id: String,
    customer: &'static str,
    requester: &'static str,
    work: Vec<(i64, &'static str)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_made_in_the_real_rt_bill_as_their_export_does() {
    let _alone = crate::support::REAL_RT.lock().await;

    let token = rt_up();
    let client = reqwest::Client::new();
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let mut made = Vec::new();
    for (customer, requester, subject, work) in [
        (
            "riga-bakery",
            "ilze@riga-bakery.example",
            "Printer offline",
            vec![(20, "remote"), (45, "onsite")],
        ),
        (
            "daugava-logistics",
            "ops@daugava.example",
            "VPN drops",
            vec![(90, "remote")],
        ),
        (
            "riga-bakery",
            "ilze@riga-bakery.example",
            "New laptop",
            vec![(35, "phone")],
        ),
    ] {
        let t = rt_call(
            &client,
            &token,
            post.clone(),
            "ticket",
            Some(json!({
            "Queue": "Support", "Subject": subject, "Requestor": requester,
            "Content": "Please help.", "ContentType": "text/plain"})),
        )
        .await;
        let id = t["id"].as_str().unwrap().to_owned();
        for (minutes, kind) in &work {
            rt_call(&client, &token, post.clone(), &format!("ticket/{id}/comment"), Some(json!({
                "Subject": format!("[{kind}] work"), "Content": "Done.", "ContentType": "text/plain", "TimeTaken": minutes}))).await;
        }
        made.push(Made {
            id,
            customer,
            requester,
            work,
        });
    }
    // A pause, and an agent taking 10 minutes back on the VPN ticket.
    let vpn = made[1].id.clone();
    rt_call(
        &client,
        &token,
        put.clone(),
        &format!("ticket/{vpn}"),
        Some(json!({"Status": "stalled"})),
    )
    .await;
    rt_call(
        &client,
        &token,
        put.clone(),
        &format!("ticket/{vpn}"),
        Some(json!({"Status": "open"})),
    )
    .await;
    rt_call(
        &client,
        &token,
        put.clone(),
        &format!("ticket/{vpn}"),
        Some(json!({"TimeWorked": 80})),
    )
    .await;
    made[1].work = vec![(80, "remote")];

    // The equivalent export, from what was made and when RT says it was.
    let mut tickets = Vec::new();
    for m in &made {
        let t = rt_call(
            &client,
            &token,
            reqwest::Method::GET,
            &format!("ticket/{}", m.id),
            None,
        )
        .await;
        let at = t["Created"].as_str().unwrap();
        tickets.push(json!({
            "id": m.id, "customer": m.customer, "requester": m.requester, "title": t["Subject"],
            "priority": t["Priority"], "category": null, "tags": [], "fields": {},
            "created_at": at, "first_response_at": null, "resolved_at": null,
            "states": [{"at": at, "state": "new"}],
            "work": m.work.iter().enumerate().map(|(n, (minutes, kind))| json!({
                "id": format!("W-{}-{n}", m.id), "at": at, "minutes": minutes, "kind": kind})).collect::<Vec<_>>(),
        }));
    }
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("rt.yaml");
    std::fs::write(
        &mapping,
        format!(
            "{MAPPING}sources:\n  rt:\n    customers:\n      riga-bakery.example: riga-bakery\n      daugava.example: daugava-logistics\n    kinds:\n      \"[onsite]\": onsite\n      \"[phone]\": phone\n"
        ),
    )
    .unwrap();
    let export = dir.path().join("export.json");
    std::fs::write(&export, json!({"tickets": tickets}).to_string()).unwrap();
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let offline = offline_bill(&mapping, &export, &month);

    let tables = format!(
        r#"[sources.rt]
type = "rt"
url = "{RT_BASE}/"
token = "env:CB_TEST_RT_TOKEN"
queue = "Support"
notes = "rt"
{drafts}"#,
        drafts = folder_target("drafts", &dir.path().join("drafts")),
    );
    // Billed from this month: RT dates the tickets it makes today.
    let head = head_from(&sqlite(dir.path()), &mapping, "drafts", &month);
    let cfg = write_toml(dir.path(), &format!("{head}{tables}"));
    // The first day of next month: the month has closed.
    let next = chrono::Utc::now().date_naive().with_day(1).unwrap() + chrono::Months::new(1);
    let close = format!("{}T12:00:00Z", next);
    let log = run_once_with(&cfg, &close, &[("CB_TEST_RT_TOKEN", &token)]);
    assert!(log.contains("3 ticket(s) changed"), "{log}");
    for customer in ["riga-bakery", "daugava-logistics"] {
        let ours = draft_file(&dir.path().join("drafts"), customer, &month);
        let theirs = offline_invoice(&offline, customer);
        assert_eq!(
            ours["draft"]["total_net"], theirs["total_net"],
            "{customer}"
        );
    }
    // Nobody answered within the hour: each ticket got one internal
    // comment naming the breach, and the tag, and keeps them on a rerun.
    let again = run_once_with(&cfg, &close, &[("CB_TEST_RT_TOKEN", &token)]);
    assert!(again.contains("0 note(s) queued"), "{again}");
    for m in &made {
        let history = rt_call(
            &client,
            &token,
            reqwest::Method::GET,
            &format!("ticket/{}/history?per_page=100&fields=Type,Data", m.id),
            None,
        )
        .await;
        let marker = format!("[contract-bridge sla:rt:{}:first_response:breach]", m.id);
        let notes = history["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|tx| {
                tx["Type"] == "Comment" && tx["Data"].as_str().is_some_and(|d| d.contains(&marker))
            })
            .count();
        assert_eq!(notes, 1, "ticket {}: {history:#}", m.id);
        let t = rt_call(
            &client,
            &token,
            reqwest::Method::GET,
            &format!("ticket/{}", m.id),
            None,
        )
        .await;
        let tags: Vec<&Value> = t["CustomFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|cf| cf["name"] == "Tags")
            .flat_map(|cf| cf["values"].as_array().unwrap())
            .collect();
        assert!(
            tags.iter().any(|v| *v == "sla-breach"),
            "ticket {}: {t:#}",
            m.id
        );
    }
    // Leave the port to the next checkout's tests.
    let _ = Command::new("bash")
        .arg(root().join("scripts/rt-up.sh"))
        .arg("stop")
        .status();
}
