//! Prepaid sales: a paid invoice line opens a punch card or an hour bank.
//!
//! The mapping's `prepaid` names the items that sell a card or a bank
//! ([`Prepaid`]). An invoice line with such an item, made out to a customer
//! of ours, sells one card or bank per whole unit of its quantity, each at
//! its share of the line's amount ([`sales_of`]); a fractional quantity
//! sells nothing. The sale opens once the invoice reaches the stage the item
//! opens `on` ([`opens`]): paid, or issued.
//!
//! A sale is keyed by the caller on target, invoice, line and unit, so that
//! one seen twice (the next poll, a webhook delivered twice) is kept once.
//! Sold cards and banks join the customer's contract ([`merge_sales`]) with
//! an opening of their full size: finance invoiced them, so the engine
//! draws from them and never invoices them again.
//!
//! When a card is used up or a bank runs low, [`renewal_item`] names the
//! item that renews it and [`renewal_line`] the line selling the next one
//! at the customer's last price.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::billing::ContractBook;
use crate::contract::{Bank, BankTerm, Card, CardOpening, Contract, Prepaid, SaleOn, Sells};
use crate::document::LineKind;
use crate::draft::{DraftLine, LineRefs};
use crate::minutes::Minutes;
use crate::money::Money;
use crate::ticket::CustomerKey;

/// How far an invoice has come, as far as a sale is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A draft, waiting for approval, voided or deleted.
    NotIssued,
    /// Approved, booked or posted, not paid.
    Issued,
    Paid,
}

/// What a sale opened.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sold {
    Card {
        punches: u32,
        discount_percent: Decimal,
    },
    Bank {
        /// Whole minutes.
        minutes: Minutes,
        /// The last day it may be drawn from (none: until used up).
        valid_until: Option<NaiveDate>,
    },
}

/// One card or bank sold on an invoice line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sale {
    pub target: String,
    pub invoice: String,
    pub line: String,
    /// 1..quantity of the line.
    pub unit: i64,
    pub customer: CustomerKey,
    pub item: String,
    pub sold: Sold,
    pub bought: NaiveDate,
    /// This unit's share of the line's amount, in cents.
    pub price: Money,
    pub currency: Option<String>,
}

impl Sale {
    /// What a sale is kept once by: the target, invoice, line and unit
    /// selling it. A sale seen again has the same key and adds nothing.
    pub fn key(&self) -> (&str, &str, &str, i64) {
        (&self.target, &self.invoice, &self.line, self.unit)
    }
}

/// The invoice a line was sold on.
#[derive(Clone, Debug, PartialEq)]
pub struct SaleInvoice {
    /// The accounting system it is in.
    pub target: String,
    pub id: String,
    pub customer: CustomerKey,
    pub currency: Option<String>,
    /// The invoice's date: the day the cards and banks were bought.
    pub date: NaiveDate,
}

/// An invoice line as a sale reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct SaleLine {
    pub id: String,
    pub item: String,
    pub quantity: Decimal,
    pub amount: Decimal,
}

/// A line selling a fraction of a card or bank (or none at all).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "{target}: invoice {invoice} line {line} sells `{item}` {quantity} times; a card or bank is sold in whole units, so nothing was opened"
)]
pub struct NotWholeUnits {
    pub target: String,
    pub invoice: String,
    pub line: String,
    pub item: String,
    pub quantity: Decimal,
}

/// Does an invoice at `stage` open what an item sold `on` it?
pub fn opens(on: SaleOn, stage: Stage) -> bool {
    match on {
        SaleOn::Paid => stage == Stage::Paid,
        SaleOn::Issued => matches!(stage, Stage::Issued | Stage::Paid),
    }
}

/// Could an invoice of `contract`'s customer at `stage` open a card or
/// bank: does any of its prepaid items open at that stage?
pub fn may_open(contract: &Contract, stage: Stage) -> bool {
    contract.prepaid.values().any(|p| opens(p.on, stage))
}

