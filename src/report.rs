//! Work reports at the edge: the template folder an admin may override,
//! the bills a report needs, and the PDF printed by headless Chromium.
//!
//! Why Chromium and not a PDF library: the PDF is the same page as the HTML
//! (one template, one stylesheet with print rules), with the system's fonts
//! for every diacritic; a pure-Rust writer would need a second layout of
//! every table and the chart, and an embedded font. Without a Chromium the
//! reports are HTML only and the log says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use engine::ContractBook;
use engine::contract::Language;
use engine::document::BillDocument;
use engine::period::Month;
use engine::ticket::{CustomerKey, Ticket};
use report::{ReportInput, ReportView, Templates};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("report templates{}: {source}", .dir.as_ref().map(|d| format!(" in {d}")).unwrap_or_default())]
    Templates {
        dir: Option<String>,
        source: report::TemplateError,
    },
    #[error("no contract for customer `{0}`")]
    NoContract(String),
    #[error("billing {period} for the report: {message}")]
    Bill { period: Month, message: String },
    #[error("printing the PDF with {chromium}: {message}")]
    Pdf { chromium: String, message: String },
}

/// The embedded templates with the files of `dir` in their place.
pub fn templates(dir: Option<&Path>) -> Result<Templates, ReportError> {
    let mut overrides = Vec::new();
    if let Some(dir) = dir {
        for (name, _) in report::FILES {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => overrides.push(((*name).to_owned(), text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ReportError::Read {
                        path: path.display().to_string(),
                        source,
                    });
                }
            }
        }
        if !dir.is_dir() {
            return Err(ReportError::Read {
                path: dir.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a folder (report.templates names a folder of template files)",
                ),
            });
        }
    }
    Templates::with_overrides(overrides).map_err(|source| ReportError::Templates {
        dir: dir.map(|d| d.display().to_string()),
        source,
    })
}

/// Bills every month a report of `period` shows (the 12 months of the
/// chart, from the contract's start) into `bills`, reusing those present.
pub fn bill_months(
    book: &ContractBook,
    tickets: &[Ticket],
    customer: &CustomerKey,
    period: Month,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    bills: &mut BTreeMap<Month, BillDocument>,
) -> Result<(), ReportError> {
    let contract = book
        .contracts
        .get(customer)
        .ok_or_else(|| ReportError::NoContract(customer.to_string()))?;
    for m in period.back(11).through(period) {
        if !contract.is_active(m) || bills.contains_key(&m) {
            continue;
        }
        let as_of = if m == period { as_of } else { None };
        let doc = engine::bill(book, tickets, m, as_of).map_err(|e| ReportError::Bill {
            period: m,
            message: e.to_string(),
        })?;
        bills.insert(m, doc);
    }
    Ok(())
}

/// One customer's report page.
pub struct Rendered {
    pub language: Language,
    pub view: ReportView,
    pub html: String,
}

/// Renders the work report (or, with `statement`, the balance statement)
/// of `customer` for `period` from bills already made by [`bill_months`].
#[allow(clippy::too_many_arguments)]
pub fn render(
    templates: &Templates,
    book: &ContractBook,
    tickets: &[Ticket],
    bills: &BTreeMap<Month, BillDocument>,
    customer: &CustomerKey,
    period: Month,
    language: Option<Language>,
    statement: bool,
) -> Result<Rendered, ReportError> {
    let contract = book
        .contracts
        .get(customer)
        .ok_or_else(|| ReportError::NoContract(customer.to_string()))?;
    let language = language.unwrap_or(contract.report.language);
    let input = ReportInput {
        contract,
        period,
        bills,
        tickets,
        language: Some(language),
    };
    let view = report::view(&input, templates.strings(language));
    let html = if statement {
        templates.render_statement(&view)
    } else {
        templates.render(&view)
    }
    .map_err(|source| ReportError::Templates { dir: None, source })?;
    Ok(Rendered {
        language,
        view,
        html,
    })
}

/// The Chromium to print with: the configured one if it exists, else none.
pub fn chromium(configured: Option<&Path>) -> Option<PathBuf> {
    let c = configured?;
    if c.components().count() == 1 {
        // A bare name: look it up on PATH.
        let path = std::env::var_os("PATH")?;
        return std::env::split_paths(&path)
            .map(|d| d.join(c))
            .find(|p| p.is_file());
    }
    c.is_file().then(|| c.to_owned())
}

/// Prints `html` to a PDF with headless Chromium (A4, no header or footer).
pub fn print_pdf(chromium: &Path, html: &str) -> Result<Vec<u8>, ReportError> {
    let fail = |message: String| ReportError::Pdf {
        chromium: chromium.display().to_string(),
        message,
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "contract-bridge-pdf-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let result = (|| {
        let page = dir.join("report.html");
        let pdf = dir.join("report.pdf");
        std::fs::write(&page, html).map_err(|e| fail(format!("{}: {e}", page.display())))?;
        let mut child = std::process::Command::new(chromium)
            .arg("--headless")
            .arg("--no-sandbox")
            .arg("--disable-gpu")
            .arg("--no-first-run")
            .arg("--no-pdf-header-footer")
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg(format!("--print-to-pdf={}", pdf.display()))
            .arg(format!("file://{}", page.display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.txt")).map_err(|e| fail(e.to_string()))?)
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| fail(e.to_string()))? {
                break status;
            }
            if started.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail("no PDF after 120 s; stopped it".into()));
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        let bytes = std::fs::read(&pdf).ok().filter(|b| b.starts_with(b"%PDF"));
        match (status.success(), bytes) {
            (true, Some(b)) => Ok(b),
            (_, _) => {
                let err = std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
                Err(fail(format!(
                    "exit {status}, no PDF written; it said: {}",
                    err.lines().rev().take(3).collect::<Vec<_>>().join(" / ")
                )))
            }
        }
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
