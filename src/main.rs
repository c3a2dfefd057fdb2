//! `contract-bridge`: the command line. `anyhow` lives only here, at the edge.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use contract_bridge::app::App;
use contract_bridge::settings::Settings;
use contract_bridge::{daemon, export, render};
use engine::period::Month;

#[derive(Parser)]
#[command(
    name = "contract-bridge",
    version,
    about = "Bills and polices IT-support contracts from helpdesk tickets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How logs are written to stderr: `text` for people, `json` (one
    /// object per line, with span fields) for a log collector.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective settings, one `key = value` per line with the
    /// layer it came from (default, the file, a conf.d fragment, an
    /// environment variable); secrets show where they are read from or `***`.
    Show {
        #[arg(long)]
        config: PathBuf,
        /// Print it as JSON: `[{key, value, origin}]`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Validate mapping files; prints every problem, exits 2 on errors.
    Check {
        /// A mapping file or a folder of them.
        #[arg(long)]
        mapping: PathBuf,
        /// The daemon's configuration: each of its helpdesk sources must
        /// have its `sources.<name>` section in the mapping.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Bill one month from a ticket export (docs/offline-format.md).
    Bill {
        /// A mapping file or a folder of them (mappings/README.md).
        #[arg(long)]
        mapping: PathBuf,
        /// The ticket export (JSON; docs/offline-format.md).
        #[arg(long)]
        tickets: PathBuf,
        /// The calendar month to invoice, YYYY-MM.
        #[arg(long)]
        period: String,
        /// When open tickets are judged for SLA breaches (RFC 3339); default: the end of the period.
        #[arg(long)]
        as_of: Option<String>,
        /// Print the bill document as JSON.
        #[arg(long)]
        json: bool,
        /// Show how every line was derived.
        #[arg(long)]
        explain: bool,
        /// Indent the JSON.
        #[arg(long)]
        pretty: bool,
    },
    /// What-if: bill the tickets under a new mapping and under the old one
    /// (or the daemon's mapping in force) and print, per customer and
    /// period, the lines that change, old and new, and why.
    Diff(DiffArgs),
    /// Accept a mapping change the daemon held because it moves money in a
    /// closed period; the daemon applies it at its next mapping check.
    ApplyMapping {
        #[arg(long)]
        config: PathBuf,
        /// The held change (see `status`); default: the newest held one.
        #[arg(long)]
        id: Option<i64>,
    },
    /// Run the daemon: sync sources, close due periods, push drafts through the outbox.
    Run {
        /// The TOML configuration (overridable by CONTRACT_BRIDGE__… variables).
        #[arg(long)]
        config: PathBuf,
        /// Run one full cycle and exit.
        #[arg(long)]
        once: bool,
        /// Act as if it were this instant (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
    },
    /// Consent to an OAuth 2.0 app (Xero, QuickBooks Online, Jira Cloud
    /// 3LO): opens the authorization-code flow with PKCE, chooses the
    /// organisation and stores the refresh token sealed (docs/connect.md).
    Connect {
        /// The target (or Jira source) to connect, a key of `targets` or `sources`.
        name: String,
        #[arg(long)]
        config: PathBuf,
        /// Read the address the browser was sent to from standard input
        /// instead of listening for it (a headless server).
        #[arg(long, alias = "no-browser")]
        paste: bool,
        /// The loopback listener's port (default `connect.redirect_port`, 8749);
        /// 0: any free port.
        #[arg(long, conflicts_with = "paste")]
        port: Option<u16>,
        /// The organisation (Xero tenant, Atlassian site) to use when the
        /// consent covers several: its id or name.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Refresh a target's OAuth grant now (storing the rotated refresh
    /// token) and show its access token's expiry and scopes.
    Refresh {
        /// The target, a key of `targets`.
        name: String,
        #[arg(long)]
        config: PathBuf,
    },
    /// Show cursors, outbox depth, dead letters and last errors.
    Status {
        #[arg(long)]
        config: PathBuf,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Close one month now for every customer whose month has ended, and
    /// push the drafts (whatever `schedule.close` says).
    Close {
        #[arg(long)]
        config: PathBuf,
        /// The month, YYYY-MM.
        #[arg(long)]
        period: String,
        /// Re-create this customer's draft of the month, which finance voided
        /// or deleted, under the next revision (nothing else is closed).
        #[arg(long, value_name = "CUSTOMER")]
        repush: Option<String>,
        /// Close even where a source feeding the customer is not known
        /// complete past the month's end (see `status`); the draft says so.
        #[arg(long, conflicts_with = "repush")]
        force: bool,
        /// Act as if it were this instant (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
    },
    /// Read every source again from scratch and store what changed since a day.
    Backfill {
        #[arg(long)]
        config: PathBuf,
        /// Only tickets created or worked on since this day (YYYY-MM-DD) are stored.
        #[arg(long)]
        since: String,
    },
    /// Write a customer's work report (HTML, and PDF when a Chromium is
    /// found) for a month, from a ticket export or from the daemon's store.
    Report(ReportArgs),
    /// Print a signed link to a customer's balance statement.
    StatementLink {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        customer: String,
        /// How long the link works: 30m, 12h, 7d.
        #[arg(long, default_value = "7d")]
        valid: String,
    },
    /// List a country's built-in public holidays for a year (what a
    /// calendar with `public_holidays: SE` closes).
    Holidays {
        /// DE, DK, EE, FI, LT, LV, NO, PL or SE; a German state as DE-BY.
        #[arg(long)]
        country: String,
        #[arg(long)]
        year: i32,
    },
    /// Finance's review of drafts before they are pushed (mapping `review:`).
    Review {
        #[command(subcommand)]
        action: ReviewCommand,
    },
    /// The audit trail: mapping versions loaded, drafts created, reviewed,
    /// pushed and corrected, who did it and when (oldest first).
    Audit {
        #[arg(long)]
        config: PathBuf,
        /// Only this action, e.g. draft_approved, mapping_loaded.
        #[arg(long)]
        action: Option<String>,
        /// Only subjects starting with this: a customer, CUSTOMER/PERIOD, a mapping path.
        #[arg(long)]
        subject: Option<String>,
        /// Only this actor: an OS user, a review credential's name, or `daemon`.
        #[arg(long)]
        actor: Option<String>,
        /// From this instant (RFC 3339) or day (YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
        /// Before this instant (RFC 3339) or day (YYYY-MM-DD, UTC; the day excluded).
        #[arg(long)]
        until: Option<String>,
        /// At most this many, the newest.
        #[arg(long)]
        limit: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Show every open SLA clock: due, remaining clock time, warned, breached.
    Sla {
        #[arg(long)]
        mapping: PathBuf,
        #[arg(long)]
        tickets: PathBuf,
        /// Default: now.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of contract-bridge.
    Man,
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// The drafts waiting for a decision (held ones too).
    List {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// One draft: its lines with their explanations, and the change against last month.
    Show {
        #[command(flatten)]
        draft: DraftOf,
        #[arg(long)]
        json: bool,
    },
    /// Approve a waiting draft: it is pushed (once) by the next outbox pass.
    Approve(Decide),
    /// Keep a draft waiting, with a reason.
    Hold(Decide),
    /// Reject a draft: never pushed; the period is billed again at a later
    /// close once its tickets or the mapping changed.
    Reject(Decide),
}

/// Which draft: a customer's month under the configuration's store.
#[derive(clap::Args)]
struct DraftOf {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    customer: String,
    /// The month, YYYY-MM.
    #[arg(long)]
    period: String,
}

impl DraftOf {
    fn month(&self) -> Result<Month, Failure> {
        self.period
            .parse()
            .map_err(|e| bad(format!("--period: {e}")))
    }
}

#[derive(clap::Args)]
struct Decide {
    #[command(flatten)]
    draft: DraftOf,
    /// Why (required to hold or reject).
    #[arg(long)]
    reason: Option<String>,
}

/// A failure already explained to the user: exit 2, nothing on stdout.
struct BadInput(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    // Outbox errors are scrubbed of secrets as they are stored and shown.
    store::set_redaction(contract_bridge::redact);
    let result = match cli.command {
        Command::Check { mapping, config } => check(&mapping, config.as_deref()),
        Command::Bill {
            mapping,
            tickets,
            period,
            as_of,
            json,
            explain,
            pretty,
        } => bill(
            &mapping,
            &tickets,
            &period,
            as_of.as_deref(),
            json,
            explain,
            pretty,
        ),
        Command::Sla {
            mapping,
            tickets,
            as_of,
            json,
        } => sla(&mapping, &tickets, as_of.as_deref(), json),
        Command::Holidays { country, year } => holidays(&country, year),
        Command::Diff(mut args) => {
            // clap: --live or --against; --live needs --config.
            if args.live {
                args.against = None;
            }
            diff(&args)
        }
        Command::ApplyMapping { config, id } => apply_mapping(&config, id),
        Command::Run { config, once, now } => run(&config, once, now.as_deref()),
        Command::Status { config, json } => status(&config, json),
        Command::Connect {
            name,
            config,
            paste,
            port,
            tenant,
        } => connect(&config, &name, paste, port, tenant),
        Command::Refresh { name, config } => refresh(&config, &name),
        Command::Close {
            config,
            period,
            repush,
            force,
            now,
        } => close(&config, &period, repush.as_deref(), force, now.as_deref()),
        Command::Backfill { config, since } => backfill(&config, &since),
        Command::Report(args) => report_cmd(args),
        Command::StatementLink {
            config,
            customer,
            valid,
        } => statement_link(&config, &customer, &valid),
        Command::Config(ConfigCommand::Show { config, json }) => config_show(&config, json),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "contract-bridge",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(Failure::from)
        }
        Command::Review { action } => review_cmd(action),
        Command::Audit {
            config,
            action,
            subject,
            actor,
            since,
            until,
            limit,
            json,
        } => {
            let filter = (|| {
                Ok::<_, Failure>(store::AuditFilter {
                    action,
                    subject_prefix: subject,
                    actor,
                    since: since.map(|s| day_or_instant("--since", &s)).transpose()?,
                    until: until.map(|s| day_or_instant("--until", &s)).transpose()?,
                    limit,
                })
            })();
            filter.and_then(|f| audit_cmd(&config, &f, json))
        }
    };
    #[cfg(feature = "otel")]
    otel::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Bad(BadInput(msg))) => {
            eprintln!("{}", contract_bridge::redact(msg.trim_end()));
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {}", contract_bridge::redact(&format!("{e:#}")));
            ExitCode::from(1)
        }
        Err(Failure::Incomplete(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(3)
        }
    }
}

/// Logs go to stderr (stdout is for what a command prints);
/// `CONTRACT_BRIDGE_LOG=debug` shows each retry. Built with `--features
/// otel`, spans also go to the OpenTelemetry collector named by
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, when it is set.
fn init_logs(format: LogFormat) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONTRACT_BRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        // One object per line: the event's fields, its span and the spans
        // it is inside (their fields: source, target, key).
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(logs);
    #[cfg(feature = "otel")]
    let registry = registry.with(otel::layer());
    registry.init();
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    /// Kept to flush the last spans at exit.
    pub static PROVIDER: std::sync::OnceLock<SdkTracerProvider> = std::sync::OnceLock::new();

    /// The OTLP/HTTP span layer, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub fn layer<S>() -> Option<impl tracing_subscriber::Layer<S>>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT")?;
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(e) => e,
            Err(e) => {
                eprintln!("warning: OpenTelemetry export is off: {e}");
                return None;
            }
        };
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("contract-bridge")
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("contract-bridge");
        let _ = PROVIDER.set(provider);
        Some(tracing_opentelemetry::layer().with_tracer(tracer))
    }

    pub fn flush() {
        if let Some(p) = PROVIDER.get() {
            let _ = p.shutdown();
        }
    }
}

fn config_show(config: &Path, json: bool) -> Result<(), Failure> {
    let (settings, origins) = Settings::load_layers(config).map_err(|e| bad(e.to_string()))?;
    let rows = settings.show(&origins);
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|(key, value, origin)| {
                serde_json::json!({ "key": key, "value": value, "origin": origin })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&rows).map_err(anyhow::Error::from)?
        )?;
    } else {
        let width = rows
            .iter()
            .map(|(k, v, _)| k.len() + v.len())
            .max()
            .unwrap_or(0)
            + 3;
        for (key, value, origin) in rows {
            let line = format!("{key} = {value}");
            writeln!(out, "{line:width$}  # {origin}")?;
        }
    }
    Ok(())
}

