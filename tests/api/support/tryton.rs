//! The real Tryton the Tryton tests share (Debian's tryton-server on
//! loopback, as `scripts/tryton-up.sh` starts it): where it answers, one
//! JSON-RPC call, the ids its fixture wrote, and the target that pushes to it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use super::root;

/// Tryton's JSON-RPC address (`CONTRACT_BRIDGE_TEST_TRYTON_URL` points elsewhere).
pub fn url() -> String {
    std::env::var("CONTRACT_BRIDGE_TEST_TRYTON_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8000/ci/".into())
}

/// One JSON-RPC call with curl, as the admin user when `admin`: the whole
/// answer (`result` or `error`).
pub fn rpc(method: &str, params: Value, admin: bool) -> Result<Value, String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-X", "POST", "-H", "Content-Type: application/json"]);
    if admin {
        cmd.args(["-u", "admin:admin"]);
    }
    let body = json!({"id": 1, "method": method, "params": params}).to_string();
    let out = cmd
        .args(["-d", &body, &url()])
        .output()
        .map_err(|e| e.to_string())?;
    serde_json::from_slice::<Value>(&out.stdout)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The ids Tryton's fixture wrote, starting Tryton first if it is not up.
pub fn ids() -> PathBuf {
    let file = std::env::var("CONTRACT_BRIDGE_TEST_TRYTON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target/tryton/targets.toml"));
    let login = rpc(
        "common.db.login",
        json!(["admin", {"password": "admin"}, "en"]),
        false,
    );
    let up = login.is_ok_and(|v| v.get("result").is_some());
    if !(up && file.is_file()) {
        let status = Command::new("bash")
            .arg(root().join("scripts/tryton-up.sh"))
            .current_dir(root())
            .status()
            .expect("bash");
        assert!(
            status.success(),
            "scripts/tryton-up.sh failed: Tryton is needed for this test"
        );
    }
    file
}

/// `[targets.tryton]` at `url` (Tryton's, or a proxy's), the password from
/// `CB_TEST_TRYTON_PASSWORD`, with `ids` (tables of the fixture's ids, as
/// [`ids`] holds them) under it.
pub fn target(url: &str, timeout_ms: u32, ids: &str) -> String {
    let ids = ids
        .replace("\n[", "\n[targets.tryton.")
        .replace("[targets.tryton.targets.tryton.", "[targets.tryton.");
    format!(
        "[targets.tryton]\ntype = \"tryton\"\nurl = \"{url}\"\n\
         password = \"env:CB_TEST_TRYTON_PASSWORD\"\ntimeout_ms = {timeout_ms}\n{ids}\n"
    )
}
