//! Shared by the integration tests: the fake accounting server (a wiremock
//! responder that behaves like an API with idempotency keys, and fails on
//! demand), daemon configurations and runs, and the example book and case
//! counts of the property tests.

#![allow(dead_code)]

pub mod contract;
pub mod tryton;
pub mod xero;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const NOW: &str = "2026-11-23T12:00:00Z";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The five example contracts of `mappings/examples`, loaded once per test binary.
pub static BOOK: LazyLock<engine::ContractBook> = LazyLock::new(|| {
    mapping::load(examples().as_path())
        .unwrap_or_else(|e| panic!("the example mappings must load: {e:?}"))
        .book
});

/// The twelve customers of the example contracts; the first nine set SLA
/// targets.
pub const CUSTOMERS: [&str; 12] = [
    "riga-bakery",
    "daugava-logistics",
    "jurmala-hotel",
    "baltic-retail",
    "vidzeme-foods",
    "poznan-clinic",
    "alert-co",
    "attend-co",
    "access-co",
    "walkin-co",
    "nordhavn-arkitekter",
    "valby-tandlaege",
];

/// Modest property-test case counts (`PROPTEST_CASES` overrides); failures
/// are reported, not persisted to files.
pub fn property_config() -> proptest::prelude::ProptestConfig {
    proptest::prelude::ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    }
}

/// How often the fake fails, as shares of requests.
#[derive(Clone, Copy, Default)]
pub struct Faults {
    pub server_error: f64,
    pub throttle: f64,
    /// Answered after 2 s, longer than the daemon waits: the daemon sees a
    /// timeout although the fake accepted the push, as real APIs do.
    pub timeout: f64,
    pub delay: Duration,
}

#[derive(Default)]
struct State {
    /// Accepted pushes by idempotency key: a repeated key is answered as the first.
    created: BTreeMap<String, Value>,
    /// Every request's key, in arrival order, with when it arrived.
    requests: Vec<(String, Instant)>,
    /// A key pushed again with another payload: a silent change.
    changed: Vec<String>,
    rng: u64,
}

/// A fake API with idempotency keys (like Xero's `Idempotency-Key`).
#[derive(Clone)]
pub struct Fake {
    state: Arc<Mutex<State>>,
    faults: Faults,
}

impl Fake {
    pub fn new(faults: Faults, seed: u64) -> Fake {
        Fake {
            state: Arc::new(Mutex::new(State {
                rng: seed | 1,
                ..State::default()
            })),
            faults,
        }
    }

    pub fn created(&self) -> BTreeMap<String, Value> {
        self.state.lock().unwrap().created.clone()
    }

    pub fn requests(&self) -> Vec<(String, Instant)> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn changed(&self) -> Vec<String> {
        self.state.lock().unwrap().changed.clone()
    }
}

impl Respond for Fake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let key = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut s = self.state.lock().unwrap();
        s.requests.push((key.clone(), Instant::now()));
        let roll = next(&mut s.rng);
        let f = self.faults;
        if roll < f.server_error {
            return ResponseTemplate::new(500).set_body_string("internal error");
        }
        if roll < f.server_error + f.throttle {
            return ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_string("slow down");
        }
        let payload: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        match s.created.get(&key) {
            Some(first) if *first != payload => s.changed.push(key.clone()),
            Some(_) => {}
            None => {
                s.created.insert(key.clone(), payload);
            }
        }
        let delay = if roll < f.server_error + f.throttle + f.timeout {
            Duration::from_secs(2)
        } else {
            f.delay
        };
        ResponseTemplate::new(201)
            .set_body_string(format!("{{\"id\":\"{key}\"}}"))
            .set_delay(delay)
    }
}

/// xorshift64: a share in [0, 1).
pub fn next(x: &mut u64) -> f64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    (*x >> 11) as f64 / (1u64 << 53) as f64
}

