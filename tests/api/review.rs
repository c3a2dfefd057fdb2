//! Finance's review (issue 17, item 2) and the audit trail (item 4), through
//! the real binary: a draft above the mapping's `review: above:` waits in
//! `awaiting_review`, is pushed once after approval, a held one keeps
//! waiting, a rejected one is never pushed and billed again only once its
//! tickets changed; every step is in `audit`. The review page: 401 without
//! a credential, and in headless Chromium a click on Approve gets the draft
//! to the fake ledger exactly once.

use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;
use wiremock::MockServer;

use crate::support::{
    Fake, Faults, bin, copy_scenario, examples, folder_source, get_text, head,
    log_late_hour_on_t1001, run_once_with, scenarios, serve, write_toml,
};
use serde_json::Value;

const NOW: &str = "2026-11-23T12:00:00Z";
const LATER: &str = "2026-11-24T12:00:00Z";
const NORDHAVN: &str = "nordhavn-arkitekter";

/// The itech mapping (nordhavn's drafts reviewed above 2000.00, valby's
/// not) and a copy of its tickets in `dir`, drafts to the fake at `url`.
fn setup(dir: &Path, url: &str, extra: &str) -> PathBuf {
    setup_on(
        dir,
        &format!("sqlite://{}/state.db", dir.display()),
        url,
        extra,
    )
}

/// [`setup`] on the store at `store_url`.
fn setup_on(dir: &Path, store_url: &str, url: &str, extra: &str) -> PathBuf {
    let mapping = dir.join("mapping");
    std::fs::create_dir_all(&mapping).unwrap();
    let text = std::fs::read_to_string(examples().join("itech-klippekort.yaml"))
        .unwrap()
        .replacen(
            "  nordhavn-arkitekter:\n    template: itech-punch-card\n",
            "  nordhavn-arkitekter:\n    template: itech-punch-card\n    review:\n      above: \"2000.00\"\n",
            1,
        );
    assert!(text.contains("above: \"2000.00\""));
    std::fs::write(mapping.join("itech.yaml"), text).unwrap();
    let tickets = copy_scenario(dir, "itech-klippekort");
    let config = format!(
        r#"{head}{itech}[targets.books]
type = "http"
url = "{url}"
timeout_ms = 2000
[outbox]
max_attempts = 3
base_delay_secs = 0
max_delay_secs = 0
{extra}
"#,
        head = head(store_url, &mapping, "books"),
        itech = folder_source("itech", &tickets),
    );
    write_toml(dir, &config)
}

fn cli(config: &Path, args: &[&str], user: &str) -> Output {
    std::process::Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .env("USER", user)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `review WHAT --customer CUSTOMER --period PERIOD`, then `more`, as `user`.
fn review(config: &Path, what: &str, draft: (&str, &str), more: &[&str], user: &str) -> Output {
    let (customer, period) = draft;
    let args = ["review", what, "--customer", customer, "--period", period];
    cli(config, &[&args[..], more].concat(), user)
}

/// `review show --json` of `customer`'s draft for `period`.
fn show_json(config: &Path, customer: &str, period: &str) -> Value {
    let out = ok(review(
        config,
        "show",
        (customer, period),
        &["--json"],
        "anna",
    ));
    serde_json::from_str(&out).unwrap()
}

/// Nordhavn's October.
const OCTOBER: (&str, &str) = (NORDHAVN, "2026-10");

fn decide(config: &Path, what: &str, user: &str, reason: Option<&str>) -> String {
    let reason = reason.map_or(vec![], |r| vec!["--reason", r]);
    ok(review(config, what, OCTOBER, &reason, user))
}

/// A fake ledger that never fails (`seed` seeds its rolls) and [`setup`]
/// against it in a fresh folder.
async fn reviewed(seed: u64, extra: &str) -> (Fake, MockServer, TempDir, PathBuf) {
    let fake = Fake::new(Faults::default(), seed);
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), &server.uri(), extra);
    (fake, server, dir, cfg)
}

/// The audit entries of every draft created for nordhavn.
fn nordhavn_created(config: &Path) -> Vec<Value> {
    let filter = [
        "--action",
        "draft_created",
        "--subject",
        "nordhavn-arkitekter/",
    ];
    audit(config, &filter)
}

