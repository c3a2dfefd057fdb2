//! A vendor's answer read as the typed shape its documentation gives: a
//! field missing, renamed or of another type is an error that names the
//! field by its path (`Invoices[0].LineItems[0]: missing field
//! `LineAmount``), never a silent zero. Every vendor's `transformers.rs`
//! reads through here, so the wording is one.

use serde::de::DeserializeOwned;
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

/// A vendor's `SHAPE` (its answers "as `$shape`", errors prefixed with
/// `$system`), with `parse` (why not, as text) and `read` (why not, as a
/// transient error the daemon reports and retries) of a JSON value through it.
macro_rules! documented_shape {
    ($system:expr, $shape:literal) => {
        /// How the vendor's answers are read: see [`crate::documented`].
        const SHAPE: $crate::documented::Shape = $crate::documented::Shape {
            system: Some($system),
            shape: $shape,
        };

        /// `value` as `T`, or why not, naming the field by its path.
        pub fn parse<T: serde::de::DeserializeOwned>(
            value: serde_json::Value,
            what: &str,
        ) -> Result<T, String> {
            SHAPE.read(value, what)
        }

        /// [`parse`] for a whole answer: an error the daemon reports and retries.
        pub fn read<T: serde::de::DeserializeOwned>(
            value: serde_json::Value,
            what: &str,
        ) -> Result<T, $crate::ConnectorError> {
            parse(value, what).map_err($crate::ConnectorError::Transient)
        }
    };
}
pub(crate) use documented_shape;

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
