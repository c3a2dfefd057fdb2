//! From the real Tryton back to the bridge (Debian's tryton-server 6.0 on
//! loopback, as `scripts/tryton-up.sh` starts it; finance's side is
//! `scripts/tryton-ledger.py`): a punch card sold, posted and paid in Tryton
//! becomes a card the engine draws from in the next bill, exactly as the
//! same card written as an opening balance; a draft finance deleted stays
//! deleted through later runs and late changes until `--repush`; `status`
//! shows every pushed draft's state.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// Finance at work: one command of `scripts/tryton-ledger.py`; its output.
fn finance(args: &[&str]) -> String {
    let out = Command::new("/usr/bin/python3")
        .arg(root().join("scripts/tryton-ledger.py"))
        .args(args)
        .env("TRYTON_URL", tryton::url())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "tryton-ledger.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One JSON-RPC call as the admin user; its result, which it asserts is not an error.
fn rpc(method: &str, params: Value) -> Value {
    let v = tryton::rpc(method, params, true).unwrap();
    assert!(v.get("error").is_none_or(Value::is_null), "{method}: {v}");
    v["result"].clone()
}

/// Our drafts in Tryton under `reference` (SQL `like`): `(id, state, untaxed)`.
fn drafts(reference: &str) -> Vec<(i64, String, Decimal)> {
    rpc(
        "model.account.invoice.search_read",
        json!([[["reference", "like", reference], ["type", "=", "out"]], 0, null, null,
               ["id", "state", "untaxed_amount"], {"company": 1}]),
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|i| {
        (
            i["id"].as_i64().unwrap(),
            i["state"].as_str().unwrap().to_owned(),
            i["untaxed_amount"]["decimal"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        )
    })
    .collect()
}

/// A daemon configuration: the itech tickets (copied, so a test can change
/// them), the prepaid mapping, Tryton with this run's own two parties.
fn config(dir: &Path, ids: &Path, parties: &[(&str, &str, &str)]) -> PathBuf {
    let fixture = std::fs::read_to_string(ids).unwrap();
    // The fixture's ids, but this run's parties: earlier runs' paid sales
    // belong to other parties.
    let mut keep = String::new();
    let mut section = "";
    for line in fixture.lines() {
        if line.starts_with('[') {
            section = if line == "[parties]" || line == "[addresses]" {
                "skip"
            } else {
                ""
            };
        }
        if section != "skip" {
            keep.push_str(line);
            keep.push('\n');
        }
    }
    let mut tables = String::from("[targets.tryton.parties]\n");
    for (c, p, _) in parties {
        tables.push_str(&format!("\"{c}\" = {p}\n"));
    }
    tables.push_str("[targets.tryton.addresses]\n");
    for (c, _, a) in parties {
        tables.push_str(&format!("\"{c}\" = {a}\n"));
    }
    let tickets = copy_scenario(dir, "itech-klippekort");
    let body = format!(
        "{itech}[outbox]\nmax_attempts = 5\nbase_delay_secs = 0\nmax_delay_secs = 0\n{tryton}{tables}",
        itech = folder_source("itech", &tickets),
        tryton = tryton::target(&tryton::url(), 10000, &keep),
    );
    let mapping = root().join("tests/fixtures/ledger/sold");
    write_config(dir, &mapping, "tryton", &body)
}

const ENV: &[(&str, &str)] = &[("CB_TEST_TRYTON_PASSWORD", "admin")];

fn sold_lines(status: &str) -> Vec<&str> {
    status.lines().filter(|l| l.starts_with("sold ")).collect()
}

fn draft_line<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find(|l| l.starts_with("draft ") && l.contains(key))
        .unwrap_or_else(|| panic!("no line for {key} in:\n{status}"))
}

#[test]
fn a_punch_card_sold_in_tryton_is_drawn_from_and_a_deleted_draft_stays_deleted() {
    let _alone = crate::support::REAL_TRYTON.blocking_lock();

    let ids = tryton::ids();
    finance(&["setup"]);
    // Drafts of ours an earlier run (this test's or tests/api/tryton.rs's) left:
    // references are global in Tryton, and a draft found by its reference
    // is taken, not created again.
    let old: Vec<i64> = drafts("draft:%").into_iter().map(|(id, _, _)| id).collect();
    if !old.is_empty() {
        rpc("model.account.invoice.delete", json!([old, {"company": 1}]));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let party = |name: &str| -> (String, String) {
        let out = finance(&["party", &format!("{name} {nanos}")]);
        let (p, a) = out.split_once(' ').unwrap();
        (p.to_owned(), a.to_owned())
    };
    let (np, na) = party("nordhavn-arkitekter");
    let (vp, va) = party("valby-tandlaege");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &ids,
        &[
            ("nordhavn-arkitekter", &np, &na),
            ("valby-tandlaege", &vp, &va),
        ],
    );
    let dkk = std::fs::read_to_string(&ids)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("DKK = ").map(str::to_owned))
        .unwrap();

    // Finance sells nordhavn a 20-punch card: a draft, then posted, then paid.
    let sale = finance(&["sell", &np, "KLIPPEKORT-20", "18000", "2026-10-05", &dkk]);
    run_once_with(&cfg, "2026-10-20T12:00:00Z", ENV);
    assert!(
        sold_lines(&status(&cfg, ENV)).is_empty(),
        "a draft sells nothing"
    );
    finance(&["post", &sale]);
    run_once_with(&cfg, "2026-10-21T12:00:00Z", ENV);
    assert!(
        sold_lines(&status(&cfg, ENV)).is_empty(),
        "posted but not paid: `on: paid` waits"
    );
    finance(&["pay", &sale]);
    assert_eq!(finance(&["state", &sale]), "paid");
    let log = run_once_with(&cfg, "2026-10-22T12:00:00Z", ENV);
    run_once_with(&cfg, "2026-10-23T12:00:00Z", ENV);
    let s = status(&cfg, ENV);
    let sold = sold_lines(&s);
    assert_eq!(
        sold.len(),
        1,
        "one card, however often it is seen:\n{s}\n{log}"
    );
    assert!(
        sold[0].contains("card KLIPPEKORT-20 to nordhavn-arkitekter")
            && sold[0].contains("2026-10-05")
            && sold[0].contains("18000.00 DKK")
            && sold[0].contains(&format!("invoice {sale} ")),
        "{}",
        sold[0]
    );

    // October closes: nordhavn's draft draws from the sold card, exactly as
    // from the same card written as an opening balance.
    let log = run_once_with(&cfg, "2026-11-02T12:00:00Z", ENV);
    let nordhavn = drafts("draft:nordhavn-arkitekter:2026-10:r%")
        .into_iter()
        .filter(|(_, st, _)| st == "draft")
        .collect::<Vec<_>>();
    let with_card = itech_october_total("tests/fixtures/ledger/opening", "nordhavn-arkitekter");
    let without = itech_october_total("tests/fixtures/ledger/sold", "nordhavn-arkitekter");
    assert!(with_card < without, "the card covers punches");
    let ours: Vec<_> = nordhavn
        .iter()
        .filter(|(_, _, total)| *total == with_card)
        .collect();
    assert!(
        !ours.is_empty(),
        "nordhavn's October in Tryton is {nordhavn:?}, the opening-balance bill {with_card}\n{log}"
    );
    let s = status(&cfg, ENV);
    let n_key = "draft:nordhavn-arkitekter:2026-10:r1";
    let v_key = "draft:valby-tandlaege:2026-10:r1";
    for key in [n_key, v_key] {
        assert!(
            draft_line(&s, key).ends_with(")") && draft_line(&s, key).contains(": draft"),
            "{s}"
        );
    }
    let remote = |key: &str| -> String {
        let l = draft_line(&status(&cfg, ENV), key).to_owned();
        l.split_once(" (")
            .unwrap()
            .1
            .split_once(')')
            .unwrap()
            .0
            .to_owned()
    };

    // Finance deletes nordhavn's draft and leaves valby's. (Pushed drafts
    // stay unposted here: a posted one could never be deleted, and
    // tests/api/tryton.rs starts by deleting every draft of ours.)
    finance(&["delete", &remote(n_key)]);
    let log = run_once_with(&cfg, "2026-11-04T12:00:00Z", ENV);
    let s = status(&cfg, ENV);
    assert!(draft_line(&s, n_key).contains(": deleted"), "{s}");
    assert!(draft_line(&s, v_key).contains(": draft"), "{s}");
    assert!(log.contains("1 draft status change(s)"), "{log}");

    // Work logged late on an October ticket: a correction in November's
    // draft, never October's deleted draft again.
    let tickets = dir.path().join("tickets/tickets.json");
    let mut export: Value =
        serde_json::from_str(&std::fs::read_to_string(&tickets).unwrap()).unwrap();
    let n05 = export["tickets"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["id"] == "N-05")
        .unwrap();
    let mut late = n05["work"][0].clone();
    late["at"] = json!("2026-10-30T10:00:00+01:00");
    late["minutes"] = json!(1500);
    late["id"] = json!("N-05-W2");
    n05["work"].as_array_mut().unwrap().push(late);
    std::fs::write(&tickets, export.to_string()).unwrap();
    run_once_with(&cfg, "2026-12-02T12:00:00Z", ENV);
    assert!(
        drafts(n_key).is_empty(),
        "the deleted draft is not created again"
    );
    let s = status(&cfg, ENV);
    assert!(draft_line(&s, n_key).contains(": deleted"), "{s}");
    assert!(
        !drafts("draft:nordhavn-arkitekter:2026-11:r1").is_empty(),
        "November carries the correction:\n{s}"
    );

    // Re-created on purpose, once; a draft finance still holds is not.
    let repush = |customer: &str| repush_october(&cfg, customer, ENV);
    let out = repush("nordhavn-arkitekter");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = drafts("draft:nordhavn-arkitekter:2026-10:r2");
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].2, with_card, "the same draft, re-created");
    let refused = repush("valby-tandlaege");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is draft"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let s = status(&cfg, ENV);
    draft_line(&s, "draft:nordhavn-arkitekter:2026-10:r2");
}
