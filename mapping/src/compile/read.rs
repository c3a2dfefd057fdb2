//! Stage 1, read: mapping files → [`RawFile`]s, each value with its place.
//!
//! Reading knows nothing of names or meanings: it lists the files of a
//! folder, reads each, and lets serde (through `serde_saphyr`, which keeps
//! line and column on every `Spanned` value) refuse unknown keys and wrong
//! shapes. The deserializer's terse messages are turned into [`Problem`]s
//! that say what would be valid; the key path it reports is rewritten into
//! the admin's terms (`cards.0.punches`, not `cards.value[0].punches`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Diagnostic, Origin, Problem, Report};
use crate::raw::RawFile;

/// One mapping file as read.
pub(crate) struct Parsed {
    pub file: Arc<Path>,
    pub raw: RawFile,
}

/// Every `*.yaml` / `*.yml` file of `path` (a file or a folder), read and
/// parsed; a file that cannot be read or parsed is reported and left out.
/// `Err` when there is nothing to read at all.
pub(crate) fn read(path: &Path, report: &mut Report) -> Result<Vec<Parsed>, Diagnostic> {
    let mut parsed = Vec::new();
    for f in list_files(path)? {
        match std::fs::read_to_string(&f) {
            Ok(text) => match parse_text(&f, &text) {
                Ok(raw) => parsed.push(Parsed {
                    file: Arc::from(f.as_path()),
                    raw,
                }),
                Err(d) => report.diags.push(d),
            },
            Err(e) => report.raise(&Origin::file_only(&f), Problem::CannotRead(e.to_string())),
        }
    }
    Ok(parsed)
}

/// The mapping files of `path`, in name order: the file itself, or the
/// folder's YAML files.
fn list_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let refuse = |p: Problem| Origin::file_only(path).report(&p);
    let meta = std::fs::metadata(path).map_err(|e| refuse(Problem::CannotOpen(e.to_string())))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| refuse(Problem::CannotList(e.to_string())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(refuse(Problem::NoMappingFiles));
    }
    Ok(files)
}

/// Parses one file's text; a syntax or type error names line, column and key path.
pub fn parse_text(file: &Path, text: &str) -> Result<RawFile, Diagnostic> {
    if text.trim().is_empty() {
        return Err(Origin::file_only(file).report(&Problem::EmptyFile));
    }
    let mut path = String::new();
    let res = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, RawFile>(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    res.map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        let first = e.to_string();
        let first = first.lines().next().unwrap_or_default();
        let msg = first
            .strip_prefix("error: ")
            .unwrap_or(first)
            .split_once(": ")
            .filter(|(head, _)| head.starts_with("line "))
            .map_or(first, |(_, rest)| rest);
        let msg = msg.split(", set DuplicateKeyPolicy").next().unwrap_or(msg);
        let origin = Origin {
            file: Arc::from(file),
            line,
            column,
            path: admin_path(&path),
        };
        origin.report(&classify(msg, scalar_at(text, line, column)))
    })
}

/// `Spanned` wrappers show up as `value` segments and list items as `[0]`;
/// the admin wrote neither: `cards.value[0].punches` is `cards.0.punches`.
fn admin_path(path: &str) -> String {
    let path = path.replace('[', ".").replace(']', "");
    let path: Vec<&str> = path
        .split('.')
        .filter(|seg| !seg.is_empty() && *seg != "value" && *seg != "?")
        .collect();
    path.join(".")
}

/// The plain scalar written at `line`:`column` (1-based), for messages.
fn scalar_at(text: &str, line: u64, column: u64) -> Option<&str> {
    let l = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let start = l
        .char_indices()
        .nth(usize::try_from(column).ok()?.checked_sub(1)?)?
        .0;
    let rest = &l[start..];
    let end = rest.find(" #").unwrap_or(rest.len());
    let v = rest[..end].trim().trim_end_matches(',').trim();
    (!v.is_empty()).then_some(v)
}

