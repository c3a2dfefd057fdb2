//! Jira's payloads as types, and their conversion to the canonical ticket
//! (the offline format's ticket object).
//!
//! Every answer the connector reads is parsed into one of the structs
//! below before anything is taken from it, and every body it writes is
//! serialized from one. A field the connector reads is required unless
//! Jira leaves it out or null (no priority scheme, a hidden address, a
//! worklog without a comment); a missing or renamed one is an error that
//! names it (`issues[0].fields: missing field `created``), never a zero.
//! Atlassian adds fields, so no shape refuses unknown ones. An issue's
//! custom fields are whatever the mapping names: those stay JSON, read
//! as [`FieldValue`].
//!
//! Where the shapes come from (Atlassian's Jira Cloud REST v3 and Jira
//! Service Management Cloud references, as jira.js types them):
//!
//! - `POST /rest/api/3/search/jql`: `{issues, nextPageToken, isLast}`, each
//!   issue `{id, key, fields, changelog}` (`expand=changelog`), the
//!   worklog field inlining the first 20 worklogs;
//! - `GET /rest/api/3/issue/{key}/worklog`: `{startAt, maxResults, total,
//!   worklogs}`, each worklog's `comment` an ADF document and, with
//!   `expand=properties`, its entity properties `[{key, value}]`;
//! - `GET /rest/servicedeskapi/request/{key}/sla`: `{values: [{name,
//!   completedCycles, ongoingCycle}]}`, dates as `{iso8601, …}`;
//! - `GET /rest/servicedeskapi/request/{key}/comment`: `{values: [{body}]}`;
//! - the admin webhook: `{webhookEvent, issue}` or `{webhookEvent, worklog}`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use crate::helpdesk::{Converted, Mapped, SourceMap, canonical_ticket};
use mapping::{Place, WorkKind};

use super::{INLINE_WORKLOGS, JiraConfig, ORGANIZATION_FIELD, SYSTEM};

crate::documented::documented_shape!(SYSTEM, "as Jira documents it");

/// Jira's error body: `{"errorMessages": [..], "errors": {field: message}}`.
#[derive(Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "errorMessages", default)]
    pub messages: Vec<String>,
    #[serde(default)]
    pub errors: Map<String, Value>,
}

/// `POST /rest/api/3/search/jql`. The last page may leave out
/// `nextPageToken` (JRACLOUD-92184), and `isLast` is optional.
#[derive(Deserialize)]
pub struct Search<T> {
    pub issues: Vec<T>,
    #[serde(rename = "nextPageToken")]
    pub next_page_token: Option<String>,
    #[serde(rename = "isLast")]
    pub is_last: Option<bool>,
}

/// An issue: what the connector reads of it, typed, and the whole issue
/// as Jira sent it, for the custom fields a mapping names.
#[derive(Clone, Debug)]
pub struct Issue {
    pub known: IssueShape,
    pub raw: Value,
}

impl<'de> Deserialize<'de> for Issue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        let known = serde_path_to_error::deserialize(&raw).map_err(D::Error::custom)?;
        Ok(Issue { known, raw })
    }
}

