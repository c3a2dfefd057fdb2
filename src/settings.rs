//! Daemon settings: a TOML file, overridden by `CONTRACT_BRIDGE__…`
//! environment variables (`CONTRACT_BRIDGE__STORE__URL=postgres://…`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use connectors::{Secret, SourceConfig, TargetConfig};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub store: StoreSettings,
    pub mapping: MappingSettings,
    pub billing: BillingSettings,
    /// Helpdesk sources by name.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSettings>,
    /// Accounting targets by name.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetConfig>,
    #[serde(default)]
    pub outbox: OutboxSettings,
    /// How every outbound request is retried (sync reads and pushes alike).
    #[serde(default)]
    pub retry: crate::transport::RetrySettings,
    #[serde(default)]
    pub schedule: ScheduleSettings,
    /// The HTTP endpoints (`/healthz`, `/readyz`, `/metrics`, `/webhooks/{source}`)
    /// while running without `--once`.
    #[serde(default)]
    pub http: Option<HttpSettings>,
    /// Work reports, their PDF and the signed balance statements.
    #[serde(default)]
    pub report: ReportSettings,
    /// The file these settings were read from, for messages.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// Work reports (one per customer at each close) and balance statements.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// A folder whose files replace the embedded ones of `templates/report/`
    /// (`report.html`, `statement.html`, `balances.html`, `style.css`,
    /// `strings/LANG.toml`); files it lacks keep the defaults.
    #[serde(default)]
    pub templates: Option<PathBuf>,
    /// A Chromium (or Chrome) binary that prints the PDF of each report
    /// (`--headless --print-to-pdf`); none: reports are stored as HTML only.
    #[serde(default)]
    pub chromium: Option<PathBuf>,
    /// The key that signs statement links (`env:NAME`, `file:PATH` or
    /// literal); none: `GET /statement/{customer}` answers 403 to everyone.
    #[serde(default)]
    pub statement_secret: Option<connectors::Secret>,
    /// Where customers reach this daemon (`https://bridge.example.com`), to
    /// write statement links into drafts; none: drafts carry no link.
    #[serde(default)]
    pub public_url: Option<String>,
    /// How long a statement link written into a draft works (default 90).
    #[serde(default = "default_link_days")]
    pub link_valid_days: u32,
}

fn default_link_days() -> u32 {
    90
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            templates: None,
            chromium: None,
            statement_secret: None,
            public_url: None,
            link_valid_days: default_link_days(),
        }
    }
}

impl ReportSettings {
    /// The signed statement link of `customer`, valid until `expires`
    /// (Unix seconds), when a public address and a secret are configured.
    pub fn statement_url(&self, customer: &str, expires: i64) -> Option<String> {
        let base = self.public_url.as_deref()?;
        let secret = self.statement_secret.as_ref()?;
        Some(format!(
            "{}/statement/{}?{}",
            base.trim_end_matches('/'),
            crate::statement::encode_segment(customer),
            crate::statement::query(secret, customer, expires)
        ))
    }
}

/// A helpdesk source: its connector (`type = …` and the connector's keys)
/// and how the daemon treats it.
#[derive(Clone, Debug, Deserialize)]
pub struct SourceSettings {
    #[serde(flatten)]
    pub connector: SourceConfig,
    /// When to poll it (a cron expression; default `schedule.poll`).
    #[serde(default)]
    pub poll: Option<String>,
    /// The target (a key of `targets`) that receives SLA warning and breach
    /// notes for this source's tickets; none: no notes.
    #[serde(default)]
    pub notes: Option<String>,
    /// The shared secret of `POST /webhooks/{source}` (`env:NAME`,
    /// `file:PATH` or literal); none: webhooks for it are refused.
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
}

