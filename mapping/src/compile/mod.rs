//! Mapping files → engine contracts, in three stages, collecting every
//! problem on the way.
//!
//! ```text
//!  *.yaml ──read──► [Parsed] ──resolve──► Resolved ──build──► Loaded
//!          text →     RawFile     names →   templates,   values →  ContractBook,
//!          serde      per file    unique    changes,     engine    sources, accounts,
//!                                           references   types     review
//! ```
//!
//! - [`read`] turns text into the raw serde structs of [`crate::raw`], every
//!   checked value `Spanned` with its line and column;
//! - [`resolve`] gathers names across files, walks template chains, layers
//!   dated changes and checks that every name a customer uses is defined;
//! - [`build`] compiles values into engine types (money, minutes, CEL
//!   conditions, calendars, SLA terms, banks, cards).
//!
//! No stage stops at the first problem: each raises [`crate::diag::Problem`]s
//! into one [`Report`] and goes on, so that one `check` lists everything.
//! Diagnostics are sorted at the end; errors make [`load`] fail.

mod build;
mod read;
mod resolve;
mod values;

use std::collections::BTreeMap;
use std::path::Path;

use engine::ContractBook;
use engine::ticket::CustomerKey;

pub use read::parse_text;

use crate::diag::{Diagnostics, Report};

/// Everything loaded from a mapping file or folder.
pub struct Loaded {
    pub book: ContractBook,
    /// `sources.<name>`: how each helpdesk source's fields are read.
    pub sources: BTreeMap<String, crate::SourceMap>,
    /// `accounts.<target>`: account, item and tax per line kind.
    pub accounts: BTreeMap<String, crate::TargetAccounts>,
    /// Warnings only; errors make [`load`] fail.
    pub warnings: Diagnostics,
    /// Each customer's `review:` policy, where one is written (a customer
    /// without one is [`crate::Review::None`]).
    pub review: BTreeMap<CustomerKey, crate::Review>,
}

/// Loads and compiles every `*.yaml` / `*.yml` file of `path` (a file or a folder).
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    let mut report = Report::default();
    let parsed = read::read(path, &mut report).map_err(|d| Diagnostics(vec![d]))?;
    let resolved = resolve::resolve(&parsed, &mut report);
    let built = build::build(&resolved, &mut report);
    let mut all = Diagnostics(report.diags);
    all.sort();
    if all.has_errors() {
        Err(all)
    } else {
        Ok(Loaded {
            book: built.book,
            sources: built.sources,
            accounts: built.accounts,
            warnings: all,
            review: built.review,
        })
    }
}
