//! Stage 2, resolve: the files' names → one [`Resolved`] mapping.
//!
//! Names are global across the files of a folder. Resolving gathers them
//! (refusing a name defined twice), then settles for each customer which
//! keys apply and when:
//!
//! 1. its template chain (`template:` naming another template, which may
//!    name another), overlaid from the deepest template up to the customer's
//!    own keys, each key remembering where it was written;
//! 2. its dated `changes`, each layered on the terms before it, from the
//!    first of the month it names (so the start and change dates are read
//!    here: they decide which layer is which version);
//! 3. the names its keys refer to: its value map and its SLA calendars.
//!
//! An unknown name is refused with the nearest defined one. Nothing is
//! compiled into engine types here; that is `build`'s work.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use engine::period::Month;
use serde_saphyr::Spanned;

use super::read::Parsed;
use super::values;
use crate::accounts::RawLineAccount;
use crate::diag::{At, Origin, Problem, Report};
use crate::raw::{CONTRACT_KEYS, Merged, RawCalendar, RawContract, RawValueMap, TERM_KEYS};
use crate::sources::RawSource;

/// A named section as written (`calendars.<name>`, `sources.<name>`, …).
pub(crate) struct Named<'a, T> {
    pub name: String,
    pub origin: Origin,
    pub raw: &'a T,
}

/// One `accounts.<target>` section: line kind → accounts.
pub(crate) type RawTargetAccounts = BTreeMap<String, Spanned<RawLineAccount>>;

/// Every name of the mapping, unique, and every customer's keys settled.
pub(crate) struct Resolved<'a> {
    pub calendars: Vec<Named<'a, RawCalendar>>,
    pub value_maps: Vec<Named<'a, RawValueMap>>,
    /// Customers whose template chain resolved, by key.
    pub customers: Vec<Customer>,
    pub sources: Vec<Named<'a, RawSource>>,
    pub accounts: Vec<Named<'a, RawTargetAccounts>>,
}

/// A customer's keys after its template chain, and its versions by date.
pub(crate) struct Customer {
    pub key: String,
    pub origin: Origin,
    /// Every key, from the templates and the customer itself.
    pub merged: Merged,
    pub start: Option<NaiveDate>,
    /// The value map it names, known to exist.
    pub value_map: Option<String>,
    /// The terms' versions, the first from the start month, each later one
    /// layered on the one before; a change refused here is left out.
    pub versions: Vec<Version>,
    /// Whether its start, changes and references resolved without an
    /// error. When not, `build` still checks its keys but makes no contract.
    pub sound: bool,
}

/// The keys in force from `month` on.
pub(crate) struct Version {
    pub month: Month,
    /// The customer, or the `changes` entry that begins this version.
    pub origin: Origin,
    pub merged: Merged,
}

fn origin_of<T>(file: &std::sync::Arc<std::path::Path>, path: String, s: &Spanned<T>) -> Origin {
    Origin {
        file: file.clone(),
        line: s.referenced.line(),
        column: s.referenced.column(),
        path,
    }
}

/// Gathers one section's names across the files, refusing duplicates.
fn gather<'a, T>(
    files: &'a [Parsed],
    section: &'static str,
    of: impl Fn(&'a Parsed) -> &'a BTreeMap<String, Spanned<T>>,
    report: &mut Report,
) -> BTreeMap<String, Named<'a, T>> {
    let mut out: BTreeMap<String, Named<'a, T>> = BTreeMap::new();
    for p in files {
        for (name, s) in of(p) {
            let origin = origin_of(&p.file, format!("{section}.{name}"), s);
            if let Some(prev) = out.get(name) {
                let problem = if section == "accounts" {
                    Problem::DuplicateAccounts {
                        target: name.clone(),
                        prev_file: prev.origin.file.to_path_buf(),
                        prev_line: prev.origin.line,
                    }
                } else {
                    Problem::DuplicateName {
                        name: name.clone(),
                        section,
                        prev_file: prev.origin.file.to_path_buf(),
                        prev_line: prev.origin.line,
                    }
                };
                report.raise(&origin, problem);
            } else {
                out.insert(
                    name.clone(),
                    Named {
                        name: name.clone(),
                        origin,
                        raw: &s.value,
                    },
                );
            }
        }
    }
    out
}

