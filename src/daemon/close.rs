//! The period close: a customer's month becomes an invoice draft in the
//! outbox, at the first time the `schedule.close` cron fires (in the
//! contract's time zone) after the month ended.
//!
//! **Late changes.** A closed period's draft is never changed. When its
//! tickets change afterwards (work logged late, a category disputed within
//! `billing.correction_months`), the period is billed again at the next
//! close, and what differs from what was already billed for it becomes
//! correction lines of the new draft, each naming the period it corrects.
//!
//! The money is the engine's: the draft's lines and total
//! ([`engine::draft`]) and the corrections ([`engine::corrections`]). This
//! module decides when a period closes, reads the closed periods' drafts
//! from the store for the engine, and stores what it returns.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use connectors::{Draft, DraftLine, Push};
use engine::corrections::{ClosedDraft, Corrected};
use engine::document::BillDocument;
use engine::period::Month;
use engine::ticket::{CustomerKey, Ticket};
use store::ClosedPeriod;

use super::{Bridge, CycleError, CycleReport};

/// Whether a close waits for its sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// A customer's period closes only once every source feeding it is
    /// complete past the period's end (`completeness`).
    Sources,
    /// `close --force`: the admin knows better; the draft says so.
    Forced,
}

/// Marks a period closed by `--force` while sources were incomplete: in the
/// stored document, and in the draft finance reviews.
fn force_note(closed: &mut ClosedPeriod, hold: &super::completeness::Hold) {
    let note = format!("closed with --force while incomplete: {}", hold.reason);
    if let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&closed.document) {
        doc["forced"] = serde_json::Value::String(note.clone());
        closed.document = doc.to_string();
    }
    if let Some(push) = &mut closed.push
        && let Ok(Push::Draft(mut draft)) = serde_json::from_str::<Push>(&push.payload)
    {
        draft.forced = Some(note);
        if let Ok(p) = serde_json::to_string(&Push::Draft(draft)) {
            push.payload = p;
        }
    }
}

/// The idempotency key of a draft: what it represents, nothing else.
pub fn draft_key(customer: &str, period: Month, revision: i64) -> String {
    format!("draft:{customer}:{period}:r{revision}")
}

/// When the close schedule lets `month` close in `tz`: its first firing at
/// or after the month's end.
fn closes_at(schedule: &cron::Schedule, month: Month, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let end = month.end(tz).with_timezone(&tz) - chrono::Duration::seconds(1);
    schedule.after(&end).next().map(|t| t.with_timezone(&Utc))
}

impl Bridge {
    /// Closes every month from `billing.first_period` whose close time has
    /// come for a customer and which is not closed yet.
    pub async fn close_due(
        &self,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        let schedule = crate::settings::cron("schedule.close", &self.settings.schedule.close)
            .map_err(CycleError::Setting)?;
        self.close_months(
            now,
            report,
            |month, tz| closes_at(&schedule, month, tz).is_some_and(|at| at <= now),
            Gate::Sources,
            &mut |_| {},
        )
        .await
    }

    /// Closes `month` now for every customer whose month has ended,
    /// whatever the schedule says (`contract-bridge close --period`).
    pub async fn close_period(
        &self,
        month: Month,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        self.close_period_with(month, now, report, Gate::Sources, &mut |_| {})
            .await
    }

    /// [`Bridge::close_period`], calling `done` with each customer closed
    /// (a progress bar's tick).
    pub async fn close_period_with(
        &self,
        month: Month,
        now: DateTime<Utc>,
        report: &mut CycleReport,
        gate: Gate,
        done: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), CycleError> {
        self.close_months(
            now,
            report,
            |m, tz| m == month && now >= m.end(tz),
            gate,
            done,
        )
        .await
    }

