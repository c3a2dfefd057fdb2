//! Durations of logged and billed work.
//!
//! Work entries may carry fractions of a minute (`37.5`), so minutes are exact
//! decimals, never floats, and never negative: a negative amount of work is
//! rejected where it is parsed.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Serialize, Serializer};

/// A non-negative number of minutes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minutes(Decimal);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("minutes must be zero or more, got {0}")]
pub struct NegativeMinutes(pub Decimal);

impl Minutes {
    pub const ZERO: Minutes = Minutes(Decimal::ZERO);

    pub fn new(value: Decimal) -> Result<Self, NegativeMinutes> {
        if value.is_sign_negative() && !value.is_zero() {
            Err(NegativeMinutes(value))
        } else {
            Ok(Minutes(value.normalize()))
        }
    }

    pub fn whole(value: u32) -> Self {
        Minutes(Decimal::from(value))
    }

    pub fn value(self) -> Decimal {
        self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// `self − other`, never below zero.
    pub fn saturating_sub(self, other: Minutes) -> Minutes {
        if other.0 >= self.0 {
            Minutes::ZERO
        } else {
            Minutes(self.0 - other.0)
        }
    }

    /// Rounded up to a multiple of `step` (no change when already a multiple).
    pub fn round_up_to(self, step: Minutes) -> Minutes {
        if step.is_zero() {
            return self;
        }
        let n = (self.0 / step.0).ceil();
        Minutes(n * step.0)
    }

    /// How many whole `unit`s are needed to cover `self` (ceil).
    pub fn units_of(self, unit: Minutes) -> u64 {
        if unit.is_zero() {
            return 0;
        }
        (self.0 / unit.0).ceil().to_u64().unwrap_or(u64::MAX)
    }

    pub fn times(self, n: u64) -> Minutes {
        Minutes(self.0 * Decimal::from(n))
    }

    pub fn hours(self) -> Decimal {
        self.0 / Decimal::from(60)
    }
}

impl Add for Minutes {
    type Output = Minutes;
    fn add(self, rhs: Minutes) -> Minutes {
        Minutes(self.0 + rhs.0)
    }
}

impl AddAssign for Minutes {
    fn add_assign(&mut self, rhs: Minutes) {
        self.0 += rhs.0;
    }
}

impl Sub for Minutes {
    type Output = Minutes;
    /// Callers subtract only what they drew from the same amount; saturates to
    /// stay a valid `Minutes` even so.
    fn sub(self, rhs: Minutes) -> Minutes {
        self.saturating_sub(rhs)
    }
}

impl std::iter::Sum for Minutes {
    fn sum<I: Iterator<Item = Minutes>>(iter: I) -> Minutes {
        iter.fold(Minutes::ZERO, Add::add)
    }
}

impl fmt::Display for Minutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.normalize())
    }
}

impl Serialize for Minutes {
    /// A JSON number: an integer when whole, else the shortest decimal.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0.normalize();
        if v.scale() == 0
            && let Some(i) = v.to_i64()
        {
            return s.serialize_i64(i);
        }
        s.serialize_f64(v.to_f64().unwrap_or(f64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn rejects_negative_minutes() {
        assert!(Minutes::new(dec!(-1)).is_err());
        assert!(Minutes::new(dec!(0)).is_ok());
        assert!(Minutes::new(dec!(-0)).is_ok());
    }

    #[test]
    fn rounds_up_to_step() {
        let q = Minutes::whole(15);
        assert_eq!(Minutes::whole(20).round_up_to(q), Minutes::whole(30));
        assert_eq!(Minutes::whole(30).round_up_to(q), Minutes::whole(30));
        assert_eq!(Minutes::ZERO.round_up_to(q), Minutes::ZERO);
        assert_eq!(
            Minutes::new(dec!(37.5)).unwrap().round_up_to(q),
            Minutes::whole(45)
        );
    }

    #[test]
    fn counts_started_units() {
        let h = Minutes::whole(60);
        assert_eq!(Minutes::whole(61).units_of(h), 2);
        assert_eq!(Minutes::whole(60).units_of(h), 1);
        assert_eq!(Minutes::ZERO.units_of(h), 0);
    }
}
