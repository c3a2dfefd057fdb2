//! OAuth 2.0 for the systems that grant access by consent (Xero, QuickBooks
//! Online, Jira Cloud 3LO): `contract-bridge connect` runs the
//! authorization-code flow with PKCE ([`connect`]), and the daemon refreshes
//! each grant ([`refresh`]). Both go through the `oauth2` crate, whose
//! requests are sent by the daemon's one transport ([`Via`]): the same
//! client, retry rules and redaction as every other request.
//!
//! Refresh tokens rotate: the successor is sealed ([`seal`]) and stored
//! before the new access token is used, so a crash between the token answer
//! and the save leaves the previous token, which the vendors accept again
//! for a grace period (Xero: 30 minutes), never a lost grant.

pub mod connect;
pub mod seal;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use connectors::accounting::AccessToken;
use connectors::oauth::{ClientAuth, OAuthApp};
use connectors::{ConnectorError, HttpMethod, HttpRequest};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RedirectUrl,
    RefreshToken, RequestTokenError, TokenResponse, TokenUrl,
};

use crate::transport::{Safety, Transport};

/// The `oauth2` client of one app: authorization and token endpoints set.
pub type Client =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The `oauth2` crate's HTTP client: our transport, for the system `name`.
pub struct Via<'a> {
    pub transport: &'a Transport,
    pub name: &'a str,
    pub timeout: Duration,
    /// Send the token request's form as a JSON object (Atlassian documents
    /// its token endpoint with JSON bodies).
    pub json: bool,
}

/// A form body as the JSON object Atlassian's token endpoint documents.
fn form_as_json(body: &[u8]) -> Vec<u8> {
    let object: serde_json::Map<String, serde_json::Value> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect();
    serde_json::Value::Object(object).to_string().into_bytes()
}

impl<'c> oauth2::AsyncHttpClient<'c> for Via<'_> {
    type Error = ConnectorError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, ConnectorError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let method = match *request.method() {
                oauth2::http::Method::GET => HttpMethod::Get,
                oauth2::http::Method::POST => HttpMethod::Post,
                oauth2::http::Method::PUT => HttpMethod::Put,
                ref m => {
                    return Err(ConnectorError::Permanent(format!(
                        "oauth: HTTP method {m} is not sent"
                    )));
                }
            };
            let form = request
                .headers()
                .get(oauth2::http::header::CONTENT_TYPE)
                .is_some_and(|v| {
                    v.as_bytes()
                        .starts_with(b"application/x-www-form-urlencoded")
                });
            let as_json = self.json && form;
            let mut headers: Vec<(String, String)> = request
                .headers()
                .iter()
                .filter(|(k, _)| !(as_json && *k == oauth2::http::header::CONTENT_TYPE))
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let body = if as_json {
                headers.push(("content-type".into(), "application/json".into()));
                form_as_json(request.body())
            } else {
                request.body().clone()
            };
            let ours = HttpRequest {
                method,
                url: request.uri().to_string(),
                headers,
                body,
                timeout: self.timeout,
            };
            // A token request is not repeated once it may have arrived: a
            // rotated refresh token answered but lost is retried by the
            // next refresh, with the previous token, within the grace period.
            let answer = self
                .transport
                .exchange(self.name, Safety::Write, ours)
                .await?;
            oauth2::http::Response::builder()
                .status(answer.status)
                .body(answer.body.into_bytes())
                .map_err(|e| ConnectorError::Transient(format!("oauth: {e}")))
        })
    }
}

fn bad_url(app: &OAuthApp, what: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Permanent(format!("{}: the {what} is not a URL: {e}", app.system))
}

/// The `oauth2` client of `app`, redirecting to `redirect` when given.
pub fn client(app: &OAuthApp, redirect: Option<&str>) -> Result<Client, ConnectorError> {
    let mut c = BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_client_secret(ClientSecret::new(app.client_secret.expose().to_owned()))
        .set_auth_uri(
            AuthUrl::new(app.authorize_url.clone())
                .map_err(|e| bad_url(app, "authorize_url", e))?,
        )
        .set_token_uri(
            TokenUrl::new(app.token_url.clone()).map_err(|e| bad_url(app, "token_url", e))?,
        )
        .set_auth_type(match app.client_auth {
            ClientAuth::Basic => AuthType::BasicAuth,
            ClientAuth::Body => AuthType::RequestBody,
        });
    if let Some(r) = redirect {
        c = c.set_redirect_uri(
            RedirectUrl::new(r.to_owned()).map_err(|e| bad_url(app, "redirect URI", e))?,
        );
    }
    Ok(c)
}

/// How a refresh failed.
#[derive(Debug)]
pub enum RefreshError {
    /// `invalid_grant`: revoked, expired or already used past its grace
    /// period; only a new consent helps. What the system said.
    Revoked(String),
    Failed(ConnectorError),
}

