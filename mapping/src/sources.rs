//! `sources:`: how one helpdesk's raw fields become canonical tickets.
//!
//! The daemon's configuration says how to reach a helpdesk (address,
//! credentials, rate); the mapping says what its data means, so that an
//! admin changes the meaning in the same reviewed files as the contracts:
//!
//! ```yaml
//! sources:
//!   desk:                          # the source's name in the daemon config
//!     customers:                   # organisation (RT: requestor domain) → customer
//!       "Riga Bakery SIA": riga-bakery
//!     time_unit: 1m                # what one logged unit is worth (Zammad)
//!     kinds:                       # activity type / comment word → work kind
//!       Onsite: onsite
//!     fields:                      # canonical name ← where the helpdesk keeps it
//!       category: category
//!       kind: worklog_property:work-kind   # see [`Place`]
//!       site: customfield_10044    # any other name lands in the ticket's `fields`
//! ```
//!
//! `fields.kind` and `fields.category` name a [`Place`]; `fields.customer`
//! (or its older name `organization`), `fields.requester` and `fields.tags`
//! name a field of the ticket; any other name is copied into the ticket's
//! `fields`.

use std::collections::BTreeMap;

use engine::ticket::WorkKind;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{Diagnostic, Origin, Problem};
use crate::duration::parse_duration;

/// One `sources.<name>` section as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub customers: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub time_unit: Option<Spanned<String>>,
    #[serde(default)]
    pub kinds: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub fields: BTreeMap<String, Spanned<String>>,
}

/// Where a value of a ticket or of one of its time entries is read: what
/// `fields.kind` and `fields.category` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A field of the ticket (Jira: a custom field id such as
    /// `customfield_10100`, or a system field's name; Zammad: an attribute;
    /// RT: a custom field). Written as the field itself, or `field:NAME`.
    Field(String),
    /// A Jira worklog property (`worklog_property:KEY`): the property's
    /// value when it is text, else its `value` member; `KEY/MEMBER` reads
    /// another member.
    WorklogProperty { key: String, member: Option<String> },
    /// The first label (Zammad: tag) that starts with the prefix
    /// (`label:PREFIX`); the rest of it is the value.
    LabelPrefix(String),
    /// The JSM request type's name (`request_type`).
    RequestType,
    /// Words of the time entry's comment (`comment`): the `kinds` word found
    /// in it. Jira's and RT's default for the kind.
    Comment,
    /// The Zammad time accounting type (`activity`). Zammad's default for
    /// the kind.
    Activity,
}

impl Place {
    /// Reads `fields.<name>: TEXT`; an error says what would be valid.
    pub fn parse(text: &str) -> Result<Place, String> {
        let text = text.trim();
        let (head, rest) = match text.split_once(':') {
            Some((h, r)) => (h, Some(r.trim())),
            None => (text, None),
        };
        let need = |what: &str| -> Result<&str, String> {
            rest.filter(|r| !r.is_empty())
                .ok_or_else(|| format!("`{text}` names no {what}: write `{head}:{what}`"))
        };
        let place = match head {
            "worklog_property" => {
                let r = need("property key")?;
                let (key, member) = match r.split_once('/') {
                    Some((k, m)) => (k.to_owned(), Some(m.to_owned())),
                    None => (r.to_owned(), None),
                };
                if key.is_empty() || member.as_deref() == Some("") || key.len() > 255 {
                    return Err(format!(
                        "`{text}` is not a worklog property: write `worklog_property:KEY` or `worklog_property:KEY/MEMBER` (a key of 1 to 255 characters)"
                    ));
                }
                Place::WorklogProperty { key, member }
            }
            "label" => Place::LabelPrefix(need("prefix")?.to_owned()),
            "field" => Place::Field(need("field")?.to_owned()),
            "request_type" if rest.is_none() => Place::RequestType,
            "comment" if rest.is_none() => Place::Comment,
            "activity" if rest.is_none() => Place::Activity,
            _ if rest.is_some() => {
                return Err(format!(
                    "`{head}:` is not a place: use field:NAME, worklog_property:KEY, label:PREFIX, request_type, comment or activity"
                ));
            }
            _ if text.is_empty() => {
                return Err(
                    "the field name is empty: write the helpdesk's field, e.g. `customfield_10100`"
                        .into(),
                );
            }
            _ => Place::Field(text.to_owned()),
        };
        if let Place::Field(f) = &place
            && let Some(n) = f.strip_prefix("customfield_")
            && (n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!(
                "`{f}` is not a Jira custom field id: those are `customfield_` and digits, e.g. `customfield_10100` (a field's name is written without the prefix)"
            ));
        }
        Ok(place)
    }
}

