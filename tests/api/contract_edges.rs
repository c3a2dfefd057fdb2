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

/// Ticket A-1 of poznan-clinic (akte-sla), with its `states` and `work`
/// (JSON list items).
fn ticket(priority: &str, created: &str, states: &str, work: &str) -> String {
    format!(
        r#"{{"id":"A-1","customer":"poznan-clinic","requester":"it@poznan-clinic.example","title":"t","priority":"{priority}","category":"server","tags":[],"fields":{{}},"created_at":"{created}","first_response_at":null,"resolved_at":null,"states":[{states}],"work":[{work}]}}"#
    )
}

/// [`bill`] of one ticket against the akte-sla example as it is.
fn bill_akte(ticket: String, period: &str, as_of: Option<&str>) -> BillDocument {
    bill("akte-sla", |m| m, &export(&[ticket]), period, as_of)
}

fn export(tickets: &[String]) -> String {
    format!(r#"{{"tickets":[{}]}}"#, tickets.join(","))
}

#[test]
fn an_hour_bank_is_not_drawn_before_the_contract_starts() {
    let t = ticket(
        "2 normal",
        "2026-06-10T09:00:00+02:00",
        "",
        r#"{"id":"W1","at":"2026-06-10T10:00:00+02:00","minutes":300,"kind":"remote"}"#,
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
    let t = ticket("4 critical", "2026-09-30T23:50:00+02:00", "", "");
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
    let t = ticket("4 critical", "2026-10-05T09:00:00+02:00", states, "");
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
    let t = ticket("1 low", "2026-10-05T09:00:00+02:00", "", "");
    let doc = bill_akte(t, "2026-10", Some("2026-10-05T11:00:00+02:00"));
    let s = &doc.sla_summary[0];
    assert_eq!((s.met_in_time, s.pending, s.breached), (0, 1, 0));
    assert_eq!(s.share_met, None);
}

#[test]
fn a_ticket_warned_then_paused_keeps_its_warning() {
    // Priority 3 (4 h first response on a 24/7 clock) warned at 75 % (12:00), paused at 12:30.
    let states = r#"{"at":"2026-10-05T09:00:00+02:00","state":"new"},{"at":"2026-10-05T12:30:00+02:00","state":"pending customer"}"#;
    let t = ticket("2 normal", "2026-10-05T09:00:00+02:00", states, "");
    let doc = bill_akte(t, "2026-10", Some("2026-10-05T14:00:00+02:00"));
    let fr = doc
        .sla
        .iter()
        .find(|r| r.ticket.as_str() == "A-1" && r.metric == engine::sla::Metric::FirstResponse)
        .unwrap();
    assert_eq!(fr.due_at, None, "paused before reaching the target");
    let warned = doc.events.iter().any(|e| matches!(&e.kind, EventKind::SlaWarning { ticket, due_at: None, .. } if ticket.as_str() == "A-1"));
    assert!(warned, "{:?}", doc.events);
}

/// The Swedish contract of issue 21, as a new admin would write it from
/// `mappings/README.md`: "4,500 SEK a month covers 3 hours of remote support;
/// beyond that 950 SEK/h per started 15 minutes; on-site visits 600 SEK
/// call-out plus time; onboarding free; P1 first response within one
/// business hour, Mon–Fri 08:00–17:00, Swedish public holidays, or 5 %
/// credit".
const SWEDISH: &str = r#"
calendars:
  se-office:
    time_zone: Europe/Stockholm
    hours: {mon-fri: "08:00-17:00"}
    public_holidays: SE
value_maps:
  zammad:
    priority: {"1 low": 4, "2 normal": 3, "3 high": 2, "4 critical": 1}
    state: {new: open, open: open, closed: resolved}
customers:
  nordic-co:
    currency: SEK
    time_zone: Europe/Stockholm
    value_map: zammad
    start: 2026-01-01
    monthly_fee: "4500.00"
    hourly_rate: "950.00"
    call_out_fee: "600.00"
    rounding: {step: 15m}
    rules:
      - name: onboarding is free
        when: 'ticket.category in ["onboarding"]'
        treat: free
      - name: support is billed
        treat: billable
    banks:
      - name: remote support
        size: 3h
        per: month
        kinds: [remote]
        draw: actual
    sla:
      calendar: se-office
      first_response: {1: 1h}
      service_credit: {priorities: [1], percent_of_monthly_fee: "5"}
"#;

#[test]
fn the_swedish_example_bills_as_computed_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, SWEDISH).unwrap();
    let loaded = mapping::load(&file).unwrap_or_else(|d| panic!("{d}"));
    assert!(loaded.warnings.0.is_empty(), "{}", loaded.warnings);
    let t = |id: &str, prio: &str, cat: &str, created: &str, response: &str, work: &str| {
        format!(
            r#"{{"id":"{id}","customer":"nordic-co","title":"t","priority":"{prio}","category":{cat},"created_at":"{created}","first_response_at":{response},"work":[{work}]}}"#
        )
    };
    let w = |id: &str, at: &str, minutes: u32, kind: &str| {
        format!(r#"{{"id":"{id}","at":"{at}","minutes":{minutes},"kind":"{kind}"}}"#)
    };
    let tickets = export(&[
        // 100 min remote: the bank draws 100 at actual time (80 left).
        t(
            "S-1",
            "2 normal",
            "\"support\"",
            "2026-06-02T09:00:00+02:00",
            "\"2026-06-02T09:20:00+02:00\"",
            &w("W1", "2026-06-02T10:00:00+02:00", 100, "remote"),
        ),
        // 95 min remote + 10 min phone: the bank covers 80 of the remote
        // time; 15 + 10 = 25 min are rounded to 30 (0.5 h).
        t(
            "S-2",
            "2 normal",
            "\"support\"",
            "2026-06-10T09:00:00+02:00",
            "\"2026-06-10T09:20:00+02:00\"",
            &[
                w("W2", "2026-06-10T10:00:00+02:00", 95, "remote"),
                w("W3", "2026-06-10T12:00:00+02:00", 10, "phone"),
            ]
            .join(","),
        ),
        // An on-site visit: 600 call-out; 50 min are not remote, rounded to 60.
        t(
            "S-3",
            "2 normal",
            "\"support\"",
            "2026-06-15T09:00:00+02:00",
            "\"2026-06-15T09:20:00+02:00\"",
            &w("W4", "2026-06-15T10:00:00+02:00", 50, "onsite"),
        ),
        // Onboarding is free, and has no category filter to hold S-6.
        t(
            "S-4",
            "2 normal",
            "\"onboarding\"",
            "2026-06-16T09:00:00+02:00",
            "\"2026-06-16T09:20:00+02:00\"",
            &w("W5", "2026-06-16T10:00:00+02:00", 120, "remote"),
        ),
        // P1 on Thursday 18 June 16:30: 30 min that day; Friday 19 June is
        // Midsummer Eve, so due Monday 22 June 08:30; met at 08:20. The bank
        // is used up: 10 min rounded to 15.
        t(
            "S-5",
            "4 critical",
            "\"support\"",
            "2026-06-18T16:30:00+02:00",
            "\"2026-06-22T08:20:00+02:00\"",
            &w("W6", "2026-06-22T09:00:00+02:00", 10, "remote"),
        ),
        // P1 on Tuesday 23 June 10:00, answered 11:30: breached, 5 % credit.
        t(
            "S-6",
            "4 critical",
            "null",
            "2026-06-23T10:00:00+02:00",
            "\"2026-06-23T11:30:00+02:00\"",
            "",
        ),
    ]);
    let tickets = contract_bridge::export::parse(Path::new("t.json"), &tickets).unwrap();
    let doc = engine::bill(&loaded.book, &tickets, "2026-06".parse().unwrap(), None).unwrap();

    // By hand: 4500.00 fee + (30 + 60 + 15 min = 1.75 h) × 950.00 = 1662.50
    // + 1 call-out × 600.00 − 5 % of 4500.00 = 225.00 → 6537.50 SEK.
    let inv = &doc.invoices[0];
    let lines: Vec<(LineKind, String, String)> = inv
        .lines
        .iter()
        .map(|l| (l.kind, l.quantity.to_string(), l.amount.to_string()))
        .collect();
    assert_eq!(
        lines,
        [
            (LineKind::MonthlyFee, "1".into(), "4500.00".into()),
            (LineKind::Work, "1.75".into(), "1662.50".into()),
            (LineKind::CallOut, "1".into(), "600.00".into()),
            (LineKind::ServiceCredit, "1".into(), "-225.00".into()),
        ]
    );
    assert_eq!(inv.total_net.to_string(), "6537.50");
    let row = |id: &str| doc.report.iter().find(|r| r.ticket.as_str() == id).unwrap();
    let drawn = |id: &str| -> Vec<(String, String)> {
        row(id)
            .draws
            .iter()
            .map(|d| (d.from.clone(), d.minutes.to_string()))
            .collect()
    };
    assert_eq!(
        drawn("S-1"),
        [("remote support 2026-06".to_owned(), "100".to_owned())]
    );
    assert_eq!(
        drawn("S-2"),
        [("remote support 2026-06".to_owned(), "80".to_owned())]
    );
    assert!(drawn("S-3").is_empty(), "the bank covers remote work only");
    assert_eq!(row("S-2").minutes_billed.to_string(), "110");
    assert!(!row("S-4").billable);
    assert_eq!(row("S-5").minutes_billed.to_string(), "15");
    let due = |id: &str| {
        doc.sla
            .iter()
            .find(|r| r.ticket.as_str() == id)
            .and_then(|r| r.due_at)
            .unwrap()
            .to_string()
    };
    assert_eq!(due("S-5"), "2026-06-22T08:30:00+02:00");
    assert_eq!(due("S-6"), "2026-06-23T11:00:00+02:00");
    assert_eq!(doc.balances[0].remaining_minutes.to_string(), "0");
}

#[test]
fn an_allowance_by_kind_covers_actual_time_and_the_call_out_is_still_charged() {
    // "Included hours at actual time, call-out always charged": an
    // allowance of 60 min of on-site time, and a 600.00 call-out.
    let text = SWEDISH.replace(
        "    banks:\n      - name: remote support\n        size: 3h\n        per: month\n        kinds: [remote]\n        draw: actual\n",
        "    allowances:\n      - name: on-site hour\n        kinds: [onsite]\n        per_month: 60m\n",
    );
    assert!(text.contains("on-site hour"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, text).unwrap();
    let book = mapping::load(&file).unwrap_or_else(|d| panic!("{d}")).book;
    let tickets = export(&[
        // 50 min on site plus 20 min remote: the allowance takes the 50
        // on-site minutes only; 20 remote are rounded to 30.
        r#"{"id":"K-1","customer":"nordic-co","title":"t","priority":"2 normal","category":"support","created_at":"2026-06-02T09:00:00+02:00","work":[{"id":"W1","at":"2026-06-02T10:00:00+02:00","minutes":50,"kind":"onsite"},{"id":"W2","at":"2026-06-02T12:00:00+02:00","minutes":20,"kind":"remote"}]}"#.to_owned(),
        // 10 min on site, fully covered by what is left: not billed, but the
        // visit's call-out is.
        r#"{"id":"K-2","customer":"nordic-co","title":"t","priority":"2 normal","category":"support","created_at":"2026-06-03T09:00:00+02:00","work":[{"id":"W3","at":"2026-06-03T10:00:00+02:00","minutes":10,"kind":"onsite"}]}"#.to_owned(),
    ]);
    let tickets = contract_bridge::export::parse(Path::new("t.json"), &tickets).unwrap();
    let doc = engine::bill(&book, &tickets, "2026-06".parse().unwrap(), None).unwrap();
    let amounts: Vec<(LineKind, String)> = doc.invoices[0]
        .lines
        .iter()
        .map(|l| (l.kind, l.amount.to_string()))
        .collect();
    assert_eq!(
        amounts,
        [
            (LineKind::MonthlyFee, "4500.00".into()),
            (LineKind::Work, "475.00".into()),
            (LineKind::CallOut, "1200.00".into()),
        ]
    );
    let k2 = doc
        .report
        .iter()
        .find(|r| r.ticket.as_str() == "K-2")
        .unwrap();
    assert!(!k2.billable && k2.rule.ends_with("(covered by allowance)"));
}

/// Loads the Swedish contract with its bank's `draw:` set to `draw`.
fn swedish_book(draw: &str) -> engine::ContractBook {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    std::fs::write(
        &file,
        SWEDISH.replace("draw: actual", &format!("draw: {draw}")),
    )
    .unwrap();
    mapping::load(&file).unwrap_or_else(|d| panic!("{d}")).book
}

mod kinds {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    fn kind() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["remote", "onsite", "phone"])
    }

    /// Up to six tickets of up to three entries in June 2026, whole minutes.
    fn tickets() -> impl Strategy<Value = Vec<Vec<(&'static str, u32, u32)>>> {
        prop::collection::vec(
            prop::collection::vec((kind(), 0u32..=200, 1u32..=28), 1..=3),
            1..=6,
        )
    }

    fn export_of(tickets: &[Vec<(&'static str, u32, u32)>]) -> String {
        let list: Vec<String> = tickets
            .iter()
            .enumerate()
            .map(|(i, entries)| {
                let work: Vec<String> = entries
                    .iter()
                    .enumerate()
                    .map(|(j, (kind, minutes, day))| {
                        format!(
                            r#"{{"id":"W{i}-{j}","at":"2026-06-{day:02}T10:00:00+02:00","minutes":{minutes},"kind":"{kind}"}}"#
                        )
                    })
                    .collect();
                format!(
                    r#"{{"id":"P-{i}","customer":"nordic-co","title":"t","priority":"2 normal","category":"support","created_at":"2026-06-01T09:00:00+02:00","work":[{}]}}"#,
                    work.join(",")
                )
            })
            .collect();
        export(&list)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        /// A remote-only bank draws at most a ticket's remote time (plus, when
        /// it draws rounded time, the rounding); what it does not cover is
        /// billed; and every line recomputes to its amount.
        #[test]
        fn a_bank_by_kind_draws_only_its_kind(tickets in tickets(), actual in any::<bool>()) {
            let book = swedish_book(if actual { "actual" } else { "rounded" });
            let parsed = contract_bridge::export::parse(Path::new("t.json"), &export_of(&tickets)).unwrap();
            let doc = engine::bill(&book, &parsed, "2026-06".parse().unwrap(), None).unwrap();
            let mut drawn_total = Decimal::ZERO;
            for (i, entries) in tickets.iter().enumerate() {
                let id = format!("P-{i}");
                let row = doc.report.iter().find(|r| r.ticket.as_str() == id).unwrap();
                let remote: u32 = entries.iter().filter(|e| e.0 == "remote").map(|e| e.1).sum();
                let logged: u32 = entries.iter().map(|e| e.1).sum();
                let drawn: Decimal = row.draws.iter().map(|d| d.minutes.value()).sum();
                drawn_total += drawn;
                // Rounding to 15 min adds less than 15 min.
                let limit = Decimal::from(remote) + if actual { Decimal::ZERO } else { Decimal::from(14) };
                prop_assert!(drawn <= limit, "{}: drew {} of {} remote min", id, drawn, remote);
                if remote == 0 && actual {
                    prop_assert!(row.draws.is_empty(), "{}: drew without remote time", id);
                }
                // Nothing logged goes uncharged: the bank's minutes plus what is billed.
                prop_assert!(row.minutes_billed.value() >= Decimal::from(logged), "{}", id);
            }
            prop_assert!(drawn_total <= Decimal::from(180));
            let hourly: Decimal = doc.report.iter().map(|r| {
                r.minutes_billed.value() - r.draws.iter().map(|d| d.minutes.value()).sum::<Decimal>()
            }).sum();
            let inv = &doc.invoices[0];
            let work: Decimal = inv.lines.iter().filter(|l| l.kind == LineKind::Work).map(|l| l.amount.amount()).sum();
            prop_assert_eq!(work, (hourly * Decimal::from(950) / Decimal::from(60)).round_dp(2));
            let visits = tickets.iter().flatten().filter(|e| e.0 == "onsite").count();
            let call_out: Decimal = inv.lines.iter().filter(|l| l.kind == LineKind::CallOut).map(|l| l.amount.amount()).sum();
            prop_assert_eq!(call_out, Decimal::from(600 * visits as u64));
            for l in &inv.lines {
                prop_assert_eq!((l.quantity * l.unit_price.amount()).round_dp(2), l.amount.amount());
            }
        }
    }
}
