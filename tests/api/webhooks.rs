//! `POST /webhooks/{source}` on the running daemon: refusals change nothing;
//! an accepted ticket whose SLA clock is breached becomes a note pushed to
//! the helpdesk (a fake, wiremock) under its idempotency key, with the
//! helpdesk token. The time from webhook to note is measured and printed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use chrono::Utc;
use contract_bridge::daemon::ingest::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer};

const SECRET: &str = "whsec-test";
const TOKEN: &str = "helpdesk-t0k";

struct Daemon {
    _child: KillOnDrop,
    addr: String,
    _dir: tempfile::TempDir,
}

async fn start(fake: &Fake) -> (Daemon, MockServer) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/notes"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tables = format!(
        r#"[sources.desk]
type = "webhook"
webhook_secret = "env:CB_TEST_WEBHOOK_SECRET"
notes = "helpdesk"
{drafts}[targets.helpdesk]
type = "http"
url = "{uri}/notes"
token = "env:CB_TEST_HELPDESK_TOKEN"
requests_per_second = 1000
[http]
listen = "127.0.0.1:{port}"
webhook_max_bytes = 8192
"#,
        drafts = folder_target("drafts", &dir.path().join("drafts")),
        uri = server.uri(),
    );
    let cfg = write_config(dir.path(), &examples(), "drafts", &tables);
    let child = Command::new(bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .env("CB_TEST_WEBHOOK_SECRET", SECRET)
        .env("CB_TEST_HELPDESK_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon {
        _child: KillOnDrop(child),
        addr,
        _dir: dir,
    };
    let client = reqwest::Client::new();
    wait_ready(&client, &format!("http://{}", d.addr)).await;
    (d, server)
}

/// When a ticket opened to have had an hour of akte's clock by `now`: an
/// hour ago, or, when that hour falls in the Sunday 02:00-04:00 (Warsaw)
/// maintenance that stops the clock, the hour before the maintenance. A
/// test run in the small hours of a Sunday saw no breach otherwise.
fn open_an_hour_before(now: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    use chrono::{Datelike, TimeZone, Timelike};
    let local = now.with_timezone(&chrono_tz::Europe::Warsaw);
    let in_or_after_maintenance =
        local.weekday() == chrono::Weekday::Sun && (2..5).contains(&local.hour());
    if !in_or_after_maintenance {
        return now - chrono::Duration::hours(1);
    }
    // The first 02:00 of the day; on the day DST starts there is none, and
    // the window opens at 03:00.
    let at = |h: u32| {
        let naive = local
            .date_naive()
            .and_hms_opt(h, 0, 0)
            .expect("a valid time");
        chrono_tz::Europe::Warsaw
            .from_local_datetime(&naive)
            .earliest()
    };
    let maintenance = at(2)
        .or_else(|| at(3))
        .expect("03:00 exists every day in Warsaw");
    maintenance.with_timezone(&Utc) - chrono::Duration::hours(1)
}

/// A priority-1 ticket of poznan-clinic (15 min first response, 24/7),
/// opened an hour ago and not answered: breached.
fn breached_ticket(id: &str) -> String {
    let created = open_an_hour_before(Utc::now()).to_rfc3339();
    format!(
        r#"{{"tickets":[{{"id":"{id}","customer":"poznan-clinic","title":"Server down","priority":"4 critical","created_at":"{created}","states":[{{"at":"{created}","state":"new"}}],"work":[]}}]}}"#
    )
}

struct Sent {
    status: u16,
    body: String,
}

async fn post(
    client: &reqwest::Client,
    addr: &str,
    source: &str,
    body: &str,
    signature: Option<(i64, String)>,
) -> Sent {
    let mut r = client
        .post(format!("http://{addr}/webhooks/{source}"))
        .body(body.to_owned());
    if let Some((ts, sig)) = signature {
        r = r
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, sig);
    }
    let resp = r.send().await.unwrap();
    Sent {
        status: resp.status().as_u16(),
        body: resp.text().await.unwrap(),
    }
}

fn signed(body: &str) -> Option<(i64, String)> {
    let ts = Utc::now().timestamp();
    Some((ts, sign(SECRET, ts, body.as_bytes())))
}

