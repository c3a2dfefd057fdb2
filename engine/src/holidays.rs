//! Public holidays by country (and German state), computed for any year:
//! fixed dates, days counted from Easter, and the moving days (Swedish and
//! Finnish Midsummer and All Saints', the German Day of Repentance, Latvian
//! days moved off a weekend).
//!
//! A holiday here is a day the offices of that country are closed: the
//! public holidays of each country's law, plus the eves its law or
//! collective agreements treat as days off (Midsummer, Christmas and New
//! Year's Eve in Sweden; Midsummer and Christmas Eve in Finland; Christmas
//! Eve in Poland from 2025). A contract adds or removes days on top.

use std::fmt;

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// A country whose public holidays are built in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Country {
    De,
    Dk,
    Ee,
    Fi,
    Lt,
    Lv,
    No,
    Pl,
    Se,
}

impl Country {
    pub const ALL: [Country; 9] = [
        Country::De,
        Country::Dk,
        Country::Ee,
        Country::Fi,
        Country::Lt,
        Country::Lv,
        Country::No,
        Country::Pl,
        Country::Se,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Country::De => "DE",
            Country::Dk => "DK",
            Country::Ee => "EE",
            Country::Fi => "FI",
            Country::Lt => "LT",
            Country::Lv => "LV",
            Country::No => "NO",
            Country::Pl => "PL",
            Country::Se => "SE",
        }
    }
}

/// The German states (ISO 3166-2:DE), whose holidays differ.
pub const DE_STATES: [&str; 16] = [
    "BB", "BE", "BW", "BY", "HB", "HE", "HH", "MV", "NI", "NW", "RP", "SH", "SL", "SN", "ST", "TH",
];

/// The holidays of a country, or of one region of it: `SE`, `DE-BY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicHolidays {
    pub country: Country,
    /// A German state's code, such as `BY`.
    pub region: Option<&'static str>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HolidaysError {
    #[error(
        "`{0}` is not a country with built-in holidays: use one of DE, DK, EE, FI, LT, LV, NO, PL, SE (a German state as DE-BY)"
    )]
    Country(String),
    #[error("`{0}` is not a region with its own holidays: {1}")]
    Region(String, String),
}

impl std::str::FromStr for PublicHolidays {
    type Err = HolidaysError;
    /// `SE`, `se`, `DE-BY`, `DE BY`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let up = s.trim().to_ascii_uppercase();
        let (c, r) = match up.split_once(['-', ' ', '_']) {
            Some((c, r)) => (c.to_owned(), Some(r.trim().to_owned())),
            None => (up.clone(), None),
        };
        let country = Country::ALL
            .into_iter()
            .find(|k| k.code() == c)
            .ok_or_else(|| HolidaysError::Country(s.to_owned()))?;
        let region = match r {
            None => None,
            Some(r) if country == Country::De => {
                Some(DE_STATES.into_iter().find(|st| *st == r).ok_or_else(|| {
                    HolidaysError::Region(
                        s.to_owned(),
                        format!("German states are DE-{}", DE_STATES.join(", DE-")),
                    )
                })?)
            }
            Some(_) => {
                return Err(HolidaysError::Region(
                    s.to_owned(),
                    format!(
                        "only Germany's states are built in; write `{}` and add the region's days to `holidays`",
                        country.code()
                    ),
                ));
            }
        };
        Ok(PublicHolidays { country, region })
    }
}

impl fmt::Display for PublicHolidays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.country.code())?;
        if let Some(r) = self.region {
            write!(f, "-{r}")?;
        }
        Ok(())
    }
}

