//! Diagnostics: every problem names the file, line, column and key path, and
//! says what would be valid.
//!
//! This module is a leaf that every stage of `compile` reads: [`Origin`] and
//! [`At`] say where a value was written, [`Problem`] (in `problem.rs`) words
//! each thing that can be wrong with it, and [`Report`] collects them as
//! [`Diagnostic`]s. A stage never formats a message itself: it raises a
//! `Problem` at an `Origin`.

mod problem;

pub(crate) use problem::Problem;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde_saphyr::Spanned;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: Arc<Path>,
    /// 1-based; 0 when unknown.
    pub line: u64,
    pub column: u64,
    /// Key path, e.g. `customers.riga-bakery.sla.calendar`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": {sev}")?;
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All diagnostics of one load, errors first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Warning)
    }

    pub(crate) fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            (a.severity, &a.file, a.line, a.column, &a.message)
                .cmp(&(b.severity, &b.file, b.line, b.column, &b.message))
        });
        self.0.dedup();
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Where a value was written.
#[derive(Clone, Debug)]
pub struct Origin {
    pub file: Arc<Path>,
    pub line: u64,
    pub column: u64,
    pub path: String,
}

impl Origin {
    pub fn file_only(file: &Path) -> Origin {
        Origin {
            file: Arc::from(file),
            line: 0,
            column: 0,
            path: String::new(),
        }
    }

    pub fn child(&self, key: &str) -> Origin {
        Origin {
            path: if self.path.is_empty() {
                key.to_owned()
            } else {
                format!("{}.{key}", self.path)
            },
            ..self.clone()
        }
    }

    /// The diagnostic for `problem` written here, graded by the problem.
    pub(crate) fn report(&self, problem: &Problem) -> Diagnostic {
        self.diag(problem.severity(), problem.to_string())
    }

    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        self.diag(Severity::Error, message)
    }

    pub fn warning(&self, message: impl Into<String>) -> Diagnostic {
        self.diag(Severity::Warning, message)
    }

    fn diag(&self, severity: Severity, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity,
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            path: self.path.clone(),
            message: message.into(),
        }
    }
}

/// The diagnostics raised so far in one load, in the order raised (they are
/// sorted once, at the end).
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) diags: Vec<Diagnostic>,
}

impl Report {
    /// Raises `problem` where `origin` points.
    pub(crate) fn raise(&mut self, origin: &Origin, problem: Problem) {
        self.diags.push(origin.report(&problem));
    }

    /// The value, or `None` with its problem raised at `origin`.
    pub(crate) fn ok<T>(&mut self, origin: &Origin, r: Result<T, Problem>) -> Option<T> {
        r.map_err(|p| self.raise(origin, p)).ok()
    }

    /// A mark to ask [`Report::errors_since`] about later.
    pub(crate) fn mark(&self) -> usize {
        self.diags.len()
    }

    /// Whether an error was raised after `mark`: the thing being compiled
    /// since then is invalid, though its other keys were still checked.
    pub(crate) fn errors_since(&self, mark: usize) -> bool {
        self.diags[mark..]
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// A value and where it was written.
#[derive(Debug, Clone)]
pub struct At<T> {
    pub origin: Origin,
    pub value: T,
}

impl<T> At<T> {
    pub fn new(owner: &Origin, key: &str, s: Spanned<T>) -> At<T> {
        let mut origin = owner.child(key);
        if s.referenced.line() > 0 {
            origin.line = s.referenced.line();
            origin.column = s.referenced.column();
        }
        At {
            origin,
            value: s.value,
        }
    }
}

/// Edit distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidates nearest to `name` (ignoring case), closest first.
pub(crate) fn nearest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
    max: usize,
) -> Vec<&'a str> {
    let lower = name.to_lowercase();
    let limit = (name.chars().count() / 4).max(2);
    let mut near: Vec<(usize, &str)> = candidates
        .map(|c| (distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .collect();
    near.sort();
    near.into_iter().take(max).map(|(_, c)| c).collect()
}

/// ` (did you mean `x`?)`, or nothing when no candidate is close.
pub fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    nearest(name, candidates, 1)
        .first()
        .map_or_else(String::new, |c| format!(" (did you mean `{c}`?)"))
}
