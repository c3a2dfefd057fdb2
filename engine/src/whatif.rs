//! What-if: the difference between two bills of the same tickets and
//! period, one under the mapping in force and one under a proposed mapping.
//!
//! Lines are matched by what they are, not by what they say: a line's
//! identity is its kind, its rule (`explanation.rule`) and its place among
//! the lines of that kind and rule (cards bought the same month share a
//! rule). A new rate changes the description, quantity shown and amount of
//! the work line, but not its identity, so it shows as one changed line.
//! Pure: no I/O, the same two documents always give the same diff.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::Serialize;

use chrono::{DateTime, Utc};

use crate::billing::{BillError, ContractBook};
use crate::document::{BillDocument, InvoiceLine, LineKind, ReportRow};
use crate::money::Money;
use crate::period::Month;
use crate::ticket::Ticket;
use crate::ticket::{CustomerKey, TicketId};

/// One line as billed under one mapping.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineFigures {
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Money,
    pub amount: Money,
}

/// A line that is new, gone or different.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineChange {
    pub kind: LineKind,
    /// The rule behind the line (`explanation.rule`), under the new mapping
    /// where the line still exists.
    pub rule: String,
    /// `null` when the line is new.
    pub old: Option<LineFigures>,
    /// `null` when the line is gone.
    pub new: Option<LineFigures>,
    /// New amount − old amount.
    pub delta: Money,
    /// The tickets on the line, under either mapping.
    pub tickets: Vec<TicketId>,
    /// Why: the rule, and the tickets that came onto or left the line or
    /// whose minutes on it changed.
    pub reason: String,
}

/// A ticket decided differently (its rule, billable or minutes billed).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TicketChange {
    pub ticket: TicketId,
    pub old_rule: Option<String>,
    pub new_rule: Option<String>,
    pub old_minutes_billed: Option<crate::minutes::Minutes>,
    pub new_minutes_billed: Option<crate::minutes::Minutes>,
}

/// What changes for one customer in one period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CustomerChange {
    pub customer: CustomerKey,
    pub period: Month,
    pub old_total: Money,
    pub new_total: Money,
    pub delta: Money,
    pub lines: Vec<LineChange>,
    /// The tickets decided differently (rule, billable, minutes billed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ticket_changes: Vec<TicketChange>,
}

/// The whole diff: every customer and period whose invoice changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WhatIf {
    pub changes: Vec<CustomerChange>,
    /// The sum of every change's delta (currencies are per customer; a
    /// mixed-currency total is only a size, each change carries its own).
    pub total_delta: Money,
}

impl WhatIf {
    /// Whether any money moves.
    pub fn moves_money(&self) -> bool {
        self.changes.iter().any(|c| !c.lines.is_empty())
    }

    /// Appends the diff of one more period.
    pub fn extend(&mut self, other: WhatIf) {
        self.total_delta += other.total_delta;
        self.changes.extend(other.changes);
        self.changes
            .sort_by(|a, b| (&a.customer, a.period).cmp(&(&b.customer, b.period)));
    }
}

type LineKey<'a> = (&'static str, &'a str, usize);

fn keyed(lines: &[InvoiceLine]) -> BTreeMap<LineKey<'_>, &InvoiceLine> {
    let mut seen: BTreeMap<(&'static str, &str), usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for l in lines {
        let base = (l.kind.as_str(), l.explanation.rule.as_str());
        let n = seen.entry(base).or_default();
        out.insert((base.0, base.1, *n), l);
        *n += 1;
    }
    out
}

fn figures(l: &InvoiceLine) -> LineFigures {
    LineFigures {
        description: l.description.clone(),
        quantity: l.quantity,
        unit_price: l.unit_price,
        amount: l.amount,
    }
}

/// Minutes of each ticket on a line, from its explanation.
fn minutes_by_ticket(l: &InvoiceLine) -> BTreeMap<&TicketId, crate::minutes::Minutes> {
    let mut m = BTreeMap::new();
    for t in &l.tickets {
        m.entry(t).or_insert(crate::minutes::Minutes::ZERO);
    }
    for i in &l.explanation.items {
        *m.entry(&i.ticket).or_insert(crate::minutes::Minutes::ZERO) += i.minutes_on_line;
    }
    m
}

