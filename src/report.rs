//! Work reports at the edge: the template folder an admin may override,
//! the bills a report needs (the PDF is printed by `crate::pdf`).
//!
//! Why Chromium and not a PDF library: the PDF is the same page as the HTML
//! (one template, one stylesheet with print rules), with the system's fonts
//! for every diacritic; a pure-Rust writer would need a second layout of
//! every table and the chart, and an embedded font. Without a Chromium the
//! reports are HTML only and the log says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
