//! Calendars (business hours, holidays, maintenance windows) and value maps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::Weekday;
use engine::calendar::{Availability, Calendar, DayWindow, WeeklyWindows};
use engine::values::{ClockState, Priority, ValueMap};

use super::{Builder, at};
use crate::diag::{Origin, Problem};
use crate::raw::{OneOrMany, RawCalendar, RawHours, RawValueMap};

impl Builder<'_> {
    /// `None` when any of its keys is invalid (each reported where written).
    pub(super) fn calendar(
        &mut self,
        name: &str,
        o: &Origin,
        raw: &RawCalendar,
    ) -> Option<Calendar> {
        let before = self.report.mark();
        let tz = self.tz(&at(o, "time_zone", &raw.time_zone));
        let hours = at(o, "hours", &raw.hours);
        let availability = match &hours.value {
            RawHours::Text(t) if t.trim() == "24/7" => Availability::Always,
            RawHours::Text(t) => {
                self.raise(&hours.origin, Problem::NotHours(t.clone()));
                Availability::Always
            }
            RawHours::Days(days) => Availability::Weekly(self.weekly(&hours.origin, days)),
        };
        if matches!(availability, Availability::Always)
            && (!raw.holidays.is_empty()
                || raw.holidays_ical.is_some()
                || raw.public_holidays.is_some())
        {
            self.raise(&o.child("holidays"), Problem::HolidaysOnAlwaysOpen);
        }
        let mut holidays = BTreeSet::new();
        for (i, h) in raw.holidays.iter().enumerate() {
            let a = at(&o.child("holidays"), &i.to_string(), h);
            if let Some(d) = self.date(&a) {
                holidays.insert(d);
            }
        }
        if let Some(ical) = &raw.holidays_ical {
            let a = at(o, "holidays_ical", ical);
            // Relative to the mapping file that names it.
            let base = o.file.parent().unwrap_or(Path::new("."));
            let path = base.join(&a.value);
            match std::fs::read_to_string(&path) {
                Ok(text) => match crate::ical::all_day_dates(&text) {
                    Ok(dates) => holidays.extend(dates),
                    Err(error) => self.raise(&a.origin, Problem::BadIcal { path, error }),
                },
                Err(e) => self.raise(
                    &a.origin,
                    Problem::CannotReadIcal {
                        path,
                        error: e.to_string(),
                    },
                ),
            }
        }
        let public = raw.public_holidays.as_ref().and_then(|p| {
            let a = at(o, "public_holidays", p);
            let parsed = a
                .value
                .parse::<engine::holidays::PublicHolidays>()
                .map_err(|e| Problem::Verbatim(e.to_string()));
            self.report.ok(&a.origin, parsed)
        });
        let not_holidays = self.dates(&o.child("not_holidays"), &raw.not_holidays);
        if !not_holidays.is_empty() && raw.public_holidays.is_none() && raw.holidays_ical.is_none()
        {
            self.raise(&o.child("not_holidays"), Problem::NothingToReopen);
        }
        let maintenance = match &raw.maintenance {
            Some(mw) => {
                let a = at(o, "maintenance", mw);
                self.weekly(&a.origin, &a.value)
            }
            None => WeeklyWindows::default(),
        };
        if self.report.errors_since(before) {
            return None;
        }
        Some(
            Calendar::new(name, tz?, availability, holidays, maintenance)
                .with_public_holidays(public, not_holidays),
        )
    }

    /// `mon-fri: "09:00-17:00"`, a day or range to one window or a list.
    fn weekly(&mut self, o: &Origin, days: &BTreeMap<String, OneOrMany>) -> WeeklyWindows {
        let mut w = WeeklyWindows::default();
        for (key, windows) in days {
            let ko = o.child(key);
            let Some(list) = parse_days(key) else {
                self.raise(&ko, Problem::NotADayRange(key.clone()));
                continue;
            };
            for text in windows.items() {
                match DayWindow::parse(text) {
                    Ok(win) => list.iter().for_each(|d| w.add(*d, win)),
                    Err(e) => self.raise(&ko, Problem::Verbatim(e.to_string())),
                }
            }
        }
        w
    }

    /// A helpdesk's raw priorities, states and categories in canonical terms.
    pub(super) fn value_map(&mut self, name: &str, o: &Origin, raw: &RawValueMap) -> ValueMap {
        let mut vm = ValueMap {
            name: name.to_owned(),
            ..ValueMap::default()
        };
        for (rawp, p) in &raw.priority {
            let a = at(&o.child("priority"), rawp, p);
            match Priority::new(a.value) {
                Some(pr) => {
                    vm.priority.insert(rawp.clone(), pr);
                }
                None => self.raise(&a.origin, Problem::PriorityOutOfRange(a.value)),
            }
        }
        for (raws, s) in &raw.state {
            let a = at(&o.child("state"), raws, s);
            match ClockState::parse(&a.value) {
                Some(st) => {
                    vm.state.insert(raws.clone(), st);
                }
                None => self.raise(&a.origin, Problem::NotAClockState(a.value.clone())),
            }
        }
        vm.category = raw.category.clone().into_iter().collect();
        vm
    }
}

/// `mon`, `mon-fri`, `sat,sun`.
fn parse_days(key: &str) -> Option<Vec<Weekday>> {
    let day = |s: &str| -> Option<Weekday> {
        Some(match s.trim() {
            "mon" => Weekday::Mon,
            "tue" => Weekday::Tue,
            "wed" => Weekday::Wed,
            "thu" => Weekday::Thu,
            "fri" => Weekday::Fri,
            "sat" => Weekday::Sat,
            "sun" => Weekday::Sun,
            _ => return None,
        })
    };
    let mut out = Vec::new();
    for part in key.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut d = a;
                loop {
                    out.push(d);
                    if d == b {
                        break;
                    }
                    d = d.succ();
                }
            }
            None => out.push(day(part)?),
        }
    }
    Some(out)
}