/// Ticket ids for a sentence: at most ten, then how many in all (the
/// change's `tickets` lists them all).
fn some(ids: &[&str]) -> String {
    if ids.len() <= 10 {
        ids.join(", ")
    } else {
        format!("{}, … ({} in all)", ids[..10].join(", "), ids.len())
    }
}

fn reason(old: Option<&InvoiceLine>, new: Option<&InvoiceLine>) -> String {
    let rule = new.or(old).map_or("", |l| l.explanation.rule.as_str());
    let (om, nm) = (
        old.map(minutes_by_ticket).unwrap_or_default(),
        new.map(minutes_by_ticket).unwrap_or_default(),
    );
    let mut parts = Vec::new();
    match (old, new) {
        (None, Some(_)) => parts.push("line added".to_owned()),
        (Some(_), None) => parts.push("line removed".to_owned()),
        (Some(o), Some(n)) => {
            if o.unit_price != n.unit_price {
                parts.push(format!("unit price {} → {}", o.unit_price, n.unit_price));
            }
            if o.quantity != n.quantity {
                parts.push(format!("quantity {} → {}", o.quantity, n.quantity));
            }
        }
        (None, None) => {}
    }
    let added: Vec<&str> = nm
        .keys()
        .filter(|t| !om.contains_key(*t))
        .map(|t| t.as_str())
        .collect();
    let removed: Vec<&str> = om
        .keys()
        .filter(|t| !nm.contains_key(*t))
        .map(|t| t.as_str())
        .collect();
    let moved: Vec<String> = nm
        .iter()
        .filter_map(|(t, n)| {
            om.get(t)
                .filter(|o| *o != n)
                .map(|o| format!("{t} {o} → {n} min"))
        })
        .collect();
    if old.is_some() && new.is_some() {
        if !added.is_empty() {
            parts.push(format!("ticket(s) now on it: {}", some(&added)));
        }
        if !removed.is_empty() {
            parts.push(format!("ticket(s) no longer on it: {}", some(&removed)));
        }
        if added.is_empty() && removed.is_empty() && !nm.is_empty() {
            let all: Vec<&str> = nm.keys().map(|t| t.as_str()).collect();
            parts.push(format!("ticket(s): {}", some(&all)));
        }
    } else {
        let all: Vec<&str> = nm.keys().chain(om.keys()).map(|t| t.as_str()).collect();
        if !all.is_empty() {
            parts.push(format!("ticket(s): {}", some(&all)));
        }
    }
    if !moved.is_empty() {
        let shown: Vec<&str> = moved.iter().map(String::as_str).collect();
        parts.push(some(&shown));
    }
    format!("rule `{rule}`: {}", parts.join("; "))
}

fn ticket_changes(old: &[&ReportRow], new: &[&ReportRow]) -> Vec<TicketChange> {
    let o: BTreeMap<&TicketId, &ReportRow> = old.iter().map(|r| (&r.ticket, *r)).collect();
    let n: BTreeMap<&TicketId, &ReportRow> = new.iter().map(|r| (&r.ticket, *r)).collect();
    let ids: BTreeSet<&TicketId> = o.keys().chain(n.keys()).copied().collect();
    ids.into_iter()
        .filter_map(|id| {
            let (a, b) = (o.get(id), n.get(id));
            let same = match (a, b) {
                (Some(a), Some(b)) => {
                    a.rule == b.rule
                        && a.billable == b.billable
                        && a.minutes_billed == b.minutes_billed
                }
                _ => false,
            };
            (!same).then(|| TicketChange {
                ticket: id.clone(),
                old_rule: a.map(|r| r.rule.clone()),
                new_rule: b.map(|r| r.rule.clone()),
                old_minutes_billed: a.map(|r| r.minutes_billed),
                new_minutes_billed: b.map(|r| r.minutes_billed),
            })
        })
        .collect()
}

fn rows_of<'a>(d: &'a BillDocument, customer: &CustomerKey) -> Vec<&'a ReportRow> {
    d.report
        .iter()
        .filter(|r| &r.customer == customer)
        .collect()
}

