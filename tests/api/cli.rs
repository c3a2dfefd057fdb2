//! The command line as an admin meets it: `check` on good and broken mapping
//! files, `bill` and `sla` on good and broken ticket exports.
//!
//! Bad input must exit 2 with one message on stderr naming the file and, where
//! it applies, the line, the column and the field, and print nothing on stdout.
//! The broken mappings live in `tests/fixtures/mappings/` (one problem each);
//! broken exports are written to temporary folders.

use std::path::{Path, PathBuf};

use crate::support::examples;
use assert_cmd::Command;

const LV_IT: &str = "mappings/examples/lv-it.yaml";
const LV_IT_TICKETS: &str = "tests/fixtures/scenarios/lv-it/tickets.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What one run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the binary from the crate root, so that messages name the paths as given.
fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_contract-bridge"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("the binary runs");
    let r = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !r.stderr.contains("panicked"),
        "the program panicked:\n{r:?}"
    );
    r
}

/// `CMD --mapping MAPPING --tickets TICKETS`, then `rest`.
fn run_on(cmd: &str, mapping: &str, tickets: &str, rest: &[&str]) -> Run {
    run([&[cmd, "--mapping", mapping, "--tickets", tickets][..], rest].concat())
}

fn check(mapping: impl AsRef<std::ffi::OsStr>) -> Run {
    let mut args = vec![std::ffi::OsString::from("check"), "--mapping".into()];
    args.push(mapping.as_ref().to_owned());
    run(args)
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/mappings/{name}")
}

/// The mapping fixture `name` changed by `edit`, as `m.yaml` in a fresh folder.
fn edited_fixture(name: &str, edit: impl Fn(String) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.yaml");
    let text = std::fs::read_to_string(root().join(fixture(name))).unwrap();
    std::fs::write(&f, edit(text)).unwrap();
    (dir, f)
}

/// Exit 2, nothing on stdout, and every needle in the message.
#[track_caller]
fn assert_bad(r: &Run, needles: &[&str]) {
    assert_eq!(r.code, Some(2), "expected exit 2:\n{r:?}");
    assert!(r.stdout.is_empty(), "expected nothing on stdout:\n{r:?}");
    assert_mentions(r, needles);
}

#[track_caller]
fn assert_mentions(r: &Run, needles: &[&str]) {
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}:\n{r:?}");
    }
}

/// The lines of stderr that report an error (not warnings, not the tally).
fn error_lines(r: &Run) -> Vec<&str> {
    r.stderr
        .lines()
        .filter(|l| l.contains(": error: "))
        .collect()
}

/// Exactly one error, on a line that holds every needle.
#[track_caller]
fn assert_one_error(r: &Run, needles: &[&str]) {
    assert_bad(r, needles);
    let errors = error_lines(r);
    assert_eq!(errors.len(), 1, "expected exactly one error:\n{r:?}");
    for n in needles {
        assert!(errors[0].contains(n), "the error line lacks {n:?}:\n{r:?}");
    }
}

/// `check` of the mapping fixture `name`: exactly one error, on a line
/// that holds every needle.
#[track_caller]
fn one_error_in(name: &str, needles: &[&str]) -> Run {
    let r = check(fixture(name));
    assert_one_error(&r, needles);
    r
}

// ---------------------------------------------------------------- check: good

#[test]
fn every_example_file_passes_check() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "akte-sla.yaml",
        "itech-klippekort.yaml",
        "lv-it.yaml",
        "moneo.yaml",
        "trinax.yaml",
    ] {
        assert!(names.iter().any(|n| n == expected), "missing {expected}");
    }
    for f in &files {
        let r = check(f);
        assert_eq!(r.code, Some(0), "{}:\n{r:?}", f.display());
        assert!(r.stdout.contains(": ok, "), "{r:?}");
        assert!(!r.stderr.contains("error"), "{r:?}");
    }
}

#[test]
fn the_examples_folder_passes_check_as_a_whole() {
    let r = check("mappings/examples");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout
            .starts_with("mappings/examples: ok, 12 customer contract(s)"),
        "{r:?}"
    );
    for customer in [
        "poznan-clinic",
        "nordhavn-arkitekter",
        "riga-bakery",
        "vidzeme-foods",
        "alert-co",
    ] {
        assert!(r.stdout.contains(customer), "{r:?}");
    }
    assert!(!r.stderr.contains("error"), "{r:?}");
}

// ----------------------------------------------------------- check: problems

#[test]
fn an_unknown_key_is_named_with_the_valid_keys() {
    let r = one_error_in(
        "unknown-key.yaml",
        &[
            "tests/fixtures/mappings/unknown-key.yaml:22:5: error: customers.acme.hourly_rat:",
            "unknown key `hourly_rat`",
            "did you mean `hourly_rate`?",
            "valid keys here: template, start,",
            "monthly_fee, hourly_rate,",
        ],
    );
    assert!(
        r.stderr
            .contains("1 error(s) in tests/fixtures/mappings/unknown-key.yaml")
    );
}

#[test]
fn an_unknown_key_at_the_top_level_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.yaml");
    std::fs::write(&f, "calendars: {}\ncustomer:\n  acme: {}\n").unwrap();
    let r = check(&f);
    assert_one_error(
        &r,
        &[
            "m.yaml:2:1: error: customer: unknown key `customer`",
            "did you mean `customers`?",
            "calendars, value_maps, templates, customers",
        ],
    );
}

#[test]
fn a_dangling_template_lists_the_defined_templates() {
    one_error_in(
        "dangling-template.yaml",
        &[
            "dangling-template.yaml:26:15: error: customers.acme.template:",
            "no template named `standrad`",
            "did you mean `standard`?",
            "defined templates: standard",
        ],
    );
}

#[test]
fn a_dangling_calendar_lists_the_defined_calendars() {
    one_error_in(
        "dangling-calendar.yaml",
        &[
            "dangling-calendar.yaml:24:17: error: customers.acme.sla.calendar:",
            "no calendar named `ofice`",
            "defined calendars: office",
        ],
    );
}

#[test]
fn a_dangling_value_map_lists_the_defined_value_maps() {
    one_error_in(
        "dangling-value-map.yaml",
        &[
            "dangling-value-map.yaml:20:16: error: customers.acme.value_map:",
            "no value map named `zamad`",
            "defined value maps: zammad",
        ],
    );
}

