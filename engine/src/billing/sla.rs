//! A bill's SLA part, from the prepared tickets of one contract: one row
//! per clock the contract sets a target for, the warnings and breaches
//! those rows raise, and the month's summary (also the clocks alone, for
//! `sla` and the daemon's tick).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{CustomerBill, Prepared};
use crate::contract::{Contract, Targets};
use crate::document::*;
use crate::period::Month;
use crate::sla::{ClockInput, Metric, run_clock};

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
