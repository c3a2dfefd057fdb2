//! Our SLA clock against Request Tracker's own: the real RT (started by
//! `scripts/rt-up.sh` with its clock read from a file, through libfaketime)
//! computes `Due` for a 2-business-hour response target, Mon–Fri
//! 09:00–17:00 Europe/Riga; tickets are made at chosen instants across
//! nights, weekends and both DST changes, and our `sla` command must give
//! the same due instants for the same calendar.

use std::process::Command;

use crate::support::*;
use serde_json::{Value, json};

const MAPPING: &str = r#"
calendars:
  rt-hours:
    time_zone: Europe/Riga
    hours:
      mon-fri: "09:00-17:00"
value_maps:
  rt:
    priority: {"0": 3}
    state: {new: open, open: open, stalled: paused, resolved: resolved}
customers:
  rt-customer:
    currency: EUR
    time_zone: Europe/Riga
    value_map: rt
    start: 2026-01-01
    hourly_rate: "40.00"
    sla:
      calendar: rt-hours
      first_response: 2h
"#;

/// UTC instants the tickets are made at (Riga is UTC+2 in winter, +3 in
/// summer; DST ends 2026-10-25 04:00 and starts 2026-03-29 03:00 local).
const MADE_AT: [&str; 20] = [
    "2026-11-20 14:30:00", // Fri 16:30: 30 min today, 90 min Monday
    "2026-11-20 16:00:00", // Fri 18:00: after hours, Monday 11:00
    "2026-11-21 10:00:00", // Saturday
    "2026-11-22 21:59:00", // Sunday 23:59
    "2026-11-23 05:00:00", // Monday 07:00, before hours
    "2026-11-23 07:00:00", // Monday 09:00 sharp
    "2026-11-23 14:59:00", // Monday 16:59
    "2026-11-24 12:00:00", // Tuesday 14:00: the same day
    "2026-11-25 22:30:00", // Thursday 00:30 local next day
    "2026-11-26 13:45:00", // Thursday 15:45: spills into Friday
    "2026-10-23 13:30:00", // Fri 16:30 summer time; due Monday after DST ends
    "2026-10-24 09:00:00", // Saturday before the DST change
    "2026-10-25 00:30:00", // Sunday 03:30 (summer), the repeated hour follows
    "2026-10-25 01:30:00", // Sunday 03:30 again (winter)
    "2026-10-26 06:30:00", // Monday 08:30 winter time
    "2026-03-27 14:30:00", // Fri 16:30 winter; due Monday in summer time
    "2026-03-28 23:30:00", // Sunday 01:30, before the change
    "2026-03-29 02:00:00", // Sunday 05:00 summer
    "2026-03-30 05:59:00", // Monday 08:59 summer
    "2026-03-31 13:00:00", // Tuesday 16:00 summer: spills into Wednesday
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rt_and_our_clock_agree_on_twenty_due_times() {
    let _alone = crate::support::REAL_RT.lock().await;

    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    std::fs::write(&clock, MADE_AT[0]).unwrap();
    let rt = rt_up(&[("RT_FAKETIME_FILE", clock.as_path())]);
    let mut tickets = Vec::new();
    let mut rt_due = Vec::new();
    for at in MADE_AT {
        std::fs::write(&clock, at).unwrap();
        let made = rt
            .post(
                "ticket",
                json!({
                "Queue": "Support", "Subject": format!("made {at}"), "Requestor": "someone@example.com",
                "Content": "Help.", "ContentType": "text/plain"}),
            )
            .await;
        let id = made["id"].as_str().unwrap().to_owned();
        let t = rt.get(&format!("ticket/{id}")).await;
        let created = t["Created"].as_str().unwrap().to_owned();
        assert_eq!(
            created,
            format!("{}Z", at.replace(' ', "T")),
            "RT took the faked clock"
        );
        rt_due.push((id.clone(), t["Due"].as_str().unwrap().to_owned()));
        tickets.push(json!({
            "id": id, "customer": "rt-customer", "title": "t", "priority": "0",
            "created_at": created, "states": [{"at": created, "state": "new"}], "work": []}));
    }
    // Back to real time for the rest of the suite.
    rt_stop();

    let mapping = dir.path().join("rt.yaml");
    std::fs::write(&mapping, MAPPING).unwrap();
    let export = dir.path().join("export.json");
    std::fs::write(&export, json!({"tickets": tickets}).to_string()).unwrap();
    let out = succeeded(
        Command::new(bin())
            .args([
                "sla",
                "--json",
                "--as-of",
                "2027-01-01T00:00:00Z",
                "--mapping",
            ])
            .arg(&mapping)
            .arg("--tickets")
            .arg(&export),
    );
    let ours: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut agree = 0;
    for (id, due) in &rt_due {
        let row = ours
            .iter()
            .find(|r| r["ticket"] == id.as_str() && r["metric"] == "first_response")
            .unwrap_or_else(|| panic!("no clock for ticket {id}"));
        let ours = chrono::DateTime::parse_from_rfc3339(row["due_at"].as_str().unwrap()).unwrap();
        let theirs = chrono::DateTime::parse_from_rfc3339(due).unwrap();
        assert_eq!(
            ours, theirs,
            "ticket {id} made {}: we say {ours}, RT says {theirs}",
            row["ticket"]
        );
        agree += 1;
    }
    eprintln!(
        "rt sla: {agree} of {} due times agree with RT's",
        rt_due.len()
    );
}
