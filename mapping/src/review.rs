//! `review:` of a customer or template: whether finance approves a draft
//! before it is pushed. `none` (the default), `required` (every draft), or
//! `above: AMOUNT` (drafts whose net total is strictly above the amount).
//! A customer's own `review:` overrides its template's, like every key.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::diag::At;

/// `review:` as written: a word, or a map with `above` (its amount a
/// string or a number, kept as written text).
#[derive(Debug, Clone)]
pub enum RawReview {
    Word(String),
    Map(BTreeMap<String, String>),
}

impl<'de> Deserialize<'de> for RawReview {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawReview;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{VALID}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawReview, E> {
                Ok(RawReview::Word(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<RawReview, A::Error> {
                let mut m = BTreeMap::new();
                while let Some((k, v)) = a.next_entry::<String, Scalar>()? {
                    m.insert(k, v.0);
                }
                Ok(RawReview::Map(m))
            }
        }
        d.deserialize_any(V)
    }
}

/// A scalar as text: `above: 1000.00` and `above: "1000.00"` alike.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "an amount such as \"1000.00\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether a customer's drafts wait for finance before they are pushed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Review {
    /// Pushed as soon as the period closes.
    #[default]
    None,
    /// Every draft waits for approval.
    Required,
    /// Drafts whose net total is strictly above the amount wait.
    Above(Decimal),
}

/// What `review:` may say, for messages.
pub const VALID: &str =
    "`none`, `required`, or `above: AMOUNT` (a map, e.g. `review: {above: \"1000.00\"}`)";

impl Review {
    /// Whether a draft of `total_net` must wait for approval.
    pub fn needs_review(&self, total_net: Decimal) -> bool {
        match self {
            Review::None => false,
            Review::Required => true,
            Review::Above(limit) => total_net > *limit,
        }
    }

    /// `none`, `required` or `above: 1000.00`, as stored with a review.
    pub fn describe(&self) -> String {
        match self {
            Review::None => "none".into(),
            Review::Required => "required".into(),
            Review::Above(a) => format!("above: {a}"),
        }
    }

    /// Parses `review:` strictly; the error says what is valid.
    pub fn parse(raw: &RawReview) -> Result<Review, String> {
        match raw {
            RawReview::Word(w) => match w.trim() {
                "none" => Ok(Review::None),
                "required" => Ok(Review::Required),
                other if other.starts_with("above") => Err(format!(
                    "`{other}`: write `above` as a map, `review: {{above: \"1000.00\"}}`; valid: {VALID}"
                )),
                other => Err(format!("unknown review policy `{other}`; valid: {VALID}")),
            },
            RawReview::Map(m) => {
                let mut keys = m.keys().filter(|k| k.as_str() != "above");
                if let Some(k) = keys.next() {
                    return Err(format!("unknown key `{k}` in `review`; valid: {VALID}"));
                }
                let Some(amount) = m.get("above") else {
                    return Err(format!("`review` is an empty map; valid: {VALID}"));
                };
                match amount.trim().parse::<Decimal>() {
                    Ok(a) if a >= Decimal::ZERO => Ok(Review::Above(a)),
                    Ok(_) => Err(format!(
                        "`above: {amount}` is negative: write the net total (0 or more) above which a draft waits for approval"
                    )),
                    Err(_) => Err(format!(
                        "`above: {amount}` is not an amount: write a decimal number such as \"1000.00\""
                    )),
                }
            }
        }
    }
}

/// Compiles a merged `review:`; `None` when it is invalid (reported).
pub(crate) fn compile(a: &At<RawReview>, diags: &mut Vec<crate::Diagnostic>) -> Option<Review> {
    match Review::parse(&a.value) {
        Ok(r) => Some(r),
        Err(msg) => {
            diags.push(a.origin.report(&crate::diag::Problem::Verbatim(msg)));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn the_policy_decides_which_drafts_wait() {
        assert!(!Review::None.needs_review(d("1000000")));
        assert!(Review::Required.needs_review(d("0")));
        let above = Review::Above(d("1000.00"));
        assert!(!above.needs_review(d("1000.00")), "at the limit: pushed");
        assert!(above.needs_review(d("1000.01")));
        assert!(!above.needs_review(d("-50")));
    }

    #[test]
    fn words_and_the_above_map_parse_strictly() {
        let word = |w: &str| Review::parse(&RawReview::Word(w.into()));
        let map = |k: &str, v: &str| Review::parse(&RawReview::Map([(k.into(), v.into())].into()));
        assert_eq!(word("none"), Ok(Review::None));
        assert_eq!(word("required"), Ok(Review::Required));
        assert_eq!(map("above", "1000.00"), Ok(Review::Above(d("1000.00"))));
        assert!(
            word("always")
                .unwrap_err()
                .contains("unknown review policy `always`")
        );
        assert!(word("above 1000").unwrap_err().contains("as a map"));
        assert!(
            map("over", "10")
                .unwrap_err()
                .contains("unknown key `over`")
        );
        assert!(map("above", "lots").unwrap_err().contains("not an amount"));
        assert!(map("above", "-1").unwrap_err().contains("negative"));
        assert!(
            Review::parse(&RawReview::Map(BTreeMap::new()))
                .unwrap_err()
                .contains("empty")
        );
    }

    /// lv-it's example with `review:` on a template and two customers.
    fn base() -> String {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings/examples/lv-it.yaml"),
        )
        .unwrap();
        text.replacen(
            "  lv-it-minimal:\n    template: lv-it-base\n",
            "  lv-it-minimal:\n    template: lv-it-base\n    review:\n      above: 1000.00\n",
            1,
        )
        .replacen(
            "  daugava-logistics:\n    template: lv-it-standard\n",
            "  daugava-logistics:\n    template: lv-it-standard\n    review: required\n",
            1,
        )
        .replacen(
            "  jurmala-hotel:\n    template: lv-it-professional\n",
            "  jurmala-hotel:\n    template: lv-it-professional\n    review: none\n",
            1,
        )
    }

    fn load(text: &str) -> Result<crate::Loaded, crate::Diagnostics> {
        let dir =
            std::env::temp_dir().join(format!("cb-review-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("m.yaml");
        std::fs::write(&file, text).unwrap();
        let out = crate::load(Path::new(&file));
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    #[test]
    fn a_customer_overrides_its_templates_review() {
        let text = base();
        assert_eq!(
            text.matches("    review:").count(),
            3,
            "the three edits applied"
        );
        let loaded = load(&text).unwrap_or_else(|d| panic!("{d}"));
        let of = |c: &str| {
            loaded
                .review
                .get(&engine::ticket::CustomerKey::new(c))
                .copied()
        };
        assert_eq!(of("riga-bakery"), Some(Review::Above(d("1000"))));
        assert_eq!(of("daugava-logistics"), Some(Review::Required));
        assert_eq!(of("jurmala-hotel"), Some(Review::None));
    }

    #[test]
    fn an_invalid_policy_names_file_line_key_and_the_valid_values() {
        let list = base().replace("review: required", "review: [yes]");
        let err = load(&list).err().expect("refused").to_string();
        assert!(err.contains("customers.daugava-logistics.review"), "{err}");
        assert!(err.contains("`required`"), "{err}");
        let text = base().replace("review: required", "review: sometimes");
        let err = load(&text).err().expect("refused").to_string();
        assert!(err.contains("m.yaml:"), "{err}");
        assert!(err.contains("customers.daugava-logistics.review"), "{err}");
        assert!(err.contains("unknown review policy `sometimes`"), "{err}");
        assert!(err.contains("`required`"), "{err}");
    }
}
