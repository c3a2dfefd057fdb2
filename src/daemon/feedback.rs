//! From accounting back to the bridge: what became of every pushed draft,
//! and the punch cards and hour banks customers buy as invoice lines.
//!
//! **Draft status.** The status poll (`schedule.status`, and `run --once`)
//! asks each accounting target about every pushed draft not yet final
//! (paid, voided or deleted) and records each change. A draft finance voided
//! or deleted is never pushed again on its own: its outbox item stays sent,
//! and the late-change path counts its lines as billed. `close --period P
//! --repush CUSTOMER` re-creates it on purpose, under the next revision's key.
//!
//! **Prepaid sales.** The mapping's `prepaid` names the items that sell a
//! card or a bank. An invoice line with such an item, for a customer whose
//! contact it is, opens the card or bank once it is paid (or issued, by the
//! mapping's `on`), with the purchase date, size and price from the invoice,
//! keyed on target, invoice, line and unit: a sale seen again (the next
//! poll, a webhook delivered twice) adds nothing, a card sold on two
//! invoices makes two cards. Sold cards and banks join the contract's own
//! (and their opening balances) in the one ledger the engine draws from.
//!
//! Those rules, and the renewal of a card used up or a bank run low, are
//! the engine's ([`engine::prepaid`]): this module reads the invoices,
//! turns their lines and statuses and the stored sales into the engine's
//! types, and stores and queues what the rules decide.

use chrono::{DateTime, Utc};
use connectors::accounting::{
    AccountingApi, DraftStatus, RemoteInvoice, SalesAsk, StatusAnswer, StatusStep,
};
use connectors::{ConnectorError, Draft, Push};
use engine::ContractBook;
use engine::contract::Prepaid;
use engine::minutes::Minutes;
use engine::money::Money;
use engine::period::Month;
use engine::prepaid::{self, Sold, Stage};
use store::Sale;

use super::ingest::webhook::WebhookError;
use super::{Bridge, CycleError, CycleReport, draft_key};

/// At most this many requests to learn one draft's status (e-conomic
/// needs two for a booked draft).
const MAX_STATUS_STEPS: usize = 3;

/// The cursor name of a target's sales scan in the store.
/// The name under which a target's sales scan records its completeness: a
/// source feeding every customer whose contract has prepaid items.
pub(super) fn sales_source(target: &str) -> String {
    format!("sales:{target}")
}

fn sales_cursor(target: &str) -> String {
    format!("sales:{target}")
}

impl Bridge {
    /// Asks every accounting target what became of its open drafts, and
    /// (`sales`) scans it for prepaid sales.
    pub async fn poll_ledger(
        &self,
        now: DateTime<Utc>,
        report: &mut CycleReport,
        sales: bool,
    ) -> Result<(), CycleError> {
        let open = self.store.pushed_drafts(true).await?;
        for (target, config) in &self.settings.targets {
            let Some(api) = config.accounting() else {
                continue;
            };
            let mine: Vec<&store::PushedDraft> =
                open.iter().filter(|d| &d.target == target).collect();
            // Where drafts are pushed in batches, their statuses are asked
            // in batches too (issue 19): one request for up to a batch.
            let mut known: std::collections::BTreeMap<String, RemoteInvoice> =
                std::collections::BTreeMap::new();
            let batch = api.batch_size().min(self.settings.outbox.batch);
            if batch > 1 {
                for chunk in mine.chunks(batch) {
                    let ids: Vec<&str> = chunk.iter().map(|d| d.remote_id.as_str()).collect();
                    let Some(request) = api.statuses_request(&ids) else {
                        break;
                    };
                    report.status_requests += 1;
                    let answer = match self.call(target, api, request).await {
                        Ok(a) => self.forget_token_on_401(target, api.read_statuses(&a)),
                        Err(e) => Err(e),
                    };
                    match answer {
                        Ok(invoices) => {
                            known.extend(invoices.into_iter().map(|i| (i.id.clone(), i)))
                        }
                        Err(e) => report
                            .warnings
                            .push(format!("statuses of {} drafts in {target}: {e}", ids.len())),
                    }
                }
            }
            for d in mine {
                let status = match known.remove(&d.remote_id) {
                    Some(inv) => Ok(inv),
                    None => {
                        self.remote_status(target, api, &d.remote_id, &d.key, report)
                            .await
                    }
                };
                match status {
                    Ok(inv) => {
                        if self
                            .store
                            .set_remote_status(target, &d.key, inv.status.as_str(), now)
                            .await?
                        {
                            report.status_changes += 1;
                            tracing::info!(target, key = %d.key, status = %inv.status, "{target} {}: {}", d.key, inv.status);
                        }
                    }
                    Err(e) => report
                        .warnings
                        .push(format!("status of {} in {target}: {e}", d.key)),
                }
            }
            if sales {
                // Sold cards and banks are billing data: a scan that failed
                // leaves the customers with prepaid items incomplete.
                let name = sales_source(target);
                self.outbox.transport().new_pass(target);
                match self.scan_sales(target, api, now, report).await {
                    Ok(()) => self.store.source_succeeded(&name, now, 0, now).await?,
                    Err(e) => {
                        self.source_failed(&name, &e.to_string(), now, report)
                            .await?
                    }
                }
            }
        }
        if sales {
            self.suggest_renewals(now, report).await?;
        }
        Ok(())
    }

