//! Property tests of SLA clocks (`engine::sla::run_clock`) on random business
//! calendars in the four time zones of the example contracts, with created
//! times all over 2026 (DST weekends included), targets from 15 minutes to
//! 72 hours and random pauses.
//!
//! Properties:
//! - (a) a due time never moves earlier when a pause is added, and moves later
//!   when the target grows;
//! - (b) on a 24/7 calendar without maintenance, due = created + target + the
//!   real time paused before it;
//! - (c) weekly windows covering the whole week give the same clock as 24/7;
//! - (d) the instant before a due time is open: inside a window on the wall
//!   clock, not on a holiday, not in maintenance;
//! - (e) the time zone the export's timestamps are written in changes nothing;
//! - (f) due times equal an independent wall-clock model that walks the
//!   calendar hour by hour.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::LazyLock;

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, Offset, SecondsFormat, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use engine::calendar::{Availability, Calendar, DayWindow, WeeklyWindows};
use engine::contract::{Reopen, WarnAt};
use engine::sla::{ClockInput, Metric, clock_time_between, run_clock};
use engine::values::ClockState;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::support::{BOOK, CUSTOMERS, property_config};

const ZONES: [&str; 4] = [
    "Europe/Riga",
    "Europe/Warsaw",
    "Europe/Stockholm",
    "Europe/Copenhagen",
];

/// Monday to Sunday.
static DAYS: LazyLock<Vec<Weekday>> =
    LazyLock::new(|| (0..7).map(|n| Weekday::try_from(n).unwrap()).collect());

/// 2026-01-01T00:00:00Z and 2026-12-31T20:00:00Z.
const FIRST: i64 = 1_767_225_600;
const LAST: i64 = 1_798_747_200;
/// The EU DST changes of 2026 (2026-03-29 and 2026-10-25, 01:00 UTC).
const DST_CHANGES: [i64; 2] = [1_774_746_000, 1_792_890_000];

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("in range")
}

fn tz(name: &str) -> Tz {
    name.parse().expect("a zone")
}

// ------------------------------------------------------------- calendars

/// A calendar as plain data: the engine's calendar is built from it, and it
/// answers "open at this instant?" on its own from the wall clock.
#[derive(Clone, Debug)]
struct CalSpec {
    tz: Tz,
    /// `None`: 24/7. Windows in whole hours, `(day, start, end)`.
    weekly: Option<Vec<(Weekday, u16, u16)>>,
    holidays: BTreeSet<NaiveDate>,
    maintenance: Vec<(Weekday, u16, u16)>,
}

fn windows(list: &[(Weekday, u16, u16)]) -> WeeklyWindows {
    let mut w = WeeklyWindows::default();
    for &(day, s, e) in list {
        w.add(day, DayWindow::new(s * 60, e * 60).expect("a window"));
    }
    w
}

impl CalSpec {
    fn build(&self) -> Calendar {
        let availability = match &self.weekly {
            None => Availability::Always,
            Some(list) => Availability::Weekly(windows(list)),
        };
        Calendar::new(
            "prop",
            self.tz,
            availability,
            self.holidays.clone(),
            windows(&self.maintenance),
        )
    }

    /// The wall-clock model: open when the local time is inside a window of
    /// its weekday, the date is no holiday (weekly calendars) and no
    /// maintenance window covers it.
    fn open_at(&self, t: i64) -> bool {
        let local = at(t).with_timezone(&self.tz);
        let (date, day) = (local.date_naive(), local.weekday());
        let sod = i64::from(local.num_seconds_from_midnight());
        let inside = |list: &[(Weekday, u16, u16)]| {
            list.iter().any(|&(d, s, e)| {
                d == day && i64::from(s) * 3600 <= sod && sod < i64::from(e) * 3600
            })
        };
        let available = match &self.weekly {
            None => true,
            Some(list) => !self.holidays.contains(&date) && inside(list),
        };
        available && !inside(&self.maintenance)
    }
}

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(ZONES.to_vec()).prop_map(tz)
}

/// A window in whole hours, any start and end (including ends inside the
/// hour that repeats on the night DST ends).
fn window(_tz: Tz) -> impl Strategy<Value = (Weekday, u16, u16)> {
    (prop::sample::select(DAYS.clone()), 0u16..24)
        .prop_flat_map(|(d, s)| (Just(d), Just(s), s + 1..=24))
}

