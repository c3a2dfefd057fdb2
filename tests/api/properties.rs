//! Property tests of the billing engine over the five example contracts
//! (`mappings/examples/`): random tickets for random customers of that book,
//! with work all over 2026 (month edges and DST weekends included), billed
//! month by month with `engine::bill`.
//!
//! Properties:
//! - (a) money: every invoice's `total_net` is the sum of its line amounts, every
//!   amount has at most two decimals, the hourly line is the report's hourly
//!   minutes × rate rounded once, the call-out line counts billable visits;
//! - (b) banks and cards: each month's closing balance is the previous month's
//!   (or a fresh term's) minus exactly what that month's report drew, and hourly
//!   work appears only once the bank is empty;
//! - (c) no minute is billed twice: a month's report lists exactly the tickets
//!   with work in it, logs exactly that work, bills it the same when every other
//!   month's work is removed, and new work never changes an earlier month;
//! - (d) balances stay within `0..=size`;
//! - (e) the bill does not depend on the order of tickets;
//! - (f) more work on a billable ticket of an hourly-only contract never lowers
//!   a total.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use engine::contract::{BankTerm, Contract};
use engine::document::{BillDocument, Invoice, InvoiceLine, LineKind, ReportRow};
use engine::minutes::Minutes;
use engine::period::Month;
use engine::ticket::{CustomerKey, StateChange, Ticket, TicketId, WorkEntry, WorkId, WorkKind};
use proptest::prelude::*;
use proptest::sample::Index;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use crate::support::{BOOK, CUSTOMERS, property_config};

/// Every category the book names: those its rules and allowances are for,
/// and those its rules bill work as.
static CATEGORIES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut named = BTreeSet::new();
    for (_, terms) in BOOK.contracts.values().flat_map(|c| &c.terms) {
        for rule in &terms.rules {
            named.extend(rule.categories.iter().flatten().map(String::as_str));
            named.extend(rule.bill_as.as_deref());
        }
        for allowance in &terms.allowances {
            named.extend(allowance.categories.iter().flatten().map(String::as_str));
        }
    }
    named.into_iter().collect()
});

/// Categories no rule lists (case matters: `Server` is not `server`).
const UNKNOWN_CATEGORIES: [&str; 3] = ["printer", "Server", ""];

const REQUESTERS: [&str; 5] = [
    "ilze@riga-bakery.example",
    "  ILZE@Riga-Bakery.example ",
    "ops@daugava.example",
    "cfo@daugava.example",
    "stranger@elsewhere.example",
];

const PRIORITIES: [&str; 5] = ["1 low", "2 normal", "3 high", "4 critical", "urgent"];

/// 2026-01-01T00:00:00Z: January 1st in every zone of the book.
const FIRST: i64 = 1_767_225_600;
/// 2026-12-31T20:00:00Z: still December 31st in every zone of the book.
const LAST: i64 = 1_798_747_200;
/// The EU DST changes of 2026 (2026-03-29 and 2026-10-25, 01:00 UTC).
const DST_CHANGES: [i64; 2] = [1_774_746_000, 1_792_890_000];

fn contract(customer: &str) -> &'static Contract {
    BOOK.contracts
        .get(customer)
        .unwrap_or_else(|| panic!("no contract for {customer}"))
}

fn tz_of(customer: &str) -> Tz {
    contract(customer).tz
}

fn month(m: u32) -> Month {
    Month::new(2026, m).expect("valid month")
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("in range")
}

/// The month (1..=12 of 2026) that `t` falls in on the wall clock of `tz`.
fn local_month(t: DateTime<Utc>, tz: Tz) -> u32 {
    let local = t.with_timezone(&tz);
    assert_eq!(local.year(), 2026, "generated work stays in 2026");
    local.month()
}

// ---------------------------------------------------------------- generators

/// An instant of 2026, often near a month edge or a DST change in `tz`.
fn instant(tz: Tz) -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        3 => FIRST..LAST,
        1 => (1u32..=12, -3 * 3600i64..3 * 3600)
            .prop_map(move |(m, off)| month(m).start(tz).timestamp() + off),
        1 => (prop::sample::select(DST_CHANGES.to_vec()), -30 * 3600i64..30 * 3600)
            .prop_map(|(t, off)| t + off),
    ]
    .prop_map(|s| at(s.clamp(FIRST, LAST - 1)))
}

/// Logged minutes: zero, whole, halves, two- and three-decimal fractions.
fn minutes() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        Just(Decimal::ZERO),
        Just(Decimal::new(75, 1)),
        Just(Decimal::from(15)),
        (1u32..=240).prop_map(Decimal::from),
        (0u32..=480).prop_map(|n| Decimal::from(n) + Decimal::new(5, 1)),
        (1i64..=10_000).prop_map(|n| Decimal::new(n, 2)),
        // Three decimals, ending in a half cent at 60.00/h.
        (1i64..=10_000).prop_map(|n| Decimal::new(10 * n + 5, 3)),
    ]
}

