//! The period engine: replays a customer's history month by month and bills one month.
//!
//! For each month, a customer's tickets with work in it are taken in the order
//! of their first work entry in the month, then by id (rule 1). Each ticket's
//! time is decided by the first matching rule, reduced by allowances, increased
//! by travel, rounded once per ticket per month, then drawn from hour banks (in
//! draw order) and punch cards; what remains is billed at the hourly rate.
//! Months before the billed one are replayed only for what they draw.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::condition::TicketFacts;
use crate::contract::{Bank, BankTerm, Contract, Terms, Treatment};
use crate::document::*;
use crate::minutes::Minutes;
use crate::money::Money;
use crate::period::{Month, local_midnight};
use crate::ticket::{Ticket, WorkEntry, WorkKind};
use crate::values::{ClockState, Priority};

mod sla;
pub(crate) use sla::sla_rows;

/// Every customer's contract, by customer key.
#[derive(Debug, Default)]
pub struct ContractBook {
    pub contracts: BTreeMap<crate::ticket::CustomerKey, Contract>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BillError {
    #[error("ticket {ticket}: customer `{customer}` has no contract in the mapping")]
    NoContract { ticket: String, customer: String },
    #[error("ticket id `{0}` appears more than once")]
    DuplicateTicket(String),
    #[error(
        "customer `{customer}`: ticket {ticket} has billable work in {month} but the contract sets no hourly_rate"
    )]
    NoHourlyRate {
        customer: String,
        ticket: String,
        month: Month,
    },
}

/// What one customer contributes to the bill document.
#[derive(Debug, Default)]
pub struct CustomerBill {
    pub invoice: Option<Invoice>,
    pub add_on_draws: Vec<AddOnDraw>,
    pub report: Vec<ReportRow>,
    pub balances: Vec<Balance>,
    pub sla: Vec<SlaRow>,
    pub sla_summary: Option<SlaSummary>,
    pub events: Vec<Event>,
    pub warnings: Vec<String>,
}

/// A ticket with its raw values translated by the contract's value map.
pub(crate) struct Prepared<'a> {
    pub t: &'a Ticket,
    pub priority: Option<Priority>,
    pub category: Option<&'a str>,
    pub states: Vec<(i64, ClockState)>,
}

impl<'a> Prepared<'a> {
    pub fn new(t: &'a Ticket, c: &'a Contract, warnings: &mut Vec<String>) -> Self {
        let values = &c.values;
        let priority = t.priority.as_deref().and_then(|raw| {
            let p = values.priority(raw);
            if p.is_none() {
                warnings.push(format!(
                    "ticket {}: priority `{raw}` is not in value map `{}`; targets by priority do not apply",
                    t.id, values.name
                ));
            }
            p
        });
        let states = t
            .states
            .iter()
            .map(|s| {
                let st = values.state(&s.state).unwrap_or_else(|| {
                    warnings.push(format!(
                        "ticket {}: state `{}` is not in value map `{}`; counted as open",
                        t.id, s.state, values.name
                    ));
                    ClockState::Open
                });
                (s.at.timestamp(), st)
            })
            .collect();
        Prepared {
            t,
            priority,
            category: t.category.as_deref().map(|raw| values.category(raw)),
            states,
        }
    }

    fn facts(&self, period_minutes: Minutes, onsite_visits: u32) -> TicketFacts<'a> {
        TicketFacts {
            ticket: self.t,
            priority: self.priority,
            category: self.category,
            state: self.states.last().map(|s| s.1),
            period_minutes,
            onsite_visits,
        }
    }
}

/// One ticket's work inside one month.
struct MonthWork<'a> {
    ticket: usize,
    first_at: DateTime<Utc>,
    entries: Vec<&'a WorkEntry>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TermKey {
    Month(i32, u32),
    Quarter(i32, u32),
    Year(i32),
    Once,
}

struct BankState {
    key: Option<TermKey>,
    remaining: Minutes,
}

struct CardState {
    remaining: u32,
    last_drawn: NaiveDate,
    starts: DateTime<Utc>,
    valid_until: DateTime<Utc>,
}

