//! The whole bill: every customer, plus SLA rows, events and summaries.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::billing::{BillError, ContractBook, CustomerBill, Prepared, bill_customer};
use crate::contract::{Contract, Targets};
use crate::document::*;
use crate::period::Month;
use crate::sla::{ClockInput, Metric, run_clock};
use crate::ticket::Ticket;

/// Bills `period` for every customer in `book`.
///
/// `as_of` is when open tickets are judged for SLA breaches; `None` means the
/// end of the period in each contract's time zone.
pub fn bill(
    book: &ContractBook,
    tickets: &[Ticket],
    period: Month,
    as_of: Option<DateTime<Utc>>,
) -> Result<BillDocument, BillError> {
    let mut seen = HashSet::with_capacity(tickets.len());
    let mut by_customer: HashMap<&str, Vec<&Ticket>> = HashMap::new();
    for t in tickets {
        if !seen.insert(t.reference()) {
            return Err(BillError::DuplicateTicket(t.reference().to_string()));
        }
        if !book.contracts.contains_key(t.customer.as_str()) {
            return Err(BillError::NoContract {
                ticket: t.id.to_string(),
                customer: t.customer.to_string(),
            });
        }
        by_customer.entry(t.customer.as_str()).or_default().push(t);
    }
    let contracts: Vec<&Contract> = book.contracts.values().collect();
    let empty = Vec::new();
    let run = |c: &Contract| {
        let mine = by_customer.get(c.customer.as_str()).unwrap_or(&empty);
        let as_of = as_of.unwrap_or_else(|| period.end(c.tz));
        bill_customer(c, mine, period, as_of)
    };
    let results = parallel_map(&contracts, run);

    let mut doc = BillDocument {
        period: PeriodInfo { month: period },
        invoices: Vec::new(),
        report: Vec::new(),
        balances: Vec::new(),
        sla: Vec::new(),
        sla_summary: Vec::new(),
        events: Vec::new(),
        warnings: Vec::new(),
        add_on_draws: Vec::new(),
    };
    for r in results {
        let CustomerBill {
            invoice,
            add_on_draws,
            report,
            balances,
            sla,
            sla_summary,
            events,
            warnings,
        } = r?;
        doc.invoices.extend(invoice);
        doc.add_on_draws.extend(add_on_draws);
        doc.report.extend(report);
        doc.balances.extend(balances);
        doc.sla.extend(sla);
        doc.sla_summary.extend(sla_summary);
        doc.events.extend(events);
        doc.warnings.extend(warnings);
    }
    doc.sla
        .sort_by(|a, b| a.ticket.cmp(&b.ticket).then(a.metric.cmp(&b.metric)));
    doc.events.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    doc.warnings.sort();
    doc.warnings.dedup();
    Ok(doc)
}

/// Every SLA clock of `tickets` judged at `as_of`: the rows `bill` reports,
/// without billing anything. The daemon's SLA tick and webhooks use it to
/// find warnings and breaches to note on tickets.
pub fn sla_clocks(
    book: &ContractBook,
    tickets: &[Ticket],
    as_of: DateTime<Utc>,
) -> Result<Vec<SlaRow>, BillError> {
    let mut out = CustomerBill::default();
    for t in tickets {
        let c = book
            .contracts
            .get(t.customer.as_str())
            .ok_or_else(|| BillError::NoContract {
                ticket: t.id.to_string(),
                customer: t.customer.to_string(),
            })?;
        let p = Prepared::new(t, c, &mut out.warnings);
        sla_rows(c, &p, as_of, &mut out);
    }
    out.sla
        .sort_by(|a, b| a.ticket.cmp(&b.ticket).then(a.metric.cmp(&b.metric)));
    Ok(out.sla)
}

