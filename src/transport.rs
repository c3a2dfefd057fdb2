//! The one HTTP transport of the process.
//!
//! Connectors only build requests and read answers; every request the
//! daemon sends — a sync's reads, a webhook's re-reads, an outbox push, a
//! token grant, a status poll — goes through [`Transport::exchange`], which
//! owns the single `reqwest` client and decides, the same way for all of
//! them, what to do with a failure:
//!
//! - a **rate limit** per system (`governor`), from the requests per second
//!   its connector allows, paces every attempt;
//! - a **429** is waited out, `Retry-After` honoured (up to
//!   `retry.max_retry_after_secs`; longer, the answer goes back to the caller,
//!   whose connector reads it as throttled and whose pass fails);
//! - a **5xx** or a **timeout** is retried with exponential backoff and jitter
//!   when repeating the request is harmless ([`Safety::Read`]); a write is
//!   repeated only when it surely did not arrive (the connection was
//!   refused) or was refused unprocessed (429), because a create repeated
//!   after a lost answer would create twice: the outbox retries a write
//!   from its lookup step instead;
//! - every system has a **retry budget per pass**
//!   ([`Transport::new_pass`]): a system failing every request costs a
//!   bounded number of tries, then the pass fails and says so.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use connectors::{ConnectorError, HttpMethod, HttpRequest, HttpResponse};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

/// `[retry]`: how the transport repeats a failed request.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    /// Tries of one request, the first included.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// First retry delay; doubles with every try, plus up to one more of jitter.
    #[serde(default = "default_base_delay_ms")]
    pub base_delay_ms: u64,
    #[serde(default = "default_max_delay_ms")]
    pub max_delay_ms: u64,
    /// A 429 asking for a longer pause ends the pass instead of waiting.
    #[serde(default = "default_max_retry_after")]
    pub max_retry_after_secs: u64,
    /// Retries one system may spend in one pass (a sync of a source, a
    /// drain of a target) before its requests fail at the first error.
    #[serde(default = "default_budget")]
    pub budget_per_pass: u32,
}

fn default_attempts() -> u32 {
    5
}
fn default_base_delay_ms() -> u64 {
    500
}
fn default_max_delay_ms() -> u64 {
    30_000
}
fn default_max_retry_after() -> u64 {
    60
}
fn default_budget() -> u32 {
    100
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            attempts: default_attempts(),
            base_delay_ms: default_base_delay_ms(),
            max_delay_ms: default_max_delay_ms(),
            max_retry_after_secs: default_max_retry_after(),
            budget_per_pass: default_budget(),
        }
    }
}

/// Whether a request may be sent again after an answer was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Safety {
    /// Reading (a GET, a search by POST): repeating it changes nothing.
    Read,
    /// Creating or changing something: repeated only when it surely did not arrive.
    Write,
}

impl Safety {
    /// A GET reads; anything else may write.
    pub fn of(request: &HttpRequest) -> Safety {
        match request.method {
            HttpMethod::Get => Safety::Read,
            HttpMethod::Post | HttpMethod::Put => Safety::Write,
        }
    }
}

/// The process's HTTP client, rate limiters and retry budgets.
pub struct Transport {
    client: reqwest::Client,
    limiters: BTreeMap<String, DefaultDirectRateLimiter>,
    policy: RetrySettings,
    budgets: Mutex<BTreeMap<String, u32>>,
    /// Requests sent, and retries among them, for `/metrics`.
    pub requests: AtomicU64,
    pub retries: AtomicU64,
}

/// Why one try failed before any answer came.
enum Lost {
    /// The connection was refused or could not be made: nothing arrived.
    NotSent(String),
    /// A timeout or a broken answer: it may have arrived.
    Unknown(String),
}

