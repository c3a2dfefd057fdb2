//! `contract-bridge connect xero` end to end against a wiremock Xero
//! (authorization server, token endpoint and `/connections`, as Xero's
//! OAuth 2.0 documentation shapes them), then rotating refreshes killed
//! between the token answer and the save, 50 rounds, without losing the grant.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::support::*;
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;
use wiremock::{Request, Respond, ResponseTemplate};

/// Xero's refresh tokens: single use, but one already used may be used
/// again for a grace period of 30 minutes (Xero's OAuth FAQ: "you can
/// retry refreshing your existing refresh token for a grace period of 30
/// minutes"). Time is the mock's own clock, one minute per token request.
#[derive(Default)]
struct Auth {
    minute: u64,
    /// code → (PKCE challenge, redirect_uri, state seen at /authorize)
    codes: BTreeMap<String, (String, String)>,
    /// refresh token → the minute it was first used (None: unused)
    refresh: BTreeMap<String, Option<u64>>,
    access: Vec<String>,
    issued: usize,
    /// Every grant of this app was revoked by the user.
    revoked: bool,
    refreshes_ok: usize,
    refused: usize,
    pkce_checked: usize,
    /// The `xero-tenant-id` of each Accounting API request.
    tenants_seen: Vec<String>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Auth>>);

const GRACE_MINUTES: u64 = 30;

fn form(r: &Request) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(&r.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn query(r: &Request) -> BTreeMap<String, String> {
    r.url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn invalid_grant() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"}))
}

impl Auth {
    fn tokens(&mut self) -> ResponseTemplate {
        self.issued += 1;
        let access = format!("at-{}", self.issued);
        let refresh = format!("rt-{}", self.issued);
        self.access.push(access.clone());
        self.refresh.insert(refresh.clone(), None);
        ResponseTemplate::new(200).set_body_json(json!({
            "id_token": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
            "access_token": access,
            "expires_in": 1800,
            "token_type": "Bearer",
            "refresh_token": refresh,
            "scope": "openid offline_access accounting.invoices accounting.attachments"
        }))
    }
}

impl Respond for Fake {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut a = self.0.lock().unwrap();
        match r.url.path() {
            "/identity/connect/authorize" => {
                // The user consents: back to the redirect URI with a code.
                let q = query(r);
                assert_eq!(q["response_type"], "code");
                assert_eq!(q["client_id"], "client");
                assert_eq!(q["code_challenge_method"], "S256");
                let scopes: Vec<&str> = q["scope"].split(' ').collect();
                assert!(scopes.contains(&"offline_access"), "{scopes:?}");
                assert!(scopes.contains(&"accounting.invoices"), "{scopes:?}");
                let code = format!("code-{}", a.codes.len() + 1);
                a.codes.insert(
                    code.clone(),
                    (q["code_challenge"].clone(), q["redirect_uri"].clone()),
                );
                let mut back = url::Url::parse(&q["redirect_uri"]).unwrap();
                back.query_pairs_mut()
                    .append_pair("code", &code)
                    .append_pair("scope", &q["scope"])
                    .append_pair("state", &q["state"]);
                ResponseTemplate::new(302).insert_header("location", back.as_str())
            }
            "/connect/token" => {
                a.minute += 1;
                let basic = r.headers.get("authorization").unwrap().to_str().unwrap();
                assert_eq!(basic, "Basic Y2xpZW50OnMzY3JldA==", "client id and secret");
                let f = form(r);
                match f["grant_type"].as_str() {
                    "authorization_code" => {
                        let Some((challenge, redirect)) = a.codes.remove(&f["code"]) else {
                            return invalid_grant();
                        };
                        assert_eq!(f["redirect_uri"], redirect);
                        let verifier = f.get("code_verifier").expect("a PKCE verifier");
                        let hashed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .encode(sha2::Sha256::digest(verifier.as_bytes()));
                        if hashed != challenge {
                            return invalid_grant();
                        }
                        a.pkce_checked += 1;
                        a.revoked = false;
                        a.tokens()
                    }
                    "refresh_token" => {
                        let now = a.minute;
                        let given = f["refresh_token"].clone();
                        let usable = !a.revoked
                            && match a.refresh.get(&given) {
                                Some(None) => true,
                                Some(Some(used)) => now - used <= GRACE_MINUTES,
                                None => false,
                            };
                        if !usable {
                            a.refused += 1;
                            return invalid_grant();
                        }
                        a.refresh.entry(given).or_default().get_or_insert(now);
                        a.refreshes_ok += 1;
                        a.tokens()
                    }
                    other => panic!("grant_type {other}"),
                }
            }
            "/connections" => {
                let bearer = r
                    .headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or_default();
                if !a.access.iter().any(|t| t == bearer) {
                    return ResponseTemplate::new(401);
                }
                ResponseTemplate::new(200).set_body_json(json!([
                    {"id": "e1eede29-f875-4a5d-8470-17f6a29a88b1", "authEventId": "d99ecdfe-391d-43d2-b834-17636ba90e8d",
                     "tenantId": "70784a63-d24b-46a9-a4db-0e70a274b056", "tenantType": "ORGANISATION",
                     "tenantName": "Maple Florist", "createdDateUtc": "2019-07-09T23:40:30.1833130",
                     "updatedDateUtc": "2020-05-15T01:35:13.8491980"},
                    {"id": "32587c85-a9b3-4306-ac30-b416e8f2c841", "authEventId": "d99ecdfe-391d-43d2-b834-17636ba90e8d",
                     "tenantId": "e0da6937-de07-4a14-adee-37abfac298ce", "tenantType": "ORGANISATION",
                     "tenantName": "Adam Demo Company (NZ)", "createdDateUtc": "2020-03-23T02:24:22.2328510",
                     "updatedDateUtc": "2020-05-13T09:43:40.7689720"}
                ]))
            }
            path if path.starts_with("/api.xro/2.0/") => {
                let tenant = r
                    .headers
                    .get("xero-tenant-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("(none)");
                a.tenants_seen.push(tenant.to_owned());
                // Xero is down for maintenance: the drafts wait.
                ResponseTemplate::new(503)
            }
            other => panic!("unexpected request {other}"),
        }
    }
}

fn config(dir: &Path, uri: &str) -> PathBuf {
    let tables = format!(
        r#"{samples}
[outbox]
max_attempts = 5
base_delay_secs = 60
max_delay_secs = 600
[retry]
attempts = 1
{xero}authorize_url = "{uri}/identity/connect/authorize"
connections_url = "{uri}/connections"
"#,
        samples = samples(),
        xero = xero_target(uri, "s3cret"),
    );
    write_config(dir, &examples(), "xero", &tables)
}

/// Plays the browser: opens the authorization URL, consents, and follows
/// the redirect to the loopback listener.
async fn browse(authorize: &str) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = http.get(authorize).send().await.unwrap();
    assert_eq!(consent.status(), 302);
    let back = consent.headers()["location"].to_str().unwrap().to_owned();
    // The listener is on 127.0.0.1; `localhost` may resolve to ::1 first.
    let back = back.replace("://localhost:", "://127.0.0.1:");
    let page = http.get(&back).send().await.unwrap();
    assert_eq!(page.status(), 200);
}