/// What a helpdesk connector needs to know to read one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMap {
    /// The helpdesk's name for a customer (Zammad and Jira: the
    /// organisation; RT: the requestor's e-mail domain) → our customer key.
    pub customers: BTreeMap<String, String>,
    /// Minutes one logged time unit is worth.
    pub minutes_per_unit: Decimal,
    /// An activity type (Zammad) or a word in the entry's comment (Jira,
    /// RT) → the work kind; anything else is `remote`.
    pub kinds: BTreeMap<String, WorkKind>,
    /// Canonical name → the helpdesk's field. `category`, `kind`, `tags`,
    /// `requester` and `customer` (or `organization`) say where those come
    /// from; any other name is copied into the ticket's `fields`, where
    /// rules can read it.
    pub fields: BTreeMap<String, String>,
    /// Where a time entry's kind is read (`fields.kind`); none: the
    /// connector's default (Zammad: the activity; Jira, RT: the comment).
    pub kind_from: Option<Place>,
    /// Where the ticket's billing category is read (`fields.category`);
    /// none: the connector's default (Zammad: the `category` attribute;
    /// Jira: none; RT: the `Category` custom field).
    pub category_from: Option<Place>,
}

/// Canonical names with a meaning of their own in `fields`: not copied.
const SPECIAL: [&str; 7] = [
    "category",
    "tags",
    "organization",
    "customer",
    "requester",
    "kind",
    "request_type",
];

impl SourceMap {
    /// The helpdesk field holding the canonical field `name`, or `default`.
    pub fn field<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        let name = if name == "organization" && !self.fields.contains_key(name) {
            "customer"
        } else {
            name
        };
        self.fields.get(name).map_or(default, String::as_str)
    }

    /// Where the category is read: `category_from`, or a field named
    /// under `fields.category`; none: the connector's default.
    pub fn category_place(&self) -> Option<Place> {
        self.category_from
            .clone()
            .or_else(|| self.fields.get("category").map(|f| Place::Field(f.clone())))
    }

    /// The kind a value read from a place stands for: a `kinds` entry,
    /// else the value itself when it is `remote`, `onsite` or `phone`
    /// (any case); none otherwise.
    pub fn kind_named(&self, value: &str) -> Option<WorkKind> {
        let v = value.trim();
        self.kinds
            .get(v)
            .copied()
            .or_else(|| WorkKind::parse(&v.to_ascii_lowercase()))
    }

    /// The value after `prefix` of the first label that has it.
    pub fn label_value<'a>(
        labels: impl IntoIterator<Item = &'a str>,
        prefix: &str,
    ) -> Option<&'a str> {
        labels
            .into_iter()
            .find_map(|l| l.strip_prefix(prefix).filter(|v| !v.is_empty()))
    }

    /// Fields copied as they are into the ticket's `fields`.
    pub fn extra_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .filter(|(k, _)| !SPECIAL.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The kind of a time entry whose activity or comment is `text`:
    /// an exact activity name first, else the first word found in it.
    pub fn kind_of(&self, text: &str) -> WorkKind {
        self.kinds
            .get(text)
            .or_else(|| {
                self.kinds
                    .iter()
                    .find(|(word, _)| !word.is_empty() && text.contains(word.as_str()))
                    .map(|(_, k)| k)
            })
            .copied()
            .unwrap_or(WorkKind::Remote)
    }
}

