//! Daemon settings, read in layers, each overriding the one before:
//!
//! 1. the defaults (written beside each field below, listed in
//!    `docs/configuration.md`);
//! 2. the main TOML file (`--config FILE`);
//! 3. the fragments in the `conf.d/` folder beside it, `*.toml` in name
//!    order (`conf.d/10-xero.toml`, `conf.d/20-secrets.toml`: one per
//!    concern, as packages and configuration management like them);
//! 4. environment variables `CONTRACT_BRIDGE__SECTION__KEY`
//!    (`CONTRACT_BRIDGE__STORE__URL=postgres://…`).
//!
//! `contract-bridge config show` prints the effective settings with the
//! layer each key came from, secrets masked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use connectors::{Secret, SourceConfig, TargetConfig};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
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
    /// Who may use the `/review` pages (finance's approval of drafts).
    #[serde(default)]
    pub review: ReviewSettings,
    /// The key that seals OAuth refresh tokens in the store (docs/connect.md).
    #[serde(default)]
    pub secrets: SecretsSettings,
    /// `contract-bridge connect`: the loopback redirect listener.
    #[serde(default)]
    pub connect: ConnectSettings,
    /// The file these settings were read from, for messages.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// The credentials of the daemon's `/review` pages; none configured: every
/// request is refused (401). Secrets are `env:NAME`, `file:PATH` or literal.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewSettings {
    /// A bearer token (`Authorization: Bearer …`), for scripts; recorded
    /// in the audit trail as the actor `token`.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Basic-auth users, `name = "secret"`, for people in a browser; each
    /// decision is recorded under the user's name.
    #[serde(default)]
    pub users: BTreeMap<String, Secret>,
}

impl ReviewSettings {
    /// A credential that is empty, or a user name basic auth cannot carry,
    /// would let anyone in or no one.
    fn check(&self) -> Result<(), String> {
        if self
            .token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return Err(
                "review.token is empty: write a long random token, or leave the key out".into(),
            );
        }
        for (name, secret) in &self.users {
            if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
                return Err(format!(
                    "review.users: `{name}` cannot be a user name: write one without `:` or control characters"
                ));
            }
            if secret.expose().trim().is_empty() {
                return Err(format!(
                    "review.users.{name}: the password is empty: write one, or remove the user"
                ));
            }
        }
        Ok(())
    }
}

/// Secrets the daemon keeps itself.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSettings {
    /// Base64 of 32 random bytes (`env:NAME`, `file:PATH` or literal) that
    /// seals the OAuth refresh tokens in the store; none:
    /// `CONTRACT_BRIDGE_SECRET_KEY`, else (SQLite only) the key file
    /// `<database>.key`, created with mode 0600.
    #[serde(default)]
    pub key: Option<Secret>,
}

/// `contract-bridge connect`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectSettings {
    /// The port of the loopback redirect listener
    /// (`http://localhost:PORT/callback`, registered with each app); 0: any
    /// free port (for apps that accept any loopback port).
    #[serde(default = "default_connect_port")]
    pub redirect_port: u16,
}

fn default_connect_port() -> u16 {
    8749
}

impl Default for ConnectSettings {
    fn default() -> Self {
        ConnectSettings {
            redirect_port: default_connect_port(),
        }
    }
}

/// Work reports (one per customer at each close) and balance statements.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// A folder whose files replace the embedded ones of `templates/report/`
    /// (`report.html`, `statement.html`, `balances.html`, `page.html`, `style.css`,
    /// `strings/LANG.toml`); files it lacks keep the defaults.
    #[serde(default)]
    pub templates: Option<PathBuf>,
    /// A Chromium (or Chrome) binary that prints the PDF of each report
    /// (headless, kept running; src/pdf.rs); none: reports are stored as
    /// HTML only.
    #[serde(default)]
    pub chromium: Option<PathBuf>,
    /// How many PDFs that browser prints at once (its pages; default 4).
    #[serde(default = "default_pdf_pages")]
    pub pdf_pages: usize,
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

fn default_pdf_pages() -> usize {
    4
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            templates: None,
            chromium: None,
            pdf_pages: default_pdf_pages(),
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
            crate::links::encode_segment(customer),
            crate::links::query(secret, customer, expires)
        ))
    }
}