/// Easter Sunday of `year` (Gregorian; the anonymous algorithm).
pub fn easter(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

/// The first `weekday` on or after `from`.
fn first_on_or_after(from: NaiveDate, weekday: Weekday) -> NaiveDate {
    let ahead = (7 + weekday.num_days_from_monday() - from.weekday().num_days_from_monday()) % 7;
    from + Days::new(u64::from(ahead))
}

/// A weekend day moved to the following Monday (Latvian law, § 2 (3)).
fn next_monday_if_weekend(d: NaiveDate) -> Option<NaiveDate> {
    match d.weekday() {
        Weekday::Sat => Some(d + Days::new(2)),
        Weekday::Sun => Some(d + Days::new(1)),
        _ => None,
    }
}

impl PublicHolidays {
    /// Every holiday of `year`, by date, with its English name.
    pub fn in_year(&self, year: i32) -> Vec<(NaiveDate, &'static str)> {
        let mut out: Vec<(NaiveDate, &'static str)> = Vec::new();
        let (Some(e), Some(_)) = (easter(year), NaiveDate::from_ymd_opt(year, 1, 1)) else {
            return out;
        };
        let fixed = |m: u32, d: u32| NaiveDate::from_ymd_opt(year, m, d).expect("valid date");
        let from_easter = |days: i64| e + chrono::Duration::days(days);
        let mut add = |d: NaiveDate, name: &'static str| out.push((d, name));
        let new_year = fixed(1, 1);
        let good_friday = from_easter(-2);
        let easter_monday = from_easter(1);
        let ascension = from_easter(39);
        let pentecost = from_easter(49);
        let whit_monday = from_easter(50);
        let corpus_christi = from_easter(60);
        let midsummer_eve = first_on_or_after(fixed(6, 19), Weekday::Fri);
        let midsummer_day = first_on_or_after(fixed(6, 20), Weekday::Sat);
        let all_saints_sat = first_on_or_after(fixed(10, 31), Weekday::Sat);
        match self.country {
            Country::Lv => {
                add(new_year, "New Year's Day");
                add(good_friday, "Good Friday");
                add(e, "Easter Sunday");
                add(easter_monday, "Easter Monday");
                add(fixed(5, 1), "Labour Day");
                add(fixed(5, 4), "Restoration of Independence Day");
                if let Some(m) = next_monday_if_weekend(fixed(5, 4)) {
                    add(m, "Restoration of Independence Day (moved)");
                }
                add(first_on_or_after(fixed(5, 8), Weekday::Sun), "Mother's Day");
                add(pentecost, "Whit Sunday");
                add(fixed(6, 23), "Midsummer Eve (Līgo)");
                add(fixed(6, 24), "Midsummer Day (Jāņi)");
                add(fixed(11, 18), "Proclamation Day");
                if let Some(m) = next_monday_if_weekend(fixed(11, 18)) {
                    add(m, "Proclamation Day (moved)");
                }
                add(fixed(12, 24), "Christmas Eve");
                add(fixed(12, 25), "Christmas Day");
                add(fixed(12, 26), "Second Day of Christmas");
                add(fixed(12, 31), "New Year's Eve");
            }
            Country::Lt => {
                add(new_year, "New Year's Day");
                add(fixed(2, 16), "Restoration of the State Day");
                add(fixed(3, 11), "Restoration of Independence Day");
                add(e, "Easter Sunday");
                add(easter_monday, "Easter Monday");
                add(fixed(5, 1), "Labour Day");
                add(first_on_or_after(fixed(5, 1), Weekday::Sun), "Mother's Day");
                add(first_on_or_after(fixed(6, 1), Weekday::Sun), "Father's Day");
                add(fixed(6, 24), "St John's Day");
                add(fixed(7, 6), "Statehood Day");
                add(fixed(8, 15), "Assumption Day");
                add(fixed(11, 1), "All Saints' Day");
                add(fixed(11, 2), "All Souls' Day");
                add(fixed(12, 24), "Christmas Eve");
                add(fixed(12, 25), "Christmas Day");
                add(fixed(12, 26), "Second Day of Christmas");
            }
            Country::Ee => {
                add(new_year, "New Year's Day");
                add(fixed(2, 24), "Independence Day");
                add(good_friday, "Good Friday");
                add(e, "Easter Sunday");
                add(fixed(5, 1), "Spring Day");
                add(pentecost, "Whit Sunday");
                add(fixed(6, 23), "Victory Day");
                add(fixed(6, 24), "Midsummer Day");
                add(fixed(8, 20), "Day of Restoration of Independence");
                add(fixed(12, 24), "Christmas Eve");
                add(fixed(12, 25), "Christmas Day");
                add(fixed(12, 26), "Boxing Day");
            }
            Country::Pl => {
                add(new_year, "New Year's Day");
                add(fixed(1, 6), "Epiphany");
                add(e, "Easter Sunday");
                add(easter_monday, "Easter Monday");
                add(fixed(5, 1), "Labour Day");
                add(fixed(5, 3), "Constitution Day");
                add(pentecost, "Whit Sunday");
                add(corpus_christi, "Corpus Christi");
                add(fixed(8, 15), "Assumption Day");
                add(fixed(11, 1), "All Saints' Day");
                add(fixed(11, 11), "Independence Day");
                if year >= 2025 {
                    add(fixed(12, 24), "Christmas Eve");
                }
                add(fixed(12, 25), "Christmas Day");
                add(fixed(12, 26), "Second Day of Christmas");
            }
            // Sweden and Finland keep the same church year; each adds its own days.
            Country::Se | Country::Fi => {
                let sweden = self.country == Country::Se;
                add(new_year, "New Year's Day");
                add(fixed(1, 6), "Epiphany");
                add(good_friday, "Good Friday");
                add(e, "Easter Sunday");
                add(easter_monday, "Easter Monday");
                add(fixed(5, 1), "May Day");
                add(ascension, "Ascension Day");
                add(pentecost, "Whit Sunday");
                if sweden {
                    add(fixed(6, 6), "National Day");
                }
                add(midsummer_eve, "Midsummer Eve");
                add(midsummer_day, "Midsummer Day");
                add(all_saints_sat, "All Saints' Day");
                if !sweden {
                    add(fixed(12, 6), "Independence Day");
                }
                add(fixed(12, 24), "Christmas Eve");
                add(fixed(12, 25), "Christmas Day");
                if sweden {
                    add(fixed(12, 26), "Boxing Day");
                    add(fixed(12, 31), "New Year's Eve");
                } else {
                    add(fixed(12, 26), "St Stephen's Day");
                }
            }
            Country::Dk => {
                add(new_year, "New Year's Day");
                add(from_easter(-3), "Maundy Thursday");
                add(good_friday, "Good Friday");
                add(e, "Easter Sunday");
                add(easter_monday, "Easter Monday");
                // Store Bededag was abolished from 2024.
                if year <= 2023 {
                    add(from_easter(26), "General Prayer Day");
                }
                add(ascension, "Ascension Day");
                add(pentecost, "Whit Sunday");
                add(whit_monday, "Whit Monday");
                add(fixed(12, 25), "Christmas Day");
                add(fixed(12, 26), "Second Day of Christmas");
            }
            Country::No => {
                add(new_year, "New Year's Day");
                add(from_easter(-3), "Maundy Thursday");
                add(good_friday, "Good Friday");
                add(e, "Easter Sunday");
                add(easter_monday, "Easter Monday");
                add(fixed(5, 1), "Labour Day");
                add(fixed(5, 17), "Constitution Day");
                add(ascension, "Ascension Day");
                add(pentecost, "Whit Sunday");
                add(whit_monday, "Whit Monday");
                add(fixed(12, 25), "Christmas Day");
                add(fixed(12, 26), "Second Day of Christmas");
            }
            Country::De => {
                let r = self.region.unwrap_or("");
                let in_ = |states: &[&str]| states.contains(&r);
                add(new_year, "New Year's Day");
                if in_(&["BW", "BY", "ST"]) {
                    add(fixed(1, 6), "Epiphany");
                }
                if (r == "BE" && year >= 2019) || (r == "MV" && year >= 2023) {
                    add(fixed(3, 8), "International Women's Day");
                }
                add(good_friday, "Good Friday");
                if r == "BB" {
                    add(e, "Easter Sunday");
                }
                add(easter_monday, "Easter Monday");
                add(fixed(5, 1), "Labour Day");
                add(ascension, "Ascension Day");
                if r == "BB" {
                    add(pentecost, "Whit Sunday");
                }
                add(whit_monday, "Whit Monday");
                if in_(&["BW", "BY", "HE", "NW", "RP", "SL"]) {
                    add(corpus_christi, "Corpus Christi");
                }
                if r == "SL" {
                    add(fixed(8, 15), "Assumption Day");
                }
                if r == "TH" && year >= 2019 {
                    add(fixed(9, 20), "World Children's Day");
                }
                add(fixed(10, 3), "Day of German Unity");
                let reformation = in_(&["BB", "MV", "SN", "ST", "TH"])
                    || (in_(&["HB", "HH", "NI", "SH"]) && year >= 2018)
                    || year == 2017;
                if reformation {
                    add(fixed(10, 31), "Reformation Day");
                }
                if in_(&["BW", "BY", "NW", "RP", "SL"]) {
                    add(fixed(11, 1), "All Saints' Day");
                }
                if r == "SN" {
                    add(
                        first_on_or_after(fixed(11, 16), Weekday::Wed),
                        "Day of Repentance and Prayer",
                    );
                }
                add(fixed(12, 25), "Christmas Day");
                add(fixed(12, 26), "Second Day of Christmas");
            }
        }
        out.sort();
        out.dedup_by_key(|(d, _)| *d);
        out
    }

    pub fn dates(&self, year: i32) -> impl Iterator<Item = NaiveDate> {
        self.in_year(year).into_iter().map(|(d, _)| d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dates as `MM-DD` for one year; the expected lists below are the
    /// countries' official lists for that year, written out by hand.
    fn of(code: &str, year: i32) -> Vec<String> {
        code.parse::<PublicHolidays>()
            .unwrap()
            .dates(year)
            .map(|d| d.format("%m-%d").to_string())
            .collect()
    }

    #[track_caller]
    fn check(code: &str, year: i32, expected: &[&str]) {
        assert_eq!(of(code, year), expected, "{code} {year}");
    }

    #[test]
    fn easter_sundays() {
        for (y, m, d) in [
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
        ] {
            assert_eq!(easter(y), NaiveDate::from_ymd_opt(y, m, d), "{y}");
        }
    }

    #[test]
    fn sweden() {
        // Midsummer Eve the Friday of 19–25 June, Midsummer Day the Saturday
        // after; All Saints' Day the Saturday of 31 October – 6 November.
        check(
            "SE",
            2026,
            &[
                "01-01", "01-06", "04-03", "04-05", "04-06", "05-01", "05-14", "05-24", "06-06",
                "06-19", "06-20", "10-31", "12-24", "12-25", "12-26", "12-31",
            ],
        );
        check(
            "SE",
            2027,
            &[
                "01-01", "01-06", "03-26", "03-28", "03-29", "05-01", "05-06", "05-16", "06-06",
                "06-25", "06-26", "11-06", "12-24", "12-25", "12-26", "12-31",
            ],
        );
    }

    #[test]
    fn finland() {
        check(
            "FI",
            2026,
            &[
                "01-01", "01-06", "04-03", "04-05", "04-06", "05-01", "05-14", "05-24", "06-19",
                "06-20", "10-31", "12-06", "12-24", "12-25", "12-26",
            ],
        );
        check(
            "FI",
            2027,
            &[
                "01-01", "01-06", "03-26", "03-28", "03-29", "05-01", "05-06", "05-16", "06-25",
                "06-26", "11-06", "12-06", "12-24", "12-25", "12-26",
            ],
        );
    }

    #[test]
    fn norway_and_denmark_keep_maundy_thursday_and_whit_monday() {
        check(
            "NO",
            2026,
            &[
                "01-01", "04-02", "04-03", "04-05", "04-06", "05-01", "05-14", "05-17", "05-24",
                "05-25", "12-25", "12-26",
            ],
        );
        check(
            "NO",
            2027,
            &[
                "01-01", "03-25", "03-26", "03-28", "03-29", "05-01", "05-06", "05-16", "05-17",
                "12-25", "12-26",
            ],
        );
        // Denmark: no General Prayer Day since 2024.
        check(
            "DK",
            2026,
            &[
                "01-01", "04-02", "04-03", "04-05", "04-06", "05-14", "05-24", "05-25", "12-25",
                "12-26",
            ],
        );
        check(
            "DK",
            2027,
            &[
                "01-01", "03-25", "03-26", "03-28", "03-29", "05-06", "05-16", "05-17", "12-25",
                "12-26",
            ],
        );
        assert!(
            of("DK", 2023).contains(&"05-05".to_owned()),
            "Store Bededag 2023"
        );
    }

    #[test]
    fn latvia_moves_a_weekend_independence_day_to_monday() {
        check(
            "LV",
            2026,
            &[
                "01-01", "04-03", "04-05", "04-06", "05-01", "05-04", "05-10", "05-24", "06-23",
                "06-24", "11-18", "12-24", "12-25", "12-26", "12-31",
            ],
        );
        check(
            "LV",
            2027,
            &[
                "01-01", "03-26", "03-28", "03-29", "05-01", "05-04", "05-09", "05-16", "06-23",
                "06-24", "11-18", "12-24", "12-25", "12-26", "12-31",
            ],
        );
        // 2028: 18 November is a Saturday, so Monday 20 November is off too.
        assert!(of("LV", 2028).contains(&"11-20".to_owned()));
        // 2025: 4 May was a Sunday, so Monday 5 May was off.
        assert!(of("LV", 2025).contains(&"05-05".to_owned()));
    }

    #[test]
    fn lithuania() {
        check(
            "LT",
            2026,
            &[
                "01-01", "02-16", "03-11", "04-05", "04-06", "05-01", "05-03", "06-07", "06-24",
                "07-06", "08-15", "11-01", "11-02", "12-24", "12-25", "12-26",
            ],
        );
        check(
            "LT",
            2027,
            &[
                "01-01", "02-16", "03-11", "03-28", "03-29", "05-01", "05-02", "06-06", "06-24",
                "07-06", "08-15", "11-01", "11-02", "12-24", "12-25", "12-26",
            ],
        );
    }

    #[test]
    fn estonia() {
        check(
            "EE",
            2026,
            &[
                "01-01", "02-24", "04-03", "04-05", "05-01", "05-24", "06-23", "06-24", "08-20",
                "12-24", "12-25", "12-26",
            ],
        );
        check(
            "EE",
            2027,
            &[
                "01-01", "02-24", "03-26", "03-28", "05-01", "05-16", "06-23", "06-24", "08-20",
                "12-24", "12-25", "12-26",
            ],
        );
    }

    #[test]
    fn poland_has_christmas_eve_from_2025() {
        check(
            "PL",
            2026,
            &[
                "01-01", "01-06", "04-05", "04-06", "05-01", "05-03", "05-24", "06-04", "08-15",
                "11-01", "11-11", "12-24", "12-25", "12-26",
            ],
        );
        check(
            "PL",
            2027,
            &[
                "01-01", "01-06", "03-28", "03-29", "05-01", "05-03", "05-16", "05-27", "08-15",
                "11-01", "11-11", "12-24", "12-25", "12-26",
            ],
        );
        assert!(!of("PL", 2024).contains(&"12-24".to_owned()));
    }

    #[test]
    fn germany_national_and_by_state() {
        check(
            "DE",
            2026,
            &[
                "01-01", "04-03", "04-06", "05-01", "05-14", "05-25", "10-03", "12-25", "12-26",
            ],
        );
        check(
            "DE-BY",
            2026,
            &[
                "01-01", "01-06", "04-03", "04-06", "05-01", "05-14", "05-25", "06-04", "10-03",
                "11-01", "12-25", "12-26",
            ],
        );
        check(
            "DE-BY",
            2027,
            &[
                "01-01", "01-06", "03-26", "03-29", "05-01", "05-06", "05-17", "05-27", "10-03",
                "11-01", "12-25", "12-26",
            ],
        );
        // Saxony: Reformation Day and the Wednesday before 23 November.
        let sn26 = of("DE-SN", 2026);
        assert!(sn26.contains(&"10-31".to_owned()) && sn26.contains(&"11-18".to_owned()));
        assert!(of("DE-SN", 2027).contains(&"11-17".to_owned()));
        assert!(of("DE-BE", 2026).contains(&"03-08".to_owned()));
        assert!(of("DE-TH", 2027).contains(&"09-20".to_owned()));
        assert!(!of("DE", 2026).contains(&"10-31".to_owned()));
    }

    #[test]
    fn codes_parse_with_helpful_errors() {
        assert_eq!("se".parse::<PublicHolidays>().unwrap().to_string(), "SE");
        assert_eq!(
            "DE-BY".parse::<PublicHolidays>().unwrap().to_string(),
            "DE-BY"
        );
        assert!(matches!(
            "XX".parse::<PublicHolidays>(),
            Err(HolidaysError::Country(_))
        ));
        assert!(matches!(
            "DE-XX".parse::<PublicHolidays>(),
            Err(HolidaysError::Region(..))
        ));
        assert!(matches!(
            "SE-AB".parse::<PublicHolidays>(),
            Err(HolidaysError::Region(..))
        ));
    }
}
