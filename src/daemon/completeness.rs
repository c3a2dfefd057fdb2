//! Period gating: a bill is made only from data known to be complete.
//!
//! Each source has a **watermark**, the instant up to which every change it
//! holds is known to be stored: the start of its last fully successful pass
//! (a pass that read every page and converted every ticket). A pass that
//! fails, or leaves one ticket unread, leaves the watermark where it was.
//!
//! A customer's month closes only when every source that **feeds** the
//! customer is complete past the month's end plus `billing.grace_minutes`.
//! A helpdesk feeds the customers its `sources.<name>` section maps
//! organisations to; a source of another kind (a folder of exports, a
//! webhook) may name any customer, so it feeds everyone; a source that
//! ever stored a ticket of the customer feeds it too; and the billing
//! target's sales scan (`sales:TARGET`) feeds every customer whose contract
//! has prepaid items, since a card sold there is drawn from in the bill. Until then the period
//! is **held**: `status` says which source holds which customer and since
//! when; after `billing.hold_alert_minutes` it is an alert (logged as an
//! error, `/readyz` degraded). `close --period P --force` closes anyway,
//! and the draft says so.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use store::SourceHealth;

use super::{Bridge, CycleError};

/// What the close knows of its sources.
pub(super) struct Completeness {
    health: BTreeMap<String, SourceHealth>,
    /// Sources that feed every customer.
    everyone: BTreeSet<String>,
    /// Customer → the helpdesks that feed it.
    by_customer: BTreeMap<String, BTreeSet<String>>,
    grace: chrono::Duration,
}

/// Why a customer's period cannot close yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Hold {
    /// The sources it waits for.
    pub sources: Vec<String>,
    /// A sentence per source.
    pub reason: String,
}

impl Completeness {
    /// The sources feeding `customer` that are not complete through `end`
    /// (plus the grace); none: the period may close.
    pub fn hold(&self, customer: &str, end: DateTime<Utc>) -> Option<Hold> {
        let needed = end + self.grace;
        let feeding = self
            .everyone
            .iter()
            .chain(self.by_customer.get(customer).into_iter().flatten());
        let mut sources = Vec::new();
        let mut reasons = Vec::new();
        for source in feeding.collect::<BTreeSet<_>>() {
            let h = self.health.get(source.as_str());
            let through = h.and_then(|h| h.complete_through);
            if through.is_some_and(|t| t >= needed) {
                continue;
            }
            sources.push(source.clone());
            let since = match through {
                Some(t) => format!("complete through {}", t.to_rfc3339()),
                None => "no complete pass yet".to_owned(),
            };
            let failing = match h.and_then(|h| h.failing_since.zip(h.last_error.as_ref())) {
                Some((at, e)) => format!(", failing since {}: {e}", at.to_rfc3339()),
                None => String::new(),
            };
            reasons.push(format!(
                "source {source}: {since}{failing}; needs {}",
                needed.to_rfc3339()
            ));
        }
        (!sources.is_empty()).then(|| Hold {
            sources,
            reason: reasons.join("; "),
        })
    }
}

impl Bridge {
    /// Reads every source's watermark and which customers each feeds.
    pub(super) async fn completeness(
        &self,
        mapping: &super::GoodMapping,
    ) -> Result<Completeness, CycleError> {
        let health = self
            .store
            .source_health()
            .await?
            .into_iter()
            .map(|h| (h.source.clone(), h))
            .collect();
        let mut everyone = BTreeSet::new();
        let mut by_customer: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, source) in &self.settings.sources {
            match mapping.sources.get(name) {
                Some(map) if source.connector.is_helpdesk() => {
                    for customer in map.customers.values() {
                        by_customer
                            .entry(customer.clone())
                            .or_default()
                            .insert(name.clone());
                    }
                }
                _ => {
                    everyone.insert(name.clone());
                }
            }
        }
        // Cards and banks sold in the billing target open from its sales scan.
        let billing = &self.settings.billing.target;
        if self
            .settings
            .targets
            .get(billing)
            .is_some_and(|t| t.accounting().is_some())
        {
            for (customer, contract) in &mapping.book.contracts {
                if !contract.prepaid.is_empty() {
                    by_customer
                        .entry(customer.to_string())
                        .or_default()
                        .insert(super::feedback::sales_source(billing));
                }
            }
        }
        for store::SourceCustomer { source, customer } in self.store.ticket_sources().await? {
            // A source no longer configured feeds nobody: nothing will read it again.
            if self.settings.sources.contains_key(&source) {
                by_customer.entry(customer).or_default().insert(source);
            }
        }
        Ok(Completeness {
            health,
            everyone,
            by_customer,
            grace: chrono::Duration::minutes(i64::from(self.settings.billing.grace_minutes)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn completeness(health: &[(&str, Option<&str>, Option<&str>)]) -> Completeness {
        Completeness {
            health: health
                .iter()
                .map(|(s, through, error)| {
                    (
                        s.to_string(),
                        SourceHealth {
                            source: s.to_string(),
                            complete_through: through.map(t),
                            failing_since: error.map(|_| t("2026-11-01T05:00:00Z")),
                            last_error: error.map(str::to_owned),
                            ..SourceHealth::default()
                        },
                    )
                })
                .collect(),
            everyone: ["folder".to_owned()].into(),
            by_customer: [
                ("acme".to_owned(), ["zammad".to_owned()].into()),
                ("beta".to_owned(), ["rt".to_owned()].into()),
            ]
            .into(),
            grace: chrono::Duration::minutes(30),
        }
    }

    #[test]
    fn a_customer_waits_only_for_the_sources_that_feed_it() {
        let c = completeness(&[
            ("folder", Some("2026-11-01T06:00:00Z"), None),
            (
                "zammad",
                Some("2026-10-31T23:00:00Z"),
                Some("503 Service Unavailable"),
            ),
            ("rt", Some("2026-11-01T06:00:00Z"), None),
        ]);
        let end = t("2026-11-01T00:00:00Z");
        let hold = c.hold("acme", end).unwrap();
        assert_eq!(hold.sources, ["zammad"]);
        assert!(hold.reason.contains("failing since"), "{}", hold.reason);
        assert!(hold.reason.contains("503"), "{}", hold.reason);
        assert_eq!(c.hold("beta", end), None);
    }

    #[test]
    fn the_grace_counts_and_a_source_never_read_holds() {
        let c = completeness(&[
            ("folder", Some("2026-11-01T00:20:00Z"), None),
            ("rt", Some("2026-11-02T00:00:00Z"), None),
        ]);
        let end = t("2026-11-01T00:00:00Z");
        let hold = c.hold("beta", end).unwrap();
        assert_eq!(
            hold.sources,
            ["folder"],
            "20 min past the end is inside the 30 min grace"
        );
        let hold = c.hold("acme", end).unwrap();
        assert_eq!(hold.sources, ["folder", "zammad"]);
        assert!(hold.reason.contains("no complete pass yet"));
    }
}