/// A helpdesk source: its connector (`type = …` and the connector's keys)
/// and how the daemon treats it.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
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
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
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
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
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

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite://PATH` (created with mode 0600) or `postgres://…`.
    pub url: String,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSettings {
    /// A mapping file or a folder of them.
    pub path: PathBuf,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
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

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
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
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
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
                    tracing::warn!("{w}");
                }
            }
        }
        Ok(())
    }

    /// `targets.NAME (xero): scopes …` of each Xero target: those asked
    /// for, and those granted where a token answer said (`granted`: by target).
    pub fn xero_scope_lines(
        &self,
        granted: &BTreeMap<String, store::GrantedScopes>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (name, target) in &self.targets {
            if let TargetConfig::Xero(x) = target {
                out.push(format!("xero scopes {name}: requested {}", x.scopes_line()));
                if let Some(g) = granted.get(name) {
                    out.push(format!(
                        "xero scopes {name}: granted {} (token of {})",
                        g.scopes,
                        g.granted_at.format("%Y-%m-%dT%H:%M:%S")
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
        granted: &BTreeMap<String, store::GrantedScopes>,
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
                        "granted": g.map(|g| &g.scopes),
                        // As stored: fixed-width RFC 3339 UTC.
                        "granted_at": g.map(|g| store::instant(g.granted_at)),
                    }),
                )
            })
            .collect()
    }

    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        Ok(Self::load_layers(path)?.0)
    }

    /// The settings and, by dotted key, the layer each value written in a
    /// file or the environment came from (keys absent there are defaults).
    pub fn load_layers(path: &Path) -> Result<(Settings, Origins), SettingsError> {
        Self::load_layers_with_env(path, std::env::vars().collect())
    }

    /// [`Settings::load_layers`] with `env` for the process's environment.
    fn load_layers_with_env(
        path: &Path,
        env: config::Map<String, String>,
    ) -> Result<(Settings, Origins), SettingsError> {
        let err = |message: String| SettingsError {
            file: path.display().to_string(),
            message,
        };
        if !path.is_file() {
            return Err(err("cannot read the configuration file".into()));
        }
        let fragments = fragments(path).map_err(err)?;
        // A password inside any URL of the settings is a secret as well.
        for file in std::iter::once(path).chain(fragments.iter().map(PathBuf::as_path)) {
            if let Ok(text) = std::fs::read_to_string(file) {
                connectors::secret::remember_url_passwords(&text);
            }
        }
        for (name, value) in &env {
            if name.starts_with("CONTRACT_BRIDGE__") {
                connectors::secret::remember_url_passwords(value);
            }
        }
        let mut builder = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml));
        for fragment in &fragments {
            builder = builder.add_source(
                config::File::from(fragment.as_path()).format(config::FileFormat::Toml),
            );
        }
        let layered = builder
            .add_source(
                config::Environment::with_prefix("CONTRACT_BRIDGE")
                    .prefix_separator("__")
                    .separator("__")
                    .source(Some(env)),
            )
            .build()
            .map_err(|e| err(e.to_string()))?;
        let files: Vec<&Path> = std::iter::once(path)
            .chain(fragments.iter().map(PathBuf::as_path))
            .collect();
        let origins = origins(&layered, &files).map_err(|e| err(e.to_string()))?;
        let mut settings: Settings = layered.try_deserialize().map_err(|e| err(e.to_string()))?;
        settings.derive_xero_scopes().map_err(err)?;
        settings.file = Some(path.to_path_buf());
        if let Some(h) = &settings.http {
            h.check().map_err(err)?;
        }
        settings.review.check().map_err(err)?;
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
        Ok((settings, origins))
    }

    /// Every effective setting as `(dotted key, value, origin)`, in key
    /// order: secrets as where they are read from or `***`, URL passwords
    /// redacted, unset options as `(none)`.
    pub fn show(&self, origins: &Origins) -> Vec<(String, String, String)> {
        let mut flat = BTreeMap::new();
        flatten(
            "",
            &serde_json::to_value(self).unwrap_or_default(),
            &mut flat,
        );
        flat.into_iter()
            .map(|(key, value)| {
                let origin = origins
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| "default".to_owned());
                (key, connectors::secret::redact(&value), origin)
            })
            .collect()
    }
}

/// By dotted key, where its value was written: a file's path or the
/// environment variable's name.
pub type Origins = BTreeMap<String, String>;