#[test]
fn a_dangling_add_on_lists_the_catalog() {
    one_error_in(
        "dangling-add-on.yaml",
        &[
            "dangling-add-on.yaml:27:15: error: customers.acme.add_ons.0:",
            "no add-on named `faster-respons`",
            "available: faster-response",
        ],
    );
}

#[test]
fn a_helpdesk_source_section_is_checked_against_the_customers_and_the_kinds() {
    let r = check(fixture("bad-sources.yaml"));
    assert_bad(
        &r,
        &[
            "bad-sources.yaml:22:21: error: sources.desk.customers.Acme Baltics:",
            "`acmee` is not a customer of the mapping (did you mean `acme`?); customers with a contract: acme",
            "bad-sources.yaml:23:16: error: sources.desk.time_unit:",
            "write whole minutes from 1m to 1d",
            "bad-sources.yaml:25:15: error: sources.desk.kinds.Onsite:",
            "`on-site` is not a work kind: use remote, onsite or phone",
        ],
    );
    assert_eq!(error_lines(&r).len(), 3, "{r:?}");
}

#[test]
fn a_type_error_names_the_value_and_what_is_valid() {
    let r = one_error_in(
        "type-error.yaml",
        &[
            "type-error.yaml:25:18: error: customers.acme.cards.0.punches:",
            "`twenty` is not a whole number",
            "such as 20",
        ],
    );
    // The deserializer's wrappers never show in the key path.
    assert!(!r.stderr.contains("value["), "{r:?}");
}

#[test]
fn a_list_where_an_amount_belongs_is_a_type_error() {
    let (_dir, f) = edited_fixture("bad-money.yaml", |text| {
        text.replace("monthly_fee: \"35O.00\"", "monthly_fee: [350]")
    });
    let r = check(&f);
    assert_one_error(
        &r,
        &[
            "m.yaml:22:18: error: customers.acme.monthly_fee:",
            "not a list or a map",
        ],
    );
}

#[test]
fn bad_money_asks_for_a_quoted_decimal() {
    one_error_in(
        "bad-money.yaml",
        &[
            "bad-money.yaml:22:18: error: customers.acme.monthly_fee:",
            "`35O.00` is not an amount",
            "quoted decimal such as \"350.00\"",
        ],
    );
}

#[test]
fn an_amount_finer_than_the_currency_is_refused_with_what_is_valid() {
    one_error_in(
        "sub-cent-rate.yaml",
        &[
            "sub-cent-rate.yaml:17:18: error: customers.acme.hourly_rate:",
            "`950.505` has more decimals than SEK allows (2)",
            "write \"950.50\" or \"950.51\"",
        ],
    );
}

