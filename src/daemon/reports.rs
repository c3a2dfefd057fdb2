//! Reports from the store: `contract-bridge report --config` and the
//! balance statement served at a signed link.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use engine::contract::Language;
use engine::period::Month;
use engine::ticket::CustomerKey;

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
            return Err(CycleError::Mapping(format!(
                "no contract for customer `{customer}` in {}",
                self.settings.mapping.path.display()
            )));
        }
        // Customers bill independently: one customer's report or statement
        // reads and bills that customer's tickets under that contract only
        // (issue 19), not every stored ticket twelve times.
        let rows = self.store.customer_tickets(customer).await?;
        let mut warnings = Vec::new();
        let tickets: Vec<engine::ticket::Ticket> = super::parse_stored(rows, book, &mut warnings)?
            .into_iter()
            .filter(|t| t.customer == key)
            .collect();
        let one = engine::ContractBook {
            contracts: book
                .contracts
                .get_key_value(&key)
                .map(|(k, c)| (k.clone(), c.clone()))
                .into_iter()
                .collect(),
        };
        let book = &one;
        let mut bills = BTreeMap::new();
        let templates = crate::report::templates(self.settings.report.templates.as_deref())
            .map_err(|e| CycleError::Mapping(e.to_string()))?;
        crate::report::bill_months(book, &tickets, &key, period, as_of, &mut bills)
            .and_then(|()| {
                crate::report::render(
                    &templates, book, &tickets, &bills, &key, period, language, statement,
                )
            })
            .map_err(|e| CycleError::Mapping(e.to_string()))
    }

    /// Whether the mapping in force has a contract for `customer`.
    pub fn has_customer(&self, customer: &str) -> bool {
        self.mapping()
            .is_some_and(|m| m.book.contracts.contains_key(&CustomerKey::new(customer)))
    }
}
