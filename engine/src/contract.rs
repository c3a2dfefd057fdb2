//! Contracts as the engine runs them: compiled, validated, immutable.
//!
//! A [`Contract`] binds one customer to its terms. What can change on a date
//! ([`Terms`]: fees, rates, rules, SLA targets) is kept as a list of versions by
//! the month they take effect, so a new rate from March never rewrites February.
//! What is bought or subscribed (banks, cards, add-ons) carries its own dates.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::calendar::Calendar;
use crate::condition::Condition;
use crate::minutes::Minutes;
use crate::money::{Currency, Money};
use crate::period::Month;
use crate::ticket::{CustomerKey, WorkKind};
use crate::values::{Priority, ValueMap};

/// What a matching rule does with a ticket's time in a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Treatment {
    /// Charged: drawn from banks and cards, the rest at the hourly rate.
    Billable,
    /// Free of charge (a free category).
    Free,
    /// Covered by the monthly fee.
    Covered,
    /// Kept off the invoice for review, with the reason shown in the report.
    Hold(String),
}

/// One billing rule; the first rule that matches a ticket decides.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    /// Canonical categories this rule is for; `None` = any ticket, categorised or not.
    pub categories: Option<BTreeSet<String>>,
    pub when: Option<Arc<dyn Condition>>,
    pub treat: Treatment,
    /// The category the work is reported as (moneo: long quick-help is `consultation`).
    pub bill_as: Option<String>,
}

/// Rounding of a ticket's time per period, applied to the sum of its entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rounding {
    /// Round up to a multiple of this (60 = one per started hour).
    pub step: Option<Minutes>,
    /// Bill at least this much when there is any time at all.
    pub minimum: Option<Minutes>,
}

impl Rounding {
    /// Zero stays zero: a ticket whose only work is 0 minutes bills nothing.
    pub fn apply(self, m: Minutes) -> Minutes {
        if m.is_zero() {
            return m;
        }
        let mut r = match self.step {
            Some(step) => m.round_up_to(step),
            None => m,
        };
        if let Some(min) = self.minimum {
            r = r.max(min);
        }
        r
    }

    pub fn describe(self) -> String {
        match (self.step, self.minimum) {
            (None, None) => "exact time".into(),
            (Some(s), None) => format!("rounded up to a multiple of {s} min"),
            (None, Some(m)) => format!("at least {m} min, otherwise exact"),
            (Some(s), Some(m)) => format!("rounded up to a multiple of {s} min, at least {m} min"),
        }
    }
}

/// Who may order work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requesters {
    Anyone,
    /// Trimmed, lower-cased addresses.
    Only(HashSet<String>),
}

impl Requesters {
    pub fn allows(&self, requester: Option<&str>) -> bool {
        match self {
            Requesters::Anyone => true,
            Requesters::Only(set) => requester.is_some_and(|r| set.contains(&normalize_email(r))),
        }
    }
}

/// E-mail addresses compare case-insensitively, trimmed (rule 6).
pub fn normalize_email(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Free minutes per month for some categories (moneo: 60 min of wish evaluation).
#[derive(Clone, Debug)]
pub struct Allowance {
    pub name: String,
    pub categories: Option<BTreeSet<String>>,
    /// Only work of these kinds; `None`: every kind.
    pub kinds: Option<Vec<WorkKind>>,
    pub minutes: Minutes,
}

impl Allowance {
    pub fn applies_to(&self, category: Option<&str>) -> bool {
        match &self.categories {
            None => true,
            Some(set) => category.is_some_and(|c| set.contains(c)),
        }
    }

    pub fn covers_kind(&self, kind: WorkKind) -> bool {
        self.kinds.as_ref().is_none_or(|k| k.contains(&kind))
    }
}

/// What work a bank covers and how it counts it ("3 hours of remote
/// support, at actual time"). The default covers everything, rounded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Covers {
    /// Only work entries of these kinds; `None`: every kind.
    pub kinds: Option<Vec<WorkKind>>,
    /// Only tickets of these canonical categories; `None`: every ticket.
    pub categories: Option<BTreeSet<String>>,
    /// Draw the logged time before rounding, rather than the rounded time;
    /// what the bank does not cover is then rounded and billed.
    pub actual_time: bool,
}

impl Covers {
    pub fn covers_kind(&self, kind: WorkKind) -> bool {
        self.kinds.as_ref().is_none_or(|k| k.contains(&kind))
    }

    pub fn covers_category(&self, category: Option<&str>) -> bool {
        match &self.categories {
            None => true,
            Some(set) => category.is_some_and(|c| set.contains(c)),
        }
    }
}

/// How long one filling of an hour bank lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BankTerm {
    Month,
    Quarter,
    Year,
    /// A prepaid block: filled once on `from`, lapses at `until` (exclusive), if given.
    Once {
        from: NaiveDate,
        until: Option<NaiveDate>,
    },
}

