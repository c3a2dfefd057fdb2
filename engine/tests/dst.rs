//! The nights DST starts (2026-03-29) and ends (2026-10-25) in the four time
//! zones of the example contracts: month bounds, business windows crossing
//! the change, the "Sundays 02:00-04:00" maintenance window, 24/7 targets in
//! real time, a 01:00-05:00 window and pauses over the change (rule 7 of
//! `contracts.md`).
//!
//! Every instant below is written with the offset the zone shows at that
//! moment, so each expectation reads as the local wall clock.

use std::collections::BTreeSet;

use chrono::{DateTime, Weekday};
use chrono_tz::Tz;
use contract_bridge_engine::calendar::{Availability, Calendar, DayWindow, WeeklyWindows};
use contract_bridge_engine::contract::{Reopen, WarnAt};
use contract_bridge_engine::period::Month;
use contract_bridge_engine::sla::{
    ClockInput, ClockOutcome, Metric, clock_time_between, run_clock,
};
use contract_bridge_engine::values::ClockState;
use rust_decimal::Decimal;

const HOUR: i64 = 3600;

/// A zone with its winter and summer offsets.
struct Zone {
    name: &'static str,
    winter: &'static str,
    summer: &'static str,
}

impl Zone {
    fn tz(&self) -> Tz {
        self.name.parse().expect("a zone")
    }

    /// Whether 02:00 exists on the night DST starts (Riga skips 03:00-04:00,
    /// the CET zones skip 02:00-03:00).
    fn skips_two(&self) -> bool {
        self.name != "Europe/Riga"
    }
}

const ZONES: [Zone; 4] = [
    Zone {
        name: "Europe/Riga",
        winter: "+02:00",
        summer: "+03:00",
    },
    Zone {
        name: "Europe/Warsaw",
        winter: "+01:00",
        summer: "+02:00",
    },
    Zone {
        name: "Europe/Stockholm",
        winter: "+01:00",
        summer: "+02:00",
    },
    Zone {
        name: "Europe/Copenhagen",
        winter: "+01:00",
        summer: "+02:00",
    },
];

/// The night DST starts, the Saturday before and the Monday after.
const START: (&str, &str, &str) = ("2026-03-29", "2026-03-28", "2026-03-30");
/// The night DST ends, the Saturday before and the Monday after.
const END: (&str, &str, &str) = ("2026-10-25", "2026-10-24", "2026-10-26");

/// Unix seconds of `date`T`time` at `offset`; `time` is `HH:MM` or `HH:MM:SS`.
fn t(date: &str, time: &str, offset: &str) -> i64 {
    let time = if time.len() == 5 {
        format!("{time}:00")
    } else {
        time.to_owned()
    };
    DateTime::parse_from_rfc3339(&format!("{date}T{time}{offset}"))
        .unwrap_or_else(|e| panic!("{date}T{time}{offset}: {e}"))
        .timestamp()
}

/// An instant on the wall clock of `z`, for messages.
fn show(z: &Zone, s: i64) -> String {
    DateTime::from_timestamp(s, 0)
        .unwrap()
        .with_timezone(&z.tz())
        .to_rfc3339()
}

fn week(days: &[Weekday], window: &str) -> WeeklyWindows {
    let mut w = WeeklyWindows::default();
    for &d in days {
        w.add(d, DayWindow::parse(window).unwrap());
    }
    w
}

/// The first `n` days of the week, Monday first.
fn days(n: u8) -> Vec<Weekday> {
    (0..n).map(|d| Weekday::try_from(d).unwrap()).collect()
}

fn always(z: &Zone) -> Calendar {
    Calendar::new(
        "24/7",
        z.tz(),
        Availability::Always,
        BTreeSet::new(),
        WeeklyWindows::default(),
    )
}

/// 24/7 with "Sundays 02:00-04:00" out (akte-sla).
fn always_but_sunday_maintenance(z: &Zone) -> Calendar {
    Calendar::new(
        "24/7 with maintenance",
        z.tz(),
        Availability::Always,
        BTreeSet::new(),
        week(&[Weekday::Sun], "02:00-04:00"),
    )
}

fn weekly(z: &Zone, days: &[Weekday], window: &str) -> Calendar {
    Calendar::new(
        window,
        z.tz(),
        Availability::Weekly(week(days, window)),
        BTreeSet::new(),
        WeeklyWindows::default(),
    )
}

