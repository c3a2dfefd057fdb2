//! Finance's review (issue 17, item 2) and the audit trail (item 4), through
//! the real binary: a draft above the mapping's `review: above:` waits in
//! `awaiting_review`, is pushed once after approval, a held one keeps
//! waiting, a rejected one is never pushed and billed again only once its
//! tickets changed; every step is in `audit`. The review page: 401 without
//! a credential, and in headless Chromium a click on Approve gets the draft
//! to the fake ledger exactly once.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::{Fake, Faults, bin, root, run_once_with, serve};

const NOW: &str = "2026-11-23T12:00:00Z";
const LATER: &str = "2026-11-24T12:00:00Z";
const NORDHAVN: &str = "nordhavn-arkitekter";

/// The itech mapping (nordhavn's drafts reviewed above 2000.00, valby's
/// not) and a copy of its tickets in `dir`, drafts to the fake at `url`.
fn setup(dir: &Path, url: &str, extra: &str) -> PathBuf {
    let mapping = dir.join("mapping");
    std::fs::create_dir_all(&mapping).unwrap();
    let text = std::fs::read_to_string(root().join("mappings/examples/itech-klippekort.yaml"))
        .unwrap()
        .replacen(
            "  nordhavn-arkitekter:\n    template: itech-punch-card\n",
            "  nordhavn-arkitekter:\n    template: itech-punch-card\n    review:\n      above: \"2000.00\"\n",
            1,
        );
    assert!(text.contains("above: \"2000.00\""));
    std::fs::write(mapping.join("itech.yaml"), text).unwrap();
    let tickets = dir.join("tickets");
    std::fs::create_dir_all(&tickets).unwrap();
    std::fs::copy(
        root().join("tests/fixtures/scenarios/itech-klippekort/tickets.json"),
        tickets.join("tickets.json"),
    )
    .unwrap();
    let config = format!(
        r#"
[store]
url = "sqlite://{dir}/state.db"
[mapping]
path = "{mapping}"
[billing]
first_period = "2026-10"
target = "books"
[sources.itech]
type = "folder"
path = "{tickets}"
file_name = "tickets.json"
[targets.books]
type = "http"
url = "{url}"
timeout_ms = 2000
[outbox]
max_attempts = 3
base_delay_secs = 0
max_delay_secs = 0
{extra}
"#,
        dir = dir.display(),
        mapping = mapping.display(),
        tickets = tickets.display(),
    );
    let path = dir.join("bridge.toml");
    std::fs::write(&path, config).unwrap();
    path
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

fn decide(config: &Path, what: &str, user: &str, reason: Option<&str>) -> String {
    let mut args = vec![
        "review",
        what,
        "--customer",
        NORDHAVN,
        "--period",
        "2026-10",
    ];
    if let Some(r) = reason {
        args.extend(["--reason", r]);
    }
    ok(cli(config, &args, user))
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
    let fake = Fake::new(Faults::default(), 1);
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), &server.uri(), "");
    let log = run_once_with(&cfg, NOW, &[("USER", "ops")]);
    assert!(log.contains("review: 1 draft(s) wait"), "{log}");
    assert_eq!(pushes(&fake, R1), 0, "waits for review");
    assert_eq!(
        pushes(&fake, "draft:valby-tandlaege:2026-10:r1"),
        1,
        "no policy: pushed at once"
    );
    let status = support::status(&cfg, &[]);
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
    let show = ok(cli(
        &cfg,
        &[
            "review",
            "show",
            "--customer",
            NORDHAVN,
            "--period",
            "2026-10",
            "--json",
        ],
        "anna",
    ));
    let show: Value = serde_json::from_str(&show).unwrap();
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
    let again = cli(
        &cfg,
        &[
            "review",
            "reject",
            "--customer",
            NORDHAVN,
            "--period",
            "2026-10",
            "--reason",
            "late",
        ],
        "anna",
    );
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
    let fake = Fake::new(Faults::default(), 2);
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), &server.uri(), "");
    run_once_with(&cfg, NOW, &[]);
    let no_reason = cli(
        &cfg,
        &[
            "review",
            "hold",
            "--customer",
            NORDHAVN,
            "--period",
            "2026-10",
        ],
        "anna",
    );
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
    let fake = Fake::new(Faults::default(), 3);
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), &server.uri(), "");
    run_once_with(&cfg, NOW, &[]);
    decide(&cfg, "reject", "bob", Some("N-03 was a warranty case"));
    let status = support::status(&cfg, &[]);
    assert!(
        status.contains("0 draft(s) awaiting review, 1 rejected"),
        "{status}"
    );
    // Nothing changed: not billed again, however often the close runs.
    for at in [LATER, "2026-11-25T12:00:00Z"] {
        run_once_with(&cfg, at, &[]);
    }
    assert_eq!(pushes(&fake, R1), 0, "rejected: never pushed");
    assert_eq!(
        audit(
            &cfg,
            &[
                "--action",
                "draft_created",
                "--subject",
                "nordhavn-arkitekter/"
            ]
        )
        .len(),
        1
    );

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
    assert_eq!(
        actions(&trail),
        [
            "draft_created",
            "draft_rejected",
            "draft_created",
            "draft_approved",
            "draft_pushed"
        ]
    );
    assert_eq!(trail[1]["actor"], "bob");
    assert_eq!(trail[1]["detail"]["reason"], "N-03 was a warranty case");
}
