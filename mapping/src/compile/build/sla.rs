//! SLA terms: the calendar the clocks run on, targets by priority, when to
//! warn, what a reopened ticket does, and service credits.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;
use engine::calendar::Availability;
use engine::contract::{Reopen, ServiceCredit, SlaTerms, Targets, WarnAt};
use engine::values::Priority;
use rust_decimal::Decimal;

use super::{Builder, at};
use crate::compile::values;
use crate::diag::{At, Problem};
use crate::raw::{RawSla, RawTargets};

impl Builder<'_> {
    /// `amend`: the contract's own days closed and reopened on top of the
    /// calendar's. `None` when the calendar was not built (its errors, or
    /// an unknown name, are reported elsewhere).
    pub(super) fn sla(
        &mut self,
        s: &At<RawSla>,
        has_fee: bool,
        amend: &(BTreeSet<NaiveDate>, BTreeSet<NaiveDate>),
    ) -> Option<SlaTerms> {
        let o = &s.origin;
        let raw = &s.value;
        let cal_at = at(o, "calendar", &raw.calendar);
        let calendar = self.calendars.get(&cal_at.value).cloned();
        // The contract's own holidays, on top of the shared calendar's.
        let (add, remove) = amend;
        let calendar = match calendar {
            Some(c) if !add.is_empty() || !remove.is_empty() => {
                if matches!(c.availability, Availability::Always) {
                    self.raise(&cal_at.origin, Problem::AmendsAlwaysOpen);
                }
                Some(Arc::new(c.amended(add, remove)))
            }
            other => other,
        };
        let before_targets = self.report.mark();
        let first_response = raw
            .first_response
            .as_ref()
            .map(|t| self.targets(&at(o, "first_response", t)))
            .unwrap_or_default();
        let resolution = raw
            .resolution
            .as_ref()
            .map(|t| self.targets(&at(o, "resolution", t)))
            .unwrap_or_default();
        let exclude = raw
            .exclude_when
            .iter()
            .enumerate()
            .filter_map(|(i, e)| self.condition(&at(&o.child("exclude_when"), &i.to_string(), e)))
            .collect();
        let warn = match (&raw.warn_at, &raw.warn_before) {
            (Some(_), Some(b)) => {
                self.raise(&at(o, "warn_before", b).origin, Problem::WarnTwice);
                WarnAt::Share(Decimal::new(75, 2))
            }
            (Some(w), None) => {
                let a = at(o, "warn_at", w);
                match a
                    .value
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| Decimal::from_str_exact(p.trim()).ok())
                {
                    Some(p) if p > Decimal::ZERO && p <= Decimal::ONE_HUNDRED => {
                        WarnAt::Share(p / Decimal::ONE_HUNDRED)
                    }
                    _ => {
                        self.raise(&a.origin, Problem::NotAShare(a.value.clone()));
                        WarnAt::Share(Decimal::new(75, 2))
                    }
                }
            }
            (None, Some(b)) => WarnAt::Lead(self.seconds(&at(o, "warn_before", b)).unwrap_or(0)),
            (None, None) => WarnAt::Share(Decimal::new(75, 2)),
        };
        let reopen = match raw.reopen.as_ref().map(|r| at(o, "reopen", r)) {
            None => Reopen::Continue,
            Some(a) => match a.value.as_str() {
                "continue" => Reopen::Continue,
                "restart" => Reopen::Restart,
                other => {
                    self.raise(&a.origin, Problem::NotReopen(other.to_owned()));
                    Reopen::Continue
                }
            },
        };
        let credit = raw.service_credit.as_ref().and_then(|c| {
            let co = o.child("service_credit");
            if !has_fee {
                self.raise(&co, Problem::CreditWithoutFee);
            }
            let mut priorities = BTreeSet::new();
            for p in &c.priorities {
                match Priority::new(*p) {
                    Some(p) => {
                        priorities.insert(p);
                    }
                    None => self.raise(&co.child("priorities"), Problem::NotAPriority(*p)),
                }
            }
            let percent = self.percent(&at(
                &co,
                "percent_of_monthly_fee",
                &c.percent_of_monthly_fee,
            ))?;
            Some(ServiceCredit {
                priorities,
                percent_of_monthly_fee: percent,
            })
        });
        // (Targets written with errors are reported as such, not as missing.)
        if first_response.is_empty()
            && resolution.is_empty()
            && !self.report.errors_since(before_targets)
        {
            self.raise(o, Problem::NoTarget);
        }
        Some(SlaTerms {
            calendar: calendar?,
            first_response,
            resolution,
            exclude,
            warn,
            reopen,
            credit,
        })
    }

    /// A target for all priorities, or one per priority (and `all` for the rest).
    pub(super) fn targets(&mut self, a: &At<RawTargets>) -> Targets {
        let mut t = Targets::default();
        match &a.value {
            RawTargets::All(d) => t.all = self.report.ok(&a.origin, values::target(d)),
            RawTargets::ByPriority(map) => {
                for (k, d) in map {
                    let k = &k.to_string();
                    let v = self.report.ok(&a.origin.child(k), values::target(d));
                    match (k.as_str(), k.parse::<u8>().ok().and_then(Priority::new)) {
                        ("all", _) => t.all = v,
                        (_, Some(p)) => t.by_priority[usize::from(p.get() - 1)] = v,
                        _ => self.raise(&a.origin.child(k), Problem::NotATargetKey(k.clone())),
                    }
                }
            }
        }
        t
    }
}
