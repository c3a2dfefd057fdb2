//! # contract-bridge report
//!
//! The work report a customer reads: the contract, the invoice lines and how
//! each was derived, every ticket with its work entries, the bank or card
//! balance with a chart of the last 12 months, and SLA compliance by
//! priority, as one HTML page in the customer's language.
//!
//! Pure: the caller hands in the bill documents, the tickets and the
//! templates' text; nothing here reads files or the clock. [`view`] builds
//! the page's data (every number already formatted the local way) and
//! [`Templates::render`] writes it through the minijinja templates of
//! `templates/report/` (embedded; an admin may override any file).

pub mod format;
mod templates;

use std::collections::BTreeMap;

use chrono_tz::Tz;
use engine::contract::{Contract, Language};
use engine::document::{BillDocument, EventKind, LocalTime, ReportRow};
use engine::period::Month;
use engine::ticket::{Ticket, WorkKind};
use rust_decimal::Decimal;
use serde::Serialize;

pub use templates::{FILES, Strings, TemplateError, Templates};

/// What one report is made of.
pub struct ReportInput<'a> {
    pub contract: &'a Contract,
    /// The report's last month; the contract's cadence decides its first.
    pub period: Month,
    /// Bill documents by month: every month of the report, and as many of
    /// the 11 months before it as the chart should show.
    pub bills: &'a BTreeMap<Month, BillDocument>,
    pub tickets: &'a [Ticket],
    /// Overrides the contract's language.
    pub language: Option<Language>,
}

/// The page's data: every value a template shows, formatted.
#[derive(Debug, Serialize)]
pub struct ReportView {
    pub lang: &'static str,
    pub customer: String,
    pub contract: String,
    pub currency: String,
    pub time_zone: String,
    /// `October 2026`, or `October – December 2026` for a quarter.
    pub period: String,
    pub months: Vec<MonthView>,
    /// Sum of the months' invoice totals, formatted.
    pub total: String,
    /// The same sum as a plain decimal (`1234.50`), for machines.
    pub total_plain: String,
    pub balances: Vec<BalanceView>,
    pub chart: Option<Chart>,
    pub sla: SlaView,
}

#[derive(Debug, Serialize)]
pub struct MonthView {
    pub label: String,
    pub total: String,
    pub lines: Vec<LineView>,
    pub tickets: Vec<TicketView>,
}

#[derive(Debug, Serialize)]
pub struct LineView {
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    pub amount: String,
    pub rule: String,
    pub detail: String,
    pub items: Vec<ItemView>,
}

#[derive(Debug, Serialize)]
pub struct ItemView {
    pub ticket: String,
    pub logged: String,
    pub rounded: String,
    pub rounding: String,
    pub drawn: String,
    pub on_line: String,
}

#[derive(Debug, Serialize)]
pub struct TicketView {
    pub id: String,
    pub title: String,
    pub category: String,
    /// `held`, `free`, `prepaid` or `billed`: a key of the strings table.
    pub status: &'static str,
    pub why: String,
    pub logged: String,
    pub billed: String,
    pub entries: Vec<EntryView>,
}

#[derive(Debug, Serialize)]
pub struct EntryView {
    pub who: String,
    pub when: String,
    /// `remote`, `onsite` or `phone`: a key of the strings table (`kind_…`).
    pub kind: &'static str,
    pub minutes: String,
}

#[derive(Debug, Serialize)]
pub struct BalanceView {
    pub name: String,
    pub remaining: String,
    pub punches: Option<u32>,
    pub expires: String,
}

/// The 12-month chart: one bar per month (hours drawn from banks and cards)
/// and a line of the balance left at each month's end. Coordinates are in
/// the SVG's user units.
#[derive(Debug, Serialize)]
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub plot_top: u32,
    pub plot_bottom: u32,
    pub plot_left: u32,
    pub bars: Vec<Bar>,
    /// `x,y x,y …` of the balance line.
    pub line: String,
    pub ticks: Vec<Tick>,
    pub bar_colour: &'static str,
    pub line_colour: &'static str,
    pub text_colour: &'static str,
    pub background: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub label: String,
    pub used: String,
    pub left: String,
    pub dot_y: u32,
}

#[derive(Debug, Serialize)]
pub struct Tick {
    pub y: u32,
    pub label: String,
}

