//! The mapping file as written: serde structs that reject unknown keys.
//!
//! Values that later checks may reject (references, money, durations, dates)
//! are kept `Spanned` so that every error can point at the line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// One mapping file. Names (calendars, value maps, templates, customers) are
/// global across the files of a folder.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    #[serde(default)]
    pub calendars: BTreeMap<String, Spanned<RawCalendar>>,
    #[serde(default)]
    pub value_maps: BTreeMap<String, Spanned<RawValueMap>>,
    #[serde(default)]
    pub templates: BTreeMap<String, Spanned<RawContract>>,
    #[serde(default)]
    pub customers: BTreeMap<String, Spanned<RawContract>>,
    /// How each helpdesk source's raw fields become canonical tickets.
    #[serde(default)]
    pub sources: BTreeMap<String, Spanned<crate::sources::RawSource>>,
    /// Per accounting target: account, item, tax and tracking per line kind
    /// (`crate::accounts`).
    #[serde(default)]
    pub accounts:
        BTreeMap<String, Spanned<BTreeMap<String, Spanned<crate::accounts::RawLineAccount>>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCalendar {
    pub time_zone: Spanned<String>,
    /// `24/7`, or windows per day: `mon-fri: "09:00-17:00"`.
    pub hours: Spanned<RawHours>,
    #[serde(default)]
    pub holidays: Vec<Spanned<String>>,
    /// A country's built-in public holidays, every year: `SE`, `DE-BY`.
    #[serde(default)]
    pub public_holidays: Option<Spanned<String>>,
    /// Days of `public_holidays` (or `holidays_ical`) that stay open.
    #[serde(default)]
    pub not_holidays: Vec<Spanned<String>>,
    /// An iCalendar file (relative to the mapping file) whose all-day events are holidays.
    #[serde(default)]
    pub holidays_ical: Option<Spanned<String>>,
    /// Weekly windows that stop the clock, e.g. `sun: "02:00-04:00"`.
    #[serde(default)]
    pub maintenance: Option<Spanned<BTreeMap<String, OneOrMany>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawHours {
    Text(String),
    Days(BTreeMap<String, OneOrMany>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValueMap {
    /// Raw priority → 1 (critical) … 4 (low).
    #[serde(default)]
    pub priority: BTreeMap<String, Spanned<u8>>,
    /// Raw state → `open`, `paused` or `resolved`.
    #[serde(default)]
    pub state: BTreeMap<String, Spanned<String>>,
    /// Raw category → billing category; unlisted raw categories pass through.
    #[serde(default)]
    pub category: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    pub treat: Spanned<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub bill_as: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRounding {
    #[serde(default)]
    pub step: Option<Spanned<String>>,
    #[serde(default)]
    pub minimum: Option<Spanned<String>>,
    #[serde(default)]
    pub per_started_hour: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTravel {
    pub per_onsite_visit: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllowance {
    pub name: String,
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// Only work of these kinds: `remote`, `onsite`, `phone`.
    #[serde(default)]
    pub kinds: Option<Vec<Spanned<String>>>,
    /// Free time per month.
    pub per_month: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBank {
    pub name: String,
    pub size: Spanned<String>,
    /// `month`, `quarter`, `year` or `once`.
    pub per: Spanned<String>,
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    #[serde(default)]
    pub until: Option<Spanned<String>>,
    #[serde(default)]
    pub opening_balance: Option<Spanned<String>>,
    #[serde(default)]
    pub price: Option<Spanned<String>>,
    #[serde(default)]
    pub low_balance: Option<Spanned<String>>,
    #[serde(default)]
    pub draw_order: Option<u32>,
    /// Only work of these kinds: `remote`, `onsite`, `phone`.
    #[serde(default)]
    pub kinds: Option<Vec<Spanned<String>>>,
    /// Only tickets of these canonical categories.
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// `rounded` (default): draws the ticket's rounded time; `actual`: draws
    /// the logged time before rounding.
    #[serde(default)]
    pub draw: Option<Spanned<String>>,
}

/// An accounting system's ids for a customer: every key optional, each
/// falling back to the target's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccountingRefs {
    /// The customer's contact (Xero ContactID, Fortnox CustomerNumber, …).
    #[serde(default)]
    pub contact: Option<String>,
    /// The revenue account of the lines.
    #[serde(default)]
    pub account: Option<String>,
    /// The tax code of the lines.
    #[serde(default)]
    pub tax: Option<String>,
    /// The item, article or product of the lines.
    #[serde(default)]
    pub item: Option<String>,
}

/// An item whose sale in an accounting system opens a card or a bank.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrepaid {
    /// Punches of the card it sells.
    #[serde(default)]
    pub card: Option<u32>,
    /// Time of the bank it sells (`10h`).
    #[serde(default)]
    pub bank: Option<Spanned<String>>,
    /// The card's discount, in percent; default: `card_sizes`' for its size.
    #[serde(default)]
    pub discount_percent: Option<Spanned<String>>,
    /// A bank's validity from the sale, in months; none: until used up.
    #[serde(default)]
    pub valid_months: Option<u32>,
    #[serde(default)]
    pub low_balance: Option<Spanned<String>>,
    /// `paid` (default) or `issued`.
    #[serde(default)]
    pub on: Option<Spanned<String>>,
    /// `none` (default), `note` or `draft` (a note and a draft for the next one).
    #[serde(default)]
    pub renew: Option<Spanned<String>>,
    /// Where the suggestion goes: `note` (default) or `ticket`.
    #[serde(default)]
    pub renew_to: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCardTerms {
    #[serde(default)]
    pub punch: Option<Spanned<String>>,
    #[serde(default)]
    pub valid_years: Option<u32>,
    #[serde(default)]
    pub forfeit_after_idle_years: Option<u32>,
    #[serde(default)]
    pub low_balance_punches: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCardSize {
    pub punches: u32,
    pub discount_percent: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCard {
    pub bought: Spanned<String>,
    pub punches: Spanned<u32>,
    #[serde(default)]
    pub opening_balance: Option<u32>,
    #[serde(default)]
    pub last_drawn: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAddOnDef {
    #[serde(default)]
    pub monthly_fee: Option<Spanned<String>>,
    #[serde(default)]
    pub first_response: Option<Spanned<RawTargets>>,
    #[serde(default)]
    pub resolution: Option<Spanned<RawTargets>>,
    #[serde(default)]
    pub month_end_punches: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawAddOnRef {
    Name(String),
    Dated(RawDatedAddOn),
}

/// `{name, from, until}`: an add-on subscribed for a while.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatedAddOn {
    pub name: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawTargets {
    All(String),
    ByPriority(BTreeMap<TargetKey, String>),
}

/// `1`..`4` (written bare or quoted) or `all`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(untagged)]
pub enum TargetKey {
    Number(u64),
    Text(String),
}

impl std::fmt::Display for TargetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetKey::Number(n) => write!(f, "{n}"),
            TargetKey::Text(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredit {
    pub priorities: Vec<u8>,
    pub percent_of_monthly_fee: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSla {
    pub calendar: Spanned<String>,
    #[serde(default)]
    pub first_response: Option<Spanned<RawTargets>>,
    #[serde(default)]
    pub resolution: Option<Spanned<RawTargets>>,
    #[serde(default)]
    pub exclude_when: Vec<Spanned<String>>,
    /// `75%` (default) of the target.
    #[serde(default)]
    pub warn_at: Option<Spanned<String>>,
    /// Or a lead time before the due time, e.g. `30m`.
    #[serde(default)]
    pub warn_before: Option<Spanned<String>>,
    /// `continue` (default) or `restart`.
    #[serde(default)]
    pub reopen: Option<Spanned<String>>,
    #[serde(default)]
    pub service_credit: Option<RawCredit>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawRequesters {
    Anyone(String),
    List(Vec<String>),
}

macro_rules! contract_fields {
    ($( $(#[$m:meta])* $field:ident : $ty:ty ),* $(,)?) => {
        /// A template, a customer, or a dated change: the same keys.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawContract {
            $( $(#[$m])* #[serde(default)] pub $field: Option<Spanned<$ty>>, )*
        }

        /// Keys resolved through the template chain, each remembering where it was written.
        #[derive(Debug, Clone, Default)]
        pub struct Merged {
            $( pub $field: Option<crate::diag::At<$ty>>, )*
        }

        impl Merged {
            /// Keys written in `raw` replace what the layers below set.
            pub fn overlay(&mut self, origin: &crate::diag::Origin, raw: &RawContract) {
                $( if let Some(v) = &raw.$field {
                    self.$field = Some(crate::diag::At::new(origin, stringify!($field), v.clone()));
                } )*
            }
        }

        pub const CONTRACT_KEYS: &[&str] = &[$(stringify!($field)),*];
    };
}

contract_fields! {
    /// Another template this one extends (templates and customers).
    template: String,
    /// First day of the contract (fees from its month).
    start: String,
    /// Day after the last day, if the contract ends.
    end: String,
    /// Only in `changes` entries: the first of the month the change applies from.
    effective_from: String,
    /// Term changes by date.
    changes: Vec<RawContract>,
    currency: String,
    time_zone: String,
    value_map: String,
    /// The tier's name, shown on the fee line.
    level: String,
    monthly_fee: String,
    hourly_rate: String,
    requesters: RawRequesters,
    rules: Vec<Spanned<RawRule>>,
    rounding: RawRounding,
    travel: RawTravel,
    call_out_fee: String,
    allowances: Vec<RawAllowance>,
    banks: Vec<Spanned<RawBank>>,
    card_terms: RawCardTerms,
    card_sizes: Vec<RawCardSize>,
    cards: Vec<Spanned<RawCard>>,
    add_on_catalog: BTreeMap<String, RawAddOnDef>,
    add_ons: Vec<Spanned<RawAddOnRef>>,
    sla: RawSla,
    /// This contract's days closed on top of its SLA calendar's holidays.
    holidays: Vec<Spanned<String>>,
    /// This contract's days open although its SLA calendar closes them.
    not_holidays: Vec<Spanned<String>>,
    /// What each accounting target calls this customer and its lines, by
    /// the target's name in the daemon configuration.
    accounting: BTreeMap<String, Spanned<RawAccountingRefs>>,
    /// The language of the customer's reports: en, lv, pl, sv or da (default en).
    language: String,
    /// How many months a report covers: month (default), quarter or year.
    report_every: String,
    /// Items (article, product codes) whose sale in an accounting system
    /// opens a card or a bank for the customer.
    prepaid: BTreeMap<String, Spanned<RawPrepaid>>,
    /// Whether finance approves the customer's drafts before they are
    /// pushed: `none`, `required` or `above: AMOUNT` (review.rs).
    review: crate::review::RawReview,
}

/// Keys a dated change may set: the terms, not what was bought.
pub const TERM_KEYS: &[&str] = &[
    "level",
    "monthly_fee",
    "hourly_rate",
    "requesters",
    "rules",
    "rounding",
    "travel",
    "call_out_fee",
    "allowances",
    "sla",
];
