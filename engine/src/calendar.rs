//! Business calendars: when an SLA clock may run.
//!
//! A calendar is a weekly pattern of windows read on the **local wall clock** of
//! its time zone, minus holidays, minus maintenance windows (rule 7 of
//! `contracts.md`). It is turned into *open spans*, `[start, end)` instants in
//! Unix seconds, one local year at a time, and cached: finding a due time then
//! jumps from span edge to span edge instead of walking minutes.
//!
//! Wall-clock rule across DST: an instant is inside a window when the local
//! clock shows a time within it. So "Sundays 02:00–04:00" spans three real
//! hours on the night DST ends (the clock shows 02:xx twice) and one on the
//! night it starts (02:xx never shows); a window ending at 02:30 on the night
//! DST ends holds 01:00–02:30 summer time and again 02:00–02:30 winter time.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;

use crate::holidays::PublicHolidays;

/// `[start, end)` in Unix seconds.
pub type Span = (i64, i64);

/// A window within one day, in minutes after local midnight; `end` may be
/// 1440 (24:00).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DayWindow {
    start: u16,
    end: u16,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error(
        "`{0}` is not a time window: expected HH:MM-HH:MM, for example 09:00-17:00 (24:00 allowed as the end)"
    )]
    Syntax(String),
    #[error("window `{0}` ends before it starts; split a window across midnight into two days")]
    Reversed(String),
}

impl DayWindow {
    pub fn new(start_minute: u16, end_minute: u16) -> Option<DayWindow> {
        (start_minute < end_minute && end_minute <= 1440).then_some(DayWindow {
            start: start_minute,
            end: end_minute,
        })
    }

    pub const WHOLE_DAY: DayWindow = DayWindow {
        start: 0,
        end: 1440,
    };

    /// Parses `HH:MM-HH:MM`.
    pub fn parse(s: &str) -> Result<DayWindow, WindowError> {
        let syntax = || WindowError::Syntax(s.to_owned());
        let (a, b) = s.split_once('-').ok_or_else(syntax)?;
        let minute = |t: &str| -> Option<u16> {
            let t = t.trim();
            if t == "24:00" {
                return Some(1440);
            }
            let nt = NaiveTime::parse_from_str(t, "%H:%M").ok()?;
            use chrono::Timelike;
            u16::try_from(nt.hour() * 60 + nt.minute()).ok()
        };
        let start = minute(a).filter(|m| *m < 1440).ok_or_else(syntax)?;
        let end = minute(b).ok_or_else(syntax)?;
        DayWindow::new(start, end).ok_or_else(|| WindowError::Reversed(s.to_owned()))
    }

    fn local_time(minute: u16, date: NaiveDate) -> chrono::NaiveDateTime {
        if minute >= 1440 {
            (date + chrono::Days::new(1))
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
        } else {
            date.and_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)
                .expect("valid time")
        }
    }

    /// The instants whose wall-clock time on `date` lies in `[start, end)`,
    /// read per stretch of constant UTC offset (see the module doc).
    fn spans_on(self, date: NaiveDate, tz: Tz, out: &mut Vec<Span>) {
        let l1 = Self::local_time(self.start, date).and_utc().timestamp();
        let l2 = Self::local_time(self.end, date).and_utc().timestamp();
        let offset = |utc: i64| -> i64 {
            use chrono::{Offset, TimeZone};
            let t = chrono::DateTime::from_timestamp(utc, 0).unwrap_or_default();
            i64::from(
                tz.offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc(),
            )
        };
        // Every instant that can show a time of this day lies in [a, b).
        let (a, b) = (l1 - 26 * 3600, l2 + 26 * 3600);
        let (oa, ob) = (offset(a), offset(b));
        let mut push = |lo: i64, hi: i64, (s, e): Span| {
            let (s, e) = (s.max(lo), e.min(hi));
            if e > s {
                out.push((s, e));
            }
        };
        if oa == ob {
            push(a, b, (l1 - oa, l2 - oa));
            return;
        }
        // One offset change in between: find its instant.
        let (mut lo, mut hi) = (a, b);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if offset(mid) == oa {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        push(a, hi, (l1 - oa, l2 - oa));
        push(hi, b, (l1 - ob, l2 - ob));
    }
}

