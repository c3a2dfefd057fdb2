//! The daemon's cycle, driven through the real binary: `run --once` on the
//! embedded folder source and target, on SQLite and on the local PostgreSQL.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use crate::support::{
    KillOnDrop, NOW, corrections_of, drafts_in, examples, expected_october_totals, folder_target,
    head, log_late_hour_on_t1001, run_once_with as run_once, samples, scenarios, status,
    write_toml,
};

/// A demo-like configuration in `dir`: the bundled scenarios in, drafts out.
fn config(dir: &Path, store_url: &str, drafts: &Path, max_attempts: i64) -> PathBuf {
    let text = format!(
        r#"{head}{samples}{drafts}
[outbox]
max_attempts = {max_attempts}
base_delay_secs = 60
max_delay_secs = 600
"#,
        head = head(store_url, &examples(), "drafts"),
        samples = samples(),
        drafts = folder_target("drafts", drafts),
    );
    write_toml(dir, &text)
}

fn check_cycle(store_url: &str, env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let drafts = dir.path().join("drafts");
    let cfg = config(dir.path(), store_url, &drafts, 8);
    let first = run_once(&cfg, NOW, env);
    assert!(
        first.contains("48 ticket(s) changed, 0 note(s) queued, 12 period(s) closed, 12 draft(s) queued (0 correction line(s)), 12 pushed"),
        "{first}"
    );
    assert_eq!(drafts_in(&drafts, ""), expected_october_totals());
    // A second cycle at the same instant finds nothing new and pushes nothing.
    let second = run_once(&cfg, NOW, env);
    assert!(
        second.contains("0 ticket(s) changed, 0 note(s) queued, 0 period(s) closed, 0 draft(s) queued (0 correction line(s)), 0 pushed"),
        "{second}"
    );
    assert_eq!(
        std::fs::read_dir(&drafts).unwrap().count(),
        36,
        "12 drafts × json, csv, journal"
    );
    let s = status(&cfg, env);
    assert!(s.contains("tickets stored: 48; periods closed: 12"), "{s}");
    assert!(s.contains("outbox: 0 pending, 12 sent, 0 dead"), "{s}");
}

#[test]
fn one_cycle_pushes_each_closed_month_once_as_the_offline_bill_computes_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/state.db", dir.path().display());
    check_cycle(&url, &[]);
}

#[test]
fn the_same_cycle_runs_on_postgres_through_the_environment_override() {
    let url = crate::support::postgres_database();
    // The file names SQLite; the environment moves the store to PostgreSQL.
    check_cycle(
        "sqlite://unused.db",
        &[("CONTRACT_BRIDGE__STORE__URL", url.as_str())],
    );
    assert!(!Path::new("unused.db").exists());
}

#[test]
fn a_failing_target_is_retried_later_and_dies_after_its_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/state.db", dir.path().display());
    // A file where the drafts folder should be: every push fails.
    let drafts = dir.path().join("drafts");
    std::fs::write(&drafts, "not a folder").unwrap();
    let cfg = config(dir.path(), &url, &drafts, 2);
    let first = run_once(&cfg, NOW, &[]);
    assert!(first.contains("0 pushed, 12 to retry, 0 dead"), "{first}");
    // Not due yet a minute later (backoff ≥ 60 s): nothing is attempted.
    let early = run_once(&cfg, "2026-11-23T12:00:30Z", &[]);
    assert!(early.contains("0 pushed, 0 to retry, 0 dead"), "{early}");
    let s = status(&cfg, &[]);
    assert!(s.contains("outbox: 12 pending, 0 sent, 0 dead"), "{s}");
    assert!(
        s.contains("failing drafts draft:riga-bakery:2026-10:r1: 1 attempt(s)"),
        "{s}"
    );
    // Second failure reaches max_attempts = 2: dead, shown, never retried.
    let later = run_once(&cfg, "2026-11-23T13:00:00Z", &[]);
    assert!(later.contains("0 pushed, 0 to retry, 12 dead"), "{later}");
    std::fs::remove_file(&drafts).unwrap();
    let after = run_once(&cfg, "2026-11-24T13:00:00Z", &[]);
    assert!(after.contains("0 pushed"), "{after}");
    assert!(status(&cfg, &[]).contains("outbox: 0 pending, 0 sent, 12 dead"));
}

