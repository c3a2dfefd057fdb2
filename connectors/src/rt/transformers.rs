//! Request Tracker's REST2 payloads as types, and their conversion to the
//! canonical ticket (the offline format's ticket object).
//!
//! Every answer the connector reads is parsed into one of the structs
//! below before anything is taken from it, and every body it writes is
//! serialized from one. A field the connector asks for (`fields=`) is
//! required unless RT leaves it empty (a ticket without a requestor, a
//! transaction without data); a missing or renamed one is an error that
//! names it (`items[3]: missing field `TimeTaken``), never zero minutes.
//! RT adds `_url`, `type` and `_hyperlinks` beside what is asked, so no
//! shape refuses unknown fields.
//!
//! Where the shapes come from (RT 5's REST2 documentation and the real
//! server, `docs/` of `RT::REST2`):
//!
//! - every id as text (`"id": "38"`), every number too (`"TimeTaken":
//!   "45"`), an unset date as `1970-01-01T00:00:00Z`;
//! - a collection: `{items, page, per_page, count, total, pages}` and
//!   `next_page` (a link) while there is one;
//! - a ticket with `fields=`: the fields asked, `Requestor` as users
//!   (`{id, EmailAddress}` with `fields[Requestor]=EmailAddress`),
//!   `CustomFields` as `[{name, values}]`;
//! - `ticket/{id}/history`: transactions with `Type`, `Created`,
//!   `NewValue`, `TimeTaken`, `Creator` (`{id}`, the login) and `Data`
//!   (a comment's subject);
//! - `POST ticket` answers `{id, type, _url}`; a comment or an update, a
//!   list of messages; an error, `{message}`.

use crate::Result;
use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::helpdesk::{Converted, Id, Mapped, RawTicket, canonical_ticket};
use mapping::Place;

use super::{RtConfig, SYSTEM, UNSET};

crate::documented::documented_shape!(SYSTEM, "as RT documents it");

/// RT's error body.
#[derive(Deserialize)]
pub struct ErrorBody {
    pub message: String,
}

/// A whole number RT writes as text (`"45"`); a number is read the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count(pub i64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let n = match &v {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        n.map(Count)
            .ok_or_else(|| D::Error::custom(format!("a whole number, not {v}")))
    }
}

/// A page of a collection (`tickets`, a history).
#[derive(Deserialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    /// The next page's link, while there is one.
    pub next_page: Option<String>,
}

/// What the sync needs of a listed or read ticket; the rest is kept as
/// sent ([`RawTicket::value`]) for the conversion.
#[derive(Deserialize)]
pub struct Listed {
    pub id: Id,
    #[serde(rename = "LastUpdated")]
    pub last_updated: String,
}

impl Listed {
    pub fn raw(value: Value) -> Result<RawTicket> {
        let t: Listed = read(value.clone(), "a ticket")?;
        Ok(RawTicket {
            id: t.id.0,
            updated_at: t.last_updated,
            value,
        })
    }
}

/// A ticket with the connector's `fields=` (`FIELDS`).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ticket {
    pub subject: String,
    pub priority: String,
    pub created: String,
    /// RT's own SLA deadline; unset (`UNSET`) when none runs.
    pub due: String,
    pub resolved: String,
    /// Empty for a ticket nobody asked.
    pub requestor: Vec<UserRef>,
    pub custom_fields: Vec<CustomField>,
    /// Not among `fields=`, so absent unless RT sends it anyway.
    #[serde(rename = "SLA")]
    pub sla: Option<String>,
}

/// A user: its login (`id`) and, when asked, its address.
#[derive(Deserialize)]
pub struct UserRef {
    pub id: String,
    #[serde(rename = "EmailAddress")]
    pub email_address: Option<String>,
}

#[derive(Deserialize)]
pub struct CustomField {
    pub name: String,
    pub values: Vec<String>,
}

/// A ticket read whole, for its custom fields (a note's tags).
#[derive(Deserialize)]
pub struct WithCustomFields {
    #[serde(rename = "CustomFields")]
    pub custom_fields: Vec<CustomField>,
}

/// A custom field's values.
pub fn custom_field<'a>(fields: &'a [CustomField], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|cf| cf.name == name)
        .flat_map(|cf| cf.values.iter().map(String::as_str))
        .collect()
}