    #[tracing::instrument(name = "close", skip_all)]
    async fn close_months(
        &self,
        now: DateTime<Utc>,
        report: &mut CycleReport,
        due: impl Fn(Month, chrono_tz::Tz) -> bool,
        gate: Gate,
        done: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), CycleError> {
        let mapping = self.mapping_in_force()?;
        let completeness = self.completeness(&mapping).await?;
        let alert_after =
            chrono::Duration::minutes(i64::from(self.settings.billing.hold_alert_minutes));
        let mut alerting = false;
        // Cards and banks sold through accounting systems are drawn from like the mapping's own.
        let with_sales = self.book_with_sales(&mapping.book).await?;
        let book = &with_sales;
        let first = self.first_period()?;
        let last = Month::containing(now, chrono_tz::UTC);
        let mut tickets: Option<Vec<Ticket>> = None;
        let mut bills: BTreeMap<Month, BillDocument> = BTreeMap::new();
        let mut reports = Reports::new(&self.settings.report);
        // Periods finance rejected: billed again once their inputs changed.
        let rejected: BTreeMap<(String, String), (i64, String)> = self
            .store
            .reviews(false)
            .await?
            .into_iter()
            .filter(|r| r.state == store::ReviewState::Rejected)
            .map(|r| ((r.customer, r.period), (r.revision, r.fingerprint)))
            .collect();
        for month in first.through(last) {
            let mut customers = Vec::new();
            let mut forced = BTreeMap::new();
            for (key, c) in &book.contracts {
                let rebill = rejected.get(&(key.to_string(), month.to_string()));
                if !due(month, c.tz)
                    || (rebill.is_none()
                        && self
                            .store
                            .is_closed(key.as_str(), &month.to_string())
                            .await?)
                {
                    continue;
                }
                if let Some(hold) = completeness.hold(key.as_str(), month.end(c.tz)) {
                    if rebill.is_some() {
                        // A rejected period waits quietly for complete sources.
                        continue;
                    }
                    if gate == Gate::Forced {
                        forced.insert(key.clone(), hold);
                    } else {
                        let held = self
                            .store
                            .hold_period(
                                key.as_str(),
                                &month.to_string(),
                                &hold.sources.join(", "),
                                &hold.reason,
                                now,
                            )
                            .await?;
                        report.periods_held += 1;
                        let message = format!(
                            "{key} {month} is held since {}: {}",
                            held.held_since.to_rfc3339(),
                            hold.reason
                        );
                        if now - held.held_since >= alert_after {
                            alerting = true;
                            tracing::error!(customer = %key, period = %month, sources = %hold.sources.join(","), "held longer than billing.hold_alert_minutes: {message}");
                        }
                        report.held.push(message);
                        continue;
                    }
                }
                customers.push(key.clone());
            }
            if customers.is_empty() {
                continue;
            }
            if tickets.is_none() {
                let mut t = self.stored_tickets(book, &mut report.warnings).await?;
                // Each customer's tickets side by side, in their stored order
                // (a stable sort), so that a customer's report reads its own
                // slice, not every ticket (issue 19).
                t.sort_by(|a, b| a.customer.cmp(&b.customer));
                tickets = Some(t);
            }
            let tickets = tickets.as_deref().unwrap_or_default();
            // A few customers at a time: their PDFs print at once (the
            // browser's pages), and each is stored as soon as its chunk is.
            for chunk in customers.chunks(CLOSE_CHUNK) {
                let mut prepared = Vec::new();
                for customer in chunk {
                    let customer = customer.clone();
                    // Earlier periods of this customer, billed again with today's tickets.
                    let window_start =
                        first.max(month.back(self.settings.billing.correction_months));
                    // A rejected period's draft was never pushed: nothing of it is billed.
                    let closed: Vec<ClosedDraft> = self
                        .store
                        .closed_documents(customer.as_str())
                        .await?
                        .into_iter()
                        .filter(|d| {
                            !rejected.contains_key(&(customer.to_string(), d.period.clone()))
                        })
                        .filter_map(|d| closed_draft(&d).transpose())
                        .collect::<Result<_, _>>()?;
                    let mut corrections = Vec::new();
                    for earlier in window_start.through(month).filter(|p| *p < month) {
                        if !closed.iter().any(|c| c.period == earlier) {
                            continue;
                        }
                        let doc = bill_cached(&mut bills, book, tickets, earlier)?;
                        let now_lines = engine::draft::lines_of(doc, &customer);
                        let billed = engine::corrections::billed_for(&closed, earlier);
                        corrections.extend(engine::corrections::correction_lines(
                            earlier, &billed, &now_lines,
                        ));
                    }
                    let doc = bill_cached(&mut bills, book, tickets, month)?;
                    let fingerprint = crate::review::fingerprint(&mapping.hash, doc, &customer);
                    let rebill = rejected.get(&(customer.to_string(), month.to_string()));
                    if rebill.is_some_and(|(_, was)| *was == fingerprint) {
                        // Rejected, and nothing it was made from changed since.
                        continue;
                    }
                    let revision = rebill.map_or(1, |(r, _)| r + 1);
                    let work_report = reports.render(
                        book,
                        tickets,
                        customer_tickets(tickets, &customer),
                        &mut bills,
                        &customer,
                        month,
                    );
                    let doc = bill_cached(&mut bills, book, tickets, month)?;
                    let corrected = engine::corrections::corrected_periods(&corrections);
                    let correction_count = corrections.len();
                    let mut closed = self.closed_period(
                        doc,
                        &customer,
                        (month, revision),
                        now,
                        book,
                        corrections,
                        mapping.accounts.get(&self.settings.billing.target),
                    );
                    if let Some(hold) = forced.get(&customer) {
                        force_note(&mut closed, hold);
                    }
                    closed.report = work_report;
                    let policy = mapping.review.get(&customer).copied().unwrap_or_default();
                    if closed.push.is_some()
                        && let Some(total) = &closed.total_net
                        && policy.needs_review(engine::draft::decimal(total))
                    {
                        closed.review = Some(store::ReviewRequest {
                            policy: policy.describe(),
                            fingerprint,
                        });
                    }
                    prepared.push((customer, closed, rebill, corrected, correction_count));
                }
                reports
                    .print(
                        self.pdf.as_ref(),
                        prepared
                            .iter_mut()
                            .map(|(c, closed, ..)| (&*c, month, closed)),
                    )
                    .await;
                for (customer, closed, rebill, corrected, correction_count) in prepared {
                    let stored = match rebill {
                        Some((from, _)) => self.store.rebill(&closed, *from, now).await?,
                        None => self.store.close_period(&closed, now).await?,
                    };
                    if stored {
                        self.audit_close(&closed, &corrected, rebill.is_some(), now)
                            .await?;
                        self.store
                            .release_period(customer.as_str(), &month.to_string())
                            .await?;
                        report.periods_closed += 1;
                        tracing::info!(
                            customer = %customer,
                            period = %month,
                            revision = closed.revision,
                            total_net = closed.total_net.as_deref().unwrap_or("0"),
                            corrections = correction_count,
                            review = closed.review.is_some(),
                            "closed {customer} {month}"
                        );
                        if let Some(r) = &closed.report {
                            report.reports += 1;
                            report.report_pdfs += usize::from(r.pdf.is_some());
                        }
                        report.corrections += correction_count;
                        self.metrics.add_periods_closed(1);
                        if closed.review.is_some() {
                            report.drafts_awaiting_review += 1;
                        } else if closed.push.is_some() {
                            report.drafts_queued += 1;
                            self.outbox.wake(&self.settings.billing.target);
                        }
                    }
                    done(customer.as_str());
                }
            }
        }
        report.report_notes.extend(reports.notes);
        self.metrics.set_held_alert(alerting);
        Ok(())
    }