fn kind() -> impl Strategy<Value = WorkKind> {
    prop::sample::select(vec![WorkKind::Remote, WorkKind::Onsite, WorkKind::Phone])
}

fn category() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        6 => prop::sample::select(CATEGORIES.clone()).prop_map(Some),
        1 => Just(None),
        1 => prop::sample::select(UNKNOWN_CATEGORIES.to_vec()).prop_map(Some),
    ]
}

fn entry(tz: Tz) -> impl Strategy<Value = (DateTime<Utc>, Decimal, WorkKind)> {
    (instant(tz), minutes(), kind())
}

/// One ticket of `customer`; ids are given by [`number`].
fn ticket(customer: &'static str) -> impl Strategy<Value = Ticket> {
    let tz = tz_of(customer);
    (
        prop::option::weighted(0.9, prop::sample::select(REQUESTERS.to_vec())),
        prop::option::weighted(0.9, prop::sample::select(PRIORITIES.to_vec())),
        category(),
        prop::bool::weighted(0.1),
        instant(tz),
        prop::option::of(60i64..3 * 86_400),
        prop::option::of((0i64..86_400, 600i64..5 * 86_400)),
        prop::option::of(3_600i64..20 * 86_400),
        prop::collection::vec(entry(tz), 0..5),
    )
        .prop_map(
            move |(
                requester,
                priority,
                category,
                force_majeure,
                created,
                response,
                pause,
                resolve,
                work,
            )| {
                let mut states = vec![StateChange {
                    at: created,
                    state: "new".into(),
                }];
                if let Some((start, len)) = pause {
                    let from = created + chrono::Duration::seconds(start);
                    states.push(StateChange {
                        at: from,
                        state: "pending customer".into(),
                    });
                    states.push(StateChange {
                        at: from + chrono::Duration::seconds(len),
                        state: "open".into(),
                    });
                }
                let resolved_at = resolve.map(|r| created + chrono::Duration::seconds(r));
                if let Some(r) = resolved_at {
                    states.push(StateChange {
                        at: r,
                        state: "closed".into(),
                    });
                }
                states.sort_by_key(|s| s.at);
                Ticket {
                    source: None,
                    id: TicketId::new("unnumbered"),
                    customer: CustomerKey::new(customer),
                    requester: requester.map(str::to_owned),
                    title: format!("ticket of {customer}"),
                    priority: priority.map(Into::into),
                    category: category.map(Into::into),
                    tags: if force_majeure {
                        vec!["force-majeure".into()]
                    } else {
                        Vec::new()
                    },
                    fields: BTreeMap::new(),
                    created_at: created,
                    first_response_at: response.map(|r| created + chrono::Duration::seconds(r)),
                    resolved_at,
                    states,
                    work: work
                        .into_iter()
                        .map(|(at, minutes, kind)| WorkEntry {
                            id: WorkId::new("unnumbered"),
                            at,
                            minutes: Minutes::new(minutes).expect("non-negative"),
                            kind,
                            agent: Some("agent".into()),
                        })
                        .collect(),
                }
            },
        )
}

/// Unique ticket and work ids, in input order.
fn number(mut tickets: Vec<Ticket>) -> Vec<Ticket> {
    for (i, t) in tickets.iter_mut().enumerate() {
        t.id = TicketId::new(format!("T-{i:03}"));
        for (j, w) in t.work.iter_mut().enumerate() {
            w.id = WorkId::new(format!("W-{i:03}-{j}"));
        }
    }
    tickets
}

/// Up to `max` tickets of one to four customers drawn from `customers`.
fn tickets_of(customers: &[&'static str], max: usize) -> impl Strategy<Value = Vec<Ticket>> {
    let n = customers.len().min(4);
    prop::sample::subsequence(customers.to_vec(), 1..=n)
        .prop_flat_map(move |chosen| {
            prop::collection::vec(prop::sample::select(chosen).prop_flat_map(ticket), 0..max)
        })
        .prop_map(number)
}

fn tickets() -> impl Strategy<Value = Vec<Ticket>> {
    tickets_of(&CUSTOMERS, 24)
}

// ------------------------------------------------------------------ helpers

fn bill(tickets: &[Ticket], m: u32) -> BillDocument {
    engine::bill(&BOOK, tickets, month(m), None)
        .unwrap_or_else(|e| panic!("billing 2026-{m:02} failed: {e}"))
}

/// The bills of 2026-01 … 2026-12, each a separate run.
fn year(tickets: &[Ticket]) -> Vec<BillDocument> {
    (1..=12).map(|m| bill(tickets, m)).collect()
}

fn json(doc: &BillDocument) -> Value {
    serde_json::to_value(doc).expect("serializes")
}

/// Where two JSON values first differ, for readable failures.
fn first_diff(a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_diff(p, q).map(|d| format!(".{k}{d}")),
                (p, q) => Some(format!(".{k}: {p:?} vs {q:?}")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_diff(p, q).map(|d| format!("[{i}]{d}"))),
        _ if a == b => None,
        _ => Some(format!(": {a} vs {b}")),
    }
}

