//! Raw mapping files → engine contracts, collecting every problem on the way.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use chrono::{NaiveDate, Weekday};
use chrono_tz::Tz;
use engine::ContractBook;
use engine::calendar::{Availability, Calendar, DayWindow, WeeklyWindows};
use engine::contract::*;
use engine::minutes::Minutes;
use engine::money::{Currency, Money};
use engine::period::Month;
use engine::ticket::{CustomerKey, WorkKind};
use engine::values::{ClockState, Priority, ValueMap};
use rust_decimal::Decimal;
use serde_saphyr::Spanned;

use crate::cel::CelCondition;
use crate::diag::{At, Diagnostic, Diagnostics, Origin, did_you_mean, nearest};
use crate::duration::parse_duration;
use crate::raw::*;

/// The largest amount of money a mapping may write (fees, rates, prices):
/// beyond it, sums over a year of work would leave exact decimal range.
const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// The longest stretch of work time a mapping may write (bank sizes,
/// rounding steps, punches, allowances): 100 years.
const MAX_TIME_SECONDS: i64 = 100 * 365 * 86_400;
/// The longest SLA target: a year of clock time.
const MAX_TARGET_SECONDS: i64 = 365 * 86_400;
/// Card validity and idle forfeit, in years.
const MAX_YEARS: u32 = 100;

fn at<T: Clone>(owner: &Origin, key: &str, s: &Spanned<T>) -> At<T> {
    At::new(owner, key, s.clone())
}

/// Everything loaded from a mapping file or folder.
pub struct Loaded {
    pub book: ContractBook,
    /// `sources.<name>`: how each helpdesk source's fields are read.
    pub sources: BTreeMap<String, crate::SourceMap>,
    /// `accounts.<target>`: account, item and tax per line kind.
    pub accounts: BTreeMap<String, crate::TargetAccounts>,
    /// Warnings only; errors make [`load`] fail.
    pub warnings: Diagnostics,
    /// Each customer's `review:` policy, where one is written (a customer
    /// without one is [`crate::Review::None`]).
    pub review: BTreeMap<CustomerKey, crate::Review>,
}

struct Parsed {
    file: Arc<Path>,
    raw: RawFile,
}

/// Loads and compiles every `*.yaml` / `*.yml` file of `path` (a file or a folder).
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    let mut diags = Vec::new();
    let files = match list_files(path) {
        Ok(f) => f,
        Err(d) => return Err(Diagnostics(vec![d])),
    };
    let mut parsed = Vec::new();
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => match parse_text(&f, &text) {
                Ok(raw) => parsed.push(Parsed {
                    file: Arc::from(f.as_path()),
                    raw,
                }),
                Err(d) => diags.push(d),
            },
            Err(e) => diags.push(Origin::file_only(&f).error(format!("cannot read the file: {e}"))),
        }
    }
    let mut c = Compiler {
        diags,
        ..Compiler::default()
    };
    let book = c.compile(&parsed);
    let sources = c.sources(&parsed, &book);
    let accounts = c.accounts(&parsed);
    let mut all = Diagnostics(c.diags);
    all.sort();
    if all.has_errors() {
        Err(all)
    } else {
        Ok(Loaded {
            book,
            sources,
            accounts,
            warnings: all,
            review: c.review,
        })
    }
}

fn list_files(path: &Path) -> Result<Vec<std::path::PathBuf>, Diagnostic> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Origin::file_only(path).error(format!("cannot open the mapping: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| Origin::file_only(path).error(format!("cannot list the folder: {e}")))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Origin::file_only(path)
            .error("no mapping files: the folder holds no *.yaml or *.yml file"));
    }
    Ok(files)
}

/// Parses one file's text; a syntax or type error names line, column and key path.
pub fn parse_text(file: &Path, text: &str) -> Result<RawFile, Diagnostic> {
    // Hardening (issue 15): an emptied file (a failed copy, an editor's
    // truncation) would silently drop every customer it held.
    if text.trim().is_empty() {
        return Err(Origin::file_only(file).error(
            "the file is empty: it would drop every customer, template and source it held; \
             write its contents back, or delete the file to drop them",
        ));
    }
    let mut path = String::new();
    let res = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, RawFile>(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    res.map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        let first = e.to_string();
        let first = first.lines().next().unwrap_or_default();
        let msg = first
            .strip_prefix("error: ")
            .unwrap_or(first)
            .split_once(": ")
            .filter(|(head, _)| head.starts_with("line "))
            .map_or(first, |(_, rest)| rest);
        let msg = msg.split(", set DuplicateKeyPolicy").next().unwrap_or(msg);
        // `Spanned` wrappers show up as `value` segments and list items as
        // `[0]`; the admin wrote neither: `cards.value[0].punches` is `cards.0.punches`.
        let path = path.replace('[', ".").replace(']', "");
        let path: Vec<&str> = path
            .split('.')
            .filter(|seg| !seg.is_empty() && *seg != "value" && *seg != "?")
            .collect();
        let path = path.join(".");
        Diagnostic {
            severity: crate::diag::Severity::Error,
            file: Arc::from(file),
            line,
            column,
            message: friendly_parse_message(msg, scalar_at(text, line, column)),
            path,
        }
    })
}

/// The plain scalar written at `line`:`column` (1-based), for messages.
fn scalar_at(text: &str, line: u64, column: u64) -> Option<&str> {
    let l = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let start = l
        .char_indices()
        .nth(usize::try_from(column).ok()?.checked_sub(1)?)?
        .0;
    let rest = &l[start..];
    let end = rest.find(" #").unwrap_or(rest.len());
    let v = rest[..end].trim().trim_end_matches(',').trim();
    (!v.is_empty()).then_some(v)
}

