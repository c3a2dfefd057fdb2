//! Every problem a mapping file can have, worded once.
//!
//! The stages (`compile::read`, `compile::resolve`, `compile::build`) decide
//! *what* is wrong and raise a [`Problem`] at an [`Origin`](super::Origin);
//! this file decides *how it reads*. A message says what was found and what
//! would be valid, in the admin's terms (keys as written in YAML, examples
//! they can copy). Tests and snapshots hold these texts byte for byte: change
//! one here and every place that raises it follows.
//!
//! Most problems are errors (the mapping is refused); [`Problem::severity`]
//! names the few that only warn.

use std::path::PathBuf;

use chrono::NaiveDate;
use engine::contract::Cadence;
use thiserror::Error;

use super::{Severity, did_you_mean};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum Problem {
    // ── Reading: files and YAML ──────────────────────────────────────────
    #[error("cannot open the mapping: {0}")]
    CannotOpen(String),
    #[error("cannot list the folder: {0}")]
    CannotList(String),
    #[error("no mapping files: the folder holds no *.yaml or *.yml file")]
    NoMappingFiles,
    #[error("cannot read the file: {0}")]
    CannotRead(String),
    // Hardening (issue 15): an emptied file (a failed copy, an editor's
    // truncation) would silently drop every customer it held.
    #[error(
        "the file is empty: it would drop every customer, template and source it held; \
         write its contents back, or delete the file to drop them"
    )]
    EmptyFile,
    #[error("unknown key `{key}`{}; valid keys here: {}", did_you_mean(.key, .valid.iter().map(String::as_str)), .valid.join(", "))]
    UnknownKey { key: String, valid: Vec<String> },
    #[error("unknown key `{key}`: no keys are allowed here")]
    NoKeysHere { key: String },
    #[error("{}is not a whole number from 0 to {max}: write digits, such as 20", quoted(.found))]
    NotWholeNumber { found: Option<String>, max: u64 },
    #[error("`{key}` is written twice here: a key may appear only once")]
    KeyTwice { key: String },
    #[error(
        "{}is not valid here: expected a single value (text, a quoted amount such as \"350.00\", a date or a duration), not a list or a map",
        quoted(.found)
    )]
    NotSingleValue { found: Option<String> },
    /// A value matched none of the shapes a key allows; `expected` comes
    /// from [`Problem::shapes_of`].
    #[error("{}is not valid here: expected {expected}", quoted(.found))]
    NoShapeMatches {
        found: Option<String>,
        expected: &'static str,
    },
    /// A message worded by the parser that refused the value (the YAML
    /// reader, the engine's parsers, durations, CEL, iCalendar).
    #[error("{0}")]
    Verbatim(String),

    // ── Resolving names ──────────────────────────────────────────────────
    #[error(
        "`{name}` is already defined at {}:{prev_line}; names in `{section}` must be unique across the mapping files",
        .prev_file.display()
    )]
    DuplicateName {
        name: String,
        section: &'static str,
        prev_file: PathBuf,
        prev_line: u64,
    },
    #[error(
        "`{target}` is already given at {}:{prev_line}; each target's `accounts` must be in one place",
        .prev_file.display()
    )]
    DuplicateAccounts {
        target: String,
        prev_file: PathBuf,
        prev_line: u64,
    },
    #[error("no template named `{name}`{}; defined templates: {}", suggest(.name, .defined), names(.defined))]
    UnknownTemplate { name: String, defined: Vec<String> },
    #[error("template chain loops back to `{name}`: {}", .chain.join(" → "))]
    TemplateLoop { name: String, chain: Vec<String> },
    #[error("`effective_from` belongs in an entry of `changes`")]
    EffectiveFromOutsideChanges,
    #[error("template `{0}` is not used by any customer")]
    UnusedTemplate(String),
    #[error("no value map named `{name}`{}; defined value maps: {}", suggest(.name, .defined), names(.defined))]
    UnknownValueMap { name: String, defined: Vec<String> },
    #[error("no calendar named `{name}`{}; defined calendars: {}", suggest(.name, .defined), names(.defined))]
    UnknownCalendar { name: String, defined: Vec<String> },
    #[error("missing `{what}` (set it here or in the template), for example `{what}: {example}`")]
    Missing {
        what: &'static str,
        example: &'static str,
    },
    #[error("a change needs `effective_from: YYYY-MM-01`, the first day it applies")]
    ChangeWithoutDate,
    #[error("terms change at the start of a billing month: use {0}")]
    ChangeNotOnFirst(NaiveDate),
    #[error(
        "changes must come after the contract's start month and be listed in ascending `effective_from` order, one per month"
    )]
    ChangesOutOfOrder,
    #[error("`{key}` cannot change by date; a change may set: {}", .may_set.join(", "))]
    KeyCannotChange {
        key: &'static str,
        may_set: &'static [&'static str],
    },

    // ── Values ───────────────────────────────────────────────────────────
    #[error(
        "unknown time zone `{value}`: {}Write an IANA time zone name such as Europe/Riga, Europe/Stockholm or UTC",
        zone_hint(.near)
    )]
    UnknownTimeZone { value: String, near: Vec<String> },
    #[error("`{0}` is not a date: write YYYY-MM-DD, for example 2026-01-01")]
    NotADate(String),
    #[error("`{value}` is too large: amounts here are at most {max}")]
    AmountTooLarge { value: String, max: i64 },
    // A ledger recomputes quantity × unit price: an amount it cannot hold
    // would make its total differ from ours.
    #[error(
        "`{value}` has more decimals than {currency} allows ({decimals}): an invoice line shows {decimals} decimals, so write \"{down}\" or \"{up}\""
    )]
    TooManyDecimals {
        value: String,
        currency: String,
        decimals: u32,
        down: String,
        up: String,
    },
    #[error("`{0}` is negative: amounts here are zero or more")]
    NegativeAmount(String),
    #[error("`{0}` is not an amount: write a quoted decimal such as \"350.00\"")]
    NotAnAmount(String),
    #[error("`{0}` is not a percentage between 0 and 100, such as \"10\"")]
    NotAPercentage(String),
    #[error("`{value}` is too long: durations here are at most {max_hours}h (100 years)")]
    DurationTooLong { value: String, max_hours: i64 },
    #[error("`{value}` is too long for an SLA target: at most {max_days}d of clock time")]
    TargetTooLong { value: String, max_days: i64 },
    #[error(
        "this condition fails on a typical ticket ({0}); where it fails it counts as not applying"
    )]
    ConditionFailsOnSample(String),
    #[error(
        "an empty `kinds` list covers no work: name some of remote, onsite, phone, or leave `kinds` out to cover every kind"
    )]
    EmptyKinds,
    #[error("`{0}` is not a work kind{hint}: use remote, onsite or phone", hint = did_you_mean(.0, ["remote", "onsite", "phone"].into_iter()))]
    NotAWorkKind(String),

    // ── Calendars and value maps ─────────────────────────────────────────
    #[error(
        "`{0}` is not valid here: write `24/7` or windows per day such as `mon-fri: \"09:00-17:00\"`"
    )]
    NotHours(String),
    #[error(
        "a 24/7 calendar is open on holidays too: these holidays do not stop the clock (use `maintenance` for closed windows)"
    )]
    HolidaysOnAlwaysOpen,
    #[error("{}: {error}", .path.display())]
    BadIcal { path: PathBuf, error: String },
    #[error("cannot read {}: {error}", .path.display())]
    CannotReadIcal { path: PathBuf, error: String },
    #[error(
        "`not_holidays` reopens days of `public_holidays` or `holidays_ical`, and this calendar has neither: remove the dates from `holidays` instead"
    )]
    NothingToReopen,
    #[error(
        "`{0}` is not a day or day range: use mon, tue, wed, thu, fri, sat, sun, a range like mon-fri, or a list like sat,sun"
    )]
    NotADayRange(String),
    #[error("priority {0} is out of range: canonical priorities are 1 (critical) to 4 (low)")]
    PriorityOutOfRange(u8),
    #[error("`{0}` is not a canonical state: use open, paused or resolved")]
    NotAClockState(String),

    // ── Terms ────────────────────────────────────────────────────────────
    #[error("`{0}` is not valid: write `anyone` or a list of e-mail addresses")]
    NotRequesters(String),
    #[error(
        "rule `{0}` bills work but no `hourly_rate` is set: add `hourly_rate: \"40.00\"` or make the rule `treat: covered`"
    )]
    BillsWithoutRate(String),
    #[error("give either `step` or `per_started_hour: true`, not both")]
    StepAndStartedHour,
    #[error(
        "`holidays` and `not_holidays` change this contract's SLA calendar, and it has no `sla`: they change nothing"
    )]
    HolidaysWithoutSla,
    #[error(
        "rule `{name}` has `categories`, so a ticket with no category stops here and is held (\"uncategorised\"): no rule below is tried for it. \
         To let such tickets go on to the rules below, write the filter as a condition instead: `when: '{form}'` (no `categories`). \
         To hold them on purpose, say so above this rule: `- when: ticket.category == null` with `treat: hold` and `reason: uncategorised`"
    )]
    HoldsUncategorised { name: String, form: String },
    #[error("`{0}` is not a treatment: use billable, free, covered or hold")]
    NotATreatment(String),
    #[error("`reason` only goes with `treat: hold`")]
    ReasonWithoutHold,

    // ── SLA ──────────────────────────────────────────────────────────────
    #[error("`{0}` is not a priority: use 1, 2, 3, 4 or all")]
    NotATargetKey(String),
    #[error(
        "this calendar is 24/7, open on holidays too: the contract's `holidays` and `not_holidays` change nothing"
    )]
    AmendsAlwaysOpen,
    #[error("give either `warn_at` or `warn_before`, not both")]
    WarnTwice,
    #[error("`{0}` is not a share of the target: write a percentage such as 75%")]
    NotAShare(String),
    #[error("`{0}` is not valid: use continue or restart")]
    NotReopen(String),
    #[error("a service credit is a share of the monthly fee, but no `monthly_fee` is set")]
    CreditWithoutFee,
    #[error("{0} is not a priority: use 1 to 4")]
    NotAPriority(u8),
    #[error("the SLA sets no target: add `first_response` or `resolution`")]
    NoTarget,

    // ── Banks, cards, add-ons ────────────────────────────────────────────
    #[error("a bank with `per: once` needs `from: YYYY-MM-DD`, the day it was bought")]
    OnceWithoutFrom,
    #[error("`{0}` is not a bank term: use month, quarter, year or once")]
    NotABankTerm(String),
    #[error(
        "`{0}` only applies to a prepaid block (`per: once`); a recurring bank refills every term"
    )]
    OnlyOnce(&'static str),
    #[error(
        "`{0}` is not a way to draw: use `rounded` (the ticket's rounded time, the default) or `actual` (the logged time, before rounding)"
    )]
    NotADraw(String),
    #[error("a punch must cover some time, such as 60m")]
    EmptyPunch,
    #[error("`{key}` is a number of years from 1 to {max}")]
    YearsOutOfRange { key: &'static str, max: u32 },
    #[error("no card of {punches} punches is sold: `card_sizes` lists {}", list(.sizes))]
    CardNotSold { punches: u32, sizes: Vec<u32> },
    #[error("`last_drawn` describes history before the bridge: give `opening_balance` with it")]
    LastDrawnAlone,
    #[error("the opening balance ({opening}) is more than the card's {punches} punches")]
    OpeningAboveCard { opening: u32, punches: u32 },
    #[error("cards are priced from the hourly rate: set `hourly_rate`")]
    CardsWithoutRate,
    #[error("no add-on named `{name}` in `add_on_catalog`{}; available: {}", .catalog.as_ref().map_or_else(String::new, |c| suggest(.name, c)), .catalog.as_ref().map_or_else(|| "none: add `add_on_catalog` to the template".to_owned(), |c| names(c)))]
    UnknownAddOn {
        name: String,
        catalog: Option<Vec<String>>,
    },
    #[error(
        "punches a card cannot cover are billed at the hourly rate, but no `hourly_rate` is set"
    )]
    PunchesWithoutRate,

    // ── Prepaid items ────────────────────────────────────────────────────
    #[error("an item code is empty: write the article or product code the accounting system uses")]
    EmptyItemCode,
    #[error("`{0}` is not when a sale counts: use paid or issued")]
    NotSaleOn(String),
    #[error(
        "`{0}` is not a renewal: use none, note or draft (a note and a draft for the next one)"
    )]
    NotRenew(String),
    #[error(
        "`{0}` is not where a renewal suggestion goes: use note (on the customer's next ticket) or ticket (a ticket of its own)"
    )]
    NotRenewTo(String),
    #[error(
        "`renew_to` says where a renewal suggestion goes, and `renew` is none: set `renew: note` or `renew: draft`, or leave `renew_to` out"
    )]
    RenewToWithoutRenew,
    #[error("an item sells either `card: PUNCHES` or `bank: TIME` (such as 10h), exactly one")]
    SellsOneThing,
    #[error("a card has at least one punch")]
    CardWithoutPunch,
    #[error("`{0}` applies to a bank; a card's terms are `card_terms`")]
    BankKeyOnCard(&'static str),
    #[error("no card of {0} punches is in `card_sizes`: give `discount_percent` (0 for none)")]
    NoDiscountForSize(u32),
    #[error("`discount_percent` applies to a card; a bank's price is its invoice line")]
    DiscountOnBank,
    #[error("`valid_months` is at least 1; leave it out for a bank valid until used up")]
    ZeroValidMonths,
    #[error("a bank holds some time, such as 10h")]
    EmptyBank,

    // ── Sources (sources.rs) ─────────────────────────────────────────────
    #[error(
        "no customers: map the helpdesk's organisation (RT: requestor domain) to a customer key, e.g. `\"Riga Bakery SIA\": riga-bakery`"
    )]
    NoCustomers,
    #[error("`{key}` is not a customer of the mapping{}; customers with a contract: {}", suggest(.key, .contracts), .contracts.join(", "))]
    NotACustomer { key: String, contracts: Vec<String> },
    #[error(
        "`{0}` is not a time unit: write whole minutes from 1m to 1d, such as 1m (agents log minutes) or 1h (hours)"
    )]
    NotATimeUnit(String),
    #[error("`{0}` is not a work kind: use remote, onsite or phone")]
    NotAKindOfWork(String),
    #[error("the canonical name is empty")]
    EmptyCanonicalName,
    #[error(
        "`{value}` is not a field: only `kind` and `category` are read from a worklog property, a label prefix, the request type, the comment or the activity; `{name}` takes a field, e.g. `customfield_10100`"
    )]
    NotAField { value: String, name: String },
    #[error("`customer` and `organization` are the same field (the older name): keep one")]
    CustomerAndOrganization,

    // ── Accounts (accounts.rs) ───────────────────────────────────────────
    #[error("`{0}` is empty: write the code the accounting system uses, or leave the key out")]
    EmptyCode(&'static str),
    #[error("`{0}` is not a tax rate: write a percent from 0 to 100, such as \"25\" or \"0\"")]
    NotATaxRate(String),
    #[error("a tracking category and its option must both be named: `tracking: {{Region: North}}`")]
    UnnamedTracking,
    #[error("`{key}` is not a line kind; valid: defaults, {}{}", .kinds.join(", "), line_kind_hint(.key, .kinds))]
    NotALineKind {
        key: String,
        kinds: &'static [&'static str],
    },

    // ── Reports and accounting ───────────────────────────────────────────
    #[error("unknown language `{value}`; reports are written in: {}", .valid.join(", "))]
    UnknownLanguage {
        value: String,
        valid: Vec<&'static str>,
    },
    #[error("unknown report cadence `{0}`; valid: {valid}", valid = Cadence::NAMES.join(", "))]
    UnknownCadence(String),
    #[error("`{0}` is empty: write the id the accounting system uses, or leave the key out")]
    EmptyAccountingId(&'static str),
}