impl fmt::Display for DayWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// Windows per weekday, Monday first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeeklyWindows {
    days: [Vec<DayWindow>; 7],
}

impl WeeklyWindows {
    pub fn add(&mut self, day: Weekday, window: DayWindow) {
        let v = &mut self.days[day.num_days_from_monday() as usize];
        v.push(window);
        v.sort();
    }

    pub fn on(&self, day: Weekday) -> &[DayWindow] {
        &self.days[day.num_days_from_monday() as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.days.iter().all(Vec::is_empty)
    }
}

/// When the clock may run, before maintenance windows are taken out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// 24/7: real elapsed time. Holidays do not apply.
    Always,
    /// Weekly windows on working days; closed on holidays.
    Weekly(WeeklyWindows),
}

/// A named business calendar.
pub struct Calendar {
    pub name: String,
    pub tz: Tz,
    pub availability: Availability,
    /// Days closed besides `public`'s.
    pub holidays: BTreeSet<NaiveDate>,
    /// A country's (or region's) public holidays, every year.
    pub public: Option<PublicHolidays>,
    /// Days of `public` the calendar keeps open.
    pub not_holidays: BTreeSet<NaiveDate>,
    /// Stops the clock, holidays included.
    pub maintenance: WeeklyWindows,
    cache: Box<[OnceLock<Vec<Span>>]>,
}

const CACHE_FIRST_YEAR: i32 = 1970;
const CACHE_YEARS: usize = 200;
/// A calendar with no open time for this many years in a row is closed for good.
const MAX_EMPTY_YEARS: i32 = 4;

impl fmt::Debug for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calendar")
            .field("name", &self.name)
            .field("tz", &self.tz)
            .field("availability", &self.availability)
            .field("holidays", &self.holidays)
            .field("public", &self.public)
            .field("not_holidays", &self.not_holidays)
            .field("maintenance", &self.maintenance)
            .finish()
    }
}