/// A transaction of `ticket/{id}/history` with the fields asked.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Transaction {
    #[serde(rename = "id")]
    pub id: Id,
    #[serde(rename = "Type")]
    pub kind: String,
    pub created: String,
    /// Empty unless the transaction sets a value.
    pub new_value: Option<String>,
    /// Minutes; negative when an agent lowered `TimeWorked`.
    pub time_taken: Count,
    pub creator: UserRef,
    /// A comment's or reply's subject; empty for most others.
    pub data: Option<String>,
}

/// A ticket found by its subject (a renewal's marker).
#[derive(Deserialize)]
pub struct Titled {
    pub id: Id,
    #[serde(rename = "Subject")]
    pub subject: String,
}

/// `POST ticket`: the created ticket.
#[derive(Deserialize)]
pub struct Created {
    pub id: Id,
}

/// `POST ticket/{id}/comment`: an internal comment.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewComment<'a> {
    pub subject: String,
    pub content: &'a str,
    pub content_type: &'static str,
}

/// `PUT ticket/{id}`: a custom field's whole list of values.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomFieldsUpdate {
    pub custom_fields: BTreeMap<String, Vec<String>>,
}

/// `POST ticket`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewTicket<'a> {
    pub queue: &'a str,
    pub subject: String,
    pub content: &'a str,
    pub content_type: &'static str,
    pub custom_fields: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requestor: Option<&'a str>,
}

/// A date RT may leave unset: null then.
fn date(s: &str) -> Value {
    if s == UNSET || s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_owned())
    }
}

/// One work entry, while time taken back is subtracted.
struct Work<'a> {
    tx: &'a Transaction,
    minutes: i64,
    kind: mapping::WorkKind,
    subject: &'a str,
}