/// Fails with the first difference when the two bills differ.
fn same_bill(a: &BillDocument, b: &BillDocument, what: &str) -> Result<(), TestCaseError> {
    match first_diff(&json(a), &json(b)) {
        None => Ok(()),
        Some(d) => Err(TestCaseError::fail(format!("{what}: bills differ at {d}"))),
    }
}

fn rows<'a>(doc: &'a BillDocument, customer: &'a str) -> impl Iterator<Item = &'a ReportRow> {
    doc.report
        .iter()
        .filter(move |r| r.customer.as_str() == customer)
}

/// Minutes `doc` drew from the bank or card named `label`.
fn drawn(doc: &BillDocument, customer: &str, label: &str) -> (Decimal, u32) {
    let mut minutes = Decimal::ZERO;
    let mut punches = 0;
    for r in rows(doc, customer) {
        for d in r.draws.iter().filter(|d| d.from == label) {
            minutes += d.minutes.value();
            punches += d.punches.unwrap_or(0);
        }
    }
    (minutes, punches)
}

fn total(doc: &BillDocument, customer: &str) -> Decimal {
    doc.invoices
        .iter()
        .find(|i| i.customer.as_str() == customer)
        .map_or(Decimal::ZERO, |i| i.total_net.amount())
}

fn bank_label(name: &str, term: BankTerm, m: u32) -> String {
    match term {
        BankTerm::Month => format!("{name} 2026-{m:02}"),
        BankTerm::Quarter => format!("{name} 2026-Q{}", (m - 1) / 3 + 1),
        BankTerm::Year => format!("{name} 2026"),
        BankTerm::Once { .. } => name.to_owned(),
    }
}

/// The lines of `inv` of `kind`.
fn lines_of(inv: &Invoice, kind: LineKind) -> Vec<&InvoiceLine> {
    inv.lines.iter().filter(|l| l.kind == kind).collect()
}

/// An entry added by a test, `W-new`, of no agent.
fn added_entry(at: DateTime<Utc>, minutes: Decimal, kind: WorkKind) -> WorkEntry {
    WorkEntry {
        id: WorkId::new("W-new"),
        at,
        minutes: Minutes::new(minutes).unwrap(),
        kind,
        agent: None,
    }
}

/// The customer's work entries that fall in month `m` of its time zone.
fn entries_in(t: &Ticket, m: u32) -> impl Iterator<Item = &WorkEntry> {
    let tz = tz_of(t.customer.as_str());
    t.work.iter().filter(move |w| local_month(w.at, tz) == m)
}

/// The tickets with only their work of month `m`.
fn only_month(tickets: &[Ticket], m: u32) -> Vec<Ticket> {
    tickets
        .iter()
        .map(|t| {
            let mut t = t.clone();
            let tz = tz_of(t.customer.as_str());
            t.work.retain(|w| local_month(w.at, tz) == m);
            t
        })
        .collect()
}

fn exact_cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

// ---------------------------------------------------------------- (a) money

