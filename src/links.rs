//! Signed, expiring links to a customer's balance statement:
//! `expires=UNIX&sig=HEX`, where `sig` is HMAC-SHA256 (key
//! `report.statement_secret`) over a purpose prefix, the customer and the
//! expiry. Written into drafts (`settings`), checked by the statement page
//! (`statement`), and the path encoding the review pages share.

use connectors::Secret;
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// What is signed: a purpose prefix (so that no other signature of ours
/// can be replayed here), the customer and the expiry.
fn mac(secret: &Secret, customer: &str, expires: i64) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("statement\n{customer}\n{expires}").as_bytes());
    mac
}

/// `expires=…&sig=…` of a link valid until `expires` (Unix seconds).
pub fn query(secret: &Secret, customer: &str, expires: i64) -> String {
    let sig = hex::encode(mac(secret, customer, expires).finalize().into_bytes());
    format!("expires={expires}&sig={sig}")
}

/// Whether `raw_query` is a valid signature of `customer` at `now`.
/// The comparison takes the same time whatever the signature's bytes.
pub fn verify(secret: &Secret, customer: &str, raw_query: Option<&str>, now: i64) -> bool {
    let Some(q) = raw_query else {
        return false;
    };
    let (mut expires, mut sig) = (None, None);
    for pair in q.split('&') {
        match pair.split_once('=') {
            Some(("expires", v)) if expires.is_none() => expires = v.parse::<i64>().ok(),
            Some(("sig", v)) if sig.is_none() => sig = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(expires), Some(sig)) = (expires, sig) else {
        return false;
    };
    // Checked before the expiry so that the time taken does not depend on it.
    let signed = mac(secret, customer, expires).verify_slice(&sig).is_ok();
    signed && expires > now
}

/// The customer key as a URL path segment.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_bound_to_the_customer_and_the_expiry() {
        let s = Secret::new("k3y");
        let q = query(&s, "acme", 2_000);
        assert!(verify(&s, "acme", Some(&q), 1_999));
        assert!(!verify(&s, "acme", Some(&q), 2_000), "expired");
        assert!(!verify(&s, "other", Some(&q), 1_000), "another customer");
        let later = q.replace("expires=2000", "expires=9000");
        assert!(!verify(&s, "acme", Some(&later), 1_000), "expiry moved");
        assert!(!verify(&Secret::new("other"), "acme", Some(&q), 1_000));
        assert!(!verify(&s, "acme", None, 1_000));
        assert!(!verify(&s, "acme", Some("expires=2000&sig=zz"), 1_000));
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("riga bakery/1"), "riga%20bakery%2F1");
        assert_eq!(encode_segment("lv-it_2.x~"), "lv-it_2.x~");
    }
}