/// An hour bank: minutes drawn before anything is billed per hour. No rollover.
#[derive(Clone, Debug)]
pub struct Bank {
    pub name: String,
    pub minutes: Minutes,
    pub term: BankTerm,
    /// A `Once` block's remaining minutes when the bridge took over (history before it).
    pub opening_balance: Option<Minutes>,
    /// Invoiced in the month a `Once` block starts, unless it has an opening balance.
    pub price: Option<Money>,
    /// Emit a low-balance event when a draw takes the balance below this.
    pub low_balance: Option<Minutes>,
    /// Banks are drawn in ascending order of this (then mapping order).
    pub draw_order: u32,
    /// Which work it covers, at actual or rounded time.
    pub covers: Covers,
}

impl Bank {
    /// A term's starting balance: the size, or a prepaid block's opening balance.
    pub fn fresh_minutes(&self) -> Minutes {
        match self.term {
            BankTerm::Once { .. } => self.opening_balance.unwrap_or(self.minutes),
            _ => self.minutes,
        }
    }
}

/// A punch card bought by the customer.
#[derive(Clone, Debug)]
pub struct Card {
    pub bought: NaiveDate,
    pub punches: u32,
    /// Invoiced in the month of purchase, unless `opening` is set.
    pub price: Money,
    pub discount_percent: Decimal,
    /// Punches left and last draw date when the bridge took over.
    pub opening: Option<CardOpening>,
}

#[derive(Clone, Copy, Debug)]
pub struct CardOpening {
    pub punches: u32,
    pub last_drawn: Option<NaiveDate>,
}

/// Rules shared by every card of a contract.
#[derive(Clone, Copy, Debug)]
pub struct CardTerms {
    /// One punch covers this much time.
    pub punch: Minutes,
    /// A card is valid up to local midnight starting this anniversary of its purchase.
    pub valid_years: u32,
    /// Forfeited when not drawn on for this many years.
    pub idle_years: Option<u32>,
    /// Emit a low-balance event below this many punches.
    pub low_balance: Option<u32>,
}

/// What an item (article, product) sold in an accounting system buys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sells {
    Card {
        punches: u32,
        discount_percent: Decimal,
    },
    /// A prepaid block of time, valid for `valid_months` from the sale (none: until used up).
    Bank {
        minutes: Minutes,
        valid_months: Option<u32>,
        low_balance: Option<Minutes>,
    },
}

/// When a sale opens its card or bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaleOn {
    /// Once the invoice is paid.
    Paid,
    /// Once the invoice is issued (approved, booked, posted), paid or not.
    Issued,
}

/// What a card used up or a bank run low brings about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Renew {
    #[default]
    Nothing,
    /// A renewal suggestion on the customer's next ticket.
    Note,
    /// The note, and a draft for the next card or bank.
    NoteAndDraft,
}

/// Where a renewal suggestion goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RenewTo {
    /// An internal note on the customer's next ticket.
    #[default]
    Note,
    /// A ticket of its own in the customer's helpdesk.
    Ticket,
}

/// An item whose sale opens a card or a bank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepaid {
    pub item: String,
    pub sells: Sells,
    pub on: SaleOn,
    pub renew: Renew,
    pub renew_to: RenewTo,
}

/// SLA targets by canonical priority, in seconds of SLA-clock time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    pub all: Option<i64>,
    pub by_priority: [Option<i64>; 4],
}

impl Targets {
    pub fn for_priority(&self, p: Option<Priority>) -> Option<i64> {
        p.and_then(|p| self.by_priority[p.index()]).or(self.all)
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.by_priority.iter().all(Option::is_none)
    }
}

/// When to warn before a due time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarnAt {
    /// At this share (0..1) of the target's clock time.
    Share(Decimal),
    /// This many seconds of clock time before the due time.
    Lead(i64),
}

/// What a reopened ticket does to its resolution clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reopen {
    #[default]
    Continue,
    Restart,
}

/// A credit on the invoice of a month in which a target was breached.
#[derive(Clone, Debug)]
pub struct ServiceCredit {
    /// Breaches of targets of these priorities count.
    pub priorities: BTreeSet<Priority>,
    /// Credit = −percent % of the monthly fee, at most once a month.
    pub percent_of_monthly_fee: Decimal,
}

/// SLA terms of a contract.
#[derive(Clone, Debug)]
pub struct SlaTerms {
    pub calendar: Arc<Calendar>,
    pub first_response: Targets,
    pub resolution: Targets,
    /// A ticket matching any of these is excluded from the SLA.
    pub exclude: Vec<Arc<dyn Condition>>,
    pub warn: WarnAt,
    pub reopen: Reopen,
    pub credit: Option<ServiceCredit>,
}

/// A named monthly charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fee {
    pub name: String,
    pub amount: Money,
}

