//! Jira Service Management Cloud: issues by `POST /rest/api/3/search/jql`
//! (`updated >=` the cursor, paged with `nextPageToken` until `isLast`),
//! with their status changelog and worklogs (`timeSpentSeconds`; more than
//! the 20 inlined are read from the issue's worklog); the request's SLA
//! cycles (`/rest/servicedeskapi/request/{key}/sla`) give the first
//! response and are kept on the ticket as a cross-check of our own clock;
//! JSM organizations are the customers. Internal comments (`public: false`)
//! and labels carry the notes; admin webhooks are signed `X-Hub-Signature:
//! sha256=…` and de-duplicated on `X-Atlassian-Webhook-Identifier`.
//! API-token Basic auth.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounting::{encode, status_error};
use crate::helpdesk::{
    Announcement, Converted, FoundNote, HelpdeskApi, Mapped, NoteLookup, NotePart, Page, RawTicket,
    SourceMap, WebhookRefusal, header, note_marker, ticket_title, verify_hub_signature,
};
use crate::{
    ConnectorError, HttpMethod, HttpRequest, HttpResponse, NewTicket, Note, Secret, TicketSnapshot,
};
use mapping::{Place, WorkKind};

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    /// The site, e.g. `https://example.atlassian.net`.
    /// Under OAuth 2.0 (3LO): `https://api.atlassian.com/ex/jira/{cloudId}`
    /// (the site's own address refuses 3LO tokens).
    pub url: String,
    /// API-token Basic auth: the account's e-mail and its API token.
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub api_token: Option<Secret>,
    /// OAuth 2.0 (3LO) instead, with refresh tokens.
    #[serde(default)]
    pub oauth: Option<Box<JiraOAuth>>,
    /// The issues this source reads, e.g. `project = SD`.
    pub jql: String,
    /// The project key of the issues the bridge opens (renewal suggestions,
    /// `renew_to: ticket`); none: it opens none.
    #[serde(default)]
    pub renewal_project: Option<String>,
    /// Their issue type, by name.
    #[serde(default = "default_issue_type")]
    pub renewal_issue_type: String,
    #[serde(default = "default_rate")]
    pub requests_per_second: u32,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// An OAuth 2.0 (3LO) app's credentials and the refresh token its consent
/// gave (`offline_access`). Atlassian rotates refresh tokens: the daemon
/// stores each successor and uses the configured one only until then.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct JiraOAuth {
    pub client_id: String,
    pub client_secret: Secret,
    /// The refresh token of a consent made with another tool; none: the
    /// one `contract-bridge connect` stored.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// Where `connect` sends the browser for consent.
    #[serde(default = "default_authorize_url")]
    pub authorize_url: String,
    /// The sites a consent reaches (`accessible-resources`).
    #[serde(default = "default_resources_url")]
    pub resources_url: String,
    /// The scopes `connect` asks for.
    #[serde(default = "default_jira_scopes")]
    pub scopes: Vec<String>,
    /// The callback URL registered with the app; none: `connect` listens
    /// on `http://localhost:PORT/callback`.
    #[serde(default)]
    pub redirect_uri: Option<String>,
}

fn default_authorize_url() -> String {
    "https://auth.atlassian.com/authorize".into()
}
fn default_resources_url() -> String {
    "https://api.atlassian.com/oauth/token/accessible-resources".into()
}
fn default_jira_scopes() -> Vec<String> {
    ["read:jira-work", "write:jira-work", "offline_access"]
        .map(str::to_owned)
        .to_vec()
}

fn default_token_url() -> String {
    "https://auth.atlassian.com/oauth/token".into()
}

impl JiraConfig {
    /// Exactly one way to sign in.
    pub fn check(&self) -> Result<(), String> {
        match (&self.email, &self.api_token, &self.oauth) {
            (Some(_), Some(_), None) | (None, None, Some(_)) => Ok(()),
            (_, _, Some(_)) => Err(
                "set either `email` and `api_token` (API-token auth) or `oauth` (3LO), not both"
                    .into(),
            ),
            _ => Err("set `email` and `api_token` (API-token auth), or `oauth` with `client_id` and `client_secret` (3LO; then run `contract-bridge connect SOURCE`, or set `refresh_token`)".into()),
        }
    }
}

fn default_rate() -> u32 {
    10
}
fn default_issue_type() -> String {
    "Task".into()
}
fn default_timeout_ms() -> u64 {
    30_000
}

const SYSTEM: &str = "jira";
/// Where JSM keeps a request's organizations unless the mapping says otherwise.
const ORGANIZATION_FIELD: &str = "customfield_10002";
/// Worklogs the search inlines per issue.
const INLINE_WORKLOGS: u64 = 20;
/// Where JSM keeps an issue's request type (`requestType.name`) unless the
/// mapping says otherwise (`fields.request_type`): the "Request Type"
/// field, e.g. ctreminiom/go-atlassian#262 shows its value.
const REQUEST_TYPE_FIELD: &str = "customfield_10010";