/// The cards or banks one invoice line sells: one per whole unit of its
/// quantity, each at its share of the line's amount.
pub fn sales_of(
    inv: &SaleInvoice,
    line: &SaleLine,
    p: &Prepaid,
) -> Result<Vec<Sale>, NotWholeUnits> {
    let q = line.quantity;
    if q <= Decimal::ZERO || q.fract() != Decimal::ZERO {
        return Err(NotWholeUnits {
            target: inv.target.clone(),
            invoice: inv.id.clone(),
            line: line.id.clone(),
            item: line.item.clone(),
            quantity: q,
        });
    }
    let units = q.trunc().to_string().parse::<i64>().unwrap_or(1);
    let price = Money::new((line.amount / q).round_dp(2));
    let sold = match &p.sells {
        Sells::Card {
            punches,
            discount_percent,
        } => Sold::Card {
            punches: *punches,
            discount_percent: discount_percent.normalize(),
        },
        Sells::Bank {
            minutes,
            valid_months,
            ..
        } => Sold::Bank {
            minutes: Minutes::whole(whole_minutes(*minutes)),
            valid_until: valid_months.and_then(|m| add_months(inv.date, m)),
        },
    };
    Ok((1..=units)
        .map(|unit| Sale {
            target: inv.target.clone(),
            invoice: inv.id.clone(),
            line: line.id.clone(),
            unit,
            customer: inv.customer.clone(),
            item: line.item.clone(),
            sold,
            bought: inv.date,
            price,
            currency: inv.currency.clone(),
        })
        .collect())
}

/// A bank's size as a sale records it: its whole minutes.
fn whole_minutes(m: Minutes) -> u32 {
    m.value().trunc().to_string().parse().unwrap_or_default()
}

/// `months` after `d` (the month's last day where it is too short for
/// `d`'s day); past the calendar's end, the first of `d`'s month.
fn add_months(d: NaiveDate, months: u32) -> Option<NaiveDate> {
    d.checked_add_months(chrono::Months::new(months))
        .or_else(|| NaiveDate::from_ymd_opt(d.year(), d.month(), 1))
}

/// The card a sale opened: already invoiced, so it opens full.
fn card_of(s: &Sale, punches: u32, discount_percent: Decimal) -> Card {
    Card {
        bought: s.bought,
        punches,
        price: s.price,
        discount_percent,
        opening: Some(CardOpening {
            punches,
            last_drawn: None,
        }),
    }
}

/// The name of a bank a sale opened: its item and the invoice selling it.
fn bank_name(s: &Sale) -> String {
    format!("{} (invoice {})", s.item, s.invoice)
}

/// The book with every sold card and bank added to its customer's
/// contract. A sold card was invoiced by finance, so it carries an opening
/// of its full size: the engine draws from it and never invoices it again.
pub fn merge_sales(book: &ContractBook, sales: &[Sale]) -> ContractBook {
    let mut contracts = book.contracts.clone();
    for s in sales {
        let Some(c) = contracts.get_mut(&s.customer) else {
            continue;
        };
        match s.sold {
            Sold::Card {
                punches,
                discount_percent,
            } => {
                c.cards.push(card_of(s, punches, discount_percent));
                c.cards.sort_by_key(|k| k.bought);
            }
            Sold::Bank {
                minutes,
                valid_until,
            } => {
                let low_balance = c.prepaid.get(&s.item).and_then(|p| match p.sells {
                    Sells::Bank { low_balance, .. } => low_balance,
                    Sells::Card { .. } => None,
                });
                c.banks.push(Bank {
                    name: bank_name(s),
                    minutes,
                    term: BankTerm::Once {
                        from: s.bought,
                        until: valid_until,
                    },
                    opening_balance: Some(minutes),
                    price: Some(s.price),
                    low_balance,
                    draw_order: u32::MAX,
                    covers: Default::default(),
                });
            }
        }
    }
    ContractBook { contracts }
}

