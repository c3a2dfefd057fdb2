//! The real Tryton (Debian's tryton-server 6.0, on loopback; `.ci/run`
//! starts it with `scripts/tryton-up.sh`, and this test does when it is not
//! running): a month of the reference contracts lands as draft invoices,
//! each exactly once, through kill -9 mid-push and a proxy that fails
//! requests and loses answers after Tryton acted on them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// `reference → (count, untaxed amount)` of October's drafts in Tryton.
fn drafts_in_tryton() -> BTreeMap<String, (usize, Decimal)> {
    let v = tryton::rpc(
        "model.account.invoice.search_read",
        json!([[["reference", "like", "draft:%:2026-10:r1"], ["type", "=", "out"]], 0, null, null, ["reference", "untaxed_amount", "state"], {"company": 1}]),
        true,
    )
    .unwrap();
    let mut out: BTreeMap<String, (usize, Decimal)> = BTreeMap::new();
    for inv in v["result"].as_array().unwrap_or_else(|| panic!("{v}")) {
        let amount: Decimal = inv["untaxed_amount"]["decimal"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let e = out
            .entry(inv["reference"].as_str().unwrap().to_owned())
            .or_default();
        e.0 += 1;
        e.1 = amount;
    }
    out
}

/// Deletes the drafts an earlier run left, so this one creates them.
fn delete_our_drafts() {
    let v = tryton::rpc(
        "model.account.invoice.search",
        json!([[["reference", "like", "draft:%"], ["type", "=", "out"]], 0, null, null, {"company": 1}]),
        true,
    )
    .unwrap();
    let ids = v["result"].clone();
    if ids.as_array().is_some_and(|a| !a.is_empty()) {
        let done = tryton::rpc(
            "model.account.invoice.delete",
            json!([ids, {"company": 1}]),
            true,
        )
        .unwrap();
        assert!(done.get("error").is_none_or(Value::is_null), "{done}");
    }
    assert!(drafts_in_tryton().is_empty());
}

fn config(dir: &Path, url: &str, ids: &Path) -> PathBuf {
    let ids = std::fs::read_to_string(ids).unwrap();
    let tables = format!(
        "{samples}[outbox]\nmax_attempts = 100\nbase_delay_secs = 0\nmax_delay_secs = 0\n{tryton}",
        samples = samples(),
        tryton = tryton::target(url, 5000, &ids),
    );
    write_config(dir, &examples(), "tryton", &tables)
}

fn spawn_once(cfg: &Path, now: &str) -> KillOnDrop {
    KillOnDrop(
        Command::new(bin())
            .args(["run", "--once", "--now", now, "--config"])
            .arg(cfg)
            .env("CB_TEST_TRYTON_PASSWORD", "admin")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

async fn finish(mut d: KillOnDrop) -> String {
    let start = Instant::now();
    while d.0.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut err = String::new();
    use std::io::Read;
    d.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(d.0.wait().unwrap().success(), "{err}");
    err
}

/// A proxy in front of Tryton that answers some requests 503 without
/// passing them on, and passes some on but loses Tryton's answer.
async fn faulty_proxy(upstream: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let lost = Arc::new(AtomicUsize::new(0));
    let seed = Arc::new(AtomicU64::new(0x9E37_79B9_7F4A_7C15));
    let client = reqwest::Client::new();
    let counter = lost.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let (client, upstream, seed, lost) = (
            client.clone(),
            upstream.clone(),
            seed.clone(),
            counter.clone(),
        );
        async move {
            let mut x = seed.load(Ordering::Relaxed);
            let roll = next(&mut x);
            seed.store(x, Ordering::Relaxed);
            if roll < 0.2 {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Bytes::from_static(b"proxy: refused"),
                );
            }
            let mut req = client.post(&upstream).body(body);
            for (k, v) in &headers {
                if k == "authorization" || k == "content-type" {
                    req = req.header(k, v);
                }
            }
            let resp = req.send().await.unwrap();
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let bytes = resp.bytes().await.unwrap();
            if roll < 0.35 {
                lost.fetch_add(1, Ordering::Relaxed);
                return (
                    StatusCode::BAD_GATEWAY,
                    Bytes::from_static(b"proxy: answer lost"),
                );
            }
            (status, bytes)
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/"), lost)
}

fn assert_each_draft_once_with_our_totals(drafts: &BTreeMap<String, (usize, Decimal)>) {
    let expected: BTreeMap<String, Decimal> = expected_october_totals()
        .into_iter()
        .map(|(c, t)| (format!("draft:{c}:2026-10:r1"), t.parse().unwrap()))
        .collect();
    let counts: BTreeMap<&String, usize> = drafts.iter().map(|(k, (n, _))| (k, *n)).collect();
    assert!(
        counts.values().all(|n| *n == 1),
        "a draft twice: {counts:?}"
    );
    let totals: BTreeMap<String, Decimal> =
        drafts.iter().map(|(k, (_, t))| (k.clone(), *t)).collect();
    assert_eq!(totals, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_lands_in_the_real_tryton_once_through_kills_and_faults() {
    let _alone = crate::support::REAL_TRYTON.lock().await;

    let ids = tryton::ids();

    // Through a proxy that refuses requests and loses answers after Tryton
    // acted on them: each draft created once.
    delete_our_drafts();
    let (proxy, lost) = faulty_proxy(tryton::url()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &proxy, &ids);
    let mut runs = 0;
    loop {
        runs += 1;
        finish(spawn_once(&cfg, NOW)).await;
        let s = status(&cfg, &[("CB_TEST_TRYTON_PASSWORD", "admin")]);
        if s.contains("outbox: 0 pending, 12 sent, 0 dead") {
            break;
        }
        assert!(runs < 30, "{s}");
    }
    assert_each_draft_once_with_our_totals(&drafts_in_tryton());
    assert!(lost.load(Ordering::Relaxed) > 0, "the proxy lost answers");

    // Killed at random moments of the pushes, restarted: each draft once.
    delete_our_drafts();
    let mut rng = 0x0005_DEEC_E66D_u64;
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &tryton::url(), &ids);
        let mut d = spawn_once(&cfg, NOW);
        tokio::time::sleep(Duration::from_millis(
            200 + (next(&mut rng) * 1500.0) as u64,
        ))
        .await;
        let _ = d.0.kill();
        let _ = d.0.wait();
        let log = finish(spawn_once(&cfg, NOW)).await;
        assert!(log.contains("0 dead"), "round {round}: {log}");
        let s = status(&cfg, &[("CB_TEST_TRYTON_PASSWORD", "admin")]);
        assert!(
            s.contains("outbox: 0 pending, 12 sent, 0 dead"),
            "round {round}: {s}"
        );
        assert!(!s.contains("difference"), "{s}");
        assert_each_draft_once_with_our_totals(&drafts_in_tryton());
    }
    eprintln!(
        "tryton: 3 kill rounds and a faulty proxy ({} answers lost, {runs} runs): 12 drafts, each once",
        lost.load(Ordering::Relaxed)
    );
}
