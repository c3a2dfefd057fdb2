//! Tools of `scripts/soak.sh` (issue 19). Asserts nothing; prints figures.
//!
//! ```sh
//! soak gen DIR CUSTOMERS TICKETS      # mapping, export and Xero contacts for a close
//! soak ledger PORT PER_MINUTE PER_DAY # a Xero stand-in enforcing the limits
//! soak ticks CONFIG TICKETS TICKS STEP_MIN CHANGES full|incremental
//! soak statement CONFIG TICKETS REQUESTS
//! ```
//!
//! - `gen` writes `DIR/mapping/` (one SLA template, CUSTOMERS customers),
//!   `DIR/source/tickets.json` (TICKETS October tickets per customer, each
//!   with work) and `DIR/contacts.toml` (the Xero target's contacts).
//! - `ledger` answers as Xero's Accounting API does for what the daemon
//!   uses (token, invoice lookup by reference, batch or single create,
//!   read back, status by `IDs`), counting requests; past PER_MINUTE requests in the last
//!   minute or PER_DAY in all it answers 429 with `Retry-After`, as Xero
//!   does. `GET /stats` gives the counts. It also consents as Xero's
//!   identity server would, at once and without a login, so that
//!   `contract-bridge connect` can be tried against it (README, "Try it
//!   against a Xero stand-in"): `/identity/connect/authorize` sends the
//!   browser back with a code, `/connect/token` takes that code only with
//!   its PKCE verifier and rotates refresh tokens, `/connections` lists one
//!   organisation.
//! - `ticks` stores TICKETS tickets of the SLA sample customer in the store
//!   of CONFIG, then runs TICKS SLA ticks STEP_MIN minutes apart with
//!   CHANGES tickets changed before each, `full` (every stored ticket judged,
//!   as before issue 19) or `incremental`, and prints each tick's cost
//!   (p50/p99 in ms) and the tickets read.
//! - `statement` stores TICKETS tickets of the SLA sample customer over the
//!   twelve months of its statement (each with an hour of work), then asks
//!   for its balance statement REQUESTS + 1 times, as the signed link does:
//!   the first request bills every month (what each request cost before
//!   the bills were kept by data version), the others only the month judged
//!   now; it prints both costs and the months billed and kept.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str {
        args.get(i).map(String::as_str).unwrap_or_else(|| {
            eprintln!("soak: missing argument {i}; see the example's doc");
            std::process::exit(2)
        })
    };
    let num = |i: usize| -> u64 {
        arg(i).parse().unwrap_or_else(|_| {
            eprintln!("soak: argument {i} must be a whole number");
            std::process::exit(2)
        })
    };
    match arg(0) {
        "gen" => generate(Path::new(arg(1)), num(2), num(3)),
        "ledger" => {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(ledger(num(1) as u16, num(2) as usize, num(3) as usize));
        }
        "ticks" => {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(ticks(
                Path::new(arg(1)),
                num(2),
                num(3),
                num(4) as i64,
                num(5),
                arg(6) == "full",
            ));
        }
        "statement" => {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(statement(Path::new(arg(1)), num(2), num(3)));
        }
        other => {
            eprintln!("soak: unknown command `{other}`");
            std::process::exit(2)
        }
    }
}

