//! `accounts:` (issue 17): the revenue account, item, tax and tracking of
//! each kind of invoice line, per accounting target.
//!
//! ```yaml
//! accounts:
//!   xero:                  # a target of the daemon configuration
//!     defaults: {account: "200", tax: OUTPUT2}
//!     hours: {account: "210", item: SUPPORT-HOUR}
//!     sla_credit: {account: "260", tracking: {Region: North}}
//! ```
//!
//! A line's account and item are its kind's, else the customer's
//! `accounting.<target>`, else `defaults`; its tax is the customer's (a
//! reverse-charge or export customer), else its kind's, else `defaults`.
//! Correction lines use `correction` where it is given, else the kind of
//! the line they correct.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{Diagnostic, Origin, Problem};

/// The line kinds `accounts.<target>` takes, besides `defaults`.
pub const KINDS: &[&str] = &[
    "fee",
    "hours",
    "call_out",
    "add_on",
    "card_sale",
    "bank_sale",
    "sla_credit",
    "correction",
];

/// The key of `accounts.<target>` for a draft line of engine kind `kind`
/// (the bill document's names).
pub fn kind_key(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "monthly_fee" => "fee",
        "work" => "hours",
        "call_out" => "call_out",
        // Punches an add-on draws at the month's end, not covered by a card.
        "add_on" | "month_end_punches" => "add_on",
        "card_purchase" => "card_sale",
        "bank_purchase" => "bank_sale",
        "service_credit" => "sla_credit",
        _ => return None,
    })
}

/// One kind's settings as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLineAccount {
    /// The revenue account code (Xero AccountCode, Fortnox AccountNumber, …).
    #[serde(default)]
    pub account: Option<Spanned<String>>,
    /// The item, article or product code.
    #[serde(default)]
    pub item: Option<Spanned<String>>,
    /// The tax type or code (Xero TaxType, Fortnox VAT percent, QuickBooks TaxCodeRef).
    #[serde(default)]
    pub tax: Option<Spanned<String>>,
    /// The tax rate in percent, checked against the target's rate for `tax`.
    #[serde(default)]
    pub tax_rate: Option<Spanned<String>>,
    /// Tracking categories: category name → option.
    #[serde(default)]
    pub tracking: BTreeMap<String, String>,
}

/// A code and where it was written, so that `check` can name the line.
#[derive(Clone, Debug)]
pub struct Code {
    pub code: String,
    pub origin: Origin,
}

impl PartialEq for Code {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
    }
}

/// One kind's settings, compiled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineAccount {
    pub account: Option<Code>,
    pub item: Option<Code>,
    pub tax: Option<Code>,
    pub tax_rate: Option<(Decimal, Origin)>,
    pub tracking: Vec<(String, String)>,
}

impl PartialEq for Origin {
    fn eq(&self, other: &Self) -> bool {
        (&self.file, self.line, self.column, &self.path)
            == (&other.file, other.line, other.column, &other.path)
    }
}

impl LineAccount {
    /// `self` where set, else `fallback`.
    fn or(&self, fallback: &LineAccount) -> LineAccount {
        LineAccount {
            account: self.account.clone().or_else(|| fallback.account.clone()),
            item: self.item.clone().or_else(|| fallback.item.clone()),
            tax: self.tax.clone().or_else(|| fallback.tax.clone()),
            tax_rate: self.tax_rate.clone().or_else(|| fallback.tax_rate.clone()),
            tracking: if self.tracking.is_empty() {
                fallback.tracking.clone()
            } else {
                self.tracking.clone()
            },
        }
    }
}

/// `accounts.<target>`, compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetAccounts {
    pub origin: Origin,
    pub defaults: LineAccount,
    /// By key of [`KINDS`].
    pub kinds: BTreeMap<String, LineAccount>,
}