/// Cron expressions, six fields with seconds first (`sec min hour day month weekday`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    /// Polling of every source without its own `poll`.
    #[serde(default = "default_poll")]
    pub poll: String,
    /// The SLA tick: warnings and breaches become notes.
    #[serde(default = "default_sla_tick")]
    pub sla: String,
    /// The period close, read in each contract's time zone: a month closes
    /// at the first time this fires after it ended.
    #[serde(default = "default_close")]
    pub close: String,
    /// The status poll: what became of every pushed draft not yet final,
    /// and the prepaid sales in every accounting target.
    #[serde(default = "default_status_poll")]
    pub status: String,
    /// How often the mapping files are checked for changes.
    #[serde(default = "default_watch")]
    pub mapping_check_secs: f64,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            poll: default_poll(),
            sla: default_sla_tick(),
            close: default_close(),
            status: default_status_poll(),
            mapping_check_secs: default_watch(),
        }
    }
}
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// `address:port`, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Larger webhook bodies are refused with 413.
    #[serde(default = "default_body_limit")]
    pub webhook_max_bytes: usize,
    /// A webhook whose timestamp is further than this from now is refused.
    #[serde(default = "default_replay_window")]
    pub webhook_replay_window_secs: i64,
    /// A connection that has not sent a whole request head (request line
    /// and headers) this long after it opened or after its last answer is closed.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: f64,
    /// A request whose body has not fully arrived this long after its head
    /// is refused and its connection closed.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout_secs: f64,
    /// A kept-alive connection with nothing sent either way for this long is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: f64,
    /// Connections served at once. Past it, as many again are shed: each
    /// answers `/healthz` (200) or anything else 503 and is closed within
    /// a second; past that, new connections are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl HttpSettings {
    /// The listen address and the limits, or what is wrong with them.
    fn check(&self) -> Result<(), String> {
        use std::net::ToSocketAddrs;
        if let Err(e) = self.listen.to_socket_addrs() {
            return Err(format!(
                "http.listen: `{}` is not an address to listen on ({e}); write address:port, e.g. 127.0.0.1:8080",
                self.listen
            ));
        }
        for (key, secs) in [
            (
                "http.header_read_timeout_secs",
                self.header_read_timeout_secs,
            ),
            ("http.body_read_timeout_secs", self.body_read_timeout_secs),
            ("http.idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
                return Err(format!(
                    "{key}: {secs} is not a timeout: write seconds above 0 and at most 86400"
                ));
            }
        }
        if self.max_connections == 0 {
            return Err("http.max_connections: 0 would refuse every connection: write 1 or more (default 256)".into());
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite://PATH` (created with mode 0600) or `postgres://…`.
    pub url: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSettings {
    /// A mapping file or a folder of them.
    pub path: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingSettings {
    /// The first month the bridge invoices (`YYYY-MM`); earlier work is only replayed.
    pub first_period: String,
    /// The target (a key of `targets`) that receives invoice drafts.
    pub target: String,
    /// How many months back a late change (work logged or re-categorised
    /// after its period's draft) still becomes a correction line.
    #[serde(default = "default_correction_months")]
    pub correction_months: u32,
    /// A month closes only when every source feeding the customer is known
    /// complete this many minutes past its end (late webhooks, index lag).
    #[serde(default)]
    pub grace_minutes: u32,
    /// A period held this long for an incomplete source is an alert: logged
    /// as an error, and `/readyz` answers 503.
    #[serde(default = "default_hold_alert")]
    pub hold_alert_minutes: u32,
}

fn default_hold_alert() -> u32 {
    24 * 60
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    /// After this many failed attempts an item is dead: shown by `status`, never retried.
    #[serde(default = "default_attempts")]
    pub max_attempts: i64,
    /// First retry delay; doubles with every attempt, plus jitter.
    #[serde(default = "default_base_delay")]
    pub base_delay_secs: f64,
    #[serde(default = "default_max_delay")]
    pub max_delay_secs: f64,
    /// How long a claimed item is left to the instance pushing it before
    /// another may take it (the claim is a lease, not a held connection).
    #[serde(default = "default_lease")]
    pub lease_secs: f64,
    /// Drafts per create request where the system takes several (Xero:
    /// up to 50); 1 (the default) pushes one at a time.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Per target, the requests it allows a minute and a day (Xero: 60 and
    /// 5,000 per organisation, the defaults for a Xero target): `status`
    /// plans the waiting drafts against them.
    #[serde(default)]
    pub limits: BTreeMap<String, RequestLimits>,
}

/// A target's request budget.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RequestLimits {
    pub per_minute: u32,
    pub per_day: u32,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            max_attempts: default_attempts(),
            base_delay_secs: default_base_delay(),
            max_delay_secs: default_max_delay(),
            lease_secs: default_lease(),
            batch: default_batch(),
            limits: BTreeMap::new(),
        }
    }
}

fn default_poll() -> String {
    "0 */5 * * * *".into()
}
fn default_sla_tick() -> String {
    "0 * * * * *".into()
}
fn default_close() -> String {
    "0 0 6 1 * *".into()
}
fn default_status_poll() -> String {
    "0 */15 * * * *".into()
}
fn default_watch() -> f64 {
    2.0
}
fn default_body_limit() -> usize {
    1 << 20
}
fn default_replay_window() -> i64 {
    300
}
fn default_header_read_timeout() -> f64 {
    10.0
}
fn default_body_read_timeout() -> f64 {
    30.0
}
fn default_idle_timeout() -> f64 {
    60.0
}
fn default_max_connections() -> usize {
    256
}
fn default_correction_months() -> u32 {
    3
}
fn default_attempts() -> i64 {
    8
}
fn default_base_delay() -> f64 {
    30.0
}
fn default_max_delay() -> f64 {
    3600.0
}
fn default_lease() -> f64 {
    600.0
}
fn default_batch() -> usize {
    1
}