/// An unmet first-response clock, judged two weeks later.
fn clock(cal: &Calendar, created: i64, states: &[(i64, ClockState)], target: i64) -> ClockOutcome {
    run_clock(
        cal,
        &ClockInput {
            metric: Metric::FirstResponse,
            created,
            states,
            met: None,
            as_of: created + 14 * 24 * HOUR,
            target,
            warn: WarnAt::Share(Decimal::new(75, 2)),
            reopen: Reopen::Continue,
        },
    )
}

// ------------------------------------------------------------ month bounds

#[test]
fn march_is_an_hour_short_and_october_an_hour_long() {
    for z in &ZONES {
        let tz = z.tz();
        let march = Month::new(2026, 3).unwrap();
        let october = Month::new(2026, 10).unwrap();
        assert_eq!(
            march.start(tz).timestamp(),
            t("2026-03-01", "00:00", z.winter),
            "{}",
            z.name
        );
        assert_eq!(
            march.end(tz).timestamp(),
            t("2026-04-01", "00:00", z.summer),
            "{}",
            z.name
        );
        assert_eq!(
            october.start(tz).timestamp(),
            t("2026-10-01", "00:00", z.summer),
            "{}",
            z.name
        );
        assert_eq!(
            october.end(tz).timestamp(),
            t("2026-11-01", "00:00", z.winter),
            "{}",
            z.name
        );
        let hours = |m: Month| (m.end(tz) - m.start(tz)).num_hours();
        assert_eq!(hours(march), 31 * 24 - 1, "{}", z.name);
        assert_eq!(hours(october), 31 * 24 + 1, "{}", z.name);
        // The end of one month is the start of the next.
        assert_eq!(march.end(tz), march.next().start(tz));
        assert_eq!(october.end(tz), october.next().start(tz));
    }
}

#[test]
fn instants_at_month_edges_belong_to_the_local_month() {
    let month_of = |z: &Zone, date: &str, time: &str, off: &str| {
        let at = DateTime::from_timestamp(t(date, time, off), 0).unwrap();
        let m = Month::containing(at, z.tz());
        (m.year(), m.month())
    };
    for z in &ZONES {
        // The last second of March is summer time, of October winter time.
        for (day, time, offset, month) in [
            ("2026-03-31", "23:59:59", z.summer, (2026, 3)),
            ("2026-04-01", "00:00:00", z.summer, (2026, 4)),
            ("2026-10-31", "23:59:59", z.winter, (2026, 10)),
            ("2026-11-01", "00:00:00", z.winter, (2026, 11)),
            ("2026-02-28", "23:59:59", z.winter, (2026, 2)),
            ("2026-10-01", "00:00:00", z.summer, (2026, 10)),
        ] {
            assert_eq!(
                month_of(z, day, time, offset),
                month,
                "{} {day}T{time}",
                z.name
            );
        }
        // The changes themselves fall inside March and October.
        for d in ["00:00:00", "01:00:00", "01:59:59"] {
            assert_eq!(month_of(z, START.0, d, "Z"), (2026, 3), "{}", z.name);
            assert_eq!(month_of(z, END.0, d, "Z"), (2026, 10), "{}", z.name);
        }
    }
    // The same instant, 2026-03-31T21:30Z, is April in Riga but March in the CET zones.
    for z in &ZONES {
        let expected = if z.skips_two() { 3 } else { 4 };
        assert_eq!(
            month_of(z, "2026-03-31", "21:30:00", "Z").1,
            expected,
            "{}",
            z.name
        );
    }
}

// ------------------------------------------------------ maintenance window

/// The closed gap that "Sundays 02:00-04:00" cuts out of a 24/7 calendar.
fn maintenance_gap(z: &Zone, saturday: &str) -> (i64, i64) {
    let cal = always_but_sunday_maintenance(z);
    let mut spans = cal.open_from(t(saturday, "12:00", z.winter));
    let first = spans.next().unwrap();
    let second = spans.next().unwrap();
    (first.1, second.0)
}

#[test]
fn sunday_maintenance_spans_three_real_hours_on_the_night_dst_ends() {
    for z in &ZONES {
        let (from, to) = maintenance_gap(z, END.1);
        assert_eq!(
            from,
            t(END.0, "02:00", z.summer),
            "{}: {}",
            z.name,
            show(z, from)
        );
        assert_eq!(
            to,
            t(END.0, "04:00", z.winter),
            "{}: {}",
            z.name,
            show(z, to)
        );
        assert_eq!(to - from, 3 * HOUR, "{}", z.name);
    }
}