    /// `(month, revision)`: the period and the revision of its draft made
    /// now (1, or the next after a rejected one).
    #[allow(clippy::too_many_arguments)]
    fn closed_period(
        &self,
        doc: &BillDocument,
        customer: &CustomerKey,
        (month, revision): (Month, i64),
        now: DateTime<Utc>,
        book: &engine::ContractBook,
        corrections: Vec<DraftLine>,
        accounts: Option<&mapping::TargetAccounts>,
    ) -> ClosedPeriod {
        let invoice = doc.invoices.iter().find(|i| &i.customer == customer);
        let tz = book
            .contracts
            .get(customer)
            .map_or(chrono_tz::UTC, |c| c.tz);
        let currency = invoice
            .map(|i| i.currency.to_string())
            .or_else(|| book.contracts.get(customer).map(|c| c.currency.to_string()))
            .unwrap_or_default();
        let mut lines = engine::draft::lines_of(doc, customer);
        lines.extend(corrections);
        if let Some(accounts) = accounts {
            let own = book
                .contracts
                .get(customer)
                .and_then(|c| c.accounting.get(&self.settings.billing.target));
            for l in &mut lines {
                l.refs = line_refs(accounts, own, l);
            }
        }
        let draft = (!lines.is_empty()).then(|| {
            let total = engine::draft::total_net(&lines);
            Draft {
                customer: customer.to_string(),
                period: month.to_string(),
                revision,
                currency: currency.clone(),
                total_net: format!("{total:.2}"),
                date: now.with_timezone(&tz).date_naive().to_string(),
                lines,
                refs: book
                    .contracts
                    .get(customer)
                    .and_then(|c| c.accounting.get(&self.settings.billing.target))
                    .map(|r| connectors::Refs {
                        contact: r.contact.clone(),
                        account: r.account.clone(),
                        tax: r.tax.clone(),
                        item: r.item.clone(),
                    })
                    .unwrap_or_default(),
                statement_url: self.settings.report.statement_url(
                    customer.as_str(),
                    now.timestamp() + i64::from(self.settings.report.link_valid_days) * 86_400,
                ),
                forced: None,
            }
        });
        let document = serde_json::json!({
            "invoice": invoice,
            "report": doc.report.iter().filter(|r| &r.customer == customer).collect::<Vec<_>>(),
            "balances": doc.balances.iter().filter(|b| &b.customer == customer).collect::<Vec<_>>(),
            "draft": draft,
        });
        ClosedPeriod {
            customer: customer.to_string(),
            period: month.to_string(),
            revision,
            total_net: draft.as_ref().map(|d| d.total_net.clone()),
            currency: draft.as_ref().map(|_| currency),
            document: document.to_string(),
            push: draft.map(|d| store::NewOutboxItem {
                target: self.settings.billing.target.clone(),
                key: draft_key(customer.as_str(), month, revision),
                payload: serde_json::to_string(&Push::Draft(d)).unwrap_or_default(),
            }),
            report: None,
            review: None,
        }
    }