/// A rejected October billed again, approved and pushed.
const REJECTED_THEN_PUSHED: [&str; 5] = [
    "draft_created",
    "draft_rejected",
    "draft_created",
    "draft_approved",
    "draft_pushed",
];

/// The mapping's file changed by a comment: a new version to load.
fn touch_mapping(dir: &Path, comment: &str) {
    let file = dir.join("mapping/itech.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}\n# {comment}\n")).unwrap();
}

/// How often the fake received each draft key of nordhavn's October.
fn pushes(fake: &Fake, key: &str) -> usize {
    fake.requests().iter().filter(|(k, _)| k == key).count()
}

fn audit(config: &Path, filter: &[&str]) -> Vec<Value> {
    let mut args = vec!["audit", "--json"];
    args.extend(filter);
    serde_json::from_str::<Value>(&ok(cli(config, &args, "auditor")))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn actions(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

const R1: &str = "draft:nordhavn-arkitekter:2026-10:r1";
const R2: &str = "draft:nordhavn-arkitekter:2026-10:r2";

#[tokio::test]
async fn a_draft_above_the_threshold_waits_and_is_pushed_once_after_approval() {
    let (fake, _server, dir, cfg) = reviewed(1, "").await;
    let log = run_once_with(&cfg, NOW, &[("USER", "ops")]);
    assert!(log.contains("review: 1 draft(s) wait"), "{log}");
    assert_eq!(pushes(&fake, R1), 0, "waits for review");
    assert_eq!(
        pushes(&fake, "draft:valby-tandlaege:2026-10:r1"),
        1,
        "no policy: pushed at once"
    );
    let status = crate::support::status(&cfg, &[]);
    assert!(
        status.contains("review: 1 draft(s) awaiting review, 0 rejected"),
        "{status}"
    );
    let list = ok(cli(&cfg, &["review", "list", "--json"], "anna"));
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["customer"], NORDHAVN);
    assert_eq!(list[0]["state"], "awaiting");
    assert_eq!(list[0]["policy"], "above: 2000.00");
    assert_eq!(list[0]["total_net"], "3000.00");
    let show = show_json(&cfg, NORDHAVN, "2026-10");
    let lines = show["lines"].as_array().unwrap();
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .all(|l| !l["explanation"].as_str().unwrap().is_empty()),
        "every line explained: {show}"
    );
    assert_eq!(show["change"], "+3000.00", "no draft in September");
    // Waiting is not forgotten by a later cycle.
    run_once_with(&cfg, LATER, &[]);
    assert_eq!(pushes(&fake, R1), 0);

    let said = decide(&cfg, "approve", "anna", None);
    assert!(said.contains("approved by anna"), "{said}");
    run_once_with(&cfg, LATER, &[]);
    assert_eq!(pushes(&fake, R1), 1, "pushed after approval");
    run_once_with(&cfg, LATER, &[]);
    assert_eq!(pushes(&fake, R1), 1, "and only once");
    assert_eq!(fake.created()[R1]["total_net"], "3000.00");
    // A decided draft cannot be decided again.
    let again = review(&cfg, "reject", OCTOBER, &["--reason", "late"], "anna");
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("approved already"));

    let trail = audit(&cfg, &["--subject", "nordhavn-arkitekter/"]);
    assert_eq!(
        actions(&trail),
        ["draft_created", "draft_approved", "draft_pushed"]
    );
    assert_eq!(trail[0]["actor"], "daemon");
    assert_eq!(trail[0]["detail"]["review"], "above: 2000.00");
    assert_eq!(trail[1]["actor"], "anna");
    assert_eq!(trail[2]["detail"]["key"], R1);
    let loaded = audit(&cfg, &["--action", "mapping_loaded"]);
    assert_eq!(loaded.len(), 1, "loaded once: the files did not change");
    assert_eq!(loaded[0]["actor"], "ops");
    assert_eq!(
        loaded[0]["subject"],
        dir.path().join("mapping").display().to_string()
    );
    let sha = loaded[0]["detail"]["sha256"].as_str().unwrap();
    assert!(
        sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
        "{sha}"
    );
    assert_eq!(audit(&cfg, &["--actor", "anna"]).len(), 1);
    assert_eq!(audit(&cfg, &["--limit", "1"]).len(), 1);
    assert!(audit(&cfg, &["--until", "2026-01-01"]).is_empty());
}

