//! Reports from the store: `contract-bridge report --config` and the
//! balance statement served at a signed link.
//!
//! A page shows twelve months; each request used to bill all twelve. The
//! bills of a customer's months are kept with the *data version* they were
//! made from: a digest of the mapping in force and of every stored row of
//! that customer's tickets. Any change to either (a ticket synced, moved to
//! another customer, a mapping reload) gives another version, so a stale
//! bill is never shown; the month judged at the request's instant (open SLA
//! clocks) is billed every time.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use engine::contract::Language;
use engine::period::Month;
use engine::ticket::CustomerKey;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{Bridge, CycleError};
use crate::report::Rendered;

impl Bridge {
    /// The page of `customer` for `period` from the stored tickets as they
    /// are now (`as_of`: when open SLA clocks are judged; none: the period's
    /// end). `statement`: the balance statement instead of the work report.
    pub async fn report_page(
        &self,
        customer: &str,
        period: Month,
        language: Option<Language>,
        as_of: Option<DateTime<Utc>>,
        statement: bool,
    ) -> Result<Rendered, CycleError> {
        let mapping = self.mapping_in_force()?;
        let book = &mapping.book;
        let key = CustomerKey::new(customer);
        if !book.contracts.contains_key(&key) {
            return Err(CycleError::NoContract {
                customer: customer.to_owned(),
                path: self.settings.mapping.path.clone(),
            });
        }
        // Customers bill independently: one customer's report or statement
        // reads and bills that customer's tickets under that contract only
        // (issue 19), not every stored ticket twelve times.
        let rows = self.store.customer_tickets(customer).await?;
        let version = data_version(&mapping.hash, &rows);
        let cached = self.report_cache.take(customer, &version);
        let (tickets, mut bills) = match cached {
            Some(hit) => (hit.tickets, hit.bills),
            None => {
                let mut warnings = Vec::new();
                let tickets: Vec<engine::ticket::Ticket> =
                    super::parse_stored(rows, book, &mut warnings)?
                        .into_iter()
                        .filter(|t| t.customer == key)
                        .collect();
                (Arc::new(tickets), BTreeMap::new())
            }
        };
        // The month judged at `as_of` changes with the clock: never kept.
        let live = as_of.map(|_| period);
        if let Some(m) = live {
            bills.remove(&m);
        }
        let one = engine::ContractBook {
            contracts: book
                .contracts
                .get_key_value(&key)
                .map(|(k, c)| (k.clone(), c.clone()))
                .into_iter()
                .collect(),
        };
        let book = &one;
        let had = bills.len();
        let templates = crate::report::templates(self.settings.report.templates.as_deref())?;
        let rendered = crate::report::bill_months(book, &tickets, &key, period, as_of, &mut bills)
            .and_then(|()| {
                crate::report::render(
                    &templates, book, &tickets, &bills, &key, period, language, statement,
                )
            })
            .map_err(CycleError::from);
        let billed = bills.len() - had;
        self.metrics
            .report_months_billed
            .fetch_add(billed as u64, Ordering::Relaxed);
        self.metrics
            .report_months_cached
            .fetch_add(had as u64, Ordering::Relaxed);
        if let Some(m) = live {
            bills.remove(&m);
        }
        self.report_cache.keep(
            customer,
            CachedBills {
                version,
                tickets,
                bills,
            },
        );
        rendered
    }

    /// Whether the mapping in force has a contract for `customer`.
    pub fn has_customer(&self, customer: &str) -> bool {
        self.mapping()
            .is_some_and(|m| m.book.contracts.contains_key(&CustomerKey::new(customer)))
    }
}

/// The digest of what a customer's bills are made from.
fn data_version(mapping_hash: &str, rows: &[store::StoredTicket]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(mapping_hash.as_bytes());
    for row in rows {
        for part in [&row.source, &row.id, &row.snapshot] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
    }
    h.finalize().into()
}

/// One customer's parsed tickets and bills, with the version they are of.
pub(crate) struct CachedBills {
    version: [u8; 32],
    tickets: Arc<Vec<engine::ticket::Ticket>>,
    bills: BTreeMap<Month, engine::document::BillDocument>,
}

/// The bills of the customers whose pages were asked for last; at most
/// [`ReportCache::CUSTOMERS`] of them (a statement link is opened by one
/// customer at a time, a close renders each customer once).
#[derive(Default)]
pub(crate) struct ReportCache {
    entries: Mutex<HashMap<String, (u64, CachedBills)>>,
    uses: std::sync::atomic::AtomicU64,
}

impl ReportCache {
    const CUSTOMERS: usize = 256;

    /// The customer's bills if they were made from `version`.
    fn take(&self, customer: &str, version: &[u8; 32]) -> Option<CachedBills> {
        let mut entries = self.entries.lock().ok()?;
        match entries.remove(customer) {
            Some((_, hit)) if hit.version == *version => Some(hit),
            _ => None,
        }
    }

    fn keep(&self, customer: &str, bills: CachedBills) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= Self::CUSTOMERS
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        let used = self.uses.fetch_add(1, Ordering::Relaxed);
        entries.insert(customer.to_owned(), (used, bills));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, snapshot: &str) -> store::StoredTicket {
        store::StoredTicket {
            source: "desk".into(),
            id: id.into(),
            snapshot: snapshot.into(),
        }
    }

    #[test]
    fn the_version_changes_with_any_row_or_the_mapping() {
        let rows = vec![row("A-1", "{\"x\":1}"), row("A-2", "{}")];
        let v = data_version("m1", &rows);
        assert_eq!(v, data_version("m1", &rows.clone()));
        assert_ne!(v, data_version("m2", &rows));
        assert_ne!(v, data_version("m1", &rows[..1]));
        let mut edited = rows.clone();
        edited[1].snapshot = "{\"y\":2}".into();
        assert_ne!(v, data_version("m1", &edited));
        // Lengths are hashed: moving a byte between fields is another version.
        assert_ne!(
            data_version("m1", &[row("A-1x", "y")]),
            data_version("m1", &[row("A-1", "xy")])
        );
    }

    #[test]
    fn a_kept_entry_is_given_back_for_its_version_only_and_the_oldest_goes_first() {
        let cache = ReportCache::default();
        let entry = |v: u8| CachedBills {
            version: [v; 32],
            tickets: Arc::new(Vec::new()),
            bills: BTreeMap::new(),
        };
        cache.keep("acme", entry(1));
        assert!(cache.take("acme", &[2; 32]).is_none(), "another version");
        assert!(cache.take("acme", &[1; 32]).is_none(), "dropped on a miss");
        cache.keep("acme", entry(1));
        assert!(cache.take("acme", &[1; 32]).is_some());
        for i in 0..ReportCache::CUSTOMERS + 1 {
            cache.keep(&format!("c{i}"), entry(1));
        }
        assert!(
            cache.take("c0", &[1; 32]).is_none(),
            "the oldest was evicted"
        );
        assert!(
            cache
                .take(&format!("c{}", ReportCache::CUSTOMERS), &[1; 32])
                .is_some()
        );
    }
}