fn office(start: u16, end: u16) -> Vec<(Weekday, u16, u16)> {
    DAYS[..5].iter().map(|&d| (d, start, end)).collect()
}

fn holiday() -> impl Strategy<Value = NaiveDate> {
    let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    prop_oneof![
        (0u64..365).prop_map(move |d| first + chrono::Days::new(d)),
        // The DST Sundays and the days around them.
        prop::sample::select(vec![
            NaiveDate::from_ymd_opt(2026, 3, 27).unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, 30).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 23).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 25).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 26).unwrap(),
        ]),
    ]
}

fn maintenance(tz: Tz) -> impl Strategy<Value = Vec<(Weekday, u16, u16)>> {
    prop_oneof![
        2 => Just(Vec::new()),
        2 => Just(vec![(Weekday::Sun, 2, 4)]),
        1 => prop::collection::vec(window(tz), 1..3),
    ]
}

/// Any calendar: 24/7 or weekly, with holidays and maintenance.
fn calendar() -> impl Strategy<Value = CalSpec> {
    zone().prop_flat_map(|tz| {
        let weekly = prop_oneof![
            1 => Just(None),
            1 => Just(Some(office(9, 17))),
            1 => Just(Some(office(8, 18))),
            1 => Just(Some(DAYS.iter().map(|&d| (d, 1, 5)).collect())),
            2 => prop::collection::vec(window(tz), 1..8).prop_map(Some),
        ];
        (
            weekly,
            prop::collection::btree_set(holiday(), 0..4),
            maintenance(tz),
        )
            .prop_map(move |(weekly, holidays, maintenance)| CalSpec {
                tz,
                weekly,
                holidays,
                maintenance,
            })
    })
}

// ---------------------------------------------------------------- clocks

/// A minute-aligned instant of 2026, often on a DST weekend, often on the
/// hour (so that whole-hour targets run out exactly when a window closes).
fn created() -> impl Strategy<Value = i64> {
    (
        prop_oneof![
            FIRST..LAST,
            (
                prop::sample::select(DST_CHANGES.to_vec()),
                -3 * 86_400i64..3 * 86_400
            )
                .prop_map(|(t, off)| t + off),
        ],
        prop::bool::weighted(0.3),
    )
        .prop_map(|(s, on_the_hour)| s - s.rem_euclid(if on_the_hour { 3600 } else { 60 }))
}

/// 15 minutes … 72 hours, in seconds, often whole hours.
fn target() -> impl Strategy<Value = i64> {
    prop_oneof![
        (15i64..=72 * 60).prop_map(|m| m * 60),
        (1i64..=72).prop_map(|h| h * 3600),
    ]
}

/// Pauses relative to `created`, in minutes: `(offset, length)`.
fn pauses() -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::vec((-1_440i64..14 * 1_440, 1i64..3 * 1_440), 0..4)
}

fn metric() -> impl Strategy<Value = Metric> {
    prop::sample::select(vec![Metric::FirstResponse, Metric::Resolution])
}