#[tokio::test]
async fn a_held_draft_keeps_waiting_with_its_reason() {
    let (fake, _server, _dir, cfg) = reviewed(2, "").await;
    run_once_with(&cfg, NOW, &[]);
    let no_reason = review(&cfg, "hold", OCTOBER, &[], "anna");
    assert_eq!(no_reason.status.code(), Some(2), "a hold says why");
    decide(&cfg, "hold", "anna", Some("ask the customer about N-03"));
    run_once_with(&cfg, LATER, &[]);
    assert_eq!(pushes(&fake, R1), 0, "held: not pushed");
    let list = ok(cli(&cfg, &["review", "list"], "anna"));
    assert!(
        list.contains("held") && list.contains("ask the customer about N-03"),
        "{list}"
    );
    let held = audit(&cfg, &["--action", "draft_held"]);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["detail"]["reason"], "ask the customer about N-03");
    // Held is still waiting: it can be approved later.
    decide(&cfg, "approve", "bob", None);
    run_once_with(&cfg, LATER, &[]);
    assert_eq!(pushes(&fake, R1), 1);
}

#[tokio::test]
async fn a_rejected_draft_is_billed_again_only_after_its_tickets_changed() {
    let (fake, _server, dir, cfg) = reviewed(3, "").await;
    run_once_with(&cfg, NOW, &[]);
    decide(&cfg, "reject", "bob", Some("N-03 was a warranty case"));
    let status = crate::support::status(&cfg, &[]);
    assert!(
        status.contains("0 draft(s) awaiting review, 1 rejected"),
        "{status}"
    );
    // Nothing changed: not billed again, however often the close runs.
    for at in [LATER, "2026-11-25T12:00:00Z"] {
        run_once_with(&cfg, at, &[]);
    }
    assert_eq!(pushes(&fake, R1), 0, "rejected: never pushed");
    assert_eq!(nordhavn_created(&cfg).len(), 1);

    // The ticket data changes: an hour more on N-03 in October.
    let file = dir.path().join("tickets/tickets.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let n03 = doc["tickets"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["id"] == "N-03")
        .unwrap();
    let minutes = n03["work"][0]["minutes"].as_i64().unwrap();
    n03["work"][0]["minutes"] = (minutes + 60).into();
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let log = run_once_with(&cfg, "2026-11-26T12:00:00Z", &[]);
    assert!(
        log.contains("review: 1 draft(s) wait"),
        "billed again, waiting again: {log}"
    );
    let created = audit(
        &cfg,
        &[
            "--action",
            "draft_created",
            "--subject",
            "nordhavn-arkitekter/",
        ],
    );
    assert_eq!(created.len(), 2);
    assert_eq!(created[1]["detail"]["key"], R2);
    assert_eq!(created[1]["detail"]["rebilled_after_rejection"], true);
    decide(&cfg, "approve", "anna", None);
    run_once_with(&cfg, "2026-11-26T12:00:00Z", &[]);
    run_once_with(&cfg, "2026-11-27T12:00:00Z", &[]);
    assert_eq!((pushes(&fake, R1), pushes(&fake, R2)), (0, 1));
    let trail = audit(&cfg, &["--subject", "nordhavn-arkitekter/2026-10"]);
    assert_eq!(actions(&trail), REJECTED_THEN_PUSHED);
    assert_eq!(trail[1]["actor"], "bob");
    assert_eq!(trail[1]["detail"]["reason"], "N-03 was a warranty case");
}

// ------------------------------------------------------------ the web page

/// The review page's credentials in the daemon's configuration.
fn web_extra(port: u16) -> String {
    format!(
        r#"[http]
listen = "127.0.0.1:{port}"
[review]
token = "t0ken-for-scripts"
[review.users]
anna = "anna-s3cret"
"#
    )
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Waits until the daemon at `base` shows nordhavn's October on its review page.
async fn wait_for_review(client: &reqwest::Client, base: &str) -> String {
    crate::support::wait_ready(client, base).await;
    let started = std::time::Instant::now();
    loop {
        let page = client
            .get(format!("{base}/review"))
            .header("authorization", basic("anna", "anna-s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let text = page.text().await.unwrap();
        if text.contains(r#"data-customer="nordhavn-arkitekter" data-period="2026-10""#) {
            return text;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "October never waited for review: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_page_needs_a_credential_and_a_form_token_of_its_own() {
    let port = crate::support::free_port();
    let (fake, _server, _dir, cfg) = reviewed(4, &web_extra(port)).await;
    let _daemon = crate::support::spawn_daemon(&cfg, std::process::Stdio::null());
    let (client, base) = (reqwest::Client::new(), format!("http://127.0.0.1:{port}"));
    let page = wait_for_review(&client, &base).await;
    assert!(page.contains("Signed in as <strong>anna</strong>"));
    // Nobody, a wrong password, an unknown user, a wrong token: 401.
    for auth in [
        None,
        Some(basic("anna", "wrong")),
        Some(basic("mallory", "anna-s3cret")),
        Some("Bearer nope".to_owned()),
    ] {
        let mut r = client.get(format!("{base}/review"));
        if let Some(a) = &auth {
            r = r.header("authorization", a);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic realm=")
        );
        assert!(!r.text().await.unwrap().contains("nordhavn"));
    }
    let approve = format!("{base}/review/nordhavn-arkitekter/2026-10/approve");
    // Unauthenticated decisions are refused like pages.
    let r = client
        .post(&approve)
        .body("revision=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The token works for pages; a form without its token does not decide.
    let r = client
        .get(format!("{base}/review"))
        .header("authorization", "Bearer t0ken-for-scripts")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(&approve)
        .header("authorization", basic("anna", "anna-s3cret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("revision=1&csrf=00")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // anna's form token, sent from another site: refused.
    let csrf = page
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let r = client
        .post(&approve)
        .header("authorization", basic("anna", "anna-s3cret"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("revision=1&csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A rejection without a reason is refused.
    let r = client
        .post(format!("{base}/review/nordhavn-arkitekter/2026-10/reject"))
        .header("authorization", basic("anna", "anna-s3cret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("revision=1&csrf={csrf}&reason=+"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(pushes(&fake, R1), 0, "nothing refused was approved");
    assert!(audit(&cfg, &["--action", "draft_approved"]).is_empty());
    assert!(audit(&cfg, &["--action", "draft_rejected"]).is_empty());
    // The command line cannot write beside a daemon on SQLite: it says where to go.
    let cli_approve = review(&cfg, "approve", OCTOBER, &[], "anna");
    assert_eq!(cli_approve.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&cli_approve.stderr).contains("decide on its review page"),
        "{}",
        String::from_utf8_lossy(&cli_approve.stderr)
    );
}

/// Chromium's flags for a headless run driven over its DevTools pipe, as
/// the PDF printer (src/pdf.rs) starts it.
const HEADLESS: &str =
    "--headless --no-sandbox --disable-gpu --no-first-run --remote-debugging-pipe";

/// Headless Chromium driven over the DevTools protocol on a pipe
/// (`--remote-debugging-pipe`: commands on fd 3, answers on fd 4, each a
/// JSON text ended by NUL), through two FIFOs.
struct Browser {
    child: std::process::Child,
    to: std::fs::File,
    from: std::io::BufReader<std::fs::File>,
    next: u64,
    session: Option<String>,
    events: Vec<Value>,
    _dir: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let dir = tempfile::tempdir().unwrap();
        let (cmds, answers) = (dir.path().join("in"), dir.path().join("out"));
        for f in [&cmds, &answers] {
            assert!(
                std::process::Command::new("mkfifo")
                    .arg(f)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<"$CDP_IN" 4>"$CDP_OUT""#)
            .arg(&chromium)
            .args(HEADLESS.split(' '))
            .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
            .arg("about:blank")
            .env("CDP_IN", &cmds)
            .env("CDP_OUT", &answers)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("the browser test needs headless Chromium (`{chromium}`; CHROMIUM=/path overrides): {e}"));
        let to = std::fs::OpenOptions::new().write(true).open(&cmds).unwrap();
        let from = std::io::BufReader::new(std::fs::File::open(&answers).unwrap());
        Browser {
            child,
            to,
            from,
            next: 0,
            session: None,
            events: Vec::new(),
            _dir: dir,
        }
    }

    fn read(&mut self) -> Value {
        use std::io::BufRead;
        let mut buf = Vec::new();
        let n = self.from.read_until(0, &mut buf).unwrap();
        assert!(n > 0, "Chromium closed the pipe");
        buf.pop();
        serde_json::from_slice(&buf).unwrap()
    }

    /// Sends a command (to the page's session once attached); its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        use std::io::Write;
        self.next += 1;
        let id = self.next;
        let mut msg = serde_json::json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = s.clone().into();
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        loop {
            let m = self.read();
            if m["id"] == id {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
            self.events.push(m);
        }
    }

    /// Waits for the page's next `load` event (events seen earlier dropped).
    fn wait_load(&mut self) {
        if let Some(i) = self
            .events
            .iter()
            .position(|e| e["method"] == "Page.loadEventFired")
        {
            self.events.drain(..=i);
            return;
        }
        loop {
            let m = self.read();
            if m["method"] == "Page.loadEventFired" {
                return;
            }
        }
    }

    fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": js, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens the review page as anna in Chromium and clicks October's Approve
/// button (a real mouse click at its place on the page); the page shown after.
fn approve_in_chromium(base: &str) -> String {
    let mut b = Browser::start();
    let target = b.call(
        "Target.createTarget",
        serde_json::json!({"url": "about:blank"}),
    );
    let attached = b.call(
        "Target.attachToTarget",
        serde_json::json!({"targetId": target["targetId"], "flatten": true}),
    );
    b.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
    b.call("Page.enable", serde_json::json!({}));
    b.call("Network.enable", serde_json::json!({}));
    b.call(
        "Network.setExtraHTTPHeaders",
        serde_json::json!({"headers": {"Authorization": basic("anna", "anna-s3cret")}}),
    );
    b.events.clear();
    b.call(
        "Page.navigate",
        serde_json::json!({"url": format!("{base}/review")}),
    );
    b.wait_load();
    let section = r#"section[data-customer="nordhavn-arkitekter"][data-period="2026-10"]"#;
    let explained = b.eval(&format!(
        "[...document.querySelectorAll('{section} td.explanation')].every(td => td.textContent.trim().length > 0)"
    ));
    assert_eq!(explained, true, "every line is explained on the page");
    let rect = b.eval(&format!(
        r#"(() => {{ const el = document.querySelector('{section} form[data-action="approve"] button');
            el.scrollIntoView({{block: 'center'}});
            const r = el.getBoundingClientRect();
            return {{x: r.left + r.width / 2, y: r.top + r.height / 2, text: el.textContent}}; }})()"#
    ));
    assert_eq!(rect["text"], "Approve");
    b.events.clear();
    for kind in ["mousePressed", "mouseReleased"] {
        b.call(
            "Input.dispatchMouseEvent",
            serde_json::json!({"type": kind, "x": rect["x"], "y": rect["y"], "button": "left", "clickCount": 1}),
        );
    }
    b.wait_load();
    let shown = b.eval("location.href + '\\n' + document.body.innerText");
    let _ = b.call("Browser.close", serde_json::json!({}));
    shown.as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_in_a_browser_pushes_the_draft_to_the_ledger_once() {
    let port = crate::support::free_port();
    let (fake, _server, _dir, cfg) = reviewed(5, &web_extra(port)).await;
    let _daemon = crate::support::spawn_daemon(&cfg, std::process::Stdio::null());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_for_review(&client, &base).await;
    assert_eq!(pushes(&fake, R1), 0, "waits for review");
    let metrics = get_text(&client, &format!("{base}/metrics")).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("contract_bridge_drafts_awaiting_review ")
                && l != "contract_bridge_drafts_awaiting_review 0"),
        "{metrics}"
    );

    let b = base.clone();
    let shown = tokio::task::spawn_blocking(move || approve_in_chromium(&b))
        .await
        .unwrap();
    assert!(shown.contains("/review?done="), "{shown}");
    assert!(
        shown.contains("nordhavn-arkitekter/2026-10 approved"),
        "{shown}"
    );
    crate::support::wait_for("the approved draft at the ledger", || {
        pushes(&fake, R1) >= 1
    })
    .await;
    // The outbox has nothing more to send for it.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(pushes(&fake, R1), 1, "exactly once");
    assert_eq!(fake.created()[R1]["customer"], NORDHAVN);
    let approved = audit(&cfg, &["--action", "draft_approved"]);
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["actor"], "anna", "the review credential's name");
    assert_eq!(approved[0]["subject"], "nordhavn-arkitekter/2026-10");
    crate::support::wait_for("draft_pushed in the audit trail", || {
        audit(
            &cfg,
            &[
                "--action",
                "draft_pushed",
                "--subject",
                "nordhavn-arkitekter/2026-10",
            ],
        )
        .len()
            == 1
    })
    .await;
}

#[tokio::test]
async fn a_rejected_draft_is_billed_again_after_a_mapping_change() {
    let (fake, _server, dir, cfg) = reviewed(6, "").await;
    run_once_with(&cfg, NOW, &[]);
    decide(&cfg, "reject", "bob", Some("rate to be renegotiated"));
    run_once_with(&cfg, LATER, &[]);
    let created = || {
        audit(
            &cfg,
            &[
                "--action",
                "draft_created",
                "--subject",
                "nordhavn-arkitekter/",
            ],
        )
    };
    assert_eq!(created().len(), 1, "unchanged: not billed again");
    // The mapping changes (a new version of the files is loaded).
    touch_mapping(dir.path(), "renegotiated with nordhavn");
    let log = run_once_with(&cfg, LATER, &[("USER", "carol")]);
    assert!(log.contains("review: 1 draft(s) wait"), "{log}");
    assert_eq!(created().len(), 2);
    assert_eq!(created()[1]["detail"]["key"], R2);
    let loaded = audit(&cfg, &["--action", "mapping_loaded"]);
    assert_eq!(loaded.len(), 2, "a new version is recorded");
    assert_eq!(loaded[1]["actor"], "carol");
    assert_ne!(loaded[0]["detail"]["sha256"], loaded[1]["detail"]["sha256"]);
    assert_eq!(pushes(&fake, R1) + pushes(&fake, R2), 0, "waits again");
}

#[tokio::test]
async fn a_reviewed_draft_shows_last_month_and_its_corrections_are_audited() {
    let (fake, _server, dir, cfg) = reviewed(7, "").await;
    // lv-it instead of itech: riga-bakery's drafts all wait for review.
    let mapping = dir.path().join("mapping");
    std::fs::remove_file(mapping.join("itech.yaml")).unwrap();
    let text = std::fs::read_to_string(examples().join("lv-it.yaml"))
        .unwrap()
        .replacen(
            "  riga-bakery:\n    template: lv-it-minimal\n",
            "  riga-bakery:\n    template: lv-it-minimal\n    review: required\n",
            1,
        );
    assert!(text.contains("review: required"));
    std::fs::write(mapping.join("lv-it.yaml"), text).unwrap();
    let tickets = dir.path().join("tickets/tickets.json");
    std::fs::copy(scenarios().join("lv-it/tickets.json"), &tickets).unwrap();
    run_once_with(&cfg, NOW, &[]);
    ok(review(
        &cfg,
        "approve",
        ("riga-bakery", "2026-10"),
        &[],
        "anna",
    ));
    run_once_with(&cfg, NOW, &[]);
    assert_eq!(pushes(&fake, "draft:riga-bakery:2026-10:r1"), 1);

    // An hour on T-1001 logged late, dated October: November corrects it.
    log_late_hour_on_t1001(&tickets);
    run_once_with(&cfg, "2026-12-02T12:00:00Z", &[]);
    assert_eq!(pushes(&fake, "draft:riga-bakery:2026-11:r1"), 0, "waits");
    let show = show_json(&cfg, "riga-bakery", "2026-11");
    let october_total: rust_decimal::Decimal =
        fake.created()["draft:riga-bakery:2026-10:r1"]["total_net"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    assert_eq!(show["previous"]["period"], "2026-10");
    assert_eq!(show["previous"]["total_net"], october_total.to_string());
    let total: rust_decimal::Decimal = show["total_net"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        show["change"].as_str().unwrap().trim_start_matches('+'),
        format!("{:.2}", total - october_total)
    );
    let lines = show["lines"].as_array().unwrap();
    let correction = lines
        .iter()
        .find(|l| {
            l["description"]
                .as_str()
                .unwrap()
                .starts_with("Correction to 2026-10: ")
        })
        .unwrap_or_else(|| panic!("{show:#}"));
    assert!(
        correction["explanation"]
            .as_str()
            .unwrap()
            .contains("correction of 2026-10")
    );
    let corrected = audit(&cfg, &["--action", "draft_corrected"]);
    assert_eq!(corrected.len(), 1, "{corrected:?}");
    assert_eq!(
        corrected[0]["detail"]["amount"], "40.00",
        "the late hour at 40.00/h"
    );
    assert_eq!(corrected[0]["detail"]["lines"], lines.len());
    assert_eq!(corrected[0]["subject"], "riga-bakery/2026-10");
    assert_eq!(
        corrected[0]["detail"]["in_draft"],
        "draft:riga-bakery:2026-11:r1"
    );
    let text = ok(review(
        &cfg,
        "show",
        ("riga-bakery", "2026-11"),
        &[],
        "anna",
    ));
    assert!(text.contains("against 2026-10"), "{text}");
}

#[tokio::test]
async fn on_postgres_a_rejected_draft_waits_for_new_data_and_an_approved_one_is_pushed_once() {
    let fake = Fake::new(Faults::default(), 8);
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup_on(
        dir.path(),
        &crate::support::postgres_database(),
        &server.uri(),
        "",
    );
    run_once_with(&cfg, NOW, &[]);
    decide(&cfg, "reject", "bob", Some("not yet"));
    run_once_with(&cfg, LATER, &[]);
    assert_eq!(nordhavn_created(&cfg).len(), 1);
    touch_mapping(dir.path(), "changed");
    run_once_with(&cfg, LATER, &[]);
    decide(&cfg, "approve", "anna", None);
    run_once_with(&cfg, LATER, &[]);
    run_once_with(&cfg, LATER, &[]);
    assert_eq!((pushes(&fake, R1), pushes(&fake, R2)), (0, 1));
    let trail = audit(&cfg, &["--subject", "nordhavn-arkitekter/2026-10"]);
    assert_eq!(actions(&trail), REJECTED_THEN_PUSHED);
}

#[tokio::test]
async fn a_reviewed_draft_shows_each_lines_amount_last_month_and_the_change() {
    let (fake, _server, dir, cfg) = reviewed(9, "").await;
    let file = dir.path().join("mapping/itech.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replacen(
        "    review:\n      above: \"2000.00\"\n",
        "    review: required\n",
        1,
    );
    assert!(text.contains("review: required"));
    std::fs::write(&file, text).unwrap();
    // October and November close at once; both wait.
    run_once_with(&cfg, "2026-12-02T12:00:00Z", &[]);
    let list: Value =
        serde_json::from_str(&ok(cli(&cfg, &["review", "list", "--json"], "anna"))).unwrap();
    let periods: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["period"].as_str().unwrap())
        .collect();
    assert_eq!(periods, ["2026-10", "2026-11"]);
    let show = show_json(&cfg, NORDHAVN, "2026-11");
    let october = crate::support::offline_bill(
        &file,
        &scenarios().join("itech-klippekort/tickets.json"),
        "2026-10",
    );
    let october = october["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["customer"] == NORDHAVN)
        .unwrap()
        .clone();
    assert_eq!(show["previous"]["total_net"], october["total_net"]);
    let (now, before): (rust_decimal::Decimal, rust_decimal::Decimal) = (
        show["total_net"].as_str().unwrap().parse().unwrap(),
        october["total_net"].as_str().unwrap().parse().unwrap(),
    );
    assert_eq!(show["change"], format!("{:.2}", now - before));
    for line in show["lines"].as_array().unwrap() {
        let same = october["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["description"] == line["description"]);
        assert_eq!(
            line["last_month"],
            same.map_or(Value::Null, |l| l["amount"].clone()),
            "{show:#}"
        );
    }
    assert!(
        show["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["last_month"].is_string()),
        "a line billed both months: {show:#}"
    );
    assert_eq!(pushes(&fake, R1), 0);
}

#[test]
fn an_empty_review_credential_is_refused_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[review]\ntoken = \"\"\n", "review.token", "empty"),
        (
            "[review.users]\nanna = \" \"\n",
            "review.users.anna",
            "empty",
        ),
        (
            "[review.users]\n\"an:na\" = \"pw\"\n",
            "`an:na`",
            "user name",
        ),
    ];
    for (extra, key, why) in cases {
        let cfg = setup(dir.path(), "http://127.0.0.1:9", extra);
        let out = cli(&cfg, &["status"], "anna");
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(key) && err.contains(why) && err.contains("bridge.toml"),
            "{err}"
        );
    }
}