#[test]
fn sunday_maintenance_spans_one_real_hour_on_the_night_dst_starts() {
    for z in &ZONES {
        let (from, to) = maintenance_gap(z, START.1);
        // 02:00 is skipped in the CET zones: maintenance starts at the end of
        // the gap, 03:00 summer time.
        let expected_from = if z.skips_two() {
            t(START.0, "03:00", z.summer)
        } else {
            t(START.0, "02:00", z.winter)
        };
        assert_eq!(from, expected_from, "{}: {}", z.name, show(z, from));
        assert_eq!(
            to,
            t(START.0, "04:00", z.summer),
            "{}: {}",
            z.name,
            show(z, to)
        );
        assert_eq!(to - from, HOUR, "{}", z.name);
    }
}

#[test]
fn a_day_with_maintenance_counts_twenty_two_hours_either_night() {
    for z in &ZONES {
        let cal = always_but_sunday_maintenance(z);
        // Saturday noon to Sunday noon: 25 real hours minus 3, or 23 minus 1.
        let end_night = clock_time_between(
            &cal,
            t(END.1, "12:00", z.summer),
            t(END.0, "12:00", z.winter),
        );
        let start_night = clock_time_between(
            &cal,
            t(START.1, "12:00", z.winter),
            t(START.0, "12:00", z.summer),
        );
        assert_eq!(end_night, 22 * HOUR, "{}", z.name);
        assert_eq!(start_night, 22 * HOUR, "{}", z.name);
    }
}

// ------------------------------------------------------- 24/7 real time

#[test]
fn always_open_targets_count_real_time_on_the_night_dst_ends() {
    for z in &ZONES {
        let created = t(END.0, "00:30", z.summer);
        let o = clock(&always(z), created, &[], 4 * HOUR);
        // 4 real hours: the wall clock shows 03:30 winter time.
        assert_eq!(
            o.due,
            Some(t(END.0, "03:30", z.winter)),
            "{}: {:?}",
            z.name,
            o.due.map(|d| show(z, d))
        );
        assert_eq!(o.due, Some(created + 4 * HOUR));
        // The warning at 3 h falls in the repeated hour, on its second pass.
        let warn_local = if z.skips_two() { "02:30" } else { "03:30" };
        let warn_offset = if z.skips_two() { z.winter } else { z.summer };
        assert_eq!(
            o.warn_at,
            Some(t(END.0, warn_local, warn_offset)),
            "{}",
            z.name
        );
        assert_eq!(o.warn_at, Some(created + 3 * HOUR));
    }
}

#[test]
fn always_open_targets_count_real_time_on_the_night_dst_starts() {
    for z in &ZONES {
        let created = t(START.0, "00:30", z.winter);
        let o = clock(&always(z), created, &[], 4 * HOUR);
        // 4 real hours: the wall clock shows 05:30 summer time.
        assert_eq!(
            o.due,
            Some(t(START.0, "05:30", z.summer)),
            "{}: {:?}",
            z.name,
            o.due.map(|d| show(z, d))
        );
        assert_eq!(o.due, Some(created + 4 * HOUR));
    }
}

#[test]
fn always_open_elapsed_time_is_real_time_across_the_change() {
    for z in &ZONES {
        let cal = always(z);
        // Saturday noon to Sunday noon, local: 25 or 23 real hours.
        assert_eq!(
            clock_time_between(
                &cal,
                t(END.1, "12:00", z.summer),
                t(END.0, "12:00", z.winter)
            ),
            25 * HOUR,
            "{}",
            z.name
        );
        assert_eq!(
            clock_time_between(
                &cal,
                t(START.1, "12:00", z.winter),
                t(START.0, "12:00", z.summer)
            ),
            23 * HOUR,
            "{}",
            z.name
        );
    }
}

#[test]
fn maintenance_stops_a_target_for_three_hours_or_one() {
    for z in &ZONES {
        let cal = always_but_sunday_maintenance(z);
        // 1.5 h before maintenance, then 2.5 h after it: 06:30 on both nights,
        // 7 real hours after creation when DST ends, 5 when it starts.
        let created = t(END.0, "00:30", z.summer);
        let o = clock(&cal, created, &[], 4 * HOUR);
        assert_eq!(
            o.due,
            Some(t(END.0, "06:30", z.winter)),
            "{}: {:?}",
            z.name,
            o.due.map(|d| show(z, d))
        );
        assert_eq!(o.due, Some(created + 7 * HOUR));

        let created = t(START.0, "00:30", z.winter);
        let o = clock(&cal, created, &[], 4 * HOUR);
        assert_eq!(
            o.due,
            Some(t(START.0, "06:30", z.summer)),
            "{}: {:?}",
            z.name,
            o.due.map(|d| show(z, d))
        );
        assert_eq!(o.due, Some(created + 5 * HOUR));
    }
}

