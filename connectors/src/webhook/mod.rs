//! The `webhook` source: tickets arrive only as signed `POST
//! /webhooks/{source}` requests whose body is a ticket export in the offline
//! format (`{"tickets": [...]}`). Polling it finds nothing new; the daemon
//! checks the signature before the body reaches [`parse`].

use crate::Result;
use serde::Deserialize;

use crate::{ConnectorError, TicketSnapshot};

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSourceConfig {}

pub fn parse(body: &[u8]) -> Result<Vec<TicketSnapshot>> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ConnectorError::Permanent("webhook body: not UTF-8".into()))?;
    crate::snapshots_from_export(text, "webhook body")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_an_export_and_a_ticket_needs_an_id() {
        let ok = parse(br#"{"tickets":[{"id":"T-1","customer":"acme"}]}"#).unwrap();
        assert_eq!(
            (ok[0].id.as_str(), ok[0].customer.as_str()),
            ("T-1", "acme")
        );
        let err = parse(br#"{"tickets":[{"customer":"acme"}]}"#).unwrap_err();
        assert!(err.to_string().contains("tickets[0].id"), "{err}");
        assert!(parse(b"{").is_err());
    }
}
