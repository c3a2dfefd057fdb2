//! Holidays from an iCalendar file: the all-day events (`DTSTART;VALUE=DATE`).

use std::collections::BTreeSet;

use chrono::NaiveDate;

/// Dates of all-day events; a multi-day event (`DTEND;VALUE=DATE`, exclusive) gives each day.
pub fn all_day_dates(text: &str) -> Result<BTreeSet<NaiveDate>, String> {
    let mut out = BTreeSet::new();
    let mut start: Option<NaiveDate> = None;
    let mut end: Option<NaiveDate> = None;
    let date = |v: &str, n: usize| {
        NaiveDate::parse_from_str(v.trim(), "%Y%m%d")
            .map_err(|_| format!("line {n}: `{v}` is not a date (YYYYMMDD)"))
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let key = name.split(';').next().unwrap_or_default();
        match key {
            "BEGIN" if value == "VEVENT" => {
                start = None;
                end = None;
            }
            "DTSTART" if name.contains("VALUE=DATE") && !name.contains("DATE-TIME") => {
                start = Some(date(value, i + 1)?)
            }
            "DTEND" if name.contains("VALUE=DATE") && !name.contains("DATE-TIME") => {
                end = Some(date(value, i + 1)?)
            }
            "END" if value == "VEVENT" => {
                if let Some(s) = start {
                    let last = end.and_then(|e| e.pred_opt()).unwrap_or(s).max(s);
                    let mut d = s;
                    while d <= last {
                        out.insert(d);
                        d = d.succ_opt().ok_or("date out of range")?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_all_day_events() {
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20261226\r\nSUMMARY:Christmas\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261231\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let d = all_day_dates(ics).unwrap();
        let want: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(want, ["2026-12-24", "2026-12-25", "2026-12-31"]);
    }
}
