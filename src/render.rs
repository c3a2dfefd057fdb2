//! Human-readable output: invoice summaries, `--explain` tables, SLA tables.

use std::fmt::Write;

use engine::document::{BillDocument, ExplainItem, SlaRow};

/// Pads columns to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < width.len() {
                width[i] = width[i].max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        // Padded by hand: `format!("{c:<w$}")` panics on widths over
        // 65,535 (a long ticket title). A cell past the header's columns
        // is not padded.
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = width
                    .get(i)
                    .map_or(0, |w| w.saturating_sub(c.chars().count()));
                let mut cell = String::with_capacity(c.len() + pad);
                cell.push_str(c);
                cell.extend(std::iter::repeat_n(' ', pad));
                cell
            })
            .collect();
        let _ = writeln!(out, "  {}", s.join("  ").trim_end());
    };
    line(
        &mut out,
        &header.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
    );
    line(
        &mut out,
        &width.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
    );
    for r in rows {
        line(&mut out, r);
    }
    out
}

/// The invoices, one block per customer.
pub fn invoices(doc: &BillDocument, explain: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Invoices for {}", doc.period.month);
    if doc.invoices.is_empty() {
        let _ = writeln!(out, "  (no customer owes anything)");
    }
    for inv in &doc.invoices {
        let _ = writeln!(
            out,
            "\n{}  {} {}",
            inv.customer, inv.total_net, inv.currency
        );
        let rows: Vec<Vec<String>> = inv
            .lines
            .iter()
            .map(|l| {
                vec![
                    l.description.clone(),
                    l.quantity.to_string(),
                    l.unit_price.to_string(),
                    l.amount.to_string(),
                    l.tickets
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                ]
            })
            .collect();
        out.push_str(&table(
            &["line", "qty", "unit price", "amount", "tickets"],
            &rows,
        ));
        if explain {
            for l in &inv.lines {
                let _ = writeln!(
                    out,
                    "    · {}: {} [{}]",
                    l.description, l.explanation.detail, l.explanation.rule
                );
                if !l.explanation.items.is_empty() {
                    out.push_str(&indent(&explain_items(&l.explanation.items), 4));
                }
            }
        }
    }
    if explain {
        let _ = writeln!(out, "\nReport (every ticket with work in the period)");
        let rows: Vec<Vec<String>> = doc
            .report
            .iter()
            .map(|r| {
                vec![
                    r.customer.to_string(),
                    r.ticket.to_string(),
                    r.category.clone().unwrap_or_else(|| "-".into()),
                    r.minutes_logged.to_string(),
                    r.minutes_billed.to_string(),
                    if r.billable {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                    r.held.clone().unwrap_or_default(),
                    r.rule.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "customer", "ticket", "category", "logged", "billed", "billable", "held", "rule",
            ],
            &rows,
        ));
        if !doc.balances.is_empty() {
            let _ = writeln!(out, "\nBalances at the end of the period");
            let rows: Vec<Vec<String>> = doc
                .balances
                .iter()
                .map(|b| {
                    vec![
                        b.customer.to_string(),
                        b.name.clone(),
                        b.remaining_minutes.to_string(),
                        b.expires_at.map(|e| e.to_string()).unwrap_or_default(),
                    ]
                })
                .collect();
            out.push_str(&table(
                &["customer", "bank or card", "remaining min", "expires"],
                &rows,
            ));
        }
    }
    for w in &doc.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

fn explain_items(items: &[ExplainItem]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            vec![
                i.ticket.to_string(),
                i.work
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                i.minutes_logged.to_string(),
                i.allowance_minutes.to_string(),
                i.travel_minutes.to_string(),
                format!("{} ({})", i.minutes_rounded, i.rounding),
                i.draws
                    .iter()
                    .map(|d| format!("{} {} min", d.from, d.minutes))
                    .collect::<Vec<_>>()
                    .join("; "),
                i.minutes_on_line.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "ticket",
            "work",
            "logged",
            "allowance",
            "travel",
            "rounded",
            "drawn",
            "billed on line",
        ],
        &rows,
    )
}

fn indent(s: &str, n: usize) -> String {
    s.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(n)))
        .collect()
}

/// `1h05m` style clock durations.
pub fn hm(minutes: i64) -> String {
    let sign = if minutes < 0 { "-" } else { "" };
    let m = minutes.abs();
    format!("{sign}{}h{:02}m", m / 60, m % 60)
}

/// Open clocks: due, remaining clock time, warned, breached.
pub fn open_clocks(rows: &[&SlaRow], as_of: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = format!("Open SLA clocks as of {}\n", as_of.to_rfc3339());
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return out;
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let remaining = r.target_minutes - r.elapsed_minutes;
            vec![
                r.customer.to_string(),
                r.ticket.to_string(),
                r.metric.as_str().to_owned(),
                r.priority.map_or("-".into(), |p| p.to_string()),
                hm(r.target_minutes),
                r.due_at.map_or_else(|| "paused".into(), |d| d.to_string()),
                if r.due_at.is_none() {
                    hm(remaining)
                } else if r.breached {
                    "overdue".into()
                } else {
                    hm(remaining)
                },
                if r.excluded {
                    "excluded".into()
                } else if r.breached {
                    "BREACHED".into()
                } else if r.warn_at.is_some_and(|w| w.utc() <= as_of) {
                    "warned".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "customer",
            "ticket",
            "metric",
            "prio",
            "target",
            "due",
            "remaining",
            "status",
        ],
        &table_rows,
    ));
    out
}

/// `diff`: per customer and period, the lines that change, old and new
/// figures, and why; then the total.
pub fn whatif(w: &engine::whatif::WhatIf) -> String {
    let mut out = String::new();
    if w.changes.is_empty() {
        out.push_str("no invoice line changes\n");
        return out;
    }
    let signed = |m: engine::money::Money| {
        if m.amount().is_sign_negative() {
            m.to_string()
        } else {
            format!("+{m}")
        }
    };
    let figures = |f: &Option<engine::whatif::LineFigures>| {
        f.as_ref().map_or_else(
            || "-".to_owned(),
            |f| format!("{} × {} = {}", f.quantity, f.unit_price, f.amount),
        )
    };
    for c in &w.changes {
        let _ = writeln!(
            out,
            "{} {}: {} → {} ({})",
            c.customer,
            c.period,
            c.old_total,
            c.new_total,
            signed(c.delta)
        );
        let rows: Vec<Vec<String>> = c
            .lines
            .iter()
            .map(|l| {
                vec![
                    l.kind.as_str().to_owned(),
                    l.new
                        .as_ref()
                        .or(l.old.as_ref())
                        .map_or_else(String::new, |f| f.description.clone()),
                    figures(&l.old),
                    figures(&l.new),
                    signed(l.delta),
                    l.reason.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["kind", "line", "old", "new", "delta", "why"],
            &rows,
        ));
        for t in &c.ticket_changes {
            let _ = writeln!(
                out,
                "  ticket {}: {} → {}",
                t.ticket,
                t.old_rule.as_deref().unwrap_or("-"),
                t.new_rule.as_deref().unwrap_or("-"),
            );
        }
    }
    let _ = writeln!(out, "total delta: {}", signed(w.total_delta));
    out
}
