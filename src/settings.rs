//! Daemon settings: a TOML file, overridden by `CONTRACT_BRIDGE__…`
//! environment variables (`CONTRACT_BRIDGE__STORE__URL=postgres://…`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use connectors::{SourceConfig, TargetConfig};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub store: StoreSettings,
    pub mapping: MappingSettings,
    pub billing: BillingSettings,
    /// Helpdesk sources by name.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Accounting targets by name.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetConfig>,
    #[serde(default)]
    pub outbox: OutboxSettings,
    /// Seconds between cycles when running without `--once`.
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// The HTTP endpoints (`/healthz`, `/readyz`, `/metrics`) while running without `--once`.
    #[serde(default)]
    pub http: Option<HttpSettings>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// `address:port`, e.g. `127.0.0.1:8080`.
    pub listen: String,
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
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    /// After this many failed attempts an item is dead: shown by `status`, never retried.
    #[serde(default = "default_attempts")]
    pub max_attempts: i64,
    /// First retry delay; doubles with every attempt, plus jitter.
    #[serde(default = "default_base_delay")]
    pub base_delay_secs: i64,
    #[serde(default = "default_max_delay")]
    pub max_delay_secs: i64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            max_attempts: default_attempts(),
            base_delay_secs: default_base_delay(),
            max_delay_secs: default_max_delay(),
        }
    }
}

fn default_poll() -> u64 {
    300
}
fn default_attempts() -> i64 {
    8
}
fn default_base_delay() -> i64 {
    30
}
fn default_max_delay() -> i64 {
    3600
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct SettingsError {
    pub file: String,
    pub message: String,
}

impl Settings {
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let err = |message: String| SettingsError {
            file: path.display().to_string(),
            message,
        };
        if !path.is_file() {
            return Err(err("cannot read the configuration file".into()));
        }
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("CONTRACT_BRIDGE")
                    .prefix_separator("__")
                    .separator("__"),
            )
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| err(e.to_string()))?;
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