async fn stored_tickets(client: &reqwest::Client, addr: &str) -> String {
    let m = get_text(client, &format!("http://{addr}/metrics")).await;
    m.lines()
        .find_map(|l| l.strip_prefix("contract_bridge_tickets "))
        .unwrap_or("?")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhooks_are_refused_and_change_nothing_and_a_good_one_becomes_a_note() {
    let fake = Fake::new(Faults::default(), 1);
    let (d, _server) = start(&fake).await;
    let client = reqwest::Client::new();
    let body = breached_ticket("W-1");
    let ts = Utc::now().timestamp();

    let refusals = [
        (
            "unsigned",
            post(&client, &d.addr, "desk", &body, None).await,
            401,
        ),
        (
            "badly signed",
            post(
                &client,
                &d.addr,
                "desk",
                &body,
                Some((ts, sign("wrong", ts, body.as_bytes()))),
            )
            .await,
            401,
        ),
        (
            "signed for another body",
            post(
                &client,
                &d.addr,
                "desk",
                &body,
                Some((ts, sign(SECRET, ts, b"{}"))),
            )
            .await,
            401,
        ),
        (
            "outside the replay window",
            post(
                &client,
                &d.addr,
                "desk",
                &body,
                Some((ts - 3600, sign(SECRET, ts - 3600, body.as_bytes()))),
            )
            .await,
            401,
        ),
        (
            "oversized",
            {
                let big = format!("{}{}", " ".repeat(9000), body);
                post(&client, &d.addr, "desk", &big, signed(&big)).await
            },
            413,
        ),
        (
            "malformed",
            post(
                &client,
                &d.addr,
                "desk",
                "{\"tickets\":[",
                signed("{\"tickets\":["),
            )
            .await,
            400,
        ),
        (
            "not a valid ticket",
            {
                let b = r#"{"tickets":[{"id":"W-9","customer":"poznan-clinic","created_at":"yesterday"}]}"#;
                post(&client, &d.addr, "desk", b, signed(b)).await
            },
            400,
        ),
        (
            "an unknown source",
            post(&client, &d.addr, "nope", &body, signed(&body)).await,
            404,
        ),
    ];
    for (what, sent, status) in &refusals {
        assert_eq!(sent.status, *status, "{what}: {}", sent.body);
    }
    assert_eq!(
        stored_tickets(&client, &d.addr).await,
        "0",
        "refusals store nothing"
    );

    let signature = signed(&body);
    let ok = post(&client, &d.addr, "desk", &body, signature.clone()).await;
    assert_eq!(ok.status, 202, "{}", ok.body);
    assert!(ok.body.contains("\"notes\":1"), "{}", ok.body);
    let replay = post(&client, &d.addr, "desk", &body, signature.clone()).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert!(replay.body.starts_with("duplicate"), "{}", replay.body);
    let (ts, sig) = signature.unwrap();
    let shouted = format!(
        "sha256={}",
        sig.trim_start_matches("sha256=").to_uppercase()
    );
    let replay = post(&client, &d.addr, "desk", &body, Some((ts, shouted))).await;
    assert_eq!(
        replay.status, 200,
        "the hex case makes no new delivery: {}",
        replay.body
    );

    wait_for("the breach note", || !fake.created().is_empty()).await;
    let created = fake.created();
    let (key, note) = created.iter().next().unwrap();
    assert_eq!(key, "sla:desk:W-1:first_response:breach");
    assert_eq!(note["kind"], "note");
    assert_eq!(note["event"], "breach");
    assert_eq!(note["tag"], "sla-breach");
    assert_eq!(stored_tickets(&client, &d.addr).await, "1");
    // The same ticket sent again (a later change) does not note the breach twice.
    let again = breached_ticket("W-1").replace("Server down", "Server still down");
    let sent = post(&client, &d.addr, "desk", &again, signed(&again)).await;
    assert_eq!(sent.status, 202);
    assert!(sent.body.contains("\"notes\":0"), "{}", sent.body);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_to_note_latency_on_loopback() {
    let fake = Fake::new(Faults::default(), 1);
    let (d, _server) = start(&fake).await;
    let client = reqwest::Client::new();
    let n = 200;
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let body = breached_ticket(&format!("L-{i}"));
        let sent_at = Instant::now();
        let sent = post(&client, &d.addr, "desk", &body, signed(&body)).await;
        assert_eq!(sent.status, 202, "{}", sent.body);
        let key = format!("sla:desk:L-{i}:first_response:breach");
        let arrived = loop {
            if let Some((_, at)) = fake.requests().into_iter().find(|(k, _)| *k == key) {
                break at;
            }
            assert!(
                sent_at.elapsed() < Duration::from_secs(30),
                "note {key} never came"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        latencies.push(arrived.duration_since(sent_at));
    }
    latencies.sort();
    let pct = |p: f64| latencies[((n as f64 * p).ceil() as usize).min(n) - 1];
    eprintln!(
        "webhook → note on loopback over {n} tickets: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        latencies[n - 1]
    );
    assert_eq!(fake.created().len(), n, "one note per ticket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_identical_deliveries_at_once_are_accepted_once() {
    let fake = Fake::new(Faults::default(), 1);
    let (d, _server) = start(&fake).await;
    let client = reqwest::Client::new();
    let body = breached_ticket("P-1");
    let signature = signed(&body);
    let sends: Vec<_> = (0..20)
        .map(|_| {
            let (client, addr, body, signature) = (
                client.clone(),
                d.addr.clone(),
                body.clone(),
                signature.clone(),
            );
            tokio::spawn(async move { post(&client, &addr, "desk", &body, signature).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for s in sends {
        let sent = s.await.unwrap();
        if sent.status == 200 {
            assert!(sent.body.starts_with("duplicate"), "{}", sent.body);
        }
        statuses.push(sent.status);
    }
    statuses.sort_unstable();
    let mut expected = vec![200; 19];
    expected.push(202);
    assert_eq!(statuses, expected);
    wait_for("the breach note", || !fake.created().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.requests().len(), 1, "one note");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_json_webhook_is_refused_415_and_refusals_before_the_handler_are_counted() {
    let fake = Fake::new(Faults::default(), 1);
    let (d, _server) = start(&fake).await;
    let client = reqwest::Client::new();
    let body = breached_ticket("C-1");
    let (ts, sig) = signed(&body).unwrap();
    let send = |content_type: &'static str, body: String| {
        let sig = sign(SECRET, ts, body.as_bytes());
        client
            .post(format!("http://{}/webhooks/desk", d.addr))
            .header("content-type", content_type)
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, sig)
            .body(body)
            .send()
    };
    let form = send("application/x-www-form-urlencoded", body.clone())
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    let big = format!("{}{}", " ".repeat(9000), body);
    assert_eq!(send("application/json", big).await.unwrap().status(), 413);
    let ok = send("application/json; charset=utf-8", body.clone())
        .await
        .unwrap();
    assert_eq!(ok.status(), 202, "{sig}");
    let metrics = get_text(&client, &format!("http://{}/metrics", d.addr)).await;
    for status in [413, 415, 202] {
        assert!(
            metrics.contains(&format!(
                "contract_bridge_webhooks_total{{status=\"{status}\"}} 1"
            )),
            "{status} not counted:\n{metrics}"
        );
    }
}