/// The lines that change between `old` and `new`, two bills of the same
/// period, per customer. Customers whose lines are all the same are left out.
pub fn diff(old: &BillDocument, new: &BillDocument) -> WhatIf {
    let period = new.period.month;
    let mut customers: BTreeSet<&CustomerKey> = BTreeSet::new();
    customers.extend(old.invoices.iter().map(|i| &i.customer));
    customers.extend(new.invoices.iter().map(|i| &i.customer));
    let empty: Vec<InvoiceLine> = Vec::new();
    let mut out = WhatIf::default();
    for customer in customers {
        let inv = |d: &'_ BillDocument| {
            d.invoices
                .iter()
                .find(|i| &i.customer == customer)
                .map(|i| (i.lines.clone(), i.total_net))
        };
        let (ol, ot) = inv(old).unwrap_or_else(|| (empty.clone(), Money::default()));
        let (nl, nt) = inv(new).unwrap_or_else(|| (empty.clone(), Money::default()));
        let (ok, nk) = (keyed(&ol), keyed(&nl));
        let keys: BTreeSet<&LineKey<'_>> = ok.keys().chain(nk.keys()).collect();
        let mut lines = Vec::new();
        // Keep the new invoice's order, then the lines that are gone.
        let order = |k: &LineKey<'_>| {
            nk.get(k)
                .and_then(|l| nl.iter().position(|x| std::ptr::eq(x, *l)))
                .map_or((1, ol.len()), |p| (0, p))
        };
        let mut keys: Vec<&LineKey<'_>> = keys.into_iter().collect();
        keys.sort_by_key(|k| {
            let (a, b) = order(k);
            let gone = ok
                .get(*k)
                .and_then(|l| ol.iter().position(|x| std::ptr::eq(x, *l)))
                .unwrap_or(0);
            (a, if a == 0 { b } else { gone })
        });
        for k in keys {
            let (o, n) = (ok.get(k).copied(), nk.get(k).copied());
            let (fo, fn_) = (o.map(figures), n.map(figures));
            let same_tickets = o.map(minutes_by_ticket) == n.map(minutes_by_ticket);
            if fo == fn_ && same_tickets {
                continue;
            }
            let delta = fn_.as_ref().map_or(Money::default(), |f| f.amount)
                - fo.as_ref().map_or(Money::default(), |f| f.amount);
            let mut tickets: Vec<TicketId> = o
                .into_iter()
                .chain(n)
                .flat_map(|l| l.tickets.iter().cloned())
                .collect();
            tickets.sort();
            tickets.dedup();
            lines.push(LineChange {
                kind: n.or(o).map_or(LineKind::Work, |l| l.kind),
                rule: n
                    .or(o)
                    .map_or_else(String::new, |l| l.explanation.rule.clone()),
                reason: reason(o, n),
                old: fo,
                new: fn_,
                delta,
                tickets,
            });
        }
        if lines.is_empty() {
            continue;
        }
        let decided = ticket_changes(&rows_of(old, customer), &rows_of(new, customer));
        let delta = nt - ot;
        out.total_delta += delta;
        out.changes.push(CustomerChange {
            customer: customer.clone(),
            period,
            old_total: ot,
            new_total: nt,
            delta,
            lines,
            ticket_changes: decided,
        });
    }
    out
}