/// Says in the admin's terms what the YAML deserializer found wrong and
/// what would be valid.
fn friendly_parse_message(msg: &str, found: Option<&str>) -> String {
    let found = found.map_or_else(String::new, |f| format!("`{f}` "));
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((key, expected)) = rest.split_once("`, expected one of ")
    {
        let valid: Vec<&str> = expected.split(", ").map(|v| v.trim_matches('`')).collect();
        return format!(
            "unknown key `{key}`{}; valid keys here: {}",
            did_you_mean(key, valid.iter().copied()),
            valid.join(", ")
        );
    }
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((key, _)) = rest.split_once('`')
    {
        return format!("unknown key `{key}`: no keys are allowed here");
    }
    if let Some(ty) = msg.strip_prefix("invalid ")
        && matches!(ty, "u8" | "u16" | "u32" | "u64")
    {
        let max = match ty {
            "u8" => u64::from(u8::MAX),
            "u16" => u64::from(u16::MAX),
            "u32" => u64::from(u32::MAX),
            _ => u64::MAX,
        };
        return format!("{found}is not a whole number from 0 to {max}: write digits, such as 20");
    }
    if let Some(key) = msg.strip_prefix("duplicate mapping key: ") {
        return format!("`{key}` is written twice here: a key may appear only once");
    }
    if msg == "expected string scalar" {
        return format!(
            "{found}is not valid here: expected a single value (text, a quoted amount such as \"350.00\", a date or a duration), not a list or a map"
        );
    }
    if let Some(name) = msg.strip_prefix("data did not match any variant of untagged enum ") {
        let valid = match name.trim() {
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
            _ => return msg.to_owned(),
        };
        return format!("{found}is not valid here: expected {valid}");
    }
    msg.to_owned()
}

#[derive(Default)]
struct Compiler {
    diags: Vec<Diagnostic>,
    calendars: HashMap<String, Arc<Calendar>>,
    /// Calendars defined with errors (already reported): references to them
    /// are not reported again as undefined.
    broken_calendars: HashSet<String>,
    value_maps: HashMap<String, Arc<ValueMap>>,
    /// The currency of the contract being compiled: its amounts may have no
    /// more decimals than it allows.
    currency: Option<Currency>,
    /// `review:` by customer (review.rs), kept beside the engine's book.
    review: BTreeMap<CustomerKey, crate::Review>,
}

fn origin_of<T>(file: &Arc<Path>, path: String, s: &Spanned<T>) -> Origin {
    Origin {
        file: file.clone(),
        line: s.referenced.line(),
        column: s.referenced.column(),
        path,
    }
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let mut v: Vec<&str> = it.map(String::as_str).collect();
    v.sort_unstable();
    if v.is_empty() {
        "none is defined".into()
    } else {
        v.join(", ")
    }
}

impl Compiler {
    fn err(&mut self, o: &Origin, msg: impl Into<String>) {
        self.diags.push(o.error(msg));
    }

    /// Every `accounts.<target>` section, targets unique across the files.
    fn accounts(&mut self, files: &[Parsed]) -> BTreeMap<String, crate::TargetAccounts> {
        let mut out: BTreeMap<String, crate::TargetAccounts> = BTreeMap::new();
        for p in files {
            for (target, s) in &p.raw.accounts {
                let o = origin_of(&p.file, format!("accounts.{target}"), s);
                if let Some(prev) = out.get(target) {
                    let msg = format!(
                        "`{target}` is already given at {}:{}; each target's `accounts` must be in one place",
                        prev.origin.file.display(),
                        prev.origin.line
                    );
                    self.err(&o, msg);
                    continue;
                }
                let t = crate::accounts::compile_target(&o, &s.value, &mut self.diags);
                out.insert(target.clone(), t);
            }
        }
        out
    }

    /// Every `sources.<name>` section, names unique across the files.
    fn sources(
        &mut self,
        files: &[Parsed],
        book: &ContractBook,
    ) -> BTreeMap<String, crate::SourceMap> {
        let contracts: Vec<&str> = book.contracts.keys().map(|k| k.as_str()).collect();
        let mut seen: BTreeMap<&str, Origin> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for p in files {
            for (name, s) in &p.raw.sources {
                let o = origin_of(&p.file, format!("sources.{name}"), s);
                if let Some(prev) = seen.get(name.as_str()) {
                    let msg = format!(
                        "`{name}` is already defined at {}:{}; names in `sources` must be unique across the mapping files",
                        prev.file.display(),
                        prev.line
                    );
                    self.err(&o, msg);
                    continue;
                }
                let map = crate::sources::compile_source(&o, &s.value, &contracts, &mut self.diags);
                seen.insert(name, o);
                out.insert(name.clone(), map);
            }
        }
        out
    }

