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
//!
//! This module builds the requests and says which answer is which;
//! [`transformers`] holds every payload as a type and turns an issue and
//! its answers into its canonical snapshot.

mod transformers;

use crate::Result;
use crate::helpdesk::answered_all;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounting::{encode, status_error};
use crate::helpdesk::{
    Announcement, Converted, FoundNote, HelpdeskApi, Mapped, NoteLookup, NotePart, Page, RawTicket,
    RestApi, WebhookRefusal, header, note_marker, ticket_title, verify_hub_signature,
};
use crate::{ConnectorError, HttpMethod, HttpRequest, HttpResponse, NewTicket, Note, Secret};
use mapping::Place;
use transformers::{
    AddLabel, AdfDoc, Comments, Created, Details, ErrorBody, Issue, KeyRef, Labelled, NameRef,
    NewComment, NewIssue, NewIssueFields, Search, SearchRequest, Summarized, Webhook, Worklogs,
    parse, read, rfc3339,
};

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
    #[serde(default = "crate::defaults::per_second::<10>")]
    pub requests_per_second: u32,
    #[serde(default = "crate::defaults::timeout_ms::<30_000>")]
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

crate::defaults::defaults! {
    default_authorize_url = "https://auth.atlassian.com/authorize";
    default_resources_url = "https://api.atlassian.com/oauth/token/accessible-resources";
    default_jira_scopes: Vec<String> = ["read:jira-work", "write:jira-work", "offline_access"]
        .map(str::to_owned)
        .to_vec();
    default_token_url = "https://auth.atlassian.com/oauth/token";
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

crate::defaults::defaults! {
    default_issue_type = "Task";
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

/// The answer's JSON (null for an empty body), or why the call failed.
fn check(r: &HttpResponse) -> Result<Value> {
    if !(200..300).contains(&r.status) {
        let said = serde_json::from_str::<ErrorBody>(&r.body).ok().map(|e| {
            let mut parts = e.messages;
            parts.extend(
                e.errors
                    .iter()
                    .map(|(k, m)| format!("{k}: {}", m.as_str().unwrap_or_default())),
            );
            parts
        });
        let m = match said {
            Some(parts) if !parts.is_empty() => parts.join("; "),
            _ => r.body.chars().take(200).collect(),
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

/// The raw ticket of an issue, keyed by its key.
fn issue_ticket(issue: Issue) -> RawTicket {
    RawTicket {
        id: issue.known.key.clone(),
        // A date Jira did not write as documented orders as the earliest.
        updated_at: rfc3339(&issue.known.fields.updated)
            .as_str()
            .unwrap_or("")
            .to_owned(),
        value: issue.raw,
    }
}

/// A batch's issue, typed again from what the batch carries.
fn issue_of(t: &RawTicket) -> Result<Issue, String> {
    parse(t.value.clone(), "an issue")
}

impl RestApi for Mapped<'_, JiraConfig> {
    fn base(&self) -> String {
        self.url.trim_end_matches('/').to_owned()
    }

    fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }
}

impl Mapped<'_, JiraConfig> {
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

    fn renewal_project(&self) -> Result<String> {
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
}

impl crate::accounting::TokenGrant for Mapped<'_, JiraConfig> {
    fn rotates(&self) -> bool {
        true
    }

    fn grant_request(&self, stored: Option<&str>) -> Result<Option<HttpRequest>> {
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

    fn read_grant(&self, r: &HttpResponse) -> Result<crate::accounting::AccessToken> {
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

    fn check(&self) -> Result<(), String> {
        JiraConfig::check(self)
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

    fn changed(&self, cursor: Option<&str>, page: Option<&str>) -> Result<HttpRequest> {
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
        let body = SearchRequest {
            jql,
            fields: self.fields(),
            expand: Some("changelog"),
            max_results: 100,
            next_page_token: page,
        };
        self.send_json(HttpMethod::Post, "/rest/api/3/search/jql".into(), &body)
    }

    fn read_changed(&self, _page: Option<&str>, r: &HttpResponse) -> Result<Page> {
        let search: Search<Issue> = read(check(r)?, "the issue search")?;
        // The token leads on unless the page says it is the last: `isLast`
        // is optional, and the last page leaves the token out.
        let next = match search.is_last {
            Some(true) => None,
            Some(false) | None => search.next_page_token,
        };
        let tickets = search.issues.into_iter().map(issue_ticket).collect();
        Ok(Page { tickets, next })
    }

    fn ticket(&self, id: &str) -> Result<HttpRequest> {
        Ok(self.get(format!(
            "/rest/api/3/issue/{}?expand=changelog&fields={}",
            encode(id),
            encode(&self.fields().join(","))
        )))
    }

    fn read_ticket(&self, r: &HttpResponse) -> Result<RawTicket> {
        Ok(issue_ticket(read(check(r)?, "the issue")?))
    }

    fn details(&self, tickets: &[RawTicket]) -> Result<Vec<HttpRequest>> {
        let mut out = Vec::new();
        for t in tickets {
            let issue = issue_of(t).map_err(ConnectorError::Permanent)?;
            out.push(self.get(format!(
                "/rest/servicedeskapi/request/{}/sla",
                encode(&t.id)
            )));
            if self.needs_worklog(&issue.known) {
                // `expand=properties`: each worklog with its entity
                // properties (Jira REST v3 "Get issue worklogs").
                out.push(self.get(format!(
                    "/rest/api/3/issue/{}/worklog?maxResults=5000&expand=properties",
                    encode(&t.id)
                )));
            }
        }
        Ok(out)
    }

    fn convert(&self, tickets: &[RawTicket], details: &[HttpResponse]) -> Result<Vec<Converted>> {
        let issues: Vec<Issue> = tickets
            .iter()
            .map(issue_of)
            .collect::<Result<_, _>>()
            .map_err(ConnectorError::Permanent)?;
        let asked = issues
            .iter()
            .map(|i| 1 + usize::from(self.needs_worklog(&i.known)))
            .sum::<usize>();
        answered_all(SYSTEM, asked, details)?;
        // An answer that is not JSON fails the batch; one of another
        // shape fails its issue only.
        let mut answers = details.iter();
        let mut out = Vec::new();
        for issue in &issues {
            let key = &issue.known.key;
            let sla = answers.next().map(check).transpose()?;
            let worklogs = if self.needs_worklog(&issue.known) {
                answers.next().map(check).transpose()?
            } else {
                None
            };
            let details = (|| {
                Ok::<_, String>(Details {
                    sla: parse(sla.unwrap_or_default(), "the request's SLA")?,
                    worklogs: match worklogs {
                        Some(w) => Some(parse::<Worklogs>(w, "the worklogs")?.worklogs),
                        None => None,
                    },
                })
            })();
            out.push(match details {
                Ok(d) => self.canonical(issue, &d),
                Err(e) => Err(format!("issue {key}: {e}")),
            });
        }
        Ok(out)
    }

    fn find_note(&self, note: &Note) -> Result<Vec<HttpRequest>> {
        Ok(vec![
            self.get(format!(
                "/rest/servicedeskapi/request/{}/comment?public=false&internal=true&limit=100",
                encode(&note.ticket)
            )),
            self.get(format!(
                "/rest/api/3/issue/{}?fields=labels",
                encode(&note.ticket)
            )),
        ])
    }

    fn read_found_note(
        &self,
        key: &str,
        note: &Note,
        answers: &[HttpResponse],
    ) -> Result<NoteLookup> {
        let [comments, issue] = answers else {
            return Err(ConnectorError::Transient(format!(
                "{SYSTEM}: the note lookup is incomplete"
            )));
        };
        let marker = note_marker(key);
        let comments: Comments = read(check(comments)?, "the request's comments")?;
        let comment = comments.values.iter().any(|c| c.body.contains(&marker));
        let issue: Labelled = read(check(issue)?, "the issue's labels")?;
        let tag = issue.fields.labels.contains(&note.tag);
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
    ) -> Result<Vec<(NotePart, HttpRequest)>> {
        let mut out = Vec::new();
        if !found.comment {
            let comment = NewComment {
                body: format!("{}\n\n{}", note.text, note_marker(key)),
                public: false,
            };
            out.push((
                NotePart::Comment,
                self.send_json(
                    HttpMethod::Post,
                    format!(
                        "/rest/servicedeskapi/request/{}/comment",
                        encode(&note.ticket)
                    ),
                    &comment,
                )?,
            ));
        }
        if !found.tag {
            out.push((
                NotePart::Tag,
                self.send_json(
                    HttpMethod::Put,
                    format!("/rest/api/3/issue/{}", encode(&note.ticket)),
                    &AddLabel::new(&note.tag),
                )?,
            ));
        }
        Ok(out)
    }

    fn read_added(&self, r: &HttpResponse) -> Result<()> {
        check(r).map(|_| ())
    }

    fn find_ticket(&self, _key: &str, ticket: &NewTicket) -> Result<HttpRequest> {
        // A label matches exactly where a text search would split the
        // marker into words; the summaries are checked for the marker.
        let jql = format!(
            "project = \"{}\" AND labels = \"{}\" ORDER BY created DESC",
            self.renewal_project()?,
            ticket.tag.replace('"', "")
        );
        let body = SearchRequest {
            jql,
            fields: vec!["summary".into()],
            expand: None,
            max_results: 100,
            next_page_token: None,
        };
        self.send_json(HttpMethod::Post, "/rest/api/3/search/jql".into(), &body)
    }

    fn read_found_ticket(&self, key: &str, r: &HttpResponse) -> Result<Option<String>> {
        let marker = note_marker(key);
        let search: Search<Summarized> = read(check(r)?, "the issue search")?;
        Ok(search
            .issues
            .into_iter()
            .find(|i| i.fields.summary.contains(&marker))
            .map(|i| i.key))
    }

    fn create_ticket(&self, key: &str, ticket: &NewTicket) -> Result<HttpRequest> {
        let issue = NewIssue {
            fields: NewIssueFields {
                project: KeyRef {
                    key: self.renewal_project()?,
                },
                issuetype: NameRef {
                    name: &self.renewal_issue_type,
                },
                summary: ticket_title(key, ticket),
                description: AdfDoc::paragraphs([ticket.text.clone(), note_marker(key)]),
                labels: [&ticket.tag],
            },
        };
        self.send_json(HttpMethod::Post, "/rest/api/3/issue".into(), &issue)
    }

    fn read_created_ticket(&self, r: &HttpResponse) -> Result<String> {
        let created: Created = read(check(r)?, "the created issue")?;
        Ok(created.key)
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
        let hook: Webhook = parse(v, "the webhook's body").map_err(WebhookRefusal::Malformed)?;
        let key = match (hook.issue, hook.worklog) {
            (Some(issue), _) => issue.key,
            (None, Some(worklog)) => worklog.issue_id,
            (None, None) => {
                return Err(WebhookRefusal::Malformed(
                    "no issue.key or worklog.issueId in the body".into(),
                ));
            }
        };
        Ok(if hook.event.as_deref() == Some("jira:issue_deleted") {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpdesk::SourceMap;
    use crate::testing::{answer, first_converted, hub_signature};
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
        crate::testing::fixture_answer("jira", name)
    }

    /// The map reading an entry's kind from its `work-kind` property.
    fn worklog_kind_map() -> SourceMap {
        let mut map = map();
        map.kind_from = Some(Place::WorklogProperty {
            key: "work-kind".into(),
            member: None,
        });
        map
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
        let c = Mapped::new(&config, &map);
        let page = c.read_changed(None, &fixture("search.json")).unwrap();
        assert_eq!(page.next.as_deref(), Some("CAEaAggD"));
        let details = c.details(&page.tickets).unwrap();
        assert_eq!(details.len(), 1, "the SLA only: the worklogs came inline");
        let v = first_converted(&c, &page.tickets, &[fixture("sla.json")]);
        assert_eq!(v["customer"], "riga-bakery");
        assert_eq!(v["category"], "network");
        assert_eq!(v["priority"], "Medium");
        assert_eq!(v["work"][0]["minutes"], 50.0);
        assert_eq!(v["states"][1]["state"], "In Progress");
        assert_eq!(v["first_response_at"], "2026-10-06T11:30:00+03:00");
        assert_eq!(v["fields"]["jsm_sla"][0]["breached"], false);
    }

    #[test]
    fn a_worklog_read_wrong_fails_its_issue_not_as_zero_minutes() {
        let config = config();
        let map = worklog_kind_map();
        let c = Mapped::new(&config, &map);
        let page = c.read_changed(None, &fixture("search.json")).unwrap();
        let renamed = fixture("worklogs.json")
            .body
            .replace("\"timeSpentSeconds\"", "\"timeSpent_seconds\"");
        let worklogs = answer(200, serde_json::from_str(&renamed).unwrap());
        let converted = c
            .convert(&page.tickets, &[fixture("sla.json"), worklogs])
            .unwrap();
        let err = converted[0].as_ref().unwrap_err();
        assert!(
            err.starts_with("issue SD-2:") && err.contains("missing field `timeSpentSeconds`"),
            "{err}"
        );
        assert!(
            c.convert(&page.tickets, &[fixture("sla.json")]).is_err(),
            "an answer missing"
        );
    }

    #[test]
    fn a_page_without_is_last_goes_on_by_its_token() {
        let (config, map) = (config(), map());
        let c = Mapped::new(&config, &map);
        let next = |body: Value| c.read_changed(None, &answer(200, body)).unwrap().next;
        assert_eq!(
            next(json!({"issues": [], "nextPageToken": "t2"})).as_deref(),
            Some("t2"),
            "isLast is optional: the token says there is more"
        );
        assert_eq!(
            next(json!({"issues": []})),
            None,
            "the last page has no token"
        );
        assert_eq!(
            next(json!({"issues": [], "nextPageToken": "t2", "isLast": true})),
            None
        );
    }

    /// The worklog list with `expand=properties`: each worklog carries its
    /// entity properties as `[{key, value}]` (Jira Cloud REST v3, "Get
    /// issue worklogs" and "Worklog properties").
    #[test]
    fn the_kind_comes_from_a_worklog_property_a_label_prefix_or_a_field() {
        let config = config();
        let mut map = worklog_kind_map();
        let c = Mapped::new(&config, &map);
        let page = c.read_changed(None, &fixture("search.json")).unwrap();
        let details = c.details(&page.tickets).unwrap();
        assert_eq!(
            details[1].url,
            "https://example.atlassian.net/rest/api/3/issue/SD-2/worklog?maxResults=5000&expand=properties",
            "the search does not expand worklog properties"
        );
        let v = first_converted(
            &c,
            &page.tickets,
            &[fixture("sla.json"), fixture("worklogs.json")],
        );
        assert_eq!(v["work"][0]["kind"], "onsite");
        assert_eq!(v["work"][0]["note"], "Replaced the cash register's switch");
        // Another member of another property.
        map.kind_from = Some(Place::WorklogProperty {
            key: "billing".into(),
            member: Some("kind".into()),
        });
        let c = Mapped::new(&config, &map);
        let v = first_converted(
            &c,
            &page.tickets,
            &[fixture("sla.json"), fixture("worklogs.json")],
        );
        assert_eq!(v["work"][0]["kind"], "phone");

        // A label prefix; the category from the request type.
        map.kind_from = Some(Place::LabelPrefix("kind-".into()));
        map.category_from = Some(Place::RequestType);
        let c = Mapped::new(&config, &map);
        assert!(c.fields().contains(&"customfield_10010".to_owned()));
        let mut page = c.read_changed(None, &fixture("search.json")).unwrap();
        assert_eq!(
            c.details(&page.tickets).unwrap().len(),
            1,
            "inline worklogs do"
        );
        page.tickets[0].value["fields"]["labels"] = json!(["vip", "kind-phone"]);
        page.tickets[0].value["fields"]["customfield_10010"] = json!({"requestType": {"id": "72", "name": "Network outage"}, "currentStatus": {"status": "Resolved"}});
        let v = first_converted(&c, &page.tickets, &[fixture("sla.json")]);
        assert_eq!(v["work"][0]["kind"], "phone");
        assert_eq!(v["category"], "Network outage");

        // No kind where it is configured: a `kinds` word of the comment, else remote.
        page.tickets[0].value["fields"]["labels"] = json!([]);
        let v = first_converted(&c, &page.tickets, &[fixture("sla.json")]);
        assert_eq!(v["work"][0]["kind"], "remote");

        // Zammad's activity is refused for the issue, not guessed.
        map.kind_from = Some(Place::Activity);
        let c = Mapped::new(&config, &map);
        let converted = c.convert(&page.tickets, &[fixture("sla.json")]).unwrap();
        assert!(converted[0].as_ref().unwrap_err().contains("`activity`"));
    }

    #[test]
    fn a_note_adds_only_the_part_that_is_missing() {
        let (config, map) = (config(), map());
        let c = Mapped::new(&config, &map);
        let note = crate::testing::breach_note("jsm", "SD-2", "riga-bakery", "missed");
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
        let (key, t) = crate::testing::renewal_ticket("riga-bakery", "it@riga-bakery.example");
        {
            let c = Mapped::new(&config, &map);
            assert!(matches!(
                c.create_ticket(&key, &t),
                Err(ConnectorError::Permanent(m)) if m.contains("renewal_project")
            ));
        }
        config.renewal_project = Some("SD".into());
        let c = Mapped::new(&config, &map);
        let find = c.find_ticket(&key, &t).unwrap();
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
        let create = c.create_ticket(&key, &t).unwrap();
        assert_eq!(create.url, "https://example.atlassian.net/rest/api/3/issue");
        let body: Value = serde_json::from_slice(&create.body).unwrap();
        assert_eq!(body["fields"]["project"], json!({"key": "SD"}));
        assert_eq!(body["fields"]["issuetype"], json!({"name": "Task"}));
        assert_eq!(
            body["fields"]["summary"],
            "Renewal: card of riga-bakery used up [contract-bridge renewal:riga-bakery:card:used-up]"
        );
        assert_eq!(body["fields"]["labels"], json!(["prepaid-renewal"]));
        assert_eq!(body["fields"]["description"]["type"], "doc");
        assert_eq!(
            body["fields"]["description"]["content"][0]["content"][0]["text"],
            "Suggest a new KLIPPEKORT-10."
        );
        let found = answer(
            200,
            json!({"issues": [
            {"key": "SD-7", "fields": {"summary": "x [contract-bridge renewal:riga-bakery:card:used-up-2]"}},
            {"key": "SD-9", "fields": {"summary": body["fields"]["summary"]}},
        ], "isLast": true}),
        );
        assert_eq!(
            c.read_found_ticket(&key, &found).unwrap().as_deref(),
            Some("SD-9")
        );
        assert_eq!(
            c.read_found_ticket(&key, &answer(200, json!({"issues": [], "isLast": true})))
                .unwrap(),
            None
        );
        let created = answer(201, json!({"id": "10042", "key": "SD-42", "self": "…"}));
        assert_eq!(c.read_created_ticket(&created).unwrap(), "SD-42");
    }

    #[test]
    fn a_webhook_is_checked_with_hmac_sha256_over_the_body() {
        let (config, map) = (config(), map());
        let c = Mapped::new(&config, &map);
        let body = br#"{"timestamp":1783674000000,"webhookEvent":"jira:issue_updated","issue":{"id":"10001","key":"SD-42"}}"#;
        let sig = hub_signature::<hmac::Hmac<sha2::Sha256>>("sha256", b"s", body);
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
        let h = vec![
            (
                "X-Hub-Signature".to_owned(),
                hub_signature::<hmac::Hmac<sha2::Sha256>>("sha256", b"s", body),
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