/// Resolves the names of every file read.
pub(crate) fn resolve<'a>(files: &'a [Parsed], report: &mut Report) -> Resolved<'a> {
    let calendars = gather(files, "calendars", |p| &p.raw.calendars, report);
    let value_maps = gather(files, "value_maps", |p| &p.raw.value_maps, report);
    let templates = gather(files, "templates", |p| &p.raw.templates, report);
    let customer_defs = gather(files, "customers", |p| &p.raw.customers, report);
    let sources = gather(files, "sources", |p| &p.raw.sources, report);
    let accounts = gather(files, "accounts", |p| &p.raw.accounts, report);

    let names = Names {
        calendars: calendars.keys().cloned().collect(),
        value_maps: value_maps.keys().cloned().collect(),
    };
    let mut used = HashSet::new();
    let mut customers = Vec::new();
    for (key, def) in &customer_defs {
        let Some(merged) = chain(key, &def.origin, def.raw, &templates, &mut used, report) else {
            continue;
        };
        customers.push(names.customer(key, &def.origin, merged, report));
    }
    for (name, t) in &templates {
        if !used.contains(name) {
            report.raise(&t.origin, Problem::UnusedTemplate(name.clone()));
        }
    }
    Resolved {
        calendars: calendars.into_values().collect(),
        value_maps: value_maps.into_values().collect(),
        customers,
        sources: sources.into_values().collect(),
        accounts: accounts.into_values().collect(),
    }
}

/// The template chain of a customer (deepest first) overlaid by its own
/// keys; `None` when a template is unknown or the chain loops.
fn chain(
    key: &str,
    o: &Origin,
    raw: &RawContract,
    templates: &BTreeMap<String, Named<'_, RawContract>>,
    used: &mut HashSet<String>,
    report: &mut Report,
) -> Option<Merged> {
    let mut layers: Vec<(Origin, &RawContract)> = vec![(o.clone(), raw)];
    let mut seen = vec![format!("customers.{key}")];
    let mut current = raw;
    let mut current_origin = o.clone();
    while let Some(t) = &current.template {
        let name = &t.value;
        let t_origin = At::new(&current_origin, "template", t.clone()).origin;
        let Some(next) = templates.get(name) else {
            report.raise(
                &t_origin,
                Problem::UnknownTemplate {
                    name: name.clone(),
                    defined: templates.keys().cloned().collect(),
                },
            );
            return None;
        };
        used.insert(name.clone());
        let id = format!("templates.{name}");
        if seen.contains(&id) {
            seen.push(id);
            report.raise(
                &t_origin,
                Problem::TemplateLoop {
                    name: name.clone(),
                    chain: seen,
                },
            );
            return None;
        }
        seen.push(id);
        layers.push((next.origin.clone(), next.raw));
        current = next.raw;
        current_origin = next.origin.clone();
    }
    let mut merged = Merged::default();
    for (origin, layer) in layers.iter().rev() {
        if let Some(e) = &layer.effective_from {
            report.raise(
                &At::new(origin, "effective_from", e.clone()).origin,
                Problem::EffectiveFromOutsideChanges,
            );
        }
        merged.overlay(origin, layer);
    }
    Some(merged)
}

/// The names a customer's keys may refer to.
struct Names {
    calendars: Vec<String>,
    value_maps: Vec<String>,
}

impl Names {
    /// Settles a customer's start, versions and references.
    fn customer(&self, key: &str, o: &Origin, m: Merged, report: &mut Report) -> Customer {
        let mark = report.mark();
        let value_map = match &m.value_map {
            Some(v) if self.value_maps.contains(&v.value) => Some(v.value.clone()),
            Some(v) => {
                report.raise(
                    &v.origin,
                    Problem::UnknownValueMap {
                        name: v.value.clone(),
                        defined: self.value_maps.clone(),
                    },
                );
                None
            }
            None => {
                report.raise(o, missing("value_map", "zammad-defaults"));
                None
            }
        };
        let start = match &m.start {
            Some(s) => report.ok(&s.origin, values::date(&s.value)),
            None => {
                report.raise(o, missing("start", "2026-01-01"));
                None
            }
        };
        let versions = versions(o, &m, start, report);
        for v in &versions {
            self.check_calendar(&v.merged, report);
        }
        Customer {
            key: key.to_owned(),
            origin: o.clone(),
            merged: m,
            start,
            value_map,
            versions,
            sound: !report.errors_since(mark),
        }
    }

    /// The SLA's calendar must be defined (a calendar defined with errors
    /// counts: its own errors are reported where it is defined).
    fn check_calendar(&self, m: &Merged, report: &mut Report) {
        let Some(sla) = &m.sla else { return };
        let cal = At::new(&sla.origin, "calendar", sla.value.calendar.clone());
        if !self.calendars.contains(&cal.value) {
            report.raise(
                &cal.origin,
                Problem::UnknownCalendar {
                    name: cal.value,
                    defined: self.calendars.clone(),
                },
            );
        }
    }
}

