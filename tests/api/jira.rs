//! Jira Service Management, mocked with wiremock in the shapes its API
//! documents (`tests/fixtures/jira/`), holding lv-it's October as issues:
//! synced page by page (`nextPageToken`) into the bills the export makes,
//! breach notes as internal comments with a label, once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::support::*;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Default)]
struct Site {
    issues: Vec<Value>,
    /// Issue key → first response (for the SLA endpoint).
    first_response: BTreeMap<String, Value>,
    comments: BTreeMap<String, Vec<Value>>,
    labels: BTreeMap<String, Vec<String>>,
    /// Issue key → each worklog's properties, in order.
    properties: BTreeMap<String, Vec<Value>>,
    requests: usize,
    /// Requests by what they ask.
    by_kind: BTreeMap<&'static str, usize>,
    /// Answer the next search with 429 and `Retry-After: 1`.
    throttle_search: bool,
    /// Requests refused for their credentials.
    refused: usize,
    /// OAuth 2.0 (3LO): the refresh token the site takes now (it rotates),
    /// the access token it takes, and every refresh token it was offered.
    oauth: Option<OAuthSite>,
}

#[derive(Default)]
struct OAuthSite {
    refresh: String,
    access: Option<String>,
    grants: Vec<String>,
    /// Revoke the access token after this many API requests.
    revoke_after: Option<usize>,
}

#[derive(Clone)]
struct FakeJira(Arc<Mutex<Site>>);

/// Jira writes offsets without a colon: `+0300`.
fn jira_time(rfc: &str) -> String {
    let d = chrono::DateTime::parse_from_rfc3339(rfc).unwrap();
    d.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// Where the issues say a worklog's kind.
#[derive(Clone, Copy, PartialEq)]
enum KindAt {
    /// A word at the start of the worklog's comment, `[onsite] …`.
    Comment,
    /// The worklog property `work-kind`, `{"value": "onsite"}`.
    Property,
    /// A label `kind-onsite` on the issue (one kind for all its worklogs).
    Label,
}

fn lv_it() -> Value {
    serde_json::from_str(&std::fs::read_to_string(scenarios().join("lv-it/tickets.json")).unwrap())
        .unwrap()
}

fn site_from_export() -> Site {
    site_from(&lv_it(), KindAt::Comment)
}

/// `export`'s tickets as JSM issues, each worklog's kind where `at` says.
fn site_from(export: &Value, at: KindAt) -> Site {
    let mut s = Site::default();
    for (i, t) in export["tickets"].as_array().unwrap().iter().enumerate() {
        let key = format!("SD-{}", i + 1);
        let states: Vec<&Value> = t["states"].as_array().unwrap().iter().collect();
        let histories: Vec<Value> = states
            .windows(2)
            .enumerate()
            .map(|(n, w)| json!({"id": n.to_string(), "created": jira_time(w[1]["at"].as_str().unwrap()),
                "items": [{"field": "status", "fieldtype": "jira", "fromString": w[0]["state"], "toString": w[1]["state"]}]}))
            .collect();
        let worklogs: Vec<Value> = t["work"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(n, w)| json!({"id": format!("{}{n}", i + 1), "author": {"displayName": w["agent"]},
                "started": jira_time(w["at"].as_str().unwrap()),
                "timeSpentSeconds": w["minutes"].as_f64().unwrap() * 60.0,
                // ADF, as API v3 writes comments.
                "comment": {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": match at {
                        KindAt::Comment => format!("[{}] {}", w["kind"].as_str().unwrap(), w["note"].as_str().unwrap_or("")),
                        _ => w["note"].as_str().unwrap_or("").to_owned(),
                    }}]}]}}))
            .collect();
        if at == KindAt::Property {
            // Entity properties, as `expand=properties` lists them.
            let properties: Vec<Value> = t["work"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| json!([{"key": "work-kind", "value": {"value": w["kind"]}}]))
                .collect();
            s.properties.insert(key.clone(), properties);
        }
        let labels: Vec<String> = match (at, t["work"][0]["kind"].as_str()) {
            (KindAt::Label, Some(kind)) => vec![format!("kind-{kind}")],
            _ => Vec::new(),
        };
        s.labels.insert(key.clone(), labels.clone());
        let mut updated = t["created_at"].as_str().unwrap().to_owned();
        for at in states.iter().map(|s| s["at"].as_str().unwrap()).chain(
            t["work"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["at"].as_str().unwrap()),
        ) {
            if chrono::DateTime::parse_from_rfc3339(at).unwrap()
                > chrono::DateTime::parse_from_rfc3339(&updated).unwrap()
            {
                updated = at.to_owned();
            }
        }
        s.first_response
            .insert(key.clone(), t["first_response_at"].clone());
        s.issues.push(json!({
            "id": (10000 + i).to_string(),
            "key": key,
            "fields": {
                "summary": t["title"],
                "status": {"name": states.last().unwrap()["state"]},
                "priority": {"name": t["priority"]},
                "reporter": {"emailAddress": t["requester"]},
                "created": jira_time(t["created_at"].as_str().unwrap()),
                "updated": jira_time(&updated),
                "resolutiondate": t["resolved_at"].as_str().map(jira_time),
                "labels": labels,
                "customfield_10002": [{"id": "1", "name": t["customer"]}],
                "customfield_10100": {"value": t["category"]},
                "worklog": {"startAt": 0, "maxResults": 20, "total": worklogs.len(), "worklogs": worklogs},
            },
            "changelog": {"histories": histories},
        }));
    }
    s
}