    /// The audit entries of a period closed (or billed again): the draft
    /// created, and each earlier period it corrects.
    async fn audit_close(
        &self,
        closed: &ClosedPeriod,
        corrected: &[Corrected],
        rebilled: bool,
        now: DateTime<Utc>,
    ) -> Result<(), CycleError> {
        let Some(store::NewOutboxItem { target, key, .. }) = &closed.push else {
            return Ok(());
        };
        let subject = format!("{}/{}", closed.customer, closed.period);
        let entry = |action: &str, subject: String, detail| store::AuditEntry {
            at: now,
            actor: "daemon".into(),
            action: action.into(),
            subject,
            detail,
        };
        self.store
            .audit(&entry(
                "draft_created",
                subject,
                serde_json::json!({
                    "key": key,
                    "target": target,
                    "revision": closed.revision,
                    "total_net": closed.total_net,
                    "currency": closed.currency,
                    "review": closed.review.as_ref().map(|r| r.policy.clone()),
                    "fingerprint": closed.review.as_ref().map(|r| r.fingerprint.clone()),
                    "rebilled_after_rejection": rebilled,
                }),
            ))
            .await?;
        for c in corrected {
            self.store
                .audit(&entry(
                    "draft_corrected",
                    format!("{}/{}", closed.customer, c.period),
                    serde_json::json!({
                        "in_draft": key,
                        "lines": c.lines,
                        "amount": format!("{:.2}", c.amount.round_dp(2)),
                    }),
                ))
                .await?;
        }
        Ok(())
    }
}