/// The prepaid item that renews the card or bank a bill's event names
/// (`subject`): the item it was sold as, else (a card of the mapping's own)
/// an item selling cards of its size.
pub fn renewal_item<'a>(
    contract: &'a Contract,
    sales: &[Sale],
    customer: &CustomerKey,
    subject: &str,
) -> Option<&'a Prepaid> {
    let sold = sales.iter().find(|s| {
        &s.customer == customer
            && match s.sold {
                Sold::Card {
                    punches,
                    discount_percent,
                } => subject == crate::billing::card_label(&card_of(s, punches, discount_percent)),
                Sold::Bank { .. } => subject == bank_name(s),
            }
    });
    if let Some(s) = sold {
        return contract.prepaid.get(&s.item);
    }
    contract.prepaid.values().find(|p| match p.sells {
        Sells::Card { punches, .. } => subject.ends_with(&format!("({punches} punches)")),
        Sells::Bank { .. } => false,
    })
}

/// The customer's latest purchase of `item`: the price a renewal goes by.
pub fn last_sale<'a>(sales: &'a [Sale], customer: &CustomerKey, item: &str) -> Option<&'a Sale> {
    sales
        .iter()
        .filter(|s| &s.customer == customer && s.item == item)
        .max_by(|a, b| a.bought.cmp(&b.bought))
}