    /// A card used up or a bank run low, of a customer whose prepaid items
    /// say `renew`, becomes a renewal suggestion: by the item's `renew_to`,
    /// a note on the customer's next ticket (the first created at or after
    /// the event; none yet: the next poll looks again) or a ticket of its
    /// own in the helpdesk the customer's latest ticket came from (through
    /// that source's `notes` target); and, for `renew: draft`, a draft for the next one
    /// with the item, which opens the new card when finance issues or is
    /// paid for it. Each once, keyed on the card or bank and the event.
    pub(super) async fn suggest_renewals(
        &self,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        use engine::contract::{Renew, RenewTo};
        use engine::document::EventKind;
        let mapping = self.mapping_in_force()?;
        let renewing =
            |c: &engine::contract::Contract| c.prepaid.values().any(|p| p.renew != Renew::Nothing);
        if !mapping.book.contracts.values().any(renewing) {
            return Ok(());
        }
        let book = self.book_with_sales(&mapping.book).await?;
        let sales = engine_sales(&self.store.sales().await?);
        let mut warnings = Vec::new();
        let tickets = self.stored_tickets(&book, &mut warnings).await?;
        let this = Month::containing(now, chrono_tz::UTC);
        let target = &self.settings.billing.target;
        for month in [this.back(1), this] {
            let doc =
                engine::bill(&book, &tickets, month, Some(now)).map_err(|e| CycleError::Bill {
                    period: month,
                    message: e.to_string(),
                })?;
            for event in &doc.events {
                let (subject, what) = match &event.kind {
                    EventKind::CardUsedUp { card } => (card.clone(), "used up"),
                    EventKind::CardExpired { card, .. } => (card.clone(), "expired"),
                    EventKind::BankLow { bank, .. } => (bank.clone(), "low"),
                    _ => continue,
                };
                let Some(contract) = book.contracts.get(&event.customer) else {
                    continue;
                };
                let customer = event.customer.as_str();
                let Some(p) = prepaid::renewal_item(contract, &sales, &event.customer, &subject)
                    .filter(|p| p.renew != Renew::Nothing)
                else {
                    continue;
                };
                let slug: String = subject
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect();
                // One key per card or bank and event, whichever way it goes.
                let key = format!("renewal:{customer}:{slug}:{}", what.replace(' ', "-"));
                let title = format!("Prepaid renewal: the {subject} of {customer} is {what}");
                let text = format!(
                    "The {subject} of {customer} is {what} since {}: suggest a new {}.",
                    event.at.0.format("%Y-%m-%d %H:%M"),
                    p.item
                );
                let notes_target = |ticket: &engine::ticket::Ticket| {
                    let source = ticket.source.as_ref()?.to_string();
                    let target = self.settings.sources.get(&source)?.notes.clone()?;
                    Some((source, target))
                };
                let push = match p.renew_to {
                    RenewTo::Note => {
                        let at = event.at.utc();
                        // The customer's next ticket: the first created at or after the event.
                        let Some(ticket) = tickets
                            .iter()
                            .filter(|t| t.customer == event.customer && t.created_at >= at)
                            .min_by_key(|t| (t.created_at, t.id.to_string()))
                        else {
                            continue;
                        };
                        notes_target(ticket).map(|(source, target)| {
                            let note = connectors::Note {
                                source,
                                ticket: ticket.id.to_string(),
                                customer: customer.to_owned(),
                                metric: "prepaid".into(),
                                event: connectors::NoteEvent::Warning,
                                due_at: None,
                                tag: "prepaid-renewal".into(),
                                text,
                                subject: Some(title),
                            };
                            (target, Push::Note(note))
                        })
                    }
                    RenewTo::Ticket => {
                        // The customer's helpdesk: the one their latest ticket came from.
                        let latest = tickets
                            .iter()
                            .filter(|t| t.customer == event.customer)
                            .max_by_key(|t| (t.created_at, t.id.to_string()));
                        latest.and_then(|t| {
                            let (source, target) = notes_target(t)?;
                            let ticket = connectors::NewTicket {
                                source,
                                customer: customer.to_owned(),
                                requester: t.requester.clone(),
                                title,
                                text,
                                tag: "prepaid-renewal".into(),
                            };
                            Some((target, Push::Ticket(ticket)))
                        })
                    }
                };
                if let Some((target, push)) = push {
                    let payload = serde_json::to_string(&push).unwrap_or_default();
                    if self.store.enqueue(&target, &key, &payload, now).await? {
                        report.notes_queued += 1;
                        self.outbox.wake(&target);
                    }
                }
                if p.renew == Renew::NoteAndDraft
                    && let Some(draft) =
                        renewal_draft(contract, &sales, p, &subject, month, now, target)
                {
                    let key = format!("draft:{customer}:renewal-{slug}:r1");
                    let payload = serde_json::to_string(&Push::Draft(draft)).unwrap_or_default();
                    if self.store.enqueue(target, &key, &payload, now).await? {
                        report.drafts_queued += 1;
                        self.outbox.wake(target);
                    }
                }
            }
        }
        Ok(())
    }