/// A closed period as the late-change rules read it: its month and its
/// draft's lines (none when the period closed without a draft). A row whose
/// period is not a month is no period of ours and is left out. A document
/// that does not read is an error, never "nothing billed": the rules would
/// bill the whole period again.
fn closed_draft(row: &store::PeriodDocument) -> Result<Option<ClosedDraft>, CycleError> {
    #[derive(serde::Deserialize)]
    struct Document {
        draft: Option<Draft>,
    }
    let Ok(period) = row.period.parse() else {
        return Ok(None);
    };
    let document: Document =
        serde_json::from_str(&row.document).map_err(|e| CycleError::StoredDraft {
            period: row.period.clone(),
            reason: e.to_string(),
        })?;
    Ok(Some(ClosedDraft {
        period,
        lines: document.draft.map_or_else(Vec::new, |d| d.lines),
    }))
}

/// Customers closed together: their report PDFs print at once.
const CLOSE_CHUNK: usize = 16;

/// Renders the customers' reports at a close: the templates loaded once,
/// the PDFs printed by the bridge's browser when a Chromium is configured.
/// A report that cannot be made is noted and the close goes on: the invoice
/// does not wait for it.
struct Reports {
    templates: Option<std::sync::Arc<report::Templates>>,
    notes: Vec<String>,
}

impl Reports {
    fn new(settings: &crate::settings::ReportSettings) -> Reports {
        let mut notes = Vec::new();
        let templates = match crate::report::templates(settings.templates.as_deref()) {
            Ok(t) => Some(std::sync::Arc::new(t)),
            Err(e) => {
                notes.push(format!("no work reports: {e}"));
                None
            }
        };
        if let Some(c) = &settings.chromium
            && crate::report::chromium(Some(c)).is_none()
        {
            notes.push(format!(
                "report PDFs skipped: report.chromium `{}` is not a file (reports are stored as HTML)",
                c.display()
            ));
        }
        Reports { templates, notes }
    }

    /// The customer's work report as HTML (its PDF comes from [`Reports::print`]).
    /// Months are billed on every ticket (the bills are shared by all
    /// customers); the page reads the customer's own.
    fn render(
        &mut self,
        book: &engine::ContractBook,
        tickets: &[Ticket],
        own: &[Ticket],
        bills: &mut BTreeMap<Month, BillDocument>,
        customer: &CustomerKey,
        month: Month,
    ) -> Option<store::StoredReport> {
        let templates = self.templates.clone()?;
        let rendered = crate::report::bill_months(book, tickets, customer, month, None, bills)
            .and_then(|()| {
                crate::report::render(&templates, book, own, bills, customer, month, None, false)
            });
        match rendered {
            Ok(r) => Some(store::StoredReport {
                language: r.language.code().to_owned(),
                html: r.html,
                pdf: None,
            }),
            Err(e) => {
                self.notes
                    .push(format!("no work report for {customer} {month}: {e}"));
                None
            }
        }
    }

    /// Prints the PDFs of `closed`'s reports, as many at once as the pool
    /// has pages; one that fails is noted and its report stays HTML only.
    async fn print<'a>(
        &mut self,
        pool: Option<&std::sync::Arc<crate::pdf::PdfPool>>,
        closed: impl Iterator<Item = (&'a CustomerKey, Month, &'a mut store::ClosedPeriod)>,
    ) {
        let Some(pool) = pool else {
            return;
        };
        let mut jobs = tokio::task::JoinSet::new();
        let mut reports = Vec::new();
        for (customer, month, closed) in closed {
            let Some(report) = closed.report.as_mut() else {
                continue;
            };
            let (pool, html, i) = (pool.clone(), report.html.clone(), reports.len());
            jobs.spawn(async move { (i, pool.print(&html).await) });
            reports.push((customer, month, report));
        }
        while let Some(done) = jobs.join_next().await {
            match done {
                Ok((i, Ok(pdf))) => reports[i].2.pdf = Some(pdf),
                Ok((i, Err(e))) => {
                    let (customer, month, _) = &reports[i];
                    self.notes.push(format!("{customer} {month}: {e}"));
                }
                Err(e) => self.notes.push(format!("PDF: {e}")),
            }
        }
    }
}

