//! A webhook delivery as connectors read it: its headers as name and value
//! pairs, and why one is refused. Helpdesks and ledgers both receive
//! webhooks, so this is theirs in common.

/// Why a webhook is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum WebhookRefusal {
    Unsigned,
    BadSignature,
    Malformed(String),
    /// This source or target takes no webhooks (the reason says why).
    NotTaken(String),
}

/// A header's value, by name in any case.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