#[test]
fn holidays_lists_a_countrys_days_and_refuses_unknown_codes() {
    let r = run(["holidays", "--country", "SE", "--year", "2027"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    for line in [
        "2027-06-25 Fri Midsummer Eve",
        "2027-06-26 Sat Midsummer Day",
        "2027-11-06 Sat All Saints' Day",
        "2027-12-31 Fri New Year's Eve",
    ] {
        assert!(r.stdout.lines().any(|l| l == line), "{line}:\n{r:?}");
    }
    assert_eq!(r.stdout.lines().count(), 16, "{r:?}");
    let r = run(["holidays", "--country", "DE-BY", "--year", "2026"]);
    assert!(r.stdout.contains("2026-06-04 Thu Corpus Christi"), "{r:?}");
    assert_bad(
        &run(["holidays", "--country", "SV", "--year", "2027"]),
        &["`SV` is not a country with built-in holidays", "SE"],
    );
}

#[test]
fn a_calendar_on_national_holidays_is_checked_and_closes_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.yaml");
    let mapping = |public: &str| {
        format!(
            r#"
calendars:
  se-office:
    time_zone: Europe/Stockholm
    hours: {{mon-fri: "08:00-17:00"}}
    public_holidays: {public}
    not_holidays: [2026-12-31]
value_maps:
  zammad:
    priority: {{"4 critical": 1, "2 normal": 3}}
    state: {{new: open, closed: resolved}}
customers:
  acme:
    currency: SEK
    time_zone: Europe/Stockholm
    value_map: zammad
    start: 2026-01-01
    monthly_fee: "4500.00"
    rules: [{{treat: covered}}]
    holidays: [2026-06-18]
    sla:
      calendar: se-office
      first_response: {{1: 1h}}
"#
        )
    };
    std::fs::write(&f, mapping("DE-XY")).unwrap();
    assert_one_error(
        &check(&f),
        &[
            "m.yaml:6:22: error: calendars.se-office.public_holidays:",
            "`DE-XY` is not a region with its own holidays: German states are DE-BB",
        ],
    );
    std::fs::write(&f, mapping("SE")).unwrap();
    let r = check(&f);
    assert_eq!(r.code, Some(0), "{r:?}");
    // A P1 ticket on the evening before the contract's own closed day
    // (18 June) and Sweden's Midsummer Eve (19 June) is due Monday 08:00 + 1 h;
    // New Year's Eve stays open for this calendar.
    let tickets = dir.path().join("t.json");
    std::fs::write(
        &tickets,
        r#"{"tickets": [
  {"id": "T-1", "customer": "acme", "title": "down", "priority": "4 critical", "category": null,
   "created_at": "2026-06-17T18:00:00+02:00"},
  {"id": "T-2", "customer": "acme", "title": "down", "priority": "4 critical", "category": null,
   "created_at": "2026-12-30T18:00:00+01:00"}]}"#,
    )
    .unwrap();
    let r = run_on(
        "sla",
        f.to_str().unwrap(),
        tickets.to_str().unwrap(),
        &["--as-of", "2027-01-10T00:00:00Z", "--json"],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let due = |id: &str| {
        v.as_array()
            .or_else(|| v["sla"].as_array())
            .unwrap()
            .iter()
            .find(|row| row["ticket"] == id)
            .map(|row| row["due_at"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(due("T-1"), "2026-06-22T09:00:00+02:00");
    assert_eq!(due("T-2"), "2026-12-31T09:00:00+01:00");
}

#[test]
fn a_banks_kinds_and_draw_are_checked_where_written() {
    let (_dir, f) = edited_fixture("sub-cent-rate.yaml", |text| {
        text.replace("\"950.505\"", "\"950.50\"")
        .replace(
            "    rules:\n",
            "    banks:\n      - {name: remote, size: 3h, per: month, kinds: [remot, phone], draw: exact}\n    rules:\n",
        )
    });
    let r = check(&f);
    assert_bad(
        &r,
        &[
            "customers.acme.banks.0.kinds.0: `remot` is not a work kind (did you mean `remote`?)",
            "customers.acme.banks.0.draw: `exact` is not a way to draw: use `rounded`",
        ],
    );
    assert_eq!(error_lines(&r).len(), 2, "{r:?}");
}

#[test]
fn bill_help_and_the_readme_point_to_the_format_in_the_repository() {
    let r = run(["bill", "--help"]);
    assert!(r.stdout.contains("docs/offline-format.md"), "{r:?}");
    let doc = std::fs::read_to_string(root().join("docs/offline-format.md")).unwrap();
    // Every key the export accepts is documented.
    for key in [
        "`source`",
        "`requester`",
        "`fields`",
        "`states`",
        "`work`",
        "`note`",
        "`agent`",
        "add_on_draws",
        "explanation",
        "events",
        "warnings",
    ] {
        assert!(doc.contains(key), "docs/offline-format.md lacks {key}");
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("docs/offline-format.md"));
    assert!(!readme.contains("spec/offline-format.md"));
}

#[test]
fn a_bad_duration_shows_valid_ones() {
    one_error_in(
        "bad-duration.yaml",
        &[
            "bad-duration.yaml:24:13: error: customers.acme.rounding.step:",
            "`15 minutes` is not a duration",
            "15m, 8h, 1h30m or 2d",
        ],
    );
}

#[test]
fn a_misspelt_time_zone_suggests_the_real_one() {
    let r = one_error_in(
        "bad-time-zone.yaml",
        &[
            "bad-time-zone.yaml:4:16: error: calendars.office.time_zone:",
            "unknown time zone `Europe/Rgia`",
            "did you mean Europe/Riga?",
            "IANA",
        ],
    );
    // The calendar is defined, if broken: no second error calling it undefined.
    assert!(!r.stderr.contains("no calendar named"), "{r:?}");
}

#[test]
fn an_unknown_time_zone_lists_zones_of_its_region() {
    let (_dir, f) = edited_fixture("bad-time-zone.yaml", |text| {
        text.replace("Europe/Rgia", "Europe/Atlantis")
    });
    let r = check(&f);
    assert_one_error(
        &r,
        &["unknown time zone `Europe/Atlantis`", "Europe/Amsterdam"],
    );
}

#[test]
fn a_window_that_ends_before_it_starts_is_an_error() {
    let r = one_error_in(
        "bad-window.yaml",
        &[
            "bad-window.yaml:6:7: error: calendars.office.hours.mon-fri:",
            "`17:00-09:00` ends before it starts",
            "split a window across midnight",
        ],
    );
    assert!(!r.stderr.contains("no calendar named"), "{r:?}");
}

#[test]
fn bad_cel_syntax_is_an_error() {
    one_error_in(
        "bad-cel-syntax.yaml",
        &[
            "bad-cel-syntax.yaml:25:15: error: customers.acme.rules.0.when:",
            "invalid CEL expression, at character 25 of it:",
            "Syntax error",
        ],
    );
}

#[test]
fn a_cel_expression_that_fails_when_evaluated_is_a_warning() {
    let r = check(fixture("cel-eval-warning.yaml"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout
            .contains("cel-eval-warning.yaml: ok, 1 customer contract(s): acme"),
        "{r:?}"
    );
    assert_mentions(
        &r,
        &[
            "cel-eval-warning.yaml:26:15: warning: customers.acme.rules.0.when:",
            "No such key: missing",
            "counts as not applying",
        ],
    );
    assert!(error_lines(&r).is_empty(), "{r:?}");
}

#[test]
fn a_rule_by_categories_that_holds_uncategorised_tickets_is_a_warning_with_the_when_form() {
    let r = check(fixture("categories-hold-uncategorised.yaml"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_mentions(
        &r,
        &[
            "categories-hold-uncategorised.yaml:18:9: warning: customers.acme.rules.0:",
            "rule `onboarding is free` has `categories`, so a ticket with no category stops here and is held (\"uncategorised\")",
            "`when: 'ticket.category in [\"onboarding\"]'` (no `categories`)",
            "`- when: ticket.category == null` with `treat: hold`",
        ],
    );
    assert!(error_lines(&r).is_empty(), "{r:?}");

    // What each form does to a ticket with no category and one in onboarding.
    let dir = tempfile::tempdir().unwrap();
    let tickets = dir.path().join("t.json");
    let ticket = |id: &str, category: &str| {
        format!(
            r#"{{"id": "{id}", "customer": "acme", "title": "x", "category": {category},
               "created_at": "2026-10-01T08:00:00+02:00",
               "work": [{{"id": "W-{id}", "at": "2026-10-01T09:00:00+02:00", "minutes": 60, "kind": "remote"}}]}}"#
        )
    };
    std::fs::write(
        &tickets,
        format!(
            r#"{{"tickets": [{}, {}]}}"#,
            ticket("T-1", "null"),
            ticket("T-2", "\"onboarding\"")
        ),
    )
    .unwrap();
    let bill = |mapping: &Path| {
        let r = run_on(
            "bill",
            mapping.to_str().unwrap(),
            tickets.to_str().unwrap(),
            &["--period", "2026-10", "--json"],
        );
        assert_eq!(r.code, Some(0), "{r:?}");
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()
    };
    let held = |doc: &serde_json::Value, id: &str| {
        doc["report"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["ticket"] == id)
            .map(|row| row["held"].clone())
            .unwrap()
    };
    let as_written = bill(&root().join(fixture("categories-hold-uncategorised.yaml")));
    assert_eq!(held(&as_written, "T-1"), "uncategorised");
    assert!(as_written["invoices"].as_array().unwrap().is_empty());
    // The suggested condition lets the uncategorised ticket reach the next rule.
    let text = std::fs::read_to_string(root().join(fixture("categories-hold-uncategorised.yaml")))
        .unwrap()
        .replace(
            "categories: [onboarding]",
            "when: 'ticket.category in [\"onboarding\"]'",
        );
    let f = dir.path().join("m.yaml");
    std::fs::write(&f, text).unwrap();
    let r = check(&f);
    assert!(!r.stderr.contains("warning"), "{r:?}");
    let rewritten = bill(&f);
    assert_eq!(held(&rewritten, "T-1"), serde_json::Value::Null);
    assert_eq!(held(&rewritten, "T-2"), serde_json::Value::Null);
    assert_eq!(rewritten["invoices"][0]["total_net"], "950.00");
}

#[test]
fn cel_macros_may_bind_their_own_variables() {
    let (_dir, f) = edited_fixture("cel-eval-warning.yaml", |text| {
        text.replace(
            "ticket.fields.missing == 1",
            "'\"warranty\" in ticket.tags || ticket.tags.exists(t, t.startsWith(\"rma-\"))'",
        )
    });
    let r = check(&f);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("warning"), "{r:?}");

    // A variable that nothing binds is still refused.
    let text = std::fs::read_to_string(&f)
        .unwrap()
        .replace("t.startsWith(\"rma-\")", "u == 1");
    std::fs::write(&f, text).unwrap();
    let r = check(&f);
    assert_one_error(&r, &["unknown variable(s) u", "only use `ticket`"]);
}

#[test]
fn deeply_nested_cel_is_refused_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.yaml");
    let template = std::fs::read_to_string(root().join(fixture("cel-eval-warning.yaml"))).unwrap();
    let nested = format!(
        "'{}ticket.period_minutes > 1.0{}'",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    std::fs::write(&f, template.replace("ticket.fields.missing == 1", &nested)).unwrap();
    assert_one_error(&check(&f), &["m.yaml:26:15:", "nests brackets more than"]);

    let chain = format!("'{} > 0'", vec!["1"; 3000].join(" + "));
    std::fs::write(&f, template.replace("ticket.fields.missing == 1", &chain)).unwrap();
    assert_one_error(&check(&f), &["m.yaml:26:15:", "too deeply nested"]);
}

#[test]
fn a_failing_regex_warns_on_one_line() {
    let (_dir, f) = edited_fixture("cel-eval-warning.yaml", |text| {
        text.replace("ticket.fields.missing == 1", "ticket.title.matches('[')")
    });
    let r = check(&f);
    assert_eq!(r.code, Some(0), "{r:?}");
    let warnings: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{r:?}");
    assert!(warnings[0].contains(": warning: customers.acme.rules.0.when:"));
    assert!(warnings[0].contains("not a valid regex"), "{r:?}");
}

#[test]
fn names_defined_twice_in_one_folder_are_errors() {
    let r = check(fixture("duplicate-names"));
    assert_bad(
        &r,
        &[
            "duplicate-names/b.yaml:4:5: error: calendars.office: `office` is already defined at tests/fixtures/mappings/duplicate-names/a.yaml:4",
            "duplicate-names/b.yaml:9:5: error: customers.acme: `acme` is already defined at tests/fixtures/mappings/duplicate-names/a.yaml:18",
            "must be unique across the mapping files",
            "2 error(s) in tests/fixtures/mappings/duplicate-names",
        ],
    );
    assert_eq!(error_lines(&r).len(), 2, "{r:?}");
    // Each file alone has no duplicate (b.yaml uses the value map a.yaml defines).
    assert_eq!(check(fixture("duplicate-names/a.yaml")).code, Some(0));
    assert_one_error(
        &check(fixture("duplicate-names/b.yaml")),
        &["no value map named `zammad`"],
    );
}

#[test]
fn a_template_loop_is_an_error() {
    one_error_in(
        "template-loop.yaml",
        &[
            "template-loop.yaml:18:15: error: templates.base.template:",
            "template chain loops back to `extended`",
            "customers.acme → templates.extended → templates.base → templates.extended",
        ],
    );
}

#[test]
fn a_change_must_start_on_the_first_of_a_month() {
    one_error_in(
        "change-not-on-first.yaml",
        &[
            "change-not-on-first.yaml:24:25: error: customers.acme.changes.0.effective_from:",
            "start of a billing month: use 2026-11-01",
        ],
    );
}

#[test]
fn a_change_cannot_set_what_is_fixed() {
    one_error_in(
        "change-fixed-key.yaml",
        &[
            "change-fixed-key.yaml:24:7: error: customers.acme.changes.0.currency:",
            "`currency` cannot change by date",
            "a change may set: level, monthly_fee, hourly_rate",
        ],
    );
}

#[test]
fn a_missing_currency_is_an_error() {
    one_error_in(
        "missing-currency.yaml",
        &[
            "missing-currency.yaml:18:5: error: customers.acme:",
            "missing `currency`",
            "`currency: EUR`",
        ],
    );
}

#[test]
fn a_missing_start_is_an_error() {
    one_error_in(
        "missing-start.yaml",
        &[
            "missing-start.yaml:18:5: error: customers.acme:",
            "missing `start`",
            "`start: 2026-01-01`",
        ],
    );
}

#[test]
fn missing_time_zone_and_value_map_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.yaml");
    std::fs::write(
        &f,
        "customers:\n  acme:\n    currency: EUR\n    start: 2026-01-01\n    hourly_rate: \"40.00\"\n",
    )
    .unwrap();
    let r = check(&f);
    assert_bad(
        &r,
        &[
            "m.yaml:3:5: error: customers.acme: missing `time_zone`",
            "m.yaml:3:5: error: customers.acme: missing `value_map`",
        ],
    );
}

#[test]
fn a_missing_mapping_and_an_empty_folder_are_errors() {
    let r = check("mappings/nowhere.yaml");
    assert_bad(
        &r,
        &["mappings/nowhere.yaml: error: cannot open the mapping"],
    );
    let dir = tempfile::tempdir().unwrap();
    let r = check(dir.path());
    assert_bad(&r, &["error: no mapping files", "*.yaml"]);
}

#[test]
fn a_yaml_syntax_error_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.yaml");
    std::fs::write(
        &f,
        "customers:\n  acme:\n    currency: [EUR\n    start: 2026-01-01\n",
    )
    .unwrap();
    let r = check(&f);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stdout.is_empty());
    assert!(error_lines(&r).len() == 1, "{r:?}");
    assert!(r.stderr.contains("m.yaml:"), "{r:?}");
}

