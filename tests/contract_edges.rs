//! Contract edges the public scenarios do not reach: contracts that start or
//! end mid-year, judging as of an instant inside the period, warnings on
//! tickets paused later. Each test bills a variant of an example mapping.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use engine::document::{BillDocument, EventKind, LineKind};
use engine::period::Month;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Bills `tickets` (export JSON) against the example `example` changed by `edit`.
fn bill(
    example: &str,
    edit: impl Fn(String) -> String,
    tickets: &str,
    period: &str,
    as_of: Option<&str>,
) -> BillDocument {
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(root().join(format!("mappings/examples/{example}.yaml"))).unwrap();
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, edit(text)).unwrap();
    let book = mapping::load(&file).unwrap_or_else(|d| panic!("{d}")).book;
    let tickets = contract_bridge::export::parse(Path::new("t.json"), tickets).unwrap();
    let as_of = as_of.map(|s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
    engine::bill(&book, &tickets, period.parse::<Month>().unwrap(), as_of).unwrap()
}

fn ticket(
    id: &str,
    customer: &str,
    priority: &str,
    created: &str,
    states: &str,
    work: &str,
    tags: &str,
) -> String {
    format!(
        r#"{{"id":"{id}","customer":"{customer}","requester":"it@{customer}.example","title":"t","priority":"{priority}","category":"server","tags":[{tags}],"fields":{{}},"created_at":"{created}","first_response_at":null,"resolved_at":null,"states":[{states}],"work":[{work}]}}"#
    )
}

fn export(tickets: &[String]) -> String {
    format!(r#"{{"tickets":[{}]}}"#, tickets.join(","))
}

#[test]
fn an_hour_bank_is_not_drawn_before_the_contract_starts() {
    let t = ticket(
        "A-1",
        "poznan-clinic",
        "2 normal",
        "2026-06-10T09:00:00+02:00",
        "",
        r#"{"id":"W1","at":"2026-06-10T10:00:00+02:00","minutes":300,"kind":"remote"}"#,
        "",
    );
    let doc = bill(
        "akte-sla",
        |m| m.replace("start: 2026-01-01", "start: 2026-07-15"),
        &export(&[t]),
        "2026-06",
        None,
    );
    // No fee in June, so no included hours: 300 min at 180.00/h.
    let inv = &doc.invoices[0];
    assert_eq!(inv.total_net.to_string(), "900.00");
    assert!(doc.report[0].draws.is_empty(), "{:?}", doc.report[0].draws);
    assert!(
        doc.balances.is_empty(),
        "no bank exists before the start: {:?}",
        doc.balances
    );
}

#[test]
fn no_service_credit_in_a_month_without_a_fee() {
    // A priority-1 ticket due just after the contract ended, never answered.
    let t = ticket(
        "A-1",
        "poznan-clinic",
        "4 critical",
        "2026-09-30T23:50:00+02:00",
        "",
        "",
        "",
    );
    let doc = bill(
        "akte-sla",
        |m| {
            m.replace(
                "start: 2026-01-01",
                "start: 2026-01-01\n    end: 2026-10-01",
            )
        },
        &export(&[t]),
        "2026-10",
        None,
    );
    assert!(doc.sla.iter().any(|r| r.breached), "the target is breached");
    assert!(
        doc.invoices.is_empty(),
        "no fee, so no credit and no negative invoice: {:?}",
        doc.invoices
    );
}

#[test]
fn month_end_punches_stop_when_the_contract_ends() {
    let doc = bill(
        "itech-klippekort",
        |m| {
            m.replace("    template: itech-punch-card\n    cards:\n      - bought: 2026-09-15", "    template: itech-punch-card\n    end: 2026-10-01\n    cards:\n      - bought: 2026-09-15")
        },
        &export(&[]),
        "2026-11",
        None,
    );
    let card = doc
        .balances
        .iter()
        .find(|b| b.customer.as_str() == "nordhavn-arkitekter")
        .unwrap();
    assert_eq!(
        card.remaining_punches,
        Some(19),
        "only September's month-end punch is drawn"
    );
    assert!(
        doc.invoices
            .iter()
            .all(|i| i.lines.iter().all(|l| l.kind != LineKind::MonthEndPunches))
    );
}

#[test]
fn exclusions_see_only_what_is_known_at_as_of() {
    let states = r#"{"at":"2026-10-05T09:00:00+02:00","state":"new"},{"at":"2026-10-20T09:00:00+02:00","state":"closed"}"#;
    let t = ticket(
        "A-1",
        "poznan-clinic",
        "4 critical",
        "2026-10-05T09:00:00+02:00",
        states,
        "",
        "",
    );
    let edit = |m: String| {
        m.replace(
            r#"- '"force-majeure" in ticket.tags || "customer-config" in ticket.tags'"#,
            r#"- 'ticket.state == "resolved"'"#,
        )
    };
    let doc = bill(
        "akte-sla",
        edit,
        &export(&[t]),
        "2026-10",
        Some("2026-10-10T00:00:00+02:00"),
    );
    let rows: Vec<_> = doc
        .sla
        .iter()
        .filter(|r| r.ticket.as_str() == "A-1")
        .collect();
    assert!(
        rows.iter().all(|r| !r.excluded),
        "resolved on 10-20 is unknown on 10-10: {rows:?}"
    );
    assert!(rows.iter().any(|r| r.breached));
}

#[test]
fn the_summary_counts_targets_not_yet_due_as_pending() {
    // Priority 4: first response 8 h, due 17:00; judged at 11:00.
    let t = ticket(
        "A-1",
        "poznan-clinic",
        "1 low",
        "2026-10-05T09:00:00+02:00",
        "",
        "",
        "",
    );
    let doc = bill(
        "akte-sla",
        |m| m,
        &export(&[t]),
        "2026-10",
        Some("2026-10-05T11:00:00+02:00"),
    );
    let s = &doc.sla_summary[0];
    assert_eq!((s.met_in_time, s.pending, s.breached), (0, 1, 0));
    assert_eq!(s.share_met, None);
}

#[test]
fn a_ticket_warned_then_paused_keeps_its_warning() {
    // Priority 3 (4 h first response on a 24/7 clock) warned at 75 % (12:00), paused at 12:30.
    let states = r#"{"at":"2026-10-05T09:00:00+02:00","state":"new"},{"at":"2026-10-05T12:30:00+02:00","state":"pending customer"}"#;
    let t = ticket(
        "A-1",
        "poznan-clinic",
        "2 normal",
        "2026-10-05T09:00:00+02:00",
        states,
        "",
        "",
    );
    let doc = bill(
        "akte-sla",
        |m| m,
        &export(&[t]),
        "2026-10",
        Some("2026-10-05T14:00:00+02:00"),
    );
    let fr = doc
        .sla
        .iter()
        .find(|r| r.ticket.as_str() == "A-1" && r.metric == engine::sla::Metric::FirstResponse)
        .unwrap();
    assert_eq!(fr.due_at, None, "paused before reaching the target");
    let warned = doc.events.iter().any(|e| matches!(&e.kind, EventKind::SlaWarning { ticket, due_at: None, .. } if ticket.as_str() == "A-1"));
    assert!(warned, "{:?}", doc.events);
}