    fn compile(&mut self, files: &[Parsed]) -> ContractBook {
        // Names are global: collect them, refusing duplicates.
        let mut cal_raw: BTreeMap<String, (Origin, &RawCalendar)> = BTreeMap::new();
        let mut vm_raw: BTreeMap<String, (Origin, &RawValueMap)> = BTreeMap::new();
        let mut templates: BTreeMap<String, (Origin, &RawContract)> = BTreeMap::new();
        let mut customers: BTreeMap<String, (Origin, &RawContract)> = BTreeMap::new();
        for p in files {
            macro_rules! collect {
                ($src:expr, $dst:ident, $section:literal) => {
                    for (name, s) in &$src {
                        let o = origin_of(&p.file, format!("{}.{name}", $section), s);
                        if let Some((prev, _)) = $dst.get(name) {
                            let msg = format!(
                                "`{name}` is already defined at {}:{}; names in `{}` must be unique across the mapping files",
                                prev.file.display(), prev.line, $section
                            );
                            self.err(&o, msg);
                        } else {
                            $dst.insert(name.clone(), (o, &s.value));
                        }
                    }
                };
            }
            collect!(p.raw.calendars, cal_raw, "calendars");
            collect!(p.raw.value_maps, vm_raw, "value_maps");
            collect!(p.raw.templates, templates, "templates");
            collect!(p.raw.customers, customers, "customers");
        }
        for (name, (o, raw)) in &cal_raw {
            match self.calendar(name, o, raw) {
                Some(cal) => {
                    self.calendars.insert(name.clone(), Arc::new(cal));
                }
                None => {
                    self.broken_calendars.insert(name.clone());
                }
            }
        }
        for (name, (o, raw)) in &vm_raw {
            let vm = self.value_map(name, o, raw);
            self.value_maps.insert(name.clone(), Arc::new(vm));
        }
        let mut used_templates = HashSet::new();
        let mut book = ContractBook::default();
        for (key, (o, raw)) in &customers {
            let Some(merged) = self.resolve(key, o, raw, &templates, &mut used_templates) else {
                continue;
            };
            if let Some(r) = &merged.review
                && let Some(policy) = crate::review::compile(r, &mut self.diags)
            {
                self.review.insert(CustomerKey::new(key.as_str()), policy);
            }
            if let Some(contract) = self.contract(key, o, &merged) {
                book.contracts
                    .insert(CustomerKey::new(key.as_str()), contract);
            }
        }
        for (name, (o, _)) in &templates {
            if !used_templates.contains(name) {
                self.diags
                    .push(o.warning(format!("template `{name}` is not used by any customer")));
            }
        }
        book
    }

    /// Template chain (deepest first) overlaid by the customer's own keys.
    fn resolve(
        &mut self,
        key: &str,
        o: &Origin,
        raw: &RawContract,
        templates: &BTreeMap<String, (Origin, &RawContract)>,
        used: &mut HashSet<String>,
    ) -> Option<Merged> {
        let mut chain: Vec<(Origin, &RawContract)> = vec![(o.clone(), raw)];
        let mut seen = vec![format!("customers.{key}")];
        let mut current = raw;
        let mut current_origin = o.clone();
        while let Some(t) = &current.template {
            let name = &t.value;
            let t_origin = at(&current_origin, "template", t).origin;
            let Some((to, traw)) = templates.get(name) else {
                self.err(
                    &t_origin,
                    format!(
                        "no template named `{name}`{}; defined templates: {}",
                        did_you_mean(name, templates.keys().map(String::as_str)),
                        names(templates.keys())
                    ),
                );
                return None;
            };
            used.insert(name.clone());
            let id = format!("templates.{name}");
            if seen.contains(&id) {
                self.err(
                    &t_origin,
                    format!(
                        "template chain loops back to `{name}`: {} → {id}",
                        seen.join(" → ")
                    ),
                );
                return None;
            }
            seen.push(id);
            chain.push((to.clone(), traw));
            current = traw;
            current_origin = to.clone();
        }
        let mut merged = Merged::default();
        for (origin, layer) in chain.iter().rev() {
            if let Some(e) = &layer.effective_from {
                self.err(
                    &at(origin, "effective_from", e).origin,
                    "`effective_from` belongs in an entry of `changes`",
                );
            }
            merged.overlay(origin, layer);
        }
        Some(merged)
    }

