//! The public scenarios: `bill` on each `tickets.json` must match every field of
//! each `expected*.json` (money as decimals, timestamps as instants).
//!
//! `expected.json` is the bill for 2026-10; `expected-YYYY-MM.json` names its month.
//! Lists are matched by their keys (invoice: customer; report: customer and
//! ticket; sla: ticket and metric; balance: customer and, when given, name), and
//! the output may hold no invoice, report row or SLA row the file does not list.

use std::path::{Path, PathBuf};

use crate::support::offline_bill;
use chrono::DateTime;
use rust_decimal::Decimal;
use serde_json::Value;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios")
}

fn mapping_for(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("mappings/examples/{scenario}.yaml"))
}

/// Compares one expected value with the actual one; money and instants by value.
fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(e), Value::String(a)) => {
            if let (Ok(e), Ok(a)) = (
                DateTime::parse_from_rfc3339(e),
                DateTime::parse_from_rfc3339(a),
            ) {
                return e == a;
            }
            if let (Ok(e), Ok(a)) = (e.parse::<Decimal>(), a.parse::<Decimal>()) {
                return e == a && a.scale() == 2;
            }
            e == a
        }
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        _ => expected == actual,
    }
}

fn key(item: &Value, fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| item.get(*f).map(Value::to_string).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("/")
}

fn compare_list(
    section: &str,
    keys: &[&str],
    expected: &[Value],
    actual: &[Value],
    exhaustive: bool,
    errors: &mut Vec<String>,
) {
    for e in expected {
        let k = key(e, keys);
        let found: Vec<&Value> = actual
            .iter()
            .filter(|a| key(a, keys) == k)
            .filter(|a| e.get("name").is_none() || a.get("name") == e.get("name"))
            .collect();
        match found.as_slice() {
            [a] => {
                for (field, ev) in e.as_object().unwrap() {
                    match a.get(field) {
                        Some(av) if same(ev, av) => {}
                        other => errors.push(format!(
                            "{section} {k}: {field} expected {ev}, got {}",
                            other.map_or("nothing".into(), Value::to_string)
                        )),
                    }
                }
            }
            [] => errors.push(format!("{section} {k}: missing")),
            many => errors.push(format!("{section} {k}: {} rows match", many.len())),
        }
    }
    if exhaustive {
        for a in actual {
            let k = key(a, keys);
            if !expected.iter().any(|e| key(e, keys) == k) {
                errors.push(format!("{section} {k}: not expected"));
            }
        }
    }
}

fn check(scenario: &str, expected_file: &str, period: &str) {
    let dir = scenarios_dir().join(scenario);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(expected_file)).unwrap()).unwrap();
    let actual = offline_bill(&mapping_for(scenario), &dir.join("tickets.json"), period);
    let mut errors = Vec::new();
    let list = |v: &Value, s: &str| {
        v.get(s)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for (section, keys, exhaustive) in [
        ("invoices", &["customer"][..], true),
        ("report", &["customer", "ticket"][..], true),
        ("sla", &["ticket", "metric"][..], true),
        ("balances", &["customer"][..], false),
    ] {
        if expected.get(section).is_some() {
            compare_list(
                section,
                keys,
                &list(&expected, section),
                &list(&actual, section),
                exhaustive,
                &mut errors,
            );
        }
    }
    // Balances: the same number per customer as expected.
    let eb = list(&expected, "balances");
    let ab = list(&actual, "balances");
    if eb.len() != ab.len() {
        errors.push(format!(
            "balances: expected {} rows, got {}",
            eb.len(),
            ab.len()
        ));
    }
    // Every invoice's total is the sum of its lines.
    for inv in list(&actual, "invoices") {
        let total: Decimal = inv["total_net"].as_str().unwrap().parse().unwrap();
        let sum: Decimal = inv["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["amount"].as_str().unwrap().parse::<Decimal>().unwrap())
            .sum();
        if total != sum {
            errors.push(format!(
                "invoice {}: total {total} is not the sum of its lines {sum}",
                inv["customer"]
            ));
        }
    }
    assert!(
        errors.is_empty(),
        "{scenario}/{expected_file} ({period}):\n  {}",
        errors.join("\n  ")
    );
}

#[test]
fn lv_it_october() {
    check("lv-it", "expected.json", "2026-10");
}

#[test]
fn moneo_october() {
    check("moneo", "expected.json", "2026-10");
}

#[test]
fn akte_sla_october() {
    check("akte-sla", "expected.json", "2026-10");
}

#[test]
fn trinax_october() {
    check("trinax", "expected.json", "2026-10");
}

#[test]
fn trinax_november() {
    check("trinax", "expected-2026-11.json", "2026-11");
}

#[test]
fn itech_klippekort_october() {
    check("itech-klippekort", "expected.json", "2026-10");
}

/// Every `expected*.json` in the fixtures has a test above.
#[test]
fn every_expected_file_is_checked() {
    let covered = [
        "lv-it/expected.json",
        "moneo/expected.json",
        "akte-sla/expected.json",
        "trinax/expected.json",
        "trinax/expected-2026-11.json",
        "itech-klippekort/expected.json",
    ];
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let dir = entry.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("expected") {
                let rel = format!("{}/{name}", dir.file_name().unwrap().to_string_lossy());
                assert!(covered.contains(&rel.as_str()), "{rel} has no test");
            }
        }
    }
}

