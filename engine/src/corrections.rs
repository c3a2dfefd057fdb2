//! Corrections of closed periods: what a late change to a month already
//! invoiced comes to.
//!
//! A closed period's draft is never changed. When its tickets change
//! afterwards (work logged late, a category disputed), the period is billed
//! again with today's tickets, and what differs from everything already
//! billed for it (its own draft's lines and the corrections of it in later
//! drafts) becomes correction lines of the next draft, each naming the
//! period it corrects:
//!
//! ```text
//!  billed for 2026-10:  Support work  2.00 h × 40.00 =  80.00
//!  2026-10 billed now:  Support work  2.50 h × 40.00 = 100.00
//!  correction:          Correction to 2026-10: Support work  0.5 × 40.00 = 20.00
//! ```
//!
//! Billing the period again after that corrects nothing: the correction is
//! counted as billed for it ([`billed_for`]).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::draft::{DraftLine, LineRefs, decimal};
use crate::period::Month;

/// A closed period and the lines of its draft (none when it invoiced
/// nothing): what was billed in it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClosedDraft {
    pub period: Month,
    pub lines: Vec<DraftLine>,
}

/// An earlier period that correction lines fix, and by how much.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corrected {
    /// The period corrected, as the lines name it.
    pub period: String,
    /// The sum of the correction lines' amounts.
    pub amount: Decimal,
    /// How many correction lines fix it.
    pub lines: usize,
}

/// Everything billed so far for `period`: its own draft's lines and the
/// corrections of it in later drafts.
pub fn billed_for(closed: &[ClosedDraft], period: Month) -> Vec<DraftLine> {
    let name = period.to_string();
    let mut out = Vec::new();
    for c in closed {
        for l in &c.lines {
            let own = c.period == period && l.corrects.is_none();
            let corrects_it = l.corrects.as_deref() == Some(name.as_str());
            if own || corrects_it {
                out.push(l.clone());
            }
        }
    }
    out
}

/// The lines that bring what was billed for `period` to what it comes to
/// now. Lines match by kind, description and unit price; a changed quantity
/// gives one line with the difference.
pub fn correction_lines(period: Month, billed: &[DraftLine], now: &[DraftLine]) -> Vec<DraftLine> {
    type Key = (String, String, String);
    let prefix = correction_prefix(period);
    let mut sums: BTreeMap<Key, (Decimal, Decimal, Vec<String>)> = BTreeMap::new();
    // A correction of the period matches the line it corrected.
    let key = |l: &DraftLine| {
        let base = l
            .description
            .strip_prefix(&prefix)
            .unwrap_or(&l.description);
        (
            l.kind.clone(),
            base.to_owned(),
            decimal(&l.unit_price).normalize().to_string(),
        )
    };
    for (sign, lines) in [(Decimal::ONE, now), (Decimal::NEGATIVE_ONE, billed)] {
        for l in lines {
            let e = sums.entry(key(l)).or_default();
            e.0 += sign * l.quantity();
            e.1 += sign * l.amount();
            for t in &l.tickets {
                if !e.2.contains(t) {
                    e.2.push(t.clone());
                }
            }
        }
    }
    sums.into_iter()
        .filter(|(_, (q, a, _))| !q.is_zero() || !a.is_zero())
        .map(|((kind, description, unit_price), (q, a, mut tickets))| {
            tickets.sort();
            DraftLine {
                kind,
                description: format!("{prefix}{description}"),
                quantity: q.normalize().to_string(),
                unit_price,
                amount: format!("{:.2}", a.round_dp(2)),
                tickets,
                corrects: Some(period.to_string()),
                refs: LineRefs::default(),
            }
        })
        .collect()
}

/// What a correction line's description starts with.
fn correction_prefix(period: Month) -> String {
    format!("Correction to {period}: ")
}

