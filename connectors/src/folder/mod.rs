//! The `folder` source and target: no external account needed.
//!
//! Source: every export file (`*.json`, or the configured file name, in the
//! folder or below it with `recursive`) in the offline format; a file is
//! read again when its size or modification time changes. Target: each draft
//! becomes `<key>.json`, `<key>.csv` and `<key>.journal` (hledger), written
//! to a temporary name and renamed, so a crash never leaves half a draft and
//! a repeated push of the same key rewrites the same bytes.

use crate::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{ConnectorError, Draft, Note, SyncBatch, TicketSnapshot};

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FolderSourceConfig {
    pub path: PathBuf,
    /// Only files with this name (default: every `*.json`).
    #[serde(default)]
    pub file_name: Option<String>,
    /// Look in subfolders too.
    #[serde(default)]
    pub recursive: bool,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FolderTargetConfig {
    pub path: PathBuf,
}

fn io(path: &Path, e: std::io::Error) -> ConnectorError {
    ConnectorError::Transient(format!("{}: {e}", path.display()))
}

fn export_files(c: &FolderSourceConfig) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut dirs = vec![c.path.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let path = entry.map_err(|e| io(&dir, e))?.path();
            if path.is_dir() {
                if c.recursive {
                    dirs.push(path);
                }
                continue;
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let wanted = match &c.file_name {
                Some(f) => name == f,
                None => name.ends_with(".json"),
            };
            if wanted {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `size:mtime` of a file: when it changes, the file is read again.
fn fingerprint(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{}:{mtime}", meta.len()))
}

pub fn sync(c: &FolderSourceConfig, cursor: Option<&str>) -> Result<SyncBatch> {
    let seen: BTreeMap<String, String> = cursor
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let mut now_seen = BTreeMap::new();
    let mut tickets = Vec::new();
    for path in export_files(c)? {
        let key = path.display().to_string();
        let fp = fingerprint(&path)?;
        if seen.get(&key) != Some(&fp) {
            tickets.extend(read_export(&path)?);
        }
        now_seen.insert(key, fp);
    }
    Ok(SyncBatch {
        tickets,
        cursor: serde_json::to_string(&now_seen).unwrap_or_default(),
    })
}

fn read_export(path: &Path) -> Result<Vec<TicketSnapshot>> {
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    crate::snapshots_from_export(&text, &path.display().to_string())
}

/// File names keep the key readable and safe on every file system, and
/// distinct keys get distinct names: `:` becomes `_`, letters, digits and
/// `-` stay, anything else (a dot too) is written `~` and its hex code.
fn file_stem(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            ':' => out.push('_'),
            c if c.is_ascii_alphanumeric() || c == '-' => out.push(c),
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("~{b:02x}"));
                }
            }
        }
    }
    out
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // Drafts name customers and amounts: readable by their owner only,
    // whatever the umask (a file left from before is tightened too).
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(|e| io(&tmp, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io(&tmp, e))?;
    }
    std::io::Write::write_all(&mut f, bytes).map_err(|e| io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

pub fn push_draft(c: &FolderTargetConfig, key: &str, d: &Draft) -> Result<()> {
    std::fs::create_dir_all(&c.path).map_err(|e| io(&c.path, e))?;
    let stem = file_stem(key);
    let file = |ext: &str| c.path.join(format!("{stem}.{ext}"));
    let json = serde_json::to_vec_pretty(&serde_json::json!({"idempotency_key": key, "draft": d}))
        .map_err(|e| ConnectorError::Permanent(e.to_string()))?;
    // Made before anything is written: a draft it refuses leaves no file.
    let journal = journal(key, d)?;
    // The JSON is written last: its presence means the draft is complete.
    write_atomically(&file("csv"), csv(d).as_bytes())?;
    write_atomically(&file("journal"), journal.as_bytes())?;
    write_atomically(&file("json"), &json)
}

/// A note is one JSON file; an agent or a script picks it up from there.
pub fn push_note(c: &FolderTargetConfig, key: &str, n: &Note) -> Result<()> {
    std::fs::create_dir_all(&c.path).map_err(|e| io(&c.path, e))?;
    let json = serde_json::to_vec_pretty(&serde_json::json!({"idempotency_key": key, "note": n}))
        .map_err(|e| ConnectorError::Permanent(e.to_string()))?;
    write_atomically(&c.path.join(format!("{}.json", file_stem(key))), &json)
}

pub fn push_ticket(c: &FolderTargetConfig, key: &str, t: &crate::NewTicket) -> Result<()> {
    std::fs::create_dir_all(&c.path).map_err(|e| io(&c.path, e))?;
    let json = serde_json::to_vec_pretty(&serde_json::json!({"idempotency_key": key, "ticket": t}))
        .map_err(|e| ConnectorError::Permanent(e.to_string()))?;
    write_atomically(&c.path.join(format!("{}.json", file_stem(key))), &json)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(d: &Draft) -> String {
    let mut out = String::from(
        "customer,period,currency,kind,description,quantity,unit_price,amount,tickets\n",
    );
    for l in &d.lines {
        let row = [
            d.customer.as_str(),
            d.period.as_str(),
            d.currency.as_str(),
            l.kind.as_str(),
            l.description.as_str(),
            l.quantity.as_str(),
            l.unit_price.as_str(),
            l.amount.as_str(),
            &l.tickets.join(" "),
        ]
        .map(csv_field)
        .join(",");
        out.push_str(&row);
        out.push('\n');
    }
    out
}

/// One hledger transaction: the receivable against one revenue posting per
/// line. A line whose amount is not a decimal refuses the draft: the
/// journal never books a zero it was not given.
fn journal(key: &str, d: &Draft) -> Result<String> {
    let mut out = format!(
        "{} ! {} invoice draft {}  ; key:{key}\n    assets:receivable:{}  {} {}\n",
        d.date, d.customer, d.period, d.customer, d.total_net, d.currency
    );
    for l in &d.lines {
        let amount: rust_decimal::Decimal = l.amount.parse().map_err(|_| {
            ConnectorError::Permanent(format!(
                "draft {key}: line `{}` has the amount `{}`, which is not a decimal",
                l.description, l.amount
            ))
        })?;
        out.push_str(&format!(
            "    revenue:{}  {} {}  ; {}\n",
            l.kind, -amount, d.currency, l.description
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DraftLine;

    fn draft() -> Draft {
        Draft {
            customer: "riga-bakery".into(),
            period: "2026-10".into(),
            revision: 1,
            currency: "EUR".into(),
            total_net: "175.00".into(),
            date: "2026-11-01".into(),
            refs: crate::Refs::default(),
            statement_url: None,
            forced: None,
            lines: vec![
                DraftLine {
                    kind: "work".into(),
                    description: "Support work, 3.25 h".into(),
                    quantity: "3.25".into(),
                    unit_price: "40.00".into(),
                    amount: "130.00".into(),
                    tickets: vec!["T-1001".into()],
                    corrects: None,
                    refs: Default::default(),
                },
                DraftLine {
                    kind: "call_out".into(),
                    description: "Call-out fee, \"onsite\"".into(),
                    quantity: "3".into(),
                    unit_price: "15.00".into(),
                    amount: "45.00".into(),
                    tickets: vec![],
                    corrects: None,
                    refs: Default::default(),
                },
            ],
        }
    }

    #[test]
    fn a_line_amount_that_is_no_decimal_refuses_the_draft_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = FolderTargetConfig {
            path: dir.path().to_path_buf(),
        };
        let mut d = draft();
        d.lines[1].amount = "45,00".into();
        let e = push_draft(&c, "draft:k", &d).unwrap_err();
        assert!(matches!(e, ConnectorError::Permanent(_)), "{e}");
        assert!(e.to_string().contains("`45,00`"), "{e}");
        // No file of the draft is written.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_draft_is_written_three_ways_and_again_identically() {
        let dir = tempfile::tempdir().unwrap();
        let c = FolderTargetConfig {
            path: dir.path().to_path_buf(),
        };
        push_draft(&c, "draft:riga-bakery:2026-10:r1", &draft()).unwrap();
        let stem = dir.path().join("draft_riga-bakery_2026-10_r1");
        let first = std::fs::read(stem.with_extension("json")).unwrap();
        push_draft(&c, "draft:riga-bakery:2026-10:r1", &draft()).unwrap();
        assert_eq!(std::fs::read(stem.with_extension("json")).unwrap(), first);
        let csv = std::fs::read_to_string(stem.with_extension("csv")).unwrap();
        assert!(csv.contains("\"Call-out fee, \"\"onsite\"\"\""), "{csv}");
        let journal = std::fs::read_to_string(stem.with_extension("journal")).unwrap();
        assert!(
            journal.contains("assets:receivable:riga-bakery  175.00 EUR"),
            "{journal}"
        );
        assert!(journal.contains("revenue:work  -130.00 EUR"), "{journal}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            3,
            "no temporary file is left"
        );
    }

    #[test]
    fn distinct_keys_get_distinct_file_names() {
        assert_eq!(
            file_stem("draft:riga-bakery:2026-10:r1"),
            "draft_riga-bakery_2026-10_r1"
        );
        let keys = [
            "draft:acme.lv:2026-10:r1",
            "draft:acme.lv:2026-11:r1",
            "draft:acme_lv:2026-10:r1",
            "sla:d:T.5:x",
        ];
        let stems: std::collections::BTreeSet<String> = keys.iter().map(|k| file_stem(k)).collect();
        assert_eq!(stems.len(), keys.len());
        assert!(stems.iter().all(|s| !s.contains('.')), "{stems:?}");
    }

    #[test]
    fn a_source_reads_a_changed_file_again_and_skips_an_unchanged_one() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.json");
        std::fs::write(
            &f,
            r#"{"tickets":[{"id":"T-1","customer":"acme","work":[]}]}"#,
        )
        .unwrap();
        let c = FolderSourceConfig {
            path: dir.path().to_path_buf(),
            file_name: None,
            recursive: false,
        };
        let first = sync(&c, None).unwrap();
        assert_eq!(first.tickets.len(), 1);
        assert_eq!(first.tickets[0].customer, "acme");
        let again = sync(&c, Some(&first.cursor)).unwrap();
        assert!(again.tickets.is_empty());
        std::fs::write(&f, r#"{"tickets":[{"id":"T-1","customer":"acme","work":[]},{"id":"T-2","customer":"acme"}]}"#).unwrap();
        assert_eq!(sync(&c, Some(&again.cursor)).unwrap().tickets.len(), 2);
    }

    #[test]
    fn a_ticket_without_an_id_is_a_permanent_error_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"tickets":[{"customer":"acme"}]}"#,
        )
        .unwrap();
        let c = FolderSourceConfig {
            path: dir.path().to_path_buf(),
            file_name: None,
            recursive: false,
        };
        let err = sync(&c, None).unwrap_err().to_string();
        assert!(err.contains("tickets[0].id"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn draft_files_are_written_0600_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        // A file of the same name left from before with loose permissions.
        let old = out.join("draft_acme_2026-10_r1.json");
        std::fs::write(&old, "{}").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomically(&old, b"{\"x\":1}").unwrap();
        write_atomically(&out.join("fresh.csv"), b"a,b\n").unwrap();
        for f in [old, out.join("fresh.csv")] {
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
    }
}
