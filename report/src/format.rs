//! Local number, money, duration and date formats, one rule per language.
//!
//! Separators: en `1,234.50`; lv, pl, sv `1 234,50` (no-break space); da
//! `1.234,50`. Money puts the symbol where the language does: en `€1,234.50`,
//! lv `1 234,50 €`, sv `1 234,50 kr`, da `1.234,50 kr.`, pl `1 234,50 zł`.

use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;
use engine::contract::Language;
use rust_decimal::{Decimal, RoundingStrategy};

/// No-break space: keeps `1 234,50 €` on one line.
pub const NBSP: char = '\u{a0}';

fn separators(lang: Language) -> (char, char) {
    match lang {
        Language::En => (',', '.'),
        Language::Lv | Language::Pl | Language::Sv => (NBSP, ','),
        Language::Da => ('.', ','),
    }
}

/// `value` with `decimals` places (half away from zero) and local separators.
pub fn number(value: Decimal, decimals: u32, lang: Language) -> String {
    let (group, point) = separators(lang);
    let v = value.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero);
    let text = format!("{:.*}", decimals as usize, v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut out = String::new();
    if v.is_sign_negative() && !v.is_zero() {
        out.push('-');
    }
    let digits: Vec<char> = int.chars().collect();
    // Grouped from four digits in every language so that columns line up
    // (CLDR would leave four-digit Polish numbers ungrouped).
    for (i, d) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(group);
        }
        out.push(*d);
    }
    if !frac.is_empty() {
        out.push(point);
        out.push_str(frac);
    }
    out
}

/// An amount of `currency` (ISO code) as the language writes it.
pub fn money(amount: Decimal, currency: &str, lang: Language) -> String {
    let n = number(amount, 2, lang);
    let symbol = match (currency, lang) {
        ("EUR", _) => "€",
        ("SEK", Language::Sv) => "kr",
        ("DKK", Language::Da) => "kr.",
        ("PLN", Language::Pl) => "zł",
        ("USD", Language::En) => "$",
        ("GBP", Language::En) => "£",
        (code, _) => code,
    };
    match lang {
        Language::En if symbol.chars().count() == 1 => format!("{symbol}{n}"),
        Language::En => format!("{symbol}{NBSP}{n}"),
        _ => format!("{n}{NBSP}{symbol}"),
    }
}

/// Minutes as hours and minutes, `2:05`; fractions of a minute are kept.
pub fn duration(minutes: Decimal) -> String {
    let sign = if minutes.is_sign_negative() && !minutes.is_zero() {
        "-"
    } else {
        ""
    };
    let m = minutes.abs();
    let hours = (m / Decimal::from(60)).trunc();
    let rest = (m - hours * Decimal::from(60)).normalize();
    let rest = if rest < Decimal::TEN {
        format!("0{rest}")
    } else {
        rest.to_string()
    };
    format!("{sign}{hours}:{rest}")
}

/// Hours with one decimal, for chart labels: `2.5` / `2,5`.
pub fn hours(minutes: Decimal, lang: Language) -> String {
    number(minutes / Decimal::from(60), 1, lang)
}

/// A day as the language writes it.
pub fn date(at: DateTime<Tz>, lang: Language, months: &[String]) -> String {
    let (d, m, y) = (at.day(), at.month(), at.year());
    match lang {
        Language::En => format!(
            "{d} {} {y}",
            months
                .get(m as usize - 1)
                .map_or(String::new(), |s| s.chars().take(3).collect())
        ),
        Language::Lv => format!("{d:02}.{m:02}.{y}."),
        Language::Pl | Language::Da => format!("{d:02}.{m:02}.{y}"),
        Language::Sv => format!("{y}-{m:02}-{d:02}"),
    }
}

/// A day and a 24-hour clock time.
pub fn date_time(at: DateTime<Tz>, lang: Language, months: &[String]) -> String {
    format!(
        "{} {:02}:{:02}",
        date(at, lang, months),
        at.hour(),
        at.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn money_is_written_the_local_way() {
        let a = d("1234.5");
        assert_eq!(money(a, "EUR", Language::Lv), "1\u{a0}234,50\u{a0}€");
        assert_eq!(money(a, "SEK", Language::Sv), "1\u{a0}234,50\u{a0}kr");
        assert_eq!(money(a, "DKK", Language::Da), "1.234,50\u{a0}kr.");
        assert_eq!(money(a, "PLN", Language::Pl), "1\u{a0}234,50\u{a0}zł");
        assert_eq!(money(a, "EUR", Language::En), "€1,234.50");
        assert_eq!(money(a, "SEK", Language::En), "SEK\u{a0}1,234.50");
        assert_eq!(money(d("-0.5"), "EUR", Language::En), "€-0.50");
        assert_eq!(
            money(d("1234567"), "DKK", Language::Da),
            "1.234.567,00\u{a0}kr."
        );
        assert_eq!(money(d("999"), "EUR", Language::Lv), "999,00\u{a0}€");
    }

    #[test]
    fn durations_are_hours_and_minutes() {
        assert_eq!(duration(d("125")), "2:05");
        assert_eq!(duration(d("60")), "1:00");
        assert_eq!(duration(d("7.5")), "0:07.5");
        assert_eq!(duration(d("-90")), "-1:30");
    }

    #[test]
    fn dates_follow_the_language() {
        let tz: Tz = "Europe/Riga".parse().unwrap();
        let at = chrono::DateTime::parse_from_rfc3339("2026-10-05T23:30:00Z")
            .unwrap()
            .with_timezone(&tz);
        let months: Vec<String> = [
            "January", "February", "March", "April", "May", "June", "July",
        ]
        .iter()
        .chain(["August", "September", "October", "November", "December"].iter())
        .map(|s| s.to_string())
        .collect();
        assert_eq!(date(at, Language::Lv, &months), "06.10.2026.");
        assert_eq!(date(at, Language::Sv, &months), "2026-10-06");
        assert_eq!(date_time(at, Language::En, &months), "6 Oct 2026 02:30");
    }
}