    /// What the system holds for `remote_id` now, in as many requests as it takes.
    pub(super) async fn remote_status(
        &self,
        target: &str,
        api: &dyn AccountingApi,
        remote_id: &str,
        key: &str,
        report: &mut CycleReport,
    ) -> Result<RemoteInvoice, ConnectorError> {
        let reference = api.reference(key);
        let mut request = api.status_request(remote_id, &reference)?;
        for step in 0..MAX_STATUS_STEPS {
            report.status_requests += 1;
            let answer = self.call(target, api, request).await?;
            let read = api.read_status(StatusAnswer {
                remote_id,
                reference: &reference,
                step,
                response: &answer,
            });
            match self.forget_token_on_401(target, read)? {
                StatusStep::Known(inv) => return Ok(inv),
                StatusStep::Ask(next) => request = next,
            }
        }
        Err(ConnectorError::Transient(format!(
            "{}: no status for {remote_id} after {MAX_STATUS_STEPS} requests",
            api.system()
        )))
    }

    /// Reads the invoices that may sell cards or banks, page by page (and,
    /// where a list has no lines, each listed invoice that could open
    /// something), and records their sales; the cursor moves only after a
    /// whole scan, never past a page's pin.
    /// (Its completeness is recorded under [`sales_source`].)
    async fn scan_sales(
        &self,
        target: &str,
        api: &dyn AccountingApi,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        let mapping = self.mapping_in_force()?;
        let items: Vec<String> = {
            let mut all: Vec<String> = mapping
                .book
                .contracts
                .values()
                .flat_map(|c| c.prepaid.keys().cloned())
                .collect();
            all.sort();
            all.dedup();
            all
        };
        if items.is_empty() {
            return Ok(());
        }
        let cursor = self.store.cursor(&sales_cursor(target)).await?;
        // Where the pages carry no change time, the scan's start is the next cursor.
        let mut newest = api.sales_cursor_at(now).or_else(|| cursor.clone());
        let mut pin: Option<String> = None;
        for page in 1..=1000 {
            let request = api
                .sales_request(SalesAsk::new(&items, cursor.as_deref(), page))
                .map_err(|e| CycleError::Accounting(e.to_string()))?;
            let Some(request) = request else {
                return Ok(());
            };
            report.status_requests += 1;
            let answer = self
                .call(target, api, request)
                .await
                .and_then(|a| api.read_sales(&a))
                .map_err(|e| CycleError::Accounting(e.to_string()))?;
            for inv in &answer.invoices {
                self.record_sales(target, api, &mapping.book, inv, now, report)
                    .await?;
            }
            // Lists without lines: read whole only the invoices that could
            // open something now (the customer has prepaid items, and the
            // status is one they open on).
            for (listed, request) in answer.details {
                if !may_sell(target, api, &mapping.book, &listed) {
                    continue;
                }
                report.status_requests += 1;
                let inv = self
                    .call(target, api, request)
                    .await
                    .and_then(|a| api.read_sale(&a))
                    .map_err(|e| CycleError::Accounting(e.to_string()))?;
                self.record_sales(target, api, &mapping.book, &inv, now, report)
                    .await?;
            }
            if let Some(c) = answer.cursor
                && newest.as_ref().is_none_or(|n| *n < c)
            {
                newest = Some(c);
            }
            if let Some(p) = answer.pin
                && pin.as_ref().is_none_or(|n| p < *n)
            {
                pin = Some(p);
            }
            if !answer.more {
                break;
            }
        }
        if let Some(p) = pin
            && newest.as_ref().is_some_and(|n| p < *n)
        {
            newest = Some(p);
        }
        if let Some(c) = newest.filter(|n| Some(n) != cursor.as_ref()) {
            self.store
                .set_cursor(&sales_cursor(target), &c, now)
                .await?;
        }
        Ok(())
    }