impl Default for SourceMap {
    fn default() -> Self {
        SourceMap {
            customers: BTreeMap::new(),
            minutes_per_unit: Decimal::ONE,
            kinds: BTreeMap::new(),
            fields: BTreeMap::new(),
            kind_from: None,
            category_from: None,
        }
    }
}

fn spot<T>(owner: &Origin, key: &str, s: &Spanned<T>) -> Origin {
    let mut o = owner.child(key);
    if s.referenced.line() > 0 {
        o.line = s.referenced.line();
        o.column = s.referenced.column();
    }
    o
}

/// Checks one section against the customers that have a contract.
pub(crate) fn compile_source(
    origin: &Origin,
    raw: &RawSource,
    contracts: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> SourceMap {
    let mut map = SourceMap::default();
    let customers = origin.child("customers");
    if raw.customers.is_empty() {
        diags.push(customers.report(&Problem::NoCustomers));
    }
    for (name, key) in &raw.customers {
        let o = spot(&customers, name, key);
        if contracts.contains(&key.value.as_str()) {
            map.customers.insert(name.clone(), key.value.clone());
        } else {
            diags.push(o.report(&Problem::NotACustomer {
                key: key.value.clone(),
                contracts: contracts.iter().map(|c| (*c).to_owned()).collect(),
            }));
        }
    }
    if let Some(unit) = &raw.time_unit {
        let o = spot(origin, "time_unit", unit);
        match parse_duration(&unit.value) {
            Ok(seconds) if seconds > 0 && seconds <= 86_400 && seconds % 60 == 0 => {
                map.minutes_per_unit = Decimal::from(seconds / 60);
            }
            Ok(_) => diags.push(o.report(&Problem::NotATimeUnit(unit.value.clone()))),
            Err(e) => diags.push(o.report(&Problem::Verbatim(e))),
        }
    }
    let kinds = origin.child("kinds");
    for (word, kind) in &raw.kinds {
        let o = spot(&kinds, word, kind);
        match WorkKind::parse(&kind.value) {
            Some(k) => {
                map.kinds.insert(word.clone(), k);
            }
            None => diags.push(o.report(&Problem::NotAKindOfWork(kind.value.clone()))),
        }
    }
    let fields = origin.child("fields");
    for (name, field) in &raw.fields {
        let o = spot(&fields, name, field);
        if name.trim().is_empty() {
            diags.push(o.report(&Problem::EmptyCanonicalName));
            continue;
        }
        match Place::parse(&field.value) {
            Ok(place) => {
                // A field keeps its plain name, so that `field()` finds it.
                if let Place::Field(f) = &place {
                    map.fields.insert(name.clone(), f.clone());
                }
                match (name.as_str(), place) {
                    ("kind", place) => map.kind_from = Some(place),
                    ("category", place) => map.category_from = Some(place),
                    (_, Place::Field(_)) => {}
                    (_, _) => diags.push(o.report(&Problem::NotAField {
                        value: field.value.clone(),
                        name: name.clone(),
                    })),
                }
            }
            Err(e) => diags.push(o.report(&Problem::Verbatim(e))),
        }
    }
    if raw.fields.contains_key("customer") && raw.fields.contains_key("organization") {
        diags.push(
            fields
                .child("customer")
                .report(&Problem::CustomerAndOrganization),
        );
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_an_activity_exactly_or_a_word_in_a_comment() {
        let map = SourceMap {
            kinds: BTreeMap::from([
                ("Onsite".to_owned(), WorkKind::Onsite),
                ("[phone]".to_owned(), WorkKind::Phone),
            ]),
            ..SourceMap::default()
        };
        assert_eq!(map.kind_of("Onsite"), WorkKind::Onsite);
        assert_eq!(map.kind_of("called back [phone]"), WorkKind::Phone);
        assert_eq!(map.kind_of("Remote session"), WorkKind::Remote);
    }

    #[test]
    fn places_are_read_and_a_malformed_one_is_refused() {
        assert_eq!(
            Place::parse("customfield_10100"),
            Ok(Place::Field("customfield_10100".into()))
        );
        assert_eq!(
            Place::parse("worklog_property:work-kind"),
            Ok(Place::WorklogProperty {
                key: "work-kind".into(),
                member: None
            })
        );
        assert_eq!(
            Place::parse("worklog_property:billing/kind"),
            Ok(Place::WorklogProperty {
                key: "billing".into(),
                member: Some("kind".into())
            })
        );
        assert_eq!(
            Place::parse("label:kind-"),
            Ok(Place::LabelPrefix("kind-".into()))
        );
        assert_eq!(Place::parse("request_type"), Ok(Place::RequestType));
        assert_eq!(Place::parse("activity"), Ok(Place::Activity));
        assert!(
            Place::parse("customfield_10x")
                .unwrap_err()
                .contains("not a Jira custom field id")
        );
        assert!(
            Place::parse("label:")
                .unwrap_err()
                .contains("names no prefix")
        );
        assert!(
            Place::parse("worklog:x")
                .unwrap_err()
                .contains("is not a place")
        );
    }

    #[test]
    fn a_kind_is_a_kinds_entry_or_a_kind_itself() {
        let map = SourceMap {
            kinds: BTreeMap::from([("visit".to_owned(), WorkKind::Onsite)]),
            ..SourceMap::default()
        };
        assert_eq!(map.kind_named("visit"), Some(WorkKind::Onsite));
        assert_eq!(map.kind_named("Phone"), Some(WorkKind::Phone));
        assert_eq!(map.kind_named("travel"), None);
        assert_eq!(
            SourceMap::label_value(["vip", "kind-onsite"], "kind-"),
            Some("onsite")
        );
    }

    #[test]
    fn check_names_the_file_line_and_key_of_a_field_the_helpdesk_cannot_have() {
        let text = "sources:\n  jsm:\n    customers:\n      Acme: acme\n    fields:\n      kind: worklog_property:work-kind\n      category: customfield_10x\n      requester: label:who-\n";
        let file = std::path::Path::new("sources.yaml");
        let raw = crate::parse_text(file, text).unwrap();
        let source = &raw.sources["jsm"];
        let origin = Origin {
            file: std::sync::Arc::from(file),
            line: source.referenced.line(),
            column: source.referenced.column(),
            path: "sources.jsm".into(),
        };
        let mut diags = Vec::new();
        let map = compile_source(&origin, &source.value, &["acme"], &mut diags);
        let shown: Vec<String> = diags.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown[0].starts_with("sources.yaml:7:17: error: sources.jsm.fields.category: `customfield_10x` is not a Jira custom field id"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("sources.yaml:8:18: error: sources.jsm.fields.requester: `label:who-` is not a field"),
            "{shown:?}"
        );
        assert_eq!(
            map.kind_from,
            Some(Place::WorklogProperty {
                key: "work-kind".into(),
                member: None
            })
        );
    }

    #[test]
    fn special_fields_are_not_copied() {
        let map = SourceMap {
            fields: BTreeMap::from([
                ("category".to_owned(), "customfield_1".to_owned()),
                ("site".to_owned(), "customfield_2".to_owned()),
            ]),
            ..SourceMap::default()
        };
        assert_eq!(map.field("category", "category"), "customfield_1");
        assert_eq!(map.field("tags", "Tags"), "Tags");
        assert_eq!(
            map.extra_fields().collect::<Vec<_>>(),
            vec![("site", "customfield_2")]
        );
    }
}
