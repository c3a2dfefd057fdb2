//! The daemon's review pages: `GET /review` lists every draft waiting for
//! finance (each line with its explanation, the change against last month,
//! and Approve / Hold / Reject), `GET /review/{customer}/{period}` shows
//! one, and `POST /review/{customer}/{period}/{approve|hold|reject}`
//! decides it.
//!
//! Access needs a credential of `[review]`: a basic-auth user of
//! `[review.users]` (the browser) or the bearer `[review] token`, compared
//! in constant time and never logged. Forms carry a token bound to the
//! credential, the draft and its revision (HMAC-SHA256 keyed with the
//! credential's secret), so another site cannot make a signed-in browser
//! decide (CSRF); a cross-site `Origin` or `Sec-Fetch-Site` is refused
//! too. Every decision is written to the audit trail with the review in one
//! transaction. Pages are rendered by minijinja with HTML auto-escaping
//! (`templates/review/page.html`).

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use chrono::Utc;
use connectors::Secret;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::ApiError;
use crate::daemon::Bridge;
use crate::review::ReviewView;

pub fn routes() -> Router<Arc<Bridge>> {
    Router::new()
        .route("/review", get(list))
        .route("/review/{customer}/{period}", get(show))
        .route(
            "/review/{customer}/{period}/{action}",
            post(decide).layer(DefaultBodyLimit::max(64 * 1024)),
        )
}

type HmacSha256 = hmac::Hmac<Sha256>;

/// Who is asking: the actor recorded, and the secret that proved it.
struct Signed {
    actor: String,
    secret: Secret,
}

/// Equal in constant time: both sides hashed, the digests compared with
/// no early exit (the lengths do not show either).
fn same(a: &[u8], b: &[u8]) -> bool {
    let (x, y) = (Sha256::digest(a), Sha256::digest(b));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// The credential of a request, if it carries a valid one.
fn authenticate(bridge: &Bridge, headers: &HeaderMap) -> Option<Signed> {
    let review = &bridge.settings.review;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = review.token.as_ref()?;
        return same(rest.trim().as_bytes(), token.expose().as_bytes()).then(|| Signed {
            actor: "token".into(),
            secret: token.clone(),
        });
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (name, password) = decoded.split_once(':')?;
    // An unknown user is compared too, so that the time taken does not
    // tell which names exist.
    let known = review.users.get(name);
    let expected = known.map_or("\u{0}no user\u{0}", |s| s.expose());
    let ok = same(password.as_bytes(), expected.as_bytes());
    match known {
        Some(secret) if ok => Some(Signed {
            actor: name.to_owned(),
            secret: secret.clone(),
        }),
        _ => None,
    }
}

/// 401, asking a browser for basic-auth credentials.
fn unauthorized(bridge: &Bridge) -> ApiError {
    let configured =
        bridge.settings.review.token.is_some() || !bridge.settings.review.users.is_empty();
    ApiError::LoginRequired(if configured {
        "authentication required: a [review.users] name and password, or the [review] token as a bearer token".into()
    } else {
        "the review pages are closed: no [review] token or [review.users] is configured".into()
    })
}

/// The MAC of a draft's revision under the signed-in credential: what a
/// review form carries so that a form of another revision or user fails.
fn form_mac(signed: &Signed, customer: &str, period: &str, revision: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(signed.secret.expose().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(
        format!(
            "review-form\n{}\n{customer}\n{period}\n{revision}",
            signed.actor
        )
        .as_bytes(),
    );
    mac
}

/// The form token of a draft's revision for the signed-in credential.
fn form_token(signed: &Signed, customer: &str, period: &str, revision: i64) -> String {
    hex::encode(
        form_mac(signed, customer, period, revision)
            .finalize()
            .into_bytes(),
    )
}

fn form_token_ok(
    signed: &Signed,
    customer: &str,
    period: &str,
    revision: i64,
    token: &str,
) -> bool {
    let Ok(bytes) = hex::decode(token) else {
        return false;
    };
    form_mac(signed, customer, period, revision)
        .verify_slice(&bytes)
        .is_ok()
}

/// A request from another site (a form posted from elsewhere).
fn cross_site(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return true;
    }
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    origin == "null" || !origin_host.eq_ignore_ascii_case(host)
}

static TEMPLATES: LazyLock<Result<minijinja::Environment<'static>, String>> = LazyLock::new(|| {
    let mut env = minijinja::Environment::new();
    env.add_template(
        "page.html",
        include_str!("../../templates/review/page.html"),
    )
    .map_err(|e| e.to_string())?;
    Ok(env)
});

