//! `contract-bridge connect NAME`: the authorization-code flow with PKCE
//! (S256) for a target's or source's OAuth app. The browser comes back to
//! a loopback listener (`http://localhost:PORT/callback`), or, on a
//! headless server, the admin pastes the address it was sent to. The
//! `state` is checked, the code exchanged with the PKCE verifier, the
//! organisation (Xero tenant, QuickBooks realm, Atlassian site) chosen from
//! those the consent covers, and the refresh token stored sealed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use connectors::oauth::{OAuthApp, Tenant, TenantSource};
use connectors::{HttpMethod, HttpRequest, SourceConfig, TargetConfig};
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, Scope};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::seal::SealKey;
use super::{Via, access_token, client, token_error};
use crate::settings::Settings;
use crate::transport::{Safety, Transport};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The name, the configuration or the system does not allow a consent.
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Flow(String),
    #[error(transparent)]
    Seal(#[from] super::seal::SealError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn flow(e: impl std::fmt::Display) -> ConnectError {
    ConnectError::Flow(crate::redact(&e.to_string()))
}

/// How the code comes back.
pub enum Return {
    /// A loopback listener on 127.0.0.1 at this port (0: any free one).
    Listen(u16),
    /// The admin pastes the address the browser was sent to (or the code).
    Paste,
}

pub struct Options {
    pub name: String,
    pub back: Return,
    /// The organisation to choose when the consent covers several.
    pub tenant: Option<String>,
}

