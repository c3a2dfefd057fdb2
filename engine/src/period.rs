//! Billing periods: calendar months read in a contract's own time zone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

/// A calendar month, `YYYY-MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    /// 1..=12
    month: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a month: expected YYYY-MM, for example 2026-10")]
pub struct MonthError(pub String);

impl Month {
    pub fn new(year: i32, month: u32) -> Option<Month> {
        ((1..=12).contains(&month) && (1000..=9999).contains(&year))
            .then_some(Month { year, month })
    }

    pub fn of(date: NaiveDate) -> Month {
        Month {
            year: date.year(),
            month: date.month(),
        }
    }

    /// The month containing `at` on the wall clock of `tz`.
    pub fn containing(at: DateTime<Utc>, tz: Tz) -> Month {
        Month::of(at.with_timezone(&tz).date_naive())
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid month")
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month `n` months before this one.
    pub fn back(self, n: u32) -> Month {
        let index = self.year * 12 + self.month as i32 - 1 - n as i32;
        Month {
            year: index.div_euclid(12),
            month: index.rem_euclid(12) as u32 + 1,
        }
    }

    /// Calendar quarter, 1..=4.
    pub fn quarter(self) -> u32 {
        (self.month - 1) / 3 + 1
    }

    /// The instant local midnight starts this month in `tz`.
    pub fn start(self, tz: Tz) -> DateTime<Utc> {
        local_midnight(self.first_day(), tz)
    }

    /// The instant the next month starts (exclusive end of this one).
    pub fn end(self, tz: Tz) -> DateTime<Utc> {
        self.next().start(tz)
    }

    /// Months from `self` up to and including `last`.
    pub fn through(self, last: Month) -> impl Iterator<Item = Month> {
        std::iter::successors(Some(self), move |m| {
            let n = m.next();
            (n <= last).then_some(n)
        })
        .take_while(move |m| *m <= last)
    }
}

/// The first instant of `date` in `tz`. Where midnight does not exist (a DST
/// gap at midnight), the first instant after the gap.
pub fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    earliest_instant(date.and_hms_opt(0, 0, 0).expect("midnight"), tz)
}

/// The earliest instant showing `local` on the wall clock of `tz`; for a local
/// time skipped by a DST gap, the instant the gap ends.
pub fn earliest_instant(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => gap_end(local, tz),
    }
}

/// The transition instant of the DST gap that swallows `local`.
fn gap_end(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    use chrono::Offset;
    // Read with the offset in force a day earlier, `local` lies after the
    // transition; with the offset a day later, before it. Bisect between.
    let day = chrono::Duration::days(1);
    let off_before = tz
        .offset_from_utc_datetime(&(local - day))
        .fix()
        .local_minus_utc();
    let off_after = tz
        .offset_from_utc_datetime(&(local + day))
        .fix()
        .local_minus_utc();
    let mut hi = (local - chrono::Duration::seconds(i64::from(off_before))).and_utc();
    let mut lo = (local - chrono::Duration::seconds(i64::from(off_after))).and_utc();
    if lo > hi {
        std::mem::swap(&mut lo, &mut hi);
    }
    let after = |t: DateTime<Utc>| {
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc()
            == off_after
    };
    while hi - lo > chrono::Duration::seconds(1) {
        let mid = lo + (hi - lo) / 2;
        if after(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = MonthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MonthError(s.to_owned());
        let (y, m) = s.split_once('-').ok_or_else(err)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(err());
        }
        let year = y.parse().map_err(|_| err())?;
        let month = m.parse().map_err(|_| err())?;
        Month::new(year, month).ok_or_else(err)
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_months() {
        let m: Month = "2026-10".parse().unwrap();
        assert_eq!(m.to_string(), "2026-10");
        assert_eq!(m.next().to_string(), "2026-11");
        assert_eq!(
            "2026-12".parse::<Month>().unwrap().next().to_string(),
            "2027-01"
        );
        assert!("2026-13".parse::<Month>().is_err());
        assert!("2026-1".parse::<Month>().is_err());
        assert_eq!(m.quarter(), 4);
        assert_eq!(m.back(0), m);
        assert_eq!(m.back(10).to_string(), "2025-12");
        assert_eq!(m.back(22).to_string(), "2024-12");
    }

    #[test]
    fn month_bounds_follow_the_local_wall_clock() {
        let tz: Tz = "Europe/Riga".parse().unwrap();
        let m: Month = "2026-10".parse().unwrap();
        assert_eq!(m.start(tz).to_rfc3339(), "2026-09-30T21:00:00+00:00");
        // October ends in winter time.
        assert_eq!(m.end(tz).to_rfc3339(), "2026-10-31T22:00:00+00:00");
    }

    #[test]
    fn gap_times_map_to_the_end_of_the_gap() {
        let tz: Tz = "Europe/Warsaw".parse().unwrap();
        // 2026-03-29 02:30 does not exist in Warsaw; the clock jumps 02:00 → 03:00 (01:00 UTC).
        let local = NaiveDate::from_ymd_opt(2026, 3, 29)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(
            earliest_instant(local, tz).to_rfc3339(),
            "2026-03-29T01:00:00+00:00"
        );
    }

    #[test]
    fn ambiguous_times_pick_the_earliest() {
        let tz: Tz = "Europe/Warsaw".parse().unwrap();
        let local = NaiveDate::from_ymd_opt(2026, 10, 25)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(
            earliest_instant(local, tz).to_rfc3339(),
            "2026-10-25T00:30:00+00:00"
        );
    }
}