/// Disjoint, sorted real-time pause intervals.
fn merged(created: i64, pauses: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut iv: Vec<(i64, i64)> = pauses
        .iter()
        .map(|&(off, len)| (created + off * 60, created + (off + len) * 60))
        .collect();
    iv.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (s, e) in iv {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn states(intervals: &[(i64, i64)]) -> Vec<(i64, ClockState)> {
    intervals
        .iter()
        .flat_map(|&(s, e)| [(s, ClockState::Paused), (e, ClockState::Open)])
        .collect()
}

/// The due time of an unmet clock with every pause known.
fn due(
    cal: &Calendar,
    metric: Metric,
    created: i64,
    pauses: &[(i64, i64)],
    target: i64,
) -> Option<i64> {
    let states = states(pauses);
    let as_of = states.last().map_or(created, |s| s.0).max(created);
    run_clock(
        cal,
        &ClockInput {
            metric,
            created,
            states: &states,
            met: None,
            as_of,
            target,
            warn: WarnAt::Share(Decimal::new(75, 2)),
            reopen: Reopen::Continue,
        },
    )
    .due
}

/// Walks the wall-clock model hour by hour (every calendar edge is a whole
/// UTC hour in these zones) and minute-aligned pause edges.
fn model_due(spec: &CalSpec, created: i64, pauses: &[(i64, i64)], target: i64) -> Option<i64> {
    let mut t = created;
    let mut left = target;
    let give_up = created + 5 * 366 * 86_400;
    while t < give_up {
        let hour_end = t - t.rem_euclid(3600) + 3600;
        let pause_edge = pauses
            .iter()
            .flat_map(|&(s, e)| [s, e])
            .filter(|&x| x > t)
            .min()
            .unwrap_or(i64::MAX);
        let end = hour_end.min(pause_edge);
        let paused = pauses.iter().any(|&(s, e)| s <= t && t < e);
        if !paused && spec.open_at(t) {
            if end - t >= left {
                return Some(t + left);
            }
            left -= end - t;
        }
        t = end;
    }
    None
}

proptest! {
    #![proptest_config(property_config())]

    /// (a) Adding a pause never makes a due time earlier.
    #[test]
    fn a_pause_never_makes_a_due_time_earlier(
        spec in calendar(),
        metric in metric(),
        created in created(),
        target in target(),
        pauses in pauses(),
        extra in (-1_440i64..14 * 1_440, 1i64..3 * 1_440),
    ) {
        let cal = spec.build();
        prop_assume!(cal.open_from(created).next().is_some(), "maintenance covers every window");
        let before = due(&cal, metric, created, &merged(created, &pauses), target);
        let mut more = pauses.clone();
        more.push(extra);
        let after = due(&cal, metric, created, &merged(created, &more), target);
        prop_assert!(before.is_some() && after.is_some(), "{:?} / {:?}", before, after);
        prop_assert!(after >= before, "due moved from {:?} to {:?}", before.map(at), after.map(at));
    }

    /// (a) A longer target is due strictly later.
    #[test]
    fn a_longer_target_is_due_later(
        spec in calendar(),
        metric in metric(),
        created in created(),
        target in target(),
        extra in 1i64..=24 * 60,
        pauses in pauses(),
    ) {
        let cal = spec.build();
        prop_assume!(cal.open_from(created).next().is_some(), "maintenance covers every window");
        let p = merged(created, &pauses);
        let short = due(&cal, metric, created, &p, target);
        let long = due(&cal, metric, created, &p, target + extra * 60);
        prop_assert!(short.is_some() && long.is_some());
        prop_assert!(long > short, "{:?} then {:?}", short.map(at), long.map(at));
    }

    /// (b) 24/7 without maintenance: real elapsed time, pauses excluded.
    #[test]
    fn always_open_is_real_time_plus_pauses(
        tz in zone(),
        metric in metric(),
        created in created(),
        target in target(),
        pauses in pauses(),
    ) {
        let spec = CalSpec { tz, weekly: None, holidays: BTreeSet::new(), maintenance: Vec::new() };
        let cal = spec.build();
        prop_assert!(cal.is_continuous());
        let p = merged(created, &pauses);
        // created + target + the real time paused before the due time.
        let mut t = created;
        let mut left = target;
        for &(s, e) in &p {
            if e <= t {
                continue;
            }
            let s = s.max(t);
            if s - t >= left {
                break;
            }
            left -= s - t;
            t = e;
        }
        let expected = t + left;
        let paused: i64 = p.iter().map(|&(s, e)| e.min(expected) - s.max(created).min(expected)).filter(|d| *d > 0).sum();
        prop_assert_eq!(expected, created + target + paused);
        prop_assert_eq!(due(&cal, metric, created, &p, target), Some(expected));
    }

    /// (c) Windows covering every day 00:00-24:00 (in pieces) equal 24/7.
    #[test]
    fn whole_week_windows_equal_always_open(
        (tz, maint) in zone().prop_flat_map(|tz| (Just(tz), maintenance(tz))),
        cuts in prop::collection::vec(prop::collection::btree_set(1u16..24, 0..3), 7),
        metric in metric(),
        created in created(),
        target in target(),
        pauses in pauses(),
        span in 1i64..30 * 86_400,
    ) {
        let mut week = Vec::new();
        for (day, cuts) in DAYS.iter().zip(&cuts) {
            let edges: Vec<u16> = std::iter::once(0).chain(cuts.iter().copied()).chain(std::iter::once(24)).collect();
            for pair in edges.windows(2) {
                week.push((*day, pair[0], pair[1]));
            }
        }
        let always = CalSpec { tz, weekly: None, holidays: BTreeSet::new(), maintenance: maint.clone() }.build();
        let weekly = CalSpec { tz, weekly: Some(week), holidays: BTreeSet::new(), maintenance: maint }.build();
        let p = merged(created, &pauses);
        prop_assert_eq!(
            due(&weekly, metric, created, &p, target).map(at),
            due(&always, metric, created, &p, target).map(at)
        );
        prop_assert_eq!(
            clock_time_between(&weekly, created, created + span),
            clock_time_between(&always, created, created + span)
        );
    }

    /// (d) The instant before a due time is open: inside a window on the
    /// wall clock, not on a holiday, not in maintenance, not paused. Several
    /// targets per calendar.
    #[test]
    fn due_times_are_never_inside_closed_time(
        spec in calendar(),
        metric in metric(),
        created in created(),
        targets in prop::collection::vec(target(), 1..8),
        pauses in pauses(),
    ) {
        let cal = spec.build();
        prop_assume!(cal.open_from(created).next().is_some(), "maintenance covers every window");
        let p = merged(created, &pauses);
        for target in targets {
            let d = due(&cal, metric, created, &p, target);
            prop_assert!(d.is_some());
            let d = d.unwrap();
            let local = at(d).with_timezone(&spec.tz);
            prop_assert!(cal.is_open(d - 1), "{} is closed before its due time", local);
            prop_assert!(spec.open_at(d - 1), "{}: closed on the wall clock just before", local);
            prop_assert!(!p.iter().any(|&(s, e)| s < d && d <= e), "{}: due while paused", local);
        }
    }

    /// (f) Due times equal the hour-by-hour wall-clock model.
    #[test]
    fn due_times_match_the_wall_clock_model(
        spec in calendar(),
        metric in metric(),
        created in created(),
        target in target(),
        pauses in pauses(),
    ) {
        let cal = spec.build();
        let p = merged(created, &pauses);
        let expected = model_due(&spec, created, &p, target);
        let actual = due(&cal, metric, created, &p, target);
        prop_assert_eq!(
            actual.map(|d| at(d).with_timezone(&spec.tz)),
            expected.map(|d| at(d).with_timezone(&spec.tz))
        );
    }
}

// ------------------------------------------------- (e) input time zones

/// Customers whose contracts set SLA targets.
const SLA_CUSTOMERS: &[&str] = CUSTOMERS.split_at(9).0;

#[test]
fn the_sla_customers_are_those_whose_contracts_set_targets() {
    let with_targets: BTreeSet<&str> = BOOK
        .contracts
        .values()
        .filter(|c| c.terms.iter().any(|(_, t)| t.sla.is_some()))
        .map(|c| c.customer.as_str())
        .collect();
    assert_eq!(with_targets, SLA_CUSTOMERS.iter().copied().collect());
}

/// Offsets (seconds east of UTC) timestamps are written with; `None` is `Z`.
const OFFSETS: [Option<i32>; 9] = [
    None,
    Some(0),
    Some(-12 * 3600),
    Some(-(9 * 3600 + 1800)),
    Some(3600),
    Some(2 * 3600),
    Some(3 * 3600),
    Some(5 * 3600 + 2700),
    Some(14 * 3600),
];

fn rfc3339(t: i64, offset: Option<i32>) -> String {
    match offset {
        None => at(t).to_rfc3339_opts(SecondsFormat::Secs, true),
        Some(o) => at(t)
            .with_timezone(&FixedOffset::east_opt(o).unwrap())
            .to_rfc3339(),
    }
}

#[derive(Clone, Debug)]
struct SlaTicket {
    customer: &'static str,
    priority: Option<&'static str>,
    excluded: bool,
    created: i64,
    response: Option<i64>,
    resolved: Option<i64>,
    pause: Option<(i64, i64)>,
}

fn sla_ticket() -> impl Strategy<Value = SlaTicket> {
    (
        prop::sample::select(SLA_CUSTOMERS.to_vec()),
        prop::option::weighted(
            0.9,
            prop::sample::select(vec!["1 low", "2 normal", "3 high", "4 critical"]),
        ),
        prop::bool::weighted(0.1),
        prop_oneof![
            FIRST..LAST,
            (
                prop::sample::select(DST_CHANGES.to_vec()),
                -3 * 86_400i64..3 * 86_400
            )
                .prop_map(|(t, o)| t + o)
        ],
        prop::option::of(60i64..4 * 86_400),
        prop::option::of(600i64..10 * 86_400),
        prop::option::of((0i64..2 * 86_400, 60i64..3 * 86_400)),
    )
        .prop_map(
            |(customer, priority, excluded, created, response, resolved, pause)| SlaTicket {
                customer,
                priority,
                excluded,
                created,
                response: response.map(|r| created + r),
                resolved: resolved.map(|r| created + r),
                pause: pause.map(|(s, l)| (created + s, created + s + l)),
            },
        )
}

/// The export text, every timestamp written with the next offset of `offsets`.
fn export(tickets: &[SlaTicket], offsets: &[Option<i32>]) -> String {
    let mut next = offsets.iter().cycle();
    let mut ts = |t: i64| rfc3339(t, *next.next().unwrap());
    let list: Vec<Value> = tickets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut states = vec![(t.created, "new")];
            if let Some((s, e)) = t.pause {
                states.push((s, "pending customer"));
                states.push((e, "open"));
            }
            if let Some(r) = t.resolved {
                states.push((r, "closed"));
            }
            states.sort();
            json!({
                "id": format!("S-{i:03}"),
                "customer": t.customer,
                "requester": null,
                "title": "sla",
                "priority": t.priority,
                "category": null,
                "tags": if t.excluded { vec!["force-majeure"] } else { Vec::new() },
                "created_at": ts(t.created),
                "first_response_at": t.response.map(&mut ts),
                "resolved_at": t.resolved.map(&mut ts),
                "states": states.iter().map(|&(a, s)| json!({"at": ts(a), "state": s})).collect::<Vec<_>>(),
                "work": [{"id": format!("W-{i:03}"), "at": ts(t.created), "minutes": 10, "kind": "remote"}],
            })
        })
        .collect();
    json!({"source": "proptest", "tickets": list}).to_string()
}