/// Runs `connect xero` (with `args`), consents in the "browser", and
/// returns its output.
async fn connect(cfg: &Path, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(bin())
        .args(["connect", "xero", "--port", "0", "--config"])
        .arg(cfg)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let authorize = loop {
        let line = lines.next().expect("connect printed the address").unwrap();
        printed.push(line.clone());
        if let Some(url) = line.trim().strip_prefix("http") {
            break format!("http{url}");
        }
    };
    let waiting = lines.next().unwrap().unwrap();
    let waiting = if waiting.is_empty() {
        lines.next().unwrap().unwrap()
    } else {
        waiting
    };
    assert!(waiting.contains("Waiting for the browser"), "{waiting}");
    browse(&authorize).await;
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let mut out = child.wait_with_output().unwrap();
    printed.push(waiting);
    printed.extend(rest);
    out.stdout = printed.join("\n").into_bytes();
    out
}

fn status(cfg: &Path) -> Value {
    let out = succeeded(
        Command::new(bin())
            .args(["status", "--json", "--config"])
            .arg(cfg),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn refresh(cfg: &Path) -> std::process::Output {
    Command::new(bin())
        .args(["refresh", "xero", "--config"])
        .arg(cfg)
        .output()
        .unwrap()
}

/// A `refresh` that is SIGKILLed after the token answer came and before
/// its successor is stored.
fn refresh_killed_before_save(cfg: &Path) {
    let mut child: Child = Command::new(bin())
        .args(["refresh", "xero", "--config"])
        .arg(cfg)
        .env(contract_bridge::oauth::PAUSE_BEFORE_SAVE_ENV, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        match err.next() {
            Some(Ok(l)) if l.contains("not yet stored") => break,
            Some(Ok(l)) => seen.push(l),
            _ => panic!("the refresh ended before its token answer: {seen:?}"),
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_xero_with_pkce_then_rotating_refreshes_survive_kills() {
    let fake = Fake::default();
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri());

    // Two organisations: `connect` asks which one, listing them.
    let out = connect(&cfg, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--tenant"), "{said}");
    assert!(
        said.contains("Maple Florist") && said.contains("Adam Demo Company"),
        "{said}"
    );

    let out = connect(&cfg, &["--tenant", "Maple Florist"]).await;
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("connected `xero`"), "{printed}");
    assert!(
        printed.contains("70784a63-d24b-46a9-a4db-0e70a274b056"),
        "{printed}"
    );
    assert_eq!(fake.0.lock().unwrap().pkce_checked, 2);

    // The token is sealed in the store, under a key file only we can read.
    let db = std::fs::read(dir.path().join("state.db")).unwrap();
    let issued = fake.0.lock().unwrap().issued;
    let plain = format!("rt-{issued}");
    assert!(
        !db.windows(plain.len()).any(|w| w == plain.as_bytes()),
        "the refresh token is not stored in clear"
    );
    let key = dir.path().join("state.db.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let s = status(&cfg);
    let g = &s["grants"][0];
    assert_eq!(g["target"], "xero");
    assert_eq!(g["tenant_id"], "70784a63-d24b-46a9-a4db-0e70a274b056");
    assert_eq!(g["tenant_name"], "Maple Florist");
    assert!(g["access_expires_at"].is_string(), "{g}");
    assert!(g["connected_at"].is_string(), "{g}");
    assert!(
        g["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("accounting.invoices")),
        "{g}"
    );

    // 50 rounds: a refresh killed at random between the token answer and
    // the save, or one that completes; the next process always gets a token.
    let mut seed = 0x5eed_u64;
    let mut killed = 0;
    for round in 0..50 {
        if next(&mut seed) < 0.7 {
            refresh_killed_before_save(&cfg);
            killed += 1;
        }
        let out = refresh(&cfg);
        assert!(
            out.status.success(),
            "round {round}: the grant was lost: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("access token until"),
            "round {round}"
        );
    }
    let (refused, refreshes_ok) = {
        let a = fake.0.lock().unwrap();
        (a.refused, a.refreshes_ok)
    };
    assert!(killed >= 25, "most rounds were killed: {killed}");
    assert_eq!(refused, 0, "no refresh was refused");
    assert_eq!(refreshes_ok, 50 + killed);
    println!("50 rounds, {killed} killed between the token answer and the save");

    // The daemon sends the organisation `connect` chose (no `tenant_id` is configured).
    let _ = Command::new(bin())
        .args(["run", "--once", "--now", "2026-11-02T12:00:00Z", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let seen = fake.0.lock().unwrap().tenants_seen.clone();
    assert!(!seen.is_empty(), "the drafts were pushed");
    assert!(
        seen.iter()
            .all(|t| t == "70784a63-d24b-46a9-a4db-0e70a274b056"),
        "{seen:?}"
    );

    // The user disconnects the app: the next refresh says what to run.
    fake.0.lock().unwrap().revoked = true;
    let out = refresh(&cfg);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!(
            "run `contract-bridge connect xero --config {}`",
            cfg.display()
        )),
        "{said}"
    );
    assert!(said.contains("revoked or expired"), "{said}");
    let s = status(&cfg);
    assert!(
        s["grants"][0]["revoked"]
            .as_str()
            .is_some_and(|r| r.contains("contract-bridge connect xero")),
        "{s}"
    );
    // Consent again: it works again.
    let out = connect(&cfg, &["--tenant", "70784a63-d24b-46a9-a4db-0e70a274b056"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(refresh(&cfg).status.success());
    assert!(status(&cfg)["grants"][0]["revoked"].is_null());
}

/// QuickBooks Online as Intuit documents it: the company comes back as the
/// redirect's `realmId`; the token answer has no `scope`.
#[derive(Clone, Default)]
struct Intuit(Arc<Mutex<(usize, Option<String>)>>);

impl Respond for Intuit {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        match r.url.path() {
            "/connect/oauth2" => {
                let q = query(r);
                assert_eq!(q["scope"], "com.intuit.quickbooks.accounting");
                s.1 = Some(q["code_challenge"].clone());
                let mut back = url::Url::parse(&q["redirect_uri"]).unwrap();
                back.query_pairs_mut()
                    .append_pair("code", "AB11570127472xvSSGHG8bUnTWR9sHbOgsXbZAkAEMt9fQN2QR")
                    .append_pair("state", &q["state"])
                    .append_pair("realmId", "9130350000000001");
                ResponseTemplate::new(302).insert_header("location", back.as_str())
            }
            "/oauth2/v1/tokens/bearer" => {
                let f = form(r);
                match f["grant_type"].as_str() {
                    "authorization_code" => {
                        let hashed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .encode(sha2::Sha256::digest(f["code_verifier"].as_bytes()));
                        if Some(hashed) != s.1 {
                            return invalid_grant();
                        }
                    }
                    "refresh_token" => assert_eq!(f["refresh_token"], format!("qr-{}", s.0)),
                    other => panic!("grant_type {other}"),
                }
                s.0 += 1;
                ResponseTemplate::new(200).set_body_json(json!({
                    "token_type": "bearer", "expires_in": 3600,
                    "refresh_token": format!("qr-{}", s.0),
                    "x_refresh_token_expires_in": 8_726_400,
                    "access_token": format!("qa-{}", s.0)
                }))
            }
            other => panic!("unexpected request {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_quickbooks_on_a_headless_server_by_pasting_the_redirect() {
    use std::io::Write;
    let fake = Intuit::default();
    let server = serve(fake.clone()).await;
    let uri = server.uri();
    let dir = tempfile::tempdir().unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let cfg = write_config(
        dir.path(),
        &examples(),
        "qbo",
        &format!(
            r#"[targets.qbo]
type = "quickbooks"
base_url = "{uri}"
token_url = "{uri}/oauth2/v1/tokens/bearer"
authorize_url = "{uri}/connect/oauth2"
realm_id = "9130350000000001"
client_id = "client"
client_secret = "s3cret"
customers = {{}}
[secrets]
key = "env:CB_TEST_CONNECT_KEY"
"#
        ),
    );
    let mut child = Command::new(bin())
        .args(["connect", "qbo", "--paste", "--config"])
        .arg(&cfg)
        .env("CB_TEST_CONNECT_KEY", &key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let authorize = loop {
        let line = lines.next().expect("the address").unwrap();
        if let Some(url) = line.trim().strip_prefix("http") {
            break format!("http{url}");
        }
    };
    // The browser, elsewhere, is sent to a page that does not load: the
    // admin copies its address.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = http.get(&authorize).send().await.unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_owned();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{back}").unwrap();
    drop(stdin);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = rest.join("\n");
    assert!(printed.contains("realmId 9130350000000001"), "{printed}");
    // No key file: the configured key sealed it.
    assert!(!dir.path().join("state.db.key").exists());

    // Without the key, the sealed token does not open: the error says so.
    let out = Command::new(bin())
        .args(["refresh", "qbo", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("CB_TEST_CONNECT_KEY"), "{said}");
    // With it, the daemon's refresh uses the rotated token `connect` stored.
    let out = succeeded(
        Command::new(bin())
            .args(["refresh", "qbo", "--config"])
            .arg(&cfg)
            .env("CB_TEST_CONNECT_KEY", &key),
    );
    assert_eq!(fake.0.lock().unwrap().0, 2);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("organisation 9130350000000001"), "{s}");
}

/// A configured refresh token Xero no longer accepts: the drafts wait in
/// the outbox (none is given up on), and `status` says to run `connect`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_holds_the_pushes_and_names_the_connect_command() {
    let fake = Fake::default();
    let server = serve(fake.clone()).await;
    let uri = server.uri();
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        r#"{samples}
{xero}refresh_token = "rt-disconnected"
[outbox]
max_attempts = 1
base_delay_secs = 0
max_delay_secs = 600
"#,
        samples = samples(),
        xero = xero_target(&uri, "s3cret"),
    );
    let cfg = write_config(dir.path(), &examples(), "xero", &tables);
    let out = Command::new(bin())
        .args(["run", "--once", "--now", "2026-11-02T12:00:00Z", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("0 pushed"), "{log}");
    assert!(log.contains("0 dead"), "even with max_attempts = 1: {log}");
    assert_eq!(
        fake.0.lock().unwrap().refused,
        1,
        "one refusal stops the pass"
    );
    let s = status(&cfg);
    assert_eq!(s["outbox"]["dead"], 0, "{s}");
    assert!(s["outbox"]["pending"].as_i64().unwrap() > 0, "{s}");
    let revoked = s["grants"][0]["revoked"].as_str().unwrap_or_default();
    assert!(
        revoked.contains("the Xero grant for `xero` was revoked or expired")
            && revoked.contains("contract-bridge connect xero --config"),
        "{s}"
    );
    let text = Command::new(bin())
        .args(["status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("grant xero:") && text.contains("REVOKED"),
        "{text}"
    );
}

/// e-conomic has no OAuth and Fortnox no refresh token to keep: `connect`
/// says what to do instead, and exits 2 without opening anything.
#[test]
fn connect_explains_economic_and_fortnox() {
    let mapping = examples().join("itech-klippekort.yaml");
    for (books, says) in [
        (
            economic_books("http://127.0.0.1:9"),
            "e-conomic does not use OAuth",
        ),
        (
            fortnox_books("http://127.0.0.1:9"),
            "client credentials and the customer's TenantId",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = itech_books_config(dir.path(), &mapping, &books);
        let out = Command::new(bin())
            .args(["connect", "books", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(says), "{said}");
        assert!(!dir.path().join("state.db").exists(), "nothing was opened");
    }
}