fn missing(what: &'static str, example: &'static str) -> Problem {
    Problem::Missing { what, example }
}

/// The base terms from the start month, then each valid change layered on
/// the terms before it.
fn versions(o: &Origin, m: &Merged, start: Option<NaiveDate>, report: &mut Report) -> Vec<Version> {
    let mut out = vec![Version {
        month: start.map_or(Month::new(2000, 1).expect("valid"), Month::of),
        origin: o.clone(),
        merged: m.clone(),
    }];
    let Some(changes) = &m.changes else {
        return out;
    };
    let mut last: Option<Month> = start.map(Month::of);
    // Each change builds on the terms before it.
    let mut current = m.clone();
    for (i, change) in changes.value.iter().enumerate() {
        let co = changes.origin.child(&i.to_string());
        let Some(eff) = &change.effective_from else {
            report.raise(&co, Problem::ChangeWithoutDate);
            continue;
        };
        let eff = At::new(&co, "effective_from", eff.clone());
        let Some(date) = report.ok(&eff.origin, values::date(&eff.value)) else {
            continue;
        };
        let month = Month::of(date);
        if date != month.first_day() {
            report.raise(&eff.origin, Problem::ChangeNotOnFirst(month.first_day()));
            continue;
        }
        if last.is_some_and(|l| month <= l) {
            report.raise(&eff.origin, Problem::ChangesOutOfOrder);
            continue;
        }
        last = Some(month);
        let mut layer = Merged::default();
        layer.overlay(&co, change);
        for k in CONTRACT_KEYS {
            if field_is_set(&layer, k) && *k != "effective_from" && !TERM_KEYS.contains(k) {
                report.raise(
                    &co.child(k),
                    Problem::KeyCannotChange {
                        key: k,
                        may_set: TERM_KEYS,
                    },
                );
            }
        }
        current.overlay(&co, change);
        out.push(Version {
            month,
            origin: co,
            merged: current.clone(),
        });
    }
    out
}