/// The text of a comment: API v3 writes Atlassian Document Format (its
/// `text` nodes, in order), v2 plain text.
fn comment_text(v: &Value) -> String {
    fn walk(v: &Value, out: &mut Vec<String>) {
        if let Some(t) = v["text"].as_str() {
            out.push(t.to_owned());
        }
        for c in v["content"].as_array().into_iter().flatten() {
            walk(c, out);
        }
    }
    if let Some(s) = v.as_str() {
        return s.to_owned();
    }
    let mut parts = Vec::new();
    walk(v, &mut parts);
    parts.join(" ")
}

/// A field's value as text: a string, an option (`value`), a named object
/// (`name`), a request type (`requestType.name`) or a number.
fn field_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(_) => v["value"]
            .as_str()
            .or(v["name"].as_str())
            .or(v["requestType"]["name"].as_str())
            .map(str::to_owned),
        _ => None,
    }
}

/// A worklog property's value (`expand=properties`: `properties` is a list
/// of `{key, value}` entity properties): the value when it is text, else
/// its `member` (by default `value`).
fn worklog_property(w: &Value, key: &str, member: Option<&str>) -> Option<String> {
    let value = &w["properties"]
        .as_array()?
        .iter()
        .find(|p| p["key"] == key)?["value"];
    match value {
        Value::String(s) => Some(s.clone()),
        _ => field_text(&value[member.unwrap_or("value")]),
    }
}

fn check(r: &HttpResponse) -> Result<Value, ConnectorError> {
    if !(200..300).contains(&r.status) {
        let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
        let mut parts: Vec<String> = v["errorMessages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect();
        if let Some(errors) = v["errors"].as_object() {
            parts.extend(
                errors
                    .iter()
                    .map(|(k, m)| format!("{k}: {}", m.as_str().unwrap_or_default())),
            );
        }
        let m = if parts.is_empty() {
            r.body.chars().take(200).collect()
        } else {
            parts.join("; ")
        };
        if r.status == 401 || r.status == 403 {
            return Err(ConnectorError::Permanent(format!(
                "{SYSTEM}: HTTP {}: {m} (check the source's email and API token)",
                r.status
            )));
        }
        return Err(status_error(SYSTEM, r, &m));
    }
    if r.body.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&r.body).map_err(|e| {
        ConnectorError::Transient(format!(
            "{SYSTEM}: HTTP {}: the answer is not JSON ({e})",
            r.status
        ))
    })
}

/// Jira's `2026-10-01T09:10:00.000+0300` as RFC 3339.
fn rfc3339(s: &str) -> Value {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .map_or(Value::Null, |d| Value::String(d.to_rfc3339()))
}

fn issue_ticket(issue: &Value) -> Option<RawTicket> {
    Some(RawTicket {
        id: issue["key"].as_str()?.to_owned(),
        updated_at: rfc3339(issue["fields"]["updated"].as_str().unwrap_or_default())
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        value: issue.clone(),
    })
}