/// The `conf.d/*.toml` fragments beside the main file, in name order.
fn fragments(main: &Path) -> Result<Vec<PathBuf>, String> {
    let dir = main.parent().unwrap_or(Path::new(".")).join("conf.d");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read the fragment folder {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// `files`: the layers' files as the user named them; the `config` crate
/// names them relative to the working directory instead.
fn origins(layered: &config::Config, files: &[&Path]) -> Result<Origins, config::ConfigError> {
    use config::Source;
    let as_named: BTreeMap<PathBuf, String> = files
        .iter()
        .filter_map(|f| Some((f.canonicalize().ok()?, f.display().to_string())))
        .collect();
    let name = |origin: &str| {
        Path::new(origin)
            .canonicalize()
            .ok()
            .and_then(|p| as_named.get(&p).cloned())
            .unwrap_or_else(|| origin.to_owned())
    };
    fn walk(
        prefix: &str,
        table: &config::Map<String, config::Value>,
        name: &dyn Fn(&str) -> String,
        out: &mut Origins,
    ) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value.clone().into_table() {
                Ok(inner) => walk(&path, &inner, name, out),
                Err(_) => {
                    let origin = match value.origin() {
                        Some("the environment") => format!(
                            "env CONTRACT_BRIDGE__{}",
                            path.to_uppercase().replace('.', "__")
                        ),
                        Some(file) => name(file),
                        None => "default".to_owned(),
                    };
                    out.insert(path, origin);
                }
            }
        }
    }
    let mut out = Origins::new();
    walk("", &layered.collect()?, &name, &mut out);
    Ok(out)
}