/// `customer`'s tickets in `tickets` sorted by customer.
fn customer_tickets<'a>(tickets: &'a [Ticket], customer: &CustomerKey) -> &'a [Ticket] {
    let start = tickets.partition_point(|t| t.customer < *customer);
    let end = start + tickets[start..].partition_point(|t| t.customer == *customer);
    &tickets[start..end]
}

fn bill_cached<'a>(
    bills: &'a mut BTreeMap<Month, BillDocument>,
    book: &engine::ContractBook,
    tickets: &[Ticket],
    month: Month,
) -> Result<&'a BillDocument, CycleError> {
    use std::collections::btree_map::Entry;
    Ok(match bills.entry(month) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => {
            e.insert(
                engine::bill(book, tickets, month, None).map_err(|err| CycleError::Bill {
                    period: month,
                    message: err.to_string(),
                })?,
            )
        }
    })
}

/// A line's account, item, tax and tracking from `accounts.<target>`
/// (issue 17): account and item by the line's kind, else the customer's
/// `accounting.<target>`, else `defaults`; tax the customer's (reverse
/// charge, export), else by kind, else `defaults`. A correction line takes
/// `correction` where given, else the kind of the line it corrects.
pub fn line_refs(
    accounts: &mapping::TargetAccounts,
    customer: Option<&engine::contract::AccountingRefs>,
    l: &DraftLine,
) -> connectors::LineRefs {
    let own_kind = mapping::accounts::kind_key(&l.kind);
    let kind = match (&l.corrects, accounts.kinds.contains_key("correction")) {
        (Some(_), true) => Some("correction"),
        _ => own_kind,
    };
    let by_kind = kind
        .and_then(|k| accounts.kinds.get(k))
        .cloned()
        .unwrap_or_default();
    let d = &accounts.defaults;
    let code = |c: &Option<mapping::accounts::Code>| c.as_ref().map(|c| c.code.clone());
    let customer_account = customer.and_then(|c| c.account.clone());
    let customer_item = customer.and_then(|c| c.item.clone());
    let customer_tax = customer.and_then(|c| c.tax.clone());
    let tax_from_kind = by_kind.tax.is_some();
    connectors::LineRefs {
        account: code(&by_kind.account)
            .or(customer_account)
            .or_else(|| code(&d.account)),
        item: code(&by_kind.item)
            .or(customer_item)
            .or_else(|| code(&d.item)),
        // A customer's own tax wins; the rate written with a kind's or the
        // defaults' tax goes with it only.
        tax_rate: if customer_tax.is_some() {
            None
        } else if tax_from_kind {
            by_kind
                .tax_rate
                .as_ref()
                .map(|r| r.0.normalize().to_string())
        } else {
            d.tax_rate.as_ref().map(|r| r.0.normalize().to_string())
        },
        tax: customer_tax
            .or_else(|| code(&by_kind.tax))
            .or_else(|| code(&d.tax)),
        tracking: if by_kind.tracking.is_empty() {
            d.tracking.iter().cloned().collect()
        } else {
            by_kind.tracking.iter().cloned().collect()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_draft_that_does_not_read_holds_the_close_instead_of_billing_again() {
        let row = |period: &str, document: &str| store::PeriodDocument {
            period: period.into(),
            document: document.into(),
        };
        let none = closed_draft(&row("2026-10", r#"{"draft":null}"#))
            .unwrap()
            .unwrap();
        assert!(none.lines.is_empty());
        assert!(closed_draft(&row("not-a-month", "{}")).unwrap().is_none());
        let broken = closed_draft(&row("2026-10", r#"{"draft":{"lines":"#)).unwrap_err();
        assert!(broken.to_string().contains("2026-10"), "{broken}");
    }

    fn line(description: &str, quantity: &str, price: &str, amount: &str) -> DraftLine {
        serde_json::from_value(serde_json::json!({
            "kind": "work", "description": description, "quantity": quantity,
            "unit_price": price, "amount": amount, "tickets": ["T-1"],
        }))
        .unwrap()
    }

    /// moneo's mapping with an `accounts.books` section.
    fn accounts(section: &str) -> mapping::TargetAccounts {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/examples/moneo.yaml"),
        )
        .unwrap();
        let path = dir.path().join("moneo.yaml");
        std::fs::write(&path, format!("{text}\naccounts:\n  books:\n{section}")).unwrap();
        let loaded = mapping::load(&path).unwrap_or_else(|d| panic!("{d}"));
        loaded.accounts["books"].clone()
    }

    #[test]
    fn a_line_takes_its_kind_s_account_and_the_customer_s_tax() {
        let a = accounts(
            "    defaults: {account: \"3000\", tax: \"25\", tax_rate: \"25\"}\n    hours: {account: \"3020\", item: HOURS, tracking: {Region: North}}\n    correction: {account: \"3090\"}\n",
        );
        let work = line("Support work", "1", "40.00", "40.00");
        let r = line_refs(&a, None, &work);
        assert_eq!(r.account.as_deref(), Some("3020"));
        assert_eq!(r.item.as_deref(), Some("HOURS"));
        assert_eq!(
            (r.tax.as_deref(), r.tax_rate.as_deref()),
            (Some("25"), Some("25"))
        );
        assert_eq!(r.tracking.get("Region").map(String::as_str), Some("North"));
        // A reverse-charge customer: its own tax wins, the kind's account stays.
        let eu = engine::contract::AccountingRefs {
            tax: Some("0".into()),
            account: Some("3999".into()),
            ..Default::default()
        };
        let r = line_refs(&a, Some(&eu), &work);
        assert_eq!(
            (r.account.as_deref(), r.tax.as_deref()),
            (Some("3020"), Some("0"))
        );
        assert_eq!(
            r.tax_rate, None,
            "the defaults' rate goes with the defaults' tax only"
        );
        // A kind without settings: the customer's account, else the defaults'.
        let mut fee = work.clone();
        fee.kind = "monthly_fee".into();
        assert_eq!(
            line_refs(&a, Some(&eu), &fee).account.as_deref(),
            Some("3999")
        );
        assert_eq!(line_refs(&a, None, &fee).account.as_deref(), Some("3000"));
        // A correction: `correction` where given.
        let mut fix = work.clone();
        fix.corrects = Some("2026-10".into());
        assert_eq!(line_refs(&a, None, &fix).account.as_deref(), Some("3090"));
        let no_correction = accounts("    hours: {account: \"3020\"}\n");
        assert_eq!(
            line_refs(&no_correction, None, &fix).account.as_deref(),
            Some("3020"),
            "else the kind it corrects"
        );
    }

    #[test]
    fn an_unknown_line_kind_in_accounts_is_refused_naming_the_valid_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(
            &path,
            "accounts:\n  books:\n    hour: {account: \"3020\"}\n    fee: {tax_rate: \"250\"}\n    bank_overage: {account: \"3030\"}\n",
        )
        .unwrap();
        let Err(d) = mapping::load(&path) else {
            panic!("accepted")
        };
        let text = d.to_string();
        assert!(
            text.contains("m.yaml:3:")
                && text.contains("accounts.books.hour")
                && text.contains("did you mean `hours`"),
            "{text}"
        );
        assert!(
            text.contains("accounts.books.fee.tax_rate") && text.contains("not a tax rate"),
            "{text}"
        );
        assert!(
            text.contains("accounts.books.bank_overage")
                && text.contains("billed on the `hours` line"),
            "{text}"
        );
    }

    #[test]
    fn a_month_closes_at_the_first_firing_after_it_ends_in_the_contract_zone() {
        let schedule = crate::settings::cron("close", "0 0 6 1 * *").unwrap();
        let riga: chrono_tz::Tz = "Europe/Riga".parse().unwrap();
        let oct: Month = "2026-10".parse().unwrap();
        let at = closes_at(&schedule, oct, riga).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-01T04:00:00+00:00");
        let every_second = crate::settings::cron("close", "* * * * * *").unwrap();
        assert_eq!(closes_at(&every_second, oct, riga).unwrap(), oct.end(riga));
    }
}