impl Issue {
    /// A field as Jira sent it; null when the issue has none.
    pub fn field(&self, name: &str) -> &Value {
        self.raw
            .get("fields")
            .and_then(|f| f.get(name))
            .unwrap_or(&Value::Null)
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct IssueShape {
    pub key: String,
    pub fields: Fields,
    pub changelog: Changelog,
}

/// The fields the connector asks for by name (`fields` of the search).
#[derive(Clone, Debug, Deserialize)]
pub struct Fields {
    pub summary: String,
    pub status: Named,
    /// Null where the project has no priority scheme.
    pub priority: Option<Named>,
    /// Null for an anonymous request.
    pub reporter: Option<UserRef>,
    pub created: String,
    pub updated: String,
    /// Null until resolved.
    pub resolutiondate: Option<String>,
    pub labels: Vec<String>,
    /// Absent where time tracking is off.
    pub worklog: Option<Worklogs>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Named {
    pub name: String,
}

/// A user; the address is left out under the user's privacy settings.
#[derive(Clone, Debug, Deserialize)]
pub struct UserRef {
    #[serde(rename = "emailAddress")]
    pub email_address: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Changelog {
    pub histories: Vec<ChangeGroup>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ChangeGroup {
    pub created: String,
    pub items: Vec<ChangeItem>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ChangeItem {
    pub field: String,
    /// Null where the field was empty before (or after).
    #[serde(rename = "fromString")]
    pub from_string: Option<String>,
    #[serde(rename = "toString")]
    pub to_string: Option<String>,
}

/// A page of worklogs (inline in the issue, or the issue's worklog list).
#[derive(Clone, Debug, Deserialize)]
pub struct Worklogs {
    pub total: u64,
    pub worklogs: Vec<Worklog>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Worklog {
    pub id: String,
    /// The worklog's author; kept as null where Jira names none.
    pub author: Option<Author>,
    pub started: String,
    /// Jira writes an integer; read as a number of any form.
    #[serde(rename = "timeSpentSeconds")]
    pub time_spent_seconds: f64,
    /// ADF in API v3, text in v2; absent when none was written.
    pub comment: Option<Comment>,
    /// With `expand=properties` only.
    pub properties: Option<Vec<Property>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Author {
    #[serde(rename = "displayName")]
    pub display_name: Option<String>,
}

/// An entity property: its value is whatever the app that set it wrote.
#[derive(Clone, Debug, Deserialize)]
pub struct Property {
    pub key: String,
    pub value: Value,
}

/// A comment: API v3 writes Atlassian Document Format, v2 plain text.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Comment {
    Text(String),
    Doc(AdfNode),
}

/// An ADF node: its text (a `text` node) and its children.
#[derive(Clone, Debug, Deserialize)]
pub struct AdfNode {
    pub text: Option<String>,
    /// Leaf nodes have none.
    #[serde(default)]
    pub content: Vec<AdfNode>,
}

impl Comment {
    /// The comment's text: an ADF document's `text` nodes, in order.
    pub fn text(&self) -> String {
        fn walk(n: &AdfNode, out: &mut Vec<String>) {
            out.extend(n.text.clone());
            for c in &n.content {
                walk(c, out);
            }
        }
        match self {
            Comment::Text(s) => s.clone(),
            Comment::Doc(d) => {
                let mut parts = Vec::new();
                walk(d, &mut parts);
                parts.join(" ")
            }
        }
    }
}

/// A custom field's value as text: a string, an option (`value`), a named
/// object (`name`), a request type (`requestType.name`) or a number.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    Text(String),
    Number(serde_json::Number),
    Option {
        value: String,
    },
    Named {
        name: String,
    },
    RequestType {
        #[serde(rename = "requestType")]
        request_type: Named,
    },
}

impl FieldValue {
    pub fn text(v: &Value) -> Option<String> {
        Some(match FieldValue::deserialize(v).ok()? {
            FieldValue::Text(s) => s,
            FieldValue::Number(n) => n.to_string(),
            FieldValue::Option { value } => value,
            FieldValue::Named { name } => name,
            FieldValue::RequestType { request_type } => request_type.name,
        })
    }
}

/// A JSM organization of a request (its organizations field is a list).
#[derive(Deserialize)]
pub struct Organization {
    pub name: String,
}

/// `GET /rest/servicedeskapi/request/{key}/sla`.
#[derive(Deserialize)]
pub struct Sla {
    pub values: Vec<SlaMetric>,
}

#[derive(Deserialize)]
pub struct SlaMetric {
    pub name: String,
    #[serde(rename = "completedCycles")]
    pub completed_cycles: Vec<CompletedCycle>,
    /// None while no cycle runs.
    #[serde(rename = "ongoingCycle")]
    pub ongoing_cycle: Option<OngoingCycle>,
}

#[derive(Deserialize)]
pub struct CompletedCycle {
    #[serde(rename = "stopTime")]
    pub stop_time: Date,
    pub breached: bool,
}

#[derive(Deserialize)]
pub struct OngoingCycle {
    pub breached: bool,
    #[serde(rename = "breachTime")]
    pub breach_time: Option<Date>,
}

/// JSM's date: `{iso8601, jira, friendly, epochMillis}`.
#[derive(Deserialize)]
pub struct Date {
    pub iso8601: String,
}

/// `GET /rest/servicedeskapi/request/{key}/comment`.
#[derive(Deserialize)]
pub struct Comments {
    pub values: Vec<RequestComment>,
}

/// A request comment: JSM writes its body as text.
#[derive(Deserialize)]
pub struct RequestComment {
    pub body: String,
}

/// `GET /rest/api/3/issue/{key}?fields=labels`.
#[derive(Deserialize)]
pub struct Labelled {
    pub fields: Labels,
}

#[derive(Deserialize)]
pub struct Labels {
    pub labels: Vec<String>,
}

/// An issue of a search for a marker (`fields: ["summary"]`).
#[derive(Deserialize)]
pub struct Summarized {
    pub key: String,
    pub fields: Summary,
}

#[derive(Deserialize)]
pub struct Summary {
    pub summary: String,
}

/// `POST /rest/api/3/issue`: the created issue.
#[derive(Deserialize)]
pub struct Created {
    pub key: String,
}

/// An admin webhook: an issue event names the issue, a worklog event the
/// worklog's issue by id.
#[derive(Deserialize)]
pub struct Webhook {
    #[serde(rename = "webhookEvent")]
    pub event: Option<String>,
    pub issue: Option<WebhookIssue>,
    pub worklog: Option<WebhookWorklog>,
}

#[derive(Deserialize)]
pub struct WebhookIssue {
    pub key: String,
}

#[derive(Deserialize)]
pub struct WebhookWorklog {
    #[serde(rename = "issueId")]
    pub issue_id: String,
}

/// The search's body.
#[derive(Serialize)]
pub struct SearchRequest<'a> {
    pub jql: String,
    pub fields: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expand: Option<&'static str>,
    #[serde(rename = "maxResults")]
    pub max_results: u32,
    #[serde(rename = "nextPageToken", skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<&'a str>,
}

/// `POST /rest/servicedeskapi/request/{key}/comment`: internal unless public.
#[derive(Serialize)]
pub struct NewComment {
    pub body: String,
    pub public: bool,
}

/// `PUT /rest/api/3/issue/{key}` adding one label.
#[derive(Serialize)]
pub struct AddLabel<'a> {
    pub update: LabelUpdate<'a>,
}

#[derive(Serialize)]
pub struct LabelUpdate<'a> {
    pub labels: [LabelOp<'a>; 1],
}

#[derive(Serialize)]
pub struct LabelOp<'a> {
    pub add: &'a str,
}

impl<'a> AddLabel<'a> {
    pub fn new(label: &'a str) -> Self {
        AddLabel {
            update: LabelUpdate {
                labels: [LabelOp { add: label }],
            },
        }
    }
}

/// `POST /rest/api/3/issue`.
#[derive(Serialize)]
pub struct NewIssue<'a> {
    pub fields: NewIssueFields<'a>,
}

#[derive(Serialize)]
pub struct NewIssueFields<'a> {
    pub project: KeyRef,
    pub issuetype: NameRef<'a>,
    pub summary: String,
    pub description: AdfDoc,
    pub labels: [&'a str; 1],
}

#[derive(Serialize)]
pub struct KeyRef {
    pub key: String,
}

#[derive(Serialize)]
pub struct NameRef<'a> {
    pub name: &'a str,
}

/// An ADF document of plain paragraphs.
#[derive(Serialize)]
pub struct AdfDoc {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub version: u32,
    pub content: Vec<AdfBlock>,
}

#[derive(Serialize)]
pub struct AdfBlock {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub content: Vec<AdfText>,
}

#[derive(Serialize)]
pub struct AdfText {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
}

impl AdfDoc {
    pub fn paragraphs(texts: impl IntoIterator<Item = String>) -> Self {
        AdfDoc {
            kind: "doc",
            version: 1,
            content: texts
                .into_iter()
                .map(|text| AdfBlock {
                    kind: "paragraph",
                    content: vec![AdfText { kind: "text", text }],
                })
                .collect(),
        }
    }
}

/// Jira's `2026-10-01T09:10:00.000+0300` as RFC 3339.
pub fn rfc3339(s: &str) -> Value {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .map_or(Value::Null, |d| Value::String(d.to_rfc3339()))
}

/// A worklog property's value (`expand=properties`): the value when it is
/// text, else its `member` (by default `value`).
fn worklog_property(w: &Worklog, key: &str, member: Option<&str>) -> Option<String> {
    let value = &w.properties.as_ref()?.iter().find(|p| p.key == key)?.value;
    match value {
        Value::String(s) => Some(s.clone()),
        _ => FieldValue::text(value.get(member.unwrap_or("value"))?),
    }
}

/// What one ticket's own answers say.
pub struct Details {
    pub sla: Sla,
    /// The issue's worklog list, where it was read on its own.
    pub worklogs: Option<Vec<Worklog>>,
}

impl Mapped<'_, JiraConfig> {
    /// Whether the issue's worklogs are read on their own: more than the
    /// search inlines, or the kind is a worklog property (the search does
    /// not expand worklog properties).
    pub(super) fn needs_worklog(&self, issue: &IssueShape) -> bool {
        let total = issue.fields.worklog.as_ref().map_or(0, |w| w.total);
        total > INLINE_WORKLOGS
            || (total > 0 && matches!(self.map.kind_from, Some(Place::WorklogProperty { .. })))
    }

