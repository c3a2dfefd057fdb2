//! The mapping's `prepaid` items: `check` names the file, line and field of
//! each mistake and what would be valid.

mod support;

use support::root;

#[test]
fn prepaid_mistakes_are_named_with_file_line_and_field() {
    let out = std::process::Command::new(support::bin())
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
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(&needle)),
            "{needle}\nin:\n{err}"
        );
    }
    assert_eq!(errors.len(), 3, "{err}");
}

#[test]
fn the_ledger_test_mappings_pass_check() {
    for m in [
        "tests/fixtures/ledger/sold",
        "tests/fixtures/ledger/opening",
    ] {
        let out = std::process::Command::new(support::bin())
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