/// A cron expression, or the message that says what is wrong with it.
pub fn cron(field: &str, expr: &str) -> Result<cron::Schedule, String> {
    expr.parse::<cron::Schedule>().map_err(|e| {
        format!(
            "{field}: `{expr}` is not a cron expression ({e}); write six fields, seconds first, \
             for example \"0 0 6 1 * *\" (06:00 on the 1st)"
        )
    })
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct SettingsError {
    pub file: String,
    pub message: String,
}

impl Settings {
    /// Tells each Xero target its name and whether report PDFs are made,
    /// from which its OAuth scopes are derived; checks a `scopes` setting.
    fn derive_xero_scopes(&mut self) -> Result<(), String> {
        let pdfs = self.report.chromium.is_some();
        for (name, target) in &mut self.targets {
            if let TargetConfig::Xero(x) = target {
                x.name = name.clone();
                x.report_pdfs = pdfs;
                x.check_scopes()?;
                if let Some(w) = x.scopes_warning() {
                    eprintln!("warning: {w}");
                }
            }
        }
        Ok(())
    }

    /// `targets.NAME (xero): scopes …` of each Xero target: those asked
    /// for, and those granted where a token answer said (`granted`: by target).
    pub fn xero_scope_lines(&self, granted: &BTreeMap<String, (String, String)>) -> Vec<String> {
        let mut out = Vec::new();
        for (name, target) in &self.targets {
            if let TargetConfig::Xero(x) = target {
                out.push(format!("xero scopes {name}: requested {}", x.scopes_line()));
                if let Some((scopes, at)) = granted.get(name) {
                    out.push(format!(
                        "xero scopes {name}: granted {scopes} (token of {})",
                        at.chars().take(19).collect::<String>()
                    ));
                }
            }
        }
        out
    }

    /// [`Settings::xero_scope_lines`] for `status --json`: by target,
    /// `{requested: [...], granted: "…" or null, granted_at}`.
    pub fn xero_scopes_json(
        &self,
        granted: &BTreeMap<String, (String, String)>,
    ) -> serde_json::Map<String, serde_json::Value> {
        self.targets
            .iter()
            .filter_map(|(name, target)| match target {
                TargetConfig::Xero(x) => Some((name, x)),
                _ => None,
            })
            .map(|(name, x)| {
                let g = granted.get(name);
                (
                    name.clone(),
                    serde_json::json!({
                        "requested": x.scopes(),
                        "granted": g.map(|(s, _)| s),
                        "granted_at": g.map(|(_, at)| at),
                    }),
                )
            })
            .collect()
    }

    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let err = |message: String| SettingsError {
            file: path.display().to_string(),
            message,
        };
        if !path.is_file() {
            return Err(err("cannot read the configuration file".into()));
        }
        // A password inside any URL of the settings is a secret as well.
        if let Ok(text) = std::fs::read_to_string(path) {
            connectors::secret::remember_url_passwords(&text);
        }
        for (name, value) in std::env::vars() {
            if name.starts_with("CONTRACT_BRIDGE__") {
                connectors::secret::remember_url_passwords(&value);
            }
        }
        let mut settings: Settings = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("CONTRACT_BRIDGE")
                    .prefix_separator("__")
                    .separator("__"),
            )
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| err(e.to_string()))?;
        settings.derive_xero_scopes().map_err(err)?;
        settings.file = Some(path.to_path_buf());
        if let Some(h) = &settings.http {
            h.check().map_err(err)?;
        }
        if !settings.targets.contains_key(&settings.billing.target) {
            let known: Vec<&str> = settings.targets.keys().map(String::as_str).collect();
            return Err(err(format!(
                "billing.target: no target named `{}`; defined targets: {}",
                settings.billing.target,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )));
        }
        let target_named = |field: String, name: &str| {
            if settings.targets.contains_key(name) {
                Ok(())
            } else {
                Err(err(format!(
                    "{field}: no target named `{name}`; defined targets: {}",
                    settings
                        .targets
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        };
        for (name, source) in &settings.sources {
            source
                .connector
                .check()
                .map_err(|e| err(format!("sources.{name}: {e}")))?;
            if let Some(t) = &source.notes {
                // A helpdesk source may take its own notes.
                let itself = t == name && source.connector.is_helpdesk();
                if !itself {
                    target_named(format!("sources.{name}.notes"), t)?;
                }
            }
            if let Some(p) = &source.poll {
                cron(&format!("sources.{name}.poll"), p).map_err(err)?;
            }
        }
        for (field, expr) in [
            ("schedule.poll", &settings.schedule.poll),
            ("schedule.sla", &settings.schedule.sla),
            ("schedule.close", &settings.schedule.close),
            ("schedule.status", &settings.schedule.status),
        ] {
            cron(field, expr).map_err(err)?;
        }
        if settings
            .billing
            .first_period
            .parse::<engine::period::Month>()
            .is_err()
        {
            return Err(err(format!(
                "billing.first_period: `{}` is not a month: write YYYY-MM, for example 2026-10",
                settings.billing.first_period
            )));
        }
        Ok(settings)
    }
}
