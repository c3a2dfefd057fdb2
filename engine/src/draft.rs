//! Invoice draft lines: a bill's lines as an invoice draft carries them to
//! an accounting system.
//!
//! A [`DraftLine`] is the wire shape of a line, stored in the outbox and in
//! each closed period's document: its figures are the text the bill
//! document shows (`"2.5"`, `"40.00"`), so what was pushed can be read
//! back and compared exactly when a late change corrects its period. Its
//! [`LineRefs`] are the mapping's accounting codes for the line; the draft
//! around the lines (customer, currency, contact) belongs to the connectors.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::document::BillDocument;
use crate::ticket::CustomerKey;

/// One line of an invoice draft.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct DraftLine {
    pub kind: String,
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    pub amount: String,
    pub tickets: Vec<String>,
    /// The earlier period this line corrects (work logged or re-categorised
    /// after that period's draft was pushed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<String>,
    /// This line's account, item, tax and tracking from the mapping's
    /// `accounts.<target>` (issue 17); absent when none is configured, and
    /// then the draft's `refs` and the target's configuration apply.
    #[serde(default, skip_serializing_if = "LineRefs::is_empty")]
    pub refs: LineRefs,
}

/// An invoice line's own ids in the accounting system.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct LineRefs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<String>,
    /// Percent, as the mapping wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_rate: Option<String>,
    /// Tracking category → option.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tracking: BTreeMap<String, String>,
}

impl LineRefs {
    pub fn is_empty(&self) -> bool {
        *self == LineRefs::default()
    }
}

impl DraftLine {
    /// The line's amount; text that is not a number counts as zero (a
    /// stored line is never edited by hand, so this is no figure's fallback).
    pub fn amount(&self) -> Decimal {
        decimal(&self.amount)
    }

    /// The line's quantity, read as [`DraftLine::amount`] is.
    pub fn quantity(&self) -> Decimal {
        decimal(&self.quantity)
    }

    /// The line's unit price, read as [`DraftLine::amount`] is.
    pub fn unit_price(&self) -> Decimal {
        decimal(&self.unit_price)
    }
}

/// A draft's figure as a number: the text the bill document wrote, or zero.
pub fn decimal(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

/// `customer`'s invoice lines of a bill, as drafts carry them (none when
/// the bill has no invoice for them).
pub fn lines_of(doc: &BillDocument, customer: &CustomerKey) -> Vec<DraftLine> {
    let Some(inv) = doc.invoices.iter().find(|i| &i.customer == customer) else {
        return Vec::new();
    };
    inv.lines
        .iter()
        .map(|l| DraftLine {
            kind: l.kind.as_str().to_owned(),
            description: l.description.clone(),
            quantity: l.quantity.to_string(),
            unit_price: l.unit_price.to_string(),
            amount: l.amount.to_string(),
            tickets: l.tickets.iter().map(ToString::to_string).collect(),
            corrects: None,
            refs: LineRefs::default(),
        })
        .collect()
}

/// A draft's net total: the sum of its lines' amounts, rounded to cents.
pub fn total_net(lines: &[DraftLine]) -> Decimal {
    lines
        .iter()
        .map(DraftLine::amount)
        .sum::<Decimal>()
        .round_dp(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(amount: &str) -> DraftLine {
        DraftLine {
            kind: "work".into(),
            description: "Support work".into(),
            quantity: "1".into(),
            unit_price: amount.into(),
            amount: amount.into(),
            tickets: vec!["T-1".into()],
            corrects: None,
            refs: LineRefs::default(),
        }
    }

    #[test]
    fn a_line_without_refs_or_correction_is_stored_without_them() {
        let json = serde_json::to_string(&line("40.00")).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"work","description":"Support work","quantity":"1","unit_price":"40.00","amount":"40.00","tickets":["T-1"]}"#
        );
        let back: DraftLine = serde_json::from_str(&json).unwrap();
        assert_eq!(back, line("40.00"));
    }

    #[test]
    fn a_draft_s_total_is_its_lines_summed_and_rounded_to_cents() {
        let lines = [line("80.00"), line("20.007"), line("-15.00")];
        assert_eq!(total_net(&lines).to_string(), "85.01");
        assert_eq!(total_net(&[]), Decimal::ZERO);
    }

    #[test]
    fn a_figure_that_is_not_a_number_counts_as_zero() {
        assert_eq!(line("n/a").amount(), Decimal::ZERO);
        assert_eq!(line("12.50").amount(), Decimal::new(1250, 2));
    }
}