impl Calendar {
    pub fn new(
        name: impl Into<String>,
        tz: Tz,
        availability: Availability,
        holidays: BTreeSet<NaiveDate>,
        maintenance: WeeklyWindows,
    ) -> Calendar {
        Calendar {
            name: name.into(),
            tz,
            availability,
            holidays,
            public: None,
            not_holidays: BTreeSet::new(),
            maintenance,
            cache: (0..CACHE_YEARS).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Closed on `public`'s holidays too, except the days in `not_holidays`
    /// (which also reopen days of `holidays`).
    pub fn with_public_holidays(
        mut self,
        public: Option<PublicHolidays>,
        not_holidays: BTreeSet<NaiveDate>,
    ) -> Calendar {
        self.public = public;
        self.not_holidays = not_holidays;
        self
    }

    /// The same calendar with `add` closed and `remove` open on top (a
    /// contract's own changes to a shared calendar).
    pub fn amended(&self, add: &BTreeSet<NaiveDate>, remove: &BTreeSet<NaiveDate>) -> Calendar {
        let holidays = self
            .holidays
            .union(add)
            .copied()
            .filter(|d| !remove.contains(d));
        let not_holidays = self
            .not_holidays
            .iter()
            .filter(|d| !add.contains(d))
            .chain(remove)
            .copied()
            .collect();
        Calendar::new(
            self.name.clone(),
            self.tz,
            self.availability.clone(),
            holidays.collect(),
            self.maintenance.clone(),
        )
        .with_public_holidays(self.public, not_holidays)
    }

    /// Every day of local year `year` the calendar is closed for a holiday.
    pub fn holidays_in(&self, year: i32) -> BTreeSet<NaiveDate> {
        let mut days: BTreeSet<NaiveDate> = self
            .holidays
            .iter()
            .filter(|d| d.year() == year)
            .copied()
            .collect();
        if let Some(p) = self.public {
            days.extend(p.dates(year));
        }
        days.retain(|d| !self.not_holidays.contains(d));
        days
    }

    /// 24/7 with no maintenance: SLA time is real elapsed time.
    pub fn is_continuous(&self) -> bool {
        self.availability == Availability::Always && self.maintenance.is_empty()
    }

    /// Open spans of local year `year`, sorted and merged.
    fn year_spans(&self, year: i32) -> std::borrow::Cow<'_, [Span]> {
        let idx = year - CACHE_FIRST_YEAR;
        if (0..CACHE_YEARS as i32).contains(&idx) {
            std::borrow::Cow::Borrowed(
                self.cache[idx as usize].get_or_init(|| self.compute_year(year)),
            )
        } else {
            std::borrow::Cow::Owned(self.compute_year(year))
        }
    }

    fn compute_year(&self, year: i32) -> Vec<Span> {
        let mut spans: Vec<Span> = Vec::new();
        let Some(mut date) = NaiveDate::from_ymd_opt(year, 1, 1) else {
            return spans;
        };
        let holidays = self.holidays_in(year);
        while date.year() == year {
            let wd = date.weekday();
            let open: &[DayWindow] = match &self.availability {
                Availability::Always => std::slice::from_ref(&DayWindow::WHOLE_DAY),
                Availability::Weekly(w) if holidays.contains(&date) => {
                    let _ = w;
                    &[]
                }
                Availability::Weekly(w) => w.on(wd),
            };
            let mut closed: Vec<Span> = Vec::new();
            for w in self.maintenance.on(wd) {
                w.spans_on(date, self.tz, &mut closed);
            }
            let mut day: Vec<Span> = Vec::new();
            for w in open {
                w.spans_on(date, self.tz, &mut day);
            }
            for span in day {
                subtract_into(span, &closed, &mut spans);
            }
            date = date.succ_opt().expect("date in range");
        }
        merge(&mut spans);
        spans
    }

    /// Open spans from instant `from` on (clipped), merged across days.
    pub fn open_from(&self, from: i64) -> OpenSpans<'_> {
        let year = chrono::DateTime::from_timestamp(from, 0)
            .map(|t| t.with_timezone(&self.tz).year())
            .unwrap_or(1970);
        OpenSpans {
            cal: self,
            // The local year of `from` may hold spans that began the year before.
            year: year - 1,
            spans: std::borrow::Cow::Borrowed(&[]),
            idx: 0,
            from,
            empty_years: 0,
        }
    }

    /// Is `at` inside an open span?
    pub fn is_open(&self, at: i64) -> bool {
        self.open_from(at).next().is_some_and(|(s, _)| s <= at)
    }
}

/// Appends `span` minus every span of `closed` to `out`.
fn subtract_into(span: Span, closed: &[Span], out: &mut Vec<Span>) {
    let mut pieces = vec![span];
    for &(cs, ce) in closed {
        let mut next = Vec::with_capacity(pieces.len() + 1);
        for (s, e) in pieces {
            if ce <= s || cs >= e {
                next.push((s, e));
                continue;
            }
            if cs > s {
                next.push((s, cs));
            }
            if ce < e {
                next.push((ce, e));
            }
        }
        pieces = next;
    }
    out.extend(pieces.into_iter().filter(|(s, e)| e > s));
}

fn merge(spans: &mut Vec<Span>) {
    spans.sort_unstable();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for &(s, e) in spans.iter() {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    *spans = out;
}

/// Iterator over a calendar's open spans; see [`Calendar::open_from`].
pub struct OpenSpans<'a> {
    cal: &'a Calendar,
    year: i32,
    spans: std::borrow::Cow<'a, [Span]>,
    idx: usize,
    from: i64,
    empty_years: i32,
}