#[test]
fn a_key_written_twice_is_an_error() {
    let (_dir, f) = edited_fixture("missing-start.yaml", |text| {
        text.replace(
            "    hourly_rate: \"40.00\"\n",
            "    hourly_rate: \"40.00\"\n    hourly_rate: \"45.00\"\n",
        )
    });
    assert_one_error(
        &check(&f),
        &["m.yaml:22:5:", "`hourly_rate` is written twice"],
    );
}

/// Values far beyond any contract are refused with a message, not a crash.
#[test]
fn absurd_values_are_refused_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let klippekort = std::fs::read_to_string(examples().join("itech-klippekort.yaml")).unwrap();
    let trinax = std::fs::read_to_string(examples().join("trinax.yaml")).unwrap();
    let cases = [
        (
            klippekort.replace(
                "hourly_rate: \"1000.00\"",
                "hourly_rate: \"79228162514264337593543950335\"",
            ),
            "templates.itech-punch-card.hourly_rate: `79228162514264337593543950335` is too large",
        ),
        (
            klippekort.replace("valid_years: 5", "valid_years: 4294967295"),
            "templates.itech-punch-card.card_terms.valid_years: `valid_years` is a number of years from 1 to 100",
        ),
        (
            klippekort.replace("per_onsite_visit: 30m", "per_onsite_visit: 99999999999999h"),
            "templates.itech-punch-card.travel.per_onsite_visit: `99999999999999h` is too long",
        ),
        (
            trinax.replace("first_response: 16h", "first_response: 99999999999h"),
            "templates.trinax-access.sla.first_response: `99999999999h` is too long for an SLA target",
        ),
    ];
    for (text, needle) in cases {
        let f = dir.path().join("m.yaml");
        std::fs::write(&f, text).unwrap();
        assert_one_error(&check(&f), &[needle]);
        // `bill` refuses the same mapping the same way, before reading tickets.
        let r = run_on(
            "bill",
            f.to_str().unwrap(),
            LV_IT_TICKETS,
            &["--period", "2026-10"],
        );
        assert_bad(&r, &[needle]);
    }
}

