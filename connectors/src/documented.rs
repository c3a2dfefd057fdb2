//! A vendor's answer read as the typed shape its documentation gives: a
//! field missing, renamed or of another type is an error that names the
//! field by its path (`Invoices[0].LineItems[0]: missing field
//! `LineAmount``), never a silent zero. Every vendor's `transformers.rs`
//! reads through here, so the wording is one.

use rust_decimal::Decimal;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Who says what shape an answer has: `system` prefixes the message
/// (`None`: the caller adds its own), `shape` ends it ("as Zammad
/// documents it").
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub system: Option<&'static str>,
    pub shape: &'static str,
}

impl Shape {
    /// `value` as `T`, or why not.
    pub fn read<T: DeserializeOwned>(&self, value: Value, what: &str) -> Result<T, String> {
        serde_path_to_error::deserialize(value).map_err(|e| self.refusal(what, &e))
    }

    /// The text `body` as `T`, or why not.
    pub fn read_str<T: DeserializeOwned>(&self, body: &str, what: &str) -> Result<T, String> {
        let mut de = serde_json::Deserializer::from_str(body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| self.refusal(what, &e))
    }

    fn refusal(&self, what: &str, e: &serde_path_to_error::Error<serde_json::Error>) -> String {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        let system = self.system.map(|s| format!("{s}: ")).unwrap_or_default();
        format!(
            "{system}{what} is not {shape} ({at}{inner})",
            shape = self.shape,
            inner = e.inner()
        )
    }
}

/// A number as a vendor writes it: a JSON number, or a text holding one
/// (Fortnox writes `DeliveredQuantity` as `"1.00"`). Anything else is
/// refused, naming the field, never read as zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amount(pub Decimal);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        crate::accounting::decimal(&v)
            .map(Amount)
            .ok_or_else(|| D::Error::custom(format!("a decimal number, not {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Line {
        #[serde(rename = "LineAmount")]
        amount: f64,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Answer {
        #[serde(rename = "Lines")]
        lines: Vec<Line>,
    }

    const XERO: Shape = Shape {
        system: Some("xero"),
        shape: "as Xero documents it",
    };

    #[test]
    fn a_missing_field_is_named_by_its_path() {
        let e = XERO
            .read::<Answer>(serde_json::json!({"Lines": [{"Amount": 1}]}), "an invoice")
            .unwrap_err();
        assert_eq!(
            e,
            "xero: an invoice is not as Xero documents it (Lines[0]: missing field `LineAmount`)"
        );
        let e = XERO
            .read_str::<Answer>(r#"{"Lines": "none"}"#, "an invoice")
            .unwrap_err();
        assert!(
            e.starts_with("xero: an invoice is not as Xero documents it (Lines: invalid type"),
            "{e}"
        );
    }
}