/// Bills one customer for `period`.
pub fn bill_customer(
    c: &Contract,
    tickets: &[&Ticket],
    period: Month,
    as_of: DateTime<Utc>,
) -> Result<CustomerBill, BillError> {
    let mut out = CustomerBill::default();
    let tz = c.tz;
    let prepared: Vec<Prepared<'_>> = tickets
        .iter()
        .map(|t| Prepared::new(t, c, &mut out.warnings))
        .collect();

    // SLA first: service credits of the period depend on it.
    let mut credit_rows: Vec<usize> = Vec::new();
    for p in &prepared {
        sla::sla_rows(c, p, as_of, &mut out);
    }
    let period_start = period.start(tz);
    let period_end = period.end(tz);
    for (i, row) in out.sla.iter().enumerate() {
        let due_in_period = row
            .due_at
            .is_some_and(|d| d.utc() >= period_start && d.utc() < period_end);
        if row.breached && !row.excluded && due_in_period {
            credit_rows.push(i);
        }
    }

    let by_month = group_work(&prepared, tz, period_end);
    let first_month = [
        Some(Month::of(c.start)),
        by_month.keys().next().copied(),
        c.cards.iter().map(|k| Month::of(k.bought)).min(),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(period)
    .min(period);

    let mut engine = Ledger::new(c);
    let mut lines: Vec<InvoiceLine> = Vec::new();
    let empty = Vec::new();
    for month in first_month.through(period) {
        let billing = month == period;
        let terms = c.terms_for(month);
        let work = by_month.get(&month).unwrap_or(&empty);
        let mut month_out = MonthOutput::default();
        engine.bill_month(
            c,
            terms,
            month,
            work,
            &prepared,
            billing,
            &mut month_out,
            &mut out.warnings,
        )?;
        engine.month_end_punches(c, terms, month, billing, &mut month_out)?;
        if billing {
            engine.card_expiries(c, month, &mut month_out.events);
        }
        if billing {
            lines.extend(fee_lines(c, terms, month));
            lines.extend(month_out.lines);
            out.report = month_out.report;
            out.events.extend(month_out.events);
            out.add_on_draws = month_out.add_on_draws;
            // A credit is a share of the fee: only in a month the fee is charged.
            if let Some(credit) =
                credit_line(terms, &credit_rows, &out.sla).filter(|_| c.is_active(month))
            {
                lines.push(credit);
            }
        }
    }
    out.balances = engine.balances(c, period);
    out.events
        .extend(sla::sla_events(c, &out.sla, period, as_of));
    out.sla_summary = sla::sla_summary(c, &out.sla, period);

    for l in &mut lines {
        let (quantity, unit_price, amount) = shown_figures(l.quantity, l.unit_price, l.amount);
        if quantity != l.quantity.normalize() {
            l.explanation.detail.push_str(&format!(
                "; shown as 1 × the amount, as {} × {} would not give the exact amount a ledger must show",
                l.quantity.normalize(),
                l.unit_price
            ));
        }
        (l.quantity, l.unit_price, l.amount) = (quantity, unit_price, amount);
    }
    if lines.iter().any(|l| !l.amount.is_zero()) {
        out.invoice = Some(Invoice {
            customer: c.customer.clone(),
            currency: c.currency,
            total_net: lines.iter().map(|l| l.amount).sum(),
            lines,
        });
    }
    out.report.sort_by(|a, b| a.ticket.cmp(&b.ticket));
    Ok(out)
}

/// Work entries up to the end of `period`, by month, in draw order.
fn group_work<'a>(
    prepared: &[Prepared<'a>],
    tz: Tz,
    period_end: DateTime<Utc>,
) -> BTreeMap<Month, Vec<MonthWork<'a>>> {
    let mut by_month: BTreeMap<Month, Vec<MonthWork<'a>>> = BTreeMap::new();
    // Most entries of a ticket fall in one month: remember its bounds to avoid
    // a time-zone lookup per entry.
    let mut bounds: Option<(DateTime<Utc>, DateTime<Utc>, Month)> = None;
    for (idx, p) in prepared.iter().enumerate() {
        let mut mine: Vec<(Month, MonthWork<'a>)> = Vec::new();
        for w in &p.t.work {
            if w.at >= period_end {
                continue;
            }
            let month = match bounds {
                Some((s, e, m)) if w.at >= s && w.at < e => m,
                _ => {
                    let m = Month::containing(w.at, tz);
                    bounds = Some((m.start(tz), m.end(tz), m));
                    m
                }
            };
            match mine.iter_mut().find(|(m, _)| *m == month) {
                Some((_, mw)) => {
                    mw.first_at = mw.first_at.min(w.at);
                    mw.entries.push(w);
                }
                None => mine.push((
                    month,
                    MonthWork {
                        ticket: idx,
                        first_at: w.at,
                        entries: vec![w],
                    },
                )),
            }
        }
        for (m, mw) in mine {
            by_month.entry(m).or_default().push(mw);
        }
    }
    for list in by_month.values_mut() {
        list.sort_by(|a, b| {
            a.first_at.cmp(&b.first_at).then_with(|| {
                prepared[a.ticket]
                    .t
                    .reference()
                    .cmp(&prepared[b.ticket].t.reference())
            })
        });
    }
    by_month
}

/// A ticket's time in a month not covered yet, by kind of work (travel
/// counts as onsite), plus what rounding added.
struct TimeLeft {
    /// Remote, onsite, phone.
    by_kind: [Minutes; 3],
    surplus: Minutes,
}

const KINDS: [WorkKind; 3] = [WorkKind::Remote, WorkKind::Onsite, WorkKind::Phone];

impl TimeLeft {
    fn of_entries(entries: &[&WorkEntry]) -> TimeLeft {
        let mut t = TimeLeft {
            by_kind: [Minutes::ZERO; 3],
            surplus: Minutes::ZERO,
        };
        for w in entries {
            t.add(w.kind, w.minutes);
        }
        t
    }

    fn slot(kind: WorkKind) -> usize {
        KINDS.iter().position(|k| *k == kind).unwrap_or(0)
    }

    fn add(&mut self, kind: WorkKind, m: Minutes) {
        let i = Self::slot(kind);
        self.by_kind[i] += m;
    }

    fn total(&self) -> Minutes {
        self.by_kind.iter().copied().sum::<Minutes>() + self.surplus
    }

    /// What is left of the kinds `covers` accepts, rounding included.
    fn of(&self, covers: impl Fn(WorkKind) -> bool) -> Minutes {
        KINDS
            .iter()
            .zip(self.by_kind)
            .filter(|(k, _)| covers(**k))
            .map(|(_, m)| m)
            .sum::<Minutes>()
            + self.surplus
    }

    /// Takes `m` (at most [`TimeLeft::of`]) from the accepted kinds in
    /// order, then from the rounding.
    fn take(&mut self, mut m: Minutes, covers: impl Fn(WorkKind) -> bool) {
        for (k, slot) in KINDS.iter().zip(self.by_kind.iter_mut()) {
            if covers(*k) {
                let t = m.min(*slot);
                *slot = *slot - t;
                m = m - t;
            }
        }
        let t = m.min(self.surplus);
        self.surplus = self.surplus - t;
    }
}

#[derive(Default)]
struct MonthOutput {
    lines: Vec<InvoiceLine>,
    add_on_draws: Vec<AddOnDraw>,
    report: Vec<ReportRow>,
    events: Vec<Event>,
}

/// Bank and card balances carried from month to month.
struct Ledger {
    banks: Vec<BankState>,
    /// Bank indices in draw order.
    bank_order: Vec<usize>,
    cards: Vec<CardState>,
    /// Card indices, oldest purchase first.
    card_order: Vec<usize>,
}

fn add_years(d: NaiveDate, years: u32) -> NaiveDate {
    d.checked_add_months(Months::new(years * 12))
        .unwrap_or(NaiveDate::MAX)
}

impl Ledger {
    fn new(c: &Contract) -> Ledger {
        let mut bank_order: Vec<usize> = (0..c.banks.len()).collect();
        bank_order.sort_by_key(|&i| (c.banks[i].draw_order, i));
        let mut card_order: Vec<usize> = (0..c.cards.len()).collect();
        card_order.sort_by_key(|&i| (c.cards[i].bought, i));
        Ledger {
            banks: c
                .banks
                .iter()
                .map(|_| BankState {
                    key: None,
                    remaining: Minutes::ZERO,
                })
                .collect(),
            bank_order,
            cards: c
                .cards
                .iter()
                .map(|k| CardState {
                    remaining: k.opening.map_or(k.punches, |o| o.punches),
                    last_drawn: k.opening.and_then(|o| o.last_drawn).unwrap_or(k.bought),
                    starts: local_midnight(k.bought, c.tz),
                    valid_until: local_midnight(
                        add_years(k.bought, c.card_terms.valid_years),
                        c.tz,
                    ),
                })
                .collect(),
            card_order,
        }
    }

    /// The term of `bank` containing local date `d`, if the bank exists then:
    /// a recurring bank only while the contract is in force, a prepaid block
    /// from its purchase to its end.
    fn term(c: &Contract, bank: &Bank, d: NaiveDate) -> Option<TermKey> {
        use chrono::Datelike;
        let m = Month::of(d);
        if !matches!(bank.term, BankTerm::Once { .. }) && !c.is_active(m) {
            return None;
        }
        match bank.term {
            BankTerm::Month => Some(TermKey::Month(m.year(), m.month())),
            BankTerm::Quarter => Some(TermKey::Quarter(m.year(), m.quarter())),
            BankTerm::Year => Some(TermKey::Year(d.year())),
            BankTerm::Once { from, until } => {
                (d >= from && until.is_none_or(|u| d < u)).then_some(TermKey::Once)
            }
        }
    }

    fn term_end(bank: &Bank, d: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
        use chrono::Datelike;
        let m = Month::of(d);
        let first = match bank.term {
            BankTerm::Month => m.next().first_day(),
            BankTerm::Quarter => {
                let q_first = Month::new(m.year(), (m.quarter() - 1) * 3 + 1).expect("valid");
                q_first.next().next().next().first_day()
            }
            BankTerm::Year => NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)?,
            BankTerm::Once { until, .. } => until?,
        };
        Some(local_midnight(first, tz))
    }

    fn card_expiry(&self, c: &Contract, i: usize) -> DateTime<Utc> {
        let st = &self.cards[i];
        match c.card_terms.idle_years {
            Some(y) => st
                .valid_until
                .min(local_midnight(add_years(st.last_drawn, y), c.tz)),
            None => st.valid_until,
        }
    }

    /// Cards whose validity or idle forfeiture ends in `month` with punches
    /// left (rule 9): nothing draws on them after that instant, so what
    /// remains at the month's end is what was lost.
    fn card_expiries(&self, c: &Contract, month: Month, events: &mut Vec<Event>) {
        let (start, end) = (month.start(c.tz), month.end(c.tz));
        for &i in &self.card_order {
            let ends = self.card_expiry(c, i);
            let st = &self.cards[i];
            if ends >= start && ends < end && st.remaining > 0 && st.starts < ends {
                events.push(Event {
                    customer: c.customer.clone(),
                    at: LocalTime::new(ends, c.tz),
                    kind: EventKind::CardExpired {
                        card: card_label(&c.cards[i]),
                        forfeited_punches: st.remaining,
                    },
                });
            }
        }
    }

    /// Draws from the banks valid at `at` that cover this ticket's category
    /// and count time as `actual` (before rounding) or not; each takes only
    /// what is left of `time` of the kinds it covers.
    #[allow(clippy::too_many_arguments)]
    fn draw_banks(
        &mut self,
        c: &Contract,
        time: &mut TimeLeft,
        category: Option<&str>,
        actual: bool,
        at: DateTime<Utc>,
        record: bool,
        draws: &mut Vec<Draw>,
        events: &mut Vec<Event>,
    ) {
        let d = at.with_timezone(&c.tz).date_naive();
        for &i in &self.bank_order {
            if time.total().is_zero() {
                break;
            }
            let bank = &c.banks[i];
            if bank.covers.actual_time != actual || !bank.covers.covers_category(category) {
                continue;
            }
            let need = time.of(|k| bank.covers.covers_kind(k));
            if need.is_zero() {
                continue;
            }
            let Some(key) = Self::term(c, bank, d) else {
                continue;
            };
            let st = &mut self.banks[i];
            if st.key != Some(key) {
                st.key = Some(key);
                st.remaining = bank.fresh_minutes();
            }
            if st.remaining.is_zero() {
                continue;
            }
            let take = need.min(st.remaining);
            let before = st.remaining;
            st.remaining = st.remaining - take;
            time.take(take, |k| bank.covers.covers_kind(k));
            if !record {
                continue;
            }
            draws.push(Draw {
                from: bank_label(bank, d),
                minutes: take,
                punches: None,
                remaining_after: st.remaining,
            });
            if let Some(th) = bank.low_balance
                && before >= th
                && st.remaining < th
            {
                events.push(Event {
                    customer: c.customer.clone(),
                    at: LocalTime::new(at, c.tz),
                    kind: EventKind::BankLow {
                        bank: bank_label(bank, d),
                        remaining_minutes: st.remaining,
                        threshold_minutes: th,
                    },
                });
            }
        }
    }

    /// Draws whole punches for `need` from cards valid at `at`; returns what is left.
    fn draw_cards(
        &mut self,
        c: &Contract,
        mut need: Minutes,
        at: DateTime<Utc>,
        record: bool,
        draws: &mut Vec<Draw>,
        events: &mut Vec<Event>,
    ) -> (Minutes, Minutes) {
        let punch = c.card_terms.punch;
        let mut punched = Minutes::ZERO;
        for oi in 0..self.card_order.len() {
            if need.is_zero() {
                break;
            }
            let i = self.card_order[oi];
            if at < self.cards[i].starts
                || at >= self.card_expiry(c, i)
                || self.cards[i].remaining == 0
            {
                continue;
            }
            let wanted = need.units_of(punch);
            let st = &mut self.cards[i];
            let take = u32::try_from(wanted).unwrap_or(u32::MAX).min(st.remaining);
            let before = st.remaining;
            st.remaining -= take;
            st.last_drawn = at.with_timezone(&c.tz).date_naive();
            let covered = punch.times(u64::from(take)).min(need);
            need = need - covered;
            punched += punch.times(u64::from(take));
            if !record {
                continue;
            }
            let card = &c.cards[i];
            draws.push(Draw {
                from: card_label(card),
                minutes: punch.times(u64::from(take)),
                punches: Some(take),
                remaining_after: punch.times(u64::from(st.remaining)),
            });
            let at_local = LocalTime::new(at, c.tz);
            if st.remaining == 0 {
                events.push(Event {
                    customer: c.customer.clone(),
                    at: at_local,
                    kind: EventKind::CardUsedUp {
                        card: card_label(card),
                    },
                });
            } else if let Some(th) = c.card_terms.low_balance
                && before >= th
                && st.remaining < th
            {
                events.push(Event {
                    customer: c.customer.clone(),
                    at: at_local,
                    kind: EventKind::CardLow {
                        card: card_label(card),
                        remaining_punches: st.remaining,
                    },
                });
            }
        }
        (need, punched)
    }

    #[allow(clippy::too_many_arguments)]
    fn bill_month(
        &mut self,
        c: &Contract,
        terms: &Terms,
        month: Month,
        work: &[MonthWork<'_>],
        prepared: &[Prepared<'_>],
        billing: bool,
        out: &mut MonthOutput,
        warnings: &mut Vec<String>,
    ) -> Result<(), BillError> {
        let mut allowance_left: Vec<Minutes> = terms.allowances.iter().map(|a| a.minutes).collect();
        let mut hourly_items: Vec<ExplainItem> = Vec::new();
        let mut hourly_minutes = Minutes::ZERO;
        let mut call_outs: u32 = 0;
        let mut call_out_tickets = Vec::new();
        let mut scratch_events = Vec::new();
        for mw in work {
            let p = &prepared[mw.ticket];
            let logged: Minutes = mw.entries.iter().map(|w| w.minutes).sum();
            let onsite = u32::try_from(
                mw.entries
                    .iter()
                    .filter(|w| w.kind == crate::ticket::WorkKind::Onsite)
                    .count(),
            )
            .unwrap_or(u32::MAX);
            let (treat, rule, category) = decide(terms, p, logged, onsite, warnings);
            // Replayed months only move balances; the billed month also
            // records rows and explanations.
            let mut draws: Vec<Draw> = Vec::new();
            let mut billable = false;
            let mut minutes_billed = Minutes::ZERO;
            let mut rule_note = "";
            if treat == Treatment::Billable {
                // Call-out fees go with the visit, whatever covers its time.
                if billing && terms.call_out_fee.is_some() && onsite > 0 {
                    call_outs += onsite;
                    call_out_tickets.push(p.t.id.clone());
                }
                // Allowances cover raw time first (rule 4), of the kinds they name.
                let mut time = TimeLeft::of_entries(&mw.entries);
                let mut allowance_minutes = Minutes::ZERO;
                for (i, a) in terms.allowances.iter().enumerate() {
                    if !a.applies_to(p.category) {
                        continue;
                    }
                    let take = time.of(|k| a.covers_kind(k)).min(allowance_left[i]);
                    if take.is_zero() {
                        continue;
                    }
                    time.take(take, |k| a.covers_kind(k));
                    allowance_left[i] = allowance_left[i] - take;
                    allowance_minutes += take;
                    if billing {
                        draws.push(Draw {
                            from: format!("allowance {} {month}", a.name),
                            minutes: take,
                            punches: None,
                            remaining_after: allowance_left[i],
                        });
                    }
                }
                if !allowance_minutes.is_zero() && time.total().is_zero() {
                    rule_note = " (covered by allowance)";
                } else {
                    billable = true;
                    let travel = terms
                        .travel_per_visit
                        .map_or(Minutes::ZERO, |t| t.times(u64::from(onsite)));
                    time.add(WorkKind::Onsite, travel);
                    let first_draw = draws.len();
                    // Banks at actual time draw before rounding ...
                    let before_actual = time.total();
                    self.draw_banks(
                        c,
                        &mut time,
                        p.category,
                        true,
                        mw.first_at,
                        billing,
                        &mut draws,
                        &mut scratch_events,
                    );
                    let actual_drawn = before_actual - time.total();
                    // ... the rest is rounded once, and the rounding is drawn
                    // by whichever bank draws next.
                    let rounded = terms.rounding.apply(time.total());
                    time.surplus = rounded - time.total();
                    self.draw_banks(
                        c,
                        &mut time,
                        p.category,
                        false,
                        mw.first_at,
                        billing,
                        &mut draws,
                        &mut scratch_events,
                    );
                    let after_banks = time.total();
                    let (after_cards, punched) = self.draw_cards(
                        c,
                        after_banks,
                        mw.first_at,
                        billing,
                        &mut draws,
                        &mut scratch_events,
                    );
                    minutes_billed = actual_drawn + (rounded - after_banks) + punched + after_cards;
                    if !after_cards.is_zero() && terms.hourly_rate.is_none() {
                        return Err(BillError::NoHourlyRate {
                            customer: c.customer.to_string(),
                            ticket: p.t.id.to_string(),
                            month,
                        });
                    }
                    hourly_minutes += after_cards;
                    if billing && !after_cards.is_zero() {
                        hourly_items.push(ExplainItem {
                            source: p.t.source.clone(),
                            ticket: p.t.id.clone(),
                            work: mw.entries.iter().map(|w| w.id.clone()).collect(),
                            minutes_logged: logged,
                            allowance_minutes,
                            travel_minutes: travel,
                            minutes_rounded: rounded,
                            rounding: terms.rounding.describe(),
                            draws: draws[first_draw..].to_vec(),
                            minutes_on_line: after_cards,
                        });
                    }
                }
            }
            if billing {
                out.report.push(ReportRow {
                    source: p.t.source.clone(),
                    customer: c.customer.clone(),
                    ticket: p.t.id.clone(),
                    title: p.t.title.clone(),
                    billable,
                    category: category.map(str::to_owned),
                    minutes_logged: logged,
                    minutes_billed,
                    held: match treat {
                        Treatment::Hold(reason) => Some(reason),
                        _ => None,
                    },
                    rule: format!("{rule}{rule_note}"),
                    draws,
                });
            }
        }
        if !billing {
            return Ok(());
        }
        out.events.append(&mut scratch_events);
        if let Some(rate) = terms.hourly_rate.filter(|_| !hourly_minutes.is_zero()) {
            let hours = hourly_minutes.hours();
            // Exact, then rounded once.
            let amount = rate.for_minutes(hourly_minutes);
            out.lines.push(InvoiceLine {
                kind: LineKind::Work,
                description: format!("Support work, {} h", display_qty(hours)),
                quantity: display_qty(hours),
                unit_price: rate,
                amount: amount.to_cents(),
                tickets: hourly_items.iter().map(|i| i.ticket.clone()).collect(),
                explanation: Explanation {
                    rule: "hourly rate".into(),
                    detail: format!(
                        "{hourly_minutes} min not covered by banks or cards × {rate}/h; per ticket per month: {}",
                        terms.rounding.describe()
                    ),
                    items: hourly_items,
                },
            });
        }
        if let Some(fee) = terms.call_out_fee.filter(|_| call_outs > 0) {
            out.lines.push(InvoiceLine {
                kind: LineKind::CallOut,
                description: format!("Call-out fee × {call_outs}"),
                quantity: Decimal::from(call_outs),
                unit_price: fee,
                amount: (fee * Decimal::from(call_outs)).to_cents(),
                tickets: call_out_tickets,
                explanation: Explanation {
                    rule: "call_out_fee".into(),
                    detail: format!("{call_outs} onsite visit(s) on billable tickets × {fee}"),
                    items: Vec::new(),
                },
            });
        }
        Ok(())
    }

    /// Add-ons that draw punches at the month's end, after the tickets (rule 9).
    fn month_end_punches(
        &mut self,
        c: &Contract,
        terms: &Terms,
        month: Month,
        billing: bool,
        out: &mut MonthOutput,
    ) -> Result<(), BillError> {
        let at = month.end(c.tz) - chrono::Duration::seconds(1);
        for a in c
            .add_ons
            .iter()
            .filter(|a| a.month_end_punches > 0 && a.active_in(month) && c.is_active(month))
        {
            let need = c.card_terms.punch.times(u64::from(a.month_end_punches));
            let mut draws = Vec::new();
            let mut events = Vec::new();
            let (left, _) = self.draw_cards(c, need, at, billing, &mut draws, &mut events);
            if !billing {
                continue;
            }
            out.events.extend(events);
            if !draws.is_empty() {
                out.add_on_draws.push(AddOnDraw {
                    customer: c.customer.clone(),
                    add_on: a.name.clone(),
                    draws,
                });
            }
            let uncovered = left.units_of(c.card_terms.punch);
            if uncovered > 0 {
                let rate = terms.hourly_rate.ok_or_else(|| BillError::NoHourlyRate {
                    customer: c.customer.to_string(),
                    ticket: format!("add-on {}", a.name),
                    month,
                })?;
                let unit = rate.for_minutes(c.card_terms.punch);
                out.lines.push(InvoiceLine {
                    kind: LineKind::MonthEndPunches,
                    description: format!("{}: {uncovered} punch(es) not covered by a card", a.name),
                    quantity: Decimal::from(uncovered),
                    unit_price: unit,
                    amount: (unit * Decimal::from(uncovered)).to_cents(),
                    tickets: Vec::new(),
                    explanation: Explanation {
                        rule: format!("add-on {}", a.name),
                        detail: format!(
                            "{} punch(es) drawn at the end of {month}; {uncovered} not covered by a valid card, billed at the hourly rate",
                            a.month_end_punches
                        ),
                        items: Vec::new(),
                    },
                });
            }
        }
        Ok(())
    }

    /// Balances read at the last instant of the period (rule 10).
    fn balances(&self, c: &Contract, period: Month) -> Vec<Balance> {
        let last = period.end(c.tz) - chrono::Duration::seconds(1);
        let d = last.with_timezone(&c.tz).date_naive();
        let mut out = Vec::new();
        for &i in &self.bank_order {
            let bank = &c.banks[i];
            let st = &self.banks[i];
            match Self::term(c, bank, d) {
                Some(key) => {
                    let remaining = if st.key == Some(key) {
                        st.remaining
                    } else {
                        bank.fresh_minutes()
                    };
                    out.push(Balance {
                        customer: c.customer.clone(),
                        name: bank_label(bank, d),
                        remaining_minutes: remaining,
                        expires_at: Self::term_end(bank, d, c.tz).map(|t| LocalTime::new(t, c.tz)),
                        remaining_punches: None,
                    });
                }
                None => {
                    // A prepaid block that has lapsed shows 0; one not yet bought is not shown.
                    if let BankTerm::Once { from, .. } = bank.term
                        && from <= d
                    {
                        out.push(Balance {
                            customer: c.customer.clone(),
                            name: bank_label(bank, d),
                            remaining_minutes: Minutes::ZERO,
                            expires_at: Self::term_end(bank, d, c.tz)
                                .map(|t| LocalTime::new(t, c.tz)),
                            remaining_punches: None,
                        });
                    }
                }
            }
        }
        for &i in &self.card_order {
            let card = &c.cards[i];
            let st = &self.cards[i];
            if st.starts > last {
                continue;
            }
            let expiry = self.card_expiry(c, i);
            let punches = if last < expiry { st.remaining } else { 0 };
            out.push(Balance {
                customer: c.customer.clone(),
                name: card_label(card),
                remaining_minutes: c.card_terms.punch.times(u64::from(punches)),
                expires_at: Some(LocalTime::new(expiry, c.tz)),
                remaining_punches: Some(punches),
            });
        }
        out
    }
}

/// First matching rule decides (rule 2 for held work).
fn decide<'t>(
    terms: &'t Terms,
    p: &Prepared<'t>,
    logged: Minutes,
    onsite: u32,
    warnings: &mut Vec<String>,
) -> (Treatment, Cow<'t, str>, Option<&'t str>) {
    if !terms.requesters.allows(p.t.requester.as_deref()) {
        return (
            Treatment::Hold("unauthorized requester".into()),
            Cow::Borrowed("authorized requesters"),
            p.category,
        );
    }
    let facts = p.facts(logged, onsite);
    for rule in &terms.rules {
        if let Some(cats) = &rule.categories {
            match p.category {
                None => {
                    return (
                        Treatment::Hold("uncategorised".into()),
                        Cow::Borrowed(rule.name.as_str()),
                        None,
                    );
                }
                Some(cat) if !cats.contains(cat) => continue,
                Some(_) => {}
            }
        }
        if let Some(cond) = &rule.when {
            match cond.eval(&facts) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    warnings.push(format!(
                        "ticket {}: rule `{}`: condition `{}` failed ({e}); treated as not applying",
                        p.t.id,
                        rule.name,
                        cond.source()
                    ));
                    continue;
                }
            }
        }
        let category = rule.bill_as.as_deref().or(p.category);
        return (
            rule.treat.clone(),
            Cow::Borrowed(rule.name.as_str()),
            category,
        );
    }
    match p.category {
        None => (
            Treatment::Hold("uncategorised".into()),
            Cow::Borrowed("no rule matched"),
            None,
        ),
        Some(cat) => (
            Treatment::Hold("unknown category".into()),
            Cow::Owned(format!("no rule for category `{cat}`")),
            Some(cat),
        ),
    }
}

