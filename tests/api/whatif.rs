//! Issue 17, what-if: `diff` shows the lines a mapping edit changes, with
//! old and new amounts; the daemon holds a reload that moves money in a
//! closed period until `apply-mapping` accepts it.
//!
//! Expected figures come from the contract terms (shared/scenarios/contracts.md:
//! moneo bills paid tickets at 60.00/h, at least 15 minutes each) and the
//! scenario's expected bill and tickets, not from our own output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{
    bin, examples, folder_source, folder_target, root, run_once_with, scenarios, succeeded,
    with_config, write_config, xero_target,
};
use rust_decimal::{Decimal, RoundingStrategy};
use rust_decimal_macros::dec;
use serde_json::Value;

fn moneo_mapping() -> PathBuf {
    examples().join("moneo.yaml")
}

fn moneo_tickets() -> PathBuf {
    scenarios().join("moneo/tickets.json")
}

/// Money rounded once, half away from zero (rule 5).
fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Minutes billed per hour in October per moneo customer, from the
/// scenario's expected report (billable rows).
fn billed_minutes(customer: &str) -> Decimal {
    let text = std::fs::read_to_string(scenarios().join("moneo/expected.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["report"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["customer"] == customer && r["billable"] == true)
        .map(|r| Decimal::try_from(r["minutes_billed"].as_f64().unwrap()).unwrap())
        .sum()
}

/// moneo's mapping with `from` replaced by `to` (which must be there).
fn edited(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(moneo_mapping()).unwrap();
    assert!(text.contains(from), "moneo.yaml has `{from}`");
    let path = dir.join(name);
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

fn diff(args: &[&str]) -> std::process::Output {
    Command::new(bin()).arg("diff").args(args).output().unwrap()
}

fn dec_of(v: &Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

/// `diff --mapping NEW --against OLD --tickets (moneo's)`, then `rest`.
fn diff_moneo(new: &Path, old: &Path, rest: &[&str]) -> Output {
    let tickets = moneo_tickets();
    let (new, old) = (new.to_str().unwrap(), old.to_str().unwrap());
    let args = ["--mapping", new, "--against", old, "--tickets"];
    diff(&[&args[..], &[tickets.to_str().unwrap()], rest].concat())
}

/// The JSON on stdout of a command that must succeed.
#[track_caller]
fn json_of(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `status --json` of the store behind `cfg`.
fn status_json(cfg: &Path) -> Value {
    serde_json::from_slice(&with_config(cfg, &["status", "--json"]).stdout).unwrap()
}

/// The stderr of a command that must refuse its input (exit 2).
#[track_caller]
fn refused(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

/// Every needle somewhere in `stderr`.
#[track_caller]
fn assert_mentions(stderr: &str, needles: &[&str]) {
    for n in needles {
        assert!(stderr.contains(n), "no {n:?} in {stderr}");
    }
}

/// moneo's mapping copied to `dir/mapping/moneo.yaml`: the folder and the file.
fn moneo_folder(dir: &Path) -> (PathBuf, PathBuf) {
    let folder = dir.join("mapping");
    std::fs::create_dir_all(&folder).unwrap();
    let mapping = folder.join("moneo.yaml");
    std::fs::copy(moneo_mapping(), &mapping).unwrap();
    (folder, mapping)
}

/// moneo's hourly rate raised from 60.00 to 75.00 in the mapping at `path`.
fn raise_the_rate(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(RATE_60), "{} has `{RATE_60}`", path.display());
    std::fs::write(path, text.replacen(RATE_60, RATE_75, 1)).unwrap();
}

const RATE_60: &str = "hourly_rate: \"60.00\"";
const RATE_75: &str = "hourly_rate: \"75.00\"";

#[test]
fn a_rate_edit_shows_the_changed_work_lines_and_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let new = edited(dir.path(), "moneo.yaml", RATE_60, RATE_75);
    let old = moneo_mapping();
    let v = json_of(&diff_moneo(&new, &old, &["--period", "2026-10", "--json"]));
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "both moneo customers bill hours: {v:#}");
    let mut total = Decimal::ZERO;
    for c in changes {
        let customer = c["customer"].as_str().unwrap();
        let minutes = billed_minutes(customer);
        let (old, new) = (
            cents(minutes * dec!(60) / dec!(60)),
            cents(minutes * dec!(75) / dec!(60)),
        );
        let lines = c["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 1, "only the work line changes: {c:#}");
        let l = &lines[0];
        assert_eq!(l["kind"], "work");
        assert_eq!(l["rule"], "hourly rate");
        assert_eq!(dec_of(&l["old"]["amount"]), old, "{customer}");
        assert_eq!(dec_of(&l["new"]["amount"]), new, "{customer}");
        assert_eq!(dec_of(&l["old"]["unit_price"]), dec!(60));
        assert_eq!(dec_of(&l["new"]["unit_price"]), dec!(75));
        assert_eq!(dec_of(&l["delta"]), new - old);
        assert_eq!(dec_of(&c["delta"]), new - old);
        assert!(
            l["reason"].as_str().unwrap().contains("60.00 → 75.00"),
            "{l:#}"
        );
        total += new - old;
    }
    assert_eq!(dec_of(&v["total_delta"]), total);
    assert_eq!(total, dec!(59.38), "19.38 + 40.00");

    // The text says the same.
    let out = diff_moneo(&new, &old, &["--period", "2026-10"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("baltic-retail 2026-10: 77.50 → 96.88 (+19.38)"),
        "{text}"
    );
    assert!(
        text.contains("vidzeme-foods 2026-10: 380.00 → 420.00 (+40.00)"),
        "{text}"
    );
    assert!(text.contains("total delta: +59.38"), "{text}");
}

#[test]
fn a_category_moved_from_free_to_paid_names_the_ticket_it_bills() {
    let dir = tempfile::tempdir().unwrap();
    // `bug` leaves the free categories and becomes paid.
    let step = edited(
        dir.path(),
        "step.yaml",
        "categories: [bug, account-admin, suggestion, feature-intro]",
        "categories: [account-admin, suggestion, feature-intro]",
    );
    let new = dir.path().join("moneo.yaml");
    let text = std::fs::read_to_string(&step).unwrap().replacen(
        "categories: [settings-change, customer-error,",
        "categories: [bug, settings-change, customer-error,",
        1,
    );
    std::fs::write(&new, text).unwrap();
    let out = diff_moneo(&new, &moneo_mapping(), &["--period", "2026-10", "--json"]);
    let v = json_of(&out);
    // The export's only bug ticket: M-102, baltic-retail, 90 minutes in
    // October, over the 15-minute minimum, at 60.00/h.
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{v:#}");
    assert_eq!(changes[0]["customer"], "baltic-retail");
    let l = &changes[0]["lines"][0];
    assert_eq!(dec_of(&l["delta"]), dec!(90.00));
    assert!(
        l["tickets"]
            .as_array()
            .unwrap()
            .contains(&Value::from("M-102"))
    );
    assert!(
        l["reason"].as_str().unwrap().contains("now on it: M-102"),
        "{l:#}"
    );
    let t = &changes[0]["ticket_changes"][0];
    assert_eq!(t["ticket"], "M-102");
    assert!(
        t["new_rule"].as_str().unwrap().contains("paid categories"),
        "{t:#}"
    );
    assert_eq!(dec_of(&v["total_delta"]), dec!(90.00));
}

#[test]
fn diff_needs_a_period_without_a_configuration() {
    let moneo = moneo_mapping();
    assert_mentions(&refused(&diff_moneo(&moneo, &moneo, &[])), &["--period"]);
    // The same mapping on both sides changes nothing.
    let out = diff_moneo(&moneo, &moneo, &["--since", "2026-09"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "no invoice line changes\n"
    );
}

/// A daemon billing moneo's tickets from a folder into a folder of drafts,
/// its mapping at `dir/mapping/moneo.yaml`.
fn moneo_daemon(dir: &Path) -> (PathBuf, PathBuf) {
    let (folder, mapping) = moneo_folder(dir);
    let tables = format!(
        "{}{}",
        folder_source("moneo", moneo_tickets().parent().unwrap()),
        folder_target("drafts", &dir.join("drafts")),
    );
    (write_config(dir, &folder, "drafts", &tables), mapping)
}

/// The drafts written for `period`, by customer.
fn drafts_of(dir: &Path, period: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join("drafts")) else {
        return out;
    };
    for e in entries {
        let path = e.unwrap().path();
        let v: Value = match std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            Some(v) => v,
            None => continue,
        };
        if v["draft"]["period"] == period {
            out.push((v["draft"]["customer"].as_str().unwrap().to_owned(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn audit(dir: &Path, action: &str) -> Vec<store::AuditRecord> {
    let store = store::Store::open(&format!("sqlite://{}/state.db", dir.display()))
        .await
        .unwrap();
    store
        .audit_entries(&store::AuditFilter {
            action: Some(action.into()),
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_reload_that_changes_a_closed_month_is_held_until_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, mapping) = moneo_daemon(dir.path());
    // October closes under the mapping as written.
    let log = run_once_with(&cfg, "2026-11-01T07:30:00Z", &[]);
    assert_eq!(drafts_of(dir.path(), "2026-10").len(), 2, "{log}");

    // The rate goes up: October, closed, would be corrected.
    raise_the_rate(&mapping);
    // What the edit would do, against the mapping in force.
    let out = with_config(
        &cfg,
        &[
            "diff",
            "--live",
            "--mapping",
            mapping.to_str().unwrap(),
            "--period",
            "2026-10",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("total delta: +59.38"), "{text}");
    assert!(text.contains("closed periods it changes"), "{text}");

    // November closes while the change is held: no October correction.
    let log = run_once_with(&cfg, "2026-12-01T07:30:00Z", &[]);
    assert!(log.contains("held, not applied"), "{log}");
    let november = drafts_of(dir.path(), "2026-11");
    assert!(!november.is_empty(), "{log}");
    for (customer, d) in &november {
        assert_eq!(
            crate::support::corrections_of(d, "2026-10"),
            Decimal::ZERO,
            "{customer}: the held rate corrects nothing"
        );
    }
    let status = String::from_utf8_lossy(&with_config(&cfg, &["status"]).stdout).to_string();
    assert!(
        status.contains("HELD") && status.contains("59.38"),
        "{status}"
    );
    let json = status_json(&cfg);
    let held = &json["mapping_changes"][0];
    assert_eq!(held["status"], "held");
    assert_eq!(dec_of(&held["closed_total_delta"]), dec!(59.38));
    let held_audit = audit(dir.path(), "mapping_held").await;
    assert_eq!(held_audit.len(), 1, "held once, however often it is seen");
    assert_eq!(held_audit[0].actor, "daemon");

    // Accepted: the next run applies it and December corrects October.
    let id = held["id"].as_i64().unwrap().to_string();
    succeeded(
        Command::new(bin())
            .args(["apply-mapping", "--id", &id, "--config"])
            .arg(&cfg)
            .env("USER", "anna"),
    );
    let applied = audit(dir.path(), "mapping_applied").await;
    assert!(applied.iter().any(|a| a.actor == "anna"), "{applied:?}");
    let log = run_once_with(&cfg, "2027-01-01T07:30:00Z", &[]);
    let december = drafts_of(dir.path(), "2026-12");
    let corrected: Vec<(String, Decimal)> = december
        .iter()
        .map(|(c, d)| (c.clone(), crate::support::corrections_of(d, "2026-10")))
        .collect();
    let expect = |c: &str| {
        let m = billed_minutes(c);
        cents(m * dec!(75) / dec!(60)) - cents(m)
    };
    assert_eq!(
        corrected,
        vec![
            ("baltic-retail".to_owned(), expect("baltic-retail")),
            ("vidzeme-foods".to_owned(), expect("vidzeme-foods")),
        ],
        "{log}"
    );
    let json = status_json(&cfg);
    assert_eq!(json["mapping_changes"], Value::Array(vec![]), "{json:#}");
}

#[tokio::test]
async fn a_reload_that_changes_only_open_months_applies_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, mapping) = moneo_daemon(dir.path());
    run_once_with(&cfg, "2026-11-01T07:30:00Z", &[]);
    // A new customer: nothing of theirs is closed.
    let mut text = std::fs::read_to_string(&mapping).unwrap();
    text.push_str("  new-shop:\n    template: moneo-plus\n    add_ons: [faster-response]\n");
    std::fs::write(&mapping, text).unwrap();
    let log = run_once_with(&cfg, "2026-11-02T08:00:00Z", &[]);
    assert!(!log.contains("held"), "{log}");
    let status = status_json(&cfg);
    assert_eq!(status["mapping_changes"], Value::Array(vec![]));
    let applied = audit(dir.path(), "mapping_applied").await;
    let last = applied.last().unwrap();
    assert_eq!(last.actor, "daemon");
    // faster-response, 100.00 a month (contracts.md), for October and November.
    assert_eq!(
        dec_of(&last.detail["open_total_delta"]),
        dec!(200.00),
        "{last:?}"
    );
    // And October of the new customer closes under it.
    let log = run_once_with(&cfg, "2026-11-02T09:00:00Z", &[]);
    assert!(
        drafts_of(dir.path(), "2026-10")
            .iter()
            .any(|(c, _)| c == "new-shop"),
        "{log}"
    );
}

/// A Xero organisation for `check`: a custom connection's token, and its
/// chart of accounts, tax rates and items (fixtures in Xero's shape).
async fn xero_lists() -> wiremock::MockServer {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, ResponseTemplate};
    let server = wiremock::MockServer::start().await;
    // A custom connection asks for what `check` reads besides invoices.
    Mock::given(method("POST"))
        .and(path("/connect/token"))
        .and(wiremock::matchers::body_string_contains(
            "accounting.settings.read",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"access_token": "tok-1", "expires_in": 1800, "token_type": "Bearer"}),
        ))
        .mount(&server)
        .await;
    for (p, file) in [
        ("/api.xro/2.0/Accounts", "accounts.json"),
        ("/api.xro/2.0/TaxRates", "tax-rates.json"),
        ("/api.xro/2.0/Items", "items.json"),
    ] {
        let body = std::fs::read_to_string(root().join("tests/fixtures/xero").join(file)).unwrap();
        Mock::given(method("GET"))
            .and(path(p))
            .and(header("authorization", "Bearer tok-1"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
            .expect(1)
            .mount(&server)
            .await;
    }
    server
}

/// moneo's mapping with `accounts.books` (`section`, indented) beside it,
/// and a configuration whose target `books` is the Xero at `uri`.
fn xero_check_setup(dir: &Path, section: &str, uri: &str) -> (PathBuf, PathBuf) {
    let (folder, _) = moneo_folder(dir);
    let accounts = folder.join("accounts.yaml");
    std::fs::write(&accounts, format!("accounts:\n  books:\n{section}")).unwrap();
    let tables = format!(
        r#"{xero}timeout_ms = 2000
requests_per_second = 1000
[targets.books.contacts]
"#,
        xero = xero_target(uri, "s3cret").replace("[targets.xero]", "[targets.books]"),
    );
    (write_config(dir, &folder, "books", &tables), accounts)
}

/// [`xero_check_setup`] against a Xero of [`xero_lists`], which lives as
/// long as the third part (and checks on its drop that each list was read once).
async fn xero_check(dir: &Path, section: &str) -> (PathBuf, PathBuf, wiremock::MockServer) {
    let xero = xero_lists().await;
    let (cfg, accounts) = xero_check_setup(dir, section, &xero.uri());
    (cfg, accounts, xero)
}

fn check(cfg: &Path, mapping: &Path) -> std::process::Output {
    Command::new(bin())
        .args(["check", "--mapping"])
        .arg(mapping)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_rejects_an_account_code_xero_does_not_have_naming_file_line_and_valid_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, accounts, _xero) = xero_check(dir.path(), "    defaults: {account: \"200\", tax: OUTPUT2, tax_rate: \"20\"}\n    hours: {account: \"211\", item: SUPPORT-HOUR}\n    fee: {account: \"270\", item: FEE}\n    sla_credit: {tax: ZERORATED}\n").await;
    let stderr = refused(&check(&cfg, accounts.parent().unwrap()));
    // 211 does not exist; 270 is archived; ZERORATED is no tax type of it.
    let file = accounts.display().to_string();
    assert_mentions(
        &stderr,
        &[
            &format!("{file}:4:"),
            "accounts.books.hours.account",
            "`211` is not an account code of xero",
        ],
    );
    assert!(
        stderr.contains("valid: 090 (Business Bank Account), 200 (Sales), 210 (Support hours), 260 (Other Revenue)"),
        "archived 270 is not valid: {stderr}"
    );
    assert_mentions(&stderr, &[&format!("{file}:5:"), "`270`"]);
    assert_mentions(
        &stderr,
        &[
            &format!("{file}:6:"),
            "accounts.books.sla_credit.tax",
            "ECOUTPUTSERVICES",
        ],
    );
    assert!(stderr.contains("3 error(s)"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_accepts_codes_xero_has_and_refuses_a_wrong_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, accounts, _xero) = xero_check(dir.path(), "    defaults: {account: \"200\", tax: OUTPUT2}\n    hours: {account: \"210\", item: SUPPORT-HOUR}\n    sla_credit: {tax: ECOUTPUTSERVICES, tax_rate: \"0\"}\n").await;
    let folder = accounts.parent().unwrap().to_path_buf();
    let out = check(&cfg, &folder);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A rate that is not the system's for its code.
    std::fs::write(
        &accounts,
        "accounts:\n  books:\n    defaults: {account: \"200\", tax: OUTPUT2, tax_rate: \"25\"}\n",
    )
    .unwrap();
    let (cfg, _, _xero) = xero_check(
        dir.path(),
        "    defaults: {account: \"200\", tax: OUTPUT2, tax_rate: \"25\"}\n",
    )
    .await;
    let stderr = refused(&check(&cfg, &folder));
    assert_mentions(
        &stderr,
        &[
            "accounts.books.defaults.tax_rate",
            "`OUTPUT2` at 20 %, not 25 %",
        ],
    );
}

#[test]
fn check_names_an_accounts_target_the_configuration_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, accounts) = xero_check_setup(
        dir.path(),
        "    defaults: {account: \"200\"}\n",
        "http://127.0.0.1:9",
    );
    std::fs::write(
        &accounts,
        "accounts:\n  bookz:\n    defaults: {account: \"200\"}\n",
    )
    .unwrap();
    let stderr = refused(&check(&cfg, accounts.parent().unwrap()));
    assert_mentions(
        &stderr,
        &["accounts.bookz", "no target `bookz`", "its targets: books"],
    );
}

#[test]
fn each_draft_line_carries_its_kind_s_account_only_when_accounts_are_configured() {
    // Without `accounts`: lines as before, no `refs`.
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _) = moneo_daemon(dir.path());
    run_once_with(&cfg, "2026-11-01T07:30:00Z", &[]);
    let plain = drafts_of(dir.path(), "2026-10");
    assert_eq!(plain.len(), 2);
    for (_, d) in &plain {
        for l in d["draft"]["lines"].as_array().unwrap() {
            assert_eq!(l.get("refs"), None, "{l}");
        }
    }
    // With it: each line its kind's account, the defaults' tax.
    let dir = tempfile::tempdir().unwrap();
    let (cfg, mapping) = moneo_daemon(dir.path());
    std::fs::write(
        mapping.with_file_name("accounts.yaml"),
        "accounts:\n  drafts:\n    defaults: {account: \"3000\", tax: \"25\"}\n    hours: {account: \"3020\", item: HOURS}\n    add_on: {account: \"3040\", tracking: {Region: Riga}}\n",
    )
    .unwrap();
    let log = run_once_with(&cfg, "2026-11-01T07:30:00Z", &[]);
    let coded = drafts_of(dir.path(), "2026-10");
    let (_, vidzeme) = coded
        .iter()
        .find(|(c, _)| c == "vidzeme-foods")
        .expect(&log);
    let lines = vidzeme["draft"]["lines"].as_array().unwrap();
    let refs_of = |kind: &str| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["kind"] == kind)
            .map(|l| l["refs"].clone())
            .collect()
    };
    // vidzeme-foods: two add-ons (contracts.md) and paid hours.
    assert_eq!(
        refs_of("add_on"),
        vec![
            serde_json::json!({"account": "3040", "tax": "25", "tracking": {"Region": "Riga"}});
            2
        ]
    );
    assert_eq!(
        refs_of("work"),
        vec![serde_json::json!({"account": "3020", "item": "HOURS", "tax": "25"})]
    );
    // The amounts are those of the bill without accounts.
    let totals = |v: &[(String, Value)]| -> Vec<(String, Value)> {
        v.iter()
            .map(|(c, d)| (c.clone(), d["draft"]["total_net"].clone()))
            .collect()
    };
    assert_eq!(totals(&coded), totals(&plain));
}

/// `GET path` on the daemon's listener: the body.
async fn get(client: &reqwest::Client, addr: &str, path: &str) -> String {
    match client.get(format!("http://{addr}{path}")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The value of gauge or counter `name` in `/metrics`, once it is served.
async fn metric(client: &reqwest::Client, addr: &str, name: &str) -> Option<u64> {
    get(client, addr, "/metrics").await.lines().find_map(|l| {
        l.strip_prefix(&format!("{name} "))
            .and_then(|v| v.parse().ok())
    })
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..600 {
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemon_holds_a_hot_reload_that_changes_a_closed_month_until_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, mapping) = moneo_folder(dir.path());
    let addr = format!("127.0.0.1:{}", crate::support::free_port());
    // The real clock: October and November 2026 have ended and close at
    // start-up; two years of corrections keep October in reach whenever
    // this runs.
    let tables = format!(
        r#"{moneo}{drafts}[schedule]
mapping_check_secs = 0.1
[http]
listen = "{addr}"
"#,
        moneo = folder_source("moneo", moneo_tickets().parent().unwrap()),
        drafts = folder_target("drafts", &dir.path().join("drafts")),
    );
    let cfg = write_config(dir.path(), &folder, "drafts", &tables);
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "[billing]\n",
        "[billing]\ncorrection_months = 24\n",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let log = dir.path().join("daemon.log");
    let _daemon = crate::support::spawn_daemon(&cfg, std::fs::File::create(&log).unwrap());
    let client = reqwest::Client::new();
    wait_for("October to close", async || {
        drafts_of(dir.path(), "2026-10").len() == 2
    })
    .await;
    assert_eq!(
        metric(&client, &addr, "contract_bridge_mapping_changes_held").await,
        Some(0)
    );

    raise_the_rate(&mapping);
    wait_for("the change to be held", async || {
        metric(&client, &addr, "contract_bridge_mapping_changes_held").await == Some(1)
    })
    .await;
    // Still ready: the mapping in force is good.
    assert!(get(&client, &addr, "/readyz").await.starts_with("ready"));
    let json = status_json(&cfg);
    let held = &json["mapping_changes"][0];
    assert_eq!(held["status"], "held", "{json:#}");
    assert_eq!(dec_of(&held["closed_total_delta"]), dec!(59.38));

    let out = with_config(&cfg, &["apply-mapping"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the accepted change to come into force", async || {
        metric(&client, &addr, "contract_bridge_mapping_changes_held").await == Some(0)
            && with_config(&cfg, &["status", "--json"]).status.success()
            && status_json(&cfg)["mapping_changes"] == Value::Array(vec![])
    })
    .await;
    // The first version at start, and the accepted one when it came into force.
    let loaded = audit(dir.path(), "mapping_loaded").await;
    assert_eq!(
        loaded.len(),
        2,
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_ne!(loaded[0].detail["sha256"], loaded[1].detail["sha256"]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("held, not applied"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_asks_fortnox_and_e_conomic_what_they_have() {
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, ResponseTemplate};
    let server = wiremock::MockServer::start().await;
    let fixture = |f: &str| std::fs::read_to_string(root().join("tests/fixtures").join(f)).unwrap();
    Mock::given(method("POST"))
        .and(path("/oauth-v1/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"access_token": "fx-1", "expires_in": 3600, "token_type": "bearer", "scope": "invoice article bookkeeping"}),
        ))
        .mount(&server)
        .await;
    for (p, file) in [
        ("/3/accounts", "fortnox/accounts.json"),
        ("/3/articles", "fortnox/articles.json"),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .and(query_param("limit", "500"))
            .and(header("authorization", "Bearer fx-1"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(fixture(file), "application/json"),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/products"))
        .and(header("x-appsecrettoken", "app"))
        .and(header("x-agreementgranttoken", "grant"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("economic/products.json"), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let (folder, _) = moneo_folder(dir.path());
    let accounts = folder.join("accounts.yaml");
    std::fs::write(
        &accounts,
        "accounts:\n  fortnox:\n    defaults: {account: \"3001\", tax: \"25\"}\n    hours: {account: \"3590\", item: SUPPORT-H}\n    fee: {account: \"3308\", item: AVGIFT-M}\n  economic:\n    hours: {item: SUPPORT}\n    card_sale: {item: OLD}\n",
    )
    .unwrap();
    let uri = server.uri();
    let tables = format!(
        "[targets.fortnox]\n{}\n[targets.economic]\n{}\n",
        crate::support::fortnox_books(&uri).replace("targets.books", "targets.fortnox"),
        crate::support::economic_books(&uri).replace("targets.books", "targets.economic"),
    );
    let cfg = write_config(dir.path(), &folder, "fortnox", &tables);
    let stderr = refused(&check(&cfg, &folder));
    let file = accounts.display().to_string();
    // 3590 is inactive; AVGIFT-M is no article; OLD is a barred product.
    assert_mentions(
        &stderr,
        &[
            &format!("{file}:4:"),
            "accounts.fortnox.hours.account",
            "valid: 1930 (Företagskonto), 3001 (Försäljning inom Sverige, 25 % moms), 3308",
        ],
    );
    assert_mentions(
        &stderr,
        &[
            &format!("{file}:5:"),
            "`AVGIFT-M` is not an item code of fortnox",
            "AVGIFT (Månadsavgift)",
        ],
    );
    assert_mentions(
        &stderr,
        &[
            &format!("{file}:8:"),
            "`OLD` is not an item code of e-conomic",
            "valid: SUPPORT (Supporttime), KLIPPEKORT-20",
        ],
    );
    assert!(stderr.contains("3 error(s)"), "{stderr}");
    // In the order they are written.
    let at = |needle: &str| stderr.find(needle).unwrap();
    assert!(
        at("hours.account") < at("fee.item") && at("fee.item") < at("card_sale.item"),
        "{stderr}"
    );
}
