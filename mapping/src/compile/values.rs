//! The scalar values a mapping writes (dates, amounts, durations, time
//! zones, percentages), each parsed and bounded, or refused with a
//! [`Problem`]. Pure functions, shared by `resolve` (start and change dates)
//! and `build` (everything else).

use chrono::NaiveDate;
use chrono_tz::Tz;
use engine::minutes::Minutes;
use engine::money::{Currency, Money};
use rust_decimal::Decimal;

use crate::diag::{Problem, nearest};
use crate::duration::parse_duration;

/// The largest amount of money a mapping may write (fees, rates, prices):
/// beyond it, sums over a year of work would leave exact decimal range.
pub(crate) const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// The longest stretch of work time a mapping may write (bank sizes,
/// rounding steps, punches, allowances): 100 years.
pub(crate) const MAX_TIME_SECONDS: i64 = 100 * 365 * 86_400;
/// The longest SLA target: a year of clock time.
pub(crate) const MAX_TARGET_SECONDS: i64 = 365 * 86_400;
/// Card validity and idle forfeit, in years.
pub(crate) const MAX_YEARS: u32 = 100;

/// `YYYY-MM-DD`.
pub(crate) fn date(text: &str) -> Result<NaiveDate, Problem> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| Problem::NotADate(text.to_owned()))
}

/// An IANA zone; a near miss, or else zones of the same region, are suggested.
pub(crate) fn time_zone(text: &str) -> Result<Tz, Problem> {
    text.parse::<Tz>().map_err(|_| {
        let zones = || chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
        let mut near = nearest(text, zones(), 3);
        if near.is_empty() {
            // Not a near miss: list zones of the same region instead.
            let region = text.split('/').next().unwrap_or_default().to_lowercase();
            near = zones()
                .filter(|n| {
                    !region.is_empty() && n.to_lowercase().starts_with(&format!("{region}/"))
                })
                .take(5)
                .collect();
        }
        Problem::UnknownTimeZone {
            value: text.to_owned(),
            near: near.into_iter().map(str::to_owned).collect(),
        }
    })
}

/// A non-negative amount no larger than [`MAX_AMOUNT`], with no more
/// decimals than `currency` shows (when the contract's currency is known).
pub(crate) fn money(text: &str, currency: Option<Currency>) -> Result<Money, Problem> {
    let m = text
        .parse::<Money>()
        .map_err(|_| Problem::NotAnAmount(text.to_owned()))?;
    if m.amount() > Decimal::from(MAX_AMOUNT) {
        return Err(Problem::AmountTooLarge {
            value: text.to_owned(),
            max: MAX_AMOUNT,
        });
    }
    if m.amount() < Decimal::ZERO {
        return Err(Problem::NegativeAmount(text.to_owned()));
    }
    match currency {
        // A ledger recomputes quantity × unit price: an amount it cannot
        // hold would make its total differ from ours.
        Some(cur) if !cur.fits(m) => {
            let d = cur.decimals();
            let shown = |s| {
                let mut x = m.amount().round_dp_with_strategy(d, s);
                x.rescale(d);
                x.to_string()
            };
            Err(Problem::TooManyDecimals {
                value: text.to_owned(),
                currency: cur.to_string(),
                decimals: d,
                down: shown(rust_decimal::RoundingStrategy::ToZero),
                up: shown(rust_decimal::RoundingStrategy::AwayFromZero),
            })
        }
        _ => Ok(m),
    }
}

/// `10`, `"10%"`: from 0 to 100.
pub(crate) fn percent(text: &str) -> Result<Decimal, Problem> {
    match Decimal::from_str_exact(text.trim().trim_end_matches('%').trim()) {
        Ok(d) if (Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&d) => Ok(d),
        _ => Err(Problem::NotAPercentage(text.to_owned())),
    }
}

/// Work time (`90m`, `1h30m`), at most [`MAX_TIME_SECONDS`].
pub(crate) fn minutes(text: &str) -> Result<Minutes, Problem> {
    let secs = seconds(text)?;
    if secs > MAX_TIME_SECONDS {
        return Err(Problem::DurationTooLong {
            value: text.to_owned(),
            max_hours: MAX_TIME_SECONDS / 3_600,
        });
    }
    // `parse_duration` refuses negative durations, and 100 years of
    // minutes fit: this cannot fail, but a refusal would only drop the value.
    Minutes::new(Decimal::from(secs) / Decimal::from(60))
        .map_err(|e| Problem::Verbatim(e.to_string()))
}

/// A duration in seconds, unbounded.
pub(crate) fn seconds(text: &str) -> Result<i64, Problem> {
    parse_duration(text).map_err(Problem::Verbatim)
}

/// An SLA target: clock time up to [`MAX_TARGET_SECONDS`].
pub(crate) fn target(text: &str) -> Result<i64, Problem> {
    let secs = seconds(text)?;
    if secs > MAX_TARGET_SECONDS {
        return Err(Problem::TargetTooLong {
            value: text.to_owned(),
            max_days: MAX_TARGET_SECONDS / 86_400,
        });
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_of_60_is_sixty_in_the_currency_and_too_many_decimals_are_refused() {
        let eur: Currency = "EUR".parse().expect("EUR");
        let m = money("60.00", Some(eur)).expect("valid");
        assert_eq!(m.amount(), Decimal::new(60, 0));
        assert_eq!(
            money("60.005", Some(eur)).unwrap_err().to_string(),
            "`60.005` has more decimals than EUR allows (2): an invoice line shows 2 decimals, so write \"60.00\" or \"60.01\""
        );
        // Without a known currency, only the amount itself is checked.
        assert!(money("60.005", None).is_ok());
    }

    #[test]
    fn amounts_are_bounded_and_never_negative() {
        assert!(matches!(money("-1", None), Err(Problem::NegativeAmount(_))));
        assert!(matches!(
            money("1000000000001", None),
            Err(Problem::AmountTooLarge { .. })
        ));
        assert!(matches!(money("a lot", None), Err(Problem::NotAnAmount(_))));
    }

    #[test]
    fn durations_become_minutes_and_are_bounded() {
        assert_eq!(minutes("1h30m"), Ok(Minutes::whole(90)));
        assert!(matches!(
            minutes("1000000h"),
            Err(Problem::DurationTooLong { .. })
        ));
        assert!(matches!(target("400d"), Err(Problem::TargetTooLong { .. })));
        assert_eq!(target("8h"), Ok(8 * 3_600));
    }

    #[test]
    fn a_misspelt_time_zone_suggests_the_real_one() {
        assert_eq!(
            time_zone("Europe/Rgia").unwrap_err().to_string(),
            "unknown time zone `Europe/Rgia`: did you mean Europe/Riga? Write an IANA time zone name such as Europe/Riga, Europe/Stockholm or UTC"
        );
        assert_eq!(time_zone("UTC"), Ok(Tz::UTC));
    }

    #[test]
    fn dates_and_percentages() {
        assert_eq!(
            date(" 2026-01-31 "),
            NaiveDate::from_ymd_opt(2026, 1, 31).ok_or(Problem::NotADate(String::new()))
        );
        assert!(matches!(date("2026-02-30"), Err(Problem::NotADate(_))));
        assert_eq!(percent("10%"), Ok(Decimal::TEN));
        assert!(matches!(percent("101"), Err(Problem::NotAPercentage(_))));
    }
}
