//! Hardening (issue 15): one writer per SQLite file, server limits, secrets
//! never printed, clear errors for bad values.

mod support;

use std::process::{Command, Stdio};

use support::*;

/// `contract-bridge ARGS --config CFG`: exit code, stdout, stderr.
fn cli(args: &[&str], cfg: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_on_one_sqlite_file_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/state.db", dir.path().display());
    // Nothing listens there: the daemon's pushes fail and are retried,
    // which does not matter here.
    let cfg = config(dir.path(), &url, "http://127.0.0.1:9/drafts", "");
    let daemon = KillOnDrop(
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = daemon.0.id().to_string();
    let lock = dir.path().join("state.db.lock");
    wait_for("the daemon's lock", || {
        std::fs::read_to_string(&lock).is_ok_and(|s| s.trim() == pid)
    })
    .await;
    for args in [
        &["run", "--once"][..],
        &["close", "--period", "2026-10"],
        &["backfill", "--since", "2026-10-01"],
    ] {
        let (code, stdout, stderr) = cli(args, &cfg);
        assert_eq!(code, 2, "{args:?} was not refused: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(stderr.contains(&format!("PID {pid}")), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&lock.display().to_string()),
            "{args:?}: {stderr}"
        );
    }
    // Reading beside the writer works.
    let (code, stdout, stderr) = cli(&["status"], &cfg);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.is_empty());
    // The lock dies with its holder, even by SIGKILL: the next writer starts.
    drop(daemon);
    let (code, _, stderr) = cli(&["backfill", "--since", "2026-10-01"], &cfg);
    assert_ne!(code, 2, "refused after the holder died: {stderr}");
    assert!(!stderr.contains("lock file"), "{stderr}");
}

/// Every secret-bearing setting holds this marker; no output may show it.
const MARKER: &str = "SECRETMARKER";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_setting_is_ever_printed_stored_or_served() {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
    // An accounting endpoint that refuses the token and echoes it back, as
    // careless APIs do: the error text then carries it.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string(format!(
            "invalid token: Bearer {MARKER}-target-token for acct:{MARKER}-target-url"
        )))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let store = postgres_database().replacen("postgres@", &format!("postgres:{MARKER}-store@"), 1);
    let target = server
        .uri()
        .replacen("http://", &format!("http://acct:{MARKER}-target-url@"), 1);
    let mappings = examples_with(
        dir.path(),
        "sources:\n  desk:\n    customers:\n      riga-bakery: riga-bakery\n",
    );
    let text = format!(
        r#"
[store]
url = "{store}"
[mapping]
path = "{mappings}"
[billing]
first_period = "2026-10"
target = "accounting"
[sources.samples]
type = "folder"
path = "{scenarios}"
file_name = "tickets.json"
recursive = true
[sources.hook]
type = "webhook"
webhook_secret = "{MARKER}-webhook"
[sources.desk]
type = "zammad"
url = "http://z:{MARKER}-zammad-url@127.0.0.1:1/"
token = "{MARKER}-zammad-token"
webhook_secret = "{MARKER}-zammad-hook"
[targets.accounting]
type = "http"
url = "{target}/drafts"
token = "{MARKER}-target-token"
requests_per_second = 200
[outbox]
max_attempts = 1
[report]
statement_secret = "{MARKER}-statement"
[http]
listen = "127.0.0.1:{port}"
"#,
        mappings = mappings.display(),
        scenarios = root().join("tests/fixtures/scenarios").display(),
    );
    let cfg = dir.path().join("bridge.toml");
    std::fs::write(&cfg, text).unwrap();

    let mut seen = String::new();
    for args in [
        &["run", "--once", "--now", NOW][..],
        &["status"],
        &["close", "--period", "2026-10", "--now", NOW],
        &["statement-link", "--customer", "riga-bakery"],
        &["backfill", "--since", "2026-10-01"],
    ] {
        let (code, stdout, stderr) = cli(args, &cfg);
        seen.push_str(&format!("$ {args:?} -> {code}\n{stdout}{stderr}"));
    }
    assert!(seen.contains("failing accounting"), "{seen}");
    assert!(seen.contains("401"), "{seen}");

    let log = dir.path().join("daemon.log");
    let daemon = KillOnDrop(
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_for_http(&client, &format!("{base}/healthz")).await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        seen.push_str(&r.text().await.unwrap());
    }
    for source in ["hook", "desk"] {
        let r = client
            .post(format!("{base}/webhooks/{source}"))
            .header("x-hub-signature", "sha1=00")
            .body("{}")
            .send()
            .await
            .unwrap();
        seen.push_str(&r.text().await.unwrap());
    }
    // The daemon's own cycle (the zammad poll fails on a closed port).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    drop(daemon);
    seen.push_str(&std::fs::read_to_string(&log).unwrap());
    assert!(
        seen.contains("127.0.0.1:1"),
        "the zammad failure is logged: {seen}"
    );
    let leaks: Vec<&str> = seen.lines().filter(|l| l.contains(MARKER)).collect();
    assert!(leaks.is_empty(), "secrets printed:\n{}", leaks.join("\n"));
}

/// Waits up to 60 s for any answer at `url`.
async fn wait_for_http(client: &reqwest::Client, url: &str) {
    let started = std::time::Instant::now();
    while client.get(url).send().await.is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{url} never answered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