#[test]
fn a_pause_over_the_change_stops_the_clock_for_its_real_length() {
    for z in &ZONES {
        let cal = always(z);
        // Created Saturday 22:00, paused Saturday 23:00 to Sunday 05:00 (local),
        // 2 h target: 1 h before the pause, 1 h after it: due 06:00 Sunday.
        for (night, summer_first) in [(END, true), (START, false)] {
            let (before, after) = if summer_first {
                (z.summer, z.winter)
            } else {
                (z.winter, z.summer)
            };
            let created = t(night.1, "22:00", before);
            let states = [
                (t(night.1, "23:00", before), ClockState::Paused),
                (t(night.0, "05:00", after), ClockState::Open),
            ];
            let o = clock(&cal, created, &states, 2 * HOUR);
            assert_eq!(
                o.due,
                Some(t(night.0, "06:00", after)),
                "{} {}",
                z.name,
                night.0
            );
            let paused = if summer_first { 7 * HOUR } else { 5 * HOUR };
            let o = run_clock(
                &cal,
                &ClockInput {
                    metric: Metric::FirstResponse,
                    created,
                    states: &states,
                    met: o.due,
                    as_of: o.due.unwrap(),
                    target: 2 * HOUR,
                    warn: WarnAt::Share(Decimal::new(75, 2)),
                    reopen: Reopen::Continue,
                },
            );
            assert_eq!(o.stopped, paused, "{} {}", z.name, night.0);
            assert_eq!(o.elapsed, 2 * HOUR, "{} {}", z.name, night.0);
            assert!(!o.breached);
        }
    }
}

// -------------------------------------------------------- night windows

#[test]
fn a_01_to_05_window_is_five_real_hours_when_dst_ends_and_three_when_it_starts() {
    for z in &ZONES {
        let cal = weekly(z, &days(7), "01:00-05:00");
        let end_night = cal.open_from(t(END.1, "12:00", z.summer)).next().unwrap();
        assert_eq!(
            end_night,
            (t(END.0, "01:00", z.summer), t(END.0, "05:00", z.winter)),
            "{}",
            z.name
        );
        assert_eq!(end_night.1 - end_night.0, 5 * HOUR);
        let start_night = cal.open_from(t(START.1, "12:00", z.winter)).next().unwrap();
        assert_eq!(
            start_night,
            (t(START.0, "01:00", z.winter), t(START.0, "05:00", z.summer)),
            "{}",
            z.name
        );
        assert_eq!(start_night.1 - start_night.0, 3 * HOUR);
    }
}

#[test]
fn a_target_in_a_01_to_05_window_runs_in_real_time() {
    for z in &ZONES {
        let cal = weekly(z, &days(7), "01:00-05:00");
        // DST ends: 4 real hours after 01:00 summer time is 04:00 winter time.
        let o = clock(&cal, t(END.0, "00:00", z.summer), &[], 4 * HOUR);
        assert_eq!(
            o.due,
            Some(t(END.0, "04:00", z.winter)),
            "{}: {:?}",
            z.name,
            o.due.map(|d| show(z, d))
        );
        // DST starts: the night holds 3 real hours; the 4th is Monday 01:00-02:00.
        let o = clock(&cal, t(START.0, "00:00", z.winter), &[], 4 * HOUR);
        assert_eq!(
            o.due,
            Some(t(START.2, "02:00", z.summer)),
            "{}: {:?}",
            z.name,
            o.due.map(|d| show(z, d))
        );
        // Exactly the night's 3 hours: due when the window closes at 05:00.
        let o = clock(&cal, t(START.0, "00:00", z.winter), &[], 3 * HOUR);
        assert_eq!(o.due, Some(t(START.0, "05:00", z.summer)), "{}", z.name);
        let o = clock(&cal, t(END.0, "00:00", z.summer), &[], 5 * HOUR);
        assert_eq!(o.due, Some(t(END.0, "05:00", z.winter)), "{}", z.name);
    }
}