/// `value` as dotted keys: objects are walked, anything else is one value.
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, inner, out);
            }
        }
        serde_json::Value::Null => {
            out.insert(prefix.to_owned(), "(none)".to_owned());
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_owned(), format!("{s:?}"));
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/every-key.toml")
    }

    /// `(key, type)` of each row of docs/configuration.md: the key as
    /// written, and the source or target type of the table it is in.
    fn documented() -> BTreeSet<(String, Option<String>)> {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
        )
        .unwrap();
        let mut kind = None;
        let mut rows = BTreeSet::new();
        for line in text.lines() {
            if line.starts_with("## ") {
                kind = None;
            } else if let Some(t) = line.strip_prefix("### type = ") {
                kind = Some(t.trim_matches('"').to_owned());
            } else if let Some(rest) = line.strip_prefix("| `")
                && let Some((key, rest)) = rest.split_once('`')
            {
                let is_map = rest
                    .trim_start_matches(" |")
                    .trim_start()
                    .starts_with("map");
                rows.insert((key.to_owned(), kind.clone()));
                if is_map {
                    rows.insert((format!("{key}.*"), kind.clone()));
                }
            }
        }
        rows
    }

    /// Every effective key of `settings` as the docs write it: a source or
    /// target's own name as `NAME`, a map's keys as `*`, with its type.
    fn effective(settings: &Settings) -> BTreeSet<(String, Option<String>)> {
        let json = serde_json::to_value(settings).unwrap();
        let mut flat = BTreeMap::new();
        flatten("", &json, &mut flat);
        let docs = documented();
        flat.keys()
            .map(|key| {
                let parts: Vec<&str> = key.split('.').collect();
                if matches!(parts[0], "sources" | "targets") {
                    let kind = json[parts[0]][parts[1]]["type"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    let mut generic = format!("{}.NAME.{}", parts[0], parts[2..].join("."));
                    // A map's entries (contacts, customers) are documented once.
                    if parts.len() > 3 {
                        let map = format!("{}.NAME.{}.*", parts[0], parts[2]);
                        if docs.contains(&(map.clone(), Some(kind.clone()))) {
                            generic = map;
                        }
                    }
                    let common = docs.contains(&(generic.clone(), None));
                    (generic, (!common).then_some(kind))
                } else {
                    // A map's entries (`review.users`) are documented once.
                    let map = (1..parts.len())
                        .map(|i| format!("{}.*", parts[..i].join(".")))
                        .find(|m| docs.contains(&(m.clone(), None)));
                    (map.unwrap_or_else(|| key.clone()), None)
                }
            })
            .collect()
    }

    #[test]
    fn every_setting_is_documented() {
        let settings = Settings::load_layers_with_env(&fixture(), Default::default())
            .unwrap()
            .0;
        let effective = effective(&settings);
        let docs = documented();
        let undocumented: Vec<_> = effective.difference(&docs).collect();
        assert!(
            undocumented.is_empty(),
            "keys of the settings without a row in docs/configuration.md: {undocumented:?}"
        );
        // The fixture holds every type, so a documented key it lacks is stale.
        let stale: Vec<_> = docs
            .iter()
            .filter(|(k, _)| !k.ends_with(".*"))
            .filter(|row| !effective.contains(row))
            .filter(|(k, t)| !effective.contains(&(format!("{k}.*"), t.clone())))
            .filter(|(k, t)| {
                // A table (jira's `oauth`) is documented beside its keys.
                !effective
                    .iter()
                    .any(|(e, et)| et == t && e.starts_with(&format!("{k}.")))
            })
            .collect();
        assert!(
            stale.is_empty(),
            "rows of docs/configuration.md for no setting: {stale:?}"
        );
    }

    #[test]
    fn the_fixture_has_every_source_and_target_type() {
        // serde names the variants it accepts when it meets another.
        let variants = |e: String| -> BTreeSet<String> {
            e.split("expected one of ")
                .nth(1)
                .unwrap()
                .split(", ")
                .map(|v| v.trim_matches(|c| c == '`' || c == ' ').to_owned())
                .filter(|v| !v.is_empty())
                .collect()
        };
        let none = serde_json::json!({ "type": "__none__" });
        let sources = variants(
            serde_json::from_value::<SourceConfig>(none.clone())
                .unwrap_err()
                .to_string(),
        );
        let targets = variants(
            serde_json::from_value::<TargetConfig>(none)
                .unwrap_err()
                .to_string(),
        );
        let settings = Settings::load_layers_with_env(&fixture(), Default::default())
            .unwrap()
            .0;
        let json = serde_json::to_value(&settings).unwrap();
        let kinds = |section: &str| -> BTreeSet<String> {
            json[section]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v["type"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            kinds("sources"),
            sources,
            "tests/fixtures/config/every-key.toml"
        );
        assert_eq!(
            kinds("targets"),
            targets,
            "tests/fixtures/config/every-key.toml"
        );
    }

    #[test]
    fn a_fragment_overrides_the_file_and_the_environment_overrides_both() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("bridge.toml");
        std::fs::copy(fixture(), &main).unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(
            dir.path().join("conf.d/10-outbox.toml"),
            "[outbox]\nmax_attempts = 3\nmax_delay_secs = 60\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("conf.d/20-outbox.toml"),
            "[outbox]\nmax_attempts = 4\n",
        )
        .unwrap();
        // Not a fragment: only `*.toml` are read.
        std::fs::write(
            dir.path().join("conf.d/README"),
            "[outbox]\nmax_attempts = 9\n",
        )
        .unwrap();
        let env = [(
            "CONTRACT_BRIDGE__STORE__URL".to_owned(),
            "postgres://cb:hunter2-pw@db/cb".to_owned(),
        )]
        .into_iter()
        .collect();
        let (settings, origins) = Settings::load_layers_with_env(&main, env).unwrap();
        assert_eq!(settings.outbox.max_attempts, 4);
        assert_eq!(settings.outbox.max_delay_secs, 60.0);
        assert_eq!(settings.store.url, "postgres://cb:hunter2-pw@db/cb");
        let shown: BTreeMap<String, (String, String)> = settings
            .show(&origins)
            .into_iter()
            .map(|(k, v, o)| (k, (v, o)))
            .collect();
        let frag = |n: &str| dir.path().join("conf.d").join(n).display().to_string();
        assert_eq!(
            shown["outbox.max_attempts"],
            ("4".into(), frag("20-outbox.toml"))
        );
        assert_eq!(
            shown["outbox.max_delay_secs"],
            ("60.0".into(), frag("10-outbox.toml"))
        );
        assert_eq!(
            shown["outbox.base_delay_secs"],
            ("30.0".into(), "default".into())
        );
        assert_eq!(
            shown["store.url"],
            (
                "\"postgres://cb:***@db/cb\"".into(),
                "env CONTRACT_BRIDGE__STORE__URL".into()
            )
        );
        assert_eq!(
            shown["mapping.path"],
            ("\"mappings/examples\"".into(), main.display().to_string())
        );
        assert_eq!(shown["targets.xero.client_secret"].0, "\"***\"");
        assert_eq!(shown["report.chromium"].0, "(none)");
        assert!(
            shown.values().all(|(v, _)| !v.contains("xero-secret-1")),
            "no secret value is shown"
        );
    }
}