    fn contract(&mut self, key: &str, o: &Origin, m: &Merged) -> Option<Contract> {
        let before = self.diags.len();
        let missing = |what: &str, example: &str| {
            o.error(format!(
                "missing `{what}` (set it here or in the template), for example `{what}: {example}`"
            ))
        };
        let currency = match &m.currency {
            Some(c) => c
                .value
                .parse::<Currency>()
                .map_err(|e| self.err(&c.origin, e.to_string()))
                .ok(),
            None => {
                self.diags.push(missing("currency", "EUR"));
                None
            }
        };
        self.currency = currency;
        let tz = match &m.time_zone {
            Some(t) => self.tz(t),
            None => {
                self.diags.push(missing("time_zone", "Europe/Riga"));
                None
            }
        };
        let values = match &m.value_map {
            Some(v) => match self.value_maps.get(&v.value) {
                Some(vm) => Some(vm.clone()),
                None => {
                    let mut defined: Vec<&String> = self.value_maps.keys().collect();
                    defined.sort();
                    let msg = format!(
                        "no value map named `{}`{}; defined value maps: {}",
                        v.value,
                        did_you_mean(&v.value, defined.iter().map(|n| n.as_str())),
                        names(defined.into_iter())
                    );
                    self.err(&v.origin, msg);
                    None
                }
            },
            None => {
                self.diags.push(missing("value_map", "zammad-defaults"));
                None
            }
        };
        let start = match &m.start {
            Some(s) => self.date(s),
            None => {
                self.diags.push(missing("start", "2026-01-01"));
                None
            }
        };
        let end = m.end.as_ref().and_then(|e| self.date(e));
        let base_terms = self.terms(o, m);
        let mut terms = vec![(
            start.map_or(Month::new(2000, 1).expect("valid"), Month::of),
            base_terms,
        )];
        if let Some(changes) = &m.changes {
            let mut last: Option<Month> = start.map(Month::of);
            // Each change builds on the terms before it.
            let mut current = m.clone();
            for (i, change) in changes.value.iter().enumerate() {
                let co = changes.origin.child(&i.to_string());
                let Some(eff) = &change.effective_from else {
                    self.err(
                        &co,
                        "a change needs `effective_from: YYYY-MM-01`, the first day it applies",
                    );
                    continue;
                };
                let eff_at = at(&co, "effective_from", eff);
                let Some(date) = self.date(&eff_at) else {
                    continue;
                };
                if date != Month::of(date).first_day() {
                    self.err(
                        &eff_at.origin,
                        format!(
                            "terms change at the start of a billing month: use {}",
                            Month::of(date).first_day()
                        ),
                    );
                    continue;
                }
                let month = Month::of(date);
                if last.is_some_and(|l| month <= l) {
                    self.err(
                        &eff_at.origin,
                        "changes must come after the contract's start month and be listed in ascending `effective_from` order, one per month",
                    );
                    continue;
                }
                last = Some(month);
                let mut layered = Merged::default();
                layered.overlay(&co, change);
                for k in CONTRACT_KEYS {
                    let set = field_is_set(&layered, k);
                    if set && *k != "effective_from" && !TERM_KEYS.contains(k) {
                        self.err(
                            &co.child(k),
                            format!(
                                "`{k}` cannot change by date; a change may set: {}",
                                TERM_KEYS.join(", ")
                            ),
                        );
                    }
                }
                current.overlay(&co, change);
                let t = self.terms(&co, &current);
                terms.push((month, t));
            }
        }
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
        if self.diags[before..]
            .iter()
            .any(|d| d.severity == crate::diag::Severity::Error)
        {
            return None;
        }
        Some(Contract {
            customer: CustomerKey::new(key),
            name: m
                .template
                .as_ref()
                .map_or_else(|| key.to_owned(), |t| t.value.clone()),
            currency: currency?,
            tz: tz?,
            values: values?,
            start: start?,
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

    /// Items whose sale opens a card or a bank.
    fn prepaid(&mut self, m: &Merged) -> BTreeMap<String, Prepaid> {
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
            let o = origin_of(&a.origin.file, format!("{}.{item}", a.origin.path), p);
            let raw = &p.value;
            if item.trim().is_empty() {
                self.err(&o, "an item code is empty: write the article or product code the accounting system uses");
                continue;
            }
            let on = match raw.on.as_ref().map(|v| v.value.as_str()) {
                None | Some("paid") => Some(SaleOn::Paid),
                Some("issued") => Some(SaleOn::Issued),
                Some(other) => {
                    self.err(
                        &o.child("on"),
                        format!("`{other}` is not when a sale counts: use paid or issued"),
                    );
                    None
                }
            };
            let renew = match raw.renew.as_ref().map(|v| v.value.as_str()) {
                None | Some("none") => Some(Renew::Nothing),
                Some("note") => Some(Renew::Note),
                Some("draft") => Some(Renew::NoteAndDraft),
                Some(other) => {
                    self.err(
                        &o.child("renew"),
                        format!("`{other}` is not a renewal: use none, note or draft (a note and a draft for the next one)"),
                    );
                    None
                }
            };
            let renew_to = match raw.renew_to.as_ref().map(|v| v.value.as_str()) {
                None | Some("note") => Some(RenewTo::Note),
                Some("ticket") => Some(RenewTo::Ticket),
                Some(other) => {
                    self.err(
                        &o.child("renew_to"),
                        format!("`{other}` is not where a renewal suggestion goes: use note (on the customer's next ticket) or ticket (a ticket of its own)"),
                    );
                    None
                }
            };
            if raw.renew_to.is_some() && renew == Some(Renew::Nothing) {
                self.err(
                    &o.child("renew_to"),
                    "`renew_to` says where a renewal suggestion goes, and `renew` is none: set `renew: note` or `renew: draft`, or leave `renew_to` out",
                );
            }
            let sells = match (raw.card, &raw.bank) {
                (Some(_), Some(_)) | (None, None) => {
                    self.err(
                        &o,
                        "an item sells either `card: PUNCHES` or `bank: TIME` (such as 10h), exactly one",
                    );
                    None
                }
                (Some(0), None) => {
                    self.err(&o.child("card"), "a card has at least one punch");
                    None
                }
                (Some(punches), None) => {
                    for (field, set) in [
                        ("valid_months", raw.valid_months.is_some()),
                        ("low_balance", raw.low_balance.is_some()),
                    ] {
                        if set {
                            self.err(
                                &o.child(field),
                                format!(
                                    "`{field}` applies to a bank; a card's terms are `card_terms`"
                                ),
                            );
                        }
                    }
                    let discount = match &raw.discount_percent {
                        Some(d) => self.percent(&at(&o, "discount_percent", d)),
                        None => match sizes.iter().find(|(n, _)| *n == punches) {
                            Some((_, d)) => *d,
                            None => {
                                self.err(
                                    &o.child("card"),
                                    format!("no card of {punches} punches is in `card_sizes`: give `discount_percent` (0 for none)"),
                                );
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
                        self.err(&o.child("discount_percent"), "`discount_percent` applies to a card; a bank's price is its invoice line");
                    }
                    if raw.valid_months == Some(0) {
                        self.err(&o.child("valid_months"), "`valid_months` is at least 1; leave it out for a bank valid until used up");
                    }
                    let minutes = self.minutes(&at(&o, "bank", time));
                    let low_balance = raw
                        .low_balance
                        .as_ref()
                        .and_then(|d| self.minutes(&at(&o, "low_balance", d)));
                    match minutes {
                        Some(m) if m.is_zero() => {
                            self.err(&o.child("bank"), "a bank holds some time, such as 10h");
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

    /// The report's language and cadence; an unknown value names the valid ones.
    fn report_terms(&mut self, m: &Merged) -> ReportTerms {
        let mut terms = ReportTerms::default();
        if let Some(l) = &m.language {
            match Language::parse(l.value.trim()) {
                Some(lang) => terms.language = lang,
                None => {
                    let valid: Vec<&str> = Language::ALL.iter().map(|l| l.code()).collect();
                    self.err(
                        &l.origin,
                        format!(
                            "unknown language `{}`; reports are written in: {}",
                            l.value,
                            valid.join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(e) = &m.report_every {
            match Cadence::parse(e.value.trim()) {
                Some(c) => terms.every = c,
                None => self.err(
                    &e.origin,
                    format!(
                        "unknown report cadence `{}`; valid: {}",
                        e.value,
                        Cadence::NAMES.join(", ")
                    ),
                ),
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
                    self.err(
                        &o.child(key),
                        format!("`{key}` is empty: write the id the accounting system uses, or leave the key out"),
                    );
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

    fn tz(&mut self, t: &At<String>) -> Option<Tz> {
        match t.value.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                let zones = || chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
                let mut near = nearest(&t.value, zones(), 3);
                if near.is_empty() {
                    // Not a near miss: list zones of the same region instead.
                    let region = t.value.split('/').next().unwrap_or_default().to_lowercase();
                    near = zones()
                        .filter(|n| {
                            !region.is_empty()
                                && n.to_lowercase().starts_with(&format!("{region}/"))
                        })
                        .take(5)
                        .collect();
                }
                let hint = match near.split_first() {
                    Some((first, [])) => format!("did you mean {first}? "),
                    Some(_) => format!("did you mean one of {}? ", near.join(", ")),
                    None => String::new(),
                };
                self.err(
                    &t.origin,
                    format!(
                        "unknown time zone `{}`: {hint}Write an IANA time zone name such as Europe/Riga, Europe/Stockholm or UTC",
                        t.value
                    ),
                );
                None
            }
        }
    }

    fn date(&mut self, d: &At<String>) -> Option<NaiveDate> {
        match NaiveDate::parse_from_str(d.value.trim(), "%Y-%m-%d") {
            Ok(v) => Some(v),
            Err(_) => {
                self.err(
                    &d.origin,
                    format!(
                        "`{}` is not a date: write YYYY-MM-DD, for example 2026-01-01",
                        d.value
                    ),
                );
                None
            }
        }
    }

    fn money(&mut self, a: &At<String>) -> Option<Money> {
        match a.value.parse::<Money>() {
            Ok(m) if m.amount() > Decimal::from(MAX_AMOUNT) => {
                self.err(
                    &a.origin,
                    format!(
                        "`{}` is too large: amounts here are at most {MAX_AMOUNT}",
                        a.value
                    ),
                );
                None
            }
            Ok(m) if m.amount() >= Decimal::ZERO => match self.currency {
                // A ledger recomputes quantity × unit price: an amount it
                // cannot hold would make its total differ from ours.
                Some(cur) if !cur.fits(m) => {
                    let d = cur.decimals();
                    let shown = |s| {
                        let mut x = m.amount().round_dp_with_strategy(d, s);
                        x.rescale(d);
                        x
                    };
                    let (down, up) = (
                        shown(rust_decimal::RoundingStrategy::ToZero),
                        shown(rust_decimal::RoundingStrategy::AwayFromZero),
                    );
                    self.err(
                        &a.origin,
                        format!(
                            "`{}` has more decimals than {cur} allows ({d}): an invoice line shows {d} decimals, so write \"{down}\" or \"{up}\"",
                            a.value
                        ),
                    );
                    None
                }
                _ => Some(m),
            },
            Ok(_) => {
                self.err(
                    &a.origin,
                    format!("`{}` is negative: amounts here are zero or more", a.value),
                );
                None
            }
            Err(_) => {
                self.err(
                    &a.origin,
                    format!(
                        "`{}` is not an amount: write a quoted decimal such as \"350.00\"",
                        a.value
                    ),
                );
                None
            }
        }
    }

    fn percent(&mut self, a: &At<String>) -> Option<Decimal> {
        match Decimal::from_str_exact(a.value.trim().trim_end_matches('%').trim()) {
            Ok(d) if (Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&d) => Some(d),
            _ => {
                self.err(
                    &a.origin,
                    format!(
                        "`{}` is not a percentage between 0 and 100, such as \"10\"",
                        a.value
                    ),
                );
                None
            }
        }
    }

    fn minutes(&mut self, a: &At<String>) -> Option<Minutes> {
        match parse_duration(&a.value) {
            Ok(secs) if secs > MAX_TIME_SECONDS => {
                self.err(
                    &a.origin,
                    format!(
                        "`{}` is too long: durations here are at most {}h (100 years)",
                        a.value,
                        MAX_TIME_SECONDS / 3_600
                    ),
                );
                None
            }
            Ok(secs) => Minutes::new(Decimal::from(secs) / Decimal::from(60)).ok(),
            Err(e) => {
                self.err(&a.origin, e);
                None
            }
        }
    }

    fn seconds(&mut self, a: &At<String>) -> Option<i64> {
        parse_duration(&a.value)
            .map_err(|e| self.err(&a.origin, e))
            .ok()
    }

    fn condition(&mut self, a: &At<String>) -> Option<Arc<dyn engine::condition::Condition>> {
        match CelCondition::compile(&a.value) {
            Ok(c) => {
                if let Err(e) = sample_eval(&c) {
                    self.diags.push(a.origin.warning(format!(
                        "this condition fails on a typical ticket ({e}); where it fails it counts as not applying"
                    )));
                }
                Some(Arc::new(c))
            }
            Err(e) => {
                self.err(&a.origin, e);
                None
            }
        }
    }

    fn calendar(&mut self, name: &str, o: &Origin, raw: &RawCalendar) -> Option<Calendar> {
        let before = self.diags.len();
        let tz = self.tz(&at(o, "time_zone", &raw.time_zone));
        let hours = at(o, "hours", &raw.hours);
        let availability = match &hours.value {
            RawHours::Text(t) if t.trim() == "24/7" => Availability::Always,
            RawHours::Text(t) => {
                self.err(&hours.origin, format!("`{t}` is not valid here: write `24/7` or windows per day such as `mon-fri: \"09:00-17:00\"`"));
                Availability::Always
            }
            RawHours::Days(days) => Availability::Weekly(self.weekly(&hours.origin, days)),
        };
        if matches!(availability, Availability::Always)
            && (!raw.holidays.is_empty()
                || raw.holidays_ical.is_some()
                || raw.public_holidays.is_some())
        {
            self.diags.push(o.child("holidays").warning(
                "a 24/7 calendar is open on holidays too: these holidays do not stop the clock (use `maintenance` for closed windows)",
            ));
        }
        let mut holidays = BTreeSet::new();
        for (i, h) in raw.holidays.iter().enumerate() {
            let a = at(&o.child("holidays"), &i.to_string(), h);
            if let Some(d) = self.date(&a) {
                holidays.insert(d);
            }
        }
        if let Some(ical) = &raw.holidays_ical {
            let a = at(o, "holidays_ical", ical);
            let base = o.file.parent().unwrap_or(Path::new("."));
            let path = base.join(&a.value);
            match std::fs::read_to_string(&path) {
                Ok(text) => match crate::ical::all_day_dates(&text) {
                    Ok(dates) => holidays.extend(dates),
                    Err(e) => self.err(&a.origin, format!("{}: {e}", path.display())),
                },
                Err(e) => self.err(&a.origin, format!("cannot read {}: {e}", path.display())),
            }
        }
        let public = raw.public_holidays.as_ref().and_then(|p| {
            let a = at(o, "public_holidays", p);
            a.value
                .parse::<engine::holidays::PublicHolidays>()
                .map_err(|e| self.err(&a.origin, e.to_string()))
                .ok()
        });
        let not_holidays = self.dates(&o.child("not_holidays"), &raw.not_holidays);
        if !not_holidays.is_empty() && raw.public_holidays.is_none() && raw.holidays_ical.is_none()
        {
            self.diags.push(o.child("not_holidays").warning(
                "`not_holidays` reopens days of `public_holidays` or `holidays_ical`, and this calendar has neither: remove the dates from `holidays` instead",
            ));
        }
        let maintenance = match &raw.maintenance {
            Some(mw) => {
                let a = at(o, "maintenance", mw);
                self.weekly(&a.origin, &a.value)
            }
            None => WeeklyWindows::default(),
        };
        if self.diags[before..]
            .iter()
            .any(|d| d.severity == crate::diag::Severity::Error)
        {
            return None;
        }
        Some(
            Calendar::new(name, tz?, availability, holidays, maintenance)
                .with_public_holidays(public, not_holidays),
        )
    }

    /// `kinds: [remote, onsite]`: work kinds, each checked where it is written.
    fn kinds(&mut self, o: &Origin, list: Option<&[Spanned<String>]>) -> Option<Vec<WorkKind>> {
        let list = list?;
        let ko = o.child("kinds");
        if list.is_empty() {
            self.err(&ko, "an empty `kinds` list covers no work: name some of remote, onsite, phone, or leave `kinds` out to cover every kind");
        }
        let mut out = Vec::new();
        for (i, k) in list.iter().enumerate() {
            let a = at(&ko, &i.to_string(), k);
            match WorkKind::parse(a.value.trim()) {
                Some(kind) => out.push(kind),
                None => {
                    let hint = did_you_mean(&a.value, ["remote", "onsite", "phone"].into_iter());
                    self.err(
                        &a.origin,
                        format!(
                            "`{}` is not a work kind{hint}: use remote, onsite or phone",
                            a.value
                        ),
                    );
                }
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

    fn weekly(&mut self, o: &Origin, days: &BTreeMap<String, OneOrMany>) -> WeeklyWindows {
        let mut w = WeeklyWindows::default();
        for (key, windows) in days {
            let ko = o.child(key);
            let Some(list) = parse_days(key) else {
                self.err(&ko, format!("`{key}` is not a day or day range: use mon, tue, wed, thu, fri, sat, sun, a range like mon-fri, or a list like sat,sun"));
                continue;
            };
            for text in windows.items() {
                match DayWindow::parse(text) {
                    Ok(win) => list.iter().for_each(|d| w.add(*d, win)),
                    Err(e) => self.err(&ko, e.to_string()),
                }
            }
        }
        w
    }

    fn value_map(&mut self, name: &str, o: &Origin, raw: &RawValueMap) -> ValueMap {
        let mut vm = ValueMap {
            name: name.to_owned(),
            ..ValueMap::default()
        };
        for (rawp, p) in &raw.priority {
            let a = at(&o.child("priority"), rawp, p);
            match Priority::new(a.value) {
                Some(pr) => {
                    vm.priority.insert(rawp.clone(), pr);
                }
                None => self.err(&a.origin, format!("priority {} is out of range: canonical priorities are 1 (critical) to 4 (low)", a.value)),
            }
        }
        for (raws, s) in &raw.state {
            let a = at(&o.child("state"), raws, s);
            match ClockState::parse(&a.value) {
                Some(st) => {
                    vm.state.insert(raws.clone(), st);
                }
                None => self.err(
                    &a.origin,
                    format!(
                        "`{}` is not a canonical state: use open, paused or resolved",
                        a.value
                    ),
                ),
            }
        }
        vm.category = raw.category.clone().into_iter().collect();
        vm
    }

    /// The terms of one version; `None` if any of them is invalid.
    fn terms(&mut self, owner: &Origin, m: &Merged) -> Option<Terms> {
        let before = self.diags.len();
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
                    self.err(
                        &a.origin,
                        format!("`{s}` is not valid: write `anyone` or a list of e-mail addresses"),
                    );
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
                    let ro = origin_of(&a.origin.file, format!("{}.{i}", a.origin.path), r);
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
            self.err(&o, format!("rule `{}` bills work but no `hourly_rate` is set: add `hourly_rate: \"40.00\"` or make the rule `treat: covered`", r.name));
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
                        self.err(
                            o,
                            "give either `step` or `per_started_hour: true`, not both",
                        );
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
            self.diags.push(a.origin.warning(
                "`holidays` and `not_holidays` change this contract's SLA calendar, and it has no `sla`: they change nothing",
            ));
        }
        let sla = m
            .sla
            .as_ref()
            .and_then(|s| self.sla(s, monthly_fee.is_some(), &amend));
        if self.diags[before..]
            .iter()
            .any(|d| d.severity == crate::diag::Severity::Error)
        {
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
                self.diags.push(o.warning(format!(
                    "rule `{name}` has `categories`, so a ticket with no category stops here and is held (\"uncategorised\"): no rule below is tried for it. \
                     To let such tickets go on to the rules below, write the filter as a condition instead: `when: '{form}'` (no `categories`). \
                     To hold them on purpose, say so above this rule: `- when: ticket.category == null` with `treat: hold` and `reason: uncategorised`"
                )));
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
                self.err(
                    &treat_at.origin,
                    format!("`{other}` is not a treatment: use billable, free, covered or hold"),
                );
                return None;
            }
        };
        if r.reason.is_some() && !matches!(treat, Treatment::Hold(_)) {
            self.err(&o.child("reason"), "`reason` only goes with `treat: hold`");
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

    /// An SLA target: clock time up to a year.
    fn target(&mut self, a: &At<String>) -> Option<i64> {
        let secs = self.seconds(a)?;
        if secs > MAX_TARGET_SECONDS {
            self.err(
                &a.origin,
                format!(
                    "`{}` is too long for an SLA target: at most {}d of clock time",
                    a.value,
                    MAX_TARGET_SECONDS / 86_400
                ),
            );
            return None;
        }
        Some(secs)
    }

    fn targets(&mut self, a: &At<RawTargets>) -> Targets {
        let mut t = Targets::default();
        match &a.value {
            RawTargets::All(d) => {
                t.all = self.target(&At {
                    origin: a.origin.clone(),
                    value: d.clone(),
                })
            }
            RawTargets::ByPriority(map) => {
                for (k, d) in map {
                    let k = &k.to_string();
                    let v = self.target(&At {
                        origin: a.origin.child(k),
                        value: d.clone(),
                    });
                    match (k.as_str(), k.parse::<u8>().ok().and_then(Priority::new)) {
                        ("all", _) => t.all = v,
                        (_, Some(p)) => t.by_priority[usize::from(p.get() - 1)] = v,
                        _ => self.err(
                            &a.origin.child(k),
                            format!("`{k}` is not a priority: use 1, 2, 3, 4 or all"),
                        ),
                    }
                }
            }
        }
        t
    }

    /// `amend`: the contract's own days closed and reopened on top of the calendar's.
    fn sla(
        &mut self,
        s: &At<RawSla>,
        has_fee: bool,
        amend: &(BTreeSet<NaiveDate>, BTreeSet<NaiveDate>),
    ) -> Option<SlaTerms> {
        let o = &s.origin;
        let raw = &s.value;
        let cal_at = at(o, "calendar", &raw.calendar);
        let calendar = match self.calendars.get(&cal_at.value) {
            Some(c) => Some(c.clone()),
            // Its own errors are reported where it is defined.
            None if self.broken_calendars.contains(&cal_at.value) => None,
            None => {
                let defined: BTreeSet<&String> = self
                    .calendars
                    .keys()
                    .chain(self.broken_calendars.iter())
                    .collect();
                let msg = format!(
                    "no calendar named `{}`{}; defined calendars: {}",
                    cal_at.value,
                    did_you_mean(&cal_at.value, defined.iter().map(|n| n.as_str())),
                    names(defined.into_iter())
                );
                self.err(&cal_at.origin, msg);
                None
            }
        };
        // The contract's own holidays, on top of the shared calendar's.
        let (add, remove) = amend;
        let calendar = match calendar {
            Some(c) if !add.is_empty() || !remove.is_empty() => {
                if matches!(c.availability, Availability::Always) {
                    self.diags.push(cal_at.origin.warning(
                        "this calendar is 24/7, open on holidays too: the contract's `holidays` and `not_holidays` change nothing",
                    ));
                }
                Some(Arc::new(c.amended(add, remove)))
            }
            other => other,
        };
        let before_targets = self.diags.len();
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
                self.err(
                    &at(o, "warn_before", b).origin,
                    "give either `warn_at` or `warn_before`, not both",
                );
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
                        self.err(
                            &a.origin,
                            format!(
                                "`{}` is not a share of the target: write a percentage such as 75%",
                                a.value
                            ),
                        );
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
                    self.err(
                        &a.origin,
                        format!("`{other}` is not valid: use continue or restart"),
                    );
                    Reopen::Continue
                }
            },
        };
        let credit = raw.service_credit.as_ref().and_then(|c| {
            let co = o.child("service_credit");
            if !has_fee {
                self.err(
                    &co,
                    "a service credit is a share of the monthly fee, but no `monthly_fee` is set",
                );
            }
            let mut priorities = BTreeSet::new();
            for p in &c.priorities {
                match Priority::new(*p) {
                    Some(p) => {
                        priorities.insert(p);
                    }
                    None => self.err(
                        &co.child("priorities"),
                        format!("{p} is not a priority: use 1 to 4"),
                    ),
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
            && self.diags[before_targets..]
                .iter()
                .all(|d| d.severity != crate::diag::Severity::Error)
        {
            self.diags
                .push(o.warning("the SLA sets no target: add `first_response` or `resolution`"));
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

    fn banks(&mut self, m: &Merged) -> Vec<Bank> {
        let Some(a) = &m.banks else { return Vec::new() };
        let mut out = Vec::new();
        for (i, b) in a.value.iter().enumerate() {
            let o = origin_of(&a.origin.file, format!("{}.{i}", a.origin.path), b);
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
                        self.err(&o, "a bank with `per: once` needs `from: YYYY-MM-DD`, the day it was bought");
                        None
                    }
                },
                other => {
                    self.err(
                        &per.origin,
                        format!("`{other}` is not a bank term: use month, quarter, year or once"),
                    );
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
                    self.err(&o.child(field), format!("`{field}` only applies to a prepaid block (`per: once`); a recurring bank refills every term"));
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
                        self.err(
                            &d.origin,
                            format!("`{other}` is not a way to draw: use `rounded` (the ticket's rounded time, the default) or `actual` (the logged time, before rounding)"),
                        );
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

    fn card_terms(&mut self, m: &Merged) -> CardTerms {
        let mut t = CardTerms::default();
        if let Some(a) = &m.card_terms {
            if let Some(p) = &a.value.punch
                && let Some(min) = self.minutes(&at(&a.origin, "punch", p))
            {
                if min.is_zero() {
                    self.err(
                        &a.origin.child("punch"),
                        "a punch must cover some time, such as 60m",
                    );
                } else {
                    t.punch = min;
                }
            }
            for (key, years) in [
                ("valid_years", a.value.valid_years),
                ("forfeit_after_idle_years", a.value.forfeit_after_idle_years),
            ] {
                if years.is_some_and(|y| !(1..=MAX_YEARS).contains(&y)) {
                    self.err(
                        &a.origin.child(key),
                        format!("`{key}` is a number of years from 1 to {MAX_YEARS}"),
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
    fn cards(
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
            let o = origin_of(&a.origin.file, format!("{}.{i}", a.origin.path), c);
            let raw = &c.value;
            let bought = self.date(&at(&o, "bought", &raw.bought));
            let punches = at(&o, "punches", &raw.punches);
            let discount = if sizes.is_empty() {
                Some(Decimal::ZERO)
            } else {
                match sizes.iter().find(|(n, _)| *n == punches.value) {
                    Some((_, d)) => *d,
                    None => {
                        let valid: Vec<String> = sizes.iter().map(|(n, _)| n.to_string()).collect();
                        self.err(
                            &punches.origin,
                            format!(
                                "no card of {} punches is sold: `card_sizes` lists {}",
                                punches.value,
                                valid.join(", ")
                            ),
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
                self.err(&o.child("last_drawn"), "`last_drawn` describes history before the bridge: give `opening_balance` with it");
            }
            if let Some(ob) = raw.opening_balance
                && ob > punches.value
            {
                self.err(
                    &o.child("opening_balance"),
                    format!(
                        "the opening balance ({ob}) is more than the card's {} punches",
                        punches.value
                    ),
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
                    self.err(
                        &o,
                        "cards are priced from the hourly rate: set `hourly_rate`",
                    );
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

    fn add_ons(&mut self, m: &Merged, has_hourly_rate: bool) -> Vec<AddOn> {
        let Some(refs) = &m.add_ons else {
            return Vec::new();
        };
        let catalog = m.add_on_catalog.as_ref();
        let mut out = Vec::new();
        for (i, r) in refs.value.iter().enumerate() {
            let o = origin_of(&refs.origin.file, format!("{}.{i}", refs.origin.path), r);
            let (name, from, until) = match &r.value {
                RawAddOnRef::Name(n) => (n.clone(), None, None),
                RawAddOnRef::Dated(d) => (d.name.clone(), d.from.clone(), d.until.clone()),
            };
            let Some(def) = catalog.and_then(|c| c.value.get(&name)) else {
                let valid = catalog.map_or_else(
                    || "none: add `add_on_catalog` to the template".to_owned(),
                    |c| names(c.value.keys()),
                );
                let hint = catalog.map_or_else(String::new, |c| {
                    did_you_mean(&name, c.value.keys().map(String::as_str))
                });
                self.err(
                    &o,
                    format!(
                        "no add-on named `{name}` in `add_on_catalog`{hint}; available: {valid}"
                    ),
                );
                continue;
            };
            let co = catalog
                .map(|c| c.origin.child(&name))
                .unwrap_or_else(|| o.clone());
            if def.month_end_punches.unwrap_or(0) > 0 && !has_hourly_rate {
                self.err(
                    &co.child("month_end_punches"),
                    "punches a card cannot cover are billed at the hourly rate, but no `hourly_rate` is set",
                );
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
}

fn field_is_set(m: &Merged, key: &str) -> bool {
    macro_rules! check {
        ($($f:ident),*) => {
            match key { $(stringify!($f) => m.$f.is_some(),)* _ => false }
        };
    }
    check!(
        template,
        start,
        end,
        effective_from,
        changes,
        currency,
        time_zone,
        value_map,
        level,
        monthly_fee,
        hourly_rate,
        requesters,
        rules,
        rounding,
        travel,
        call_out_fee,
        allowances,
        banks,
        card_terms,
        card_sizes,
        cards,
        add_on_catalog,
        add_ons,
        sla,
        holidays,
        not_holidays,
        accounting,
        language,
        report_every
    )
}

/// `mon`, `mon-fri`, `sat,sun`.
fn parse_days(key: &str) -> Option<Vec<Weekday>> {
    let day = |s: &str| -> Option<Weekday> {
        Some(match s.trim() {
            "mon" => Weekday::Mon,
            "tue" => Weekday::Tue,
            "wed" => Weekday::Wed,
            "thu" => Weekday::Thu,
            "fri" => Weekday::Fri,
            "sat" => Weekday::Sat,
            "sun" => Weekday::Sun,
            _ => return None,
        })
    };
    let mut out = Vec::new();
    for part in key.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut d = a;
                loop {
                    out.push(d);
                    if d == b {
                        break;
                    }
                    d = d.succ();
                }
            }
            None => out.push(day(part)?),
        }
    }
    Some(out)
}

/// Evaluates a condition on a typical ticket so `check` can warn about
/// expressions that would always fail.
fn sample_eval(c: &CelCondition) -> Result<bool, String> {
    use engine::condition::{Condition, TicketFacts};
    use engine::ticket::{CustomerKey, Ticket, TicketId};
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
