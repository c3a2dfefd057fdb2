//! Money and currencies.
//!
//! Amounts stay exact (`rust_decimal`) through every computation; only an
//! invoice line is rounded, once, half away from zero to cents (rule 5 of
//! `contracts.md`). Floats never touch money.

use std::fmt;
use std::ops::{Add, AddAssign, Mul, Neg, Sub};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Serialize, Serializer};

/// An exact amount of money in the contract's currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    pub fn new(amount: Decimal) -> Self {
        Money(amount)
    }

    pub fn amount(self) -> Decimal {
        self.0
    }

    /// Rounded half away from zero to cents: what an invoice line shows.
    pub fn to_cents(self) -> Money {
        Money(
            self.0
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero),
        )
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// What `minutes` cost at `self` per hour, exact (rule 5: minutes × rate / 60,
    /// multiplied before dividing so that a half cent stays a half cent).
    pub fn for_minutes(self, minutes: crate::minutes::Minutes) -> Money {
        Money(self.0 * minutes.value() / Decimal::from(60))
    }

    /// `self × percent / 100`, exact.
    pub fn percent(self, percent: Decimal) -> Money {
        Money(self.0 * percent / Decimal::ONE_HUNDRED)
    }
}

impl fmt::Display for Money {
    /// Always two decimals, as the bill document requires.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut cents = self.to_cents().0;
        cents.rescale(2);
        write!(f, "{cents}")
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for Money {
    type Err = rust_decimal::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::from_str_exact(s.trim()).map(Money)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 += rhs.0;
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl Mul<Decimal> for Money {
    type Output = Money;
    fn mul(self, rhs: Decimal) -> Money {
        Money(self.0 * rhs)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a currency code: expected three upper-case letters such as EUR, SEK or PLN")]
pub struct CurrencyError(pub String);

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() == 3 && b.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency([b[0], b[1], b[2]]))
        } else {
            Err(CurrencyError(s.to_owned()))
        }
    }
}

impl Currency {
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl Currency {
    /// Decimals an amount in this currency may have on an invoice: the ISO
    /// 4217 minor unit (0 for ISK, JPY, KRW…), at most 2 because the bill
    /// document shows cents.
    pub fn decimals(&self) -> u32 {
        const NONE: [&str; 16] = [
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
            "VND", "VUV", "XAF", "XOF",
        ];
        if NONE.contains(&self.as_str()) { 0 } else { 2 }
    }

    /// `amount` written with no more decimals than [`Currency::decimals`]
    /// (trailing zeros do not count: `"350.00"` is fine in ISK).
    pub fn fits(&self, amount: Money) -> bool {
        amount.0.normalize().scale() <= self.decimals()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn rounds_half_away_from_zero_to_cents() {
        assert_eq!(Money::new(dec!(0.125)).to_string(), "0.13");
        assert_eq!(Money::new(dec!(-0.125)).to_string(), "-0.13");
        assert_eq!(Money::new(dec!(0.124)).to_string(), "0.12");
        assert_eq!(Money::new(dec!(350)).to_string(), "350.00");
    }

    #[test]
    fn parses_quoted_decimals_exactly() {
        assert_eq!("125.50".parse::<Money>().unwrap().amount(), dec!(125.50));
        assert!("12x".parse::<Money>().is_err());
    }

    #[test]
    fn amounts_fit_the_currency_decimals() {
        let sek: Currency = "SEK".parse().unwrap();
        let isk: Currency = "ISK".parse().unwrap();
        assert!(sek.fits("950.50".parse().unwrap()));
        assert!(sek.fits("950.500".parse().unwrap()));
        assert!(!sek.fits("950.505".parse().unwrap()));
        assert!(isk.fits("950.00".parse().unwrap()));
        assert!(!isk.fits("950.5".parse().unwrap()));
    }

    #[test]
    fn currency_codes_are_three_capitals() {
        assert_eq!("EUR".parse::<Currency>().unwrap().as_str(), "EUR");
        assert!("eur".parse::<Currency>().is_err());
        assert!("EURO".parse::<Currency>().is_err());
    }
}