impl Mapped<'_, JiraConfig> {
    fn request(
        &self,
        method: HttpMethod,
        path: String,
        body: Option<&Value>,
    ) -> Result<HttpRequest, ConnectorError> {
        let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
        let body = match body {
            Some(b) => {
                headers.push(("content-type".into(), "application/json".into()));
                serde_json::to_vec(b).map_err(|e| ConnectorError::Permanent(e.to_string()))?
            }
            None => Vec::new(),
        };
        Ok(HttpRequest {
            method,
            url: format!("{}{path}", self.url.trim_end_matches('/')),
            headers,
            body,
            timeout: Duration::from_millis(self.timeout_ms),
        })
    }

    fn fields(&self) -> Vec<String> {
        let mut f: Vec<String> = [
            "summary",
            "status",
            "priority",
            "reporter",
            "created",
            "updated",
            "resolutiondate",
            "labels",
            "worklog",
        ]
        .map(String::from)
        .to_vec();
        f.push(
            self.map
                .field("organization", ORGANIZATION_FIELD)
                .to_owned(),
        );
        f.extend(self.map.fields.get("requester").cloned());
        for place in [self.map.kind_from.clone(), self.map.category_place()]
            .iter()
            .flatten()
        {
            match place {
                Place::Field(field) => f.push(field.clone()),
                Place::RequestType => f.push(self.request_type_field().to_owned()),
                _ => {}
            }
        }
        f.extend(self.map.extra_fields().map(|(_, raw)| raw.to_owned()));
        f.sort();
        f.dedup();
        f
    }

    fn renewal_project(&self) -> Result<String, ConnectorError> {
        self.renewal_project
            .as_deref()
            .map(|p| p.replace('"', ""))
            .ok_or_else(|| {
                ConnectorError::Permanent(
                    "jira: set the source's `renewal_project` (a project key) to open renewal tickets"
                        .into(),
                )
            })
    }

    fn request_type_field(&self) -> &str {
        self.map.field("request_type", REQUEST_TYPE_FIELD)
    }

    /// Whether the issue's worklogs are read on their own: more than the
    /// search inlines, or the kind is a worklog property (the search does
    /// not expand worklog properties).
    fn needs_worklog(&self, issue: &Value) -> bool {
        let total = issue["fields"]["worklog"]["total"].as_u64().unwrap_or(0);
        total > INLINE_WORKLOGS
            || (total > 0 && matches!(self.map.kind_from, Some(Place::WorklogProperty { .. })))
    }

    /// A value the issue itself holds at `place` (not a worklog's).
    fn issue_place(&self, place: &Place, f: &Value) -> Result<Option<String>, String> {
        Ok(match place {
            Place::Field(field) => field_text(&f[field.as_str()]),
            Place::LabelPrefix(prefix) => SourceMap::label_value(
                f["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
                prefix,
            )
            .map(str::to_owned),
            Place::RequestType => field_text(&f[self.request_type_field()]),
            Place::Comment | Place::WorklogProperty { .. } => None,
            Place::Activity => {
                return Err(
                    "`activity` is Zammad's time accounting type: Jira has none (use a worklog property, a field, a label prefix, the request type or the comment)"
                        .into(),
                );
            }
        })
    }

    /// A worklog's kind: from the configured place, else (the last resort)
    /// a `kinds` word in its comment, else remote.
    fn kind(&self, w: &Value, comment: &str, f: &Value) -> Result<WorkKind, String> {
        let found = match &self.map.kind_from {
            None | Some(Place::Comment) => None,
            Some(Place::WorklogProperty { key, member }) => {
                worklog_property(w, key, member.as_deref())
            }
            Some(place) => self.issue_place(place, f)?,
        };
        Ok(found
            .and_then(|v| self.map.kind_named(&v))
            .unwrap_or_else(|| self.map.kind_of(comment)))
    }

    fn canonical(&self, issue: &Value, sla: &Value, worklogs: &[Value]) -> Converted {
        let key = issue["key"].as_str().unwrap_or_default();
        let f = &issue["fields"];
        let organization = f[self.map.field("organization", ORGANIZATION_FIELD)][0]["name"]
            .as_str()
            .unwrap_or_default();
        let customer = self.map.customers.get(organization).ok_or_else(|| {
            format!("issue {key}: organization `{organization}` has no customer key (add it under the source's `customers`)")
        })?;
        let created = rfc3339(f["created"].as_str().unwrap_or_default());
        let mut changes: Vec<(String, Value, Value)> = issue["changelog"]["histories"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|h| {
                let at = h["created"].as_str().unwrap_or_default().to_owned();
                h["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|i| i["field"] == "status")
                    .map(move |i| (at.clone(), i["fromString"].clone(), i["toString"].clone()))
            })
            .collect();
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        let first = changes
            .first()
            .map_or(f["status"]["name"].clone(), |c| c.1.clone());
        let mut states = vec![json!({"at": created, "state": first})];
        states.extend(
            changes
                .iter()
                .map(|(at, _, to)| json!({"at": rfc3339(at), "state": to})),
        );
        // The first response as JSM's own SLA saw it; the cycles are kept as a cross-check.
        let mut first_response = Value::Null;
        let mut cycles = Vec::new();
        for metric in sla["values"].as_array().into_iter().flatten() {
            let name = metric["name"].as_str().unwrap_or_default();
            for c in metric["completedCycles"].as_array().into_iter().flatten() {
                if name == "Time to first response" && first_response.is_null() {
                    first_response = c["stopTime"]["iso8601"]
                        .as_str()
                        .map_or(Value::Null, rfc3339);
                }
                cycles.push(json!({"metric": name, "breached": c["breached"], "stop": c["stopTime"]["iso8601"]}));
            }
            if let Some(c) = metric["ongoingCycle"].as_object() {
                cycles.push(json!({"metric": name, "breached": c.get("breached"), "breach_time": c.get("breachTime").map(|b| b["iso8601"].clone())}));
            }
        }
        let logs: Vec<&Value> = if worklogs.is_empty() {
            f["worklog"]["worklogs"]
                .as_array()
                .map(|w| w.iter().collect())
                .unwrap_or_default()
        } else {
            worklogs.iter().collect()
        };
        let mut work: Vec<Value> = Vec::with_capacity(logs.len());
        for w in &logs {
            let seconds = w["timeSpentSeconds"].as_f64().unwrap_or(0.0);
            let comment = comment_text(&w["comment"]);
            let kind = self
                .kind(w, &comment, f)
                .map_err(|e| format!("issue {key}: {e}"))?;
            let mut entry = json!({
                "id": format!("{key}-W{}", w["id"].as_str().unwrap_or_default()),
                "at": rfc3339(w["started"].as_str().unwrap_or_default()),
                "minutes": seconds / 60.0,
                "agent": w["author"]["displayName"],
                "kind": kind,
            });
            if !comment.is_empty() {
                entry["note"] = json!(comment);
            }
            work.push(entry);
        }
        let category = match &self.map.category_place() {
            None => None,
            Some(Place::Comment | Place::WorklogProperty { .. }) => {
                return Err(format!(
                    "issue {key}: the category is the issue's, not a worklog's: read it from a field, a label prefix or the request type"
                ));
            }
            Some(place) => self
                .issue_place(place, f)
                .map_err(|e| format!("issue {key}: {e}"))?,
        }
        .map_or(Value::Null, Value::String);
        let requester = match self.map.fields.get("requester") {
            Some(r) => {
                let v = &f[r.as_str()];
                v["emailAddress"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| field_text(v))
                    .map_or(Value::Null, Value::String)
            }
            None => f["reporter"]["emailAddress"].clone(),
        };
        let snapshot = json!({
            "id": key,
            "customer": customer,
            "requester": requester,
            "title": f["summary"],
            "priority": f["priority"]["name"],
            "category": category,
            "tags": f["labels"],
            "fields": self.extra_fields(json!({"jsm_sla": cycles}), |raw| {
                let v = &f[raw];
                v["value"].as_str().map_or_else(|| v.clone(), |s| json!(s))
            }),
            "created_at": created,
            "first_response_at": first_response,
            "resolved_at": f["resolutiondate"].as_str().map_or(Value::Null, rfc3339),
            "states": states,
            "work": work,
        });
        Ok(TicketSnapshot {
            id: key.to_owned(),
            customer: customer.clone(),
            json: snapshot.to_string(),
        })
    }
}

impl crate::accounting::TokenGrant for Mapped<'_, JiraConfig> {
    fn rotates(&self) -> bool {
        true
    }

    fn grant_request(&self, stored: Option<&str>) -> Result<Option<HttpRequest>, ConnectorError> {
        let Some(o) = &self.oauth else {
            return Ok(None);
        };
        // Atlassian's token endpoint takes JSON, not a form.
        let body = json!({
            "grant_type": "refresh_token",
            "client_id": o.client_id,
            "client_secret": o.client_secret.expose(),
            "refresh_token": match (stored, &o.refresh_token) {
                (Some(s), _) => s,
                (None, Some(r)) => r.expose(),
                (None, None) => return Err(ConnectorError::Permanent(
                    "jira: no refresh token: run `contract-bridge connect SOURCE --config FILE` for this source".into(),
                )),
            },
        });
        Ok(Some(HttpRequest::json(
            HttpMethod::Post,
            o.token_url.clone(),
            serde_json::to_vec(&body).map_err(|e| ConnectorError::Permanent(e.to_string()))?,
            self.timeout_ms,
        )))
    }

    fn read_grant(
        &self,
        r: &HttpResponse,
    ) -> Result<crate::accounting::AccessToken, ConnectorError> {
        crate::accounting::oauth_token(SYSTEM, r)
    }

    fn oauth_app(&self) -> Option<crate::oauth::OAuthApp> {
        self.oauth.as_ref().map(|o| o.app(self.timeout_ms))
    }
}