fn check_money(doc: &BillDocument, tickets: &[Ticket], m: u32) -> Result<(), TestCaseError> {
    let v = json(doc);
    for (inv, inv_json) in doc.invoices.iter().zip(v["invoices"].as_array().unwrap()) {
        let sum: Decimal = inv.lines.iter().map(|l| l.amount.amount()).sum();
        prop_assert_eq!(inv.total_net.amount(), sum, "{}: total_net", inv.customer);
        prop_assert!(!inv.lines.is_empty());
        for l in &inv.lines {
            let a = l.amount.amount();
            prop_assert_eq!(
                a,
                a.round_dp(2),
                "{}: `{}` has more than 2 decimals",
                inv.customer,
                l.description
            );
            // A ledger that recomputes the line (Xero) gets the same amount:
            // the quantity as shown × the unit price as shown, rounded once.
            let (q, u) = (l.quantity, l.unit_price.amount());
            prop_assert!(q.scale() <= 4, "{}: quantity {}", inv.customer, q);
            prop_assert_eq!(u, u.round_dp(2), "{}: unit price {}", inv.customer, u);
            prop_assert_eq!(
                exact_cents(q * u),
                a,
                "{}: `{}`: {} × {} is not the amount",
                inv.customer,
                l.description,
                q,
                u
            );
        }
        // The document shows money as strings with exactly two decimals.
        let shown = std::iter::once(&inv_json["total_net"]).chain(
            inv_json["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| &l["amount"]),
        );
        for s in shown {
            let s = s.as_str().expect("money is a string");
            let (_, cents) = s.split_once('.').expect("two decimals");
            prop_assert!(
                cents.len() == 2 && s.parse::<Decimal>().is_ok(),
                "money `{}`",
                s
            );
        }

        // The hourly line is the report's hourly minutes × rate, rounded once (rule 5).
        let c = contract(inv.customer.as_str());
        let hourly: Decimal = rows(doc, inv.customer.as_str())
            .map(|r| {
                let drawn: Decimal = r
                    .draws
                    .iter()
                    .filter(|d| !d.from.starts_with("allowance "))
                    .map(|d| d.minutes.value())
                    .sum();
                r.minutes_billed.value() - drawn
            })
            .sum();
        let work = lines_of(inv, LineKind::Work);
        if hourly.is_zero() {
            prop_assert!(
                work.is_empty(),
                "{}: work line without hourly minutes",
                inv.customer
            );
        } else {
            prop_assert_eq!(work.len(), 1);
            let rate = c.terms_for(month(m)).hourly_rate.expect("rate").amount();
            // The rate per hour, or 1 × the amount where hours shown to four
            // decimals × the rate would not give the exact amount.
            let w = work[0];
            prop_assert!(
                w.unit_price.amount() == rate
                    || (w.quantity == Decimal::ONE && w.unit_price == w.amount),
                "{}: work line {} × {}",
                inv.customer,
                w.quantity,
                w.unit_price
            );
            prop_assert_eq!(
                work[0].amount.amount(),
                exact_cents(rate * hourly / Decimal::from(60)),
                "{}: {} hourly minutes × {}",
                inv.customer,
                hourly,
                rate
            );
        }

        // Call-out fees: one per onsite entry of billable work (also when an
        // allowance covered its time), none for held work.
        let fee = c.terms_for(month(m)).call_out_fee;
        let visits: usize = rows(doc, inv.customer.as_str())
            .filter(|r| r.billable || r.rule.ends_with("(covered by allowance)"))
            .map(|r| {
                let t = tickets.iter().find(|t| t.id == r.ticket).expect("ticket");
                entries_in(t, m)
                    .filter(|w| w.kind == WorkKind::Onsite)
                    .count()
            })
            .sum();
        let call_out = lines_of(inv, LineKind::CallOut);
        match fee {
            Some(fee) if visits > 0 => {
                prop_assert_eq!(call_out.len(), 1);
                prop_assert_eq!(call_out[0].quantity, Decimal::from(visits));
                prop_assert_eq!(
                    call_out[0].amount.amount(),
                    fee.amount() * Decimal::from(visits)
                );
            }
            _ => prop_assert!(call_out.is_empty()),
        }
    }
    // One invoice per customer that owes anything: none without a non-zero
    // line, always one for a monthly fee.
    for (key, c) in &BOOK.contracts {
        let mine: Vec<_> = doc.invoices.iter().filter(|i| &i.customer == key).collect();
        prop_assert!(mine.len() <= 1, "{}: {} invoices", key, mine.len());
        if let Some(inv) = mine.first() {
            prop_assert!(
                inv.lines.iter().any(|l| !l.amount.is_zero()),
                "{}: an invoice of zeros",
                key
            );
        }
        if c.is_active(month(m)) && c.terms_for(month(m)).monthly_fee.is_some() {
            prop_assert_eq!(mine.len(), 1, "{}: a monthly fee and no invoice", key);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(property_config())]

    /// (a) Totals are sums of lines, amounts have two decimals, work and
    /// call-out lines match the report.
    #[test]
    fn invoice_totals_are_sums_of_two_decimal_lines(tickets in tickets()) {
        for (i, doc) in year(&tickets).iter().enumerate() {
            check_money(doc, &tickets, i as u32 + 1)?;
        }
    }
}

// ----------------------------------------------------- (b) balances carried

fn check_balance_chain(docs: &[BillDocument]) -> Result<(), TestCaseError> {
    for c in BOOK.contracts.values() {
        let customer = c.customer.as_str();
        for bank in &c.banks {
            let mut prev: Option<(String, Decimal)> = None;
            for (i, doc) in docs.iter().enumerate() {
                let m = i as u32 + 1;
                let label = bank_label(&bank.name, bank.term, m);
                let bal = doc
                    .balances
                    .iter()
                    .find(|b| b.customer.as_str() == customer && b.name == label);
                let bal = match bal {
                    Some(b) => b.remaining_minutes.value(),
                    None => {
                        return Err(TestCaseError::fail(format!(
                            "{customer} 2026-{m:02}: no balance `{label}`"
                        )));
                    }
                };
                let opening = match &prev {
                    Some((l, rem)) if *l == label => *rem,
                    _ => bank.minutes.value(),
                };
                let (took, _) = drawn(doc, customer, &label);
                let expected = opening - took;
                prop_assert!(
                    expected >= Decimal::ZERO,
                    "{} 2026-{:02}: drew {} from {}",
                    customer,
                    m,
                    took,
                    opening
                );
                prop_assert_eq!(
                    bal,
                    expected,
                    "{} 2026-{:02} `{}`: {} − {}",
                    customer,
                    m,
                    label,
                    opening,
                    took
                );
                // The bank is drawn before anything is billed per hour.
                let hourly = doc
                    .invoices
                    .iter()
                    .filter(|inv| inv.customer.as_str() == customer)
                    .flat_map(|inv| &inv.lines)
                    .any(|l| l.kind == LineKind::Work);
                prop_assert!(
                    !hourly || bal.is_zero(),
                    "{} 2026-{:02}: hourly work with {} min left in the bank",
                    customer,
                    m,
                    bal
                );
                prev = Some((label, bal));
            }
        }
        for card in &c.cards {
            let label = format!("punch card {} ({} punches)", card.bought, card.punches);
            let mut prev = card.opening.map_or(card.punches, |o| o.punches);
            let month_end: u32 = c.add_ons.iter().map(|a| a.month_end_punches).sum();
            for (i, doc) in docs.iter().enumerate() {
                let m = i as u32 + 1;
                let last = month(m).end(c.tz) - chrono::Duration::seconds(1);
                let bal = doc
                    .balances
                    .iter()
                    .find(|b| b.customer.as_str() == customer && b.name == label);
                let starts = engine::period::local_midnight(card.bought, c.tz);
                if starts > last {
                    prop_assert!(
                        bal.is_none(),
                        "{} 2026-{:02}: a card not yet bought has a balance",
                        customer,
                        m
                    );
                    continue;
                }
                let Some(bal) = bal else {
                    return Err(TestCaseError::fail(format!(
                        "{customer} 2026-{m:02}: no balance `{label}`"
                    )));
                };
                let punches = bal.remaining_punches.expect("cards count punches");
                let (_, took) = drawn(doc, customer, &label);
                let expiry = bal.expires_at.expect("cards expire").utc();
                if expiry <= month(m).start(c.tz) {
                    prop_assert_eq!(
                        took,
                        0,
                        "{} 2026-{:02}: drew from an expired card",
                        customer,
                        m
                    );
                }
                if expiry <= last {
                    prop_assert_eq!(
                        punches,
                        0,
                        "{} 2026-{:02}: expired card keeps punches",
                        customer,
                        m
                    );
                    prev = 0;
                    continue;
                }
                prop_assert!(
                    took <= prev,
                    "{} 2026-{:02}: drew {} of {} punches",
                    customer,
                    m,
                    took,
                    prev
                );
                let after_tickets = prev - took;
                let wanted: u32 = c
                    .add_ons
                    .iter()
                    .filter(|a| a.month_end_punches > 0 && a.active_in(month(m)))
                    .map(|a| a.month_end_punches)
                    .sum();
                let checked = wanted.min(after_tickets);
                prop_assert_eq!(
                    punches,
                    after_tickets - checked,
                    "{} 2026-{:02}: {} − {} − month end",
                    customer,
                    m,
                    prev,
                    took
                );
                // Month-end punches the card cannot cover are invoiced (rule 9).
                let uncovered: Decimal = doc
                    .invoices
                    .iter()
                    .filter(|inv| inv.customer.as_str() == customer)
                    .flat_map(|inv| &inv.lines)
                    .filter(|l| l.kind == LineKind::MonthEndPunches)
                    .map(|l| l.quantity)
                    .sum();
                if month_end > 0 {
                    prop_assert_eq!(
                        uncovered,
                        Decimal::from(wanted - checked),
                        "{} 2026-{:02}: uncovered month-end punches",
                        customer,
                        m
                    );
                }
                prop_assert_eq!(
                    bal.remaining_minutes,
                    c.card_terms.punch.times(u64::from(punches))
                );
                prev = punches;
            }
        }
    }
    Ok(())
}

/// Rule 1: within a month, tickets draw in the order of their first work
/// entry in it (then id). Once a ticket of a bank customer is billed per hour,
/// no later ticket draws from that bank; once a ticket's time outgrows an
/// allowance, no later ticket draws from it.
fn check_draw_order(docs: &[BillDocument], tickets: &[Ticket]) -> Result<(), TestCaseError> {
    for (i, doc) in docs.iter().enumerate() {
        let m = i as u32 + 1;
        for c in BOOK.contracts.values() {
            let customer = c.customer.as_str();
            let mut ordered: Vec<(DateTime<Utc>, &ReportRow)> = rows(doc, customer)
                .map(|r| {
                    let t = tickets.iter().find(|t| t.id == r.ticket).expect("ticket");
                    (
                        entries_in(t, m).map(|w| w.at).min().expect("work in month"),
                        r,
                    )
                })
                .collect();
            ordered.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.ticket.cmp(&b.1.ticket)));
            for bank in &c.banks {
                let label = bank_label(&bank.name, bank.term, m);
                let mut exhausted_by: Option<&str> = None;
                for (_, r) in &ordered {
                    let from_bank: Decimal = r
                        .draws
                        .iter()
                        .filter(|d| d.from == label)
                        .map(|d| d.minutes.value())
                        .sum();
                    if let Some(first) = exhausted_by {
                        prop_assert!(
                            from_bank.is_zero(),
                            "2026-{:02}: {} drew from `{}` after {} was billed per hour",
                            m,
                            r.ticket,
                            label,
                            first
                        );
                    }
                    if r.minutes_billed.value() > from_bank {
                        exhausted_by.get_or_insert(r.ticket.as_str());
                    }
                }
            }
            for allowance in &c.terms_for(month(m)).allowances {
                let label = format!("allowance {} 2026-{m:02}", allowance.name);
                let mut outgrown_by: Option<&str> = None;
                for (_, r) in &ordered {
                    let used = r.draws.iter().any(|d| d.from == label);
                    if let Some(first) = outgrown_by {
                        prop_assert!(
                            !used,
                            "2026-{:02}: {} used `{}` after {} outgrew it",
                            m,
                            r.ticket,
                            label,
                            first
                        );
                    }
                    if r.billable
                        && !r.minutes_billed.is_zero()
                        && allowance.applies_to(r.category.as_deref())
                    {
                        outgrown_by.get_or_insert(r.ticket.as_str());
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(property_config())]

    /// (b) Billing month by month: each month's closing bank and card balance
    /// is the previous closing balance (or a fresh term) minus what that
    /// month's report drew, and hourly work shows only once a bank is empty.
    #[test]
    fn balances_carry_from_month_to_month(tickets in tickets()) {
        let docs = year(&tickets);
        check_balance_chain(&docs)?;
        check_draw_order(&docs, &tickets)?;
    }
}

// ------------------------------------------------ (c) no minute twice

/// What a report row says about one ticket's time: customer, ticket,
/// billable, category, minutes logged and billed, held.
type RowFacts = (
    String,
    String,
    bool,
    Option<String>,
    Minutes,
    Minutes,
    Option<String>,
);

fn projection(doc: &BillDocument) -> Vec<RowFacts> {
    doc.report
        .iter()
        .map(|r| {
            (
                r.customer.to_string(),
                r.ticket.to_string(),
                r.billable,
                r.category.clone(),
                r.minutes_logged,
                r.minutes_billed,
                r.held.clone(),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(property_config())]

    /// (c) Each work entry is reported and billed in its own month only.
    #[test]
    fn work_is_billed_in_its_own_month_only(tickets in tickets()) {
        let docs = year(&tickets);
        let mut logged_over_year: BTreeMap<&str, Decimal> = BTreeMap::new();
        for (i, doc) in docs.iter().enumerate() {
            let m = i as u32 + 1;
            let with_work: BTreeSet<&str> = tickets
                .iter()
                .filter(|t| entries_in(t, m).next().is_some())
                .map(|t| t.id.as_str())
                .collect();
            let reported: BTreeSet<&str> = doc.report.iter().map(|r| r.ticket.as_str()).collect();
            prop_assert_eq!(&reported, &with_work, "2026-{:02}: report rows", m);
            prop_assert_eq!(reported.len(), doc.report.len(), "one row per ticket");
            for r in &doc.report {
                let t = tickets.iter().find(|t| t.id == r.ticket).unwrap();
                let logged: Minutes = entries_in(t, m).map(|w| w.minutes).sum();
                prop_assert_eq!(r.minutes_logged, logged, "2026-{:02} {}: logged", m, r.ticket);
                *logged_over_year.entry(t.id.as_str()).or_default() += r.minutes_logged.value();
                prop_assert!(r.billable || r.minutes_billed.is_zero(), "{}: not billable but billed", r.ticket);
                prop_assert!(r.held.is_none() || !r.billable, "{}: held but billable", r.ticket);
                prop_assert!(r.billable || r.draws.iter().all(|d| d.from.starts_with("allowance ")), "{}: draws without billing", r.ticket);
            }
            // The month's rows are the same when every other month's work is gone.
            let alone = bill(&only_month(&tickets, m), m);
            prop_assert_eq!(projection(doc), projection(&alone), "2026-{:02}: rows depend on other months", m);
        }
        for t in &tickets {
            let total: Decimal = t.work.iter().map(|w| w.minutes.value()).sum();
            let seen = logged_over_year.get(t.id.as_str()).copied().unwrap_or_default();
            prop_assert_eq!(seen, total, "{}: every logged minute is reported once", t.id);
        }
    }

    /// (c) New work in month k changes no bill of an earlier month and adds
    /// exactly its minutes to the ticket's row of month k.
    #[test]
    fn new_work_changes_no_earlier_month(
        tickets in tickets(),
        which in any::<Index>(),
        m in 1u32..=12,
        frac in 0u32..1_000_000,
        minutes in minutes(),
        kind in kind(),
    ) {
        prop_assume!(!tickets.is_empty());
        let i = which.index(tickets.len());
        let tz = tz_of(tickets[i].customer.as_str());
        let (start, end) = (month(m).start(tz).timestamp(), month(m).end(tz).timestamp());
        let when = at(start + (end - start) * i64::from(frac) / 1_000_000);
        let mut more = tickets.clone();
        more[i].work.push(added_entry(when, minutes, kind));
        for earlier in 1..m {
            same_bill(&bill(&tickets, earlier), &bill(&more, earlier), &format!("2026-{earlier:02}"))?;
        }
        let before = bill(&tickets, m);
        let after = bill(&more, m);
        let logged = |doc: &BillDocument| {
            doc.report
                .iter()
                .find(|r| r.ticket == tickets[i].id)
                .map(|r| r.minutes_logged.value())
        };
        prop_assert_eq!(logged(&after), Some(logged(&before).unwrap_or_default() + minutes));
    }
}

// --------------------------------------------------- (d) balance bounds

proptest! {
    #![proptest_config(property_config())]

    /// (d) No bank or card is ever below zero or above its size.
    #[test]
    fn balances_stay_between_zero_and_size(tickets in tickets()) {
        for (i, doc) in year(&tickets).iter().enumerate() {
            let m = i as u32 + 1;
            let v = json(doc);
            for (b, bj) in doc.balances.iter().zip(v["balances"].as_array().unwrap()) {
                let c = contract(b.customer.as_str());
                let size = c
                    .banks
                    .iter()
                    .filter(|k| b.name == bank_label(&k.name, k.term, m))
                    .map(|k| k.minutes)
                    .chain(
                        c.cards
                            .iter()
                            .filter(|k| b.name == format!("punch card {} ({} punches)", k.bought, k.punches))
                            .map(|k| c.card_terms.punch.times(u64::from(k.punches))),
                    )
                    .next();
                let Some(size) = size else {
                    return Err(TestCaseError::fail(format!("2026-{m:02}: balance `{}` of {} is no bank or card", b.name, b.customer)));
                };
                let shown = bj["remaining_minutes"].as_f64().expect("a number");
                prop_assert!(shown >= 0.0, "2026-{:02} {}: {}", m, b.name, shown);
                prop_assert!(b.remaining_minutes <= size, "2026-{:02} {}: {} > {}", m, b.name, b.remaining_minutes, size);
                for d in doc.report.iter().filter(|r| r.customer == b.customer).flat_map(|r| &r.draws) {
                    if d.from == b.name {
                        prop_assert!(d.remaining_after <= size && d.minutes <= size);
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------ (e) input order

proptest! {
    #![proptest_config(property_config())]

    /// (e) Shuffling the tickets gives the identical bill document.
    #[test]
    fn bill_does_not_depend_on_ticket_order(
        (tickets, shuffled) in tickets().prop_flat_map(|t| (Just(t.clone()), Just(t).prop_shuffle())),
    ) {
        for m in 1..=12 {
            same_bill(&bill(&tickets, m), &bill(&shuffled, m), &format!("2026-{m:02}"))?;
        }
    }
}

/// A ticket with no work, created at `created` (RFC 3339), never answered.
fn unanswered(id: &str, customer: &str, priority: &str, created: &str) -> Ticket {
    let created = DateTime::parse_from_rfc3339(created)
        .unwrap()
        .with_timezone(&Utc);
    Ticket {
        source: None,
        id: TicketId::new(id),
        customer: CustomerKey::new(customer),
        requester: None,
        title: id.to_owned(),
        priority: Some(priority.into()),
        category: None,
        tags: Vec::new(),
        fields: BTreeMap::new(),
        created_at: created,
        first_response_at: None,
        resolved_at: None,
        states: vec![StateChange {
            at: created,
            state: "new".into(),
        }],
        work: Vec::new(),
    }
}

/// Regression (found by (e)): two riga-bakery tickets created before opening
/// on the same morning are both due at 17:00 (8 h first response on
/// 09:00-17:00); their warnings and breaches share an instant and used to
/// keep the input order (events were sorted by customer and instant only).
#[test]
fn events_at_the_same_instant_do_not_depend_on_ticket_order() {
    let a = unanswered("A", "riga-bakery", "2 normal", "2026-10-05T07:00:00+03:00");
    let b = unanswered("B", "riga-bakery", "2 normal", "2026-10-05T08:00:00+03:00");
    let ab = bill(&[a.clone(), b.clone()], 10);
    let ba = bill(&[b, a], 10);
    assert_eq!(
        serde_json::to_value(&ab.events).unwrap(),
        serde_json::to_value(&ba.events).unwrap()
    );
}

/// Regression (found by (e)): two breached priority-1 targets of
/// poznan-clinic in one month; the service-credit explanation used to list
/// them in input order (the SLA rows before they are sorted).
#[test]
fn service_credit_explanation_does_not_depend_on_ticket_order() {
    let a = unanswered(
        "A",
        "poznan-clinic",
        "4 critical",
        "2026-10-05T10:00:00+02:00",
    );
    let b = unanswered(
        "B",
        "poznan-clinic",
        "4 critical",
        "2026-10-06T10:00:00+02:00",
    );
    let ab = bill(&[a.clone(), b.clone()], 10);
    let ba = bill(&[b, a], 10);
    let detail = |d: &BillDocument| {
        d.invoices
            .iter()
            .flat_map(|i| &i.lines)
            .find(|l| l.kind == LineKind::ServiceCredit)
            .map(|l| l.explanation.detail.clone())
    };
    assert!(detail(&ab).is_some());
    assert_eq!(detail(&ab), detail(&ba));
}

/// Regression (found by (a)), rule 5: "amounts inside a line are exact
/// (minutes × rate / 60); each line's amount is rounded half-up to cents
/// once". 15.125 min of paid baltic-retail work at 60.00/h is exactly 15.125
/// EUR: 15.13. Computing `minutes / 60` first (28 significant digits:
/// 0.2520833…33) and then × 60.00 gives 15.12499…98, which showed 15.12.
#[test]
fn hourly_amount_is_exact_minutes_times_rate() {
    let mut t = unanswered(
        "A",
        "baltic-retail",
        "2 normal",
        "2026-10-05T10:00:00+03:00",
    );
    t.requester = Some("anyone@baltic-retail.example".into());
    t.category = Some("consultation".into());
    t.work.push(WorkEntry {
        id: WorkId::new("W-1"),
        at: t.created_at,
        minutes: Minutes::new(Decimal::new(15_125, 3)).unwrap(),
        kind: WorkKind::Remote,
        agent: None,
    });
    let doc = bill(&[t], 10);
    let line = doc
        .invoices
        .iter()
        .flat_map(|i| &i.lines)
        .find(|l| l.kind == LineKind::Work)
        .expect("a work line");
    assert_eq!(line.amount.to_string(), "15.13");
}

// --------------------------------------------- (f) hourly-only monotone

/// Customers whose every minute of authorized work is billed per hour.
const HOURLY_ONLY: [&str; 2] = ["riga-bakery", "walkin-co"];

proptest! {
    #![proptest_config(property_config())]

    /// (f) Under an hourly-only contract, more minutes on a billable ticket
    /// never lower any month's total, and change no other month.
    #[test]
    fn more_minutes_never_lower_an_hourly_total(
        tickets in tickets_of(&HOURLY_ONLY, 12),
        which in any::<Index>(),
        entry_index in any::<Index>(),
        extra in minutes(),
        new_entry in prop::option::of(entry(tz_of("riga-bakery"))),
    ) {
        prop_assume!(!tickets.is_empty());
        let mut tickets = tickets;
        let i = which.index(tickets.len());
        // Make the ticket billable: an authorized requester, a category.
        tickets[i].requester = Some("ilze@riga-bakery.example".into());
        let customer = tickets[i].customer.to_string();
        let mut more = tickets.clone();
        let changed_month = match new_entry {
            Some((when, minutes, kind)) => {
                more[i].work.push(added_entry(when, minutes, kind));
                local_month(when, tz_of(&customer))
            }
            None => {
                prop_assume!(!more[i].work.is_empty());
                let j = entry_index.index(more[i].work.len());
                let w = &mut more[i].work[j];
                w.minutes += Minutes::new(extra).unwrap();
                local_month(w.at, tz_of(&customer))
            }
        };
        for m in 1..=12 {
            let (before, after) = (bill(&tickets, m), bill(&more, m));
            let (b, a) = (total(&before, &customer), total(&after, &customer));
            if m == changed_month {
                prop_assert!(a >= b, "2026-{:02}: total fell from {} to {}", m, b, a);
                let billed = |d: &BillDocument| d.report.iter().find(|r| r.ticket == tickets[i].id).map(|r| r.minutes_billed);
                prop_assert!(billed(&after) >= billed(&before));
            } else {
                prop_assert_eq!(a, b, "2026-{:02}: another month changed", m);
            }
        }
    }
}

/// The book holds exactly the customers the generators draw from.
#[test]
fn the_book_has_the_customers_the_generators_use() {
    let keys: BTreeSet<&str> = BOOK.contracts.keys().map(CustomerKey::as_str).collect();
    assert_eq!(keys, CUSTOMERS.into_iter().collect());
}
