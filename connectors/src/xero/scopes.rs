//! The OAuth scopes a Xero connection asks for.
//!
//! Xero retired the broad `accounting.transactions` for apps created on or
//! after 2 March 2026 (older apps keep it until September 2027); such an
//! app is answered `invalid_scope` when it asks for it. The granular
//! replacements (developer.xero.com/documentation/guides/oauth2/scopes/):
//! `accounting.invoices` (invoices, credit notes, items …),
//! `accounting.payments`, `accounting.settings` (accounts, tax rates),
//! `accounting.contacts`, `accounting.attachments`, each with `.read`.
//!
//! What the bridge sends, and the scope each request needs:
//!
//! | use | requests | scope |
//! | --- | --- | --- |
//! | drafts, their status and paid/issued sales | `GET`/`PUT /Invoices`, `GET /Invoices/{id}` | `accounting.invoices` |
//! | report PDFs (with `report.chromium`) | `GET /Invoices/{id}/Attachments`, `PUT …/Attachments/{name}` | `accounting.attachments` |
//! | `check --config` of a mapping's `accounts.<target>` | `GET /Accounts`, `/TaxRates`, `/Items` | `accounting.settings.read` |
//!
//! Payments are read as an invoice's `Status: PAID` (`/Invoices`, not
//! `/Payments`), and contacts, accounts and tax types come from the
//! configuration, never looked up: so `accounting.payments`,
//! `accounting.contacts` and `accounting.settings` are not asked for.

use super::{SYSTEM, XeroConfig};
use crate::ConnectorError;

/// Invoices: create, look up, read back.
pub const INVOICES: &str = "accounting.invoices";
/// Files on invoices.
pub const ATTACHMENTS: &str = "accounting.attachments";
/// The broad scope of apps created before 2 March 2026: it covers invoices.
pub const TRANSACTIONS: &str = "accounting.transactions";
/// Accounts, tax rates and items, read: what `check` validates a mapping's
/// `accounts` against.
pub const SETTINGS_READ: &str = "accounting.settings.read";

/// Where Xero's scopes are set for an app.
const PORTAL: &str =
    "Xero's developer portal (developer.xero.com, My Apps, the app's Configuration)";

/// Does the space-separated `granted` hold `scope`, or a broad scope that covers it?
pub fn covers(granted: &str, scope: &str) -> bool {
    granted
        .split_whitespace()
        .any(|g| g == scope || (scope == INVOICES && g == TRANSACTIONS))
}

impl XeroConfig {
    /// Each scope derived from what this configuration uses, with why.
    pub fn derived_scopes(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = vec![(INVOICES, "drafts, their status and sales")];
        if self.report_pdfs {
            out.push((ATTACHMENTS, "report PDFs on drafts"));
        }
        if self.lists_codes {
            out.push((SETTINGS_READ, "`check` reads accounts, tax rates and items"));
        }
        out
    }

    /// The scopes asked for: the `scopes` setting, or those derived.
    pub fn scopes(&self) -> Vec<String> {
        match &self.scopes {
            Some(s) => s.clone(),
            None => self
                .derived_scopes()
                .into_iter()
                .map(|(s, _)| s.to_owned())
                .collect(),
        }
    }

    /// `targets.NAME.scopes`, for messages.
    pub fn scopes_setting(&self) -> String {
        let name = if self.name.is_empty() {
            "NAME"
        } else {
            self.name.as_str()
        };
        format!("targets.{name}.scopes")
    }

    /// One line for `status` and `check`: the scopes asked for and where they come from.
    pub fn scopes_line(&self) -> String {
        let asked = self.scopes().join(" ");
        match (&self.scopes, self.refresh_token.is_some()) {
            (Some(_), _) => format!("{asked} (from `{}`)", self.scopes_setting()),
            (None, standard) => {
                let why: Vec<&str> = self.derived_scopes().iter().map(|(_, w)| *w).collect();
                format!(
                    "{asked} (derived: {}{})",
                    why.join("; "),
                    if standard {
                        "; a standard connection holds those its consent granted"
                    } else {
                        ""
                    }
                )
            }
        }
    }

    /// The `scopes` setting can push drafts: it holds `accounting.invoices`
    /// or the broad `accounting.transactions`.
    pub fn check_scopes(&self) -> Result<(), String> {
        let Some(s) = &self.scopes else {
            return Ok(());
        };
        if !covers(&s.join(" "), INVOICES) {
            return Err(format!(
                "{}: drafts need `{INVOICES}` (or `{TRANSACTIONS}`, for apps created before 2 March 2026); the setting holds {}",
                self.scopes_setting(),
                if s.is_empty() {
                    "none".to_owned()
                } else {
                    s.join(" ")
                }
            ));
        }
        Ok(())
    }