#[test]
fn a_target_that_recovers_gets_every_draft_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/state.db", dir.path().display());
    let drafts = dir.path().join("drafts");
    std::fs::write(&drafts, "not a folder").unwrap();
    let cfg = config(dir.path(), &url, &drafts, 8);
    run_once(&cfg, NOW, &[]);
    std::fs::remove_file(&drafts).unwrap();
    let retry = run_once(&cfg, "2026-11-23T13:00:00Z", &[]);
    assert!(retry.contains("12 pushed, 0 to retry, 0 dead"), "{retry}");
    assert_eq!(drafts_in(&drafts, ""), expected_october_totals());
}

/// `GET path` over plain HTTP/1.1: status code and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (code, body)
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..200 {
        if ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// Copies the bundled exports into `dir`, to add tickets while a daemon runs.
fn copy_scenarios(dir: &Path) {
    for e in std::fs::read_dir(scenarios()).unwrap() {
        let from = e.unwrap().path();
        let to = dir.join(from.file_name().unwrap());
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(from.join("tickets.json"), to.join("tickets.json")).unwrap();
    }
}

/// Points the configuration's samples source at `exports`.
fn reads_from(cfg: &Path, exports: &Path) {
    let text = std::fs::read_to_string(cfg).unwrap().replace(
        &scenarios().display().to_string(),
        &exports.display().to_string(),
    );
    std::fs::write(cfg, text).unwrap();
}

fn metric(addr: &str, name: &str) -> Option<u64> {
    let (_, m) = get(addr, "/metrics");
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
}

#[test]
fn the_running_daemon_serves_its_endpoints_keeps_the_last_good_mapping_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // Mappings and exports of its own, to change them while the daemon runs.
    let mappings = dir.path().join("mappings");
    std::fs::create_dir(&mappings).unwrap();
    for e in std::fs::read_dir(examples()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, mappings.join(p.file_name().unwrap())).unwrap();
    }
    let exports = dir.path().join("exports");
    copy_scenarios(&exports);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("sqlite://{}/state.db", dir.path().display());
    let drafts = dir.path().join("drafts");
    let cfg = config(dir.path(), &url, &drafts, 8);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            &examples().display().to_string(),
            &mappings.display().to_string(),
        )
        .replace(
            &scenarios().display().to_string(),
            &exports.display().to_string(),
        );
    std::fs::write(
        &cfg,
        format!(
            "{text}\n[schedule]\npoll = \"* * * * * *\"\nmapping_check_secs = 0.2\n[http]\nlisten = \"{addr}\"\n"
        ),
    )
    .unwrap();

    // The real clock (2026-11 or later): October closes at start-up, as a
    // daemon catches up on the closes it missed.
    let mut child = KillOnDrop(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("contract-bridge"))
            .args(["run", "--config"])
            .arg(&cfg)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the October drafts", || {
        std::net::TcpStream::connect(&addr).is_ok()
            && metric(&addr, "contract_bridge_tickets") == Some(48)
            && drafts.is_dir()
            && drafts_in(&drafts, "").len() >= 12
    });
    let october: Vec<_> = std::fs::read_dir(&drafts)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name()?.to_str()?.to_owned();
            (name.contains("2026-10") && name.ends_with(".json")).then_some(p)
        })
        .collect();
    assert_eq!(october.len(), 12);
    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get(&addr, "/readyz").0, 200);
    let (_, metrics) = get(&addr, "/metrics");
    assert!(
        metrics.contains("contract_bridge_pushes_total{result=\"dead\"} 0"),
        "{metrics}"
    );

    let pid = child.0.id().to_string();
    let signal = |sig: &str| {
        let sent = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    };

    // A broken mapping is refused: the daemon is not ready, and it keeps
    // working on the last good mapping (a new export is still read).
    std::fs::write(
        mappings.join("zz-broken.yaml"),
        "customers:\n  x:\n    nonsense: 1\n",
    )
    .unwrap();
    wait_for("readiness to drop", || get(&addr, "/readyz").0 == 503);
    assert!(get(&addr, "/readyz").1.contains("mapping"));
    std::fs::create_dir(exports.join("late")).unwrap();
    std::fs::write(
        exports.join("late/tickets.json"),
        r#"{"tickets":[{"id":"LATE-1","customer":"riga-bakery","title":"Printer","created_at":"2026-11-20T09:00:00+02:00","states":[],"work":[]}]}"#,
    )
    .unwrap();
    wait_for("the new ticket", || {
        metric(&addr, "contract_bridge_tickets") == Some(49)
    });
    assert_eq!(get(&addr, "/healthz").0, 200);

    // Fixed and reloaded on SIGHUP: ready again.
    std::fs::remove_file(mappings.join("zz-broken.yaml")).unwrap();
    signal("-HUP");
    wait_for("readiness to return", || get(&addr, "/readyz").0 == 200);

    // SIGTERM stops it cleanly.
    signal("-TERM");
    let mut status = None;
    wait_for("the daemon to exit", || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    assert!(status.unwrap().success(), "{status:?}");
}