fn bank_label(bank: &Bank, d: NaiveDate) -> String {
    use chrono::Datelike;
    let m = Month::of(d);
    match bank.term {
        BankTerm::Month => format!("{} {m}", bank.name),
        BankTerm::Quarter => format!("{} {}-Q{}", bank.name, m.year(), m.quarter()),
        BankTerm::Year => format!("{} {}", bank.name, d.year()),
        BankTerm::Once { .. } => bank.name.clone(),
    }
}

pub(crate) fn card_label(card: &crate::contract::Card) -> String {
    format!("punch card {} ({} punches)", card.bought, card.punches)
}

/// Quantities are shown with at most four decimals; amounts stay exact.
fn display_qty(d: Decimal) -> Decimal {
    d.round_dp(4).normalize()
}

fn fee_lines(c: &Contract, terms: &Terms, month: Month) -> Vec<InvoiceLine> {
    let mut lines = Vec::new();
    let one =
        |kind, description: String, amount: Money, rule: String, detail: String| InvoiceLine {
            kind,
            description,
            quantity: Decimal::ONE,
            unit_price: amount,
            amount: amount.to_cents(),
            tickets: Vec::new(),
            explanation: Explanation {
                rule,
                detail,
                items: Vec::new(),
            },
        };
    if c.is_active(month) {
        if let Some(fee) = &terms.monthly_fee {
            lines.push(one(
                LineKind::MonthlyFee,
                format!("{}, {month}", fee.name),
                fee.amount,
                "monthly_fee".into(),
                format!("contract {} active in {month}", c.name),
            ));
        }
        for a in c.add_ons.iter().filter(|a| a.active_in(month)) {
            if let Some(fee) = a.monthly_fee {
                lines.push(one(
                    LineKind::AddOn,
                    format!("Add-on {}, {month}", a.name),
                    fee,
                    format!("add-on {}", a.name),
                    format!("subscribed in {month}"),
                ));
            }
        }
    }
    for card in c
        .cards
        .iter()
        .filter(|k| Month::of(k.bought) == month && k.opening.is_none())
    {
        lines.push(one(
            LineKind::CardPurchase,
            format!(
                "Punch card, {} punches ({} % discount)",
                card.punches,
                card.discount_percent.normalize()
            ),
            card.price,
            "cards".into(),
            format!("card bought {}", card.bought),
        ));
    }
    for bank in &c.banks {
        if let (BankTerm::Once { from, .. }, Some(price), None) =
            (bank.term, bank.price, bank.opening_balance)
            && Month::of(from) == month
        {
            lines.push(one(
                LineKind::BankPurchase,
                format!("{} ({} h)", bank.name, bank.minutes.hours().normalize()),
                price,
                "banks".into(),
                format!("prepaid block starting {from}"),
            ));
        }
    }
    lines
}