#[derive(serde::Serialize)]
struct DraftOnPage {
    view: ReviewView,
    href: String,
    csrf: String,
}

fn page(
    title: &str,
    signed: &Signed,
    drafts: Vec<ReviewView>,
    notice: Option<String>,
) -> Result<Response, ApiError> {
    let drafts: Vec<DraftOnPage> = drafts
        .into_iter()
        .map(|view| DraftOnPage {
            href: format!(
                "/review/{}/{}",
                crate::links::encode_segment(&view.customer),
                crate::links::encode_segment(&view.period)
            ),
            csrf: form_token(signed, &view.customer, &view.period, view.revision),
            view,
        })
        .collect();
    let html = TEMPLATES.as_ref().map_err(Clone::clone).and_then(|env| {
        env.get_template("page.html")
            .and_then(|t| {
                t.render(minijinja::context! {
                    title => title,
                    actor => &signed.actor,
                    drafts => minijinja::value::Serde(&drafts),
                    notice => notice,
                })
            })
            .map_err(|e| e.to_string())
    });
    match html {
        Ok(html) => {
            let mut r = html.into_response();
            secure_headers(r.headers_mut());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Ok(r)
        }
        Err(e) => {
            tracing::error!("review page: {e}");
            Err(ApiError::Internal(
                "the review page cannot be rendered".into(),
            ))
        }
    }
}

fn secure_headers(h: &mut HeaderMap) {
    // Not `no-referrer`: under it a browser sends `Origin: null` with the
    // page's own forms, which the cross-site check refuses.
    super::private_page(h, "same-origin");
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("review: {}", crate::redact(&e.to_string()));
    ApiError::Unavailable("the review queue cannot be read right now".into())
}

fn not_under_review() -> ApiError {
    ApiError::NotFound("no draft of this customer and month is under review".into())
}

/// `done=ACTION:CUSTOMER/PERIOD` of the redirect after a decision, as a notice.
fn notice(query: Option<&str>) -> Option<String> {
    let q = query?;
    let v = q.split('&').find_map(|p| p.strip_prefix("done="))?;
    let v = percent_decode(v);
    let (action, what) = v.split_once(':')?;
    let verb = match action {
        "approve" => "approved: it is pushed by the outbox",
        "hold" => "held",
        "reject" => "rejected: it is not pushed",
        _ => return None,
    };
    Some(format!("{what} {verb}"))
}

/// `GET /review`: every waiting draft.
pub async fn list(
    State(bridge): State<Arc<Bridge>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let signed = authenticate(&bridge, &headers).ok_or_else(|| unauthorized(&bridge))?;
    let waiting = bridge.store.reviews(true).await.map_err(unavailable)?;
    let mut views = Vec::new();
    for r in waiting {
        let Ok(month) = r.period.parse() else {
            continue;
        };
        if let Some(v) = crate::review::view(&bridge.store, &r.customer, month)
            .await
            .map_err(unavailable)?
        {
            views.push(v);
        }
    }
    page(
        "Drafts awaiting review",
        &signed,
        views,
        notice(query.as_deref()),
    )
}