#[derive(Debug, Serialize, Default)]
pub struct SlaView {
    pub targets: u32,
    pub met: u32,
    pub breached: u32,
    pub pending: u32,
    pub excluded: u32,
    pub share: String,
    pub by_priority: Vec<PriorityView>,
    pub breaches: Vec<SlaEventView>,
    pub warnings: Vec<SlaEventView>,
}

#[derive(Debug, Serialize)]
pub struct PriorityView {
    pub priority: String,
    pub breaches: u32,
    pub warnings: u32,
}

#[derive(Debug, Serialize)]
pub struct SlaEventView {
    pub ticket: String,
    /// `first_response` or `resolution`: a key of the strings table.
    pub metric: &'static str,
    pub priority: String,
    pub due: String,
    pub at: String,
}

/// Colours of the chart, chosen for at least 3:1 contrast on the white
/// background (WCAG 1.4.11 for graphics): the browser test checks them.
const BAR: &str = "#1f5fa8";
const LINE: &str = "#a4410e";
const TEXT: &str = "#1a1a1a";
const BACKGROUND: &str = "#ffffff";

/// The months a report of `period` covers.
pub fn months_of(contract: &Contract, period: Month) -> Vec<Month> {
    contract
        .report
        .every
        .first_month(period)
        .through(period)
        .collect()
}

