//! The real Request Tracker 5 (Debian's packages, started fresh by
//! `scripts/rt-up.sh` on 127.0.0.1:8090): tickets with time, a pause and an
//! agent lowering the time worked are created through REST2; the daemon
//! syncs them, and November's drafts equal what the offline `bill` makes of
//! the equivalent export.

use crate::support::*;
use chrono::Datelike;
use serde_json::{Value, json};

/// RT's raw values: priority `0`, statuses new/open/stalled.
const VALUE_MAP: &str = r#"    priority: {"0": 3}
    state: {new: open, open: open, stalled: paused, resolved: resolved}"#;

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

    let rt = rt_up(&[]);
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
        let t = rt
            .post(
                "ticket",
                json!({
                "Queue": "Support", "Subject": subject, "Requestor": requester,
                "Content": "Please help.", "ContentType": "text/plain"}),
            )
            .await;
        let id = t["id"].as_str().unwrap().to_owned();
        for (minutes, kind) in &work {
            rt.post(&format!("ticket/{id}/comment"), json!({
                "Subject": format!("[{kind}] work"), "Content": "Done.", "ContentType": "text/plain", "TimeTaken": minutes})).await;
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
    for change in [
        json!({"Status": "stalled"}),
        json!({"Status": "open"}),
        json!({"TimeWorked": 80}),
    ] {
        rt.put(&format!("ticket/{vpn}"), change).await;
    }
    made[1].work = vec![(80, "remote")];

    // The equivalent export, from what was made and when RT says it was.
    let mut tickets = Vec::new();
    for m in &made {
        let t = rt.get(&format!("ticket/{}", m.id)).await;
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
            "{}sources:\n  rt:\n    customers:\n      riga-bakery.example: riga-bakery\n      daugava.example: daugava-logistics\n    kinds:\n      \"[onsite]\": onsite\n      \"[phone]\": phone\n",
            riga_desk_mapping(VALUE_MAP)
        ),
    )
    .unwrap();
    let export = dir.path().join("export.json");
    std::fs::write(&export, json!({"tickets": tickets}).to_string()).unwrap();
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let offline = offline_bill(&mapping, &export, &month);

    let rt_source = "token = \"env:CB_TEST_RT_TOKEN\"\nqueue = \"Support\"";
    let tables = format!(
        "{}{}",
        helpdesk_source("rt", "rt", &format!("{RT_BASE}/"), rt_source),
        folder_target("drafts", &dir.path().join("drafts")),
    );
    // Billed from this month: RT dates the tickets it makes today.
    let head = head_from(&sqlite(dir.path()), &mapping, "drafts", &month);
    let cfg = write_toml(dir.path(), &format!("{head}{tables}"));
    // The first day of next month: the month has closed.
    let next = chrono::Utc::now().date_naive().with_day(1).unwrap() + chrono::Months::new(1);
    let close = format!("{}T12:00:00Z", next);
    let log = run_once_with(&cfg, &close, &[("CB_TEST_RT_TOKEN", &rt.token)]);
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
    let again = run_once_with(&cfg, &close, &[("CB_TEST_RT_TOKEN", &rt.token)]);
    assert!(again.contains("0 note(s) queued"), "{again}");
    for m in &made {
        let history = rt
            .get(&format!(
                "ticket/{}/history?per_page=100&fields=Type,Data",
                m.id
            ))
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
        let t = rt.get(&format!("ticket/{}", m.id)).await;
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
    rt_stop();
}