proptest! {
    #![proptest_config(property_config())]

    /// (e) The offsets timestamps are written with change no SLA row (nor
    /// anything else), and due times are shown on the contract's wall clock.
    #[test]
    fn input_time_zones_do_not_matter(
        tickets in prop::collection::vec(sla_ticket(), 1..12),
        offsets in prop::collection::vec(prop::sample::select(OFFSETS.to_vec()), 1..7),
        m in 1u32..=12,
    ) {
        let parse = |text: &str| contract_bridge::export::parse(Path::new("export.json"), text).expect("the export parses");
        let in_utc = parse(&export(&tickets, &[None]));
        let mixed = parse(&export(&tickets, &offsets));
        let period = engine::period::Month::new(2026, m).unwrap();
        let a = engine::bill(&BOOK, &in_utc, period, None).expect("bills");
        let b = engine::bill(&BOOK, &mixed, period, None).expect("bills");
        prop_assert_eq!(serde_json::to_value(&a.sla).unwrap(), serde_json::to_value(&b.sla).unwrap());
        prop_assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap());
        for row in &b.sla {
            let tz = BOOK.contracts.get(row.customer.as_str()).unwrap().tz;
            for shown in [row.due_at, row.met_at].into_iter().flatten() {
                let text = serde_json::to_value(shown).unwrap();
                let parsed = DateTime::parse_from_rfc3339(text.as_str().unwrap()).unwrap();
                prop_assert_eq!(
                    parsed.offset().local_minus_utc(),
                    at(parsed.timestamp()).with_timezone(&tz).offset().fix().local_minus_utc(),
                    "{} is not on the wall clock of {}", text, tz
                );
            }
        }
    }
}