// ----------------------------------------------------------------- bill: good

#[test]
fn bill_explain_prints_the_invoice_totals_and_how_they_were_made() {
    let r = run_on(
        "bill",
        LV_IT,
        LV_IT_TICKETS,
        &["--period", "2026-10", "--explain"],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    for needle in [
        "Invoices for 2026-10",
        "riga-bakery  175.00 EUR",
        "daugava-logistics  530.00 EUR",
        "jurmala-hotel  990.00 EUR",
        "line",
        "unit price",
        "Support work, 3.25 h",
        "Call-out fee × 3",
        "Monthly fee (Standard), 2026-10",
        "rounded up to a multiple of 15 min",
        "Report (every ticket with work in the period)",
        "unauthorized requester",
    ] {
        assert!(r.stdout.contains(needle), "stdout lacks {needle:?}:\n{r:?}");
    }
}

/// `bill --json` of the lv-it sample's October.
fn lv_it_october() -> serde_json::Value {
    let r = run_on(
        "bill",
        LV_IT,
        LV_IT_TICKETS,
        &["--period", "2026-10", "--json"],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    serde_json::from_str(&r.stdout).expect("JSON on stdout")
}

#[test]
fn bill_json_prints_the_bill_document() {
    let doc = lv_it_october();
    assert_eq!(doc["period"]["month"], "2026-10");
    let riga = doc["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["customer"] == "riga-bakery")
        .expect("an invoice for riga-bakery");
    assert_eq!(riga["total_net"], "175.00");
}

#[test]
fn sla_as_of_lists_the_open_clocks() {
    let r = run_on(
        "sla",
        LV_IT,
        LV_IT_TICKETS,
        &["--as-of", "2026-10-08T11:00:00+03:00"],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("T-1003"))
        .unwrap_or_else(|| panic!("no clock for T-1003:\n{r:?}"));
    for needle in [
        "riga-bakery",
        "first_response",
        "2026-10-08T10:00:00+03:00",
        "BREACHED",
    ] {
        assert!(row.contains(needle), "row lacks {needle:?}: {row}");
    }
    // A met or resolved clock is not open.
    assert!(!r.stdout.contains("T-1001 "), "{r:?}");

    let r = run_on(
        "sla",
        LV_IT,
        LV_IT_TICKETS,
        &["--as-of", "2026-10-08T11:00:00+03:00", "--json"],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let rows: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let t1003 = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["ticket"] == "T-1003" && x["metric"] == "first_response")
        .expect("T-1003 in the JSON");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(t1003["due_at"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339("2026-10-08T10:00:00+03:00").unwrap()
    );
    assert_eq!(t1003["breached"], true);
}

// ------------------------------------------------------------ bill: bad input

/// A small export; `tickets` are JSON objects, one per ticket.
fn export(tickets: &[String]) -> String {
    format!(
        "{{\n  \"source\": \"test\",\n  \"tickets\": [\n{}\n  ]\n}}\n",
        tickets.join(",\n")
    )
}

/// A ticket of riga-bakery (lv-it) with the given work entries, pretty-printed
/// one key per line.
fn ticket(id: &str, customer: &str, work: &[String]) -> String {
    format!(
        r#"    {{
      "id": "{id}",
      "customer": "{customer}",
      "requester": "ilze@riga-bakery.example",
      "title": "Printer offline",
      "priority": "2 normal",
      "category": "config-change",
      "tags": [],
      "fields": {{}},
      "created_at": "2026-10-01T08:30:00+03:00",
      "first_response_at": "2026-10-01T09:10:00+03:00",
      "resolved_at": null,
      "states": [
        {{"at": "2026-10-01T08:30:00+03:00", "state": "new"}}
      ],
      "work": [
{}
      ]
    }}"#,
        work.join(",\n")
    )
}

fn work(id: &str, minutes: &str, kind: &str) -> String {
    format!(
        r#"        {{"id": "{id}", "at": "2026-10-01T09:10:00+03:00", "minutes": {minutes}, "agent": "juris", "kind": "{kind}"}}"#
    )
}

/// A good export: two riga-bakery tickets with two work entries each.
fn good_tickets() -> Vec<String> {
    vec![
        ticket(
            "T-1",
            "riga-bakery",
            &[work("W-1", "20", "remote"), work("W-2", "15", "onsite")],
        ),
        ticket(
            "T-2",
            "riga-bakery",
            &[work("W-3", "30", "phone"), work("W-4", "12.5", "remote")],
        ),
    ]
}

/// 1-based line of the first `needle` in `text`, after `after` if given.
fn line_of(text: &str, needle: &str, after: Option<&str>) -> usize {
    let from = after.map_or(0, |a| text.find(a).expect("the anchor is in the text"));
    let at = from
        + text[from..]
            .find(needle)
            .expect("the needle is in the text");
    text[..at].matches('\n').count() + 1
}

/// Exactly one message, naming the line of `text` where `needle` is and
/// holding every one of `needles`, when `text` is billed as an export.
#[track_caller]
fn refused_at(text: &str, needle: &str, needles: &[&str]) {
    let line = line_of(text, needle, None);
    let (_dir, f, r) = bill_export(text);
    let at = format!("{}:{line}:", f.display());
    assert_one_message(&r, &[&[at.as_str()], needles].concat());
}

/// Writes `text` as an export and bills it against lv-it.
fn bill_export(text: &str) -> (tempfile::TempDir, PathBuf, Run) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tickets.json");
    std::fs::write(&f, text).unwrap();
    let r = run_on("bill", LV_IT, f.to_str().unwrap(), &["--period", "2026-10"]);
    (dir, f, r)
}

/// Exit 2, nothing on stdout, one line on stderr holding every needle.
#[track_caller]
fn assert_one_message(r: &Run, needles: &[&str]) {
    assert_bad(r, needles);
    assert_eq!(
        r.stderr.trim_end().lines().count(),
        1,
        "expected one message:\n{r:?}"
    );
}

#[test]
fn the_good_export_bills() {
    let (_dir, _f, r) = bill_export(&export(&good_tickets()));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("riga-bakery"), "{r:?}");
}