    /// A `scopes` setting without `accounting.attachments` while report
    /// PDFs are made: drafts still go, each PDF fails as its own item.
    pub fn scopes_warning(&self) -> Option<String> {
        let s = self.scopes.as_ref()?;
        (self.report_pdfs && !covers(&s.join(" "), ATTACHMENTS)).then(|| {
            format!(
                "{}: without `{ATTACHMENTS}` the report PDFs (report.chromium) cannot be attached to the drafts",
                self.scopes_setting()
            )
        })
    }

    /// The token endpoint refused the scopes asked for (`invalid_scope`).
    pub(super) fn scopes_refused(&self, said: &str) -> ConnectorError {
        let asked = self.scopes().join(" ");
        let advice = match &self.scopes {
            Some(_) => format!(
                "make `{}` name only scopes the app holds in {PORTAL}",
                self.scopes_setting()
            ),
            None => format!(
                "add each to the app in {PORTAL}, or set `{}` to the scopes the app holds (an app created before 2 March 2026 may keep [\"{TRANSACTIONS}\", \"{ATTACHMENTS}\"])",
                self.scopes_setting()
            ),
        };
        ConnectorError::Permanent(format!(
            "{SYSTEM}: token: {said}: Xero refused the scopes asked for ({asked}): {advice}"
        ))
    }

    /// A request refused for want of `scope` (HTTP 401 after a fresh token, or 403).
    pub(super) fn scope_missing(&self, status: u16, scope: &str, what: &str) -> ConnectorError {
        ConnectorError::Permanent(format!(
            "{SYSTEM}: HTTP {status}: {what} needs the scope `{scope}`, which this connection was not granted: add it to the app in {PORTAL} (a standard connection then consents again){}",
            match &self.scopes {
                Some(_) => format!(", and to `{}`", self.scopes_setting()),
                None => String::new(),
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: serde_json::Value) -> XeroConfig {
        let mut v = serde_json::json!({"client_id": "c", "client_secret": "s", "contacts": {}});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn scopes_follow_what_the_configuration_uses_unless_set() {
        let mut x = config(serde_json::json!({}));
        x.name = "books".into();
        assert_eq!(x.scopes(), vec![INVOICES]);
        x.report_pdfs = true;
        assert_eq!(x.scopes(), vec![INVOICES, ATTACHMENTS]);
        assert!(
            x.scopes_line().contains("report PDFs"),
            "{}",
            x.scopes_line()
        );
        let mut old = config(serde_json::json!({"scopes": [TRANSACTIONS, "accounting.contacts"]}));
        old.name = "books".into();
        assert_eq!(old.scopes(), vec![TRANSACTIONS, "accounting.contacts"]);
        assert!(old.check_scopes().is_ok(), "the broad scope covers drafts");
        let mut none = config(serde_json::json!({"scopes": ["accounting.contacts"]}));
        none.name = "books".into();
        let e = none.check_scopes().unwrap_err();
        assert!(
            e.contains("targets.books.scopes") && e.contains(INVOICES),
            "{e}"
        );
    }

    #[test]
    fn a_broad_grant_covers_invoices_but_not_attachments() {
        assert!(covers("accounting.transactions offline_access", INVOICES));
        assert!(covers("accounting.invoices", INVOICES));
        assert!(!covers("accounting.invoices.read", INVOICES));
        assert!(!covers("accounting.transactions", ATTACHMENTS));
    }

    #[test]
    fn the_token_request_asks_for_the_derived_scopes_and_a_refusal_names_the_setting() {
        use crate::accounting::AccountingApi;
        let mut x = config(serde_json::json!({}));
        x.name = "books".into();
        x.report_pdfs = true;
        let r = x.token_request(None).unwrap().unwrap();
        let form = String::from_utf8(r.body).unwrap();
        assert!(
            form.contains("scope=accounting.invoices+accounting.attachments"),
            "{form}"
        );
        let refused = crate::HttpResponse {
            status: 400,
            body: r#"{"error":"invalid_scope"}"#.into(),
            retry_after: None,
        };
        let e = x.read_token(&refused).unwrap_err().to_string();
        assert!(e.contains("invalid_scope"), "{e}");
        assert!(e.contains("targets.books.scopes"), "{e}");
        assert!(
            e.contains("accounting.invoices accounting.attachments"),
            "{e}"
        );
        let narrow = crate::HttpResponse {
            status: 200,
            body: r#"{"access_token":"t","expires_in":1800,"scope":"accounting.invoices.read"}"#
                .into(),
            retry_after: None,
        };
        let e = x.read_token(&narrow).unwrap_err().to_string();
        assert!(e.contains("without `accounting.invoices`"), "{e}");
        let granted = crate::HttpResponse {
            status: 200,
            body: r#"{"access_token":"t","expires_in":1800,"scope":"accounting.invoices"}"#.into(),
            retry_after: None,
        };
        assert_eq!(
            x.read_token(&granted).unwrap().scope.as_deref(),
            Some("accounting.invoices")
        );
    }
}
