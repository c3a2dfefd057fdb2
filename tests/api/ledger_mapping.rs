//! The mapping's `prepaid` items: `check` names the file, line and field of
//! each mistake and what would be valid.

use crate::support::root;

#[test]
fn prepaid_mistakes_are_named_with_file_line_and_field() {
    let out = std::process::Command::new(crate::support::bin())
        .args([
            "check",
            "--mapping",
            "tests/fixtures/mappings/bad-prepaid.yaml",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(": error: ")).collect();
    let at = "tests/fixtures/mappings/bad-prepaid.yaml";
    for needle in [
        format!(
            "{at}:18:22: error: templates.punch-card.prepaid.KLIPPEKORT-10.on: `delivered` is not when a sale counts: use paid or issued"
        ),
        format!(
            "{at}:19:23: error: templates.punch-card.prepaid.KLIPPEKORT-MIX: an item sells either `card: PUNCHES` or `bank: TIME`"
        ),
        format!(
            "{at}:20:22: error: templates.punch-card.prepaid.KLIPPEKORT-40.card: no card of 40 punches is in `card_sizes`: give `discount_percent`"
        ),
        format!(
            "{at}:22:21: error: templates.punch-card.prepaid.KLIPPEKORT-5.renew_to: `helpdesk` is not where a renewal suggestion goes: use note (on the customer's next ticket) or ticket (a ticket of its own)"
        ),
        format!(
            "{at}:23:20: error: templates.punch-card.prepaid.TIMEBANK-20.renew_to: `renew_to` says where a renewal suggestion goes, and `renew` is none: set `renew: note` or `renew: draft`"
        ),
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(&needle)),
            "{needle}\nin:\n{err}"
        );
    }
    assert_eq!(errors.len(), 5, "{err}");
}

#[test]
fn the_ledger_test_mappings_pass_check() {
    for m in [
        "tests/fixtures/ledger/sold",
        "tests/fixtures/ledger/opening",
        "tests/fixtures/ledger/renew",
        "tests/fixtures/ledger/renew-ticket",
    ] {
        let out = std::process::Command::new(crate::support::bin())
            .args(["check", "--mapping", m])
            .current_dir(root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{m}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