    /// A value the issue itself holds at `place` (not a worklog's).
    fn issue_place(&self, place: &Place, issue: &Issue) -> Result<Option<String>, String> {
        Ok(match place {
            Place::Field(field) => FieldValue::text(issue.field(field)),
            Place::LabelPrefix(prefix) => {
                SourceMap::label_value(issue.known.fields.labels.iter().map(String::as_str), prefix)
                    .map(str::to_owned)
            }
            Place::RequestType => FieldValue::text(issue.field(self.request_type_field())),
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
    fn kind(&self, w: &Worklog, comment: &str, issue: &Issue) -> Result<WorkKind, String> {
        let found = match &self.map.kind_from {
            None | Some(Place::Comment) => None,
            Some(Place::WorklogProperty { key, member }) => {
                worklog_property(w, key, member.as_deref())
            }
            Some(place) => self.issue_place(place, issue)?,
        };
        Ok(found
            .and_then(|v| self.map.kind_named(&v))
            .unwrap_or_else(|| self.map.kind_of(comment)))
    }

    /// The canonical ticket of an issue and its details.
    pub(super) fn canonical(&self, issue: &Issue, d: &Details) -> Converted {
        let key = issue.known.key.as_str();
        let f = &issue.known.fields;
        let organization_field = self.map.field("organization", ORGANIZATION_FIELD);
        let organizations: Option<Vec<Organization>> = parse(
            issue.field(organization_field).clone(),
            "the organizations field",
        )
        .map_err(|e| format!("issue {key}: {organization_field}: {e}"))?;
        // No organization matches no customer key: reported as the empty one.
        let organization = organizations
            .as_ref()
            .and_then(|o| o.first())
            .map_or("", |o| o.name.as_str());
        let customer = self.map.customers.get(organization).ok_or_else(|| {
            format!("issue {key}: organization `{organization}` has no customer key (add it under the source's `customers`)")
        })?;
        let created = rfc3339(&f.created);
        let mut changes: Vec<(&str, Option<&str>, Option<&str>)> = issue
            .known
            .changelog
            .histories
            .iter()
            .flat_map(|h| {
                h.items.iter().filter(|i| i.field == "status").map(|i| {
                    (
                        h.created.as_str(),
                        i.from_string.as_deref(),
                        i.to_string.as_deref(),
                    )
                })
            })
            .collect();
        changes.sort_by(|a, b| a.0.cmp(b.0));
        let first = changes
            .first()
            .map_or(Some(f.status.name.as_str()), |c| c.1);
        let mut states = vec![json!({"at": created, "state": first})];
        states.extend(
            changes
                .iter()
                .map(|(at, _, to)| json!({"at": rfc3339(at), "state": to})),
        );
        // The first response as JSM's own SLA saw it; the cycles are kept as a cross-check.
        let mut first_response = Value::Null;
        let mut cycles = Vec::new();
        for metric in &d.sla.values {
            let name = metric.name.as_str();
            for c in &metric.completed_cycles {
                if name == "Time to first response" && first_response.is_null() {
                    first_response = rfc3339(&c.stop_time.iso8601);
                }
                cycles.push(
                    json!({"metric": name, "breached": c.breached, "stop": c.stop_time.iso8601}),
                );
            }
            if let Some(c) = &metric.ongoing_cycle {
                cycles.push(json!({"metric": name, "breached": c.breached, "breach_time": c.breach_time.as_ref().map(|b| &b.iso8601)}));
            }
        }
        // The list read on its own, unless it came back empty: the inline ones.
        let logs: &[Worklog] = match &d.worklogs {
            Some(w) if !w.is_empty() => w,
            _ => f.worklog.as_ref().map_or(&[], |w| &w.worklogs),
        };
        let mut work: Vec<Value> = Vec::with_capacity(logs.len());
        for w in logs {
            let comment = w.comment.as_ref().map(Comment::text).unwrap_or_default();
            let kind = self
                .kind(w, &comment, issue)
                .map_err(|e| format!("issue {key}: {e}"))?;
            let mut entry = json!({
                "id": format!("{key}-W{}", w.id),
                "at": rfc3339(&w.started),
                "minutes": w.time_spent_seconds / 60.0,
                "agent": w.author.as_ref().and_then(|a| a.display_name.as_ref()),
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
                .issue_place(place, issue)
                .map_err(|e| format!("issue {key}: {e}"))?,
        };
        let requester = match self.map.fields.get("requester") {
            // A user field by its address, else as any field's text.
            Some(r) => {
                let v = issue.field(r);
                UserRef::deserialize(v)
                    .ok()
                    .and_then(|u| u.email_address)
                    .or_else(|| FieldValue::text(v))
            }
            None => f.reporter.as_ref().and_then(|r| r.email_address.clone()),
        };
        Ok(canonical_ticket(
            key,
            customer,
            json!({
                "requester": requester,
                "title": f.summary,
                "priority": f.priority.as_ref().map(|p| &p.name),
                "category": category,
                "tags": f.labels,
                "fields": self.extra_fields(json!({"jsm_sla": cycles}), |raw| {
                    // An option field by its value, any other as Jira sent it.
                    let v = issue.field(raw);
                    match FieldValue::deserialize(v) {
                        Ok(FieldValue::Option { value }) => json!(value),
                        _ => v.clone(),
                    }
                }),
                "created_at": created,
                "first_response_at": first_response,
                "resolved_at": f.resolutiondate.as_deref().map_or(Value::Null, rfc3339),
                "states": states,
                "work": work,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_missing, rename};

    fn fixture(name: &str) -> Value {
        crate::fixture("jira", name)
    }

    #[test]
    fn the_fixtures_read_as_their_types() {
        let search: Search<Issue> = parse(fixture("search.json"), "search").unwrap();
        assert_eq!(search.next_page_token.as_deref(), Some("CAEaAggD"));
        let issue = &search.issues[0];
        assert_eq!(issue.known.key, "SD-2");
        assert_eq!(
            FieldValue::text(issue.field("customfield_10100")).as_deref(),
            Some("network")
        );
        let sla: Sla = parse(fixture("sla.json"), "sla").unwrap();
        assert_eq!(sla.values[0].completed_cycles.len(), 1);
        let logs: Worklogs = parse(fixture("worklogs.json"), "worklogs").unwrap();
        let w = &logs.worklogs[0];
        assert_eq!(w.time_spent_seconds, 3000.0);
        assert_eq!(
            w.comment.as_ref().unwrap().text(),
            "Replaced the cash register's switch"
        );
    }

    #[test]
    fn a_renamed_time_spent_is_an_error_not_zero_minutes() {
        let mut v = fixture("worklogs.json");
        rename(&mut v["worklogs"][0], "timeSpentSeconds", "timeSpentSecs");
        let err = parse::<Worklogs>(v, "the worklogs").err().unwrap();
        assert_missing(&err, "worklogs[0]", "timeSpentSeconds");
    }

    #[test]
    fn an_issue_without_its_created_date_is_refused_naming_the_field() {
        let mut v = fixture("search.json");
        v["issues"][0]["fields"]
            .as_object_mut()
            .unwrap()
            .remove("created");
        let err = parse::<Search<Issue>>(v, "the issue search").err().unwrap();
        assert_missing(&err, "issues[0]", "created");
    }

    #[test]
    fn a_completed_cycle_without_its_verdict_is_refused() {
        let mut v = fixture("sla.json");
        v["values"][0]["completedCycles"][0]
            .as_object_mut()
            .unwrap()
            .remove("breached");
        let err = parse::<Sla>(v, "the SLA").err().unwrap();
        assert!(
            err.contains("values[0].completedCycles[0]") && err.contains("`breached`"),
            "{err}"
        );
    }

    #[test]
    fn a_field_reads_as_text_by_its_shape() {
        let text = |v: Value| FieldValue::text(&v);
        assert_eq!(text(json!("a")).as_deref(), Some("a"));
        assert_eq!(text(json!(7)).as_deref(), Some("7"));
        assert_eq!(
            text(json!({"value": "opt", "name": "n"})).as_deref(),
            Some("opt")
        );
        assert_eq!(text(json!({"value": 1, "name": "n"})).as_deref(), Some("n"));
        assert_eq!(
            text(json!({"requestType": {"name": "Outage"}})).as_deref(),
            Some("Outage")
        );
        assert_eq!(text(json!([1])), None);
        assert_eq!(text(Value::Null), None);
    }

    #[test]
    fn the_writes_serialize_as_jira_documents_them() {
        assert_eq!(
            serde_json::to_value(AddLabel::new("sla-breach")).unwrap(),
            json!({"update": {"labels": [{"add": "sla-breach"}]}})
        );
        assert_eq!(
            serde_json::to_value(AdfDoc::paragraphs(["a".to_owned()])).unwrap(),
            json!({"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "a"}]}]})
        );
        let search = SearchRequest {
            jql: "project = SD".into(),
            fields: vec!["summary".into()],
            expand: None,
            max_results: 100,
            next_page_token: Some("t"),
        };
        assert_eq!(
            serde_json::to_value(search).unwrap(),
            json!({"jql": "project = SD", "fields": ["summary"], "maxResults": 100, "nextPageToken": "t"})
        );
    }
}