fn draft_json(drafts: &Path, customer: &str, period: &str) -> Value {
    let path = drafts.join(format!("draft_{customer}_{period}_r1.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn work_logged_after_a_pushed_draft_becomes_a_correction_in_the_next_draft() {
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    copy_scenarios(&exports);
    let url = format!("sqlite://{}/state.db", dir.path().display());
    let drafts = dir.path().join("drafts");
    let cfg = config(dir.path(), &url, &drafts, 8);
    reads_from(&cfg, &exports);
    run_once(&cfg, NOW, &[]);
    let october = std::fs::read(drafts.join("draft_riga-bakery_2026-10_r1.json")).unwrap();

    // An hour on T-1001 (ilze's, billable) logged late, dated October.
    log_late_hour_on_t1001(&exports.join("lv-it/tickets.json"));

    let december = run_once(&cfg, "2026-12-02T12:00:00Z", &[]);
    assert!(december.contains("1 ticket(s) changed"), "{december}");
    assert_eq!(
        std::fs::read(drafts.join("draft_riga-bakery_2026-10_r1.json")).unwrap(),
        october,
        "the pushed October draft is never changed"
    );
    let november = draft_json(&drafts, "riga-bakery", "2026-11");
    let corrections: Vec<&Value> = november["draft"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["corrects"] == "2026-10")
        .collect();
    assert!(!corrections.is_empty(), "{november:#}");
    assert!(
        corrections.iter().all(|l| l["description"]
            .as_str()
            .unwrap()
            .starts_with("Correction to 2026-10: ")),
        "{november:#}"
    );
    let corrected = corrections_of(&november, "2026-10");
    assert!(corrected > rust_decimal::Decimal::ZERO, "{november:#}");
    // No other customer is corrected.
    for entry in std::fs::read_dir(&drafts).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with(".json") && !name.contains("riga-bakery") {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            assert!(
                v["draft"]["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|l| l.get("corrects").is_none()),
                "{name}"
            );
        }
    }
    // Corrected once: December corrects nothing more.
    run_once(&cfg, "2027-01-02T12:00:00Z", &[]);
    if drafts.join("draft_riga-bakery_2026-12_r1.json").exists() {
        let dec = draft_json(&drafts, "riga-bakery", "2026-12");
        assert!(
            dec["draft"]["lines"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l.get("corrects").is_none()),
            "{dec:#}"
        );
    }
}

#[test]
fn close_closes_one_month_on_demand_and_backfill_reads_a_source_again() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/state.db", dir.path().display());
    let drafts = dir.path().join("drafts");
    let cfg = config(dir.path(), &url, &drafts, 8);
    let cmd = |args: &[&str]| {
        let out = Command::cargo_bin("contract-bridge")
            .unwrap()
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // Tickets created or worked on since October: all but five older ones.
    let (code, err) = cmd(&["backfill", "--since", "2026-10-01"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("43 ticket(s) changed"), "{err}");
    let (_, err) = cmd(&["backfill", "--since", "2020-01-01"]);
    assert!(err.contains("5 ticket(s) changed"), "{err}");
    let (code, err) = cmd(&["backfill", "--since", "2026-13-01"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--since"), "{err}");
    // A month that has not ended closes nothing.
    let (_, err) = cmd(&["close", "--period", "2026-11", "--now", NOW]);
    assert!(err.contains("0 period(s) closed"), "{err}");
    let (code, err) = cmd(&["close", "--period", "2026-10", "--now", NOW]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("12 period(s) closed, 12 draft(s) queued"),
        "{err}"
    );
    assert!(err.contains("12 pushed"), "{err}");
    assert_eq!(drafts_in(&drafts, ""), expected_october_totals());
    let (_, err) = cmd(&["close", "--period", "2026-10", "--now", NOW]);
    assert!(
        err.contains("0 period(s) closed"),
        "closing twice does nothing: {err}"
    );
    let (code, err) = cmd(&["close", "--period", "October", "--now", NOW]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn a_ticket_of_a_customer_without_a_contract_holds_up_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    copy_scenarios(&exports);
    std::fs::create_dir(exports.join("stray")).unwrap();
    std::fs::write(
        exports.join("stray/tickets.json"),
        r#"{"tickets":[{"id":"X-1","customer":"nobody","title":"?","created_at":"2026-10-02T09:00:00Z","states":[],"work":[{"id":"X-1-W","at":"2026-10-02T09:00:00Z","minutes":30,"kind":"remote"}]}]}"#,
    )
    .unwrap();
    let url = format!("sqlite://{}/state.db", dir.path().display());
    let drafts = dir.path().join("drafts");
    let cfg = config(dir.path(), &url, &drafts, 8);
    reads_from(&cfg, &exports);
    let out = run_once(&cfg, NOW, &[]);
    assert!(out.contains("49 ticket(s) changed"), "{out}");
    assert!(out.contains("12 draft(s) queued"), "{out}");
    assert!(
        out.contains("ticket X-1 (source samples): customer `nobody` has no contract"),
        "{out}"
    );
    assert_eq!(drafts_in(&drafts, ""), expected_october_totals());
}

/// The app `main` runs, built in the test's own process on port 0: it
/// listens on a port of its own choosing (no free-port probe to race),
/// closes October from the bundled samples, answers its health check and
/// stops when told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_runs_in_process_on_a_port_of_its_own_and_stops_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let drafts = dir.path().join("drafts");
    let cfg = config(
        dir.path(),
        &format!("sqlite://{}/state.db", dir.path().display()),
        &drafts,
        3,
    );
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("[http]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&cfg, text).unwrap();
    let settings = contract_bridge::settings::Settings::load(&cfg).unwrap();
    let app = contract_bridge::app::App::build(settings)
        .await
        .unwrap()
        .listen()
        .await
        .unwrap();
    let port = app.port().expect("a port");
    assert_ne!(port, 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let addr = format!("127.0.0.1:{port}");
    let health = tokio::task::spawn_blocking(move || get(&addr, "/healthz"))
        .await
        .unwrap();
    assert_eq!(health.0, 200, "{}", health.1);
    // The leader's first round closes every due month: drafts appear.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while drafts_in(&drafts, "2026-10").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no October draft");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(40), running)
        .await
        .expect("stops within its grace period")
        .unwrap()
        .unwrap();
}
