//! Stage 3, build: a [`Resolved`] mapping → engine contracts.
//!
//! Every value is compiled into the engine's types here: amounts into
//! [`Money`] (checked against the contract's currency), durations into
//! [`Minutes`], rules' conditions into CEL programs, calendars, SLA terms,
//! banks, cards and prepaid items. Each key is checked where it is written;
//! a contract with any error is left out of the book (the load fails), but
//! its other keys are still checked so that one run reports everything.
//!
//! The work is split by what is being built: this file holds a contract and
//! its terms, `calendar.rs` calendars and value maps, `sla.rs` SLA terms, and
//! `bought.rs` what a customer buys (banks, cards, add-ons, prepaid items).

mod bought;
mod calendar;
mod sla;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use engine::ContractBook;
use engine::calendar::Calendar;
use engine::contract::*;
use engine::minutes::Minutes;
use engine::money::{Currency, Money};
use engine::period::Month;
use engine::ticket::{CustomerKey, WorkKind};
use engine::values::{ClockState, Priority, ValueMap};
use rust_decimal::Decimal;
use serde_saphyr::Spanned;

use super::resolve::{Customer, Resolved};
use super::values;
use crate::cel::CelCondition;
use crate::diag::{At, Origin, Problem, Report};
use crate::raw::{Merged, RawRequesters, RawRule};

/// What a mapping compiles into.
pub(crate) struct Built {
    pub book: ContractBook,
    pub sources: BTreeMap<String, crate::SourceMap>,
    pub accounts: BTreeMap<String, crate::TargetAccounts>,
    pub review: BTreeMap<CustomerKey, crate::Review>,
}

/// Builds every calendar, value map, contract, source and accounts section.
pub(crate) fn build(resolved: &Resolved<'_>, report: &mut Report) -> Built {
    let mut b = Builder {
        report,
        calendars: HashMap::new(),
        value_maps: HashMap::new(),
        currency: None,
    };
    for c in &resolved.calendars {
        // A calendar with errors is left out: its errors are reported where
        // it is defined, and `resolve` already knows its name.
        if let Some(cal) = b.calendar(&c.name, &c.origin, c.raw) {
            b.calendars.insert(c.name.clone(), Arc::new(cal));
        }
    }
    for v in &resolved.value_maps {
        let vm = b.value_map(&v.name, &v.origin, v.raw);
        b.value_maps.insert(v.name.clone(), Arc::new(vm));
    }
    let mut book = ContractBook::default();
    let mut review = BTreeMap::new();
    for c in &resolved.customers {
        if let Some(r) = &c.merged.review
            && let Some(policy) = crate::review::compile(r, &mut b.report.diags)
        {
            review.insert(CustomerKey::new(c.key.as_str()), policy);
        }
        if let Some(contract) = b.contract(c) {
            book.contracts
                .insert(CustomerKey::new(c.key.as_str()), contract);
        }
    }
    // Sources name customers: only those whose contract was built.
    let contracts: Vec<&str> = book.contracts.keys().map(|k| k.as_str()).collect();
    let sources = resolved
        .sources
        .iter()
        .map(|s| {
            let map =
                crate::sources::compile_source(&s.origin, s.raw, &contracts, &mut b.report.diags);
            (s.name.clone(), map)
        })
        .collect();
    let accounts = resolved
        .accounts
        .iter()
        .map(|a| {
            let t = crate::accounts::compile_target(&a.origin, a.raw, &mut b.report.diags);
            (a.name.clone(), t)
        })
        .collect();
    Built {
        book,
        sources,
        accounts,
        review,
    }
}

/// A value of `owner`'s key `key`, and where it was written.
fn at<T: Clone>(owner: &Origin, key: &str, s: &Spanned<T>) -> At<T> {
    At::new(owner, key, s.clone())
}

/// Where list item or map entry `s` was written, as `path`.
fn origin_of<T>(owner: &Origin, path: String, s: &Spanned<T>) -> Origin {
    Origin {
        file: owner.file.clone(),
        line: s.referenced.line(),
        column: s.referenced.column(),
        path,
    }
}

struct Builder<'r> {
    report: &'r mut Report,
    calendars: HashMap<String, Arc<Calendar>>,
    value_maps: HashMap<String, Arc<ValueMap>>,
    /// The currency of the contract being built: its amounts may have no
    /// more decimals than it allows.
    currency: Option<Currency>,
}