impl Problem {
    /// Whether the mapping is refused (an error) or loads with a note.
    pub(crate) fn severity(&self) -> Severity {
        match self {
            Problem::UnusedTemplate(_)
            | Problem::ConditionFailsOnSample(_)
            | Problem::HolidaysOnAlwaysOpen
            | Problem::NothingToReopen
            | Problem::HolidaysWithoutSla
            | Problem::HoldsUncategorised { .. }
            | Problem::AmendsAlwaysOpen
            | Problem::NoTarget => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// What a value of an untagged shape (named by its Rust type, as the
    /// YAML reader reports it) may be written as; `None` for a type the
    /// admin would not recognise.
    pub(crate) fn shapes_of(type_name: &str) -> Option<&'static str> {
        Some(match type_name {
            "RawHours" => {
                "`24/7`, or windows per day such as `mon-fri: \"09:00-17:00\"` (a day may have a list of windows)"
            }
            "OneOrMany" => "a window such as \"09:00-17:00\", or a list of them",
            "RawTargets" => {
                "a duration such as 8h, or durations per priority such as `{1: 1h, 2: 4h, all: 8h}`"
            }
            "TargetKey" => "a priority 1, 2, 3, 4, or `all`",
            "RawRequesters" => "`anyone`, or a list of e-mail addresses",
            "RawAddOnRef" => {
                "an add-on name from `add_on_catalog`, or `{name: ..., from: YYYY-MM-DD, until: YYYY-MM-DD}`"
            }
            _ => return None,
        })
    }
}

/// The value the reader found, quoted and followed by a space, or nothing.
fn quoted(found: &Option<String>) -> String {
    found
        .as_ref()
        .map_or_else(String::new, |f| format!("`{f}` "))
}

fn suggest(name: &str, defined: &[String]) -> String {
    did_you_mean(name, defined.iter().map(String::as_str))
}

/// Defined names, sorted, or a plain "none is defined".
fn names(defined: &[String]) -> String {
    let mut v: Vec<&str> = defined.iter().map(String::as_str).collect();
    v.sort_unstable();
    if v.is_empty() {
        "none is defined".into()
    } else {
        v.join(", ")
    }
}

fn list(sizes: &[u32]) -> String {
    sizes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn line_kind_hint(key: &str, kinds: &[&str]) -> String {
    if key == "bank_overage" {
        " (hours beyond a bank are billed on the `hours` line; a bank bought is `bank_sale`)"
            .to_owned()
    } else {
        did_you_mean(key, kinds.iter().copied())
    }
}

fn zone_hint(near: &[String]) -> String {
    match near.split_first() {
        Some((first, [])) => format!("did you mean {first}? "),
        Some(_) => format!("did you mean one of {}? ", near.join(", ")),
        None => String::new(),
    }
}