/// Bills `tickets` for each of `months` under both books and diffs them.
/// A ticket whose customer has no contract in a book is left out of that
/// book's bill (a customer added or dropped shows as lines added or gone).
/// `as_of`: when open tickets are judged; `None`, each period's end.
/// A refusal names the month it was billing.
pub fn diff_books(
    old: &ContractBook,
    new: &ContractBook,
    tickets: &[Ticket],
    months: &[Month],
    as_of: Option<DateTime<Utc>>,
) -> Result<WhatIf, (Month, BillError)> {
    let of = |book: &ContractBook| -> Vec<Ticket> {
        tickets
            .iter()
            .filter(|t| book.contracts.contains_key(t.customer.as_str()))
            .cloned()
            .collect()
    };
    let (to, tn) = (of(old), of(new));
    let mut out = WhatIf::default();
    for &m in months {
        let a = crate::bill(old, &to, m, as_of).map_err(|e| (m, e))?;
        let b = crate::bill(new, &tn, m, as_of).map_err(|e| (m, e))?;
        out.extend(diff(&a, &b));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Explanation, Invoice};
    use crate::money::Currency;
    use rust_decimal_macros::dec;

    fn doc(month: &str, invoices: Vec<(&str, Vec<InvoiceLine>)>) -> BillDocument {
        BillDocument {
            invoices: invoices
                .into_iter()
                .map(|(c, lines)| Invoice {
                    customer: CustomerKey::new(c),
                    currency: "EUR".parse::<Currency>().unwrap(),
                    total_net: lines.iter().map(|l| l.amount).sum(),
                    lines,
                })
                .collect(),
            ..BillDocument::empty(month.parse().unwrap())
        }
    }

    fn line(
        kind: LineKind,
        rule: &str,
        q: Decimal,
        price: Decimal,
        tickets: &[&str],
    ) -> InvoiceLine {
        let unit = Money::new(price);
        InvoiceLine {
            kind,
            description: format!("{rule} {q}"),
            quantity: q,
            unit_price: unit,
            amount: (unit * q).to_cents(),
            tickets: tickets.iter().map(|t| TicketId::new(*t)).collect(),
            explanation: Explanation {
                rule: rule.into(),
                detail: String::new(),
                items: Vec::new(),
            },
        }
    }

    #[test]
    fn a_new_rate_is_one_changed_line_with_both_amounts() {
        let fee = line(LineKind::MonthlyFee, "monthly_fee", dec!(1), dec!(500), &[]);
        let old = doc(
            "2026-10",
            vec![(
                "acme",
                vec![
                    fee.clone(),
                    line(LineKind::Work, "hourly rate", dec!(2.5), dec!(40), &["T-1"]),
                ],
            )],
        );
        let new = doc(
            "2026-10",
            vec![(
                "acme",
                vec![
                    fee,
                    line(LineKind::Work, "hourly rate", dec!(2.5), dec!(45), &["T-1"]),
                ],
            )],
        );
        let d = diff(&old, &new);
        assert_eq!(d.changes.len(), 1);
        let c = &d.changes[0];
        assert_eq!(c.lines.len(), 1, "the fee did not change");
        let l = &c.lines[0];
        assert_eq!(l.old.as_ref().unwrap().amount, Money::new(dec!(100)));
        assert_eq!(l.new.as_ref().unwrap().amount, Money::new(dec!(112.50)));
        assert_eq!(l.delta, Money::new(dec!(12.50)));
        assert_eq!(c.delta, Money::new(dec!(12.50)));
        assert_eq!(d.total_delta, Money::new(dec!(12.50)));
        assert!(
            l.reason.contains("hourly rate") && l.reason.contains("unit price 40.00 → 45.00"),
            "{}",
            l.reason
        );
        assert!(d.moves_money());
    }

    #[test]
    fn same_bills_give_no_change_and_a_new_line_names_its_tickets() {
        let fee = line(LineKind::MonthlyFee, "monthly_fee", dec!(1), dec!(500), &[]);
        let old = doc(
            "2026-10",
            vec![("acme", vec![fee.clone()]), ("beta", vec![fee.clone()])],
        );
        assert_eq!(diff(&old, &old), WhatIf::default());
        let new = doc(
            "2026-10",
            vec![
                (
                    "acme",
                    vec![
                        fee.clone(),
                        line(LineKind::Work, "hourly rate", dec!(1), dec!(60), &["T-9"]),
                    ],
                ),
                ("beta", vec![fee.clone()]),
            ],
        );
        let d = diff(&old, &new);
        assert_eq!(d.changes.len(), 1);
        assert_eq!(d.changes[0].customer.as_str(), "acme");
        let l = &d.changes[0].lines[0];
        assert!(l.old.is_none());
        assert_eq!(l.delta, Money::new(dec!(60)));
        assert!(
            l.reason.contains("line added") && l.reason.contains("T-9"),
            "{}",
            l.reason
        );
        // And back: the line is gone, a negative delta.
        let back = diff(&new, &old);
        assert_eq!(back.total_delta, Money::new(dec!(-60)));
        assert!(back.changes[0].lines[0].new.is_none());
    }

    #[test]
    fn two_cards_of_one_month_are_matched_in_order() {
        let card = |p| line(LineKind::CardPurchase, "cards", dec!(1), p, &[]);
        let old = doc(
            "2026-10",
            vec![("acme", vec![card(dec!(900)), card(dec!(1800))])],
        );
        let new = doc(
            "2026-10",
            vec![("acme", vec![card(dec!(900)), card(dec!(1700))])],
        );
        let d = diff(&old, &new);
        assert_eq!(d.changes[0].lines.len(), 1);
        assert_eq!(d.changes[0].lines[0].delta, Money::new(dec!(-100)));
    }
}