/// A card's use adds up month by month: what was left, less what tickets
/// and add-ons (itech's monthly check) drew, is what is left, while nothing
/// new is bought and nothing expires.
#[test]
fn what_a_card_lost_in_a_month_is_what_tickets_and_add_ons_drew() {
    let tickets = scenarios_dir().join("itech-klippekort/tickets.json");
    let mapping = mapping_for("itech-klippekort");
    let left = |bill: &Value, customer: &str| -> Decimal {
        bill["balances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["customer"] == customer)
            .map(|b| Decimal::from(b["remaining_minutes"].as_u64().unwrap()))
            .sum()
    };
    let drawn = |bill: &Value, customer: &str| -> Decimal {
        let tickets = bill["report"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["customer"] == customer)
            .flat_map(|r| r["draws"].as_array().cloned().unwrap_or_default());
        let add_ons = bill["add_on_draws"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["customer"] == customer)
            .flat_map(|a| a["draws"].as_array().cloned().unwrap_or_default());
        tickets
            .chain(add_ons)
            .map(|d| Decimal::from(d["minutes"].as_u64().unwrap()))
            .sum()
    };
    let september = offline_bill(&mapping, &tickets, "2026-09");
    let october = offline_bill(&mapping, &tickets, "2026-10");
    let customer = "nordhavn-arkitekter";
    assert!(drawn(&september, customer) > Decimal::ZERO);
    assert_eq!(
        left(&september, customer) - drawn(&october, customer),
        left(&october, customer),
        "{october:#}"
    );
}

/// valby's card (2021-10-01, five years) ends on 2026-10-01 with 3 punches
/// left: the October bill says they were lost, when, and September's does not.
#[test]
fn a_card_that_ends_with_punches_left_says_how_many_were_lost() {
    let tickets = scenarios_dir().join("itech-klippekort/tickets.json");
    let mapping = mapping_for("itech-klippekort");
    let expired = |period: &str| -> Vec<Value> {
        offline_bill(&mapping, &tickets, period)["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "card_expired")
            .cloned()
            .collect()
    };
    assert!(expired("2026-09").is_empty());
    let october = expired("2026-10");
    assert_eq!(october.len(), 1, "{october:?}");
    assert_eq!(october[0]["customer"], "valby-tandlaege");
    assert_eq!(october[0]["forfeited_punches"], 3);
    assert_eq!(october[0]["at"], "2026-10-01T00:00:00+02:00");
    assert!(
        expired("2026-11").is_empty(),
        "said once, in the month it ended"
    );
}