impl TargetAccounts {
    /// What a line of `key` (one of [`KINDS`]) gets, `defaults` filled in.
    pub fn for_key(&self, key: &str) -> LineAccount {
        self.kinds
            .get(key)
            .map_or_else(|| self.defaults.clone(), |k| k.or(&self.defaults))
    }

    /// Every code written, with what it is (`account`, `item`, `tax`).
    pub fn codes(&self) -> Vec<(&'static str, &Code)> {
        let mut out = Vec::new();
        for l in std::iter::once(&self.defaults).chain(self.kinds.values()) {
            for (what, c) in [("account", &l.account), ("item", &l.item), ("tax", &l.tax)] {
                if let Some(c) = c {
                    out.push((what, c));
                }
            }
        }
        out
    }
}

fn code(
    o: &Origin,
    key: &'static str,
    s: &Option<Spanned<String>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Code> {
    let s = s.as_ref()?;
    let mut origin = o.child(key);
    if s.referenced.line() > 0 {
        origin.line = s.referenced.line();
        origin.column = s.referenced.column();
    }
    if s.value.trim().is_empty() {
        diags.push(origin.report(&Problem::EmptyCode(key)));
        return None;
    }
    Some(Code {
        code: s.value.clone(),
        origin,
    })
}

fn line(o: &Origin, raw: &Spanned<RawLineAccount>, diags: &mut Vec<Diagnostic>) -> LineAccount {
    let mut o = o.clone();
    if raw.referenced.line() > 0 {
        o.line = raw.referenced.line();
        o.column = raw.referenced.column();
    }
    let r = &raw.value;
    let tax_rate = r.tax_rate.as_ref().and_then(|s| {
        let mut origin = o.child("tax_rate");
        if s.referenced.line() > 0 {
            origin.line = s.referenced.line();
            origin.column = s.referenced.column();
        }
        match s
            .value
            .trim()
            .trim_end_matches('%')
            .trim()
            .parse::<Decimal>()
        {
            Ok(d) if (Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&d) => Some((d, origin)),
            _ => {
                diags.push(origin.report(&Problem::NotATaxRate(s.value.clone())));
                None
            }
        }
    });
    for (name, option) in &r.tracking {
        if name.trim().is_empty() || option.trim().is_empty() {
            diags.push(o.child("tracking").report(&Problem::UnnamedTracking));
        }
    }
    LineAccount {
        account: code(&o, "account", &r.account, diags),
        item: code(&o, "item", &r.item, diags),
        tax: code(&o, "tax", &r.tax, diags),
        tax_rate,
        tracking: r
            .tracking
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// Compiles one `accounts.<target>` section.
pub(crate) fn compile_target(
    o: &Origin,
    raw: &BTreeMap<String, Spanned<RawLineAccount>>,
    diags: &mut Vec<Diagnostic>,
) -> TargetAccounts {
    let mut out = TargetAccounts {
        origin: o.clone(),
        defaults: LineAccount::default(),
        kinds: BTreeMap::new(),
    };
    for (key, v) in raw {
        let ko = o.child(key);
        let compiled = line(&ko, v, diags);
        if key == "defaults" {
            out.defaults = compiled;
        } else if KINDS.contains(&key.as_str()) {
            out.kinds.insert(key.clone(), compiled);
        } else {
            let mut at = ko.clone();
            if v.referenced.line() > 0 {
                at.line = v.referenced.line();
                at.column = v.referenced.column();
            }
            diags.push(at.report(&Problem::NotALineKind {
                key: key.clone(),
                kinds: KINDS,
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_line_kind_has_a_key() {
        for k in [
            "monthly_fee",
            "add_on",
            "work",
            "month_end_punches",
            "call_out",
            "card_purchase",
            "bank_purchase",
            "service_credit",
        ] {
            let key = kind_key(k).unwrap_or_else(|| panic!("{k} has no key"));
            assert!(KINDS.contains(&key), "{k} → {key}");
        }
        assert_eq!(kind_key("something"), None);
    }
}