impl Respond for FakeJira {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let auth = r.headers.get("authorization").and_then(|v| v.to_str().ok());
        let served = s.requests;
        if let Some(o) = s.oauth.as_mut() {
            if r.url.path() == "/oauth/token" {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(body["grant_type"], "refresh_token");
                assert_eq!(body["client_id"], "cb-app");
                assert_eq!(body["client_secret"], "cb-s3cret");
                let offered = body["refresh_token"].as_str().unwrap().to_owned();
                o.grants.push(offered.clone());
                if offered != o.refresh {
                    return ResponseTemplate::new(403).set_body_json(json!({"error": "unauthorized_client", "error_description": "refresh_token is invalid"}));
                }
                let n = o.grants.len();
                o.refresh = format!("r{n}");
                o.access = Some(format!("a{n}"));
                return ResponseTemplate::new(200).set_body_json(json!({"access_token": format!("a{n}"), "refresh_token": format!("r{n}"), "expires_in": 3600, "scope": "read:jira-work write:jira-work offline_access", "token_type": "Bearer"}));
            }
            if o.revoke_after == Some(served) {
                o.revoke_after = None;
                o.access = None;
            }
            if o.access.is_none()
                || auth != o.access.as_ref().map(|a| format!("Bearer {a}")).as_deref()
            {
                return ResponseTemplate::new(401)
                    .set_body_json(json!({"code": 401, "message": "Unauthorized"}));
            }
        } else if auth != Some("Basic YnJpZGdlQGV4YW1wbGUuY29tOmotdDBr") {
            // bridge@example.com:j-t0k
            s.refused += 1;
            return ResponseTemplate::new(401).set_body_json(json!({"errorMessages": ["Client must be authenticated to access this resource."], "errors": {}}));
        }
        s.requests += 1;
        let path = r.url.path().to_owned();
        match (r.method.as_str(), path.as_str()) {
            ("POST", "/rest/api/3/search/jql") if s.throttle_search => {
                s.throttle_search = false;
                ResponseTemplate::new(429)
                    .insert_header("retry-after", "1")
                    .insert_header("x-ratelimit-remaining", "0")
                    .insert_header("ratelimit-reason", "jira-burst-based")
            }
            ("POST", "/rest/api/3/search/jql") => {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                assert!(body["jql"].as_str().unwrap().starts_with("(project = SD)"));
                let start: usize = body["nextPageToken"]
                    .as_str()
                    .map_or(0, |p| p.trim_start_matches('p').parse().unwrap());
                let page: Vec<Value> = s.issues.iter().skip(start).take(4).cloned().collect();
                let last = start + 4 >= s.issues.len();
                let mut answer = json!({"issues": page, "isLast": last});
                if !last {
                    answer["nextPageToken"] = json!(format!("p{}", start + 4));
                }
                ResponseTemplate::new(200).set_body_json(answer)
            }
            ("GET", p) if p.starts_with("/rest/servicedeskapi/request/") && p.ends_with("/sla") => {
                let key = p.split('/').nth(4).unwrap();
                let cycles = match s.first_response[key].as_str() {
                    Some(at) => {
                        json!([{"stopTime": {"iso8601": jira_time(at)}, "breached": false}])
                    }
                    None => json!([]),
                };
                ResponseTemplate::new(200).set_body_json(json!({"values": [{"id": "2", "name": "Time to first response", "completedCycles": cycles}], "isLastPage": true}))
            }
            ("GET", p) if p.starts_with("/rest/api/3/issue/") && p.ends_with("/worklog") => {
                *s.by_kind.entry("worklogs").or_default() += 1;
                let key = p.split('/').nth(5).unwrap().to_owned();
                let expand = r
                    .url
                    .query_pairs()
                    .any(|(k, v)| k == "expand" && v.split(',').any(|e| e == "properties"));
                let issue = s.issues.iter().find(|i| i["key"] == key.as_str()).unwrap();
                let mut worklogs = issue["fields"]["worklog"]["worklogs"].clone();
                for (n, w) in worklogs.as_array_mut().unwrap().iter_mut().enumerate() {
                    if expand {
                        w["properties"] =
                            s.properties.get(&key).map_or(json!([]), |p| p[n].clone());
                    }
                }
                let total = worklogs.as_array().unwrap().len();
                ResponseTemplate::new(200).set_body_json(
                    json!({"startAt": 0, "maxResults": 5000, "total": total, "worklogs": worklogs}),
                )
            }
            ("GET", p) if p.starts_with("/rest/api/3/issue/") => {
                *s.by_kind.entry("labels").or_default() += 1;
                let key = p.rsplit('/').next().unwrap().to_owned();
                assert_eq!(r.url.query(), Some("fields=labels"));
                ResponseTemplate::new(200).set_body_json(json!({"id": "1", "key": key,
                    "fields": {"labels": s.labels.get(&key).cloned().unwrap_or_default()}}))
            }
            ("GET", p) if p.ends_with("/comment") => {
                let key = p.split('/').nth(4).unwrap();
                ResponseTemplate::new(200).set_body_json(json!({"values": s.comments.get(key).cloned().unwrap_or_default(), "isLastPage": true}))
            }
            ("POST", p) if p.ends_with("/comment") => {
                let key = p.split('/').nth(4).unwrap().to_owned();
                let c: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(c["public"], false, "an internal comment");
                s.comments.entry(key).or_default().push(c.clone());
                ResponseTemplate::new(201).set_body_json(c)
            }
            ("PUT", p) if p.starts_with("/rest/api/3/issue/") => {
                let key = p.rsplit('/').next().unwrap().to_owned();
                let u: Value = serde_json::from_slice(&r.body).unwrap();
                let label = u["update"]["labels"][0]["add"].as_str().unwrap().to_owned();
                let labels = s.labels.entry(key).or_default();
                if !labels.contains(&label) {
                    labels.push(label);
                }
                ResponseTemplate::new(204)
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

fn config(dir: &Path, uri: &str) -> std::path::PathBuf {
    config_with_auth(
        dir,
        uri,
        "email = \"bridge@example.com\"\napi_token = \"j-t0k\"",
    )
}

fn config_with_auth(dir: &Path, uri: &str, auth: &str) -> std::path::PathBuf {
    config_full(dir, uri, auth, "")
}

/// `kind`: the mapping's `fields.kind` (none: the comment, the default).
fn config_full(dir: &Path, uri: &str, auth: &str, kind: &str) -> std::path::PathBuf {
    let kind = if kind.is_empty() {
        String::new()
    } else {
        format!("      kind: \"{kind}\"\n")
    };
    let tables = format!(
        r#"[sources.jsm]
type = "jira"
url = "{uri}"
{auth}
jql = "project = SD"
notes = "jsm"
requests_per_second = 1000
{drafts}"#,
        drafts = folder_target("drafts", &dir.join("drafts")),
    );
    let mappings = examples_with(
        dir,
        &format!(
            "sources:\n  jsm:\n    customers:\n      riga-bakery: riga-bakery\n      daugava-logistics: daugava-logistics\n      jurmala-hotel: jurmala-hotel\n    kinds:\n      \"[onsite]\": onsite\n      \"[phone]\": phone\n    fields:\n      category: customfield_10100\n{kind}"
        ),
    );
    write_config(dir, &mappings, "drafts", &tables)
}

async fn serve(fake: &FakeJira) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    server
}

fn run_once(config: &Path, now: &str) -> String {
    run_once_with(config, now, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_synced_from_jira_bills_as_the_export_does_and_notes_once() {
    // The first search is throttled: waited out, not a failed sync.
    let fake = FakeJira(Arc::new(Mutex::new(Site {
        throttle_search: true,
        ..site_from_export()
    })));
    let server = serve(&fake).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &server.uri());
    let first = run_once(&cfg, NOW);
    let issues = fake.0.lock().unwrap().issues.len();
    assert!(
        first.contains(&format!("{issues} ticket(s) changed")),
        "{first}"
    );
    for (customer, total) in expected_october_totals() {
        if ["riga-bakery", "daugava-logistics", "jurmala-hotel"].contains(&customer.as_str()) {
            let v: Value = serde_json::from_str(
                &std::fs::read_to_string(
                    dir.path()
                        .join(format!("drafts/draft_{customer}_2026-10_r1.json")),
                )
                .unwrap(),
            )
            .unwrap();
            assert_eq!(v["draft"]["total_net"], total.as_str(), "{customer}");
        }
    }
    let (requests, comments) = {
        let s = fake.0.lock().unwrap();
        (s.requests, s.comments.values().map(Vec::len).sum::<usize>())
    };
    assert!(comments > 0, "the breaches were noted");
    // A note: its comments and labels looked up, the comment, the label.
    let reading = requests - 4 * comments;
    eprintln!(
        "jira: {reading} requests to read {issues} issues ({:.2} per issue), {comments} internal comments with labels in {} requests",
        reading as f64 / issues as f64,
        4 * comments
    );
    let second = run_once(&cfg, "2026-11-23T13:00:00Z");
    assert!(second.contains("0 ticket(s) changed"), "{second}");
    within_contract(&server).await;
    let s = fake.0.lock().unwrap();
    for (key, comments) in &s.comments {
        let mut bodies: Vec<&str> = comments
            .iter()
            .map(|c| c["body"].as_str().unwrap())
            .collect();
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), comments.len(), "{key} commented twice");
        assert!(
            s.labels[key].iter().any(|l| l.starts_with("sla-")),
            "{key} labelled"
        );
    }
}

/// Every request of the test to the Jira platform API, within Atlassian's
/// published description (Service Management requests are not: see
/// tests/api/support/contract.rs).
async fn within_contract(server: &MockServer) {
    let requests = server.received_requests().await.unwrap();
    assert!(contract::check_jira(&requests) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_3lo_refresh_tokens_rotate_and_are_kept_across_restarts() {
    let fake = FakeJira(Arc::new(Mutex::new(Site {
        oauth: Some(OAuthSite {
            refresh: "r0".into(),
            // The site revokes the first access token mid-sweep.
            revoke_after: Some(3),
            ..OAuthSite::default()
        }),
        ..site_from_export()
    })));
    let server = serve(&fake).await;
    let dir = tempfile::tempdir().unwrap();
    let uri = server.uri();
    let cfg = config_with_auth(
        dir.path(),
        &uri,
        &format!(
            "oauth = {{ client_id = \"cb-app\", client_secret = \"env:CB_TEST_JIRA_SECRET\", refresh_token = \"r0\", token_url = \"{uri}/oauth/token\" }}"
        ),
    );
    let env = [("CB_TEST_JIRA_SECRET", "cb-s3cret")];
    let first = run_once_with(&cfg, NOW, &env);
    let issues = fake.0.lock().unwrap().issues.len();
    assert!(
        first.contains(&format!("{issues} ticket(s) changed")),
        "{first}"
    );
    // The revoked token was fetched again once, with the rotated refresh token.
    assert_eq!(
        fake.0.lock().unwrap().oauth.as_ref().unwrap().grants,
        ["r0", "r1"]
    );

    // A new process has no token in memory: it must refresh with the token
    // stored last (r2), never the configured r0, which Atlassian has revoked.
    fake.0.lock().unwrap().oauth.as_mut().unwrap().access = None;
    let second = run_once_with(&cfg, "2026-11-23T13:00:00Z", &env);
    assert!(second.contains("0 ticket(s) changed"), "{second}");
    assert!(!second.contains("source jsm:"), "{second}");
    assert_eq!(
        fake.0.lock().unwrap().oauth.as_ref().unwrap().grants,
        ["r0", "r1", "r2"]
    );
    within_contract(&server).await;
}

#[test]
fn jira_needs_exactly_one_way_to_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    for (auth, says) in [
        ("email = \"a@b.c\"", "set `email` and `api_token`"),
        (
            "email = \"a@b.c\"\napi_token = \"t\"\noauth = { client_id = \"x\", client_secret = \"y\", refresh_token = \"z\" }",
            "not both",
        ),
    ] {
        let cfg = config_with_auth(dir.path(), "http://127.0.0.1:9", auth);
        let out = std::process::Command::new(bin())
            .args(["run", "--once", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("sources.jsm") && err.contains(says), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_api_token_is_one_clear_error_not_a_retry_storm() {
    let fake = FakeJira(Arc::new(Mutex::new(site_from_export())));
    let server = serve(&fake).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with_auth(
        dir.path(),
        &server.uri(),
        "email = \"bridge@example.com\"\napi_token = \"revoked\"",
    );
    let out = run_once_failing(&cfg, NOW);
    assert!(
        out.contains("source jsm: jira: HTTP 401: Client must be authenticated to access this resource. (check the source's email and API token)"),
        "{out}"
    );
    within_contract(&server).await;
    let s = fake.0.lock().unwrap();
    assert_eq!(s.refused, 1, "one refused request, not retried");
    assert_eq!(s.requests, 0);
}

/// A month whose worklog kinds are recorded as the mapping says (a worklog
/// property, or a label prefix on the issue) bills as the offline command
/// bills the same export: call-out fees come from the kinds.
async fn a_month_with_kinds_at(at: KindAt, kind: &str, export: Value) {
    let fake = FakeJira(Arc::new(Mutex::new(site_from(&export, at))));
    let server = serve(&fake).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_full(
        dir.path(),
        &server.uri(),
        "email = \"bridge@example.com\"\napi_token = \"j-t0k\"",
        kind,
    );
    let out = run_once(&cfg, NOW);
    let issues = fake.0.lock().unwrap().issues.len();
    assert!(
        out.contains(&format!("{issues} ticket(s) changed")),
        "{out}"
    );
    let file = dir.path().join("export.json");
    std::fs::write(&file, export.to_string()).unwrap();
    let offline = offline_bill(&examples(), &file, "2026-10");
    // Read as remote (the kind not found), the month would bill otherwise.
    let mut remote = export.clone();
    for t in remote["tickets"].as_array_mut().unwrap() {
        for w in t["work"].as_array_mut().unwrap() {
            w["kind"] = json!("remote");
        }
    }
    std::fs::write(&file, remote.to_string()).unwrap();
    assert_ne!(
        offline_bill(&examples(), &file, "2026-10")["invoices"],
        offline["invoices"],
        "the kinds cost something"
    );
    let mut compared = Vec::new();
    for inv in offline["invoices"].as_array().unwrap() {
        let customer = inv["customer"].as_str().unwrap();
        let Ok(text) = std::fs::read_to_string(
            dir.path()
                .join(format!("drafts/draft_{customer}_2026-10_r1.json")),
        ) else {
            continue;
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["draft"]["total_net"], inv["total_net"], "{customer}");
        compared.push(customer.to_owned());
    }
    for customer in ["riga-bakery", "daugava-logistics", "jurmala-hotel"] {
        assert!(
            compared.iter().any(|c| c == customer),
            "{customer}: {compared:?}"
        );
    }
    let s = fake.0.lock().unwrap();
    let comments: usize = s.comments.values().map(Vec::len).sum();
    let reading = s.requests - 4 * comments;
    eprintln!(
        "jira ({kind}): {reading} requests to read {issues} issues ({:.2} per issue); by kind: {:?}",
        reading as f64 / issues as f64,
        s.by_kind
    );
    let worklogs = s.by_kind.get("worklogs").copied().unwrap_or(0);
    match at {
        KindAt::Property => assert_eq!(
            worklogs, issues,
            "each issue's worklogs with their properties"
        ),
        _ => assert_eq!(worklogs, 0, "the inlined worklogs do"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_kind_is_read_from_a_worklog_property() {
    let export = lv_it();
    // Without the kind in the comment, the comment would say remote: the
    // property must be read for the on-site call-outs to be billed.
    a_month_with_kinds_at(KindAt::Property, "worklog_property:work-kind", export).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_kind_is_read_from_a_label_prefix() {
    // A label is the issue's: each issue's work is of its first kind,
    // in the export (the oracle) as in Jira.
    let mut export = lv_it();
    for t in export["tickets"].as_array_mut().unwrap() {
        let first = t["work"][0]["kind"].clone();
        for w in t["work"].as_array_mut().unwrap() {
            w["kind"] = first.clone();
        }
    }
    a_month_with_kinds_at(KindAt::Label, "label:kind-", export).await;
}
