//! Hardening (issue 15): one writer per SQLite file, server limits, secrets
//! never printed, clear errors for bad values.

use std::process::{Command, Stdio};

use crate::support::*;

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
    let daemon = spawn_daemon(&cfg, Stdio::null());
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
        r#"{head}{samples}
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
        head = head(&store, &mappings, "accounting"),
        samples = samples(),
    );
    let cfg = write_toml(dir.path(), &text);

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
    let daemon = spawn_daemon(&cfg, std::fs::File::create(&log).unwrap());
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

/// This process's limit of open files (`/proc/self/limits`), if it says.
fn open_files_limit() -> Option<usize> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// How one attacking connection behaves.
#[derive(Clone, Copy)]
enum Attack {
    /// Connects and sends nothing.
    Idle,
    /// Sends a request head one byte every 300 ms, never finishing it.
    TrickleHead,
    /// Sends a whole head announcing a body, then the body a byte every 300 ms.
    TrickleBody,
}

/// Holds one connection the way `attack` says until the server closes it
/// (`true`) or `until` passes (`false`).
async fn hold(
    addr: String,
    attack: Attack,
    until: tokio::time::Instant,
    tried: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Option<bool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = tokio::net::TcpStream::connect(&addr).await;
    tried.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut s = s.ok()?;
    let (head, drip): (&[u8], &[u8]) = match attack {
        Attack::Idle => (b"", b""),
        Attack::TrickleHead => (b"", b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        Attack::TrickleBody => (
            b"POST /webhooks/hook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 4000\r\n\r\n",
            b"{\"tickets\":[                                                                   ",
        ),
    };
    if s.write_all(head).await.is_err() {
        return Some(true);
    }
    let mut i = 0;
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            read = s.read(&mut buf) => match read {
                // Closed by the server (an answer, if any, came first).
                Ok(0) | Err(_) => return Some(true),
                Ok(_) => {}
            },
            _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => {
                if !drip.is_empty() && s.write_all(&drip[i % drip.len()..][..1]).await.is_err() {
                    return Some(true);
                }
                i += 1;
            }
            _ = tokio::time::sleep_until(until) => return Some(false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_cannot_starve_the_health_check() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(
        dir.path(),
        &examples(),
        "drafts",
        &format!(
            r#"
[sources.hook]
type = "webhook"
webhook_secret = "hook-secret"
[targets.drafts]
type = "folder"
path = "{dir}/drafts"
[http]
listen = "127.0.0.1:{port}"
header_read_timeout_secs = 2
body_read_timeout_secs = 2
idle_timeout_secs = 2
max_connections = 256
"#,
            dir = dir.path().display()
        ),
    );
    // The daemon gets 1,024 file descriptors, fewer than the connections
    // thrown at it.
    let log = dir.path().join("daemon.log");
    let _daemon = KillOnDrop(
        Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -n 1024 && exec "$0" run --config "$1""#)
            .arg(bin())
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let addr = format!("127.0.0.1:{port}");
    let probe = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    wait_for_http(&probe, &format!("http://{addr}/healthz")).await;

    // 2,000 attackers, fewer if this process may not open that many files.
    let n = open_files_limit().map_or(2000, |l| l.saturating_sub(300).min(2000));
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let tried = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let attackers: Vec<_> = (0..n)
        .map(|i| {
            let attack = match i % 4 {
                0 | 1 => Attack::Idle,
                2 => Attack::TrickleHead,
                _ => Attack::TrickleBody,
            };
            tokio::spawn(hold(addr.clone(), attack, until, tried.clone()))
        })
        .collect();
    // Probed once they all are in (or refused).
    wait_for("the attackers to connect", || {
        tried.load(std::sync::atomic::Ordering::SeqCst) == n
    })
    .await;
    // /healthz, probed on a fresh connection while they hold theirs.
    let mut answered = 0;
    let mut retried = 0;
    let mut slowest = std::time::Duration::ZERO;
    let mut failures = Vec::new();
    let probing = tokio::time::Instant::now() + std::time::Duration::from_secs(6);
    while tokio::time::Instant::now() < probing {
        // A probe as health checkers make them: a few attempts in a row (a
        // connection accepted in the middle of the flood may be closed
        // before its request arrived).
        let sent = std::time::Instant::now();
        let mut errors = Vec::new();
        for _ in 0..3 {
            match probe.get(format!("http://{addr}/healthz")).send().await {
                Ok(r) if r.status() == 200 => break,
                Ok(r) => errors.push(format!("status {}", r.status())),
                Err(e) => errors.push(format!("{e:?}")),
            }
            retried += 1;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        if errors.len() == 3 {
            failures.push(errors);
        } else {
            answered += 1;
            slowest = slowest.max(sent.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut closed = 0;
    let mut connected = 0;
    let mut open_kinds = [0; 4];
    for (i, a) in attackers.into_iter().enumerate() {
        match a.await.unwrap() {
            Some(true) => {
                connected += 1;
                closed += 1;
            }
            Some(false) => {
                connected += 1;
                open_kinds[i % 4] += 1;
            }
            None => {}
        }
    }
    eprintln!("left open by kind (idle, idle, trickled head, trickled body): {open_kinds:?}");
    let metrics = get_text(&probe, &format!("http://{addr}/metrics")).await;
    let limited: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("contract_bridge_http_connections"))
        .collect();
    eprintln!(
        "{n} attackers ({connected} connected; the server, limited to 256 served at once: {limited:?}); \
         /healthz answered {answered} probe(s) ({retried} attempt(s) repeated), slowest {slowest:?}; {closed} attacker(s) closed by the server"
    );
    assert!(failures.is_empty(), "/healthz failed: {failures:?}");
    let peak: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("contract_bridge_http_connections_peak "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(peak <= 256, "served past http.max_connections: {peak}");
    assert!(answered > 0);
    assert_eq!(
        closed, connected,
        "every idle or trickling connection is closed by the server"
    );
}

#[test]
fn statement_link_refuses_a_bad_validity_and_an_unknown_customer() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = drafts_config(
        dir.path(),
        "[report]\nstatement_secret = \"link-secret\"\npublic_url = \"https://bridge.example.com\"\n",
    );
    let link = |customer: &str, valid: &str| {
        cli(
            &["statement-link", "--customer", customer, "--valid", valid],
            &cfg,
        )
    };
    let (code, stdout, stderr) = link("riga-bakery", "7d");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("https://bridge.example.com/statement/riga-bakery?"),
        "{stdout}"
    );
    for (valid, says) in [
        ("0d", "more than 0"),
        ("0m0s", "more than 0"),
        ("106751991167300d", "ten years"),
        ("9999999999999999999d", "not a duration"),
        ("7x", "not a duration"),
    ] {
        let (code, stdout, stderr) = link("riga-bakery", valid);
        assert_eq!(code, 2, "--valid {valid} was taken: {stdout}");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains("--valid") && stderr.contains(says),
            "--valid {valid}: {stderr}"
        );
    }
    let (code, stdout, stderr) = link("no-such-co", "7d");
    assert_eq!(code, 2, "{stdout}");
    assert!(stderr.contains("`no-such-co` has no contract"), "{stderr}");
    assert!(
        stderr.contains("riga-bakery"),
        "names the known ones: {stderr}"
    );
}

#[test]
fn bad_listen_addresses_and_unreachable_stores_are_named_with_their_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let with = |store: &str, listen: &str| {
        drafts_config(dir.path(), &format!("[http]\nlisten = \"{listen}\"\n"))
            .to_string_lossy()
            .replace("state.db", store)
    };
    let sqlite = "state.db";
    // Not an address at all: refused when the settings are read.
    let cfg = std::path::PathBuf::from(with(sqlite, "localhost"));
    let (code, _, stderr) = cli(&["run"], &cfg);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&cfg.display().to_string()) && stderr.contains("http.listen: `localhost`"),
        "{stderr}"
    );
    // An address in use: refused when the daemon starts.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = std::path::PathBuf::from(with(sqlite, &taken.local_addr().unwrap().to_string()));
    let (code, _, stderr) = cli(&["run"], &cfg);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&cfg.display().to_string()) && stderr.contains("http.listen"),
        "{stderr}"
    );
    // A PostgreSQL nobody answers for: within seconds, naming the setting
    // and the host, not the password.
    let path = dir.path().join("bridge.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        &format!("sqlite://{}/state.db", dir.path().display()),
        "postgres://bridge:pg-pass-word@127.0.0.1:1/bridge",
    );
    std::fs::write(&path, text).unwrap();
    let started = std::time::Instant::now();
    let (code, _, stderr) = cli(&["status"], &path);
    eprintln!(
        "unreachable store reported after {:?}: {stderr}",
        started.elapsed()
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{}: store.url", path.display()))
            && stderr.contains("127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("pg-pass-word"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_mapping_file_is_refused_and_the_last_good_mapping_stays() {
    let dir = tempfile::tempdir().unwrap();
    let mappings = examples_with(dir.path(), "templates: {}\n");
    let file = mappings.join("moneo.yaml");
    let kept = std::fs::read_to_string(&file).unwrap();
    // `check` names the file.
    std::fs::write(&file, "\n").unwrap();
    let out = Command::new(bin())
        .args(["check", "--mapping"])
        .arg(&mappings)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("moneo.yaml") && stderr.contains("the file is empty"),
        "{stderr}"
    );
    std::fs::write(&file, &kept).unwrap();

    let port = free_port();
    let cfg = write_config(
        dir.path(),
        &mappings,
        "drafts",
        &format!(
            "[targets.drafts]\ntype = \"folder\"\npath = \"{}/drafts\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n[schedule]\nmapping_check_secs = 0.2\n",
            dir.path().display()
        ),
    );
    let log = dir.path().join("daemon.log");
    let _daemon = spawn_daemon(&cfg, std::fs::File::create(&log).unwrap());
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &base).await;
    let ready = || async {
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    // One file emptied, then every file: refused each time.
    for emptied in [
        vec![file.clone()],
        std::fs::read_dir(&mappings)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect(),
    ] {
        for f in &emptied {
            std::fs::write(f, "").unwrap();
        }
        let mut waited = 0;
        while ready().await != 503 {
            assert!(waited < 600, "the emptied mapping was taken");
            waited += 1;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("the file is empty") && text.contains("the last good mapping stays in force"),
        "{text}"
    );
}
