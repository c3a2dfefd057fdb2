//! Live sync you can bill from: a month closes only from complete data.
//!
//! Folder sources stand in for any source here (what is checked is the
//! daemon's gating and identity, not a vendor's shape): a source that
//! cannot be read at close time holds the months it feeds, `run --once`
//! exits 3, `status` says which source holds which customer and why, and
//! once the source reads again the drafts equal the offline bill exactly.
//! Two sources whose ticket ids overlap each bill all their tickets.

use std::path::{Path, PathBuf};

use crate::support::*;
use serde_json::{Value, json};

const CLOSE: &str = "2026-11-01T06:30:00Z";

/// lv-it's export, split by customer into two sources whose ticket ids
/// both run T-1, T-2, …: every id of one is also an id of the other.
fn overlapping_exports(dir: &Path) -> (PathBuf, PathBuf) {
    let export: Value = serde_json::from_str(
        &std::fs::read_to_string(scenarios().join("lv-it/tickets.json")).unwrap(),
    )
    .unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for t in export["tickets"].as_array().unwrap() {
        let side = if t["customer"] == "riga-bakery" {
            &mut a
        } else {
            &mut b
        };
        let mut t = t.clone();
        t["id"] = json!(format!("T-{}", side.len() + 1));
        side.push(t);
    }
    assert!(a.len() >= 2 && b.len() >= 2, "both sides hold tickets");
    let write = |name: &str, tickets: Vec<Value>| {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("tickets.json"),
            serde_json::to_string_pretty(&json!({ "tickets": tickets })).unwrap(),
        )
        .unwrap();
        folder
    };
    (write("desk-a", a), write("desk-b", b))
}

fn two_sources(dir: &Path, a: &Path, b: &Path) -> PathBuf {
    write_config(
        dir,
        &examples().join("lv-it.yaml"),
        "drafts",
        &format!(
            "{}{}{}",
            folder_source("desk-a", a),
            folder_source("desk-b", b),
            folder_target("drafts", &dir.join("drafts")),
        ),
    )
}

