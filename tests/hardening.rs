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