/// The bridge and store of the configuration at `config`, its mapping
/// loaded as of `now`.
async fn open_bridge(
    config: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> (contract_bridge::daemon::Bridge, Arc<store::Store>) {
    let settings = contract_bridge::settings::Settings::load(config).expect("settings");
    let store = Arc::new(
        store::Store::open_writer(&settings.store.url)
            .await
            .expect("store"),
    );
    let bridge = contract_bridge::daemon::Bridge::new(settings, store.clone()).expect("bridge");
    bridge.reload_mapping(now).await.expect("mapping");
    (bridge, store)
}

/// poznan-clinic's tickets `(id, snapshot)` from the source `desk`, stored
/// as of `now` in batches of 5 000.
async fn store_tickets(
    store: &store::Store,
    rows: &[(String, String)],
    now: chrono::DateTime<chrono::Utc>,
) {
    for chunk in rows.chunks(5_000) {
        let batch: Vec<store::TicketToStore> = chunk
            .iter()
            .map(|(id, s)| store::TicketToStore {
                id,
                customer: "poznan-clinic",
                snapshot: s,
            })
            .collect();
        store
            .upsert_tickets("desk", &batch, now)
            .await
            .expect("store tickets");
    }
}

async fn statement(config: &Path, tickets: u64, requests: u64) {
    use chrono::{DateTime, Duration as D, Utc};
    use std::sync::atomic::Ordering::Relaxed;
    let now: DateTime<Utc> = "2026-11-20T12:00:00Z".parse().unwrap();
    let (bridge, store) = open_bridge(config, now).await;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let at = |t: DateTime<Utc>| t.to_rfc3339();
    let rows: Vec<(String, String)> = (0..tickets)
        .map(|i| {
            let made = now - D::days(1 + rng.below(350) as i64) - D::minutes(rng.below(600) as i64);
            let done = made + D::minutes(45);
            let id = format!("S-{i:07}");
            let s = json!({"id": id, "customer": "poznan-clinic", "title": "soak",
                "priority": "2 normal", "tags": [], "fields": {}, "created_at": at(made),
                "first_response_at": at(made + D::minutes(5)), "resolved_at": at(done),
                "states": [{"at": at(made), "state": "new"}, {"at": at(done), "state": "closed"}],
                "work": [{"id": format!("{id}-W1"), "at": at(made + D::minutes(10)), "minutes": 60,
                          "agent": "soak", "kind": "remote", "note": "work"}]});
            (id, s.to_string())
        })
        .collect();
    store_tickets(&store, &rows, now).await;
    let month = engine::period::Month::containing(now, chrono_tz::Europe::Warsaw);
    let mut costs = Vec::new();
    for _ in 0..=requests {
        let started = Instant::now();
        bridge
            .report_page("poznan-clinic", month, None, Some(now), true)
            .await
            .expect("statement");
        costs.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let first = costs.remove(0);
    costs.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        costs
            .get(((costs.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let m = &bridge.metrics;
    println!(
        "statement of {tickets} tickets over 12 months: first request {first:.1} ms (every month billed, as each request was before); then p50 {:.1} ms, p99 {:.1} ms over {requests}; months billed {}, kept {}",
        pct(0.5),
        pct(0.99),
        m.report_months_billed.load(Relaxed),
        m.report_months_cached.load(Relaxed)
    );
}

/// A deterministic sequence (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn generate(dir: &Path, customers: u64, tickets: u64) {
    std::fs::create_dir_all(dir.join("mapping")).unwrap();
    std::fs::create_dir_all(dir.join("source")).unwrap();
    let mut mapping = String::from(
        r#"calendars:
  soak-hours:
    time_zone: Europe/Warsaw
    hours: 24/7
value_maps:
  soak:
    priority: {"1 low": 4, "2 normal": 3, "3 high": 2, "4 critical": 1}
    state: {new: open, open: open, "pending customer": paused, closed: resolved}
templates:
  soak:
    currency: EUR
    time_zone: Europe/Warsaw
    value_map: soak
    start: 2026-01-01
    monthly_fee: "400.00"
    hourly_rate: "90.00"
    rounding:
      step: 15m
    sla:
      calendar: soak-hours
      first_response: {1: 15m, 2: 1h, 3: 4h, 4: 8h}
      resolution: {1: 4h, 2: 8h, 3: 72h}
customers:
"#,
    );
    let mut contacts = String::new();
    for c in 0..customers {
        mapping.push_str(&format!("  soak-{c:05}:\n    template: soak\n"));
        contacts.push_str(&format!("\"soak-{c:05}\" = \"C-{c:05}\"\n"));
    }
    std::fs::write(dir.join("mapping/soak.yaml"), mapping).unwrap();
    std::fs::write(dir.join("contacts.toml"), contacts).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(dir.join("source/tickets.json")).unwrap());
    use std::io::Write;
    write!(out, "{{\"source\":\"soak\",\"tickets\":[").unwrap();
    let october = 1_790_812_800i64; // 2026-10-01T00:00:00Z
    let mut first = true;
    for c in 0..customers {
        for t in 0..tickets {
            let made = october + rng.below(29 * 86_400) as i64;
            let answered = made + 300 + rng.below(3_000) as i64;
            let done = answered + 600 + rng.below(20_000) as i64;
            let at = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().to_rfc3339();
            let priority = ["1 low", "2 normal", "3 high", "4 critical"][rng.below(4) as usize];
            let minutes = 15 + rng.below(120);
            let ticket = json!({
                "id": format!("S-{c:05}-{t:04}"), "customer": format!("soak-{c:05}"),
                "title": "soak", "priority": priority, "tags": [], "fields": {},
                "created_at": at(made), "first_response_at": at(answered), "resolved_at": at(done),
                "states": [{"at": at(made), "state": "new"}, {"at": at(answered), "state": "open"},
                           {"at": at(done), "state": "closed"}],
                "work": [{"id": format!("w-{c}-{t}"), "at": at(answered), "minutes": minutes,
                          "kind": "remote", "agent": "tech"}]
            });
            if !first {
                out.write_all(b",").unwrap();
            }
            first = false;
            serde_json::to_writer(&mut out, &ticket).unwrap();
        }
    }
    write!(out, "]}}").unwrap();
    out.flush().unwrap();
}

#[derive(Default)]
struct Ledger {
    window: VecDeque<Instant>,
    day: usize,
    requests: usize,
    throttled: usize,
    gets: usize,
    puts: usize,
    created: usize,
    /// reference → (InvoiceID, SubTotal)
    invoices: BTreeMap<String, (String, String)>,
    keys: BTreeMap<String, Value>,
    /// Authorization code → its PKCE challenge (`connect`).
    codes: BTreeMap<String, String>,
    /// The refresh token that works now (it rotates at each use).
    refresh: Option<String>,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn invoice_json(reference: &str, id: &str, total: &str) -> Value {
    json!({"InvoiceID": id, "Reference": reference, "SubTotal": total, "Status": "DRAFT",
           "Type": "ACCREC", "HasErrors": false, "StatusAttributeString": "OK"})
}

async fn ledger(port: u16, per_minute: usize, per_day: usize) {
    let state = Arc::new(Mutex::new(Ledger::default()));
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
            let state = state.clone();
            async move { answer(&state, per_minute, per_day, method, uri, headers, body) }
        },
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the ledger's port");
    axum::serve(listener, app).await.expect("serve");
}

fn answer(
    state: &Mutex<Ledger>,
    per_minute: usize,
    per_day: usize,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut l = state.lock().unwrap();
    let path = uri.path().to_owned();
    let json_ok = |v: Value| (StatusCode::OK, v.to_string()).into_response();
    if path == "/stats" {
        return json_ok(json!({
            "requests": l.requests, "throttled": l.throttled, "gets": l.gets, "puts": l.puts,
            "created": l.created, "invoices": l.invoices.len()
        }));
    }
    if path == "/identity/connect/authorize" {
        let q: BTreeMap<String, String> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), decode(v)))
            .collect();
        let (Some(redirect), Some(state), Some(challenge)) = (
            q.get("redirect_uri"),
            q.get("state"),
            q.get("code_challenge"),
        ) else {
            return (
                StatusCode::BAD_REQUEST,
                "redirect_uri, state and code_challenge are required\n",
            )
                .into_response();
        };
        let code = format!("code-{}", l.codes.len() + 1);
        l.codes.insert(code.clone(), challenge.clone());
        let to = format!(
            "{redirect}?code={code}&state={state}&scope=offline_access%20accounting.invoices"
        );
        return (StatusCode::FOUND, [("location", to)], "").into_response();
    }
    if path == "/connections" {
        return json_ok(json!([{
            "id": "7cb5f4ab-0000-4000-8000-000000000001",
            "tenantId": "70784a63-0000-4000-8000-000000000001",
            "tenantType": "ORGANISATION",
            "tenantName": "Stand-in Organisation",
            "createdDateUtc": "2026-12-01T00:00:00.0000000",
            "updatedDateUtc": "2026-12-01T00:00:00.0000000"
        }]));
    }
    if path == "/connect/token" {
        let form: BTreeMap<String, String> = body
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), decode(v)))
            .collect();
        let invalid = || {
            (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_grant"}).to_string(),
            )
                .into_response()
        };
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                use base64::Engine as _;
                use sha2::Digest as _;
                let code = form.get("code").cloned().unwrap_or_default();
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let Some(challenge) = l.codes.remove(&code) else {
                    return invalid();
                };
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(verifier.as_bytes()));
                if computed != challenge {
                    return invalid();
                }
            }
            Some("refresh_token") => {
                if form.get("refresh_token") != l.refresh.as_ref() {
                    return invalid();
                }
            }
            _ => {
                return json_ok(
                    json!({"access_token": "soak", "expires_in": 1800, "token_type": "Bearer"}),
                );
            }
        }
        let next = format!("refresh-{}", l.requests + l.codes.len() + 1);
        l.refresh = Some(next.clone());
        return json_ok(
            json!({"access_token": "soak", "expires_in": 1800, "token_type": "Bearer",
            "refresh_token": next, "scope": "offline_access accounting.invoices"}),
        );
    }
    let now = Instant::now();
    while l
        .window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        l.window.pop_front();
    }
    if l.day >= per_day {
        l.throttled += 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "3600"), ("x-rate-limit-problem", "day")],
            "",
        )
            .into_response();
    }
    if l.window.len() >= per_minute {
        l.throttled += 1;
        let wait = 60 - now.duration_since(l.window[0]).as_secs().min(59);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("retry-after", wait.to_string()),
                ("x-rate-limit-problem", "minute".to_owned()),
            ],
            "",
        )
            .into_response();
    }
    l.window.push_back(now);
    l.day += 1;
    l.requests += 1;
    let query = uri.query().unwrap_or("");
    if method == Method::GET && path == "/api.xro/2.0/Invoices" {
        l.gets += 1;
        if let Some(ids) = query.split('&').find_map(|p| p.strip_prefix("IDs=")) {
            let ids = decode(ids);
            let ids: Vec<&str> = ids.split(',').collect();
            let found: Vec<Value> = l
                .invoices
                .iter()
                .filter(|(_, (i, _))| ids.contains(&i.as_str()))
                .map(|(r, (i, t))| invoice_json(r, i, t))
                .collect();
            return json_ok(json!({"Status": "OK", "Invoices": found}));
        }
        let filter = query
            .split('&')
            .find_map(|p| p.strip_prefix("where="))
            .map(decode)
            .unwrap_or_default();
        let found: Vec<Value> = filter
            .split(" OR ")
            .filter_map(|f| f.strip_prefix("Reference==\"")?.strip_suffix('"'))
            .filter_map(|r| {
                l.invoices
                    .get(r)
                    .map(|(id, total)| invoice_json(r, id, total))
            })
            .collect();
        return json_ok(json!({"Status": "OK", "Invoices": found}));
    }
    if method == Method::GET
        && let Some(id) = path.strip_prefix("/api.xro/2.0/Invoices/")
    {
        l.gets += 1;
        let found: Vec<Value> = l
            .invoices
            .iter()
            .filter(|(_, (i, _))| i == id)
            .map(|(r, (i, t))| invoice_json(r, i, t))
            .collect();
        return json_ok(json!({"Status": "OK", "Invoices": found}));
    }
    if method == Method::PUT && path == "/api.xro/2.0/Invoices" {
        l.puts += 1;
        let key = headers
            .get("idempotency-key")
            .and_then(|k| k.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if let Some(a) = l.keys.get(&key) {
            return json_ok(a.clone());
        }
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        let mut answered = Vec::new();
        for inv in v["Invoices"].as_array().into_iter().flatten() {
            let reference = inv["Reference"].as_str().unwrap_or("").to_owned();
            let total: rust_decimal::Decimal = inv["LineItems"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|li| {
                    let q: rust_decimal::Decimal =
                        li["Quantity"].to_string().parse().unwrap_or_default();
                    let u: rust_decimal::Decimal =
                        li["UnitAmount"].to_string().parse().unwrap_or_default();
                    (q * u).round_dp(2)
                })
                .sum();
            let id = format!("inv-{}", l.invoices.len() + 1);
            l.created += 1;
            l.invoices
                .insert(reference.clone(), (id.clone(), total.to_string()));
            answered.push(invoice_json(&reference, &id, &total.to_string()));
        }
        let a = json!({"Status": "OK", "Invoices": answered});
        l.keys.insert(key, a.clone());
        return json_ok(a);
    }
    (StatusCode::NOT_FOUND, "").into_response()
}