fn holidays(country: &str, year: i32) -> Result<(), Failure> {
    let public: engine::holidays::PublicHolidays = country
        .parse()
        .map_err(|e: engine::holidays::HolidaysError| Failure::Bad(BadInput(e.to_string())))?;
    if !(1583..=9999).contains(&year) {
        return Err(Failure::Bad(BadInput(format!(
            "`{year}` is not a year of the Gregorian calendar: give one from 1583 to 9999"
        ))));
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for (d, name) in public.in_year(year) {
        writeln!(out, "{} {} {name}", d, d.format("%a"))?;
    }
    Ok(())
}

enum Failure {
    Bad(BadInput),
    Other(anyhow::Error),
    /// The work that was safe was done, but a source failed (exit 3).
    Incomplete(String),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        // A closed pipe (`| head`) is not an error worth a message.
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        Failure::Other(e.into())
    }
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure::Bad(BadInput(msg.into()))
}

fn load_mapping(path: &Path) -> Result<mapping::Loaded, Failure> {
    let loaded = mapping::load(path).map_err(|d| bad(d.to_string()))?;
    for w in loaded.warnings.warnings() {
        eprintln!("{w}");
    }
    Ok(loaded)
}

fn check(path: &Path, config: Option<&Path>) -> Result<(), Failure> {
    match mapping::load(path) {
        Ok(loaded) => {
            for w in loaded.warnings.warnings() {
                eprintln!("{w}");
            }
            if let Some(config) = config {
                let settings = Settings::load(config).map_err(|e| bad(e.to_string()))?;
                let missing: Vec<String> = settings
                    .sources
                    .iter()
                    .filter(|(name, s)| {
                        s.connector.is_helpdesk() && !loaded.sources.contains_key(*name)
                    })
                    .map(|(name, _)| format!("`sources.{name}`"))
                    .collect();
                if !missing.is_empty() {
                    return Err(bad(format!(
                        "{}: no {} section for the helpdesk source(s) of {}: add one each, saying which organisation is which customer (mappings/README.md, `sources`)",
                        path.display(),
                        missing.join(", "),
                        config.display()
                    )));
                }
                // What the app must hold in Xero's developer portal; granted ones show in `status`.
                for line in settings.xero_scope_lines(&Default::default()) {
                    println!("{line}");
                }
                // Issue 17: `accounts.<target>` codes against what each target lists.
                if !loaded.accounts.is_empty() {
                    let mut settings = settings;
                    for (name, t) in &mut settings.targets {
                        if let connectors::TargetConfig::Xero(x) = t
                            && loaded.accounts.contains_key(name)
                        {
                            // Its token must grant reading accounts and tax rates.
                            x.lists_codes = true;
                        }
                    }
                    let errors = runtime()?.block_on(async {
                        let store = std::sync::Arc::new(open_store(&settings).await?);
                        let bridge =
                            daemon::Bridge::new(settings, store).map_err(|e| bad(e.to_string()))?;
                        bridge
                            .check_accounts(&loaded.accounts)
                            .await
                            .map_err(|e| bad(format!("{}: {e}", config.display())))
                    })?;
                    if !errors.is_empty() {
                        return Err(bad(format!(
                            "{}\n{} error(s) in {}",
                            errors.join("\n"),
                            errors.len(),
                            path.display()
                        )));
                    }
                }
            }
            println!(
                "{}: ok, {} customer contract(s): {}",
                path.display(),
                loaded.book.contracts.len(),
                loaded
                    .book
                    .contracts
                    .keys()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(())
        }
        Err(d) => {
            let n = d.errors().count();
            Err(bad(format!("{d}{n} error(s) in {}", path.display())))
        }
    }
}

fn parse_instant(flag: &str, s: &str) -> Result<DateTime<Utc>, Failure> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            bad(format!(
                "--{flag}: `{s}` is not an RFC 3339 timestamp, such as 2026-10-31T23:59:59+02:00"
            ))
        })
}