impl JiraOAuth {
    /// The 3LO app: `audience=api.atlassian.com` and `prompt=consent` on
    /// the authorization URL, the client's secret in the token request's body.
    pub fn app(&self, timeout_ms: u64) -> crate::oauth::OAuthApp {
        crate::oauth::OAuthApp {
            system: SYSTEM,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            authorize_url: self.authorize_url.clone(),
            token_url: self.token_url.clone(),
            scopes: self.scopes.clone(),
            client_auth: crate::oauth::ClientAuth::Body,
            json_token_requests: true,
            authorize_params: vec![
                ("audience".into(), "api.atlassian.com".into()),
                ("prompt".into(), "consent".into()),
            ],
            tenants: crate::oauth::TenantSource::Resources {
                url: self.resources_url.clone(),
            },
            tenant: None,
            redirect_uri: self.redirect_uri.clone(),
            refresh_token: self.refresh_token.clone(),
            timeout_ms,
        }
    }
}

impl HelpdeskApi for Mapped<'_, JiraConfig> {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn grant(&self) -> Option<&dyn crate::accounting::TokenGrant> {
        self.oauth.is_some().then_some(self as _)
    }

    fn authorize(&self, request: &mut HttpRequest, token: Option<&str>) {
        use base64::Engine;
        let value = match (token, &self.email, &self.api_token) {
            (Some(token), _, _) => format!("Bearer {token}"),
            (None, Some(email), Some(api_token)) => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{email}:{}", api_token.expose()))
            ),
            // No credentials (refused when the configuration is read).
            _ => return,
        };
        request.headers.push(("authorization".into(), value));
    }

    fn changed(
        &self,
        cursor: Option<&str>,
        page: Option<&str>,
    ) -> Result<HttpRequest, ConnectorError> {
        // JQL reads dates in the account's time zone: a day of margin, and
        // unchanged issues are recognised when stored.
        let since = cursor
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|c| {
                (c - chrono::Duration::days(1))
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            });
        let jql = match since {
            Some(s) => format!("({}) AND updated >= \"{s}\" ORDER BY updated ASC", self.jql),
            None => format!("({}) ORDER BY updated ASC", self.jql),
        };
        let mut body =
            json!({"jql": jql, "fields": self.fields(), "expand": "changelog", "maxResults": 100});
        if let Some(p) = page {
            body["nextPageToken"] = json!(p);
        }
        self.request(
            HttpMethod::Post,
            "/rest/api/3/search/jql".into(),
            Some(&body),
        )
    }

    fn read_changed(&self, _page: Option<&str>, r: &HttpResponse) -> Result<Page, ConnectorError> {
        let v = check(r)?;
        let tickets = v["issues"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(issue_ticket)
            .collect();
        let next = if v["isLast"].as_bool().unwrap_or(true) {
            None
        } else {
            v["nextPageToken"].as_str().map(str::to_owned)
        };
        Ok(Page { tickets, next })
    }

    fn ticket(&self, id: &str) -> Result<HttpRequest, ConnectorError> {
        self.request(
            HttpMethod::Get,
            format!(
                "/rest/api/3/issue/{}?expand=changelog&fields={}",
                encode(id),
                encode(&self.fields().join(","))
            ),
            None,
        )
    }

    fn read_ticket(&self, r: &HttpResponse) -> Result<RawTicket, ConnectorError> {
        issue_ticket(&check(r)?)
            .ok_or_else(|| ConnectorError::Transient("jira: an issue without a key".into()))
    }

    fn details(&self, tickets: &[RawTicket]) -> Result<Vec<HttpRequest>, ConnectorError> {
        let mut out = Vec::new();
        for t in tickets {
            out.push(self.request(
                HttpMethod::Get,
                format!("/rest/servicedeskapi/request/{}/sla", encode(&t.id)),
                None,
            )?);
            if self.needs_worklog(&t.value) {
                // `expand=properties`: each worklog with its entity
                // properties (Jira REST v3 "Get issue worklogs").
                out.push(self.request(
                    HttpMethod::Get,
                    format!(
                        "/rest/api/3/issue/{}/worklog?maxResults=5000&expand=properties",
                        encode(&t.id)
                    ),
                    None,
                )?);
            }
        }
        Ok(out)
    }

    fn convert(
        &self,
        tickets: &[RawTicket],
        details: &[HttpResponse],
    ) -> Result<Vec<Converted>, ConnectorError> {
        let mut answers = details.iter();
        let mut out = Vec::new();
        for t in tickets {
            let sla = answers.next().map(check).transpose()?.unwrap_or_default();
            let worklogs: Vec<Value> = if self.needs_worklog(&t.value) {
                let w = answers.next().map(check).transpose()?.unwrap_or_default();
                w["worklogs"].as_array().cloned().unwrap_or_default()
            } else {
                Vec::new()
            };
            out.push(self.canonical(&t.value, &sla, &worklogs));
        }
        Ok(out)
    }

    fn find_note(&self, note: &Note) -> Result<Vec<HttpRequest>, ConnectorError> {
        Ok(vec![
            self.request(
                HttpMethod::Get,
                format!(
                    "/rest/servicedeskapi/request/{}/comment?public=false&internal=true&limit=100",
                    encode(&note.ticket)
                ),
                None,
            )?,
            self.request(
                HttpMethod::Get,
                format!("/rest/api/3/issue/{}?fields=labels", encode(&note.ticket)),
                None,
            )?,
        ])
    }

    fn read_found_note(
        &self,
        key: &str,
        note: &Note,
        answers: &[HttpResponse],
    ) -> Result<NoteLookup, ConnectorError> {
        let [comments, issue] = answers else {
            return Err(ConnectorError::Transient(format!(
                "{SYSTEM}: the note lookup is incomplete"
            )));
        };
        let marker = note_marker(key);
        let comment = check(comments)?["values"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["body"].as_str().is_some_and(|b| b.contains(&marker)));
        let tag = check(issue)?["fields"]["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|l| l.as_str() == Some(note.tag.as_str()));
        Ok(NoteLookup::Found(FoundNote {
            comment,
            tag,
            context: Value::Null,
        }))
    }

    fn add_note(
        &self,
        key: &str,
        note: &Note,
        found: &FoundNote,
    ) -> Result<Vec<(NotePart, HttpRequest)>, ConnectorError> {
        let mut out = Vec::new();
        if !found.comment {
            out.push((
                NotePart::Comment,
                self.request(
                    HttpMethod::Post,
                    format!("/rest/servicedeskapi/request/{}/comment", encode(&note.ticket)),
                    Some(&json!({"body": format!("{}\n\n{}", note.text, note_marker(key)), "public": false})),
                )?,
            ));
        }
        if !found.tag {
            out.push((
                NotePart::Tag,
                self.request(
                    HttpMethod::Put,
                    format!("/rest/api/3/issue/{}", encode(&note.ticket)),
                    Some(&json!({"update": {"labels": [{"add": note.tag}]}})),
                )?,
            ));
        }
        Ok(out)
    }

    fn read_added(&self, r: &HttpResponse) -> Result<(), ConnectorError> {
        check(r).map(|_| ())
    }

    fn find_ticket(&self, _key: &str, ticket: &NewTicket) -> Result<HttpRequest, ConnectorError> {
        // A label matches exactly where a text search would split the
        // marker into words; the summaries are checked for the marker.
        let jql = format!(
            "project = \"{}\" AND labels = \"{}\" ORDER BY created DESC",
            self.renewal_project()?,
            ticket.tag.replace('"', "")
        );
        self.request(
            HttpMethod::Post,
            "/rest/api/3/search/jql".into(),
            Some(&json!({"jql": jql, "fields": ["summary"], "maxResults": 100})),
        )
    }

    fn read_found_ticket(
        &self,
        key: &str,
        r: &HttpResponse,
    ) -> Result<Option<String>, ConnectorError> {
        let marker = note_marker(key);
        Ok(check(r)?["issues"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| {
                i["fields"]["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains(&marker))
            })
            .and_then(|i| i["key"].as_str().map(str::to_owned)))
    }

    fn create_ticket(&self, key: &str, ticket: &NewTicket) -> Result<HttpRequest, ConnectorError> {
        let paragraph = |text: String| json!({"type": "paragraph", "content": [{"type": "text", "text": text}]});
        self.request(
            HttpMethod::Post,
            "/rest/api/3/issue".into(),
            Some(&json!({"fields": {
                "project": {"key": self.renewal_project()?},
                "issuetype": {"name": self.renewal_issue_type},
                "summary": ticket_title(key, ticket),
                "description": {"type": "doc", "version": 1, "content": [
                    paragraph(ticket.text.clone()),
                    paragraph(note_marker(key)),
                ]},
                "labels": [ticket.tag],
            }})),
        )
    }

    fn read_created_ticket(&self, r: &HttpResponse) -> Result<String, ConnectorError> {
        check(r)?["key"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ConnectorError::Transient(format!("{SYSTEM}: an issue without a key")))
    }

    fn webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        secret: &str,
    ) -> Result<Announcement, WebhookRefusal> {
        verify_hub_signature::<hmac::Hmac<sha2::Sha256>>(headers, body, secret, "sha256")?;
        let delivery = header(headers, "x-atlassian-webhook-identifier")
            .ok_or_else(|| {
                WebhookRefusal::Malformed("no X-Atlassian-Webhook-Identifier header".into())
            })?
            .to_owned();
        let v: Value =
            serde_json::from_slice(body).map_err(|e| WebhookRefusal::Malformed(e.to_string()))?;
        let key = v["issue"]["key"]
            .as_str()
            .or(v["worklog"]["issueId"].as_str())
            .ok_or_else(|| {
                WebhookRefusal::Malformed("no issue.key or worklog.issueId in the body".into())
            })?;
        let key = key.to_owned();
        Ok(if v["webhookEvent"] == "jira:issue_deleted" {
            Announcement {
                delivery,
                tickets: Vec::new(),
                deleted: vec![key],
                keys: Default::default(),
            }
        } else {
            Announcement {
                delivery,
                tickets: vec![key],
                deleted: Vec::new(),
                keys: Default::default(),
            }
        })
    }
}

impl crate::helpdesk::HelpdeskConfig for JiraConfig {
    fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }

    fn api<'a>(
        &'a self,
        map: &'a crate::helpdesk::SourceMap,
    ) -> Box<dyn crate::helpdesk::HelpdeskApi + 'a> {
        Box::new(crate::helpdesk::Mapped { config: self, map })
    }

    fn check(&self) -> Result<(), String> {
        JiraConfig::check(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpdesk::SourceMap;
    use crate::testing::answer;
    use hmac::{KeyInit, Mac};
    use std::collections::BTreeMap;

    fn map() -> SourceMap {
        SourceMap {
            customers: BTreeMap::from([("Riga Bakery".to_owned(), "riga-bakery".to_owned())]),
            kinds: BTreeMap::new(),
            fields: BTreeMap::from([("category".to_owned(), "customfield_10100".to_owned())]),
            ..SourceMap::default()
        }
    }

    fn fixture(name: &str) -> HttpResponse {
        HttpResponse {
            status: 200,
            retry_after: None,
            body: std::fs::read_to_string(format!(
                "{}/../tests/fixtures/jira/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        }
    }

    fn config() -> JiraConfig {
        serde_json::from_value(json!({
            "url": "https://example.atlassian.net",
            "email": "bridge@example.com",
            "api_token": "t0k",
            "jql": "project = SD",
        }))
        .unwrap()
    }

    #[test]
    fn an_issue_becomes_a_canonical_ticket_with_worklogs_changelog_and_sla() {
        let (config, map) = (config(), map());
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let page = c.read_changed(None, &fixture("search.json")).unwrap();
        assert_eq!(page.next.as_deref(), Some("CAEaAggD"));
        let details = c.details(&page.tickets).unwrap();
        assert_eq!(details.len(), 1, "the SLA only: the worklogs came inline");
        let converted = c.convert(&page.tickets, &[fixture("sla.json")]).unwrap();
        let v: Value = serde_json::from_str(&converted[0].as_ref().unwrap().json).unwrap();
        assert_eq!(v["customer"], "riga-bakery");
        assert_eq!(v["category"], "network");
        assert_eq!(v["priority"], "Medium");
        assert_eq!(v["work"][0]["minutes"], 50.0);
        assert_eq!(v["states"][1]["state"], "In Progress");
        assert_eq!(v["first_response_at"], "2026-10-06T11:30:00+03:00");
        assert_eq!(v["fields"]["jsm_sla"][0]["breached"], false);
    }

    /// The worklog list with `expand=properties`: each worklog carries its
    /// entity properties as `[{key, value}]` (Jira Cloud REST v3, "Get
    /// issue worklogs" and "Worklog properties").
    #[test]
    fn the_kind_comes_from_a_worklog_property_a_label_prefix_or_a_field() {
        let config = config();
        let mut map = map();
        map.kind_from = Some(Place::WorklogProperty {
            key: "work-kind".into(),
            member: None,
        });
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let page = c.read_changed(None, &fixture("search.json")).unwrap();
        let details = c.details(&page.tickets).unwrap();
        assert_eq!(
            details[1].url,
            "https://example.atlassian.net/rest/api/3/issue/SD-2/worklog?maxResults=5000&expand=properties",
            "the search does not expand worklog properties"
        );
        let converted = c
            .convert(
                &page.tickets,
                &[fixture("sla.json"), fixture("worklogs.json")],
            )
            .unwrap();
        let v: Value = serde_json::from_str(&converted[0].as_ref().unwrap().json).unwrap();
        assert_eq!(v["work"][0]["kind"], "onsite");
        assert_eq!(v["work"][0]["note"], "Replaced the cash register's switch");
        // Another member of another property.
        map.kind_from = Some(Place::WorklogProperty {
            key: "billing".into(),
            member: Some("kind".into()),
        });
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let converted = c
            .convert(
                &page.tickets,
                &[fixture("sla.json"), fixture("worklogs.json")],
            )
            .unwrap();
        let v: Value = serde_json::from_str(&converted[0].as_ref().unwrap().json).unwrap();
        assert_eq!(v["work"][0]["kind"], "phone");

        // A label prefix; the category from the request type.
        map.kind_from = Some(Place::LabelPrefix("kind-".into()));
        map.category_from = Some(Place::RequestType);
        let c = Mapped {
            config: &config,
            map: &map,
        };
        assert!(c.fields().contains(&"customfield_10010".to_owned()));
        let mut page = c.read_changed(None, &fixture("search.json")).unwrap();
        assert_eq!(
            c.details(&page.tickets).unwrap().len(),
            1,
            "inline worklogs do"
        );
        page.tickets[0].value["fields"]["labels"] = json!(["vip", "kind-phone"]);
        page.tickets[0].value["fields"]["customfield_10010"] = json!({"requestType": {"id": "72", "name": "Network outage"}, "currentStatus": {"status": "Resolved"}});
        let converted = c.convert(&page.tickets, &[fixture("sla.json")]).unwrap();
        let v: Value = serde_json::from_str(&converted[0].as_ref().unwrap().json).unwrap();
        assert_eq!(v["work"][0]["kind"], "phone");
        assert_eq!(v["category"], "Network outage");

        // No kind where it is configured: a `kinds` word of the comment, else remote.
        page.tickets[0].value["fields"]["labels"] = json!([]);
        let converted = c.convert(&page.tickets, &[fixture("sla.json")]).unwrap();
        let v: Value = serde_json::from_str(&converted[0].as_ref().unwrap().json).unwrap();
        assert_eq!(v["work"][0]["kind"], "remote");

        // Zammad's activity is refused for the issue, not guessed.
        map.kind_from = Some(Place::Activity);
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let converted = c.convert(&page.tickets, &[fixture("sla.json")]).unwrap();
        assert!(converted[0].as_ref().unwrap_err().contains("`activity`"));
    }

    #[test]
    fn a_note_adds_only_the_part_that_is_missing() {
        let (config, map) = (config(), map());
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let note = Note {
            source: "jsm".into(),
            ticket: "SD-2".into(),
            customer: "riga-bakery".into(),
            metric: "resolution".into(),
            event: crate::NoteEvent::Breach,
            due_at: None,
            tag: "sla-breach".into(),
            text: "missed".into(),
            subject: None,
        };
        let find = c.find_note(&note).unwrap();
        assert_eq!(
            find[1].url,
            "https://example.atlassian.net/rest/api/3/issue/SD-2?fields=labels"
        );
        let comments = answer(
            200,
            json!({"values": [{"id": "1", "body": format!("missed\n\n{}", note_marker("k")), "public": false}], "isLastPage": true}),
        );
        let labels = answer(
            200,
            json!({"id": "10002", "key": "SD-2", "fields": {"labels": ["vip"]}}),
        );
        let NoteLookup::Found(found) = c.read_found_note("k", &note, &[comments, labels]).unwrap()
        else {
            panic!("found")
        };
        assert_eq!((found.comment, found.tag), (true, false));
        let add = c.add_note("k", &note, &found).unwrap();
        assert_eq!(add.len(), 1);
        assert_eq!(
            (add[0].0, add[0].1.method),
            (NotePart::Tag, HttpMethod::Put)
        );
        let done = FoundNote { tag: true, ..found };
        assert!(c.add_note("k", &note, &done).unwrap().is_empty());
    }

    #[test]
    fn a_renewal_issue_is_looked_for_by_label_and_marker_then_created() {
        let map = map();
        let mut config = config();
        let t = NewTicket {
            source: "jsm".into(),
            customer: "riga-bakery".into(),
            requester: Some("it@riga-bakery.example".into()),
            title: "Renewal: bank of riga-bakery low".into(),
            text: "Suggest a new TIMEBANK-10H.".into(),
            tag: "prepaid-renewal".into(),
        };
        let key = "renewal:riga-bakery:bank:low";
        {
            let c = Mapped {
                config: &config,
                map: &map,
            };
            assert!(matches!(
                c.create_ticket(key, &t),
                Err(ConnectorError::Permanent(m)) if m.contains("renewal_project")
            ));
        }
        config.renewal_project = Some("SD".into());
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let find = c.find_ticket(key, &t).unwrap();
        assert_eq!(
            (find.method, find.url.as_str()),
            (
                HttpMethod::Post,
                "https://example.atlassian.net/rest/api/3/search/jql"
            )
        );
        let body: Value = serde_json::from_slice(&find.body).unwrap();
        assert_eq!(
            body,
            json!({"jql": "project = \"SD\" AND labels = \"prepaid-renewal\" ORDER BY created DESC",
                   "fields": ["summary"], "maxResults": 100})
        );
        let create = c.create_ticket(key, &t).unwrap();
        assert_eq!(create.url, "https://example.atlassian.net/rest/api/3/issue");
        let body: Value = serde_json::from_slice(&create.body).unwrap();
        assert_eq!(body["fields"]["project"], json!({"key": "SD"}));
        assert_eq!(body["fields"]["issuetype"], json!({"name": "Task"}));
        assert_eq!(
            body["fields"]["summary"],
            "Renewal: bank of riga-bakery low [contract-bridge renewal:riga-bakery:bank:low]"
        );
        assert_eq!(body["fields"]["labels"], json!(["prepaid-renewal"]));
        assert_eq!(body["fields"]["description"]["type"], "doc");
        assert_eq!(
            body["fields"]["description"]["content"][0]["content"][0]["text"],
            "Suggest a new TIMEBANK-10H."
        );
        let found = answer(
            200,
            json!({"issues": [
            {"key": "SD-7", "fields": {"summary": "x [contract-bridge renewal:riga-bakery:bank:low-2]"}},
            {"key": "SD-9", "fields": {"summary": body["fields"]["summary"]}},
        ], "isLast": true}),
        );
        assert_eq!(
            c.read_found_ticket(key, &found).unwrap().as_deref(),
            Some("SD-9")
        );
        assert_eq!(
            c.read_found_ticket(key, &answer(200, json!({"issues": [], "isLast": true})))
                .unwrap(),
            None
        );
        let created = answer(201, json!({"id": "10042", "key": "SD-42", "self": "…"}));
        assert_eq!(c.read_created_ticket(&created).unwrap(), "SD-42");
    }

    #[test]
    fn a_webhook_is_checked_with_hmac_sha256_over_the_body() {
        let (config, map) = (config(), map());
        let c = Mapped {
            config: &config,
            map: &map,
        };
        let body = br#"{"timestamp":1783674000000,"webhookEvent":"jira:issue_updated","issue":{"id":"10001","key":"SD-42"}}"#;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s").unwrap();
        mac.update(body);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let h = vec![
            ("X-Hub-Signature".to_owned(), sig),
            (
                "X-Atlassian-Webhook-Identifier".to_owned(),
                "w-1".to_owned(),
            ),
        ];
        assert_eq!(c.webhook(&h, body, "s").unwrap().tickets, ["SD-42"]);
        assert_eq!(
            c.webhook(&h, body, "t").unwrap_err(),
            WebhookRefusal::BadSignature
        );
        // A deleted issue is announced as such, not read again.
        let body = br#"{"timestamp":1783674000000,"webhookEvent":"jira:issue_deleted","issue":{"id":"10001","key":"SD-42"}}"#;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s").unwrap();
        mac.update(body);
        let h = vec![
            (
                "X-Hub-Signature".to_owned(),
                format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
            ),
            (
                "X-Atlassian-Webhook-Identifier".to_owned(),
                "w-2".to_owned(),
            ),
        ];
        let a = c.webhook(&h, body, "s").unwrap();
        assert!(a.tickets.is_empty());
        assert_eq!(a.deleted, ["SD-42"]);
    }
}
