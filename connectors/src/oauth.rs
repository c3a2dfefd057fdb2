//! What `contract-bridge connect` and the daemon's token refresh need to
//! know about a system's OAuth 2.0 authorization-code flow: its endpoints,
//! the app's credentials, the scopes to ask for, and where the consented
//! organisation (Xero tenant, QuickBooks realm, Atlassian site) is learned.
//! The daemon runs the flow (the `oauth2` crate over its one transport);
//! the connectors only describe it.

use crate::Secret;

/// How the organisation a consent covers is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantSource {
    /// `GET url` with the new access token lists the connections (Xero
    /// `/connections`: `[{id, tenantId, tenantType, tenantName, …}]`).
    Connections { url: String },
    /// The redirect's query names it (QuickBooks `realmId`).
    Redirect { param: &'static str },
    /// `GET url` lists the sites the token reaches (Atlassian
    /// `accessible-resources`: `[{id, url, name, scopes}]`).
    Resources { url: String },
}

/// How the client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (Xero, QuickBooks).
    Basic,
    /// `client_id` and `client_secret` in the form (Atlassian).
    Body,
}

/// One system's OAuth 2.0 app as a target's (or source's) settings describe it.
#[derive(Clone, Debug)]
pub struct OAuthApp {
    /// `xero`, `quickbooks`, `jira`: for messages.
    pub system: &'static str,
    pub client_id: String,
    pub client_secret: Secret,
    pub authorize_url: String,
    pub token_url: String,
    pub scopes: Vec<String>,
    pub client_auth: ClientAuth,
    /// The token endpoint is documented with JSON bodies (Atlassian), not
    /// the form of RFC 6749: token requests are sent as JSON.
    pub json_token_requests: bool,
    /// Extra parameters of the authorization URL (Atlassian `audience`, `prompt`).
    pub authorize_params: Vec<(String, String)>,
    pub tenants: TenantSource,
    /// The organisation the configuration names, if it does.
    pub tenant: Option<String>,
    /// The redirect URI registered with the app, when it is not the
    /// loopback listener's (`http://127.0.0.1:PORT/callback`).
    pub redirect_uri: Option<String>,
    /// A refresh token from the configuration: the first grant until a
    /// rotated one is stored.
    pub refresh_token: Option<Secret>,
    pub timeout_ms: u64,
}

/// One organisation a consent covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    /// Xero `tenantType` (`ORGANISATION`, `PRACTICEMANAGER`, …), an Atlassian site's URL.
    pub kind: String,
}

/// Reads a connections (Xero) or accessible-resources (Atlassian) answer.
pub fn read_tenants(
    source: &TenantSource,
    body: &str,
) -> Result<Vec<Tenant>, crate::ConnectorError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct XeroConnection {
        tenant_id: String,
        #[serde(default)]
        tenant_name: Option<String>,
        tenant_type: String,
    }
    #[derive(serde::Deserialize)]
    struct AtlassianSite {
        id: String,
        name: String,
        url: String,
    }
    let bad = |e: serde_json::Error| {
        crate::ConnectorError::Permanent(format!(
            "the organisations list is not as documented: {e}"
        ))
    };
    match source {
        TenantSource::Connections { .. } => Ok(serde_json::from_str::<Vec<XeroConnection>>(body)
            .map_err(bad)?
            .into_iter()
            .map(|c| Tenant {
                name: c.tenant_name.unwrap_or_default(),
                id: c.tenant_id,
                kind: c.tenant_type,
            })
            .collect()),
        TenantSource::Resources { .. } => Ok(serde_json::from_str::<Vec<AtlassianSite>>(body)
            .map_err(bad)?
            .into_iter()
            .map(|s| Tenant {
                id: s.id,
                name: s.name,
                kind: s.url,
            })
            .collect()),
        TenantSource::Redirect { .. } => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xero_connections_and_atlassian_sites_are_read_as_documented() {
        let xero = r#"[{"id":"e1eede29-f875-4a5d-8470-17f6a29a88b1","authEventId":"d99ecdfe-391d-43d2-b834-17636ba90e8d",
            "tenantId":"70784a63-d24b-46a9-a4db-0e70a274b056","tenantType":"ORGANISATION","tenantName":"Maple Florist",
            "createdDateUtc":"2019-07-09T23:40:30.1833130","updatedDateUtc":"2020-05-15T01:35:13.8491980"}]"#;
        let t = read_tenants(&TenantSource::Connections { url: String::new() }, xero).unwrap();
        assert_eq!(t[0].id, "70784a63-d24b-46a9-a4db-0e70a274b056");
        assert_eq!(t[0].name, "Maple Florist");
        let sites = r#"[{"id":"1324a887-45db-1bf4-1e99-ef0ff456d421","name":"Site name",
            "url":"https://your-domain.atlassian.net","scopes":["write:jira-work","read:jira-work"],"avatarUrl":"https://x"}]"#;
        let t = read_tenants(&TenantSource::Resources { url: String::new() }, sites).unwrap();
        assert_eq!(t[0].id, "1324a887-45db-1bf4-1e99-ef0ff456d421");
        assert_eq!(t[0].kind, "https://your-domain.atlassian.net");
        assert!(read_tenants(&TenantSource::Connections { url: String::new() }, "{}").is_err());
    }
}