/// Rule 7 says windows are read on the local wall clock. A window that ends
/// at (or inside) the hour that repeats when DST ends is open, read that way,
/// only while the wall clock shows a time before its end: Riga "00:00-03:00"
/// closes at the first 03:00 (3 real hours), Warsaw "01:00-02:30" is open
/// 01:00-02:30 summer time and again 02:00-02:30 winter time (2 real hours).
/// The engine ends a window at the *latest* instant showing its end time
/// (its documented rule, `calendar.rs`), which also counts the repeated
/// hour's times after the end: 4 h and 2.5 h.
#[test]

fn a_window_ending_in_the_repeated_hour_follows_the_wall_clock() {
    let riga = &ZONES[0];
    let cal = weekly(riga, &[Weekday::Sun], "00:00-03:00");
    let from = t(END.1, "12:00", riga.summer);
    let open: i64 = cal
        .open_from(from)
        .take_while(|s| s.0 < from + 2 * 24 * HOUR)
        .map(|s| s.1 - s.0)
        .sum();
    assert_eq!(open, 3 * HOUR);

    let warsaw = &ZONES[1];
    let cal = weekly(warsaw, &[Weekday::Sun], "01:00-02:30");
    let from = t(END.1, "12:00", warsaw.summer);
    let open: i64 = cal
        .open_from(from)
        .take_while(|s| s.0 < from + 2 * 24 * HOUR)
        .map(|s| s.1 - s.0)
        .sum();
    assert_eq!(open, 2 * HOUR);
}

// ------------------------------------------------------ business hours

#[test]
fn business_hours_resume_on_the_new_offset_after_the_weekend() {
    for z in &ZONES {
        let cal = weekly(z, &days(5), "09:00-17:00");
        // Friday 16:00 + 2 h: one hour on Friday, one on Monday.
        let o = clock(&cal, t("2026-03-27", "16:00", z.winter), &[], 2 * HOUR);
        assert_eq!(o.due, Some(t(START.2, "10:00", z.summer)), "{}", z.name);
        let o = clock(&cal, t("2026-10-23", "16:00", z.summer), &[], 2 * HOUR);
        assert_eq!(o.due, Some(t(END.2, "10:00", z.winter)), "{}", z.name);
        // Friday 09:00 to Monday 17:00: two working days, whatever the offsets.
        assert_eq!(
            clock_time_between(
                &cal,
                t("2026-03-27", "09:00", z.winter),
                t(START.2, "17:00", z.summer)
            ),
            16 * HOUR,
            "{}",
            z.name
        );
        assert_eq!(
            clock_time_between(
                &cal,
                t("2026-10-23", "09:00", z.summer),
                t(END.2, "17:00", z.winter)
            ),
            16 * HOUR,
            "{}",
            z.name
        );
    }
}

#[test]
fn a_target_running_out_at_closing_time_is_due_at_closing_time() {
    for z in &ZONES {
        let cal = weekly(z, &days(5), "09:00-17:00");
        // Created Saturday before the change: the 8 h run Monday 09:00-17:00.
        let o = clock(&cal, t(START.1, "10:00", z.winter), &[], 8 * HOUR);
        assert_eq!(o.due, Some(t(START.2, "17:00", z.summer)), "{}", z.name);
        let o = clock(&cal, t(END.1, "10:00", z.summer), &[], 8 * HOUR);
        assert_eq!(o.due, Some(t(END.2, "17:00", z.winter)), "{}", z.name);
    }
}

#[test]
fn a_window_over_the_whole_sunday_holds_23_or_25_hours() {
    for z in &ZONES {
        let cal = weekly(z, &[Weekday::Sun], "00:00-24:00");
        let span =
            |saturday: &str, off: &str| cal.open_from(t(saturday, "12:00", off)).next().unwrap();
        let end_night = span(END.1, z.summer);
        assert_eq!(
            end_night,
            (t(END.0, "00:00", z.summer), t(END.2, "00:00", z.winter)),
            "{}",
            z.name
        );
        assert_eq!(end_night.1 - end_night.0, 25 * HOUR);
        let start_night = span(START.1, z.winter);
        assert_eq!(
            start_night,
            (t(START.0, "00:00", z.winter), t(START.2, "00:00", z.summer)),
            "{}",
            z.name
        );
        assert_eq!(start_night.1 - start_night.0, 23 * HOUR);
    }
}