/// When the clocks of ticket `t`, judged at `as_of` as `rows` (its rows
/// from [`sla_clocks`]), may next be judged differently: the first instant
/// after `as_of` at which one of the times a judgement compares with its
/// `as_of` is passed (the ticket's creation, a state change, a met instant,
/// a warning or due time). `None`: nothing changes until the ticket does.
///
/// For every instant from `as_of` up to (not including) the answer,
/// [`sla_clocks`] gives this ticket the same due, warning and met times and
/// the same breached and excluded flags (the minutes counted grow). The
/// daemon's SLA tick looks at a ticket again only then, or when it changes.
pub fn sla_next_look(t: &Ticket, rows: &[SlaRow], as_of: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let row_times = rows
        .iter()
        .filter(|r| r.ticket == t.id && r.source == t.source)
        .flat_map(|r| [r.warn_at, r.due_at, r.met_at])
        .flatten()
        .map(|l| l.utc());
    let ticket_times = [t.created_at]
        .into_iter()
        .chain(t.first_response_at)
        .chain(t.resolved_at)
        .chain(t.states.iter().map(|s| s.at));
    // Clocks compare whole seconds (`as_of` truncated) with `<`, `<=` and
    // `>`: the instant itself, its second and the second after are all
    // candidates.
    row_times
        .chain(ticket_times)
        .flat_map(|x| {
            let second = DateTime::from_timestamp(x.timestamp(), 0).unwrap_or(x);
            [x, second, second + chrono::Duration::seconds(1)]
        })
        .filter(|x| *x > as_of)
        .min()
}