/// The line selling the next card or bank of `p`, renewing `subject`, at
/// the price of the customer's `last` purchase.
pub fn renewal_line(p: &Prepaid, last: &Sale, subject: &str) -> DraftLine {
    let price = format!("{:.2}", last.price.amount());
    DraftLine {
        kind: match p.sells {
            Sells::Card { .. } => LineKind::CardPurchase.as_str().to_owned(),
            Sells::Bank { .. } => LineKind::BankPurchase.as_str().to_owned(),
        },
        description: format!("{} (renews {subject})", p.item),
        quantity: "1".into(),
        unit_price: price.clone(),
        amount: price,
        tickets: Vec::new(),
        corrects: None,
        refs: LineRefs::default(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::contract::{CardTerms, Renew, RenewTo};

    fn card_item() -> Prepaid {
        Prepaid {
            item: "KLIPPEKORT-20".into(),
            sells: Sells::Card {
                punches: 20,
                discount_percent: Decimal::TEN,
            },
            on: SaleOn::Paid,
            renew: Renew::Nothing,
            renew_to: RenewTo::Note,
        }
    }

    fn bank_item() -> Prepaid {
        Prepaid {
            item: "TIMEBANK-10H".into(),
            sells: Sells::Bank {
                minutes: Minutes::whole(600),
                valid_months: Some(3),
                low_balance: Some(Minutes::whole(60)),
            },
            on: SaleOn::Issued,
            renew: Renew::Nothing,
            renew_to: RenewTo::Note,
        }
    }

    fn customer() -> CustomerKey {
        CustomerKey::new("nordhavn-arkitekter")
    }

    fn book() -> ContractBook {
        let contract = Contract {
            customer: customer(),
            name: "klippekort".into(),
            currency: "DKK".parse().unwrap(),
            tz: chrono_tz::Europe::Copenhagen,
            values: Arc::default(),
            start: "2026-01-01".parse().unwrap(),
            end: None,
            terms: Vec::new(),
            banks: Vec::new(),
            cards: Vec::new(),
            card_terms: CardTerms::default(),
            add_ons: Vec::new(),
            accounting: BTreeMap::new(),
            report: Default::default(),
            prepaid: [card_item(), bank_item()]
                .into_iter()
                .map(|p| (p.item.clone(), p))
                .collect(),
        };
        ContractBook {
            contracts: [(customer(), contract)].into_iter().collect(),
        }
    }

    fn invoice(date: &str) -> SaleInvoice {
        SaleInvoice {
            target: "xero".into(),
            id: "inv-1".into(),
            customer: customer(),
            currency: Some("DKK".into()),
            date: date.parse().unwrap(),
        }
    }

    fn line(item: &str, quantity: Decimal, amount: Decimal) -> SaleLine {
        SaleLine {
            id: "l-1".into(),
            item: item.into(),
            quantity,
            amount,
        }
    }

    fn sold(item: &Prepaid, date: &str) -> Sale {
        let l = line(&item.item, Decimal::ONE, Decimal::new(18000, 0));
        sales_of(&invoice(date), &l, item).unwrap().remove(0)
    }

    #[test]
    fn a_sold_card_joins_the_contract_and_is_not_invoiced_again() {
        let merged = merge_sales(&book(), &[sold(&card_item(), "2026-10-20")]);
        let cards = &merged.contracts[&customer()].cards;
        assert_eq!(cards.len(), 1);
        assert_eq!(cards[0].bought.to_string(), "2026-10-20");
        assert_eq!(cards[0].punches, 20);
        assert_eq!(cards[0].discount_percent, Decimal::TEN);
        assert_eq!(cards[0].opening.map(|o| o.punches), Some(20));
        // A sale for a customer without a contract changes nothing.
        let mut stray = sold(&card_item(), "2026-10-20");
        stray.customer = CustomerKey::new("nobody");
        let same = merge_sales(&book(), &[stray]);
        assert!(same.contracts[&customer()].cards.is_empty());
    }

    #[test]
    fn a_sold_bank_is_a_prepaid_block_from_its_invoice_date_to_its_validity() {
        let merged = merge_sales(&book(), &[sold(&bank_item(), "2026-10-05")]);
        let b = merged.contracts[&customer()].banks.last().unwrap();
        assert_eq!(b.name, "TIMEBANK-10H (invoice inv-1)");
        assert_eq!(b.fresh_minutes(), Minutes::whole(600));
        assert_eq!(
            b.term,
            BankTerm::Once {
                from: "2026-10-05".parse().unwrap(),
                until: Some("2027-01-05".parse().unwrap())
            }
        );
        assert_eq!(b.low_balance, Some(Minutes::whole(60)), "the item's");
        assert!(
            b.opening_balance.is_some(),
            "invoiced by finance, not by us"
        );
    }

    #[test]
    fn a_bank_valid_a_month_from_the_31st_runs_to_the_last_day_of_the_next() {
        let mut item = bank_item();
        item.sells = Sells::Bank {
            minutes: Minutes::whole(600),
            valid_months: Some(1),
            low_balance: None,
        };
        // 31 January + 1 month: February has no 31st, so its last day.
        let s = sold(&item, "2026-01-31");
        assert!(matches!(
            s.sold,
            Sold::Bank { valid_until: Some(d), .. } if d.to_string() == "2026-02-28"
        ));
    }

    #[test]
    fn a_line_sells_one_card_per_whole_unit_and_refuses_a_fraction() {
        let inv = invoice("2026-10-05");
        let amount = Decimal::new(36000, 0);
        let two = sales_of(
            &inv,
            &line("KLIPPEKORT-20", Decimal::TWO, amount),
            &card_item(),
        )
        .unwrap();
        assert_eq!(two.iter().map(|s| s.unit).collect::<Vec<_>>(), [1, 2]);
        assert!(two.iter().all(|s| s.price.to_string() == "18000.00"
            && s.sold
                == Sold::Card {
                    punches: 20,
                    discount_percent: Decimal::TEN
                }));
        let half = sales_of(
            &inv,
            &line("KLIPPEKORT-20", Decimal::new(15, 1), amount),
            &card_item(),
        );
        let e = half.unwrap_err().to_string();
        assert!(e.contains("whole units") && e.contains("1.5 times"), "{e}");
    }

    #[test]
    fn a_sale_opens_at_the_stage_its_item_opens_on() {
        assert!(!opens(SaleOn::Paid, Stage::Issued));
        assert!(opens(SaleOn::Paid, Stage::Paid));
        assert!(opens(SaleOn::Issued, Stage::Issued) && opens(SaleOn::Issued, Stage::Paid));
        assert!(!opens(SaleOn::Issued, Stage::NotIssued));
        let contract = &book().contracts[&customer()];
        assert!(
            may_open(contract, Stage::Issued),
            "the bank opens when issued"
        );
        assert!(!may_open(contract, Stage::NotIssued));
    }

    #[test]
    fn a_used_up_card_is_renewed_by_the_item_it_was_sold_as_at_its_last_price() {
        let contract = &book().contracts[&customer()];
        let card = sold(&card_item(), "2026-10-20");
        let mut later = sold(&card_item(), "2026-11-02");
        later.price = Money::new(Decimal::new(19000, 0));
        let sales = [card.clone(), later];
        let p = renewal_item(
            contract,
            &sales,
            &customer(),
            "punch card 2026-10-20 (20 punches)",
        );
        assert_eq!(p.map(|p| p.item.as_str()), Some("KLIPPEKORT-20"));
        let bank = sold(&bank_item(), "2026-10-05");
        let p = renewal_item(
            contract,
            &[bank],
            &customer(),
            "TIMEBANK-10H (invoice inv-1)",
        );
        assert_eq!(p.map(|p| p.item.as_str()), Some("TIMEBANK-10H"));
        // A card of the mapping's own: an item selling cards of its size.
        let p = renewal_item(
            contract,
            &[],
            &customer(),
            "punch card 2026-01-01 (20 punches)",
        );
        assert_eq!(p.map(|p| p.item.as_str()), Some("KLIPPEKORT-20"));
        assert!(
            renewal_item(
                contract,
                &[],
                &customer(),
                "punch card 2026-01-01 (10 punches)"
            )
            .is_none()
        );
        let last = last_sale(&sales, &customer(), "KLIPPEKORT-20").unwrap();
        let l = renewal_line(&card_item(), last, "punch card 2026-10-20 (20 punches)");
        assert_eq!(
            (l.kind.as_str(), l.quantity.as_str(), l.amount.as_str()),
            ("card_purchase", "1", "19000.00")
        );
        assert!(last_sale(&sales, &CustomerKey::new("nobody"), "KLIPPEKORT-20").is_none());
    }

    proptest! {
        #[test]
        fn n_whole_units_sell_n_cards_each_at_its_share(
            n in 1i64..40,
            cents in 0i64..10_000_000,
        ) {
            let amount = Decimal::new(cents, 2);
            let l = line("KLIPPEKORT-20", Decimal::from(n), amount);
            let sales = sales_of(&invoice("2026-10-05"), &l, &card_item()).unwrap();
            prop_assert_eq!(sales.len() as i64, n);
            let units: Vec<i64> = sales.iter().map(|s| s.unit).collect();
            prop_assert_eq!(units, (1..=n).collect::<Vec<_>>());
            let total: Decimal = sales.iter().map(|s| s.price.amount()).sum();
            // Each share is rounded to cents: together within half a cent each.
            prop_assert!((total - amount).abs() <= Decimal::new(5, 3) * Decimal::from(n));
            let merged = merge_sales(&book(), &sales);
            prop_assert_eq!(merged.contracts[&customer()].cards.len() as i64, n);
        }

        #[test]
        fn a_fraction_of_a_unit_or_none_sells_nothing(
            tenths in -100i64..100,
        ) {
            let q = Decimal::new(tenths, 1);
            prop_assume!(q <= Decimal::ZERO || q.fract() != Decimal::ZERO);
            let l = line("TIMEBANK-10H", q, Decimal::ONE_HUNDRED);
            prop_assert!(sales_of(&invoice("2026-10-05"), &l, &bank_item()).is_err());
        }

        #[test]
        fn a_sale_seen_twice_adds_nothing(n in 1i64..6) {
            // Reading the same line again gives the same sales under the
            // same keys: kept by key, the second reading adds none.
            let l = line("TIMEBANK-10H", Decimal::from(n), Decimal::ONE_HUNDRED);
            let first = sales_of(&invoice("2026-10-05"), &l, &bank_item()).unwrap();
            let again = sales_of(&invoice("2026-10-05"), &l, &bank_item()).unwrap();
            prop_assert_eq!(&first, &again);
            let mut kept: BTreeMap<_, &Sale> = BTreeMap::new();
            for s in first.iter().chain(&again) {
                kept.entry(s.key()).or_insert(s);
            }
            prop_assert_eq!(kept.len(), first.len());
            let once: Vec<Sale> = kept.into_values().cloned().collect();
            let merged = merge_sales(&book(), &once);
            prop_assert_eq!(merged.contracts[&customer()].banks.len(), first.len());
        }
    }
}