#[test]
fn a_missing_tickets_file_is_named() {
    let r = run_on(
        "bill",
        LV_IT,
        "tests/fixtures/nowhere.json",
        &["--period", "2026-10"],
    );
    assert_one_message(
        &r,
        &["tests/fixtures/nowhere.json: cannot read the ticket export"],
    );
}

#[test]
fn malformed_json_names_the_line() {
    let (_dir, f, r) = bill_export("{\n  \"tickets\": [\n    {\"id\": }\n  ]\n}\n");
    let file = f.display().to_string();
    assert_one_message(
        &r,
        &[&format!("{file}:3:"), "tickets[0].id", "expected value"],
    );
}

#[test]
fn a_truncated_export_names_the_file() {
    let text = export(&good_tickets());
    let (_dir, f, r) = bill_export(&text[..text.len() / 2]);
    assert_one_message(
        &r,
        &[&f.display().to_string(), "the file ends in the middle of"],
    );
}

#[test]
fn an_empty_export_or_a_bare_list_is_refused() {
    let (_dir, f, r) = bill_export("");
    assert_one_message(&r, &[&f.display().to_string(), "the file is empty"]);
    let (_dir, f, r) = bill_export("\n[]\n");
    assert_one_message(
        &r,
        &[&format!("{}:2:1:", f.display()), "expected a ticket export"],
    );
    let (_dir, f, r) = bill_export("{\"source\": \"zammad\"}");
    assert_one_message(&r, &[&f.display().to_string(), "missing field `tickets`"]);
}

#[test]
fn negative_minutes_name_the_field_and_line() {
    let mut t = good_tickets();
    t[1] = ticket(
        "T-2",
        "riga-bakery",
        &[work("W-3", "30", "phone"), work("W-4", "-5", "remote")],
    );
    refused_at(
        &export(&t),
        "\"minutes\": -5",
        &["tickets[1].work[1].minutes", "zero or more", "-5"],
    );
}

#[test]
fn absurd_minutes_are_refused_not_a_crash() {
    let mut t = good_tickets();
    t[0] = ticket("T-1", "riga-bakery", &[work("W-1", "1e27", "remote")]);
    refused_at(
        &export(&t),
        "1e27",
        &[
            "tickets[0].work[0].minutes",
            "more than one work entry can log",
        ],
    );
}

#[test]
fn minutes_as_text_are_a_type_error() {
    let mut t = good_tickets();
    t[0] = ticket("T-1", "riga-bakery", &[work("W-1", "\"20\"", "remote")]);
    refused_at(
        &export(&t),
        "\"20\"",
        &["tickets[0].work[0].minutes", "expected a JSON number"],
    );
}

#[test]
fn an_unknown_work_kind_names_the_valid_ones() {
    let mut t = good_tickets();
    t[0] = ticket(
        "T-1",
        "riga-bakery",
        &[work("W-1", "20", "remote"), work("W-2", "15", "teleport")],
    );
    refused_at(
        &export(&t),
        "teleport",
        &[
            "tickets[0].work[1].kind",
            "`teleport` is not a work kind",
            "remote, onsite or phone",
        ],
    );
}

#[test]
fn a_bad_timestamp_names_the_field_and_line() {
    let mut t = good_tickets();
    t[1] = t[1].replace(
        "\"created_at\": \"2026-10-01T08:30:00+03:00\"",
        "\"created_at\": \"2026-10-01 08:30\"",
    );
    let text = export(&t);
    let line = line_of(&text, "2026-10-01 08:30", None);
    let (_dir, f, r) = bill_export(&text);
    assert_one_message(
        &r,
        &[
            &format!("{}:{line}:", f.display()),
            "tickets[1].created_at",
            "`2026-10-01 08:30` is not an RFC 3339 timestamp",
        ],
    );

    let mut t = good_tickets();
    t[0] = ticket("T-1", "riga-bakery", &[work("W-1", "20", "remote")]).replace(
        "\"at\": \"2026-10-01T09:10:00+03:00\"",
        "\"at\": \"yesterday\"",
    );
    refused_at(&export(&t), "yesterday", &["tickets[0].work[0].at"]);
}

#[test]
fn a_missing_field_is_named() {
    let t = good_tickets();
    let text = export(&t).replacen("      \"customer\": \"riga-bakery\",\n", "", 1);
    let (_dir, f, r) = bill_export(&text);
    assert_one_message(
        &r,
        &[
            &f.display().to_string(),
            "tickets[0]",
            "missing field `customer`",
        ],
    );
}

