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
//!     fields:                      # canonical name ← the helpdesk's field
//!       category: category
//!       site: customfield_10044    # any other name lands in the ticket's `fields`
//! ```

use std::collections::BTreeMap;

use engine::ticket::WorkKind;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{Diagnostic, Origin};
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
    /// Canonical name → the helpdesk's field. `category`, `tags` and
    /// `organization` say where those come from; any other name is copied
    /// into the ticket's `fields`, where rules can read it.
    pub fields: BTreeMap<String, String>,
}

impl SourceMap {
    /// The helpdesk field holding the canonical field `name`, or `default`.
    pub fn field<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.fields.get(name).map_or(default, String::as_str)
    }

    /// Fields copied as they are into the ticket's `fields`.
    pub fn extra_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "category" | "tags" | "organization"))
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
        diags.push(customers.error(
            "no customers: map the helpdesk's organisation (RT: requestor domain) to a customer key, e.g. `\"Riga Bakery SIA\": riga-bakery`",
        ));
    }
    for (name, key) in &raw.customers {
        let o = spot(&customers, name, key);
        if contracts.contains(&key.value.as_str()) {
            map.customers.insert(name.clone(), key.value.clone());
        } else {
            diags.push(o.error(format!(
                "`{}` is not a customer of the mapping{}; customers with a contract: {}",
                key.value,
                crate::compile::did_you_mean(&key.value, contracts.iter().copied()),
                contracts.join(", ")
            )));
        }
    }
    if let Some(unit) = &raw.time_unit {
        let o = spot(origin, "time_unit", unit);
        match parse_duration(&unit.value) {
            Ok(seconds) if seconds > 0 && seconds <= 86_400 && seconds % 60 == 0 => {
                map.minutes_per_unit = Decimal::from(seconds / 60);
            }
            Ok(_) => diags.push(o.error(format!(
                "`{}` is not a time unit: write whole minutes from 1m to 1d, such as 1m (agents log minutes) or 1h (hours)",
                unit.value
            ))),
            Err(e) => diags.push(o.error(e)),
        }
    }
    let kinds = origin.child("kinds");
    for (word, kind) in &raw.kinds {
        let o = spot(&kinds, word, kind);
        match WorkKind::parse(&kind.value) {
            Some(k) => {
                map.kinds.insert(word.clone(), k);
            }
            None => diags.push(o.error(format!(
                "`{}` is not a work kind: use remote, onsite or phone",
                kind.value
            ))),
        }
    }
    let fields = origin.child("fields");
    for (name, field) in &raw.fields {
        let o = spot(&fields, name, field);
        if field.value.trim().is_empty() {
            diags.push(o.error(
                "the field name is empty: write the helpdesk's field, e.g. `customfield_10100`",
            ));
        } else if name.trim().is_empty() {
            diags.push(o.error("the canonical name is empty"));
        } else {
            map.fields.insert(name.clone(), field.value.clone());
        }
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