impl OpenSpans<'_> {
    fn next_raw(&mut self) -> Option<Span> {
        loop {
            if self.idx < self.spans.len() {
                let (s, e) = self.spans[self.idx];
                self.idx += 1;
                if e <= self.from {
                    continue;
                }
                return Some((s.max(self.from), e));
            }
            if self.empty_years > MAX_EMPTY_YEARS {
                return None;
            }
            self.year += 1;
            self.spans = match self.cal.year_spans(self.year) {
                std::borrow::Cow::Borrowed(b) => std::borrow::Cow::Borrowed(b),
                std::borrow::Cow::Owned(o) => std::borrow::Cow::Owned(o),
            };
            // Skip the spans that end before `from` with one binary search.
            self.idx = self.spans.partition_point(|&(_, e)| e <= self.from);
            if self.spans.is_empty() {
                self.empty_years += 1;
            } else {
                self.empty_years = 0;
            }
        }
    }
}

impl Iterator for OpenSpans<'_> {
    type Item = Span;
    /// Spans are merged within a local year; a span touching the next one at
    /// a year boundary is yielded as two (a 24/7 calendar would otherwise be
    /// one endless span).
    fn next(&mut self) -> Option<Span> {
        self.next_raw()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone};

    /// The first `n` days of the week, Monday first.
    pub(crate) fn days(n: u8) -> impl Iterator<Item = Weekday> {
        (0..n).map(|d| Weekday::try_from(d).unwrap())
    }

    /// `window` on Monday to Friday.
    pub(crate) fn weekdays(window: &str) -> WeeklyWindows {
        let mut w = WeeklyWindows::default();
        for d in days(5) {
            w.add(d, DayWindow::parse(window).unwrap());
        }
        w
    }

    fn ts(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    #[test]
    fn parses_windows() {
        assert_eq!(
            DayWindow::parse("09:00-17:00").unwrap().to_string(),
            "09:00-17:00"
        );
        assert_eq!(
            DayWindow::parse("00:00-24:00").unwrap(),
            DayWindow::WHOLE_DAY
        );
        assert!(matches!(
            DayWindow::parse("17:00-09:00"),
            Err(WindowError::Reversed(_))
        ));
        assert!(matches!(
            DayWindow::parse("9-17"),
            Err(WindowError::Syntax(_))
        ));
        assert!(matches!(
            DayWindow::parse("24:00-24:00"),
            Err(WindowError::Syntax(_))
        ));
    }

    #[test]
    fn weekly_windows_skip_weekends_and_holidays() {
        let tz: Tz = "Europe/Riga".parse().unwrap();
        let holidays = [NaiveDate::from_ymd_opt(2026, 11, 18).unwrap()].into();
        let cal = Calendar::new(
            "riga",
            tz,
            Availability::Weekly(weekdays("09:00-17:00")),
            holidays,
            WeeklyWindows::default(),
        );
        let mut it = cal.open_from(ts("2026-11-13T18:00:00+02:00")); // Friday evening
        assert_eq!(
            it.next().unwrap(),
            (
                ts("2026-11-16T09:00:00+02:00"),
                ts("2026-11-16T17:00:00+02:00")
            )
        );
        assert_eq!(it.next().unwrap().0, ts("2026-11-17T09:00:00+02:00"));
        assert_eq!(
            it.next().unwrap().0,
            ts("2026-11-19T09:00:00+02:00"),
            "the holiday is closed"
        );
    }

    #[test]
    fn a_national_calendar_closes_on_its_holidays_with_a_contracts_changes() {
        let tz: Tz = "Europe/Stockholm".parse().unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let cal = Calendar::new(
            "se",
            tz,
            Availability::Weekly(weekdays("08:00-17:00")),
            BTreeSet::new(),
            WeeklyWindows::default(),
        )
        .with_public_holidays(Some("SE".parse().unwrap()), BTreeSet::new());
        // Thursday 18 June 2026 evening: Midsummer Eve (Friday 19) is closed.
        let next = |c: &Calendar, from: &str| c.open_from(ts(from)).next().unwrap().0;
        assert_eq!(
            next(&cal, "2026-06-18T18:00:00+02:00"),
            ts("2026-06-22T08:00:00+02:00")
        );
        // A contract that works Midsummer Eve but closes the day before it.
        let amended = cal.amended(&[d("2026-06-18")].into(), &[d("2026-06-19")].into());
        assert_eq!(
            next(&amended, "2026-06-17T18:00:00+02:00"),
            ts("2026-06-19T08:00:00+02:00")
        );
        assert!(amended.holidays_in(2026).contains(&d("2026-12-24")));
        assert!(!amended.holidays_in(2026).contains(&d("2026-06-19")));
        // The shared calendar is unchanged.
        assert!(cal.holidays_in(2026).contains(&d("2026-06-19")));
    }

    /// Always open but for maintenance on Sundays 02:00-04:00 in Warsaw.
    fn warsaw_sunday_night_maintenance() -> Calendar {
        let tz: Tz = "Europe/Warsaw".parse().unwrap();
        let mut maint = WeeklyWindows::default();
        maint.add(Weekday::Sun, DayWindow::parse("02:00-04:00").unwrap());
        Calendar::new("waw", tz, Availability::Always, BTreeSet::new(), maint)
    }

    #[test]
    fn maintenance_on_the_night_dst_ends_spans_three_real_hours() {
        let cal = warsaw_sunday_night_maintenance();
        let mut it = cal.open_from(ts("2026-10-24T12:00:00+02:00"));
        let first = it.next().unwrap();
        assert_eq!(first.1, ts("2026-10-25T02:00:00+02:00"));
        let second = it.next().unwrap();
        assert_eq!(second.0, ts("2026-10-25T04:00:00+01:00"));
        assert_eq!(second.0 - first.1, 3 * 3600);
    }

    #[test]
    fn maintenance_on_the_night_dst_starts_spans_one_real_hour() {
        let cal = warsaw_sunday_night_maintenance();
        let mut it = cal.open_from(ts("2026-03-28T12:00:00+01:00"));
        let first = it.next().unwrap();
        let second = it.next().unwrap();
        assert_eq!(second.0 - first.1, 3600);
    }

    #[test]
    fn always_open_continues_across_years() {
        let tz: Tz = "Europe/Copenhagen".parse().unwrap();
        let cal = Calendar::new(
            "dk",
            tz,
            Availability::Always,
            BTreeSet::new(),
            WeeklyWindows::default(),
        );
        let from = ts("2026-12-30T23:00:00+01:00");
        let mut it = cal.open_from(from);
        let (s, e) = it.next().unwrap();
        assert_eq!(s, from);
        assert_eq!(e, ts("2027-01-01T00:00:00+01:00"));
        assert_eq!(
            it.next().unwrap().0,
            e,
            "the next year continues without a gap"
        );
    }

    #[test]
    fn whole_week_windows_equal_always_open() {
        let tz: Tz = "Europe/Stockholm".parse().unwrap();
        let mut all = WeeklyWindows::default();
        for d in days(7) {
            all.add(d, DayWindow::WHOLE_DAY);
        }
        let cal = Calendar::new(
            "all",
            tz,
            Availability::Weekly(all),
            BTreeSet::new(),
            WeeklyWindows::default(),
        );
        let from = tz
            .with_ymd_and_hms(2026, 3, 1, 5, 0, 0)
            .unwrap()
            .timestamp();
        let (s, e) = cal.open_from(from).next().unwrap();
        assert_eq!(s, from);
        assert_eq!(
            e,
            tz.with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
                .unwrap()
                .timestamp()
        );
    }

    #[test]
    fn a_calendar_with_no_windows_never_opens() {
        let tz: Tz = "Europe/Riga".parse().unwrap();
        let cal = Calendar::new(
            "never",
            tz,
            Availability::Weekly(WeeklyWindows::default()),
            BTreeSet::new(),
            WeeklyWindows::default(),
        );
        assert_eq!(cal.open_from(0).next(), None);
    }
}