/// `customer → total_net` of the offline bill of lv-it's October.
fn lv_it_october() -> Vec<(String, String)> {
    let bill = offline_bill(
        &examples().join("lv-it.yaml"),
        &scenarios().join("lv-it/tickets.json"),
        "2026-10",
    );
    let mut out: Vec<(String, String)> = bill["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["customer"].as_str().unwrap().to_owned(),
                i["total_net"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `customer → total_net` of the October drafts written to `dir/drafts`.
fn october_drafts_in(dir: &Path) -> Vec<(String, String)> {
    drafts_in(&dir.join("drafts"), "_2026-10_")
}

#[test]
fn two_sources_with_the_same_ticket_ids_each_bill_all_their_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = overlapping_exports(dir.path());
    let cfg = two_sources(dir.path(), &a, &b);
    let log = run_once_with(&cfg, CLOSE, &[]);
    assert!(!log.contains("only"), "no ticket is dropped: {log}");
    assert_eq!(october_drafts_in(dir.path()), lv_it_october(), "{log}");
    let s = status(&cfg, &[]);
    let total: usize = s
        .lines()
        .filter(|l| l.trim_start().starts_with("desk-"))
        .filter_map(|l| l.split_whitespace().nth(5)?.parse::<usize>().ok())
        .sum();
    let export: Value = serde_json::from_str(
        &std::fs::read_to_string(scenarios().join("lv-it/tickets.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        total,
        export["tickets"].as_array().unwrap().len(),
        "every ticket of both sources is stored: {s}"
    );
}

#[test]
fn a_source_unreadable_at_close_time_holds_the_month_then_recovery_bills_it_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = overlapping_exports(dir.path());
    let cfg = two_sources(dir.path(), &a, &b);
    // desk-b breaks before the close: a file cut short mid-write.
    let good = std::fs::read_to_string(b.join("tickets.json")).unwrap();
    std::fs::write(b.join("tickets.json"), &good[..good.len() / 2]).unwrap();
    let out = with_config(&cfg, &["run", "--once", "--now", CLOSE]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a failed source is a failure: {log}"
    );
    assert!(log.contains("desk-b"), "{log}");
    assert!(
        october_drafts_in(dir.path()).is_empty(),
        "no draft from half the data"
    );
    let s = status(&cfg, &[]);
    assert!(s.contains("FAILING since"), "{s}");
    assert!(
        s.lines()
            .any(|l| l.starts_with("held ") && l.contains("2026-10") && l.contains("desk-b")),
        "{s}"
    );
    let json: Value =
        serde_json::from_slice(&with_config(&cfg, &["status", "--json"]).stdout).unwrap();
    assert!(
        json["held"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["sources"] == json!(["desk-b"])),
        "{json}"
    );
    let failing = json["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "desk-b")
        .unwrap();
    assert!(
        failing["last_error"]
            .as_str()
            .unwrap()
            .contains("tickets.json"),
        "{failing}"
    );
    // An hour later the file is whole again: the month closes from all of it.
    std::fs::write(b.join("tickets.json"), &good).unwrap();
    let log = run_once_with(&cfg, "2026-11-01T07:30:00Z", &[]);
    assert_eq!(october_drafts_in(dir.path()), lv_it_october(), "{log}");
    let s = status(&cfg, &[]);
    assert!(!s.contains("FAILING") && !s.contains("held "), "{s}");
}

#[test]
fn close_force_closes_a_held_month_and_the_draft_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = overlapping_exports(dir.path());
    let cfg = two_sources(dir.path(), &a, &b);
    std::fs::write(b.join("tickets.json"), "{\"tickets\": [").unwrap();
    let out = with_config(&cfg, &["run", "--once", "--now", CLOSE]);
    assert_eq!(out.status.code(), Some(3));
    let held = with_config(&cfg, &["close", "--period", "2026-10", "--now", CLOSE]);
    assert!(held.status.success());
    assert!(
        october_drafts_in(dir.path()).is_empty(),
        "still held without --force"
    );
    let forced = with_config(
        &cfg,
        &["close", "--period", "2026-10", "--force", "--now", CLOSE],
    );
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let drafts = october_drafts_in(dir.path());
    assert!(!drafts.is_empty());
    let path = dir.path().join("drafts/draft_riga-bakery_2026-10_r1.json");
    let draft: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let forced = draft["draft"]["forced"].as_str().unwrap();
    assert!(
        forced.contains("--force") && forced.contains("desk-b"),
        "{forced}"
    );
}

/// Every sample month, through the daemon: each draft it pushes equals the
/// offline `bill --json` of the same export, line for line and field for
/// field (kind, description, quantity, unit price, amount, tickets), with
/// the same total and currency.
#[test]
fn the_daemons_drafts_equal_the_offline_bill_field_for_field_for_every_sample_month() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = drafts_config(dir.path(), &samples());
    run_once_with(&cfg, "2026-12-01T12:00:00Z", &[]);
    let scenarios = ["lv-it", "moneo", "akte-sla", "trinax", "itech-klippekort"];
    let mut compared = 0;
    for period in ["2026-10", "2026-11"] {
        for s in scenarios {
            let bill = offline_bill(
                &root().join(format!("mappings/examples/{s}.yaml")),
                &root().join(format!("tests/fixtures/scenarios/{s}/tickets.json")),
                period,
            );
            for inv in bill["invoices"].as_array().unwrap() {
                let customer = inv["customer"].as_str().unwrap();
                let path = dir
                    .path()
                    .join(format!("drafts/draft_{customer}_{period}_r1.json"));
                let draft: Value = serde_json::from_str(
                    &std::fs::read_to_string(&path)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
                )
                .unwrap();
                let draft = &draft["draft"];
                assert_eq!(draft["total_net"], inv["total_net"], "{customer} {period}");
                assert_eq!(draft["currency"], inv["currency"], "{customer} {period}");
                let fields = [
                    "kind",
                    "description",
                    "quantity",
                    "unit_price",
                    "amount",
                    "tickets",
                ];
                let pick = |l: &Value| -> Vec<String> {
                    fields.iter().map(|f| l[*f].to_string()).collect()
                };
                let ours: Vec<Vec<String>> = draft["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(pick)
                    .collect();
                let theirs: Vec<Vec<String>> =
                    inv["lines"].as_array().unwrap().iter().map(pick).collect();
                assert_eq!(ours, theirs, "{customer} {period}");
                compared += 1;
            }
        }
    }
    assert!(compared >= 20, "{compared} customer-months compared");
}