impl Builder<'_> {
    fn raise(&mut self, o: &Origin, p: Problem) {
        self.report.raise(o, p);
    }

    fn contract(&mut self, c: &Customer) -> Option<Contract> {
        let (key, o, m) = (&c.key, &c.origin, &c.merged);
        let before = self.report.mark();
        let missing = |what, example| Problem::Missing { what, example };
        let currency = match &m.currency {
            Some(c) => {
                let parsed = c
                    .value
                    .parse::<Currency>()
                    .map_err(|e| Problem::Verbatim(e.to_string()));
                self.report.ok(&c.origin, parsed)
            }
            None => {
                self.raise(o, missing("currency", "EUR"));
                None
            }
        };
        self.currency = currency;
        let tz = match &m.time_zone {
            Some(t) => self.tz(t),
            None => {
                self.raise(o, missing("time_zone", "Europe/Riga"));
                None
            }
        };
        let values = c
            .value_map
            .as_ref()
            .and_then(|v| self.value_maps.get(v).cloned());
        let end = m.end.as_ref().and_then(|e| self.date(e));
        let terms: Vec<(Month, Option<Terms>)> = c
            .versions
            .iter()
            .map(|v| (v.month, self.terms(&v.origin, &v.merged)))
            .collect();
        let rates: Vec<(Month, Option<Money>)> = terms
            .iter()
            .map(|(mo, t)| (*mo, t.as_ref().and_then(|t| t.hourly_rate)))
            .collect();
        let card_terms = self.card_terms(m);
        let cards = self.cards(m, &rates, card_terms);
        let banks = self.banks(m);
        // A rate written but invalid is reported where it is written.
        let add_ons = self.add_ons(m, m.hourly_rate.is_some());
        let accounting = self.accounting(m);
        let report = self.report_terms(m);
        let prepaid = self.prepaid(m);
        if !c.sound || self.report.errors_since(before) {
            return None;
        }
        Some(Contract {
            customer: CustomerKey::new(key.as_str()),
            name: m
                .template
                .as_ref()
                .map_or_else(|| key.to_owned(), |t| t.value.clone()),
            currency: currency?,
            tz: tz?,
            values: values?,
            start: c.start?,
            end,
            terms: terms
                .into_iter()
                .map(|(mo, t)| t.map(|t| (mo, t)))
                .collect::<Option<Vec<_>>>()?,
            banks,
            cards,
            card_terms,
            add_ons,
            accounting,
            report,
            prepaid,
        })
    }

    /// The report's language and cadence; an unknown value names the valid ones.
    fn report_terms(&mut self, m: &Merged) -> ReportTerms {
        let mut terms = ReportTerms::default();
        if let Some(l) = &m.language {
            match Language::parse(l.value.trim()) {
                Some(lang) => terms.language = lang,
                None => self.raise(
                    &l.origin,
                    Problem::UnknownLanguage {
                        value: l.value.clone(),
                        valid: Language::ALL.iter().map(|l| l.code()).collect(),
                    },
                ),
            }
        }
        if let Some(e) = &m.report_every {
            match Cadence::parse(e.value.trim()) {
                Some(c) => terms.every = c,
                None => self.raise(&e.origin, Problem::UnknownCadence(e.value.clone())),
            }
        }
        terms
    }

    /// Accounting ids by target name; an empty id is an error (it would be
    /// sent and refused).
    fn accounting(&mut self, m: &Merged) -> BTreeMap<String, AccountingRefs> {
        let mut out = BTreeMap::new();
        let Some(a) = &m.accounting else {
            return out;
        };
        for (target, refs) in &a.value {
            let o = a.origin.child(target);
            let r = &refs.value;
            for (key, v) in [
                ("contact", &r.contact),
                ("account", &r.account),
                ("tax", &r.tax),
                ("item", &r.item),
            ] {
                if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                    self.raise(&o.child(key), Problem::EmptyAccountingId(key));
                }
            }
            out.insert(
                target.clone(),
                AccountingRefs {
                    contact: r.contact.clone(),
                    account: r.account.clone(),
                    tax: r.tax.clone(),
                    item: r.item.clone(),
                },
            );
        }
        out
    }

    /// The terms of one version; `None` if any of them is invalid.
    fn terms(&mut self, owner: &Origin, m: &Merged) -> Option<Terms> {
        let before = self.report.mark();
        let hourly_rate = m.hourly_rate.as_ref().and_then(|a| self.money(a));
        let monthly_fee = m
            .monthly_fee
            .as_ref()
            .and_then(|a| self.money(a))
            .map(|amount| Fee {
                name: m.level.as_ref().map_or_else(
                    || "Monthly fee".to_owned(),
                    |l| format!("Monthly fee ({})", l.value),
                ),
                amount,
            });
        let requesters = match &m.requesters {
            None => Requesters::Anyone,
            Some(a) => match &a.value {
                RawRequesters::Anyone(s) if s == "anyone" => Requesters::Anyone,
                RawRequesters::Anyone(s) => {
                    self.raise(&a.origin, Problem::NotRequesters(s.clone()));
                    Requesters::Anyone
                }
                RawRequesters::List(list) => {
                    Requesters::Only(list.iter().map(|e| normalize_email(e)).collect())
                }
            },
        };
        let rules = match &m.rules {
            None => vec![Rule {
                name: "all work".into(),
                categories: None,
                when: None,
                treat: Treatment::Billable,
                bill_as: None,
            }],
            Some(a) => {
                let mut out = Vec::new();
                // Whether a rule above already decides uncategorised tickets.
                let mut uncategorised_decided = false;
                for (i, r) in a.value.iter().enumerate() {
                    let ro = origin_of(&a.origin, format!("{}.{i}", a.origin.path), r);
                    if !uncategorised_decided {
                        uncategorised_decided = self.holds_uncategorised(&ro, i, &r.value);
                    }
                    if let Some(rule) = self.rule(&ro, i, &r.value) {
                        out.push(rule);
                    }
                }
                out
            }
        };
        if hourly_rate.is_none()
            && m.hourly_rate.is_none()
            && let Some(r) = rules.iter().find(|r| r.treat == Treatment::Billable)
        {
            let o = m
                .rules
                .as_ref()
                .map_or_else(|| owner.clone(), |r| r.origin.clone());
            self.raise(&o, Problem::BillsWithoutRate(r.name.clone()));
        }
        let rounding = match &m.rounding {
            None => Rounding::default(),
            Some(a) => {
                let o = &a.origin;
                let mut r = Rounding {
                    step: a
                        .value
                        .step
                        .as_ref()
                        .and_then(|s| self.minutes(&at(o, "step", s))),
                    minimum: a
                        .value
                        .minimum
                        .as_ref()
                        .and_then(|s| self.minutes(&at(o, "minimum", s))),
                };
                if a.value.per_started_hour == Some(true) {
                    if r.step.is_some() {
                        self.raise(o, Problem::StepAndStartedHour);
                    }
                    r.step = Some(Minutes::whole(60));
                }
                r
            }
        };
        let travel_per_visit = m.travel.as_ref().and_then(|t| {
            self.minutes(&at(
                &t.origin,
                "per_onsite_visit",
                &t.value.per_onsite_visit,
            ))
        });
        let call_out_fee = m.call_out_fee.as_ref().and_then(|a| self.money(a));
        let mut allowances = Vec::new();
        if let Some(a) = &m.allowances {
            for (i, al) in a.value.iter().enumerate() {
                let ao = a.origin.child(&i.to_string());
                let kinds = self.kinds(&ao, al.kinds.as_deref());
                if let Some(minutes) = self.minutes(&at(&ao, "per_month", &al.per_month)) {
                    allowances.push(Allowance {
                        name: al.name.clone(),
                        categories: al.categories.as_ref().map(|c| c.iter().cloned().collect()),
                        kinds,
                        minutes,
                    });
                }
            }
        }
        let mut dates = |d: &Option<At<Vec<Spanned<String>>>>| {
            d.as_ref()
                .map(|a| self.dates(&a.origin, &a.value))
                .unwrap_or_default()
        };
        let amend = (dates(&m.holidays), dates(&m.not_holidays));
        if m.sla.is_none()
            && let Some(a) = m.holidays.as_ref().or(m.not_holidays.as_ref())
        {
            self.raise(&a.origin, Problem::HolidaysWithoutSla);
        }
        let sla = m
            .sla
            .as_ref()
            .and_then(|s| self.sla(s, monthly_fee.is_some(), &amend));
        if self.report.errors_since(before) {
            return None;
        }
        Some(Terms {
            monthly_fee,
            hourly_rate,
            requesters,
            rules,
            rounding,
            travel_per_visit,
            call_out_fee,
            allowances,
            sla: sla.map(Arc::new),
        })
    }

    /// Warns when rule `r` is the first to decide a ticket with no category
    /// and does so by its `categories` filter, which holds it ("held
    /// uncategorised") however the later rules read; returns whether `r`
    /// decides such tickets (or may: a condition that reads the category).
    fn holds_uncategorised(&mut self, o: &Origin, i: usize, r: &RawRule) -> bool {
        match (&r.categories, &r.when) {
            (None, None) => true,
            (None, Some(w)) => w.value.contains("category"),
            (Some(cats), when) => {
                let list = cats
                    .iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                let form = match when {
                    None => format!("ticket.category in [{list}]"),
                    Some(w) => format!("ticket.category in [{list}] && ({})", w.value.trim()),
                };
                let name = r.name.clone().unwrap_or_else(|| format!("rule {}", i + 1));
                self.raise(o, Problem::HoldsUncategorised { name, form });
                true
            }
        }
    }

    fn rule(&mut self, o: &Origin, i: usize, r: &RawRule) -> Option<Rule> {
        let treat_at = at(o, "treat", &r.treat);
        let treat = match treat_at.value.as_str() {
            "billable" => Treatment::Billable,
            "free" => Treatment::Free,
            "covered" => Treatment::Covered,
            "hold" => Treatment::Hold(r.reason.clone().unwrap_or_else(|| "held for review".into())),
            other => {
                self.raise(&treat_at.origin, Problem::NotATreatment(other.to_owned()));
                return None;
            }
        };
        if r.reason.is_some() && !matches!(treat, Treatment::Hold(_)) {
            self.raise(&o.child("reason"), Problem::ReasonWithoutHold);
        }
        let when = match &r.when {
            Some(w) => Some(self.condition(&at(o, "when", w))?),
            None => None,
        };
        Some(Rule {
            name: r.name.clone().unwrap_or_else(|| format!("rule {}", i + 1)),
            categories: r.categories.as_ref().map(|c| c.iter().cloned().collect()),
            when,
            treat,
            bill_as: r.bill_as.clone(),
        })
    }

    /// `kinds: [remote, onsite]`: work kinds, each checked where it is written.
    fn kinds(&mut self, o: &Origin, list: Option<&[Spanned<String>]>) -> Option<Vec<WorkKind>> {
        let list = list?;
        let ko = o.child("kinds");
        if list.is_empty() {
            self.raise(&ko, Problem::EmptyKinds);
        }
        let mut out = Vec::new();
        for (i, k) in list.iter().enumerate() {
            let a = at(&ko, &i.to_string(), k);
            match WorkKind::parse(a.value.trim()) {
                Some(kind) => out.push(kind),
                None => self.raise(&a.origin, Problem::NotAWorkKind(a.value.clone())),
            }
        }
        Some(out)
    }

    /// A list of dates, each checked where it is written.
    fn dates(&mut self, o: &Origin, list: &[Spanned<String>]) -> BTreeSet<NaiveDate> {
        list.iter()
            .enumerate()
            .filter_map(|(i, h)| self.date(&at(o, &i.to_string(), h)))
            .collect()
    }

    fn tz(&mut self, t: &At<String>) -> Option<Tz> {
        self.report.ok(&t.origin, values::time_zone(&t.value))
    }

    fn date(&mut self, d: &At<String>) -> Option<NaiveDate> {
        self.report.ok(&d.origin, values::date(&d.value))
    }

    fn money(&mut self, a: &At<String>) -> Option<Money> {
        let m = values::money(&a.value, self.currency);
        self.report.ok(&a.origin, m)
    }

    fn percent(&mut self, a: &At<String>) -> Option<Decimal> {
        self.report.ok(&a.origin, values::percent(&a.value))
    }

    fn minutes(&mut self, a: &At<String>) -> Option<Minutes> {
        self.report.ok(&a.origin, values::minutes(&a.value))
    }

    fn seconds(&mut self, a: &At<String>) -> Option<i64> {
        self.report.ok(&a.origin, values::seconds(&a.value))
    }

    /// A CEL condition; one that fails on a typical ticket is kept, with a warning.
    fn condition(&mut self, a: &At<String>) -> Option<Arc<dyn engine::condition::Condition>> {
        match CelCondition::compile(&a.value) {
            Ok(c) => {
                if let Err(e) = sample_eval(&c) {
                    self.raise(&a.origin, Problem::ConditionFailsOnSample(e));
                }
                Some(Arc::new(c))
            }
            Err(e) => {
                self.raise(&a.origin, Problem::Verbatim(e));
                None
            }
        }
    }
}