impl Transport {
    /// `rates`: each system's requests per second (none: unlimited).
    pub fn new(
        policy: RetrySettings,
        rates: impl IntoIterator<Item = (String, u32)>,
    ) -> Result<Transport, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("contract-bridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let limiters = rates
            .into_iter()
            .filter_map(|(name, rate)| {
                NonZeroU32::new(rate).map(|r| (name, RateLimiter::direct(Quota::per_second(r))))
            })
            .collect();
        Ok(Transport {
            client,
            limiters,
            policy,
            budgets: Mutex::new(BTreeMap::new()),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        })
    }

    /// A new pass of `name` (a sync, a drain): its retry budget is full again.
    pub fn new_pass(&self, name: &str) {
        if let Ok(mut b) = self.budgets.lock() {
            b.insert(name.to_owned(), self.policy.budget_per_pass);
        }
    }

    /// Takes one retry from `name`'s budget; `false` when it is spent.
    fn spend(&self, name: &str) -> bool {
        let Ok(mut b) = self.budgets.lock() else {
            return false;
        };
        let left = b
            .entry(name.to_owned())
            .or_insert(self.policy.budget_per_pass);
        if *left == 0 {
            return false;
        }
        *left -= 1;
        true
    }

    /// Waits for the rate limit of `name`, if it has one.
    pub async fn pace(&self, name: &str) {
        if let Some(limiter) = self.limiters.get(name) {
            limiter.until_ready().await;
        }
    }

    /// The delay before try `tries + 1`: `base × 2^(tries−1)`, capped, plus
    /// up to one `base` of jitter so that many callers do not align.
    fn backoff(&self, tries: u32) -> Duration {
        let base = self.policy.base_delay_ms as f64;
        let exp = (base * f64::from(1u32 << tries.saturating_sub(1).min(20)))
            .min(self.policy.max_delay_ms as f64);
        let jitter = rand_unit() * base;
        Duration::from_secs_f64((exp + jitter) / 1000.0)
    }

    /// Sends `request` to system `name`, retrying as the module docs say.
    /// An answer is returned whatever its status once no retry is due; an
    /// error only when no answer came at all.
    pub async fn exchange(
        &self,
        name: &str,
        safety: Safety,
        request: HttpRequest,
    ) -> Result<HttpResponse, ConnectorError> {
        let mut tries = 0u32;
        loop {
            tries += 1;
            self.pace(name).await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let last = tries >= self.policy.attempts.max(1);
            let wait = match self.send_once(request.clone()).await {
                Ok(answer) => {
                    let wait = match answer.status {
                        429 => {
                            let asked = answer.retry_after.unwrap_or_else(|| self.backoff(tries));
                            (asked <= Duration::from_secs(self.policy.max_retry_after_secs))
                                .then_some(asked)
                        }
                        500 | 502 | 503 | 504 if safety == Safety::Read => {
                            Some(self.backoff(tries))
                        }
                        _ => None,
                    };
                    match wait {
                        Some(w) if !last && self.spend(name) => w,
                        _ => return Ok(answer),
                    }
                }
                Err(lost) => {
                    let (may_retry, message) = match lost {
                        Lost::NotSent(m) => (true, m),
                        Lost::Unknown(m) => (safety == Safety::Read, m),
                    };
                    if !may_retry || last || !self.spend(name) {
                        return Err(ConnectorError::Transient(message));
                    }
                    self.backoff(tries)
                }
            };
            self.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                system = name,
                tries,
                wait_ms = wait.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once(&self, r: HttpRequest) -> Result<HttpResponse, Lost> {
        let url = crate::redact(&r.url);
        let method = match r.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
        };
        let mut request = self
            .client
            .request(method, &r.url)
            .timeout(r.timeout)
            .body(r.body);
        for (name, value) in &r.headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                Lost::Unknown(format!(
                    "{url}: no answer within {} ms",
                    r.timeout.as_millis()
                ))
            } else if e.is_connect() {
                Lost::NotSent(format!("{url}: {}", crate::redact(&e.to_string())))
            } else {
                Lost::Unknown(format!("{url}: {}", crate::redact(&e.to_string())))
            }
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        let body = response
            .text()
            .await
            .map_err(|e| Lost::Unknown(format!("{url}: reading the answer: {e}")))?;
        Ok(HttpResponse {
            status,
            retry_after,
            body,
        })
    }
}