    /// Opens the cards and banks an invoice sells, once each; the number opened.
    pub(super) async fn record_sales(
        &self,
        target: &str,
        api: &dyn AccountingApi,
        book: &ContractBook,
        inv: &RemoteInvoice,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<usize, CycleError> {
        let Some((customer, contract)) = customer_of(target, api, book, inv) else {
            return Ok(0);
        };
        let mut opened = 0;
        let sold_on = prepaid::SaleInvoice {
            target: target.to_owned(),
            id: inv.id.clone(),
            customer: customer.clone(),
            currency: inv.currency.clone(),
            date: inv.date.unwrap_or_else(|| now.date_naive()),
        };
        for line in &inv.lines {
            let Some(p) = contract.prepaid.get(&line.item) else {
                continue;
            };
            if !prepaid::opens(p.on, stage(inv.status)) {
                continue;
            }
            let line = prepaid::SaleLine {
                id: line.id.clone(),
                item: line.item.clone(),
                quantity: line.quantity,
                amount: line.amount,
            };
            let sales = match prepaid::sales_of(&sold_on, &line, p) {
                Ok(sales) => sales,
                Err(e) => {
                    report.source_errors.push(e.to_string());
                    continue;
                }
            };
            for sale in sales.iter().map(stored_sale) {
                if self.store.record_sale(&sale, now).await? {
                    opened += 1;
                    tracing::info!(
                        target,
                        customer = %customer,
                        "{target}: invoice {} sold {customer} a {} ({} {}) on {}",
                        inv.id, sale.kind, sale.size, sale.item, sale.bought
                    );
                }
            }
        }
        report.sales_recorded += opened;
        Ok(opened)
    }

    /// The mapping's contracts with the cards and banks sold through
    /// accounting systems added: the book every bill is made from.
    pub(super) async fn book_with_sales(
        &self,
        book: &ContractBook,
    ) -> Result<ContractBook, CycleError> {
        let sales = self.store.sales().await?;
        Ok(prepaid::merge_sales(book, &engine_sales(&sales)))
    }

    /// Re-creates a customer's draft for `month` on purpose, under the next
    /// revision's key, when finance voided or deleted the last one. Returns
    /// the new key.
    pub async fn repush(
        &self,
        customer: &str,
        month: Month,
        now: DateTime<Utc>,
    ) -> Result<String, CycleError> {
        let period = month.to_string();
        let target = &self.settings.billing.target;
        let store::ClosedRevision { revision, document } = self
            .store
            .closed_period(customer, &period)
            .await?
            .ok_or_else(|| {
                CycleError::Accounting(format!(
                    "--repush {customer}: {period} is not closed for `{customer}`: nothing to re-create"
                ))
            })?;
        let key = draft_key(customer, month, revision);
        let status = self.store.remote_status(target, &key).await?;
        let withdrawn = status
            .as_deref()
            .and_then(DraftStatus::parse)
            .is_some_and(DraftStatus::is_withdrawn);
        if !withdrawn {
            return Err(CycleError::Accounting(format!(
                "--repush {customer}: {key} is {} in `{target}`; only a draft finance voided or deleted is re-created (run `status` to see every draft's state)",
                status
                    .as_deref()
                    .unwrap_or("not known to be voided or deleted")
            )));
        }
        let mut doc: serde_json::Value = serde_json::from_str(&document)
            .map_err(|e| CycleError::Accounting(format!("{customer} {period}: {e}")))?;
        let mut draft: Draft = serde_json::from_value(doc["draft"].clone()).map_err(|e| {
            CycleError::Accounting(format!("{customer} {period}: the stored draft: {e}"))
        })?;
        draft.revision = revision + 1;
        draft.date = now.date_naive().to_string();
        doc["draft"] = serde_json::to_value(&draft)
            .map_err(|e| CycleError::Accounting(format!("{customer} {period}: {e}")))?;
        let new_key = draft_key(customer, month, revision + 1);
        let payload = serde_json::to_string(&Push::Draft(draft))
            .map_err(|e| CycleError::Accounting(e.to_string()))?;
        if !self
            .store
            .repush(
                customer,
                &period,
                revision,
                &doc.to_string(),
                &store::NewOutboxItem {
                    target: target.clone(),
                    key: new_key.clone(),
                    payload,
                },
                now,
            )
            .await?
        {
            return Err(CycleError::Accounting(format!(
                "--repush {customer}: {period} moved past revision {revision} meanwhile; run `status`"
            )));
        }
        self.outbox.wake(target);
        Ok(new_key)
    }
}

impl Bridge {
    /// A delivery to `POST /webhooks/accounting/{target}`: the ledger tells
    /// us invoices changed. The target's connector checks the signature and
    /// reads the invoices ([`AccountingApi::webhook`]; Xero's is signed
    /// with `x-xero-signature` under `webhook_key`). Each event is handled
    /// once (a delivery repeated changes nothing): the invoice is read, its
    /// status stored if it is one of our drafts, and its prepaid sales
    /// opened. A failure remembers nothing, so the ledger delivers again.
    pub async fn accounting_webhook(
        &self,
        target: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(), WebhookError> {
        // The handler's clock read: deliveries are remembered for a week.
        let now = Utc::now();
        let api = self
            .settings
            .targets
            .get(target)
            .and_then(|t| t.accounting())
            .ok_or_else(|| WebhookError::NotFound(format!("no ledger target named `{target}`")))?;
        let changed = api.webhook(headers, body)?;
        let source = format!("accounting:{target}");
        let mut report = CycleReport::default();
        for event in changed {
            if self
                .store
                .delivery_seen(&source, &event.delivery)
                .await
                .map_err(WebhookError::unavailable)?
            {
                continue;
            }
            self.invoice_changed(target, api, &event.invoice, now, &mut report)
                .await
                .map_err(WebhookError::unavailable)?;
            let forget = now - chrono::Duration::days(7);
            self.store
                .remember_delivery(&source, &event.delivery, now, forget)
                .await
                .map_err(WebhookError::unavailable)?;
        }
        Ok(())
    }

    /// An invoice a webhook announced: its status if it is our draft, its sales.
    async fn invoice_changed(
        &self,
        target: &str,
        api: &dyn AccountingApi,
        invoice: &str,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        let mapping = self.mapping_in_force()?;
        let ours = self.store.draft_by_remote(target, invoice).await?;
        let inv = self
            .remote_status(target, api, invoice, ours.as_deref().unwrap_or(""), report)
            .await
            .map_err(|e| CycleError::Accounting(e.to_string()))?;
        if let Some(key) = ours {
            self.store
                .set_remote_status(target, &key, inv.status.as_str(), now)
                .await?;
        }
        let book = self.book_with_sales(&mapping.book).await?;
        self.record_sales(target, api, &book, &inv, now, report)
            .await?;
        Ok(())
    }
}

/// A draft selling the next card or bank (the line at the customer's last
/// price, [`prepaid::renewal_line`]); none when it was never sold to them:
/// nothing to go by.
fn renewal_draft(
    contract: &engine::contract::Contract,
    sales: &[prepaid::Sale],
    p: &Prepaid,
    subject: &str,
    month: Month,
    now: DateTime<Utc>,
    target: &str,
) -> Option<Draft> {
    let last = prepaid::last_sale(sales, &contract.customer, &p.item)?;
    let line = prepaid::renewal_line(p, last, subject);
    let refs = contract.accounting.get(target);
    Some(Draft {
        customer: contract.customer.to_string(),
        period: month.to_string(),
        revision: 1,
        currency: last
            .currency
            .clone()
            .unwrap_or_else(|| contract.currency.to_string()),
        total_net: line.amount.clone(),
        date: now.with_timezone(&contract.tz).date_naive().to_string(),
        lines: vec![line],
        refs: connectors::Refs {
            contact: refs.and_then(|r| r.contact.clone()),
            account: refs.and_then(|r| r.account.clone()),
            tax: refs.and_then(|r| r.tax.clone()),
            // The item, so the draft once issued or paid opens the next card.
            item: Some(p.item.clone()),
        },
        // A sale, not a month's work: no work report to link.
        statement_url: None,
        forced: None,
    })
}

/// The customer whose contact in `target` the invoice is made out to.
fn customer_of<'a>(
    target: &str,
    api: &dyn AccountingApi,
    book: &'a ContractBook,
    inv: &RemoteInvoice,
) -> Option<(
    &'a engine::ticket::CustomerKey,
    &'a engine::contract::Contract,
)> {
    let contact = inv.contact.as_deref()?;
    book.contracts.iter().find(|(key, c)| {
        c.accounting
            .get(target)
            .and_then(|r| r.contact.clone())
            .or_else(|| api.contact_of(key.as_str()))
            .as_deref()
            == Some(contact)
    })
}

/// How far an invoice in `status` has come, as the prepaid rules read it.
fn stage(status: DraftStatus) -> Stage {
    match status {
        DraftStatus::Paid => Stage::Paid,
        s if s.is_issued() => Stage::Issued,
        _ => Stage::NotIssued,
    }
}

/// Could an invoice, as a list shows it, open a card or bank: made out to
/// a customer with prepaid items, in a status one of them opens on?
fn may_sell(
    target: &str,
    api: &dyn AccountingApi,
    book: &ContractBook,
    listed: &RemoteInvoice,
) -> bool {
    customer_of(target, api, book, listed)
        .is_some_and(|(_, c)| prepaid::may_open(c, stage(listed.status)))
}

/// A stored sale as the prepaid rules read it, as [`stored_sale`] wrote
/// it; none for a row that is no sale of a card or bank on a date. Its
/// figures are read as they always were: one that does not parse counts
/// as zero (the rows are the bridge's own, never edited by hand).
fn engine_sale(s: &Sale) -> Option<prepaid::Sale> {
    let size = u32::try_from(s.size).unwrap_or_default();
    let sold = match s.kind.as_str() {
        "card" => Sold::Card {
            punches: size,
            discount_percent: s
                .discount
                .as_deref()
                .and_then(|d| d.parse().ok())
                .unwrap_or_default(),
        },
        "bank" => Sold::Bank {
            minutes: Minutes::whole(size),
            valid_until: s.valid_until.as_deref().and_then(|d| d.parse().ok()),
        },
        _ => return None,
    };
    Some(prepaid::Sale {
        target: s.target.clone(),
        invoice: s.invoice.clone(),
        line: s.line.clone(),
        unit: s.unit,
        customer: engine::ticket::CustomerKey::new(s.customer.as_str()),
        item: s.item.clone(),
        sold,
        bought: s.bought.parse().ok()?,
        price: Money::new(s.price.parse().unwrap_or_default()),
        currency: s.currency.clone(),
    })
}

/// The stored sales the prepaid rules can read.
fn engine_sales(sales: &[Sale]) -> Vec<prepaid::Sale> {
    sales.iter().filter_map(engine_sale).collect()
}

/// A sale as the store keeps it: kind and size, figures as text.
fn stored_sale(s: &prepaid::Sale) -> Sale {
    let (kind, size, discount, valid_until) = match s.sold {
        Sold::Card {
            punches,
            discount_percent,
        } => (
            "card",
            i64::from(punches),
            Some(discount_percent.to_string()),
            None,
        ),
        Sold::Bank {
            minutes,
            valid_until,
        } => (
            "bank",
            minutes
                .value()
                .trunc()
                .to_string()
                .parse()
                .unwrap_or_default(),
            None,
            valid_until.map(|d| d.to_string()),
        ),
    };
    Sale {
        target: s.target.clone(),
        invoice: s.invoice.clone(),
        line: s.line.clone(),
        unit: s.unit,
        customer: s.customer.to_string(),
        item: s.item.clone(),
        kind: kind.to_owned(),
        size,
        bought: s.bought.to_string(),
        price: format!("{:.2}", s.price.amount()),
        currency: s.currency.clone(),
        discount,
        valid_until,
    }
}

/// `status`'s lines about drafts and sales.
pub fn ledger_lines(s: &store::Status) -> Vec<String> {
    let mut out = Vec::new();
    for d in &s.drafts {
        out.push(format!(
            "draft {} {} ({}): {}{}",
            d.target,
            d.key,
            d.remote_id,
            d.status.as_deref().unwrap_or("not asked yet"),
            d.checked_at
                .as_deref()
                .map_or_else(String::new, |at| format!(" (checked {at})"))
        ));
    }
    for sale in &s.sales {
        let unit = match sale.kind.as_str() {
            "card" => format!("{} punches", sale.size),
            _ => format!("{} min", sale.size),
        };
        out.push(format!(
            "sold {} {} to {}: {} ({unit}) on {}, {} {}, from {} invoice {} line {}",
            sale.kind,
            sale.item,
            sale.customer,
            sale.item,
            sale.bought,
            sale.price,
            sale.currency.as_deref().unwrap_or(""),
            sale.target,
            sale.invoice,
            sale.line
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::contract::{BankTerm, Sells};
    use rust_decimal::Decimal;

    fn sale(kind: &str, size: i64, bought: &str) -> Sale {
        Sale {
            target: "xero".into(),
            invoice: "inv-1".into(),
            line: "l-1".into(),
            unit: 1,
            customer: "nordhavn-arkitekter".into(),
            item: "KLIPPEKORT-20".into(),
            kind: kind.into(),
            size,
            bought: bought.into(),
            price: "18000.00".into(),
            currency: Some("DKK".into()),
            discount: Some("10".into()),
            valid_until: None,
        }
    }

    /// The stored sales as the rules read them, merged into `book`.
    fn merged(book: &ContractBook, sales: &[Sale]) -> ContractBook {
        prepaid::merge_sales(book, &engine_sales(sales))
    }

    #[test]
    fn a_stored_card_sale_joins_the_example_contract_and_is_not_invoiced_again() {
        let book = mapping::load(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("mappings/examples/itech-klippekort.yaml")
                .as_path(),
        )
        .unwrap()
        .book;
        let before = book.contracts["nordhavn-arkitekter"].cards.len();
        let merged = merged(&book, &[sale("card", 20, "2026-10-20")]);
        let cards = &merged.contracts["nordhavn-arkitekter"].cards;
        assert_eq!(cards.len(), before + 1);
        let sold = cards
            .iter()
            .find(|k| k.bought.to_string() == "2026-10-20")
            .unwrap();
        assert_eq!(sold.punches, 20);
        assert_eq!(sold.discount_percent, Decimal::TEN);
        assert_eq!(sold.opening.map(|o| o.punches), Some(20));
        // A sale for a customer without a contract changes nothing.
        let mut stray = sale("card", 20, "2026-10-20");
        stray.customer = "nobody".into();
        let same = merge_sales_of(&book, stray);
        assert_eq!(same.contracts["nordhavn-arkitekter"].cards.len(), before);
        // Nor does a row that is no card or bank, or has no date.
        let same = merge_sales_of(&book, sale("voucher", 20, "2026-10-20"));
        assert_eq!(same.contracts["nordhavn-arkitekter"].cards.len(), before);
        let same = merge_sales_of(&book, sale("card", 20, "20 Oct"));
        assert_eq!(same.contracts["nordhavn-arkitekter"].cards.len(), before);
    }

    fn merge_sales_of(book: &ContractBook, s: Sale) -> ContractBook {
        merged(book, &[s])
    }

    #[test]
    fn a_stored_bank_sale_is_a_prepaid_block_from_its_invoice_date_to_its_validity() {
        let book = mapping::load(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/ledger/sold")
                .as_path(),
        )
        .unwrap()
        .book;
        let mut bank = sale("bank", 600, "2026-10-05");
        bank.item = "TIMEBANK-10H".into();
        bank.valid_until = Some("2027-01-05".into());
        let merged = merged(&book, &[bank]);
        let b = merged.contracts["nordhavn-arkitekter"]
            .banks
            .last()
            .unwrap();
        // The stored row's size, dates and invoice reach the engine's rule
        // (engine::prepaid tests the rule itself).
        let valid = BankTerm::Once {
            from: "2026-10-05".parse().unwrap(),
            until: Some("2027-01-05".parse().unwrap()),
        };
        assert_eq!((b.fresh_minutes(), &b.term), (Minutes::whole(600), &valid));
        assert_eq!(b.name, "TIMEBANK-10H (invoice inv-1)");
    }

    #[test]
    fn a_sale_is_stored_as_it_always_was_and_reads_back_the_same() {
        let card = Prepaid {
            item: "KLIPPEKORT-20".into(),
            sells: Sells::Card {
                punches: 20,
                discount_percent: Decimal::new(1000, 2),
            },
            on: engine::contract::SaleOn::Paid,
            renew: engine::contract::Renew::Nothing,
            renew_to: engine::contract::RenewTo::Note,
        };
        let bank = Prepaid {
            item: "TIMEBANK-10H".into(),
            sells: Sells::Bank {
                minutes: Minutes::whole(600),
                valid_months: Some(3),
                low_balance: None,
            },
            ..card.clone()
        };
        let inv = prepaid::SaleInvoice {
            target: "xero".into(),
            id: "inv-1".into(),
            customer: engine::ticket::CustomerKey::new("nordhavn-arkitekter"),
            currency: Some("DKK".into()),
            date: "2026-10-05".parse().unwrap(),
        };
        let line = |item: &str| prepaid::SaleLine {
            id: "l-1".into(),
            item: item.into(),
            quantity: Decimal::TWO,
            amount: Decimal::new(36000, 0),
        };
        let cards = prepaid::sales_of(&inv, &line("KLIPPEKORT-20"), &card).unwrap();
        let stored = stored_sale(&cards[1]);
        let mut want = sale("card", 20, "2026-10-05");
        want.unit = 2;
        assert_eq!(stored, want);
        assert_eq!(engine_sale(&stored).as_ref(), Some(&cards[1]));
        let banks = prepaid::sales_of(&inv, &line("TIMEBANK-10H"), &bank).unwrap();
        let stored = stored_sale(&banks[0]);
        assert_eq!(
            (
                stored.kind.as_str(),
                stored.size,
                stored.discount.as_deref()
            ),
            ("bank", 600, None)
        );
        assert_eq!(stored.valid_until.as_deref(), Some("2027-01-05"));
        assert_eq!(engine_sale(&stored).as_ref(), Some(&banks[0]));
    }

    #[test]
    fn an_invoice_status_is_the_stage_a_sale_opens_at() {
        assert_eq!(stage(DraftStatus::Paid), Stage::Paid);
        assert_eq!(stage(DraftStatus::Approved), Stage::Issued);
        for s in [
            DraftStatus::Draft,
            DraftStatus::Submitted,
            DraftStatus::Voided,
            DraftStatus::Deleted,
        ] {
            assert_eq!(stage(s), Stage::NotIssued, "{s}");
        }
    }
}