fn credit_line(terms: &Terms, breached: &[usize], rows: &[SlaRow]) -> Option<InvoiceLine> {
    let sla = terms.sla.as_ref()?;
    let credit = sla.credit.as_ref()?;
    let fee = terms.monthly_fee.as_ref()?;
    let mut hits: Vec<&SlaRow> = breached
        .iter()
        .map(|&i| &rows[i])
        .filter(|r| r.priority.is_some_and(|p| credit.priorities.contains(&p)))
        .collect();
    hits.sort_by(|a, b| (a.due_at, &a.ticket, a.metric).cmp(&(b.due_at, &b.ticket, b.metric)));
    let first = hits.first()?;
    let amount = -fee.amount.percent(credit.percent_of_monthly_fee);
    let tickets: BTreeSet<_> = hits.iter().map(|r| r.ticket.clone()).collect();
    Some(InvoiceLine {
        kind: LineKind::ServiceCredit,
        description: format!(
            "Service credit: {} % of the monthly fee for a breached priority-{} target",
            credit.percent_of_monthly_fee.normalize(),
            first.priority.map_or(0, Priority::get)
        ),
        quantity: Decimal::ONE,
        unit_price: amount,
        amount: amount.to_cents(),
        tickets: tickets.into_iter().collect(),
        explanation: Explanation {
            rule: "sla.service_credit".into(),
            detail: hits
                .iter()
                .map(|r| {
                    format!(
                        "{} {} due {} breached",
                        r.ticket,
                        r.metric.as_str(),
                        r.due_at.map(|d| d.to_string()).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
                + " (one credit per month at most)",
            items: Vec::new(),
        },
    })
}