fn load_tickets(path: &Path) -> Result<(Vec<engine::ticket::Ticket>, String), Failure> {
    export::read(path).map_err(|e| bad(e.to_string()))
}

/// The engine's refusal, as one message naming the export file, the line and
/// the field (`tickets[N].customer`).
fn engine_error(
    e: engine::BillError,
    tickets_path: &Path,
    text: &str,
    tickets: &[engine::ticket::Ticket],
    book: &engine::ContractBook,
    mapping: &Path,
) -> Failure {
    use export::{Step, locate};
    let file = tickets_path.display();
    // `file:line:column: tickets[i].field`, falling back to less where the text does not tell.
    let at = |i: Option<usize>, field: &str, id: &str| -> String {
        let pos = i
            .and_then(|i| {
                locate(
                    text,
                    &[Step::Key("tickets"), Step::Index(i), Step::Key(field)],
                )
            })
            .or_else(|| export::locate_ticket(text, id));
        let pos = pos.map_or_else(String::new, |(l, c)| format!(":{l}:{c}"));
        match i {
            Some(i) => format!("{file}{pos}: tickets[{i}].{field}"),
            None => format!("{file}{pos}: {field}"),
        }
    };
    let index_of = |id: &str| tickets.iter().position(|t| t.id.as_str() == id);
    match &e {
        engine::BillError::NoContract { ticket, customer } => {
            let i = tickets
                .iter()
                .position(|t| t.id.as_str() == ticket && t.customer.as_str() == customer)
                .or_else(|| index_of(ticket));
            let mut known: Vec<&str> = book.contracts.keys().map(|k| k.as_str()).collect();
            known.sort_unstable();
            let known = if known.is_empty() {
                "none".to_owned()
            } else if known.len() > 20 {
                format!("{}, … ({} in all)", known[..20].join(", "), known.len())
            } else {
                known.join(", ")
            };
            bad(format!(
                "{}: ticket {ticket} names customer `{customer}`, which has no contract in {}; customers with a contract: {known}",
                at(i, "customer", ticket),
                mapping.display()
            ))
        }
        engine::BillError::DuplicateTicket(id) => {
            let all: Vec<usize> = tickets
                .iter()
                .enumerate()
                .filter(|(_, t)| t.id.as_str() == id)
                .map(|(i, _)| i)
                .collect();
            let first = all.first().copied();
            let again = all.get(1).copied().or(first);
            let first_at = first
                .and_then(|i| {
                    locate(
                        text,
                        &[Step::Key("tickets"), Step::Index(i), Step::Key("id")],
                    )
                })
                .map_or_else(String::new, |(l, _)| format!(" at line {l}"));
            bad(format!(
                "{}: ticket id `{id}` appears more than once (first as tickets[{}]{first_at}); ticket ids must be unique in the export",
                at(again, "id", id),
                first.unwrap_or_default()
            ))
        }
        engine::BillError::NoHourlyRate { ticket, .. } => {
            bad(format!("{}: {e}", at(index_of(ticket), "work", ticket)))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn bill(
    mapping_path: &Path,
    tickets_path: &Path,
    period: &str,
    as_of: Option<&str>,
    json: bool,
    explain: bool,
    pretty: bool,
) -> Result<(), Failure> {
    let period: Month = period
        .parse()
        .map_err(|e: engine::period::MonthError| bad(format!("--period: {e}")))?;
    let as_of = as_of.map(|s| parse_instant("as-of", s)).transpose()?;
    let loaded = load_mapping(mapping_path)?;
    let (tickets, text) = load_tickets(tickets_path)?;
    let doc = engine::bill(&loaded.book, &tickets, period, as_of)
        .map_err(|e| engine_error(e, tickets_path, &text, &tickets, &loaded.book, mapping_path))?;
    // The process ends right after printing: freeing a million small
    // allocations would only add wall time (~70 ms on 1M work entries).
    std::mem::forget(tickets);
    for w in &doc.warnings {
        eprintln!("warning: {w}");
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    if json {
        if pretty {
            serde_json::to_writer_pretty(&mut out, &doc).map_err(std::io::Error::from)?;
        } else {
            serde_json::to_writer(&mut out, &doc).map_err(std::io::Error::from)?;
        }
        writeln!(out)?;
        if explain {
            eprint!("{}", render::invoices(&doc, true));
        }
    } else {
        out.write_all(render::invoices(&doc, explain).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

#[derive(clap::Args)]
struct DiffArgs {
    /// The new mapping (a file or a folder).
    #[arg(long)]
    mapping: PathBuf,
    /// The mapping to compare with; `None` with `--live`: the daemon's
    /// mapping in force.
    #[arg(long, conflicts_with = "live", required_unless_present = "live")]
    against: Option<PathBuf>,
    /// Compare with the mapping the daemon has in force (needs --config).
    #[arg(long, requires = "config")]
    live: bool,
    /// The daemon's configuration: its stored tickets (unless --tickets),
    /// and which periods are closed.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A ticket export (docs/offline-format.md) instead of the stored tickets.
    #[arg(long, required_unless_present = "config")]
    tickets: Option<PathBuf>,
    /// One month, YYYY-MM.
    #[arg(long, conflicts_with = "since")]
    period: Option<String>,
    /// Every month from this one (YYYY-MM) through the current one.
    /// Without --period or --since: with --config, the months a mapping
    /// change can still move money in (billing.correction_months).
    #[arg(long)]
    since: Option<String>,
    /// When open tickets are judged (RFC 3339); default: each period's end.
    #[arg(long)]
    as_of: Option<String>,
    /// Print the diff as JSON.
    #[arg(long)]
    json: bool,
}

fn diff(a: &DiffArgs) -> Result<(), Failure> {
    let month = |flag: &str, s: &str| -> Result<Month, Failure> {
        s.parse()
            .map_err(|e: engine::period::MonthError| bad(format!("--{flag}: {e}")))
    };
    let mut months: Option<Vec<Month>> = match (&a.period, &a.since) {
        (Some(p), _) => Some(vec![month("period", p)?]),
        (None, Some(s)) => {
            let from = month("since", s)?;
            let last = Month::containing(Utc::now(), chrono_tz::UTC);
            if from > last {
                return Err(bad(format!(
                    "--since: {from} is after the current month {last}"
                )));
            }
            Some(from.through(last).collect())
        }
        (None, None) => None,
    };
    if months.is_none() && a.config.is_none() {
        return Err(bad("give --period YYYY-MM or --since YYYY-MM"));
    }
    let as_of = a
        .as_of
        .as_deref()
        .map(|s| parse_instant("as-of", s))
        .transpose()?;
    let new = load_mapping(&a.mapping)?;
    let started = std::time::Instant::now();
    let (result, closed) = match &a.config {
        None => {
            let old_path = a.against.as_deref().ok_or_else(|| bad("give --against OLD"))?;
            let old = load_mapping(old_path)?;
            let tickets_path = a.tickets.as_deref().ok_or_else(|| bad("give --tickets"))?;
            let (tickets, text) = load_tickets(tickets_path)?;
            let months = months.take().unwrap_or_default();
            let w = engine::whatif::diff_books(&old.book, &new.book, &tickets, &months, as_of)
                .map_err(|(_, e)| {
                    engine_error(e, tickets_path, &text, &tickets, &new.book, &a.mapping)
                })?;
            (w, None)
        }
        Some(config) => runtime()?.block_on(async {
            let settings = Settings::load(config).map_err(|e| bad(e.to_string()))?;
            let store = std::sync::Arc::new(open_store(&settings).await?);
            let bridge =
                daemon::Bridge::new(settings, store).map_err(|e| bad(e.to_string()))?;
            let (live, file) = match &a.against {
                Some(p) => (None, Some(load_mapping(p)?)),
                None => match bridge.live_mapping().await.map_err(|e| bad(e.to_string()))? {
                    Some(m) => {
                        eprintln!("against the mapping in force ({})", m.hash);
                        (Some(m), None)
                    }
                    None => (None, Some(load_mapping(&bridge.settings.mapping.path)?)),
                },
            };
            let old_book = match (&live, &file) {
                (Some(m), _) => &m.book,
                (None, Some(f)) => &f.book,
                (None, None) => return Err(bad("no mapping to compare with")),
            };
            let months = match months.take() {
                Some(m) => m,
                None => bridge
                    .whatif_months(Utc::now())
                    .map_err(|e| bad(e.to_string()))?,
            };
            let w = match &a.tickets {
                Some(tickets_path) => {
                    let (tickets, text) = load_tickets(tickets_path)?;
                    engine::whatif::diff_books(old_book, &new.book, &tickets, &months, as_of)
                        .map_err(|(_, e)| {
                            engine_error(e, tickets_path, &text, &tickets, &new.book, &a.mapping)
                        })?
                }
                None => {
                    if as_of.is_some() {
                        return Err(bad("--as-of needs --tickets (stored tickets are billed as the daemon bills them)"));
                    }
                    bridge
                        .whatif(old_book, &new.book, &months)
                        .await
                        .map_err(|e| bad(e.to_string()))?
                }
            };
            let mut closed = std::collections::BTreeSet::new();
            for c in &w.changes {
                if bridge
                    .store
                    .is_closed(c.customer.as_str(), &c.period.to_string())
                    .await
                    .map_err(|e| bad(e.to_string()))?
                {
                    closed.insert((c.customer.to_string(), c.period));
                }
            }
            Ok::<_, Failure>((w, Some(closed)))
        })?,
    };
    tracing::debug!(
        "diff: {} change(s) in {:.1} ms",
        result.changes.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if a.json {
        let mut v = serde_json::to_value(&result).map_err(std::io::Error::from)?;
        if let (Some(closed), Some(changes)) = (&closed, v["changes"].as_array_mut()) {
            for (c, w) in changes.iter_mut().zip(&result.changes) {
                c["closed"] =
                    serde_json::Value::Bool(closed.contains(&(w.customer.to_string(), w.period)));
            }
        }
        serde_json::to_writer_pretty(&mut out, &v).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        out.write_all(render::whatif(&result).as_bytes())?;
        if let Some(closed) = closed.filter(|c| !c.is_empty()) {
            let list: Vec<String> = closed.iter().map(|(c, p)| format!("{c} {p}")).collect();
            writeln!(
                out,
                "closed periods it changes (corrections on the next drafts): {}",
                list.join(", ")
            )?;
        }
    }
    Ok(())
}

/// Who runs the command, for the audit trail.
fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn apply_mapping(config: &Path, id: Option<i64>) -> Result<(), Failure> {
    let settings = Settings::load(config).map_err(|e| bad(e.to_string()))?;
    runtime()?.block_on(async {
        // Beside a running daemon: it applies the change at its next check.
        let store = open_store(&settings).await?;
        let now = Utc::now();
        let user = os_user();
        let accepted = store
            .accept_mapping_change(id, &user, now)
            .await
            .map_err(|e| bad(e.to_string()))?;
        let Some(c) = accepted else {
            let pending = store
                .pending_mapping_changes()
                .await
                .map_err(|e| bad(e.to_string()))?;
            let held: Vec<String> = pending
                .iter()
                .filter(|c| c.status == "held")
                .map(|c| format!("{} ({}, held since {})", c.id, c.path, c.created_at))
                .collect();
            let which = id.map_or("no mapping change is held".to_owned(), |id| {
                format!("--id {id}: no such mapping change is held")
            });
            return Err(bad(format!(
                "{}: {which}; held: {}",
                config.display(),
                if held.is_empty() {
                    "none".to_owned()
                } else {
                    held.join(", ")
                }
            )));
        };
        store
            .audit(&store::AuditEntry {
                at: now,
                actor: user,
                action: "mapping_applied".into(),
                subject: c.path.clone(),
                detail: serde_json::json!({
                    "id": c.id,
                    "hash": c.hash,
                    "closed_total_delta": c.summary["closed_total_delta"],
                    "open_total_delta": c.summary["open_total_delta"],
                }),
            })
            .await
            .map_err(|e| bad(e.to_string()))?;
        println!(
            "accepted mapping change {} ({}, hash {}): {} in closed periods, {} in open ones; the daemon applies it at its next mapping check",
            c.id,
            c.path,
            c.hash,
            c.summary["closed_total_delta"].as_str().unwrap_or("?"),
            c.summary["open_total_delta"].as_str().unwrap_or("?"),
        );
        Ok(())
    })
}

fn sla(
    mapping_path: &Path,
    tickets_path: &Path,
    as_of: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    let as_of = match as_of {
        Some(s) => parse_instant("as-of", s)?,
        // The one clock read of the program: "now" when the user did not say.
        None => Utc::now(),
    };
    let loaded = load_mapping(mapping_path)?;
    let (tickets, text) = load_tickets(tickets_path)?;
    let period = Month::containing(as_of, chrono_tz::UTC);
    let doc = engine::bill(&loaded.book, &tickets, period, Some(as_of))
        .map_err(|e| engine_error(e, tickets_path, &text, &tickets, &loaded.book, mapping_path))?;
    let open: Vec<_> = doc.sla.iter().filter(|r| r.met_at.is_none()).collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &open).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        out.write_all(render::open_clocks(&open, as_of).as_bytes())?;
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(e.into()))
}

/// A store that cannot be opened, named by its setting and its file.
fn store_error(settings: &Settings, e: store::StoreError) -> Failure {
    let file = settings
        .file
        .as_ref()
        .map_or(String::new(), |f| format!("{}: ", f.display()));
    bad(format!("{file}store.url: {e}"))
}

/// Opens the store to read (`status`, reports): beside a running daemon too.
async fn open_store(
    settings: &contract_bridge::settings::Settings,
) -> Result<store::Store, Failure> {
    store::Store::open(&settings.store.url)
        .await
        .map_err(|e| store_error(settings, e))
}

/// Loads the settings and opens the store to write, as its single writer on
/// SQLite: what every daemon command that changes state starts with.
async fn bridge(config: &Path) -> Result<std::sync::Arc<daemon::Bridge>, Failure> {
    let settings = Settings::load(config).map_err(|e| bad(e.to_string()))?;
    let app = App::build(settings).await.map_err(|e| bad(e.to_string()))?;
    Ok(app.bridge().clone())
}

/// `connect`: the consent runs beside a running daemon (one small write to
/// the store), which uses the new grant at its next refresh.
fn connect(
    config: &Path,
    name: &str,
    paste: bool,
    port: Option<u16>,
    tenant: Option<String>,
) -> Result<(), Failure> {
    use contract_bridge::oauth::connect::{ConnectError, Options, Return};
    let settings = Settings::load(config).map_err(|e| bad(e.to_string()))?;
    runtime()?.block_on(async {
        // Which system and app, before anything is opened.
        contract_bridge::oauth::connect::app_of(&settings, name).map_err(|e| bad(e.to_string()))?;
        let store = open_store(&settings).await?;
        let opts = Options {
            name: name.to_owned(),
            back: if paste {
                Return::Paste
            } else {
                Return::Listen(port.unwrap_or(settings.connect.redirect_port))
            },
            tenant,
        };
        let mut input = tokio::io::BufReader::new(tokio::io::stdin());
        let mut out = std::io::stdout();
        let done = contract_bridge::oauth::connect::connect(&settings, &store, &opts, &mut input, &mut out)
            .await
            .map_err(|e| match e {
                ConnectError::Io(e) => Failure::from(e),
                e => bad(format!("connect {name}: {e}")),
            })?;
        let tenant = done
            .tenant
            .as_ref()
            .map(|t| {
                if t.name.is_empty() {
                    format!("; {} {}", t.kind, t.id)
                } else {
                    format!("; organisation {} ({})", t.name, t.id)
                }
            })
            .unwrap_or_default();
        println!(
            "connected `{}` ({}){tenant}; scopes: {}; access token valid until {}; the refresh token is stored sealed",
            done.name,
            done.system,
            done.scopes.as_deref().unwrap_or("(not said)"),
            done.expires_at.format("%Y-%m-%d %H:%M:%S UTC"),
        );
        Ok(())
    })
}

/// `refresh`: one token refresh now, as the daemon does it.
fn refresh(config: &Path, name: &str) -> Result<(), Failure> {
    let settings = Settings::load(config).map_err(|e| bad(e.to_string()))?;
    runtime()?.block_on(async {
        let mut settings = settings;
        let store = open_store(&settings).await?;
        contract_bridge::oauth::adopt_tenants(&mut settings, &store)
            .await
            .map_err(|e| store_error(&settings, e))?;
        let store = std::sync::Arc::new(store);
        let bridge =
            daemon::Bridge::new(settings, store.clone()).map_err(|e| bad(e.to_string()))?;
        bridge
            .refresh_grant(name)
            .await
            .map_err(|e| bad(format!("refresh {name}: {e}")))?;
        let grant = store.grant(name).await.map_err(|e| bad(e.to_string()))?;
        match grant {
            Some(g) => println!("{}", daemon::grant_line(&g)),
            None => println!("`{name}` has an access token (its system keeps no grant to store)"),
        }
        Ok(())
    })
}

fn run(config: &Path, once: bool, now: Option<&str>) -> Result<(), Failure> {
    let fixed_now = now.map(|s| parse_instant("now", s)).transpose()?;
    if fixed_now.is_some() && !once {
        return Err(bad(
            "--now needs --once: a running daemon follows the real clock",
        ));
    }
    let settings = Settings::load(config).map_err(|e| bad(e.to_string()))?;
    runtime()?.block_on(async {
        let app = App::build(settings)
            .await
            .map_err(|e| bad(e.to_string()))?;
        if once {
            // The daemon's clock: read here, at the edge, and handed down as a value.
            let now = fixed_now.unwrap_or_else(Utc::now);
            let report = app
                .bridge()
                .run_once(now)
                .await
                .map_err(|e| bad(e.to_string()))?;
            daemon::log_report(&report);
            // Everything safe was done; a source that failed is still a failure.
            if !report.failed_sources.is_empty() {
                return Err(Failure::Incomplete(format!(
                    "source(s) {} failed: the periods they feed stay open (see `contract-bridge status`)",
                    report.failed_sources.iter().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            return Ok(());
        }
        let app = app.listen().await.map_err(|e| bad(e.to_string()))?;
        app.run_until_stopped(shutdown_signal()).await?;
        Ok(())
    })
}

fn close(
    config: &Path,
    period: &str,
    repush: Option<&str>,
    force: bool,
    now: Option<&str>,
) -> Result<(), Failure> {
    let month: Month = period.parse().map_err(|e| bad(format!("--period: {e}")))?;
    let now = match now {
        Some(s) => parse_instant("now", s)?,
        None => Utc::now(),
    };
    runtime()?.block_on(async {
        let bridge = bridge(config).await?;
        bridge
            .reload_mapping(now)
            .await
            .map_err(|e| bad(e.to_string()))?;
        let mut report = daemon::CycleReport::default();
        match repush {
            Some(customer) => {
                let key = bridge
                    .repush(customer, month, now)
                    .await
                    .map_err(|e| bad(e.to_string()))?;
                eprintln!("re-created {key}");
                report.drafts_queued += 1;
            }
            None => {
                let customers = bridge.mapping().map_or(0, |m| m.book.contracts.len());
                let gate = if force {
                    daemon::Gate::Forced
                } else {
                    daemon::Gate::Sources
                };
                let closing = progress(customers as u64, "customers closed (with their reports)");
                let tick = closing.clone();
                bridge
                    .close_period_with(month, now, &mut report, gate, &mut move |c: &str| {
                        tick.set_message(c.to_owned());
                        tick.inc(1);
                    })
                    .await
                    .map_err(|e| bad(e.to_string()))?;
                closing.finish_and_clear();
            }
        }
        let bar = progress(report.drafts_queued as u64, "pushing drafts");
        for name in bridge.settings.targets.keys() {
            let before = report.pushed + report.retried + report.dead;
            bridge
                .drain(name, || now, &mut report)
                .await
                .map_err(|e| bad(e.to_string()))?;
            bar.inc((report.pushed + report.retried + report.dead - before) as u64);
        }
        bar.finish_and_clear();
        daemon::log_report(&report);
        Ok(())
    })
}

fn backfill(config: &Path, since: &str) -> Result<(), Failure> {
    let since: chrono::NaiveDate = since
        .parse()
        .map_err(|_| bad(format!("--since: `{since}` is not a day: write YYYY-MM-DD")))?;
    runtime()?.block_on(async {
        let bridge = bridge(config).await?;
        let now = Utc::now();
        let names: Vec<String> = bridge.settings.sources.keys().cloned().collect();
        let bar = progress(names.len() as u64, "sources");
        let mut report = daemon::CycleReport::default();
        for name in &names {
            bar.set_message(name.clone());
            bridge
                .backfill(name, since, now, &mut report)
                .await
                .map_err(|e| bad(e.to_string()))?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        daemon::log_report(&report);
        Ok(())
    })
}

#[derive(clap::Args)]
struct ReportArgs {
    #[arg(long)]
    customer: String,
    /// The report's (last) month, YYYY-MM; a quarterly or yearly
    /// customer's report covers its quarter or year up to it.
    #[arg(long)]
    period: String,
    /// With --tickets: the mapping file or folder.
    #[arg(long, requires = "tickets", conflicts_with = "config")]
    mapping: Option<PathBuf>,
    /// A ticket export (docs/offline-format.md).
    #[arg(long, requires = "mapping", conflicts_with = "config")]
    tickets: Option<PathBuf>,
    /// Or the daemon's configuration: its mapping, store and `[report]`.
    #[arg(long, required_unless_present = "mapping")]
    config: Option<PathBuf>,
    /// en, lv, pl, sv or da; default: the customer's `language`.
    #[arg(long)]
    language: Option<String>,
    /// When open SLA clocks are judged (RFC 3339); default: the period's end.
    #[arg(long)]
    as_of: Option<String>,
    /// The folder the files are written to.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// A folder of templates replacing the embedded ones.
    #[arg(long)]
    templates: Option<PathBuf>,
    /// The Chromium that prints the PDF; default: `report.chromium`, else `chromium` on PATH.
    #[arg(long)]
    chromium: Option<PathBuf>,
    /// With --config: the report stored when the period closed (and its
    /// PDF, if one was printed), exactly as it was then.
    #[arg(long, requires = "config")]
    stored: bool,
}

/// `report --stored`: the files of the report kept with the closed period.
fn stored_report(a: &ReportArgs, config: &Path, period: Month) -> Result<(), Failure> {
    let settings = Settings::load(config).map_err(|e| bad(e.to_string()))?;
    let report = runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        store
            .report(&a.customer, &period.to_string())
            .await
            .map_err(|e| bad(e.to_string()))
    })?;
    let report = report.ok_or_else(|| {
        bad(format!(
            "--stored: no report is stored for `{}` {period}: the period is not closed yet (see `status`), or the customer has no contract",
            a.customer
        ))
    })?;
    std::fs::create_dir_all(&a.out).map_err(|e| bad(format!("--out {}: {e}", a.out.display())))?;
    let stem = a
        .out
        .join(format!("{}-{period}-{}", a.customer, report.language));
    let html = stem.with_extension("html");
    std::fs::write(&html, &report.html).map_err(|e| bad(format!("{}: {e}", html.display())))?;
    println!("{}", html.display());
    match &report.pdf {
        Some(pdf) => {
            let path = stem.with_extension("pdf");
            std::fs::write(&path, pdf).map_err(|e| bad(format!("{}: {e}", path.display())))?;
            println!("{}", path.display());
        }
        None => eprintln!(
            "report: no PDF was stored with it (report.chromium was not set at the close)"
        ),
    }
    Ok(())
}

fn report_cmd(a: ReportArgs) -> Result<(), Failure> {
    use contract_bridge::report;
    let period: Month = a
        .period
        .parse()
        .map_err(|e: engine::period::MonthError| bad(format!("--period: {e}")))?;
    let language = a
        .language
        .as_deref()
        .map(|l| {
            engine::contract::Language::parse(l).ok_or_else(|| {
                bad(format!(
                    "--language: `{l}` is not a report language; valid: en, lv, pl, sv, da"
                ))
            })
        })
        .transpose()?;
    let as_of = a
        .as_of
        .as_deref()
        .map(|s| parse_instant("as-of", s))
        .transpose()?;
    if a.stored {
        let config = a
            .config
            .as_deref()
            .ok_or_else(|| bad("--stored needs --config"))?;
        return stored_report(&a, config, period);
    }
    let started = std::time::Instant::now();
    let (rendered, chromium) = if let (Some(mapping_path), Some(tickets_path)) =
        (&a.mapping, &a.tickets)
    {
        let loaded = load_mapping(mapping_path)?;
        let (tickets, text) = load_tickets(tickets_path)?;
        let key = engine::ticket::CustomerKey::new(a.customer.as_str());
        if !loaded.book.contracts.contains_key(&key) {
            let mut known: Vec<&str> = loaded.book.contracts.keys().map(|k| k.as_str()).collect();
            known.sort_unstable();
            return Err(bad(format!(
                "--customer: `{}` has no contract in {}; customers with a contract: {}",
                a.customer,
                mapping_path.display(),
                known.join(", ")
            )));
        }
        let templates =
            report::templates(a.templates.as_deref()).map_err(|e| bad(e.to_string()))?;
        let mut bills = std::collections::BTreeMap::new();
        report::bill_months(&loaded.book, &tickets, &key, period, as_of, &mut bills).map_err(
            |e| match e {
                report::ReportError::Bill { .. } => {
                    engine::bill(&loaded.book, &tickets, period, as_of)
                        .err()
                        .map_or_else(
                            || bad(e.to_string()),
                            |be| {
                                engine_error(
                                    be,
                                    tickets_path,
                                    &text,
                                    &tickets,
                                    &loaded.book,
                                    mapping_path,
                                )
                            },
                        )
                }
                e => bad(e.to_string()),
            },
        )?;
        let rendered = report::render(
            &templates,
            &loaded.book,
            &tickets,
            &bills,
            &key,
            period,
            language,
            false,
        )
        .map_err(|e| bad(e.to_string()))?;
        (rendered, a.chromium.clone())
    } else {
        let config = a
            .config
            .as_deref()
            .ok_or_else(|| bad("give --config, or --mapping and --tickets"))?;
        runtime()?.block_on(async {
            let mut settings = Settings::load(config).map_err(|e| bad(e.to_string()))?;
            // The command line's templates win over the configuration's.
            if a.templates.is_some() {
                settings.report.templates = a.templates.clone();
            }
            let chromium = a.chromium.clone().or(settings.report.chromium.clone());
            let store = std::sync::Arc::new(open_store(&settings).await?);
            let bridge = daemon::Bridge::new(settings, store).map_err(|e| bad(e.to_string()))?;
            bridge
                .reload_mapping(Utc::now())
                .await
                .map_err(|e| bad(e.to_string()))?;
            let rendered = bridge
                .report_page(&a.customer, period, language, as_of, false)
                .await
                .map_err(|e| bad(e.to_string()))?;
            Ok::<_, Failure>((rendered, chromium))
        })?
    };
    let render_ms = started.elapsed().as_secs_f64() * 1000.0;
    std::fs::create_dir_all(&a.out).map_err(|e| bad(format!("--out {}: {e}", a.out.display())))?;
    let stem = format!("{}-{}-{}", a.customer, period, rendered.language.code());
    let html_path = a.out.join(format!("{stem}.html"));
    std::fs::write(&html_path, &rendered.html)
        .map_err(|e| bad(format!("{}: {e}", html_path.display())))?;
    println!("{}", html_path.display());
    eprintln!(
        "report: {} {} ({}), total {}, rendered in {render_ms:.1} ms",
        a.customer, period, rendered.language, rendered.view.total
    );
    let chromium = report::chromium(Some(chromium.as_deref().unwrap_or(Path::new("chromium"))));
    match chromium {
        Some(c) => {
            let started = std::time::Instant::now();
            let pool = contract_bridge::pdf::PdfPool::new(c, 1);
            let pdf = runtime()?
                .block_on(pool.print(&rendered.html))
                .map_err(|e| Failure::Other(e.into()))?;
            let pdf_path = a.out.join(format!("{stem}.pdf"));
            std::fs::write(&pdf_path, &pdf)
                .map_err(|e| bad(format!("{}: {e}", pdf_path.display())))?;
            println!("{}", pdf_path.display());
            eprintln!(
                "report: PDF {} bytes, printed in {:.0} ms",
                pdf.len(),
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        None => eprintln!(
            "report: PDF skipped: no Chromium found (pass --chromium PATH or set report.chromium; Debian: apt-get install chromium)"
        ),
    }
    Ok(())
}

fn statement_link(config: &Path, customer: &str, valid: &str) -> Result<(), Failure> {
    let settings = Settings::load(config).map_err(|e| bad(e.to_string()))?;
    let valid = mapping::parse_duration(valid).map_err(|e| bad(format!("--valid: {e}")))?;
    // A link must work for a while and expire on a date that exists.
    const LONGEST: i64 = 10 * 366 * 86_400;
    if valid <= 0 || valid > LONGEST {
        return Err(bad(format!(
            "--valid: {} is not a validity: give more than 0 and at most ten years, such as 30m, 12h, 7d or 365d",
            if valid <= 0 {
                "nothing"
            } else {
                "more than ten years"
            }
        )));
    }
    // Only a customer with a contract has a statement.
    let loaded = load_mapping(&settings.mapping.path)?;
    let key = engine::ticket::CustomerKey::new(customer);
    if !loaded.book.contracts.contains_key(&key) {
        let mut known: Vec<&str> = loaded.book.contracts.keys().map(|k| k.as_str()).collect();
        known.sort_unstable();
        return Err(bad(format!(
            "--customer: `{customer}` has no contract in {}; customers with a contract: {}",
            settings.mapping.path.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    }
    if settings.report.statement_secret.is_none() {
        return Err(bad(format!(
            "{}: report.statement_secret is not set: links cannot be signed (write it as env:NAME, file:PATH or a literal)",
            config.display()
        )));
    }
    let expires = Utc::now().timestamp() + valid;
    let mut report = settings.report.clone();
    if report.public_url.is_none() {
        // Without a public address, the daemon's own listener.
        report.public_url = settings
            .http
            .as_ref()
            .map(|h| format!("http://{}", h.listen));
    }
    let link = report.statement_url(customer, expires).ok_or_else(|| {
        bad(format!(
            "{}: neither report.public_url nor http.listen is set: the link would have no address",
            config.display()
        ))
    })?;
    println!("{link}");
    Ok(())
}

/// A progress bar on a terminal; hidden when stderr is a file or a pipe.
fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{{bar:40}} {{pos}}/{{len}} {what} {{msg}}"
    )) {
        bar.set_style(style);
    }
    bar
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn status(config: &Path, json: bool) -> Result<(), Failure> {
    let settings = Settings::load(config).map_err(|e| bad(e.to_string()))?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        if json {
            let mut doc = daemon::status_json(&store)
                .await
                .map_err(|e| bad(e.to_string()))?;
            let granted = store
                .granted_scopes()
                .await
                .map_err(|e| bad(e.to_string()))?;
            let scopes = settings.xero_scopes_json(&granted);
            if let Some(o) = doc.as_object_mut()
                && !scopes.is_empty()
            {
                o.insert("xero_scopes".into(), serde_json::Value::Object(scopes));
            }
            let waiting = store.waiting().await.map_err(|e| bad(e.to_string()))?;
            let plans = daemon::plan::plans(&settings, &waiting, chrono::Utc::now());
            if let Some(o) = doc.as_object_mut() {
                o.insert("push_plan".into(), plans.iter().map(|p| p.json()).collect());
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).map_err(std::io::Error::from)?
            );
            return Ok(());
        }
        let text = daemon::status_text(&store)
            .await
            .map_err(|e| bad(e.to_string()))?;
        print!("{}", contract_bridge::redact(&text));
        let granted = store
            .granted_scopes()
            .await
            .map_err(|e| bad(e.to_string()))?;
        for line in settings.xero_scope_lines(&granted) {
            println!("{line}");
        }
        let waiting = store.waiting().await.map_err(|e| bad(e.to_string()))?;
        for plan in daemon::plan::plans(&settings, &waiting, chrono::Utc::now()) {
            println!("{}", plan.line());
        }
        Ok(())
    })
}

/// An RFC 3339 instant, or a day (its start, UTC).
fn day_or_instant(what: &str, s: &str) -> Result<DateTime<Utc>, Failure> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            bad(format!(
                "{what} `{s}`: write a day (2026-11-01) or an instant (2026-11-01T06:00:00Z)"
            ))
        })
}

/// A list for a program (`--json`: one JSON array) or for a person (a
/// table under `header`, redacted, or `none` when the list is empty).
fn print_listing<T>(
    json: bool,
    items: &[T],
    as_json: impl Fn(&T) -> serde_json::Value,
    none: &str,
    header: &[&str],
    as_row: impl Fn(&T) -> Vec<String>,
) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    if json {
        let doc: Vec<serde_json::Value> = items.iter().map(as_json).collect();
        serde_json::to_writer_pretty(&mut out, &doc).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else if items.is_empty() {
        writeln!(out, "{none}")?;
    } else {
        let rows: Vec<Vec<String>> = items.iter().map(as_row).collect();
        let text = render::table(header, &rows);
        out.write_all(contract_bridge::redact(&text).as_bytes())?;
    }
    Ok(())
}

fn audit_cmd(config: &Path, filter: &store::AuditFilter, json: bool) -> Result<(), Failure> {
    if filter.limit.is_some_and(|l| l < 1) {
        return Err(bad("--limit: give 1 or more"));
    }
    let settings = Settings::load(config).map_err(|e| bad(e.to_string()))?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        let entries = store
            .audit_entries(filter)
            .await
            .map_err(|e| bad(e.to_string()))?;
        print_listing(
            json,
            &entries,
            |e| {
                serde_json::json!({
                    "id": e.id, "at": e.at, "actor": e.actor, "action": e.action,
                    "subject": e.subject, "detail": e.detail,
                })
            },
            "no audit entries match",
            &["at (UTC)", "actor", "action", "subject", "detail"],
            |e| {
                vec![
                    e.at.chars().take(19).collect(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.subject.clone(),
                    e.detail.to_string(),
                ]
            },
        )
    })
}

fn review_cmd(action: ReviewCommand) -> Result<(), Failure> {
    use contract_bridge::review;
    let decide = |d: Decide, decision: store::Decision| -> Result<(), Failure> {
        let month = d.draft.month()?;
        let reason = d.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
        if decision != store::Decision::Approve && reason.is_none() {
            return Err(bad(
                "--reason is required to hold or reject a draft: say why",
            ));
        }
        let settings = Settings::load(&d.draft.config).map_err(|e| bad(e.to_string()))?;
        runtime()?.block_on(async {
            // A decision changes the outbox: as the store's single writer on SQLite.
            let store = match store::Store::open_writer(&settings.store.url).await {
                Ok(s) => s,
                Err(e @ store::StoreError::Locked { .. }) => {
                    return Err(bad(format!(
                        "{e}\nWhile the daemon runs on SQLite, decide on its review page (GET /review, `[review]` credentials) instead."
                    )));
                }
                Err(e) => return Err(store_error(&settings, e)),
            };
            let actor = review::os_user();
            let r = store
                .decide(
                    &d.draft.customer,
                    &month.to_string(),
                    decision,
                    &actor,
                    reason,
                    Utc::now(),
                )
                .await
                .map_err(|e| bad(e.to_string()))?;
            println!(
                "{} {} {}: {} by {actor}{}",
                r.customer,
                r.period,
                r.key,
                r.state.as_str(),
                match decision {
                    store::Decision::Approve => " (pushed by the next outbox pass)",
                    store::Decision::Hold => " (keeps waiting)",
                    store::Decision::Reject =>
                        " (never pushed; billed again once its tickets or the mapping change)",
                }
            );
            Ok(())
        })
    };
    match action {
        ReviewCommand::Approve(d) => decide(d, store::Decision::Approve),
        ReviewCommand::Hold(d) => decide(d, store::Decision::Hold),
        ReviewCommand::Reject(d) => decide(d, store::Decision::Reject),
        ReviewCommand::List { config, json } => {
            let settings = Settings::load(&config).map_err(|e| bad(e.to_string()))?;
            runtime()?.block_on(async {
                let store = open_store(&settings).await?;
                let waiting = store.reviews(true).await.map_err(|e| bad(e.to_string()))?;
                print_listing(
                    json,
                    &waiting,
                    review::summary_json,
                    "no draft waits for review",
                    &[
                        "customer",
                        "period",
                        "total (net)",
                        "state",
                        "policy",
                        "reason",
                    ],
                    |r| {
                        vec![
                            r.customer.clone(),
                            r.period.clone(),
                            format!(
                                "{} {}",
                                r.total_net.as_deref().unwrap_or("-"),
                                r.currency.as_deref().unwrap_or("")
                            ),
                            r.state.as_str().to_owned(),
                            r.policy.clone(),
                            r.reason.clone().unwrap_or_default(),
                        ]
                    },
                )
            })
        }
        ReviewCommand::Show { draft, json } => {
            let month = draft.month()?;
            let settings = Settings::load(&draft.config).map_err(|e| bad(e.to_string()))?;
            let customer = draft.customer;
            runtime()?.block_on(async {
                let store = open_store(&settings).await?;
                let Some(view) = review::view(&store, &customer, month)
                    .await
                    .map_err(|e| bad(e.to_string()))?
                else {
                    return Err(bad(format!(
                        "no draft of {customer} {month} is under review (`contract-bridge review list`)"
                    )));
                };
                let mut out = std::io::stdout().lock();
                if json {
                    serde_json::to_writer_pretty(&mut out, &view).map_err(std::io::Error::from)?;
                    writeln!(out)?;
                } else {
                    out.write_all(review::view_text(&view).as_bytes())?;
                }
                Ok(())
            })
        }
    }
}
