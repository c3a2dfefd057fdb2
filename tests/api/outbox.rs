//! Exactly once, under crashes, faults and a second instance: the real
//! daemon against a fake accounting API (wiremock) that honours
//! idempotency keys and fails on demand.
//!
//! `CONTRACT_BRIDGE_CRASH_ROUNDS` sets the crash rounds (default 20;
//! `scripts/crash-soak.sh` runs 200).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

async fn fake_server(fake: &Fake) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    server
}

type Daemon = KillOnDrop;

fn spawn(args: &[&str], config: &std::path::Path) -> Daemon {
    KillOnDrop(
        Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The ledger balances: every closed period's draft was sent, none is
/// pending or dead, and the fake holds exactly the expected drafts, each
/// under one key, never changed.
/// `drafts` drafts, each created once with one payload, October's as the
/// offline bill has them. A daemon on the real clock also closes the months
/// after October (fees only), so `drafts` is at least 12.
fn assert_balanced(fake: &Fake, config: &std::path::Path, env: &[(&str, &str)], drafts: usize) {
    let created = fake.created();
    assert_eq!(october_drafts(&created), expected_october_totals());
    assert_eq!(created.len(), drafts, "{:?}", created.keys());
    assert!(
        fake.changed().is_empty(),
        "a key carried another payload: {:?}",
        fake.changed()
    );
    let s = status(config, env);
    assert!(
        s.contains(&format!("outbox: 0 pending, {drafts} sent, 0 dead")),
        "{s}"
    );
}

/// How many drafts a running daemon has sent once nothing is pending, or
/// `None` while something is.
fn settled(addr: &str) -> Option<usize> {
    let m = metrics(addr);
    let depth = |state: &str| {
        m.lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "contract_bridge_outbox_depth{{state=\"{state}\"}} "
                ))
            })
            .and_then(|v| v.parse::<usize>().ok())
    };
    (depth("pending")? == 0).then_some(())?;
    depth("sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_at_random_moments_of_a_close_pushes_each_draft_once() {
    let rounds: u64 = std::env::var("CONTRACT_BRIDGE_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let (mut in_flight, mut repeated) = (0, 0);
    for round in 0..rounds {
        let fake = Fake::new(
            Faults {
                delay: Duration::from_millis(25),
                ..Faults::default()
            },
            round + 1,
        );
        let server = fake_server(&fake).await;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/state.db", dir.path().display());
        let cfg = config(dir.path(), &url, &format!("{}/drafts", server.uri()), "");
        let mut daemon = spawn(&["run", "--once", "--now", NOW], &cfg);
        // Half the rounds die after a random number of pushes arrived (a
        // push is then in flight), half at a random instant of the run.
        let start = Instant::now();
        if round % 2 == 0 {
            let pushes = 1 + (next(&mut rng) * 11.0) as usize;
            while fake.requests().len() < pushes && start.elapsed() < Duration::from_secs(30) {
                if daemon.0.try_wait().unwrap().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_micros((next(&mut rng) * 25_000.0) as u64)).await;
        } else {
            tokio::time::sleep(Duration::from_millis((next(&mut rng) * 1_500.0) as u64)).await;
        }
        let before = fake.requests().len();
        unsafe_kill(&mut daemon);
        in_flight += usize::from(before > 0 && before < 12);
        // Restarted, it finishes the close and the pushes.
        let done = spawn(&["run", "--once", "--now", NOW], &cfg);
        let out = wait_exit(done).await;
        assert!(out, "the restarted run failed in round {round}");
        assert_balanced(&fake, &cfg, &[], 12);
        repeated += fake.requests().len() - 12;
    }
    eprintln!(
        "crash test: {rounds} rounds, {in_flight} killed with pushes in flight, {repeated} push(es) repeated under the same key after a kill"
    );
}

/// SIGKILL: no destructor, no flush, no goodbye.
fn unsafe_kill(d: &mut Daemon) {
    let _ = d.0.kill();
    let _ = d.0.wait();
}

async fn wait_exit(mut d: Daemon) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(status) = d.0.try_wait().unwrap() {
            return status.success();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_failing_throttling_and_timing_out_still_gets_everything_once() {
    let fake = Fake::new(
        Faults {
            server_error: 0.3,
            throttle: 0.1,
            timeout: 0.1,
            delay: Duration::from_millis(5),
        },
        7,
    );
    let server = fake_server(&fake).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/state.db", dir.path().display());
    let port = free_port();
    let cfg = config(
        dir.path(),
        &url,
        &format!("{}/drafts", server.uri()),
        &format!("[http]\nlisten = \"127.0.0.1:{port}\""),
    );
    let _daemon = spawn(&["run"], &cfg);
    let addr = format!("127.0.0.1:{port}");
    let mut drafts = 0;
    wait_for("every closed month pushed", || {
        drafts = settled(&addr).unwrap_or(0);
        drafts >= 12 && fake.created().len() == drafts
    })
    .await;
    let m = metrics(&addr);
    assert!(
        m.contains("contract_bridge_outbox_depth{state=\"pending\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("contract_bridge_outbox_depth{state=\"dead\"} 0"),
        "{m}"
    );
    let retries = m
        .lines()
        .find_map(|l| l.strip_prefix("contract_bridge_pushes_total{result=\"retry\"} "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(retries > 0, "the faults were exercised: {m}");
    assert_balanced(&fake, &cfg, &[], drafts);
    eprintln!(
        "fault test: {} requests for {drafts} drafts, {retries} retried",
        fake.requests().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_push_each_draft_once() {
    // Slow answers, so that both instances have pushes to claim.
    let fake = Fake::new(
        Faults {
            delay: Duration::from_millis(150),
            ..Faults::default()
        },
        3,
    );
    let server = fake_server(&fake).await;
    let db = postgres_database();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let ports = [free_port(), free_port()];
    let configs: Vec<_> = dirs
        .iter()
        .zip(ports)
        .map(|(d, port)| {
            config(
                d.path(),
                &db,
                &format!("{}/drafts", server.uri()),
                &format!("[http]\nlisten = \"127.0.0.1:{port}\""),
            )
        })
        .collect();
    let _a = spawn(&["run"], &configs[0]);
    let _b = spawn(&["run"], &configs[1]);
    let addrs = ports.map(|p| format!("127.0.0.1:{p}"));
    let mut drafts = 0;
    wait_for("every closed month pushed", || {
        drafts = settled(&addrs[0]).unwrap_or(0);
        drafts >= 12 && fake.created().len() == drafts
    })
    .await;
    // Both pushed, neither twice: the claims kept them apart.
    let sent = |addr: &str| {
        metrics(addr)
            .lines()
            .find_map(|l| l.strip_prefix("contract_bridge_pushes_total{result=\"sent\"} "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (a, b) = (sent(&addrs[0]), sent(&addrs[1]));
    assert_eq!(a + b, drafts as u64, "instance A pushed {a}, B pushed {b}");
    assert_eq!(fake.requests().len(), drafts, "no key was pushed twice");
    assert_balanced(&fake, &configs[0], &[], drafts);
    eprintln!("two instances: A pushed {a}, B pushed {b}");
}