/// An access token answer as the daemon keeps it.
pub fn access_token(r: &oauth2::basic::BasicTokenResponse) -> AccessToken {
    AccessToken {
        token: r.access_token().secret().clone(),
        // Xero, QuickBooks and Atlassian all say; an answer that does not
        // is taken as the shortest of theirs (30 minutes).
        expires_in: r.expires_in().unwrap_or(Duration::from_secs(1800)),
        refresh_token: r.refresh_token().map(|t| t.secret().clone()),
        scope: r
            .scopes()
            .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
    }
}

/// What a token endpoint's refusal says, for messages.
fn said(e: &oauth2::basic::BasicErrorResponse) -> String {
    match e.error_description() {
        Some(d) => format!("{}: {d}", e.error()),
        None => e.error().to_string(),
    }
}

/// A token request's failure as a connector error; `invalid_grant` apart.
pub fn token_error(
    app: &OAuthApp,
    e: RequestTokenError<ConnectorError, oauth2::basic::BasicErrorResponse>,
) -> RefreshError {
    let system = app.system;
    match e {
        RequestTokenError::ServerResponse(r)
            if *r.error() == BasicErrorResponseType::InvalidGrant =>
        {
            RefreshError::Revoked(said(&r))
        }
        RequestTokenError::ServerResponse(r) => RefreshError::Failed(ConnectorError::Permanent(
            format!("{system}: token: {}", said(&r)),
        )),
        RequestTokenError::Request(e) => RefreshError::Failed(e),
        RequestTokenError::Parse(e, body) => {
            RefreshError::Failed(ConnectorError::Transient(format!(
                "{system}: token: the answer is not an OAuth token answer ({e}): {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )))
        }
        RequestTokenError::Other(m) => {
            RefreshError::Failed(ConnectorError::Transient(format!("{system}: token: {m}")))
        }
    }
}

/// Exchanges `refresh_token` for an access token (and, where the system
/// rotates them, its successor).
pub async fn refresh(
    transport: &Transport,
    name: &str,
    app: &OAuthApp,
    refresh_token: &str,
) -> Result<AccessToken, RefreshError> {
    let client = client(app, None).map_err(RefreshError::Failed)?;
    let via = Via {
        transport,
        name,
        timeout: Duration::from_millis(app.timeout_ms),
        json: app.json_token_requests,
    };
    let token = RefreshToken::new(refresh_token.to_owned());
    client
        .exchange_refresh_token(&token)
        .request_async(&via)
        .await
        .map(|r| access_token(&r))
        .map_err(|e| token_error(app, e))
}

/// The message of a revoked grant: what the system said and the command
/// that makes a new one.
pub fn revoked_message(
    app: &OAuthApp,
    name: &str,
    config: Option<&std::path::Path>,
    said: &str,
) -> String {
    let system = match app.system {
        "xero" => "Xero",
        "quickbooks" => "QuickBooks",
        "jira" => "Jira",
        other => other,
    };
    let file = config.map_or_else(|| "FILE".to_owned(), |p| p.display().to_string());
    format!(
        "the {system} grant for `{name}` was revoked or expired ({said}); run `contract-bridge connect {name} --config {file}`"
    )
}

/// Where the chosen organisation of each Xero target without `tenant_id`
/// comes from: the grant `connect` stored.
pub async fn adopt_tenants(
    settings: &mut crate::settings::Settings,
    store: &store::Store,
) -> Result<(), store::StoreError> {
    let missing: Vec<String> = settings
        .targets
        .iter()
        .filter_map(|(name, t)| match t {
            connectors::TargetConfig::Xero(x) if x.tenant_id.is_none() => Some(name.clone()),
            _ => None,
        })
        .collect();
    for name in missing {
        if let Some(g) = store.grant(&name).await?
            && let Some(id) = g.info.tenant_id
            && let Some(connectors::TargetConfig::Xero(x)) = settings.targets.get_mut(&name)
        {
            x.tenant_id = Some(id);
        }
    }
    Ok(())
}

/// Test hook of the crash test (tests/api/connect.rs): when set, a process
/// that received a rotated refresh token says so on stderr and waits
/// to be killed before it stores it.
pub const PAUSE_BEFORE_SAVE_ENV: &str = "CONTRACT_BRIDGE_TEST_PAUSE_BEFORE_SAVE";

pub(crate) async fn pause_before_save_for_tests() {
    if std::env::var_os(PAUSE_BEFORE_SAVE_ENV).is_some() {
        use std::io::Write;
        let mut e = std::io::stderr();
        let _ = writeln!(e, "rotated refresh token received, not yet stored");
        let _ = e.flush();
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atlassian_token_requests_go_as_the_documented_json() {
        let v: serde_json::Value = serde_json::from_slice(&form_as_json(
            b"grant_type=authorization_code&code=c%2B1&redirect_uri=http%3A%2F%2Flocalhost%3A8749%2Fcallback&client_id=id&client_secret=s&code_verifier=v",
        ))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"grant_type": "authorization_code", "code": "c+1",
                "redirect_uri": "http://localhost:8749/callback", "client_id": "id",
                "client_secret": "s", "code_verifier": "v"})
        );
    }
}