/// What `connect` stored.
#[derive(Debug)]
pub struct Connected {
    pub name: String,
    pub system: &'static str,
    pub tenant: Option<Tenant>,
    pub scopes: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// The OAuth app of target or source `name`, or why it has none.
pub fn app_of(settings: &Settings, name: &str) -> Result<OAuthApp, ConnectError> {
    let file = settings.file.as_ref().map_or_else(
        || "the configuration".to_owned(),
        |f| f.display().to_string(),
    );
    if let Some(t) = settings.targets.get(name) {
        return match t {
            TargetConfig::Economic(_) => Err(ConnectError::Unsupported(format!(
                "`{name}` is an e-conomic target: e-conomic does not use OAuth. The agreement's administrator installs the app from the app's installation URL and e-conomic shows the agreement grant token; set it as `targets.{name}.agreement_grant_token` beside the app's `app_secret_token` in {file}. There is nothing to connect."
            ))),
            TargetConfig::Fortnox(_) => Err(ConnectError::Unsupported(format!(
                "`{name}` is a Fortnox target: the bridge reaches Fortnox with client credentials and the customer's TenantId, with no refresh token to keep. The customer's system administrator consents once to a service account (https://apps.fortnox.se/oauth-v1/auth with account_type=service; Fortnox documents no PKCE for it); its TenantId (the DatabaseNumber of /3/companyinformation) goes into `targets.{name}.tenant_id` in {file}. See docs/connect.md."
            ))),
            other => other.accounting().and_then(|a| a.oauth_app()).ok_or_else(|| {
                ConnectError::Unsupported(format!(
                    "target `{name}` ({}) has no OAuth consent to run: its credentials are set in {file}",
                    other.accounting().map_or("a file or HTTP target", |a| a.system())
                ))
            }),
        };
    }
    if let Some(s) = settings.sources.get(name) {
        return match &s.connector {
            SourceConfig::Jira(j) => match &j.oauth {
                Some(o) => Ok(o.app(j.timeout_ms)),
                None => Err(ConnectError::Unsupported(format!(
                    "source `{name}` signs in with an API token; for OAuth 2.0 (3LO) set `sources.{name}.oauth` with the app's `client_id` and `client_secret` in {file}, then connect"
                ))),
            },
            _ => Err(ConnectError::Unsupported(format!(
                "source `{name}` has no OAuth consent to run: its credentials are set in {file}"
            ))),
        };
    }
    let known: Vec<&String> = settings
        .targets
        .keys()
        .chain(settings.sources.keys())
        .collect();
    Err(ConnectError::Unsupported(format!(
        "`{name}` is neither a target nor a source of {file}; they are: {}",
        known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The query of a redirect (`/callback?code=…&state=…`), or of a pasted address.
fn query_of(text: &str) -> Vec<(String, String)> {
    let q = text.split_once('?').map_or("", |(_, q)| q);
    let q = q.split('#').next().unwrap_or(q);
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The `code` of a redirect; its `state` must be ours.
fn code_of(
    query: &[(String, String)],
    state: &CsrfToken,
    system: &str,
) -> Result<String, ConnectError> {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(e) = get("error") {
        return Err(ConnectError::Flow(format!(
            "{system} refused the consent: {e}{}",
            get("error_description")
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        )));
    }
    match get("state") {
        Some(s) if s == state.secret() => {}
        Some(_) => {
            return Err(ConnectError::Flow(
                "the redirect's `state` is not the one this `connect` sent: it belongs to another attempt (or a forged link); start `connect` again".into(),
            ));
        }
        None => {
            return Err(ConnectError::Flow(
                "the redirect has no `state`: paste the whole address the browser was sent to"
                    .into(),
            ));
        }
    }
    get("code")
        .map(str::to_owned)
        .ok_or_else(|| ConnectError::Flow("the redirect has no `code`".into()))
}

/// Waits on the loopback listener for the browser's redirect, answers it,
/// and returns its query. Requests for other paths (a favicon) get a 404.
async fn accept_redirect(
    listener: tokio::net::TcpListener,
) -> Result<Vec<(String, String)>, ConnectError> {
    loop {
        let (mut sock, _) = listener.accept().await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        // The request line and headers; a browser's GET has no body.
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8_lossy(&buf);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("");
        if !target.starts_with("/callback") {
            let _ = sock
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let body = "contract-bridge received the consent; you may close this tab and go back to the terminal.\n";
        let _ = sock
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        let _ = sock.shutdown().await;
        return Ok(query_of(target));
    }
}

/// The organisations the new access token reaches (Xero connections,
/// Atlassian accessible resources).
async fn list_tenants(
    transport: &Transport,
    name: &str,
    app: &OAuthApp,
    url: &str,
    token: &str,
) -> Result<Vec<Tenant>, ConnectError> {
    let mut r = HttpRequest::json(HttpMethod::Get, url.to_owned(), Vec::new(), app.timeout_ms);
    r.headers
        .push(("authorization".into(), format!("Bearer {token}")));
    let answer = transport
        .exchange(name, Safety::Read, r)
        .await
        .map_err(flow)?;
    if !(200..300).contains(&answer.status) {
        return Err(ConnectError::Flow(format!(
            "{}: listing the organisations the consent covers ({url}): HTTP {}: {}",
            app.system,
            answer.status,
            answer.body.chars().take(200).collect::<String>()
        )));
    }
    connectors::oauth::read_tenants(&app.tenants, &answer.body).map_err(flow)
}

/// The organisation to keep: the one asked for (`--tenant` or the
/// configuration), else the only one.
fn choose(
    tenants: Vec<Tenant>,
    wanted: Option<&str>,
    name: &str,
    system: &str,
) -> Result<Tenant, ConnectError> {
    let list = |ts: &[Tenant]| {
        ts.iter()
            .map(|t| format!("  {}  {} ({})", t.id, t.name, t.kind))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match wanted {
        Some(w) => {
            let found = tenants.iter().find(|t| t.id == w || t.name == w).cloned();
            found.ok_or_else(|| {
                ConnectError::Flow(format!(
                    "the consent does not cover the {system} organisation `{w}`; it covers:\n{}",
                    list(&tenants)
                ))
            })
        }
        None => match tenants.len() {
            0 => Err(ConnectError::Flow(format!(
                "the consent covers no {system} organisation: choose one on the consent page"
            ))),
            1 => Ok(tenants.into_iter().next().expect("one")),
            _ => Err(ConnectError::Flow(format!(
                "the consent covers several {system} organisations; run `connect {name} --tenant ID` again with one of:\n{}",
                list(&tenants)
            ))),
        },
    }
}

/// Runs the consent of `opts.name`: prints to `out` the address to open,
/// reads a pasted redirect from `input` in paste mode, and stores the grant.
pub async fn connect(
    settings: &Settings,
    store: &store::Store,
    opts: &Options,
    input: &mut (impl AsyncBufRead + Unpin),
    out: &mut (impl std::io::Write + ?Sized),
) -> Result<Connected, ConnectError> {
    let name = opts.name.as_str();
    let app = app_of(settings, name)?;
    // Fails before the browser is sent anywhere when no key can be had.
    let key = SealKey::load(settings, true)?.ok_or_else(|| {
        ConnectError::Seal(super::seal::SealError::Key(
            "no key to seal the tokens with".into(),
        ))
    })?;
    let transport =
        Transport::new(settings.retry.clone(), [(name.to_owned(), 0u32)]).map_err(flow)?;

    let (listener, redirect) = match (&opts.back, &app.redirect_uri) {
        (Return::Listen(port), None) => {
            let l = tokio::net::TcpListener::bind(("127.0.0.1", *port)).await.map_err(|e| {
                ConnectError::Flow(format!(
                    "the redirect listener cannot listen on 127.0.0.1:{port} ({e}): free the port, choose another with --port (the app must list http://localhost:PORT/callback), or use --paste"
                ))
            })?;
            let port = l.local_addr()?.port();
            (Some(l), format!("http://localhost:{port}/callback"))
        }
        (Return::Listen(_), Some(r)) | (Return::Paste, Some(r)) => (None, r.clone()),
        (Return::Paste, None) => (
            None,
            format!(
                "http://localhost:{}/callback",
                settings.connect.redirect_port
            ),
        ),
    };
    let oauth = client(&app, Some(&redirect)).map_err(flow)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scopes(app.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge);
    for (k, v) in &app.authorize_params {
        request = request.add_extra_param(k.clone(), v.clone());
    }
    let (url, state) = request.url();
    writeln!(
        out,
        "Open this address in a browser and consent for `{name}` ({}):\n\n  {url}\n",
        app.system
    )?;
    let query = match listener {
        Some(l) => {
            writeln!(out, "Waiting for the browser to come back to {redirect} …")?;
            out.flush()?;
            accept_redirect(l).await?
        }
        None => {
            writeln!(
                out,
                "The browser is then sent to {redirect}…: paste that whole address here (the page itself may not load) and press Enter:"
            )?;
            out.flush()?;
            let mut line = String::new();
            input.read_line(&mut line).await?;
            let line = line.trim();
            if line.is_empty() {
                return Err(ConnectError::Flow("nothing was pasted".into()));
            }
            query_of(line)
        }
    };
    let code = code_of(&query, &state, app.system)?;

    let via = Via {
        transport: &transport,
        name,
        timeout: Duration::from_millis(app.timeout_ms),
        json: app.json_token_requests,
    };
    let answer = oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&via)
        .await
        .map_err(|e| match token_error(&app, e) {
            super::RefreshError::Revoked(said) => ConnectError::Flow(format!(
                "{}: the code was refused ({said}): it is used once and lives minutes; start `connect` again",
                app.system
            )),
            super::RefreshError::Failed(e) => flow(e),
        })?;
    let token = access_token(&answer);
    let refresh = token.refresh_token.clone().ok_or_else(|| {
        ConnectError::Flow(format!(
            "{}: the token answer has no refresh token: the app must be granted `offline_access` (Xero, Atlassian) or be a QuickBooks app with the accounting scope",
            app.system
        ))
    })?;

    let tenant = match &app.tenants {
        TenantSource::Connections { url } | TenantSource::Resources { url } => {
            let tenants = list_tenants(&transport, name, &app, url, &token.token).await?;
            let wanted = opts.tenant.as_deref().or(app.tenant.as_deref());
            Some(choose(tenants, wanted, name, app.system)?)
        }
        TenantSource::Redirect { param } => {
            let got = query
                .iter()
                .find(|(k, _)| k == param)
                .map(|(_, v)| v.clone());
            match (got, app.tenant.as_deref()) {
                (Some(id), Some(configured)) if id != configured => {
                    return Err(ConnectError::Flow(format!(
                        "the consent is for the {} company {id}, but `{name}` is configured for {configured} (`realm_id`): consent for that company, or change the setting",
                        app.system
                    )));
                }
                (Some(id), _) => Some(Tenant {
                    name: String::new(),
                    id,
                    kind: (*param).to_owned(),
                }),
                (None, _) => None,
            }
        }
    };

    let now = Utc::now();
    let expires_at = now + chrono::Duration::from_std(token.expires_in).unwrap_or_default();
    let info = store::GrantInfo {
        access_expires_at: Some(expires_at),
        scopes: token.scope.clone(),
        tenant_id: tenant.as_ref().map(|t| t.id.clone()),
        tenant_name: tenant
            .as_ref()
            .map(|t| t.name.clone())
            .filter(|n| !n.is_empty()),
    };
    store
        .connect_grant(name, &key.seal(name, &refresh), &info, now)
        .await?;
    if let Some(scope) = &token.scope {
        store.record_scopes(name, scope, now).await?;
    }
    Ok(Connected {
        name: name.to_owned(),
        system: app.system,
        tenant,
        scopes: token.scope,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_must_carry_our_state() {
        let state = CsrfToken::new("s1".into());
        let q = query_of("http://localhost:8749/callback?code=abc&state=s1&realmId=42");
        assert_eq!(code_of(&q, &state, "xero").unwrap(), "abc");
        let forged = query_of("/callback?code=abc&state=other");
        assert!(code_of(&forged, &state, "xero").is_err());
        assert!(code_of(&query_of("/callback?code=abc"), &state, "xero").is_err());
        let refused = query_of("/callback?error=access_denied&state=s1");
        assert!(
            code_of(&refused, &state, "xero")
                .unwrap_err()
                .to_string()
                .contains("access_denied")
        );
    }

    #[test]
    fn several_organisations_need_a_choice() {
        let t = |id: &str| Tenant {
            id: id.into(),
            name: format!("Org {id}"),
            kind: "ORGANISATION".into(),
        };
        assert_eq!(choose(vec![t("a")], None, "x", "xero").unwrap().id, "a");
        let e = choose(vec![t("a"), t("b")], None, "x", "xero").unwrap_err();
        assert!(e.to_string().contains("--tenant"), "{e}");
        assert_eq!(
            choose(vec![t("a"), t("b")], Some("Org b"), "x", "xero")
                .unwrap()
                .id,
            "b"
        );
        assert!(choose(vec![t("a")], Some("c"), "x", "xero").is_err());
    }
}
