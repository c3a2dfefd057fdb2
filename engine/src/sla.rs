//! SLA clocks, computed from a ticket's history rather than counted down.
//!
//! For one ticket and one metric, the clock *runs* while the ticket's mapped
//! state allows it (first response: not paused; resolution: open, neither
//! paused nor resolved) **and** the contract's calendar is open. The due time is
//! the instant the running time reaches the target. The same history always
//! gives the same answer, and nothing after `as_of` is looked at.
//!
//! Projection: once a metric is met, its due time is projected as if the clock
//! had kept running from that instant; while it is not met, the ticket's last
//! known state continues. A ticket paused at `as_of` that has not reached its
//! target has no due time yet.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use crate::calendar::{Calendar, Span};
use crate::contract::{Reopen, WarnAt};
use crate::values::ClockState;

/// What a clock measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    FirstResponse,
    Resolution,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::FirstResponse => "first_response",
            Metric::Resolution => "resolution",
        }
    }

    fn runs_in(self, state: ClockState) -> bool {
        match self {
            Metric::FirstResponse => state != ClockState::Paused,
            Metric::Resolution => state == ClockState::Open,
        }
    }
}

/// The history one clock is computed from, in Unix seconds.
#[derive(Clone, Debug)]
pub struct ClockInput<'a> {
    pub metric: Metric,
    pub created: i64,
    /// Mapped states, oldest first.
    pub states: &'a [(i64, ClockState)],
    /// When the metric was met, if ever (may lie after `as_of`: then unknown).
    pub met: Option<i64>,
    pub as_of: i64,
    /// Target in seconds of clock time.
    pub target: i64,
    pub warn: WarnAt,
    pub reopen: Reopen,
}

/// One clock's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockOutcome {
    pub due: Option<i64>,
    pub warn_at: Option<i64>,
    /// `met` if known at `as_of`.
    pub met: Option<i64>,
    pub breached: bool,
    /// Clock time counted up to `min(met, as_of)`.
    pub elapsed: i64,
    /// Real seconds the ticket's state stopped the clock before `min(met, as_of)`.
    pub stopped: i64,
    /// The ticket's state stops the clock at `as_of` (unmet only).
    pub paused_now: bool,
}

/// Computes one clock.
pub fn run_clock(cal: &Calendar, input: &ClockInput<'_>) -> ClockOutcome {
    let met = input.met.filter(|m| *m <= input.as_of);
    let known_until = met.unwrap_or(input.as_of).max(input.created);
    let running = running_spans(input, met, known_until);
    let paused_now = met.is_none() && running.last().is_none_or(|&(_, e)| e != i64::MAX);

    let warn_target = match input.warn {
        WarnAt::Share(share) => (Decimal::from(input.target) * share)
            .ceil()
            .to_i64()
            .unwrap_or(input.target),
        WarnAt::Lead(lead) => input.target - lead,
    }
    .clamp(0, input.target);

    let mut acc: i64 = 0;
    let mut due = None;
    let mut warn_at = None;
    let mut elapsed = 0;
    for (s, e) in effective_spans(cal, &running) {
        if due.is_some() && s >= known_until {
            break;
        }
        if s < known_until {
            elapsed += e.min(known_until) - s;
        }
        if due.is_some() {
            continue;
        }
        let len = e.saturating_sub(s);
        if warn_at.is_none() && acc.saturating_add(len) >= warn_target {
            warn_at = Some(s + (warn_target - acc));
        }
        if acc.saturating_add(len) >= input.target {
            due = Some(s + (input.target - acc));
        }
        acc = acc.saturating_add(len);
    }
    let breached = match (met, due) {
        (Some(m), Some(d)) => m > d,
        (None, Some(d)) => input.as_of > d,
        _ => false,
    };
    let running_real: i64 = running
        .iter()
        .map(|&(s, e)| e.min(known_until) - s.min(known_until))
        .sum();
    ClockOutcome {
        due,
        warn_at,
        met,
        breached,
        elapsed,
        stopped: (known_until - input.created - running_real).max(0),
        paused_now,
    }
}