/// `customer → total_net` of every expected October invoice of the scenarios.
pub fn expected_october_totals() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in ["lv-it", "moneo", "akte-sla", "trinax", "itech-klippekort"] {
        let text = std::fs::read_to_string(
            root().join(format!("tests/fixtures/scenarios/{s}/expected.json")),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        for inv in v["invoices"].as_array().unwrap() {
            out.push((
                inv["customer"].as_str().unwrap().to_owned(),
                inv["total_net"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out.sort();
    out
}

/// `customer → total_net` of the October drafts the fake accepted.
pub fn october_drafts(created: &BTreeMap<String, Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = created
        .iter()
        .filter(|(k, _)| k.starts_with("draft:") && k.contains(":2026-10:"))
        .map(|(_, v)| {
            (
                v["customer"].as_str().unwrap().to_owned(),
                v["total_net"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The head of every test configuration: the store at `store_url`, the
/// mapping at `mapping`, billing from October 2026 into `target`.
pub fn head(store_url: &str, mapping: &Path, target: &str) -> String {
    head_from(store_url, mapping, target, "2026-10")
}

/// [`head`], billing from `first_period`.
pub fn head_from(store_url: &str, mapping: &Path, target: &str, first_period: &str) -> String {
    format!(
        r#"
[store]
url = "{store_url}"
[mapping]
path = "{mapping}"
[billing]
first_period = "{first_period}"
target = "{target}"
"#,
        mapping = mapping.display(),
    )
}

/// A SQLite store in `dir`.
pub fn sqlite(dir: &Path) -> String {
    format!("sqlite://{}/state.db", dir.display())
}

/// The five example contracts.
pub fn examples() -> PathBuf {
    root().join("mappings/examples")
}

/// The bundled scenarios.
pub fn scenarios() -> PathBuf {
    root().join("tests/fixtures/scenarios")
}

/// `[sources.NAME]`: the `tickets.json` export in `path` as a folder source.
pub fn folder_source(name: &str, path: &Path) -> String {
    format!(
        "[sources.{name}]\ntype = \"folder\"\npath = \"{}\"\nfile_name = \"tickets.json\"\n",
        path.display()
    )
}

/// `[sources.samples]`: every bundled scenario's tickets as a folder source.
pub fn samples() -> String {
    format!(
        "{}recursive = true\n",
        folder_source("samples", &scenarios())
    )
}

/// `[targets.NAME]`: drafts written as files under `path`.
pub fn folder_target(name: &str, path: &Path) -> String {
    format!(
        "[targets.{name}]\ntype = \"folder\"\npath = \"{}\"\n",
        path.display()
    )
}

/// `[targets.xero]` at the fake Xero `uri` with the client secret `secret`;
/// the caller's lines after it add to the table.
pub fn xero_target(uri: &str, secret: &str) -> String {
    format!(
        r#"[targets.xero]
type = "xero"
base_url = "{uri}/api.xro/2.0"
token_url = "{uri}/connect/token"
client_id = "client"
client_secret = "{secret}"
"#
    )
}

/// Writes `text` to `dir/bridge.toml`.
pub fn write_toml(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("bridge.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A configuration: the bundled scenarios in, drafts to `target_url`.
pub fn config(dir: &Path, store_url: &str, target_url: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"{head}{samples}
[targets.accounting]
type = "http"
url = "{target_url}"
timeout_ms = 300
requests_per_second = 200
[outbox]
max_attempts = 1000
base_delay_secs = 0.05
max_delay_secs = 0.5
{extra}
"#,
        head = head(store_url, &examples(), "accounting"),
        samples = samples(),
    );
    write_toml(dir, &text)
}

/// Writes `dir/bridge.toml`: a SQLite store in `dir`, the mapping at
/// `mapping`, billing from October 2026 into `target`; `tables` holds the
/// sources, targets and any other tables.
pub fn write_config(dir: &Path, mapping: &Path, target: &str, tables: &str) -> PathBuf {
    let text = format!("{}{tables}\n", head(&sqlite(dir), mapping, target));
    write_toml(dir, &text)
}

/// Writes `dir/bridge.toml`: the example mapping billed into the folder
/// target `drafts` (`dir/drafts`), with the other `tables`.
pub fn drafts_config(dir: &Path, tables: &str) -> PathBuf {
    let drafts = folder_target("drafts", &dir.join("drafts"));
    write_config(dir, &examples(), "drafts", &format!("{drafts}{tables}"))
}

/// The itech tickets as source `itech` (with `source_keys` added to it),
/// and an outbox that tries three times without delay.
pub fn itech_source(source_keys: &str) -> String {
    format!(
        r#"[sources.itech]
type = "folder"
path = "{tickets}"
file_name = "tickets.json"
{source_keys}
[outbox]
max_attempts = 3
base_delay_secs = 0
max_delay_secs = 0"#,
        tickets = scenarios().join("itech-klippekort").display(),
    )
}

/// The itech tickets billed under `mapping` into the target `books`,
/// whose table (without its header) `books` is.
pub fn itech_books_config(dir: &Path, mapping: &Path, books: &str) -> PathBuf {
    let tables = format!("{}\n[targets.books]\n{books}", itech_source(""));
    write_config(dir, mapping, "books", &tables)
}

/// A Fortnox at `uri` as the `books` target, with the itech customers.
pub fn fortnox_books(uri: &str) -> String {
    let fortnox = format!(
        "type = \"fortnox\"\nbase_url = \"{uri}/3\"\ntoken_url = \"{uri}/oauth-v1/token\"\n\
         client_id = \"client\"\nclient_secret = \"s3cret\"\ntenant_id = \"1234567\""
    );
    with_itech_customers(&fortnox, r#""1042""#, r#""1043""#)
}

/// An e-conomic at `uri` as the `books` target, with the itech customers.
pub fn economic_books(uri: &str) -> String {
    let economic = format!(
        "type = \"economic\"\nbase_url = \"{uri}\"\napp_secret_token = \"app\"\n\
         agreement_grant_token = \"grant\"\nlayout_number = 19\npayment_terms_number = 1\n\
         vat_zone_number = 1"
    );
    with_itech_customers(&economic, "42", "43")
}

/// The `books` target's `table`, and the ledger's ids (TOML values) of
/// the two itech customers.
fn with_itech_customers(table: &str, nordhavn: &str, valby: &str) -> String {
    format!(
        "{table}\n[targets.books.customers]\n\"nordhavn-arkitekter\" = {nordhavn}\n\"valby-tandlaege\" = {valby}"
    )
}

/// A fake vendor's state, shared by its wiremock server and the test that
/// inspects it afterwards (`fake.0.lock()`).
pub struct Shared<T>(pub Arc<Mutex<T>>);

impl<T> Shared<T> {
    pub fn new(state: T) -> Shared<T> {
        Shared(Arc::new(Mutex::new(state)))
    }
}

impl<T: Default> Default for Shared<T> {
    fn default() -> Shared<T> {
        Shared::new(T::default())
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Shared<T> {
        Shared(self.0.clone())
    }
}

/// How a fake vendor answers a request, its state locked for the answer.
pub trait Answer: Send + 'static {
    fn answer(&mut self, r: &Request) -> ResponseTemplate;
}

impl<T: Answer> Respond for Shared<T> {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().answer(r)
    }
}

/// `GET /metrics` over plain HTTP/1.1; empty while the daemon is not up.
pub fn metrics(addr: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The customer of a draft's reference (`draft:CUSTOMER:PERIOD:rN`).
pub fn customer_of(reference: &Value) -> String {
    let reference = reference.as_str().unwrap();
    let customer = reference.split(':').nth(1);
    customer
        .unwrap_or_else(|| panic!("no customer in {reference}"))
        .to_owned()
}

/// Contracts for two Riga customers of a helpdesk whose raw values the
/// value map `desk` reads (`value_map`: its YAML lines, indented four
/// spaces): time at 60.00 in 15-minute steps, a 25.00 call-out, a first
/// response within an hour around the clock; daugava-logistics also pays
/// a 100.00 monthly fee.
pub fn riga_desk_mapping(value_map: &str) -> String {
    format!(
        r#"
calendars:
  always:
    time_zone: Europe/Riga
    hours: 24/7
value_maps:
  desk:
{value_map}
templates:
  desk-support:
    currency: EUR
    time_zone: Europe/Riga
    value_map: desk
    start: 2026-01-01
    hourly_rate: "60.00"
    call_out_fee: "25.00"
    rounding:
      step: 15m
    sla:
      calendar: always
      first_response: 1h
customers:
  riga-bakery:
    template: desk-support
  daugava-logistics:
    template: desk-support
    monthly_fee: "100.00"
"#
    )
}

/// `[sources.NAME]`: the helpdesk `kind` at `url`, SLA breaches noted back
/// to it; `settings` are its other lines (credentials, paging).
pub fn helpdesk_source(name: &str, kind: &str, url: &str, settings: &str) -> String {
    format!(
        "[sources.{name}]\ntype = \"{kind}\"\nurl = \"{url}\"\nnotes = \"{name}\"\n{settings}\n"
    )
}

/// The query parameter `name` of a request to a fake server.
pub fn query_param(r: &Request, name: &str) -> Option<String> {
    r.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A wiremock server that hands every request to `responder`.
pub async fn serve(responder: impl Respond + 'static) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(responder)
        .mount(&server)
        .await;
    server
}

/// `ledger: N request(s)` of a run's log: N, or 0 without that line.
pub fn ledger_requests(log: &str) -> usize {
    log.lines()
        .find_map(|l| Some(&l[l.find("ledger: ")? + "ledger: ".len()..]))
        .and_then(|l| l.split(' ').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// The October total of `customer` in the offline bill of the itech
/// tickets under `mapping` (a path in the repository).
pub fn itech_october_total(mapping: &str, customer: &str) -> rust_decimal::Decimal {
    let doc = offline_bill(
        &root().join(mapping),
        &scenarios().join("itech-klippekort/tickets.json"),
        "2026-10",
    );
    doc["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["customer"] == customer)
        .map(|i| i["total_net"].as_str().unwrap().parse().unwrap())
        .unwrap()
}

/// A daemon child process, killed (SIGKILL) when dropped, so a failed
/// assertion leaves nothing running.
pub struct KillOnDrop(pub std::process::Child);

/// `run --config CONFIG` as a daemon, its stderr to `stderr`; killed when dropped.
pub fn spawn_daemon(config: &Path, stderr: impl Into<std::process::Stdio>) -> KillOnDrop {
    KillOnDrop(
        std::process::Command::new(bin())
            .args(["run", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    )
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A mapping folder in `dir`: the example book with `extra` (e.g. a
/// `sources:` section) beside it as `sources.yaml`.
pub fn examples_with(dir: &Path, extra: &str) -> PathBuf {
    let folder = dir.join("mapping");
    std::fs::create_dir_all(&folder).unwrap();
    for f in std::fs::read_dir(examples()).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, folder.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(folder.join("sources.yaml"), extra).unwrap();
    folder
}

/// `customer → total_net` of the drafts a folder target wrote to `drafts`
/// whose file name contains `filter` (e.g. `_2026-10_`).
pub fn drafts_in(drafts: &Path, filter: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(drafts) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.extension().is_some_and(|e| e == "json") && name.contains(filter) {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            out.push((
                v["draft"]["customer"].as_str().unwrap().to_owned(),
                v["draft"]["total_net"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out.sort();
    out
}

/// An hour on T-1001 (billable) logged late, dated October, added to the
/// export at `path`.
pub fn log_late_hour_on_t1001(path: &Path) {
    let mut export: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let t1001 = export["tickets"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["id"] == "T-1001")
        .unwrap();
    t1001["work"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": "T-1001-LATE", "at": "2026-10-20T10:00:00+03:00", "minutes": 60,
            "agent": "juris", "kind": "remote", "note": "Set up the laptop"
        }));
    std::fs::write(path, export.to_string()).unwrap();
}

/// A copy of the scenario's `tickets.json` in `dir/tickets/`, to change it.
pub fn copy_scenario(dir: &Path, scenario: &str) -> PathBuf {
    let tickets = dir.join("tickets");
    std::fs::create_dir_all(&tickets).unwrap();
    std::fs::copy(
        scenarios().join(scenario).join("tickets.json"),
        tickets.join("tickets.json"),
    )
    .unwrap();
    tickets
}

/// The first draft (revision 1) a folder target wrote for `customer` and `period`.
pub fn draft_file(drafts: &Path, customer: &str, period: &str) -> Value {
    let path = drafts.join(format!("draft_{customer}_{period}_r1.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// `customer`'s invoice in an offline `bill --json` document.
pub fn offline_invoice<'a>(offline: &'a Value, customer: &str) -> &'a Value {
    offline["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["customer"] == customer)
        .unwrap_or_else(|| panic!("{customer} in {offline:#}"))
}

/// The body of a GET that must answer.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// `contract-bridge ARGS --config CONFIG`: its output, whatever its exit.
pub fn with_config(config: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

/// Runs `cmd` and asserts it succeeded, showing its stderr when not.
pub fn succeeded(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The offline `bill --json` document of `tickets` for `period`.
pub fn offline_bill(mapping: &Path, tickets: &Path, period: &str) -> Value {
    let out = succeeded(
        std::process::Command::new(bin())
            .args(["bill", "--json", "--period", period, "--mapping"])
            .arg(mapping)
            .arg("--tickets")
            .arg(tickets),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The sum of a draft's lines that correct `period`.
pub fn corrections_of(draft: &Value, period: &str) -> rust_decimal::Decimal {
    draft["draft"]["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["corrects"] == period)
        .map(|l| {
            l["amount"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum()
}

pub fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("contract-bridge")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `run --once --now NOW` with `env`; its log (stderr), which it asserts succeeded.
pub fn run_once_with(config: &Path, now: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["run", "--once", "--now", now, "--config"])
        .arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "run failed: {stderr}");
    stderr
}

/// `run --once --now NOW` that must end as a failed source does (exit 3,
/// everything safe done); its log.
pub fn run_once_failing(config: &Path, now: &str) -> String {
    let out = std::process::Command::new(bin())
        .args(["run", "--once", "--now", now, "--config"])
        .arg(config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(3),
        "a failed source exits 3: {stderr}"
    );
    stderr
}

/// `close --period 2026-10 --repush customer` at 2026-12-03 with `env`:
/// its output, which may be a refusal.
pub fn repush_october(config: &Path, customer: &str, env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(bin())
        .args([
            "close",
            "--period",
            "2026-10",
            "--now",
            "2026-12-03T12:00:00Z",
        ])
        .args(["--repush", customer, "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// One test at a time on each real server a test may restart or reset (RT
/// with a faked clock, Tryton's database): in one test binary they would
/// otherwise run side by side.
pub static REAL_RT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
pub static REAL_TRYTON: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Request Tracker's REST2 on loopback, as `scripts/rt-up.sh` starts it.
pub const RT_BASE: &str = "http://127.0.0.1:8090/REST/2.0";

/// Request Tracker started afresh by `scripts/rt-up.sh` (with `env`, e.g.
/// a faked clock), and a REST2 client with its token.
pub fn rt_up(env: &[(&str, &Path)]) -> Rt {
    let status = std::process::Command::new("bash")
        .arg(root().join("scripts/rt-up.sh"))
        .envs(env.iter().copied())
        .current_dir(root())
        .status()
        .expect("bash");
    assert!(
        status.success(),
        "scripts/rt-up.sh failed: Request Tracker is needed for this test"
    );
    let token = std::fs::read_to_string(root().join("target/rt/token")).unwrap();
    Rt {
        client: reqwest::Client::new(),
        token: token.trim().to_owned(),
    }
}

/// Stops Request Tracker, leaving the port (and real time) to the tests after.
pub fn rt_stop() {
    let _ = std::process::Command::new("bash")
        .arg(root().join("scripts/rt-up.sh"))
        .arg("stop")
        .status();
}

/// REST2 calls to the Request Tracker of [`rt_up`], with its token.
pub struct Rt {
    client: reqwest::Client,
    pub token: String,
}

impl Rt {
    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    /// One call; the JSON answer, which it asserts succeeded.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self
            .client
            .request(method, format!("{RT_BASE}/{path}"))
            .header("authorization", format!("token {}", self.token));
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

/// `status` of the store behind `config`.
pub fn status(config: &Path, env: &[(&str, &str)]) -> String {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["status", "--config"]).arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Waits up to 60 s for `ok`.
pub async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Waits up to 60 s for the daemon at `base` (`http://host:port`) to
/// answer `/readyz` with 200.
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    let url = format!("{base}/readyz");
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(&url).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the daemon did not get ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh database on the local PostgreSQL (`.ci/run` starts it);
/// `CONTRACT_BRIDGE_TEST_POSTGRES` points elsewhere.
pub fn postgres_database() -> String {
    let admin = std::env::var("CONTRACT_BRIDGE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("cb_it_{}_{nanos}", std::process::id());
    let out = std::process::Command::new("psql")
        .args([admin.as_str(), "-qc", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql is needed to create a test database");
    assert!(
        out.status.success(),
        "PostgreSQL at {admin} is needed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

/// Wraps a fake API so that a share of its requests fail, deterministically
/// from `seed`: half of the failures before the request is handled (a 503
/// from a proxy), half after (the fake acted, but its answer was lost to a
/// 502): the hardest case for exactly-once.
#[derive(Clone)]
pub struct Faulty<R> {
    pub inner: R,
    share: f64,
    rng: Arc<Mutex<u64>>,
    pub faults: Arc<Mutex<usize>>,
}

impl<R> Faulty<R> {
    pub fn new(inner: R, share: f64, seed: u64) -> Faulty<R> {
        Faulty {
            inner,
            share,
            rng: Arc::new(Mutex::new(seed | 1)),
            faults: Arc::new(Mutex::new(0)),
        }
    }
}

impl<R: Respond> Respond for Faulty<R> {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let roll = next(&mut self.rng.lock().unwrap());
        if roll < self.share / 2.0 {
            *self.faults.lock().unwrap() += 1;
            return ResponseTemplate::new(503).set_body_string("Service Unavailable");
        }
        let answer = self.inner.respond(request);
        if roll < self.share {
            *self.faults.lock().unwrap() += 1;
            return ResponseTemplate::new(502).set_body_string("Bad Gateway");
        }
        answer
    }
}
