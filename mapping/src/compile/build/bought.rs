//! What a customer buys: banks of hours, punch cards and their terms,
//! add-ons from the template's catalog, and items whose sale in an
//! accounting system opens a card or a bank.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use engine::contract::{
    AddOn, Bank, BankTerm, Card, CardOpening, CardTerms, Covers, Prepaid, Renew, RenewTo, SaleOn,
    Sells,
};
use engine::money::Money;
use engine::period::Month;
use rust_decimal::Decimal;

use super::{Builder, at, origin_of};
use crate::compile::values::MAX_YEARS;
use crate::diag::{At, Problem};
use crate::raw::{Merged, RawAddOnRef};

impl Builder<'_> {
    pub(super) fn banks(&mut self, m: &Merged) -> Vec<Bank> {
        let Some(a) = &m.banks else { return Vec::new() };
        let mut out = Vec::new();
        for (i, b) in a.value.iter().enumerate() {
            let o = origin_of(&a.origin, format!("{}.{i}", a.origin.path), b);
            let raw = &b.value;
            let size = self.minutes(&at(&o, "size", &raw.size));
            let per = at(&o, "per", &raw.per);
            let from = raw
                .from
                .as_ref()
                .and_then(|d| self.date(&at(&o, "from", d)));
            let until = raw
                .until
                .as_ref()
                .and_then(|d| self.date(&at(&o, "until", d)));
            let term = match per.value.as_str() {
                "month" => Some(BankTerm::Month),
                "quarter" => Some(BankTerm::Quarter),
                "year" => Some(BankTerm::Year),
                "once" => match from {
                    Some(from) => Some(BankTerm::Once { from, until }),
                    None => {
                        self.raise(&o, Problem::OnceWithoutFrom);
                        None
                    }
                },
                other => {
                    self.raise(&per.origin, Problem::NotABankTerm(other.to_owned()));
                    None
                }
            };
            let once = matches!(term, Some(BankTerm::Once { .. }));
            for (field, set) in [
                ("from", raw.from.is_some()),
                ("until", raw.until.is_some()),
                ("opening_balance", raw.opening_balance.is_some()),
                ("price", raw.price.is_some()),
            ] {
                if set && !once {
                    self.raise(&o.child(field), Problem::OnlyOnce(field));
                }
            }
            let opening_balance = raw
                .opening_balance
                .as_ref()
                .and_then(|d| self.minutes(&at(&o, "opening_balance", d)));
            let price = raw
                .price
                .as_ref()
                .and_then(|p| self.money(&at(&o, "price", p)));
            let low_balance = raw
                .low_balance
                .as_ref()
                .and_then(|d| self.minutes(&at(&o, "low_balance", d)));
            let kinds = self.kinds(&o, raw.kinds.as_deref());
            let actual_time = match raw.draw.as_ref().map(|d| at(&o, "draw", d)) {
                None => false,
                Some(d) => match d.value.as_str() {
                    "rounded" => false,
                    "actual" => true,
                    other => {
                        self.raise(&d.origin, Problem::NotADraw(other.to_owned()));
                        false
                    }
                },
            };
            let covers = Covers {
                kinds,
                categories: raw.categories.as_ref().map(|c| c.iter().cloned().collect()),
                actual_time,
            };
            if let (Some(minutes), Some(term)) = (size, term) {
                out.push(Bank {
                    covers,
                    name: raw.name.clone(),
                    minutes,
                    term,
                    opening_balance,
                    price,
                    low_balance,
                    // Banks with a draw_order go first, by it; the others follow in list order.
                    draw_order: raw.draw_order.unwrap_or(u32::MAX),
                });
            }
        }
        out
    }

    pub(super) fn card_terms(&mut self, m: &Merged) -> CardTerms {
        let mut t = CardTerms::default();
        if let Some(a) = &m.card_terms {
            if let Some(p) = &a.value.punch
                && let Some(min) = self.minutes(&at(&a.origin, "punch", p))
            {
                if min.is_zero() {
                    self.raise(&a.origin.child("punch"), Problem::EmptyPunch);
                } else {
                    t.punch = min;
                }
            }
            for (key, years) in [
                ("valid_years", a.value.valid_years),
                ("forfeit_after_idle_years", a.value.forfeit_after_idle_years),
            ] {
                if years.is_some_and(|y| !(1..=MAX_YEARS).contains(&y)) {
                    self.raise(
                        &a.origin.child(key),
                        Problem::YearsOutOfRange {
                            key,
                            max: MAX_YEARS,
                        },
                    );
                }
            }
            t.valid_years = a
                .value
                .valid_years
                .filter(|y| (1..=MAX_YEARS).contains(y))
                .unwrap_or(t.valid_years);
            t.idle_years = a
                .value
                .forfeit_after_idle_years
                .filter(|y| (1..=MAX_YEARS).contains(y));
            t.low_balance = a.value.low_balance_punches;
        }
        t
    }

    /// Cards, priced at the hourly rate in force in the month each was bought.
    pub(super) fn cards(
        &mut self,
        m: &Merged,
        rates: &[(Month, Option<Money>)],
        terms: CardTerms,
    ) -> Vec<Card> {
        let Some(a) = &m.cards else { return Vec::new() };
        let sizes: Vec<(u32, Option<Decimal>)> = match &m.card_sizes {
            Some(s) => s
                .value
                .iter()
                .enumerate()
                .map(|(i, cs)| {
                    (
                        cs.punches,
                        self.percent(&at(
                            &s.origin.child(&i.to_string()),
                            "discount_percent",
                            &cs.discount_percent,
                        )),
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        let mut out = Vec::new();
        for (i, c) in a.value.iter().enumerate() {
            let o = origin_of(&a.origin, format!("{}.{i}", a.origin.path), c);
            let raw = &c.value;
            let bought = self.date(&at(&o, "bought", &raw.bought));
            let punches = at(&o, "punches", &raw.punches);
            let discount = if sizes.is_empty() {
                Some(Decimal::ZERO)
            } else {
                match sizes.iter().find(|(n, _)| *n == punches.value) {
                    Some((_, d)) => *d,
                    None => {
                        self.raise(
                            &punches.origin,
                            Problem::CardNotSold {
                                punches: punches.value,
                                sizes: sizes.iter().map(|(n, _)| *n).collect(),
                            },
                        );
                        None
                    }
                }
            };
            let last_drawn = raw
                .last_drawn
                .as_ref()
                .and_then(|d| self.date(&at(&o, "last_drawn", d)));
            if raw.last_drawn.is_some() && raw.opening_balance.is_none() {
                self.raise(&o.child("last_drawn"), Problem::LastDrawnAlone);
            }
            if let Some(ob) = raw.opening_balance
                && ob > punches.value
            {
                self.raise(
                    &o.child("opening_balance"),
                    Problem::OpeningAboveCard {
                        opening: ob,
                        punches: punches.value,
                    },
                );
            }
            let rate_then = |bought: Option<NaiveDate>| {
                let month = bought.map(Month::of)?;
                let idx = rates
                    .partition_point(|(mo, _)| *mo <= month)
                    .saturating_sub(1);
                rates.get(idx).and_then(|(_, r)| *r)
            };
            let Some(rate) = rate_then(bought) else {
                // A rate that is written but invalid is reported where it is written.
                if m.hourly_rate.is_none() {
                    self.raise(&o, Problem::CardsWithoutRate);
                }
                continue;
            };
            if let (Some(bought), Some(discount)) = (bought, discount) {
                let full = rate.for_minutes(terms.punch.times(u64::from(punches.value)));
                out.push(Card {
                    bought,
                    punches: punches.value,
                    price: full - full.percent(discount),
                    discount_percent: discount,
                    opening: raw.opening_balance.map(|p| CardOpening {
                        punches: p,
                        last_drawn,
                    }),
                });
            }
        }
        out
    }

    /// Add-ons the customer subscribes to, by name from `add_on_catalog`.
    pub(super) fn add_ons(&mut self, m: &Merged, has_hourly_rate: bool) -> Vec<AddOn> {
        let Some(refs) = &m.add_ons else {
            return Vec::new();
        };
        let catalog = m.add_on_catalog.as_ref();
        let mut out = Vec::new();
        for (i, r) in refs.value.iter().enumerate() {
            let o = origin_of(&refs.origin, format!("{}.{i}", refs.origin.path), r);
            let (name, from, until) = match &r.value {
                RawAddOnRef::Name(n) => (n.clone(), None, None),
                RawAddOnRef::Dated(d) => (d.name.clone(), d.from.clone(), d.until.clone()),
            };
            let Some(def) = catalog.and_then(|c| c.value.get(&name)) else {
                self.raise(
                    &o,
                    Problem::UnknownAddOn {
                        name,
                        catalog: catalog.map(|c| c.value.keys().cloned().collect()),
                    },
                );
                continue;
            };
            let co = catalog
                .map(|c| c.origin.child(&name))
                .unwrap_or_else(|| o.clone());
            if def.month_end_punches.unwrap_or(0) > 0 && !has_hourly_rate {
                self.raise(&co.child("month_end_punches"), Problem::PunchesWithoutRate);
            }
            let from = from.and_then(|d| {
                self.date(&At {
                    origin: o.child("from"),
                    value: d,
                })
            });
            let until = until.and_then(|d| {
                self.date(&At {
                    origin: o.child("until"),
                    value: d,
                })
            });
            out.push(AddOn {
                name: name.clone(),
                monthly_fee: def
                    .monthly_fee
                    .as_ref()
                    .and_then(|f| self.money(&at(&co, "monthly_fee", f))),
                first_response: def
                    .first_response
                    .as_ref()
                    .map(|t| self.targets(&at(&co, "first_response", t))),
                resolution: def
                    .resolution
                    .as_ref()
                    .map(|t| self.targets(&at(&co, "resolution", t))),
                month_end_punches: def.month_end_punches.unwrap_or(0),
                from,
                until,
            });
        }
        out
    }

    /// Items whose sale opens a card or a bank.
    pub(super) fn prepaid(&mut self, m: &Merged) -> BTreeMap<String, Prepaid> {
        let mut out = BTreeMap::new();
        let Some(a) = &m.prepaid else {
            return out;
        };
        let sizes: Vec<(u32, Option<Decimal>)> = m
            .card_sizes
            .as_ref()
            .map(|c| {
                c.value
                    .iter()
                    .map(|s| (s.punches, s.discount_percent.value.trim().parse().ok()))
                    .collect()
            })
            .unwrap_or_default();
        for (item, p) in &a.value {
            let o = origin_of(&a.origin, format!("{}.{item}", a.origin.path), p);
            let raw = &p.value;
            if item.trim().is_empty() {
                self.raise(&o, Problem::EmptyItemCode);
                continue;
            }
            let on = match raw.on.as_ref().map(|v| v.value.as_str()) {
                None | Some("paid") => Some(SaleOn::Paid),
                Some("issued") => Some(SaleOn::Issued),
                Some(other) => {
                    self.raise(&o.child("on"), Problem::NotSaleOn(other.to_owned()));
                    None
                }
            };
            let renew = match raw.renew.as_ref().map(|v| v.value.as_str()) {
                None | Some("none") => Some(Renew::Nothing),
                Some("note") => Some(Renew::Note),
                Some("draft") => Some(Renew::NoteAndDraft),
                Some(other) => {
                    self.raise(&o.child("renew"), Problem::NotRenew(other.to_owned()));
                    None
                }
            };
            let renew_to = match raw.renew_to.as_ref().map(|v| v.value.as_str()) {
                None | Some("note") => Some(RenewTo::Note),
                Some("ticket") => Some(RenewTo::Ticket),
                Some(other) => {
                    self.raise(&o.child("renew_to"), Problem::NotRenewTo(other.to_owned()));
                    None
                }
            };
            if raw.renew_to.is_some() && renew == Some(Renew::Nothing) {
                self.raise(&o.child("renew_to"), Problem::RenewToWithoutRenew);
            }
            let sells = match (raw.card, &raw.bank) {
                (Some(_), Some(_)) | (None, None) => {
                    self.raise(&o, Problem::SellsOneThing);
                    None
                }
                (Some(0), None) => {
                    self.raise(&o.child("card"), Problem::CardWithoutPunch);
                    None
                }
                (Some(punches), None) => {
                    for (field, set) in [
                        ("valid_months", raw.valid_months.is_some()),
                        ("low_balance", raw.low_balance.is_some()),
                    ] {
                        if set {
                            self.raise(&o.child(field), Problem::BankKeyOnCard(field));
                        }
                    }
                    let discount = match &raw.discount_percent {
                        Some(d) => self.percent(&at(&o, "discount_percent", d)),
                        None => match sizes.iter().find(|(n, _)| *n == punches) {
                            Some((_, d)) => *d,
                            None => {
                                self.raise(&o.child("card"), Problem::NoDiscountForSize(punches));
                                None
                            }
                        },
                    };
                    discount.map(|discount_percent| Sells::Card {
                        punches,
                        discount_percent,
                    })
                }
                (None, Some(time)) => {
                    if raw.discount_percent.is_some() {
                        self.raise(&o.child("discount_percent"), Problem::DiscountOnBank);
                    }
                    if raw.valid_months == Some(0) {
                        self.raise(&o.child("valid_months"), Problem::ZeroValidMonths);
                    }
                    let minutes = self.minutes(&at(&o, "bank", time));
                    let low_balance = raw
                        .low_balance
                        .as_ref()
                        .and_then(|d| self.minutes(&at(&o, "low_balance", d)));
                    match minutes {
                        Some(m) if m.is_zero() => {
                            self.raise(&o.child("bank"), Problem::EmptyBank);
                            None
                        }
                        Some(minutes) => Some(Sells::Bank {
                            minutes,
                            valid_months: raw.valid_months.filter(|m| *m > 0),
                            low_balance,
                        }),
                        None => None,
                    }
                }
            };
            if let (Some(sells), Some(on), Some(renew), Some(renew_to)) =
                (sells, on, renew, renew_to)
            {
                out.insert(
                    item.clone(),
                    Prepaid {
                        item: item.clone(),
                        sells,
                        on,
                        renew,
                        renew_to,
                    },
                );
            }
        }
        out
    }
}