impl Mapped<'_, RtConfig> {
    /// The canonical ticket of a listed ticket and its history.
    pub(super) fn canonical(&self, t: &RawTicket, history: &[Transaction]) -> Converted {
        let v: Ticket =
            parse(t.value.clone(), "the ticket").map_err(|e| format!("ticket {}: {e}", t.id))?;
        let requester = v
            .requestor
            .first()
            .map(|r| r.email_address.as_deref().unwrap_or(&r.id))
            .unwrap_or_default();
        let domain = requester.rsplit('@').next().unwrap_or_default();
        let customer = self.map.customers.get(domain).ok_or_else(|| {
            format!("ticket {}: requestor domain `{domain}` has no customer key (add it under the source's `customers`)", t.id)
        })?;
        // RT reads the kind from the entry's subject and the category from
        // a custom field only: another place is refused, not ignored.
        let unsupported = |what: &str, place: &Option<Place>, ok: fn(&Place) -> bool| match place {
            Some(p) if !ok(p) => Err(format!(
                "ticket {}: RT has no such place for the {what} ({p:?}): RT reads it from {}",
                t.id,
                if what == "kind" {
                    "the entry's subject (`comment`)"
                } else {
                    "a custom field"
                }
            )),
            _ => Ok(()),
        };
        unsupported("kind", &self.map.kind_from, |p| matches!(p, Place::Comment))?;
        unsupported("category", &self.map.category_from, |p| {
            matches!(p, Place::Field(_))
        })?;
        let mut states = vec![json!({"at": v.created, "state": "new"})];
        let mut first_response = Value::Null;
        let mut work: Vec<Work> = Vec::new();
        for tx in history {
            if tx.kind == "Status" {
                states.push(json!({"at": tx.created, "state": tx.new_value}));
            }
            if tx.kind == "Correspond" && first_response.is_null() && tx.creator.id != requester {
                first_response = json!(tx.created);
            }
            let minutes = tx.time_taken.0;
            if minutes > 0 {
                let subject = tx.data.as_deref().unwrap_or_default();
                work.push(Work {
                    tx,
                    minutes,
                    kind: self.map.kind_of(subject),
                    subject,
                });
            } else if minutes < 0 {
                // Time taken back: from the latest entries first.
                let mut left = -minutes;
                for w in work.iter_mut().rev() {
                    let take = w.minutes.min(left);
                    w.minutes -= take;
                    left -= take;
                    if left == 0 {
                        break;
                    }
                }
            }
        }
        let work: Vec<Value> = work
            .iter()
            .filter(|w| w.minutes > 0)
            .map(|w| {
                json!({
                    "id": format!("RT-{}-{}", t.id, w.tx.id.0),
                    "at": w.tx.created,
                    "minutes": w.minutes,
                    "agent": w.tx.creator.id,
                    "kind": w.kind,
                    "note": w.subject.trim(),
                })
            })
            .collect();
        let category = custom_field(&v.custom_fields, self.map.field("category", "Category"))
            .first()
            .map_or(Value::Null, |c| json!(c));
        let tags: Vec<&str> = custom_field(&v.custom_fields, self.map.field("tags", "Tags"));
        Ok(canonical_ticket(
            &t.id,
            customer,
            json!({
                "requester": requester,
                "title": v.subject,
                "priority": v.priority,
                "category": category,
                "tags": tags,
                "fields": self.extra_fields(json!({"rt_sla": v.sla, "rt_due": date(&v.due)}), |raw| {
                    match custom_field(&v.custom_fields, raw).as_slice() {
                        [] => Value::Null,
                        [one] => json!(one),
                        many => json!(many),
                    }
                }),
                "created_at": v.created,
                "first_response_at": first_response,
                "resolved_at": date(&v.resolved),
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

    /// A history page as RT 5 answers it (seen on the real server).
    fn history() -> Value {
        json!({"count": 2, "per_page": 100, "total": 2, "pages": 1, "page": 1, "items": [
            {"id": "38", "type": "transaction", "_url": "…", "Type": "Create",
             "Created": "2026-11-23T00:16:35Z", "Field": "", "OldValue": "", "NewValue": "",
             "TimeTaken": "0", "Creator": {"id": "alice@example.com", "type": "user", "_url": "…"},
             "Data": ""},
            {"id": "42", "type": "transaction", "_url": "…", "Type": "Comment",
             "Created": "2026-11-23T00:20:00Z", "Field": "", "OldValue": "", "NewValue": "",
             "TimeTaken": "45", "Creator": {"id": "root", "type": "user", "_url": "…"},
             "Data": "work log"}
        ]})
    }

    #[test]
    fn a_history_reads_as_transactions() {
        let h: Listing<Transaction> = parse(history(), "history").unwrap();
        assert_eq!(h.items[1].time_taken, Count(45));
        assert_eq!(h.items[1].creator.id, "root");
        assert_eq!(h.items[1].data.as_deref(), Some("work log"));
        assert!(h.next_page.is_none());
    }

    #[test]
    fn a_renamed_time_taken_is_an_error_naming_it_not_zero_minutes() {
        let mut v = history();
        rename(&mut v["items"][1], "TimeTaken", "TimeWorked");
        let err = parse::<Listing<Transaction>>(v, "the history")
            .err()
            .unwrap();
        assert_missing(&err, "items[1]", "TimeTaken");
        let mut v = history();
        v["items"][1]["TimeTaken"] = json!("three quarters");
        let err = parse::<Listing<Transaction>>(v, "the history")
            .err()
            .unwrap();
        assert!(
            err.contains("items[1].TimeTaken") && err.contains("three quarters"),
            "{err}"
        );
    }

    #[test]
    fn a_listed_ticket_without_its_id_or_change_time_is_refused_not_skipped() {
        let err = Listed::raw(json!({"id": "7", "Subject": "x"}))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("missing field `LastUpdated`"), "{err}");
        let err = Listed::raw(json!({"LastUpdated": "2026-11-23T00:16:36Z"}))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("missing field `id`"), "{err}");
        let raw = Listed::raw(json!({"id": "7", "LastUpdated": "2026-11-23T00:16:36Z"})).unwrap();
        assert_eq!(
            (raw.id.as_str(), raw.updated_at.as_str()),
            ("7", "2026-11-23T00:16:36Z")
        );
    }

    #[test]
    fn custom_fields_are_read_by_name() {
        let t: WithCustomFields = parse(
            json!({"CustomFields": [
                {"id": "1", "name": "Tags", "type": "customfield", "values": ["vip", "sla-breach"]},
                {"id": "2", "name": "Category", "type": "customfield", "values": []}
            ]}),
            "the ticket",
        )
        .unwrap();
        assert_eq!(
            custom_field(&t.custom_fields, "Tags"),
            ["vip", "sla-breach"]
        );
        assert!(custom_field(&t.custom_fields, "Category").is_empty());
        let err = parse::<WithCustomFields>(
            json!({"CustomFields": [{"id": "1", "title": "Tags", "values": []}]}),
            "the ticket",
        )
        .err()
        .unwrap();
        assert_missing(&err, "CustomFields[0]", "name");
    }
}