#[test]
fn a_customer_without_a_contract_names_the_ticket_line_and_customer() {
    let mut t = good_tickets();
    t[1] = ticket("T-2", "ghost-co", &[work("W-3", "30", "phone")]);
    refused_at(
        &export(&t),
        "\"customer\": \"ghost-co\"",
        &[
            "tickets[1].customer",
            "ticket T-2",
            "`ghost-co`",
            "no contract in mappings/examples/lv-it.yaml",
            "customers with a contract: daugava-logistics, jurmala-hotel, riga-bakery",
        ],
    );
}

#[test]
fn a_duplicate_ticket_id_names_both_places() {
    let mut t = good_tickets();
    t[1] = ticket("T-1", "riga-bakery", &[work("W-3", "30", "phone")]);
    let text = export(&t);
    let first = line_of(&text, "\"id\": \"T-1\"", None);
    let second = line_of(&text, "\"id\": \"T-1\"", Some("W-2"));
    assert!(second > first);
    let (_dir, f, r) = bill_export(&text);
    assert_one_message(
        &r,
        &[
            &format!("{}:{second}:", f.display()),
            "tickets[1].id",
            "`T-1` appears more than once",
            &format!("first as tickets[0] at line {first}"),
        ],
    );
}

#[test]
fn a_bad_period_is_refused() {
    for period in ["2026-13", "2026-1", "October", "0000-01"] {
        let r = run_on("bill", LV_IT, LV_IT_TICKETS, &["--period", period]);
        assert_one_message(
            &r,
            &["--period", &format!("`{period}` is not a month"), "YYYY-MM"],
        );
    }
}

#[test]
fn a_bad_as_of_is_refused() {
    let r = run_on(
        "bill",
        LV_IT,
        LV_IT_TICKETS,
        &["--period", "2026-10", "--as-of", "2026-10-08 11:00"],
    );
    assert_one_message(
        &r,
        &["--as-of", "`2026-10-08 11:00` is not an RFC 3339 timestamp"],
    );
    let r = run_on("sla", LV_IT, LV_IT_TICKETS, &["--as-of", "yesterday"]);
    assert_one_message(&r, &["--as-of", "`yesterday` is not an RFC 3339 timestamp"]);
}

#[test]
fn sla_refuses_bad_exports_the_same_way() {
    let mut t = good_tickets();
    t[1] = ticket("T-2", "ghost-co", &[work("W-3", "30", "phone")]);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tickets.json");
    std::fs::write(&f, export(&t)).unwrap();
    let r = run_on(
        "sla",
        LV_IT,
        f.to_str().unwrap(),
        &["--as-of", "2026-10-08T11:00:00+03:00"],
    );
    assert_one_message(
        &r,
        &[&f.display().to_string(), "tickets[1].customer", "ghost-co"],
    );
}

#[test]
fn a_broken_mapping_stops_bill_before_anything_is_printed() {
    let r = run_on(
        "bill",
        &fixture("bad-money.yaml"),
        LV_IT_TICKETS,
        &["--period", "2026-10"],
    );
    assert_bad(
        &r,
        &["tests/fixtures/mappings/bad-money.yaml:22:18: error: customers.acme.monthly_fee:"],
    );
    let r = run_on(
        "bill",
        "mappings/nowhere",
        LV_IT_TICKETS,
        &["--period", "2026-10"],
    );
    assert_one_message(&r, &["mappings/nowhere: error: cannot open the mapping"]);
}

// ------------------------------------------------------ check: accounting ids

/// lv-it's mapping with `extra` added under riga-bakery, in a folder of its own.
fn lv_it_with(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(examples().join("lv-it.yaml"))
        .unwrap()
        .replace(
            "    requesters: [ilze@riga-bakery.example]\n",
            &format!("    requesters: [ilze@riga-bakery.example]\n{extra}"),
        );
    let path = dir.path().join("lv-it.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn accounting_ids_per_target_are_checked_with_the_rest() {
    let (_d, good) = lv_it_with(
        "    accounting:\n      xero: {contact: 4a741842-6ffa, account: \"200\", tax: OUTPUT2}\n      fortnox: {contact: \"1042\", item: SUPPORT-H}\n",
    );
    assert_eq!(check(&good).code, Some(0), "{:?}", check(&good));
    let (_d, empty) = lv_it_with("    accounting:\n      xero: {contact: \"\"}\n");
    assert_one_error(
        &check(&empty),
        &["lv-it.yaml:", "accounting.xero.contact", "is empty"],
    );
    let (_d, typo) = lv_it_with("    accounting:\n      xero: {contactid: x}\n");
    assert_bad(&check(&typo), &["lv-it.yaml:", "contactid"]);
}

// ------------------------------------------------- check and report: languages

#[test]
fn a_report_language_outside_the_five_is_refused_where_it_is_written() {
    let (_d, good) = lv_it_with("    language: sv\n    report_every: quarter\n");
    assert_eq!(check(&good).code, Some(0), "{:?}", check(&good));
    let (_d, bad) = lv_it_with("    language: de\n");
    let r = check(&bad);
    assert_one_error(
        &r,
        &[
            "lv-it.yaml:91:15:",
            "customers.riga-bakery.language",
            "unknown language `de`",
            "en, lv, pl, sv, da",
        ],
    );
    let (_d, cadence) = lv_it_with("    report_every: week\n");
    assert_one_error(
        &check(&cadence),
        &["report_every", "`week`", "month, quarter, year"],
    );
    // A dated change cannot switch the language: it is not a term.
    let (_d, changed) =
        lv_it_with("    changes:\n      - effective_from: 2026-11-01\n        language: en\n");
    assert_bad(&check(&changed), &["language", "cannot change by date"]);
}

#[test]
fn report_writes_the_page_in_the_asked_language_and_refuses_an_unknown_one() {
    let out = tempfile::tempdir().unwrap();
    let r = run([
        "report",
        "--customer",
        "riga-bakery",
        "--period",
        "2026-10",
        "--mapping",
        LV_IT,
        "--tickets",
        LV_IT_TICKETS,
        "--language",
        "pl",
        "--chromium",
        "/nonexistent/chromium",
        "--out",
    ]
    .into_iter()
    .map(std::ffi::OsString::from)
    .chain([out.path().as_os_str().to_owned()]));
    assert_eq!(r.code, Some(0), "{r:?}");
    let html = std::fs::read_to_string(out.path().join("riga-bakery-2026-10-pl.html")).unwrap();
    assert!(html.contains("<html lang=\"pl\">"), "{html}");
    assert!(html.contains("Raport z prac"), "{html}");
    assert_mentions(&r, &["PDF skipped", "Chromium"]);
    let bad = run([
        "report",
        "--customer",
        "riga-bakery",
        "--period",
        "2026-10",
        "--mapping",
        LV_IT,
        "--tickets",
        LV_IT_TICKETS,
        "--language",
        "de",
    ]);
    assert_bad(&bad, &["--language", "`de`", "en, lv, pl, sv, da"]);
    let unknown = run([
        "report",
        "--customer",
        "nobody",
        "--period",
        "2026-10",
        "--mapping",
        LV_IT,
        "--tickets",
        LV_IT_TICKETS,
    ]);
    assert_bad(&unknown, &["--customer", "`nobody`", "riga-bakery"]);
}

/// The demo's configuration with its state and drafts in `dir`.
fn demo_config(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("config/demo.toml"))
        .unwrap()
        .replace("target/demo", &dir.display().to_string());
    let f = dir.join("demo.toml");
    std::fs::write(&f, text).unwrap();
    f
}