/// Each earlier period that `corrections` fix, in order, with the sum of
/// its lines.
pub fn corrected_periods(corrections: &[DraftLine]) -> Vec<Corrected> {
    let mut by: BTreeMap<String, (Decimal, usize)> = BTreeMap::new();
    for l in corrections {
        if let Some(p) = &l.corrects {
            let e = by.entry(p.clone()).or_default();
            e.0 += l.amount();
            e.1 += 1;
        }
    }
    by.into_iter()
        .map(|(period, (amount, lines))| Corrected {
            period,
            amount,
            lines,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(description: &str, quantity: &str, price: &str, amount: &str) -> DraftLine {
        DraftLine {
            kind: "work".into(),
            description: description.into(),
            quantity: quantity.into(),
            unit_price: price.into(),
            amount: amount.into(),
            tickets: vec!["T-1".into()],
            corrects: None,
            refs: LineRefs::default(),
        }
    }

    fn oct() -> Month {
        "2026-10".parse().unwrap()
    }

    #[test]
    fn a_late_change_gives_the_difference_once_and_nothing_after() {
        let billed = vec![line("Support work", "2.00", "40.00", "80.00")];
        let now = vec![
            line("Support work", "2.50", "40.00", "100.00"),
            line("Travel", "1", "15.00", "15.00"),
        ];
        let fix = correction_lines(oct(), &billed, &now);
        assert_eq!(fix.len(), 2);
        assert_eq!(fix[0].description, "Correction to 2026-10: Support work");
        assert_eq!(
            (fix[0].quantity.as_str(), fix[0].amount.as_str()),
            ("0.5", "20.00")
        );
        assert_eq!(fix[1].amount, "15.00");
        assert!(fix.iter().all(|l| l.corrects.as_deref() == Some("2026-10")));
        // Once corrected, billing the same period again corrects nothing.
        let mut all = billed.clone();
        all.extend(fix);
        assert!(correction_lines(oct(), &all, &now).is_empty());
    }

    #[test]
    fn work_made_free_after_the_fact_is_credited() {
        let billed = vec![line("Support work", "1.00", "40.00", "40.00")];
        let fix = correction_lines(oct(), &billed, &[]);
        assert_eq!(
            (fix[0].quantity.as_str(), fix[0].amount.as_str()),
            ("-1", "-40.00")
        );
    }

    #[test]
    fn a_period_s_billed_lines_are_its_own_and_the_later_corrections_of_it() {
        let nov: Month = "2026-11".parse().unwrap();
        let mut fix = line(
            "Correction to 2026-10: Support work",
            "0.5",
            "40.00",
            "20.00",
        );
        fix.corrects = Some("2026-10".into());
        let mut other = fix.clone();
        other.corrects = Some("2026-09".into());
        let closed = [
            ClosedDraft {
                period: oct(),
                lines: vec![line("Support work", "2", "40.00", "80.00")],
            },
            ClosedDraft {
                period: nov,
                lines: vec![
                    line("Support work", "3", "40.00", "120.00"),
                    fix.clone(),
                    other,
                ],
            },
        ];
        let billed = billed_for(&closed, oct());
        assert_eq!(billed.len(), 2);
        assert_eq!(billed[1], fix);
        let corrected = corrected_periods(&closed[1].lines);
        assert_eq!(
            corrected
                .iter()
                .map(|c| (c.period.as_str(), c.amount.to_string(), c.lines))
                .collect::<Vec<_>>(),
            [
                ("2026-09", "20.00".into(), 1),
                ("2026-10", "20.00".into(), 1)
            ]
        );
    }

    /// Lines of a few kinds, descriptions and prices, with whole-cent amounts.
    fn lines() -> impl Strategy<Value = Vec<DraftLine>> {
        let one = (
            prop::sample::select(vec!["work", "call_out"]),
            prop::sample::select(vec!["Support work", "Travel", "Nights"]),
            prop::sample::select(vec!["40.00", "15.50", "0.00"]),
            -20i64..200,
            prop::sample::select(vec!["T-1", "T-2", "T-3"]),
        )
            .prop_map(|(kind, description, price, quarters, ticket)| {
                let quantity = Decimal::new(quarters * 25, 2);
                let amount = (quantity * decimal(price)).round_dp(2);
                DraftLine {
                    kind: kind.into(),
                    tickets: vec![ticket.into()],
                    ..line(
                        description,
                        &quantity.to_string(),
                        price,
                        &format!("{amount:.2}"),
                    )
                }
            });
        prop::collection::vec(one, 0..8)
    }

    /// `(quantity, amount)` of each (kind, description, price) in `lines`,
    /// corrections counted with the line they correct.
    fn totals(lines: &[DraftLine]) -> BTreeMap<(String, String, String), (Decimal, Decimal)> {
        let prefix = correction_prefix(oct());
        let mut out: BTreeMap<_, (Decimal, Decimal)> = BTreeMap::new();
        for l in lines {
            let base = l
                .description
                .strip_prefix(&prefix)
                .unwrap_or(&l.description);
            let key = (
                l.kind.clone(),
                base.to_owned(),
                l.unit_price().normalize().to_string(),
            );
            let e = out.entry(key).or_default();
            e.0 += l.quantity();
            e.1 += l.amount();
        }
        out.retain(|_, (q, a)| !q.is_zero() || !a.is_zero());
        out
    }

    proptest! {
        #[test]
        fn billed_and_its_corrections_come_to_what_the_period_is_now(
            billed in lines(),
            now in lines(),
        ) {
            let mut all = billed.clone();
            all.extend(correction_lines(oct(), &billed, &now));
            prop_assert_eq!(totals(&all), totals(&now));
        }

        #[test]
        fn a_corrected_period_corrects_nothing_when_billed_again(
            billed in lines(),
            now in lines(),
        ) {
            let mut all = billed.clone();
            all.extend(correction_lines(oct(), &billed, &now));
            prop_assert!(correction_lines(oct(), &all, &now).is_empty());
        }

        #[test]
        fn an_unchanged_period_has_no_corrections(now in lines()) {
            prop_assert!(correction_lines(oct(), &now, &now).is_empty());
        }

        #[test]
        fn every_correction_names_its_period_and_is_counted_once(
            billed in lines(),
            now in lines(),
        ) {
            let fix = correction_lines(oct(), &billed, &now);
            prop_assert!(fix.iter().all(|l| l.corrects.as_deref() == Some("2026-10")));
            let corrected = corrected_periods(&fix);
            let total: Decimal = fix.iter().map(DraftLine::amount).sum();
            match corrected.as_slice() {
                [] => prop_assert!(fix.is_empty()),
                [c] => prop_assert_eq!((c.lines, c.amount), (fix.len(), total)),
                more => prop_assert!(false, "one period corrected, not {}", more.len()),
            }
        }
    }
}