/// `GET /review/{customer}/{period}`: one draft, waiting or decided.
pub async fn show(
    State(bridge): State<Arc<Bridge>>,
    headers: HeaderMap,
    Path((customer, period)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let signed = authenticate(&bridge, &headers).ok_or_else(|| unauthorized(&bridge))?;
    let month = period
        .parse()
        .map_err(|_| ApiError::NotFound("no such period: write YYYY-MM".into()))?;
    match crate::review::view(&bridge.store, &customer, month)
        .await
        .map_err(unavailable)?
    {
        Some(v) => page(
            &format!("Draft of {customer} for {period}"),
            &signed,
            vec![v],
            None,
        ),
        None => Err(not_under_review()),
    }
}

/// `application/x-www-form-urlencoded` value decoding.
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// `POST /review/{customer}/{period}/{action}`.
pub async fn decide(
    State(bridge): State<Arc<Bridge>>,
    headers: HeaderMap,
    Path((customer, period, action)): Path<(String, String, String)>,
    body: String,
) -> Result<Response, ApiError> {
    let signed = authenticate(&bridge, &headers).ok_or_else(|| unauthorized(&bridge))?;
    let decision = match action.as_str() {
        "approve" => store::Decision::Approve,
        "hold" => store::Decision::Hold,
        "reject" => store::Decision::Reject,
        _ => {
            return Err(ApiError::NotFound(
                "the actions are approve, hold and reject".into(),
            ));
        }
    };
    if cross_site(&headers) {
        return Err(ApiError::Forbidden(
            "refused: the form was not sent from this site".into(),
        ));
    }
    let revision = form_field(&body, "revision").and_then(|r| r.parse::<i64>().ok());
    let token = form_field(&body, "csrf").unwrap_or_default();
    let Some(revision) =
        revision.filter(|r| form_token_ok(&signed, &customer, &period, *r, &token))
    else {
        return Err(ApiError::Forbidden(
            "refused: the form's token is missing or not yours; reload the review page".into(),
        ));
    };
    let reason = form_field(&body, "reason")
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if decision != store::Decision::Approve && reason.is_none() {
        return Err(ApiError::Unprocessable(
            "a hold or a rejection needs a reason".into(),
        ));
    }
    match bridge
        .store
        .review(&customer, &period)
        .await
        .map_err(unavailable)?
    {
        Some(r) if r.revision == revision => {}
        Some(_) => {
            return Err(ApiError::Conflict(
                "the draft was billed again since the page was loaded: reload it".into(),
            ));
        }
        None => return Err(not_under_review()),
    }
    match bridge
        .store
        .decide(
            &customer,
            &period,
            decision,
            &signed.actor,
            reason.as_deref(),
            Utc::now(),
        )
        .await
    {
        Ok(r) => {
            tracing::info!(customer = %r.customer, period = %r.period, actor = %signed.actor, "draft {}", r.state.as_str());
            if decision == store::Decision::Approve {
                bridge.wake_outbox(&r.target);
            }
            let done = crate::links::encode_segment(&format!("{action}:{customer}/{period}"));
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/review?done={done}")) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Ok(resp)
        }
        Err(store::DecideError::Store(e)) => Err(unavailable(e)),
        Err(e) => Err(ApiError::Conflict(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_decode() {
        assert_eq!(percent_decode("ask+Bob%2C+please"), "ask Bob, please");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
        assert_eq!(
            form_field("csrf=ab&reason=a%26b", "reason").as_deref(),
            Some("a&b")
        );
        assert_eq!(form_field("csrf=ab", "reason"), None);
    }

    #[test]
    fn a_form_token_is_bound_to_the_credential_the_draft_and_its_revision() {
        let anna = Signed {
            actor: "anna".into(),
            secret: Secret::new("pw-a"),
        };
        let bob = Signed {
            actor: "bob".into(),
            secret: Secret::new("pw-b"),
        };
        let t = form_token(&anna, "acme", "2026-10", 1);
        assert!(form_token_ok(&anna, "acme", "2026-10", 1, &t));
        assert!(!form_token_ok(&bob, "acme", "2026-10", 1, &t));
        assert!(!form_token_ok(&anna, "acme", "2026-10", 2, &t));
        assert!(!form_token_ok(&anna, "other", "2026-10", 1, &t));
        assert!(!form_token_ok(&anna, "acme", "2026-10", 1, "zz"));
    }

    #[tokio::test]
    async fn the_page_escapes_what_tickets_and_mappings_wrote() {
        let anna = Signed {
            actor: "anna".into(),
            secret: Secret::new("pw-a"),
        };
        let evil = "<script>alert(1)</script>";
        let view = ReviewView {
            customer: "acme\"><b>".into(),
            period: "2026-10".into(),
            revision: 1,
            key: "draft:acme:2026-10:r1".into(),
            state: "awaiting".into(),
            policy: "required".into(),
            reason: None,
            decided_by: None,
            decided_at: None,
            total_net: Some("10.00".into()),
            currency: Some("EUR".into()),
            lines: vec![crate::review::LineView {
                description: evil.into(),
                quantity: "1".into(),
                unit_price: "10.00".into(),
                amount: "10.00".into(),
                explanation: format!("hourly rate: {evil}"),
                last_month: None,
            }],
            previous: None,
            change: Some("+10.00".into()),
        };
        let r = page("Drafts", &anna, vec![view], None).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("acme\"><b>"), "{html}");
        // minijinja escapes `/` in attributes too (`&#x2f;`), which browsers read back.
        assert!(
            html.contains("&#x2f;review&#x2f;acme%22%3E%3Cb%3E&#x2f;2026-10/approve"),
            "{html}"
        );
    }

    #[test]
    fn constant_time_equality_is_equality() {
        assert!(same(b"s3cret", b"s3cret"));
        assert!(!same(b"s3cret", b"s3creT"));
        assert!(!same(b"s3cret", b"s3cret-longer"));
    }
}