/// Real-time spans in which the ticket's state lets the clock run.
fn running_spans(input: &ClockInput<'_>, met: Option<i64>, known_until: i64) -> Vec<Span> {
    let mut state = ClockState::Open;
    let mut changes = input.states.iter().peekable();
    while let Some(&&(at, s)) = changes.peek() {
        if at > input.created {
            break;
        }
        state = s;
        changes.next();
    }
    let mut spans: Vec<Span> = Vec::new();
    let mut from = input.created;
    let push = |spans: &mut Vec<Span>, a: i64, b: i64, st: ClockState| {
        if b > a && input.metric.runs_in(st) {
            match spans.last_mut() {
                Some(last) if last.1 == a => last.1 = b,
                _ => spans.push((a, b)),
            }
        }
    };
    for &(at, next) in changes {
        // A met clock knows changes strictly before the met instant (the
        // "closed" at `resolved_at` must not stop its own clock); an unmet one
        // knows everything up to `as_of`.
        let known = if met.is_some() {
            at < known_until
        } else {
            at <= known_until
        };
        if !known {
            break;
        }
        push(&mut spans, from, at, state);
        if input.metric == Metric::Resolution
            && input.reopen == Reopen::Restart
            && state == ClockState::Resolved
            && next != ClockState::Resolved
        {
            spans.clear();
        }
        from = at.max(from);
        state = next;
    }
    if met.is_some() {
        push(&mut spans, from, known_until, state);
        push(&mut spans, known_until, i64::MAX, ClockState::Open);
    } else {
        push(&mut spans, from, i64::MAX, state);
    }
    spans
}

/// Running spans intersected with the calendar's open spans.
fn effective_spans<'a>(
    cal: &'a Calendar,
    running: &'a [Span],
) -> Box<dyn Iterator<Item = Span> + 'a> {
    if cal.is_continuous() {
        return Box::new(running.iter().copied());
    }
    Box::new(running.iter().flat_map(move |&(a, b)| {
        cal.open_from(a)
            .take_while(move |&(s, _)| s < b)
            .map(move |(s, e)| (s, e.min(b)))
    }))
}

