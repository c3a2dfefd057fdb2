//! `contract-bridge`: the command line. `anyhow` lives only here, at the edge.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
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
}

/// A failure already explained to the user: exit 2, nothing on stdout.
struct BadInput(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr (stdout is for what a command prints);
    // CONTRACT_BRIDGE_LOG=debug shows each retry.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONTRACT_BRIDGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
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
        Command::Run { config, once, now } => run(&config, once, now.as_deref()),
        Command::Status { config, json } => status(&config, json),
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
    };
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
    let store = store::Store::open_writer(&settings.store.url)
        .await
        .map_err(|e| store_error(&settings, e))?;
    let store = std::sync::Arc::new(store);
    let bridge = daemon::Bridge::new(settings, store).map_err(|e| bad(e.to_string()))?;
    Ok(std::sync::Arc::new(bridge))
}

fn run(config: &Path, once: bool, now: Option<&str>) -> Result<(), Failure> {
    let fixed_now = now.map(|s| parse_instant("now", s)).transpose()?;
    runtime()?.block_on(async {
        let bridge = bridge(config).await?;
        if once {
            // The daemon's clock: read here, at the edge, and handed down as a value.
            let now = fixed_now.unwrap_or_else(Utc::now);
            let report = bridge.run_once(now).await.map_err(|e| bad(e.to_string()))?;
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
        if fixed_now.is_some() {
            return Err(bad(
                "--now needs --once: a running daemon follows the real clock",
            ));
        }
        daemon::serve(bridge, shutdown_signal()).await?;
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
            let pdf =
                report::print_pdf(&c, &rendered.html).map_err(|e| Failure::Other(e.into()))?;
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
