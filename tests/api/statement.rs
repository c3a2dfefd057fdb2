//! `GET /statement/{customer}` on the running daemon: a link minted by
//! `contract-bridge statement-link` shows the customer's balance statement;
//! an unsigned, tampered or expired link, or one for a customer without a
//! contract, gets 403 with the very same (empty) body.

use std::process::{Command, Stdio};

use crate::support::*;
use chrono::Utc;
use connectors::Secret;

const SECRET: &str = "statement-k3y";

#[tokio::test]
async fn only_a_valid_signed_link_shows_the_statement_and_refusals_all_look_alike() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n[report]\nstatement_secret = \"env:CB_TEST_STATEMENT_SECRET\"\n"
    );
    let cfg = config(
        dir.path(),
        &format!("sqlite://{}/state.db", dir.path().display()),
        "http://127.0.0.1:9/unused",
        &extra,
    );
    let env = [("CB_TEST_STATEMENT_SECRET", SECRET)];
    // The store gets the scenarios' tickets first.
    run_once_with(&cfg, "2026-10-20T12:00:00Z", &env);
    let child = Command::new(bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .env("CB_TEST_STATEMENT_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _child = KillOnDrop(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;

    // The link the command prints.
    let out = succeeded(
        Command::new(bin())
            .args([
                "statement-link",
                "--customer",
                "alert-co",
                "--valid",
                "1h",
                "--config",
            ])
            .arg(&cfg)
            .env("CB_TEST_STATEMENT_SECRET", SECRET),
    );
    let link = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        link.starts_with(&format!("{base}/statement/alert-co?expires=")),
        "{link}"
    );

    let get = |url: String| {
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            let cache = r
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, cache, r.text().await.unwrap())
        }
    };
    let (status, cache, body) = get(link.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert!(body.contains("<html lang=\"sv\">"), "{body}");
    assert!(body.contains("Saldobesked"), "{body}");
    assert!(body.contains("alert-co"), "{body}");
    assert!(
        body.contains("hour bank"),
        "the bank's balance is shown: {body}"
    );
    assert!(
        !body.contains("X-01"),
        "no ticket of the work report: {body}"
    );

    let secret = Secret::new(SECRET);
    let now = Utc::now().timestamp();
    let (q, sig) = link.split_once("&sig=").unwrap();
    let mut flipped = sig.to_owned();
    let last = if flipped.ends_with('0') { "1" } else { "0" };
    flipped.replace_range(flipped.len() - 1.., last);
    let refusals = [
        ("unsigned", format!("{base}/statement/alert-co")),
        ("no signature", q.to_owned()),
        ("tampered signature", format!("{q}&sig={flipped}")),
        (
            "expiry moved",
            link.replace("expires=", "expires=9").to_owned(),
        ),
        (
            "another customer's signature",
            link.replace("/statement/alert-co", "/statement/attend-co"),
        ),
        (
            "expired",
            format!(
                "{base}/statement/alert-co?{}",
                contract_bridge::links::query(&secret, "alert-co", now - 1)
            ),
        ),
        (
            "signed, but no such customer",
            format!(
                "{base}/statement/nobody?{}",
                contract_bridge::links::query(&secret, "nobody", now + 3600)
            ),
        ),
        (
            "signed with another key",
            format!(
                "{base}/statement/alert-co?{}",
                contract_bridge::links::query(&Secret::new("guess"), "alert-co", now + 3600)
            ),
        ),
    ];
    let mut bodies = Vec::new();
    for (what, url) in refusals {
        let (status, _, body) = get(url).await;
        assert_eq!(status, 403, "{what}: {body}");
        bodies.push((what, body));
    }
    for (what, body) in &bodies {
        assert_eq!(body, &bodies[0].1, "{what} differs from the other refusals");
    }
    assert!(
        bodies[0].1.is_empty(),
        "a refusal says nothing: {:?}",
        bodies[0].1
    );
}

#[test]
fn statement_link_needs_a_secret_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!("sqlite://{}/state.db", dir.path().display()),
        "http://127.0.0.1:9/unused",
        "",
    );
    let out = Command::new(bin())
        .args(["statement-link", "--customer", "alert-co", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("report.statement_secret"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_draft_for_a_target_without_attachments_carries_a_signed_statement_link() {
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        r#"{samples}{drafts}[report]
statement_secret = "{SECRET}"
public_url = "https://bridge.example.com/"
link_valid_days = 30"#,
        samples = folder_source("samples", &scenarios().join("lv-it")),
        drafts = folder_target("drafts", &dir.path().join("drafts")),
    );
    let mapping = examples().join("lv-it.yaml");
    let cfg = write_config(dir.path(), &mapping, "drafts", &tables);
    run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    let drafts: Vec<_> = std::fs::read_dir(dir.path().join("drafts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(!drafts.is_empty());
    let closed = chrono::DateTime::parse_from_rfc3339("2026-11-02T12:00:00Z")
        .unwrap()
        .timestamp();
    for path in drafts {
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let draft = &file["draft"];
        let customer = draft["customer"].as_str().unwrap();
        let url = draft["statement_url"]
            .as_str()
            .unwrap_or_else(|| panic!("{draft}"));
        let prefix = format!("https://bridge.example.com/statement/{customer}?");
        let query = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
        let secret = Secret::new(SECRET);
        let verify = |at: i64| contract_bridge::links::verify(&secret, customer, Some(query), at);
        assert!(verify(closed + 29 * 86_400), "valid for 30 days: {url}");
        assert!(!verify(closed + 31 * 86_400), "and not after: {url}");
    }
}