/// A number in [0, 1) that differs between calls (jitter needs no more).
fn rand_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() % 1_000_000) as f64 / 1_000_000.0
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value.trim()).ok()?;
    // Reading the clock here is the edge: the header names a wall-clock instant.
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(attempts: u32, budget: u32) -> Transport {
        Transport::new(
            RetrySettings {
                attempts,
                base_delay_ms: 1,
                max_delay_ms: 4,
                max_retry_after_secs: 1,
                budget_per_pass: budget,
            },
            [],
        )
        .unwrap()
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            None,
            "a past date"
        );
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_at_most_one_base_of_jitter() {
        let t = Transport::new(
            RetrySettings {
                base_delay_ms: 100,
                max_delay_ms: 1000,
                ..RetrySettings::default()
            },
            [],
        )
        .unwrap();
        for (tries, exp) in [(1, 100.0), (2, 200.0), (3, 400.0), (9, 1000.0)] {
            for _ in 0..20 {
                let d = t.backoff(tries).as_secs_f64() * 1000.0;
                assert!(d >= exp && d < exp + 100.0, "try {tries}: {d}");
            }
        }
    }

    #[test]
    fn a_budget_is_spent_and_refilled_by_a_new_pass() {
        let t = transport(5, 2);
        assert!(t.spend("zammad") && t.spend("zammad"));
        assert!(!t.spend("zammad"), "spent");
        assert!(t.spend("xero"), "budgets are per system");
        t.new_pass("zammad");
        assert!(t.spend("zammad"));
    }

    #[tokio::test]
    async fn reads_are_retried_through_5xx_writes_are_not() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        let t = transport(5, 100);
        let get = HttpRequest::json(HttpMethod::Get, server.uri(), Vec::new(), 2000);
        let answer = t.exchange("x", Safety::Read, get).await.unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
        let post = HttpRequest::json(HttpMethod::Post, server.uri(), b"{}".to_vec(), 2000);
        let answer = t.exchange("x", Safety::Write, post).await.unwrap();
        assert_eq!(answer.status, 503, "a write is not repeated after a 5xx");
        let sent = server.received_requests().await.unwrap();
        assert_eq!(sent.len(), 4, "3 GETs, 1 POST");
        assert_eq!(t.retries.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_429_is_waited_out_even_for_a_write_and_a_long_one_is_returned() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/short"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/short"))
            .respond_with(ResponseTemplate::new(201))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/long"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
            .mount(&server)
            .await;
        let t = transport(5, 100);
        let short = HttpRequest::json(
            HttpMethod::Post,
            format!("{}/short", server.uri()),
            b"{}".to_vec(),
            2000,
        );
        assert_eq!(
            t.exchange("x", Safety::Write, short).await.unwrap().status,
            201
        );
        let long = HttpRequest::json(
            HttpMethod::Post,
            format!("{}/long", server.uri()),
            b"{}".to_vec(),
            2000,
        );
        let answer = t.exchange("x", Safety::Write, long).await.unwrap();
        assert_eq!(
            (answer.status, answer.retry_after),
            (429, Some(Duration::from_secs(3600)))
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_then_reported_with_the_url_redacted() {
        // A port nothing listens on: bound, then dropped.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t = transport(3, 100);
        let r = HttpRequest::json(
            HttpMethod::Post,
            format!("http://user:hunter2@127.0.0.1:{port}/x"),
            Vec::new(),
            2000,
        );
        let e = t
            .exchange("x", Safety::Write, r)
            .await
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(t.requests.load(Ordering::Relaxed), 3);
    }
}