/// Clock time between `from` and `to` on `cal` (ignoring ticket state).
pub fn clock_time_between(cal: &Calendar, from: i64, to: i64) -> i64 {
    if to <= from {
        return 0;
    }
    effective_spans(cal, &[(from, to)])
        .map(|(s, e)| e - s)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{Availability, WeeklyWindows};
    use chrono::DateTime;
    use chrono_tz::Tz;
    use std::collections::BTreeSet;

    fn ts(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn office(tz: &str, window: &str) -> Calendar {
        Calendar::new(
            "office",
            tz.parse::<Tz>().unwrap(),
            Availability::Weekly(crate::calendar::tests::weekdays(window)),
            BTreeSet::new(),
            WeeklyWindows::default(),
        )
    }

    fn clock(
        cal: &Calendar,
        metric: Metric,
        created: &str,
        states: &[(&str, ClockState)],
        met: Option<&str>,
        as_of: &str,
        hours: i64,
    ) -> ClockOutcome {
        let states: Vec<(i64, ClockState)> = states.iter().map(|(a, s)| (ts(a), *s)).collect();
        run_clock(
            cal,
            &ClockInput {
                metric,
                created: ts(created),
                states: &states,
                met: met.map(ts),
                as_of: ts(as_of),
                target: hours * 3600,
                warn: WarnAt::Share(Decimal::new(75, 2)),
                reopen: Reopen::Continue,
            },
        )
    }

    #[test]
    fn a_target_ending_at_closing_time_is_due_at_closing_time() {
        let cal = office("Europe/Riga", "09:00-17:00");
        let o = clock(
            &cal,
            Metric::FirstResponse,
            "2026-10-01T08:30:00+03:00",
            &[],
            Some("2026-10-01T09:10:00+03:00"),
            "2026-11-01T00:00:00+02:00",
            8,
        );
        assert_eq!(o.due, Some(ts("2026-10-01T17:00:00+03:00")));
        assert!(!o.breached);
        assert_eq!(o.warn_at, Some(ts("2026-10-01T15:00:00+03:00")));
    }

    #[test]
    fn a_pause_moves_the_due_time() {
        let cal = office("Europe/Riga", "08:00-18:00");
        let states = [
            ("2026-10-19T10:00:00+03:00", ClockState::Open),
            ("2026-10-19T11:00:00+03:00", ClockState::Paused),
            ("2026-10-19T12:30:00+03:00", ClockState::Open),
        ];
        let o = clock(
            &cal,
            Metric::FirstResponse,
            "2026-10-19T10:00:00+03:00",
            &states,
            Some("2026-10-19T15:00:00+03:00"),
            "2026-11-01T00:00:00+02:00",
            4,
        );
        assert_eq!(o.due, Some(ts("2026-10-19T15:30:00+03:00")));
        assert_eq!(o.stopped, 90 * 60);
    }

    #[test]
    fn paused_at_as_of_without_reaching_the_target_has_no_due_time() {
        let cal = office("Europe/Riga", "09:00-17:00");
        let states = [("2026-10-01T10:00:00+03:00", ClockState::Paused)];
        let o = clock(
            &cal,
            Metric::FirstResponse,
            "2026-10-01T09:00:00+03:00",
            &states,
            None,
            "2026-10-05T00:00:00+03:00",
            8,
        );
        assert_eq!(o.due, None);
        assert!(!o.breached);
        assert!(o.paused_now);
    }

    #[test]
    fn unmet_and_past_due_is_breached() {
        let cal = office("Europe/Riga", "09:00-17:00");
        let o = clock(
            &cal,
            Metric::FirstResponse,
            "2026-10-01T09:00:00+03:00",
            &[],
            None,
            "2026-10-02T00:00:00+03:00",
            4,
        );
        assert_eq!(o.due, Some(ts("2026-10-01T13:00:00+03:00")));
        assert!(o.breached);
        assert_eq!(
            o.elapsed,
            8 * 3600,
            "the whole first day counts, past the due time"
        );
    }

    #[test]
    fn a_met_time_after_as_of_is_unknown() {
        let cal = office("Europe/Riga", "09:00-17:00");
        let o = clock(
            &cal,
            Metric::FirstResponse,
            "2026-10-01T09:00:00+03:00",
            &[],
            Some("2026-10-01T12:00:00+03:00"),
            "2026-10-01T10:00:00+03:00",
            4,
        );
        assert_eq!(o.met, None);
        assert!(!o.breached);
    }

    #[test]
    fn resolution_stops_while_resolved_and_continues_after_reopen() {
        let cal = Calendar::new(
            "24/7",
            "Europe/Warsaw".parse().unwrap(),
            Availability::Always,
            BTreeSet::new(),
            WeeklyWindows::default(),
        );
        let states = [
            ("2026-10-01T10:00:00+02:00", ClockState::Open),
            ("2026-10-01T11:00:00+02:00", ClockState::Resolved),
            ("2026-10-01T15:00:00+02:00", ClockState::Open),
        ];
        let o = clock(
            &cal,
            Metric::Resolution,
            "2026-10-01T10:00:00+02:00",
            &states,
            None,
            "2026-10-01T16:00:00+02:00",
            4,
        );
        assert_eq!(o.due, Some(ts("2026-10-01T18:00:00+02:00")));
        let states_vec: Vec<(i64, ClockState)> = states.iter().map(|(a, s)| (ts(a), *s)).collect();
        let restarted = run_clock(
            &cal,
            &ClockInput {
                metric: Metric::Resolution,
                created: ts("2026-10-01T10:00:00+02:00"),
                states: &states_vec,
                met: None,
                as_of: ts("2026-10-01T16:00:00+02:00"),
                target: 4 * 3600,
                warn: WarnAt::Share(Decimal::new(75, 2)),
                reopen: Reopen::Restart,
            },
        );
        assert_eq!(restarted.due, Some(ts("2026-10-01T19:00:00+02:00")));
    }

    #[test]
    fn first_response_keeps_running_on_a_resolved_ticket() {
        let cal = Calendar::new(
            "24/7",
            "Europe/Warsaw".parse().unwrap(),
            Availability::Always,
            BTreeSet::new(),
            WeeklyWindows::default(),
        );
        let states = [("2026-10-01T10:30:00+02:00", ClockState::Resolved)];
        let o = clock(
            &cal,
            Metric::FirstResponse,
            "2026-10-01T10:00:00+02:00",
            &states,
            None,
            "2026-10-01T12:00:00+02:00",
            1,
        );
        assert!(o.breached);
    }
}
