//! Finance's review of drafts before they are pushed (mapping `review:`),
//! and the audit trail's actors: the `review` command, the daemon's
//! `/review` pages, and the fingerprint that decides when a rejected
//! period is billed again.

use engine::document::BillDocument;
use engine::ticket::CustomerKey;
use sha2::{Digest, Sha256};

/// Who runs this process, for the audit trail: `$USER`, else `$LOGNAME`,
/// else `unknown`.
pub fn os_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// The mapping files at `path` (a file, or a folder's files), those named
/// `*.yaml`/`*.yml`, sorted. A folder that cannot be listed has none (the
/// load that follows says why).
pub fn mapping_file_paths(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = if path.is_dir() {
        std::fs::read_dir(path)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default()
    } else {
        vec![path.to_path_buf()]
    };
    files.retain(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"));
    files.sort();
    files
}

/// SHA-256 over the mapping files' names and contents (a file or a
/// folder's `*.yaml`/`*.yml`, sorted), hex.
pub fn mapping_sha256(path: &std::path::Path) -> String {
    mapping_files_sha256(mapping_file_paths(path).into_iter().map(|f| {
        (
            f.display().to_string(),
            std::fs::read(&f).unwrap_or_default(),
        )
    }))
}

/// [`mapping_sha256`] of files given as `(path as the daemon names it,
/// content)`, in path order (a version kept in the store).
pub fn mapping_files_sha256(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> String {
    let mut h = Sha256::new();
    for (name, bytes) in files {
        h.update((name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(&bytes);
    }
    hex::encode(h.finalize())
}

/// The fingerprint of what a customer's draft for a period is made from:
/// the mapping version and the customer's part of the period's bill
/// (invoice lines with their explanations, report rows, balances), which
/// the tickets of the period determine. A rejected period is billed again
/// only once this changes.
pub fn fingerprint(mapping_version: &str, doc: &BillDocument, customer: &CustomerKey) -> String {
    let part = serde_json::json!({
        "invoice": doc.invoices.iter().find(|i| &i.customer == customer),
        "report": doc.report.iter().filter(|r| &r.customer == customer).collect::<Vec<_>>(),
        "balances": doc.balances.iter().filter(|b| &b.customer == customer).collect::<Vec<_>>(),
    });
    let mut h = Sha256::new();
    h.update(mapping_version.as_bytes());
    h.update(b"\n");
    h.update(part.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// `CUSTOMER/PERIOD` of a draft's outbox key (`draft:CUSTOMER:PERIOD:rN`).
pub fn draft_subject(key: &str) -> Option<String> {
    let rest = key.strip_prefix("draft:")?;
    let mut parts = rest.rsplitn(3, ':');
    let revision = parts.next()?;
    let period = parts.next()?;
    let customer = parts.next()?;
    revision.strip_prefix('r')?;
    Some(format!("{customer}/{period}"))
}

/// A waiting draft in a list: `review list --json`.
pub fn summary_json(r: &store::Review) -> serde_json::Value {
    serde_json::json!({
        "customer": r.customer,
        "period": r.period,
        "revision": r.revision,
        "key": r.key,
        "state": r.state.as_str(),
        "policy": r.policy,
        "total_net": r.total_net,
        "currency": r.currency,
        "reason": r.reason,
        "decided_by": r.decided_by,
        "decided_at": r.decided_at,
        "created_at": r.created_at,
    })
}

/// One draft as finance reviews it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReviewView {
    pub customer: String,
    pub period: String,
    pub revision: i64,
    pub key: String,
    pub state: String,
    pub policy: String,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub total_net: Option<String>,
    pub currency: Option<String>,
    pub lines: Vec<LineView>,
    /// The previous month's draft of the customer, if it had one.
    pub previous: Option<Previous>,
    /// This total minus the previous month's (or the whole total).
    pub change: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LineView {
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    pub amount: String,
    /// How the line was derived: the contract term and the figures.
    pub explanation: String,
    /// The same line's amount last month (same kind and description).
    pub last_month: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Previous {
    pub period: String,
    pub total_net: String,
    pub lines: usize,
}

fn dec(s: &str) -> rust_decimal::Decimal {
    s.parse().unwrap_or_default()
}

/// The draft of `customer` for `month` under review, with each line's
/// explanation and the change against the month before.
pub async fn view(
    store: &store::Store,
    customer: &str,
    month: engine::period::Month,
) -> Result<Option<ReviewView>, store::StoreError> {
    let Some(r) = store.review(customer, &month.to_string()).await? else {
        return Ok(None);
    };
    let doc: serde_json::Value = serde_json::from_str(&r.document).unwrap_or_default();
    let draft: Option<connectors::Draft> =
        serde_json::from_value(doc["draft"].clone()).ok().flatten();
    let explanations: Vec<String> = doc["invoice"]["lines"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|l| {
                    let e = &l["explanation"];
                    match (e["rule"].as_str(), e["detail"].as_str()) {
                        (Some(rule), Some(detail)) => format!("{rule}: {detail}"),
                        (Some(rule), None) => rule.to_owned(),
                        _ => String::new(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let prev_month = month.back(1);
    let previous_draft: Option<connectors::Draft> = store
        .closed_period(customer, &prev_month.to_string())
        .await?
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p.document).ok())
        .and_then(|d| serde_json::from_value(d["draft"].clone()).ok().flatten());
    let lines = draft
        .as_ref()
        .map(|d| {
            d.lines
                .iter()
                .enumerate()
                .map(|(i, l)| LineView {
                    description: l.description.clone(),
                    quantity: l.quantity.clone(),
                    unit_price: l.unit_price.clone(),
                    amount: l.amount.clone(),
                    explanation: match &l.corrects {
                        Some(p) => format!(
                            "correction of {p}: the difference between what {p} comes to now and what was billed for it"
                        ),
                        None => explanations.get(i).cloned().unwrap_or_default(),
                    },
                    last_month: previous_draft.as_ref().and_then(|p| {
                        p.lines
                            .iter()
                            .find(|pl| pl.kind == l.kind && pl.description == l.description)
                            .map(|pl| pl.amount.clone())
                    }),
                })
                .collect()
        })
        .unwrap_or_default();
    let total = r.total_net.as_deref().map(dec);
    let change = total.map(|t| {
        let before = previous_draft
            .as_ref()
            .map_or(rust_decimal::Decimal::ZERO, |p| dec(&p.total_net));
        let d = t - before;
        format!(
            "{}{:.2}",
            if d >= rust_decimal::Decimal::ZERO {
                "+"
            } else {
                ""
            },
            d
        )
    });
    Ok(Some(ReviewView {
        customer: r.customer,
        period: r.period,
        revision: r.revision,
        key: r.key,
        state: r.state.as_str().to_owned(),
        policy: r.policy,
        reason: r.reason,
        decided_by: r.decided_by,
        decided_at: r.decided_at,
        total_net: r.total_net,
        currency: r.currency,
        lines,
        previous: previous_draft.map(|p| Previous {
            period: prev_month.to_string(),
            total_net: p.total_net,
            lines: p.lines.len(),
        }),
        change,
    }))
}

/// `review show`.
pub fn view_text(v: &ReviewView) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let cur = v.currency.as_deref().unwrap_or("");
    let _ = writeln!(
        out,
        "{} {} (revision {}, {}): {} {cur} net, {} (review: {})",
        v.customer,
        v.period,
        v.revision,
        v.key,
        v.total_net.as_deref().unwrap_or("-"),
        v.state,
        v.policy
    );
    if let Some(r) = &v.reason {
        let _ = writeln!(
            out,
            "reason: {r} ({} at {})",
            v.decided_by.as_deref().unwrap_or("?"),
            v.decided_at.as_deref().unwrap_or("?")
        );
    }
    match (&v.previous, &v.change) {
        (Some(p), Some(c)) => {
            let _ = writeln!(
                out,
                "against {}: {} {cur} net in {} line(s); change {c} {cur}",
                p.period, p.total_net, p.lines
            );
        }
        (None, Some(c)) => {
            let _ = writeln!(out, "no draft last month; change {c} {cur}");
        }
        _ => {}
    }
    let rows: Vec<Vec<String>> = v
        .lines
        .iter()
        .map(|l| {
            vec![
                l.description.clone(),
                l.quantity.clone(),
                l.unit_price.clone(),
                l.amount.clone(),
                l.last_month.clone().unwrap_or_else(|| "-".into()),
                l.explanation.clone(),
            ]
        })
        .collect();
    out.push_str(&crate::render::table(
        &[
            "line",
            "quantity",
            "unit price",
            "amount",
            "last month",
            "explanation",
        ],
        &rows,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_key_names_its_customer_and_period() {
        assert_eq!(
            draft_subject("draft:riga:bakery:2026-10:r2").as_deref(),
            Some("riga:bakery/2026-10")
        );
        assert_eq!(draft_subject("note:zammad:1:breach"), None);
        assert_eq!(draft_subject("draft:x"), None);
    }
}