/// Evaluates a condition on a typical ticket so `check` can warn about
/// expressions that would always fail.
fn sample_eval(c: &CelCondition) -> Result<bool, String> {
    use engine::condition::{Condition, TicketFacts};
    use engine::ticket::{Ticket, TicketId};
    let t = Ticket {
        source: None,
        id: TicketId::new("SAMPLE-1"),
        customer: CustomerKey::new("sample"),
        requester: Some("someone@example.com".into()),
        title: "Sample".into(),
        priority: Some("2 normal".into()),
        category: Some("support".into()),
        tags: vec!["remote".into()],
        fields: BTreeMap::new(),
        created_at: chrono::DateTime::UNIX_EPOCH,
        first_response_at: None,
        resolved_at: None,
        states: Vec::new(),
        work: Vec::new(),
    };
    c.eval(&TicketFacts {
        ticket: &t,
        priority: Priority::new(3),
        category: Some("support"),
        state: Some(ClockState::Open),
        period_minutes: Minutes::whole(30),
        onsite_visits: 0,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use engine::calendar::Availability;

    use super::*;
    use crate::compile::read::{Parsed, parse_text};
    use crate::compile::resolve::resolve;
    use crate::diag::Severity;

    /// Builds one file's text; the report holds every stage's diagnostics.
    fn built(text: &str) -> (Built, Report) {
        let file = Path::new("m.yaml");
        let parsed = vec![Parsed {
            file: Arc::from(file),
            raw: parse_text(file, text).expect("parses"),
        }];
        let mut report = Report::default();
        let resolved = resolve(&parsed, &mut report);
        let b = build(&resolved, &mut report);
        (b, report)
    }

    fn errors(report: &Report) -> Vec<String> {
        report
            .diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| format!("{}: {}", d.path, d.message))
            .collect()
    }

    fn mapping(keys: &str) -> String {
        format!(
            "calendars:\n  office:\n    time_zone: Europe/Riga\n    hours: {{mon-fri: \"09:00-17:00\"}}\n\
             value_maps:\n  zammad: {{}}\n\
             customers:\n  acme:\n    currency: EUR\n    time_zone: Europe/Riga\n    value_map: zammad\n    start: 2026-01-01\n{keys}"
        )
    }

    fn acme(b: &Built) -> &Contract {
        b.book
            .contracts
            .get(&CustomerKey::new("acme"))
            .expect("acme is built")
    }

    fn eur(amount: &str) -> Money {
        amount.parse().expect("amount")
    }

    #[test]
    fn a_rate_of_60_an_hour_becomes_the_engines_rate_and_the_fee_is_named_by_level() {
        let (b, report) = built(&mapping(
            "    hourly_rate: \"60.00\"\n    monthly_fee: \"100\"\n    level: gold\n",
        ));
        assert_eq!(errors(&report), Vec::<String>::new());
        let c = acme(&b);
        assert_eq!(c.currency.to_string(), "EUR");
        let (month, terms) = &c.terms[0];
        assert_eq!(month.to_string(), "2026-01");
        assert_eq!(terms.hourly_rate, Some(eur("60.00")));
        let fee = terms.monthly_fee.as_ref().expect("fee");
        assert_eq!(
            (fee.name.as_str(), fee.amount),
            ("Monthly fee (gold)", eur("100"))
        );
        // No rules written: all work is billable.
        assert_eq!(terms.rules.len(), 1);
        assert_eq!(terms.rules[0].treat, Treatment::Billable);
    }

    #[test]
    fn a_card_is_priced_at_the_rate_in_force_the_month_it_was_bought() {
        let (b, report) = built(&mapping(
            "    hourly_rate: \"40.00\"\n\
             \x20   changes:\n      - {effective_from: 2026-03-01, hourly_rate: \"60.00\"}\n\
             \x20   card_sizes:\n      - {punches: 10, discount_percent: \"10\"}\n\
             \x20   cards:\n      - {bought: 2026-02-10, punches: 10}\n      - {bought: 2026-04-10, punches: 10}\n",
        ));
        assert_eq!(errors(&report), Vec::<String>::new());
        let c = acme(&b);
        assert_eq!(c.terms.len(), 2);
        let prices: Vec<Money> = c.cards.iter().map(|c| c.price).collect();
        // 10 punches of 60 minutes, less 10 %.
        assert_eq!(prices, [eur("360.00"), eur("540.00")]);
    }

    #[test]
    fn a_contract_with_an_error_is_left_out_but_its_other_keys_are_still_checked() {
        let (b, report) = built(&format!(
            "{}sources:\n  desk:\n    customers: {{\"Acme Ltd\": acme}}\n",
            mapping(
                "    hourly_rate: \"40.005\"\n    banks:\n      - {name: b, size: 10h, per: week}\n"
            )
        ));
        assert!(b.book.contracts.is_empty());
        let errors = errors(&report);
        assert!(errors.contains(&"customers.acme.hourly_rate: `40.005` has more decimals than EUR allows (2): an invoice line shows 2 decimals, so write \"40.00\" or \"40.01\"".to_owned()), "{errors:?}");
        assert!(errors.contains(&"customers.acme.banks.0.per: `week` is not a bank term: use month, quarter, year or once".to_owned()), "{errors:?}");
        // The source names a customer whose contract was not built.
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("sources.desk.customers")),
            "{errors:?}"
        );
    }

    #[test]
    fn an_sla_runs_on_its_calendar_with_targets_by_priority() {
        let (b, report) = built(&mapping(
            "    hourly_rate: \"40.00\"\n    sla:\n      calendar: office\n      first_response: {1: 1h, all: 8h}\n      warn_at: 50%\n",
        ));
        assert_eq!(errors(&report), Vec::<String>::new());
        let sla = acme(&b).terms[0].1.sla.clone().expect("sla");
        assert!(matches!(sla.calendar.availability, Availability::Weekly(_)));
        assert_eq!(sla.first_response.by_priority[0], Some(3_600));
        assert_eq!(sla.first_response.all, Some(8 * 3_600));
        assert!(matches!(sla.warn, WarnAt::Share(s) if s == Decimal::new(5, 1)));
    }

    #[test]
    fn a_calendar_with_an_error_is_reported_once_where_it_is_defined() {
        let text =
            mapping("    hourly_rate: \"40.00\"\n    sla: {calendar: office, resolution: 2d}\n")
                .replace("mon-fri:", "mon-fry:");
        let (b, report) = built(&text);
        // The customer's terms then have no SLA; the load fails on the
        // calendar's error anyway.
        assert!(acme(&b).terms[0].1.sla.is_none());
        assert_eq!(
            errors(&report),
            [
                "calendars.office.hours.mon-fry: `mon-fry` is not a day or day range: use mon, tue, wed, thu, fri, sat, sun, a range like mon-fri, or a list like sat,sun"
            ]
        );
    }

    #[test]
    fn conditions_are_compiled_and_one_that_fails_on_a_typical_ticket_warns() {
        let (b, report) = built(&mapping(
            "    hourly_rate: \"40.00\"\n    rules:\n      - {when: 'ticket.tags.exists(t, t == \"remote\")', treat: free}\n      - {when: 'ticket.fields.missing == 1', treat: billable}\n",
        ));
        assert_eq!(errors(&report), Vec::<String>::new());
        let warnings: Vec<&str> = report.diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("this condition fails on a typical ticket ("),
            "{warnings:?}"
        );
        assert_eq!(acme(&b).terms[0].1.rules.len(), 2);
        let (_, report) = built(&mapping(
            "    hourly_rate: \"40.00\"\n    rules:\n      - {when: 'ticket.tags ==', treat: free}\n",
        ));
        assert_eq!(errors(&report).len(), 1, "{:?}", errors(&report));
    }

    #[test]
    fn a_customer_that_did_not_resolve_gets_no_contract() {
        let text = mapping("    hourly_rate: \"40.00\"\n")
            .replace("value_map: zammad", "value_map: zammadd");
        let (b, report) = built(&text);
        assert!(b.book.contracts.is_empty());
        assert_eq!(errors(&report).len(), 1, "{:?}", errors(&report));
    }
}