#[test]
fn json_logs_are_one_object_per_line_with_the_cycle_in_fields() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config(dir.path());
    let r = run([
        "run".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--once".as_ref(),
        "--log-format".as_ref(),
        "json".as_ref(),
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let lines: Vec<serde_json::Value> = r
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let cycle = lines
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("cycle:"))
        })
        .unwrap_or_else(|| panic!("no cycle line: {r:?}"));
    assert_eq!(cycle["level"], "INFO");
    // The bundled exports close 24 customer-months, 20 of them with a draft.
    assert_eq!(cycle["fields"]["drafts_queued"], 20, "{cycle}");
    assert_eq!(cycle["fields"]["dead"], 0, "{cycle}");
}

#[test]
fn config_show_names_each_keys_origin_and_masks_secrets() {
    let r = run([
        "config",
        "show",
        "--config",
        "tests/fixtures/config/every-key.toml",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let line = |key: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key}: {r:?}"))
            .to_owned()
    };
    assert!(
        line("targets.xero.client_secret").contains("= \"***\""),
        "{r:?}"
    );
    assert!(
        line("store.url").ends_with("# tests/fixtures/config/every-key.toml"),
        "{r:?}"
    );
    assert!(line("retry.attempts").ends_with("# default"), "{r:?}");
    assert!(!r.stdout.contains("xero-secret-1"), "{r:?}");
    let json = run([
        "config",
        "show",
        "--json",
        "--config",
        "tests/fixtures/config/every-key.toml",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json.stdout).unwrap();
    let url = rows.iter().find(|r| r["key"] == "store.url").unwrap();
    assert_eq!(url["value"], "\"sqlite://state.db\"");
}

#[test]
fn completions_and_the_man_page_come_from_the_commands() {
    let bash = run(["completions", "bash"]);
    assert_eq!(bash.code, Some(0), "{bash:?}");
    assert!(
        bash.stdout.contains("statement-link"),
        "every command completes"
    );
    let man = run(["man"]);
    assert_eq!(man.code, Some(0), "{man:?}");
    assert!(man.stdout.contains(".TH contract-bridge 1"), "{man:?}");
    assert!(
        man.stdout.contains("statement\\-link"),
        "every command is in the man page"
    );
}

/// The README's steps 2 to 4, as written: its `file=` blocks saved in an
/// empty folder beside the clone (`contract-bridge/`), its `sh` blocks run
/// there with the built binary on PATH.
#[test]
fn the_readme_path_works() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root(), dir.path().join("contract-bridge")).unwrap();
    let (mut step, mut block, mut info) = (String::new(), None::<String>, String::new());
    let mut commands = Vec::new();
    let mut files = 0;
    for line in readme.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            step = heading.to_owned();
        }
        match (&mut block, line.strip_prefix("```")) {
            (None, Some(i)) => (block, info) = (Some(String::new()), i.to_owned()),
            (Some(text), Some(_)) => {
                let text = std::mem::take(text);
                block = None;
                if let Some(name) = info
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("file="))
                {
                    let path = dir.path().join(name);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(path, &text).unwrap();
                    files += 1;
                } else if info == "sh" && ["2.", "3.", "4."].iter().any(|s| step.starts_with(s)) {
                    commands.push((step.clone(), text));
                }
            }
            (Some(text), None) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(
        files >= 4,
        "the mapping, the file and two fragments: {files}"
    );
    assert!(commands.len() >= 2, "{commands:?}");
    let bin = Path::new(env!("CARGO_BIN_EXE_contract-bridge"))
        .parent()
        .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut printed = String::new();
    for (step, script) in &commands {
        let out = std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(dir.path())
            .env("PATH", &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "README step {step}:\n{script}\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed.push_str(&stdout);
    }
    // Step 2's October for riga-bakery, as the reference mapping bills it.
    let doc = lv_it_october();
    let riga = doc["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["customer"] == "riga-bakery")
        .unwrap();
    assert_eq!(riga["total_net"], "175.00");
    assert!(printed.contains("riga-bakery  175.00 EUR"), "{printed}");
    // Step 4's `config show`: the fragment's secret by where it is read.
    assert!(
        printed.contains("sources.desk.token = \"env:ZAMMAD_TOKEN\""),
        "{printed}"
    );
    // The stand-in's file reads the bundled sample only: no fragment of steps
    // 3 and 4 (a helpdesk it cannot reach would hold every month).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_contract-bridge"))
        .args(["config", "show", "--json", "--config", "try/bridge.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let systems: std::collections::BTreeSet<&str> = shown
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|row| row["key"].as_str())
        .filter(|key| key.starts_with("sources.") || key.starts_with("targets."))
        .map(|key| key.splitn(3, '.').take(2).last().unwrap())
        .collect();
    assert_eq!(
        systems,
        ["samples", "standin"].into_iter().collect(),
        "{shown}"
    );
}