/// Whether `key` (a contract key's name) is written in `m`.
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::compile::read::parse_text;
    use crate::diag::Severity;

    fn files(texts: &[(&str, &str)]) -> Vec<Parsed> {
        texts
            .iter()
            .map(|(name, text)| Parsed {
                file: Arc::from(Path::new(name)),
                raw: parse_text(Path::new(name), text).expect("parses"),
            })
            .collect()
    }

    /// Each diagnostic as `path: message`.
    fn said(report: &Report) -> Vec<String> {
        report
            .diags
            .iter()
            .map(|d| format!("{}: {}", d.path, d.message))
            .collect()
    }

    const BASE: &str = "calendars:\n  office: {time_zone: UTC, hours: 24/7}\n\
        value_maps:\n  zammad: {}\n\
        templates:\n  support:\n    currency: EUR\n    hourly_rate: \"40.00\"\n";

    fn customer(keys: &str) -> String {
        format!("{BASE}customers:\n  acme:\n    value_map: zammad\n    start: 2026-01-01\n{keys}")
    }

    #[test]
    fn an_unknown_template_is_refused_with_the_nearest_name() {
        let f = files(&[("m.yaml", &customer("    template: suport\n"))]);
        let mut report = Report::default();
        let r = resolve(&f, &mut report);
        assert!(r.customers.is_empty(), "no customer without its template");
        assert_eq!(
            said(&report),
            [
                "customers.acme.template: no template named `suport` (did you mean `support`?); defined templates: support",
                "templates.support: template `support` is not used by any customer",
            ]
        );
    }

    #[test]
    fn a_template_chain_that_loops_is_refused_and_shows_the_loop() {
        let text = "templates:\n  a: {template: b}\n  b: {template: a}\n\
            customers:\n  acme: {template: a}\n";
        let f = files(&[("m.yaml", text)]);
        let mut report = Report::default();
        let r = resolve(&f, &mut report);
        assert!(r.customers.is_empty());
        assert_eq!(
            said(&report),
            [
                "templates.b.template: template chain loops back to `a`: customers.acme → templates.a → templates.b → templates.a"
            ]
        );
    }

    #[test]
    fn the_customers_keys_override_the_templates_and_each_remembers_its_file() {
        let f = files(&[(
            "m.yaml",
            &customer("    template: support\n    hourly_rate: \"60.00\"\n"),
        )]);
        let mut report = Report::default();
        let r = resolve(&f, &mut report);
        assert_eq!(said(&report), Vec::<String>::new());
        let acme = &r.customers[0];
        assert!(acme.sound);
        let rate = acme.merged.hourly_rate.as_ref().expect("rate");
        assert_eq!(
            (rate.value.as_str(), rate.origin.path.as_str()),
            ("60.00", "customers.acme.hourly_rate")
        );
        let currency = acme.merged.currency.as_ref().expect("from the template");
        assert_eq!(currency.origin.path, "templates.support.currency");
        assert_eq!(currency.origin.line, 7);
    }

    #[test]
    fn a_name_defined_in_two_files_names_the_first_place() {
        let f = files(&[
            ("a.yaml", "value_maps:\n  zammad: {}\n"),
            ("b.yaml", "value_maps:\n  other: {}\n  zammad: {}\n"),
        ]);
        let mut report = Report::default();
        let r = resolve(&f, &mut report);
        assert_eq!(r.value_maps.len(), 2);
        assert_eq!(report.diags[0].file.to_str(), Some("b.yaml"));
        assert_eq!(
            report.diags[0].message,
            "`zammad` is already defined at a.yaml:2; names in `value_maps` must be unique across the mapping files"
        );
    }

    #[test]
    fn references_to_an_unknown_value_map_or_calendar_make_the_customer_unsound() {
        let f = files(&[(
            "m.yaml",
            &format!(
                "{BASE}customers:\n  acme:\n    template: support\n    value_map: zamad\n    start: 2026-01-01\n    sla: {{calendar: offise}}\n"
            ),
        )]);
        let mut report = Report::default();
        let r = resolve(&f, &mut report);
        let acme = &r.customers[0];
        assert!(!acme.sound);
        assert_eq!(acme.value_map, None);
        assert_eq!(
            said(&report),
            [
                "customers.acme.value_map: no value map named `zamad` (did you mean `zammad`?); defined value maps: zammad",
                "customers.acme.sla.calendar: no calendar named `offise` (did you mean `office`?); defined calendars: office",
            ]
        );
    }

    #[test]
    fn each_change_is_a_version_layered_on_the_one_before() {
        let changes = "    template: support\n    changes:\n\
            \x20     - {effective_from: 2026-03-01, hourly_rate: \"50.00\"}\n\
            \x20     - {effective_from: 2026-05-15, hourly_rate: \"70.00\"}\n\
            \x20     - {effective_from: 2026-06-01, level: gold}\n";
        let f = files(&[("m.yaml", &customer(changes))]);
        let mut report = Report::default();
        let r = resolve(&f, &mut report);
        assert_eq!(
            said(&report),
            [
                "customers.acme.changes.1.effective_from: terms change at the start of a billing month: use 2026-05-01"
            ]
        );
        let acme = &r.customers[0];
        assert!(!acme.sound);
        let versions: Vec<(String, String, Option<String>)> = acme
            .versions
            .iter()
            .map(|v| {
                (
                    v.month.to_string(),
                    v.merged.hourly_rate.as_ref().expect("rate").value.clone(),
                    v.merged.level.as_ref().map(|l| l.value.clone()),
                )
            })
            .collect();
        // The refused change is left out; June builds on March.
        assert_eq!(
            versions,
            [
                ("2026-01".to_owned(), "40.00".to_owned(), None),
                ("2026-03".to_owned(), "50.00".to_owned(), None),
                (
                    "2026-06".to_owned(),
                    "50.00".to_owned(),
                    Some("gold".to_owned())
                ),
            ]
        );
    }

    #[test]
    fn a_change_may_set_only_terms_and_start_must_be_given() {
        let text = format!(
            "{BASE}customers:\n  acme:\n    template: support\n    value_map: zammad\n    changes:\n      - {{effective_from: 2026-03-01, currency: SEK}}\n"
        );
        let mut report = Report::default();
        resolve(&files(&[("m.yaml", &text)]), &mut report);
        let said = said(&report);
        assert!(said.contains(&"customers.acme: missing `start` (set it here or in the template), for example `start: 2026-01-01`".to_owned()), "{said:?}");
        assert!(
            said.iter().any(|s| s.starts_with("customers.acme.changes.0.currency: `currency` cannot change by date; a change may set: level, monthly_fee,")),
            "{said:?}"
        );
        assert!(report.diags.iter().all(|d| d.severity == Severity::Error));
    }
}