async fn ticks(config: &Path, tickets: u64, ticks: u64, step: i64, changes: u64, full: bool) {
    use chrono::{DateTime, Duration as D, Utc};
    use contract_bridge::daemon::CycleReport;
    let start: DateTime<Utc> = "2026-11-10T00:00:00Z".parse().unwrap();
    let (bridge, store) = open_bridge(config, start).await;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let at = |t: DateTime<Utc>| t.to_rfc3339();
    // Most tickets done long ago; one in ten made during the day, open.
    let snapshot = |i: u64, rng: &mut Rng, touched: u64| {
        let priority = ["1 low", "2 normal", "3 high", "4 critical"][rng.below(4) as usize];
        if i.is_multiple_of(10) {
            let made = start + D::minutes(rng.below(24 * 60) as i64 - 60);
            let mut states = vec![json!({"at": at(made), "state": "new"})];
            if touched > 0 {
                states.push(json!({"at": at(made + D::minutes(touched as i64)), "state": "open"}));
            }
            json!({"id": format!("T-{i:07}"), "customer": "poznan-clinic", "title": "soak",
                   "priority": priority, "tags": [], "fields": {}, "created_at": at(made),
                   "states": states, "work": []})
        } else {
            let made = start - D::days(3 + rng.below(20) as i64);
            let done = made + D::minutes(30);
            json!({"id": format!("T-{i:07}"), "customer": "poznan-clinic", "title": "soak",
                   "priority": priority, "tags": [], "fields": {}, "created_at": at(made),
                   "first_response_at": at(made + D::minutes(5)), "resolved_at": at(done),
                   "states": [{"at": at(made), "state": "new"}, {"at": at(done), "state": "closed"}],
                   "work": []})
        }
        .to_string()
    };
    let rows: Vec<(String, String)> = (0..tickets)
        .map(|i| (format!("T-{i:07}"), snapshot(i, &mut rng, 0)))
        .collect();
    store_tickets(&store, &rows, start).await;
    let mut costs = Vec::new();
    let mut read = 0;
    let mut read_first = 0;
    let mut notes = 0;
    for k in 0..ticks {
        let now = start + D::minutes(step * k as i64);
        for _ in 0..changes {
            let i = rng.below(tickets / 10) * 10;
            let s = snapshot(i, &mut rng, k + 1);
            store
                .upsert_ticket("desk", &format!("T-{i:07}"), "poznan-clinic", &s, now)
                .await
                .expect("change");
        }
        let before = store.tickets_read();
        let t0 = Instant::now();
        let mut report = CycleReport::default();
        if full {
            let all = store.ticket_snapshots().await.expect("read");
            let mut parsed = contract_bridge::export::parse(
                Path::new("<store>"),
                &format!("{{\"tickets\":[{}]}}", all.join(",")),
            )
            .expect("parse");
            for t in &mut parsed {
                t.source = Some(engine::ticket::SourceName::new("desk"));
            }
            bridge
                .note_tickets(parsed, now, &mut report)
                .await
                .expect("tick");
        } else {
            bridge.note_sla(now, &mut report).await.expect("tick");
        }
        costs.push(t0.elapsed().as_secs_f64() * 1000.0);
        if k == 0 {
            read_first = store.tickets_read() - before;
        } else {
            read += store.tickets_read() - before;
        }
        notes += report.notes_queued;
    }
    let first = costs.first().copied().unwrap_or_default();
    let mut rest = costs[1.min(costs.len())..].to_vec();
    rest.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        rest.get(((rest.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "ticks ({}): {tickets} tickets, {ticks} ticks {step} min apart, {changes} changes before each: first tick {first:.0} ms ({read_first} tickets read); then p50 {:.1} ms, p99 {:.1} ms, {:.0} tickets read a tick; {notes} notes queued",
        if full { "full" } else { "incremental" },
        pct(0.5),
        pct(0.99),
        read as f64 / (ticks.max(2) - 1) as f64,
    );
}