/// Which problem the YAML deserializer's message `msg` describes; `found` is
/// the value written where it stopped.
fn classify(msg: &str, found: Option<&str>) -> Problem {
    let found = found.map(str::to_owned);
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((key, expected)) = rest.split_once("`, expected one of ")
    {
        return Problem::UnknownKey {
            key: key.to_owned(),
            valid: expected
                .split(", ")
                .map(|v| v.trim_matches('`').to_owned())
                .collect(),
        };
    }
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((key, _)) = rest.split_once('`')
    {
        return Problem::NoKeysHere {
            key: key.to_owned(),
        };
    }
    if let Some(ty) = msg.strip_prefix("invalid ") {
        let max = match ty {
            "u8" => Some(u64::from(u8::MAX)),
            "u16" => Some(u64::from(u16::MAX)),
            "u32" => Some(u64::from(u32::MAX)),
            "u64" => Some(u64::MAX),
            _ => None,
        };
        if let Some(max) = max {
            return Problem::NotWholeNumber { found, max };
        }
    }
    if let Some(key) = msg.strip_prefix("duplicate mapping key: ") {
        return Problem::KeyTwice {
            key: key.to_owned(),
        };
    }
    if msg == "expected string scalar" {
        return Problem::NotSingleValue { found };
    }
    if let Some(name) = msg.strip_prefix("data did not match any variant of untagged enum ")
        && let Some(expected) = Problem::shapes_of(name.trim())
    {
        return Problem::NoShapeMatches { found, expected };
    }
    Problem::Verbatim(msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RawFile, Diagnostic> {
        parse_text(Path::new("m.yaml"), text)
    }

    #[test]
    fn values_keep_the_line_and_column_they_were_written_at() {
        let raw = parse("customers:\n  bakery:\n    currency: EUR\n    hourly_rate: \"60.00\"\n")
            .expect("parses");
        let bakery = &raw.customers["bakery"].value;
        let rate = bakery.hourly_rate.as_ref().expect("rate");
        assert_eq!(rate.value, "60.00");
        assert_eq!((rate.referenced.line(), rate.referenced.column()), (4, 18));
    }

    #[test]
    fn an_unknown_key_names_its_line_path_and_the_nearest_valid_key() {
        let d = parse("customers:\n  bakery:\n    curency: EUR\n").unwrap_err();
        assert_eq!(d.line, 3);
        assert_eq!(d.path, "customers.bakery.curency");
        assert!(
            d.message
                .starts_with("unknown key `curency` (did you mean `currency`?); valid keys here: template, start,"),
            "{}",
            d.message
        );
    }

    #[test]
    fn list_items_are_numbered_as_the_admin_counts_them() {
        let d = parse("customers:\n  bakery:\n    cards:\n      - bought: 2026-01-01\n        punches: many\n")
            .unwrap_err();
        assert_eq!(d.path, "customers.bakery.cards.0.punches");
        assert_eq!(d.line, 5);
        assert_eq!(
            d.message,
            "`many` is not a whole number from 0 to 4294967295: write digits, such as 20"
        );
    }

    #[test]
    fn a_key_written_twice_is_refused() {
        let d = parse("customers:\n  a:\n    currency: EUR\n    currency: SEK\n").unwrap_err();
        assert_eq!(
            d.message,
            "`currency` is written twice here: a key may appear only once"
        );
    }

    #[test]
    fn a_wrong_shape_says_which_shapes_are_valid() {
        let d = parse("calendars:\n  c:\n    time_zone: UTC\n    hours: [1, 2]\n").unwrap_err();
        assert_eq!(d.line, 4);
        assert!(
            d.message.ends_with("expected `24/7`, or windows per day such as `mon-fri: \"09:00-17:00\"` (a day may have a list of windows)"),
            "{}",
            d.message
        );
    }

    #[test]
    fn an_empty_file_is_refused_rather_than_dropping_what_it_held() {
        let d = parse("  \n").unwrap_err();
        assert_eq!(d.line, 0);
        assert!(d.message.starts_with("the file is empty"), "{}", d.message);
    }

    #[test]
    fn a_folder_without_yaml_files_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("notes.txt"), "hello").expect("write");
        let d = read(dir.path(), &mut Report::default())
            .err()
            .expect("refused");
        assert_eq!(
            d.message,
            "no mapping files: the folder holds no *.yaml or *.yml file"
        );
    }

    #[test]
    fn a_folder_is_read_in_name_order_and_other_files_are_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in [
            ("b.yml", "value_maps: {b: {}}\n"),
            ("a.yaml", "value_maps: {a: {}}\n"),
            ("c.txt", "not: yaml: at all"),
        ] {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let mut report = Report::default();
        let files = read(dir.path(), &mut report).expect("read");
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.yaml", "b.yml"]);
        assert!(report.diags.is_empty());
    }
}
