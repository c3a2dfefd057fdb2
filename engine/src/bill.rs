//! The whole bill: every customer, plus SLA rows, events and summaries.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::billing::sla_rows;
use crate::billing::{BillError, ContractBook, CustomerBill, Prepared, bill_customer};
use crate::contract::Contract;
use crate::document::*;
use crate::period::Month;
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

    let mut doc = BillDocument::empty(period);
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