/// Customers are independent: bill them on every core. Threads take the next
/// customer from a shared counter, so one large customer does not leave a
/// core idle; results keep the input order.
fn parallel_map<'a, T: Sync, R: Send>(items: &'a [&'a T], f: impl Fn(&'a T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(|c| f(c)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (f, next) = (&f, &next);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// One row per metric the ticket's contract sets a target for, if created by `as_of`.
pub(crate) fn sla_rows(
    c: &Contract,
    p: &Prepared<'_>,
    as_of: DateTime<Utc>,
    out: &mut CustomerBill,
) {
    if p.t.created_at > as_of {
        return;
    }
    let created_month = Month::containing(p.t.created_at, c.tz);
    let Some(sla) = c.terms_for(created_month).sla.as_ref() else {
        return;
    };
    let created_day = p.t.created_at.with_timezone(&c.tz).date_naive();
    let override_of = |pick: fn(&crate::contract::AddOn) -> Option<Targets>| {
        c.add_ons
            .iter()
            .filter(|a| a.active_on(created_day))
            .find_map(pick)
    };
    let first_response = override_of(|a| a.first_response).unwrap_or(sla.first_response);
    let resolution = override_of(|a| a.resolution).unwrap_or(sla.resolution);
    let facts = crate::condition::TicketFacts {
        ticket: p.t,
        priority: p.priority,
        category: p.category,
        // Nothing after `as_of` is known, the state included.
        state: p.states[..p.states.partition_point(|s| s.0 <= as_of.timestamp())]
            .last()
            .map(|s| s.1),
        period_minutes: crate::minutes::Minutes::ZERO,
        onsite_visits: 0,
    };
    let excluded = sla.exclude.iter().any(|cond| match cond.eval(&facts) {
        Ok(b) => b,
        Err(e) => {
            out.warnings.push(format!(
                "ticket {}: SLA exclusion `{}` failed ({e}); treated as not applying",
                p.t.id,
                cond.source()
            ));
            false
        }
    });
    for (metric, targets, met) in [
        (Metric::FirstResponse, first_response, p.t.first_response_at),
        (Metric::Resolution, resolution, p.t.resolved_at),
    ] {
        let Some(target) = targets.for_priority(p.priority) else {
            continue;
        };
        let o = run_clock(
            &sla.calendar,
            &ClockInput {
                metric,
                created: p.t.created_at.timestamp(),
                states: &p.states,
                met: met.map(|m| m.timestamp()),
                as_of: as_of.timestamp(),
                target,
                warn: sla.warn,
                reopen: sla.reopen,
            },
        );
        let local = |s: i64| LocalTime::from_unix(s, c.tz);
        out.sla.push(SlaRow {
            source: p.t.source.clone(),
            customer: c.customer.clone(),
            ticket: p.t.id.clone(),
            metric,
            priority: p.priority,
            target_minutes: target / 60,
            due_at: o.due.map(local),
            met_at: o.met.map(local),
            breached: o.breached && !excluded,
            excluded,
            warn_at: o.warn_at.map(local),
            calendar: sla.calendar.name.clone(),
            elapsed_minutes: o.elapsed / 60,
            stopped_minutes: o.stopped / 60,
        });
    }
}

/// Warnings and breaches that happened in the period, up to `as_of`.
pub(crate) fn sla_events(
    c: &Contract,
    rows: &[SlaRow],
    period: Month,
    as_of: DateTime<Utc>,
) -> Vec<Event> {
    let (start, end) = (period.start(c.tz), period.end(c.tz));
    let within = |t: DateTime<Utc>| t >= start && t < end && t <= as_of;
    let mut out = Vec::new();
    for r in rows.iter().filter(|r| !r.excluded) {
        let unmet_at = |t: DateTime<Utc>| r.met_at.is_none_or(|m| m.utc() > t);
        // A ticket warned and then paused has a warning but no due time yet.
        if let Some(w) = r.warn_at.filter(|w| within(w.utc()) && unmet_at(w.utc())) {
            out.push(Event {
                customer: c.customer.clone(),
                at: w,
                kind: EventKind::SlaWarning {
                    ticket: r.ticket.clone(),
                    metric: r.metric,
                    due_at: r.due_at,
                    target_minutes: r.target_minutes,
                    calendar: r.calendar.clone(),
                    stopped_minutes: r.stopped_minutes,
                },
            });
        }
        if let Some(due) = r.due_at.filter(|d| r.breached && within(d.utc())) {
            out.push(Event {
                customer: c.customer.clone(),
                at: due,
                kind: EventKind::SlaBreach {
                    ticket: r.ticket.clone(),
                    metric: r.metric,
                    due_at: due,
                    target_minutes: r.target_minutes,
                    calendar: r.calendar.clone(),
                    stopped_minutes: r.stopped_minutes,
                },
            });
        }
    }
    out
}

/// Compliance of the targets due in the period.
pub(crate) fn sla_summary(c: &Contract, rows: &[SlaRow], period: Month) -> Option<SlaSummary> {
    let (start, end) = (period.start(c.tz), period.end(c.tz));
    let due_in: Vec<&SlaRow> = rows
        .iter()
        .filter(|r| r.due_at.is_some_and(|d| d.utc() >= start && d.utc() < end))
        .collect();
    if due_in.is_empty() {
        return None;
    }
    let excluded = due_in.iter().filter(|r| r.excluded).count() as u32;
    let breached = due_in.iter().filter(|r| r.breached).count() as u32;
    let met_in_time = due_in
        .iter()
        .filter(|r| r.met_at.is_some() && !r.breached && !r.excluded)
        .count() as u32;
    let pending = due_in.len() as u32 - excluded - breached - met_in_time;
    let mut by_priority = [0u32; 4];
    for r in due_in.iter().filter(|r| r.breached) {
        if let Some(p) = r.priority {
            by_priority[usize::from(p.get() - 1)] += 1;
        }
    }
    Some(SlaSummary {
        customer: c.customer.clone(),
        targets: due_in.len() as u32,
        met_in_time,
        pending,
        breached,
        excluded,
        // The share of the targets already decided (met in time or breached).
        share_met: (met_in_time + breached > 0).then(|| {
            (Decimal::from(met_in_time) / Decimal::from(met_in_time + breached)).round_dp(4)
        }),
        breaches_by_priority: by_priority,
    })
}