/// An add-on the customer subscribes to.
#[derive(Clone, Debug)]
pub struct AddOn {
    pub name: String,
    pub monthly_fee: Option<Money>,
    /// Replaces the contract's first-response targets for tickets created while active.
    pub first_response: Option<Targets>,
    pub resolution: Option<Targets>,
    /// Punches drawn from the card at every month's end (itech `monthly-check`).
    pub month_end_punches: u32,
    pub from: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
}

impl AddOn {
    pub fn active_on(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|f| date >= f) && self.until.is_none_or(|u| date < u)
    }

    /// Active on any day of `month`.
    pub fn active_in(&self, month: Month) -> bool {
        let first = month.first_day();
        let next = month.next().first_day();
        self.from.is_none_or(|f| f < next) && self.until.is_none_or(|u| u > first)
    }
}

/// The terms that can change on a date.
#[derive(Clone, Debug)]
pub struct Terms {
    pub monthly_fee: Option<Fee>,
    pub hourly_rate: Option<Money>,
    pub requesters: Requesters,
    pub rules: Vec<Rule>,
    pub rounding: Rounding,
    /// Travel time added per `onsite` entry, before rounding.
    pub travel_per_visit: Option<Minutes>,
    /// Charged per `onsite` entry of billable work.
    pub call_out_fee: Option<Money>,
    pub allowances: Vec<Allowance>,
    pub sla: Option<Arc<SlaTerms>>,
}

/// One customer's contract.
#[derive(Clone, Debug)]
pub struct Contract {
    pub customer: CustomerKey,
    /// The template (or contract name) it was built from, for explanations.
    pub name: String,
    pub currency: Currency,
    pub tz: Tz,
    pub values: Arc<ValueMap>,
    /// Fees are charged for every month from the one containing `start`.
    pub start: NaiveDate,
    /// Exclusive; no fees from the month after the one containing the last day.
    pub end: Option<NaiveDate>,
    /// Versions by the month they take effect, ascending; the first applies
    /// to every earlier month too.
    pub terms: Vec<(Month, Terms)>,
    pub banks: Vec<Bank>,
    pub cards: Vec<Card>,
    pub card_terms: CardTerms,
    pub add_ons: Vec<AddOn>,
    /// Ids in each accounting target, by the target's name.
    pub accounting: std::collections::BTreeMap<String, AccountingRefs>,
    /// How the customer's work report is written and how much it covers.
    pub report: ReportTerms,
    /// Items that sell this customer a card or a bank, by item code.
    pub prepaid: std::collections::BTreeMap<String, Prepaid>,
}

/// The customer's report: its language and the months it covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportTerms {
    pub language: Language,
    pub every: Cadence,
}

/// A language the reports are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    #[default]
    En,
    Lv,
    Pl,
    Sv,
    Da,
}

impl Language {
    pub const ALL: [Language; 5] = [
        Language::En,
        Language::Lv,
        Language::Pl,
        Language::Sv,
        Language::Da,
    ];

    /// The ISO 639-1 code, as written in mapping files and `lang` attributes.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Lv => "lv",
            Language::Pl => "pl",
            Language::Sv => "sv",
            Language::Da => "da",
        }
    }

    pub fn parse(s: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.code() == s)
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// How many months one report covers: the report of a month covers the
/// cadence's months up to and including it (a quarterly report of November
/// covers October and November; of December, the whole quarter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cadence {
    #[default]
    Month,
    Quarter,
    Year,
}

impl Cadence {
    pub const NAMES: [&'static str; 3] = ["month", "quarter", "year"];

    pub fn parse(s: &str) -> Option<Cadence> {
        match s {
            "month" => Some(Cadence::Month),
            "quarter" => Some(Cadence::Quarter),
            "year" => Some(Cadence::Year),
            _ => None,
        }
    }

    /// The first month of the cadence's window that holds `month`.
    pub fn first_month(self, month: crate::period::Month) -> crate::period::Month {
        let back = match self {
            Cadence::Month => 0,
            Cadence::Quarter => (month.month() - 1) % 3,
            Cadence::Year => month.month() - 1,
        };
        month.back(back)
    }
}

/// What an accounting system calls a customer and its invoice lines; each
/// id absent falls back to the target's own configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AccountingRefs {
    pub contact: Option<String>,
    pub account: Option<String>,
    pub tax: Option<String>,
    pub item: Option<String>,
}

impl Contract {
    /// The terms in force in `month`.
    pub fn terms_for(&self, month: Month) -> &Terms {
        let idx = self.terms.partition_point(|(m, _)| *m <= month);
        &self.terms[idx.saturating_sub(1)].1
    }

    /// Fees are due for `month`.
    pub fn is_active(&self, month: Month) -> bool {
        let first = month.first_day();
        let next = month.next().first_day();
        self.start < next && self.end.is_none_or(|e| e > first)
    }
}

impl Default for CardTerms {
    fn default() -> Self {
        CardTerms {
            punch: Minutes::whole(60),
            valid_years: 5,
            idle_years: None,
            low_balance: None,
        }
    }
}