/// The page's data for one customer.
pub fn view(input: &ReportInput<'_>, strings: &Strings) -> ReportView {
    let c = input.contract;
    let lang = input.language.unwrap_or(c.report.language);
    let months_names = &strings.months;
    let cur = c.currency.as_str();
    let key = &c.customer;
    let covered = months_of(c, input.period);
    let month_label = |m: Month| {
        format!(
            "{} {}",
            months_names
                .get(m.month() as usize - 1)
                .cloned()
                .unwrap_or_default(),
            m.year()
        )
    };
    let period = match (covered.first(), covered.last()) {
        (Some(a), Some(b)) if a != b => format!(
            "{} – {}",
            months_names
                .get(a.month() as usize - 1)
                .cloned()
                .unwrap_or_default(),
            month_label(*b)
        ),
        _ => month_label(input.period),
    };
    let mut total = Decimal::ZERO;
    let mut months = Vec::new();
    let mut sla = SlaView::default();
    let mut by_priority: BTreeMap<Option<u8>, (u32, u32)> = BTreeMap::new();
    for &m in &covered {
        let Some(doc) = input.bills.get(&m) else {
            continue;
        };
        let invoice = doc.invoices.iter().find(|i| &i.customer == key);
        let month_total = invoice.map_or(Decimal::ZERO, |i| i.total_net.amount());
        total += month_total;
        let lines = invoice
            .map(|i| {
                i.lines
                    .iter()
                    .map(|l| LineView {
                        description: l.description.clone(),
                        quantity: format::number(
                            l.quantity,
                            l.quantity.normalize().scale().min(2),
                            lang,
                        ),
                        unit_price: format::money(l.unit_price.amount(), cur, lang),
                        amount: format::money(l.amount.amount(), cur, lang),
                        rule: l.explanation.rule.clone(),
                        detail: l.explanation.detail.clone(),
                        items: l
                            .explanation
                            .items
                            .iter()
                            .map(|it| ItemView {
                                ticket: it.ticket.to_string(),
                                logged: format::duration(it.minutes_logged.value()),
                                rounded: format::duration(it.minutes_rounded.value()),
                                rounding: it.rounding.clone(),
                                drawn: it
                                    .draws
                                    .iter()
                                    .map(|d| {
                                        format!(
                                            "{} {}",
                                            d.from,
                                            format::duration(d.minutes.value())
                                        )
                                    })
                                    .collect::<Vec<_>>()
                                    .join("; "),
                                on_line: format::duration(it.minutes_on_line.value()),
                            })
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let tickets = doc
            .report
            .iter()
            .filter(|r| &r.customer == key)
            .map(|r| ticket_view(r, input.tickets, m, c.tz, lang, months_names))
            .collect();
        months.push(MonthView {
            label: month_label(m),
            total: format::money(month_total, cur, lang),
            lines,
            tickets,
        });
        for s in doc.sla_summary.iter().filter(|s| &s.customer == key) {
            sla.targets += s.targets;
            sla.met += s.met_in_time;
            sla.breached += s.breached;
            sla.pending += s.pending;
            sla.excluded += s.excluded;
        }
        // The customer's clocks by ticket and metric, read once: a month of
        // a large book has hundreds of thousands of rows (issue 19).
        let mut priorities = std::collections::HashMap::new();
        for r in doc.sla.iter().filter(|r| &r.customer == key) {
            priorities
                .entry((r.ticket.as_str(), r.metric))
                .or_insert(r.priority.map(|p| p.get()));
        }
        let priority_of =
            |ticket: &str, metric| priorities.get(&(ticket, metric)).copied().flatten();
        for e in doc.events.iter().filter(|e| &e.customer == key) {
            let (ticket, metric, due, breach) = match &e.kind {
                EventKind::SlaWarning {
                    ticket,
                    metric,
                    due_at,
                    ..
                } => (ticket, *metric, *due_at, false),
                EventKind::SlaBreach {
                    ticket,
                    metric,
                    due_at,
                    ..
                } => (ticket, *metric, Some(*due_at), true),
                _ => continue,
            };
            let prio = priority_of(ticket.as_str(), metric);
            let counts = by_priority.entry(prio).or_default();
            let ev = SlaEventView {
                ticket: ticket.to_string(),
                metric: metric.as_str(),
                priority: prio.map_or_else(|| "–".to_owned(), |p| p.to_string()),
                due: due.map_or_else(String::new, |d| local(d, c.tz, lang, months_names)),
                at: local(e.at, c.tz, lang, months_names),
            };
            if breach {
                counts.0 += 1;
                sla.breaches.push(ev);
            } else {
                counts.1 += 1;
                sla.warnings.push(ev);
            }
        }
    }
    // Every priority of the contract's scale, so that "no breach" shows as 0.
    for p in 1..=4u8 {
        by_priority.entry(Some(p)).or_default();
    }
    sla.by_priority = by_priority
        .into_iter()
        .map(|(p, (b, w))| PriorityView {
            priority: p.map_or_else(|| "–".to_owned(), |p| p.to_string()),
            breaches: b,
            warnings: w,
        })
        .collect();
    let decided = sla.met + sla.breached;
    sla.share = if decided == 0 {
        "–".to_owned()
    } else {
        format!(
            "{}{}%",
            format::number(
                Decimal::from(sla.met * 100) / Decimal::from(decided),
                1,
                lang
            ),
            if lang == Language::En { "" } else { "\u{a0}" }
        )
    };
    let last_doc = input.bills.get(&input.period);
    let balances: Vec<BalanceView> = last_doc
        .map(|d| {
            d.balances
                .iter()
                .filter(|b| &b.customer == key)
                .map(|b| BalanceView {
                    name: b.name.clone(),
                    remaining: format::duration(b.remaining_minutes.value()),
                    punches: b.remaining_punches,
                    expires: b
                        .expires_at
                        .map_or_else(String::new, |e| format::date(e.0, lang, months_names)),
                })
                .collect()
        })
        .unwrap_or_default();
    let chart = (!balances.is_empty()).then(|| chart(input, lang, months_names));
    ReportView {
        lang: lang.code(),
        customer: key.to_string(),
        contract: c.name.clone(),
        currency: cur.to_owned(),
        time_zone: c.tz.name().to_owned(),
        period,
        months,
        total: format::money(total, cur, lang),
        total_plain: format!("{:.2}", total.round_dp(2)),
        balances,
        chart,
        sla,
    }
}

fn local(t: LocalTime, tz: Tz, lang: Language, months: &[String]) -> String {
    format::date_time(t.utc().with_timezone(&tz), lang, months)
}

fn ticket_view(
    r: &ReportRow,
    tickets: &[Ticket],
    month: Month,
    tz: Tz,
    lang: Language,
    months: &[String],
) -> TicketView {
    let ticket = tickets
        .iter()
        .find(|t| t.id == r.ticket && t.customer == r.customer);
    let entries = ticket
        .map(|t| {
            t.work
                .iter()
                .filter(|w| Month::containing(w.at, tz) == month)
                .map(|w| EntryView {
                    who: w.agent.as_deref().unwrap_or("–").to_owned(),
                    when: format::date_time(w.at.with_timezone(&tz), lang, months),
                    kind: match w.kind {
                        WorkKind::Remote => "remote",
                        WorkKind::Onsite => "onsite",
                        WorkKind::Phone => "phone",
                    },
                    minutes: format::duration(w.minutes.value()),
                })
                .collect()
        })
        .unwrap_or_default();
    let drawn: Decimal = r.draws.iter().map(|d| d.minutes.value()).sum();
    let status = if r.held.is_some() {
        "held"
    } else if !r.billable {
        "free"
    } else if !r.draws.is_empty() && drawn >= r.minutes_billed.value() {
        "prepaid"
    } else {
        "billed"
    };
    let mut why = r.held.clone().unwrap_or_else(|| r.rule.clone());
    for d in &r.draws {
        why.push_str(&format!(
            "; {} {}",
            d.from,
            format::duration(d.minutes.value())
        ));
    }
    TicketView {
        id: r.ticket.to_string(),
        title: r.title.clone(),
        category: r.category.clone().unwrap_or_else(|| "–".to_owned()),
        status,
        why,
        logged: format::duration(r.minutes_logged.value()),
        billed: format::duration(r.minutes_billed.value()),
        entries,
    }
}

/// Hours drawn from the customer's banks and cards in each of the last 12
/// months (those billed), and what was left at each month's end.
fn chart(input: &ReportInput<'_>, lang: Language, months: &[String]) -> Chart {
    let key = &input.contract.customer;
    let first = input.period.back(11);
    let series: Vec<(Month, Decimal, Decimal)> = first
        .through(input.period)
        .filter_map(|m| input.bills.get(&m).map(|d| (m, d)))
        .map(|(m, d)| {
            let names: Vec<&str> = d
                .balances
                .iter()
                .filter(|b| &b.customer == key)
                .map(|b| b.name.as_str())
                .collect();
            // Drawn for tickets and by add-ons (a monthly check's punches).
            let used: Decimal = d
                .report
                .iter()
                .filter(|r| &r.customer == key)
                .flat_map(|r| &r.draws)
                .chain(
                    d.add_on_draws
                        .iter()
                        .filter(|a| &a.customer == key)
                        .flat_map(|a| &a.draws),
                )
                .filter(|dr| names.contains(&dr.from.as_str()))
                .map(|dr| dr.minutes.value())
                .sum();
            let left: Decimal = d
                .balances
                .iter()
                .filter(|b| &b.customer == key)
                .map(|b| b.remaining_minutes.value())
                .sum();
            (m, used, left)
        })
        .collect();
    let (width, height) = (640u32, 240u32);
    let (top, bottom, left_edge) = (16u32, 200u32, 48u32);
    let max = series
        .iter()
        .flat_map(|(_, u, l)| [*u, *l])
        .max()
        .unwrap_or_default()
        .max(Decimal::from(60));
    // The axis in whole hours, rounded up to a step of 1, 2, 5 or 10·n hours.
    let max_h = (max / Decimal::from(60)).ceil();
    let step = [1u32, 2, 5, 10, 20, 50, 100, 200, 500]
        .into_iter()
        .find(|s| Decimal::from(*s * 4) >= max_h)
        .unwrap_or(1000);
    let axis_max = Decimal::from(step * 4 * 60);
    let plot_h = Decimal::from(bottom - top);
    let scale = |v: Decimal| -> u32 {
        let h = (v / axis_max * plot_h).round();
        u32::try_from(h.mantissa()).unwrap_or(0).min(bottom - top)
    };
    let slot = (width - left_edge - 8) / 12;
    let bars: Vec<Bar> = series
        .iter()
        .enumerate()
        .map(|(i, (m, used, left))| {
            let h = scale(*used);
            let x = left_edge + slot * i as u32 + slot / 5;
            Bar {
                x,
                y: bottom - h,
                width: slot * 3 / 5,
                height: h,
                label: months
                    .get(m.month() as usize - 1)
                    .map(|n| n.chars().take(3).collect())
                    .unwrap_or_default(),
                used: format::hours(*used, lang),
                left: format::hours(*left, lang),
                dot_y: bottom - scale(*left),
            }
        })
        .collect();
    let line = bars
        .iter()
        .map(|b| format!("{},{}", b.x + b.width / 2, b.dot_y))
        .collect::<Vec<_>>()
        .join(" ");
    let ticks = (0..=4)
        .map(|i| Tick {
            y: bottom - (bottom - top) * i / 4,
            label: format::number(Decimal::from(step * i), 0, lang),
        })
        .collect();
    Chart {
        width,
        height,
        plot_top: top,
        plot_bottom: bottom,
        plot_left: left_edge,
        bars,
        line,
        ticks,
        bar_colour: BAR,
        line_colour: LINE,
        text_colour: TEXT,
        background: BACKGROUND,
    }
}
